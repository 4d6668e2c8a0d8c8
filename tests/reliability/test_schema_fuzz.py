"""Schemathesis against `/openapi.json` of a real uvicorn cloud, as every role.

Every operation gets generated requests (valid and invalid) as anonymous, student, staff, owner and
super admin. Checks: no 5xx, the status code is documented for the operation, the body conforms to
the documented schema (errors: the envelope) and the content type is the documented one.
A short deterministic run is in `make test`; `make reliability` runs many more examples.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.reliability.conftest import ROLES, LiveApi
from tests.reliability.report import Tally

CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance, content_type_conformance]
# operations that act on the caller's own session; fuzzing them would log the role out mid-run
SKIP_OPERATIONS = frozenset({"POST /api/v1/auth/logout", "POST /api/v1/users/me/erase"})


@dataclass
class FuzzRun:
    calls: int = 0
    failures: list[str] = field(default_factory=list)


def fuzz_operation(
    operation: Any,
    base_url: str,
    headers: dict[str, str],
    examples: int,
    http: requests.Session,
    run: FuzzRun,
) -> None:
    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
    )
    @given(data=st.data())
    def fuzz(data: st.DataObject) -> None:
        case = data.draw(operation.as_strategy())
        response = case.call(base_url=base_url, headers=headers, session=http, timeout=30)
        run.calls += 1
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except (AssertionError, FailureGroup) as failure:
            run.failures.append(f"{operation.label} -> {response.status_code}: {str(failure)[:600]}")

    fuzz()


def fuzz_api(api: LiveApi, role: str, examples: int) -> FuzzRun:
    schema = schemathesis.openapi.from_url(f"{api.url}/openapi.json")
    run = FuzzRun()
    with requests.Session() as http:
        for result in schema.get_all_operations():
            operation = result.ok()  # type: ignore[union-attr]  # an Err would raise here, as it should
            if operation.label in SKIP_OPERATIONS:
                continue
            fuzz_operation(operation, api.url, api.headers[role], examples, http, run)
    return run


def assert_clean(run: FuzzRun, role: str, tally: Tally) -> None:
    tally.add("inputs", run.calls)
    assert run.calls > 0
    assert not run.failures, f"{len(run.failures)} failures as {role}:\n" + "\n\n".join(run.failures[:20])


@pytest.mark.parametrize("role", ROLES)
def test_every_operation_as_every_role_answers_as_documented(
    live_api: LiveApi, role: str, tally: Tally
) -> None:
    assert_clean(fuzz_api(live_api, role, examples=1), role, tally)


@pytest.mark.reliability
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("role", ROLES)
def test_long_schema_fuzz_as_every_role(live_api: LiveApi, role: str, tally: Tally) -> None:
    assert_clean(fuzz_api(live_api, role, examples=20), role, tally)
