"""One-time enrolment of this edge with the cloud: `enroll(cloud_url, token, store)`.

Generates the device's Ed25519 key on the device (the private half never leaves it), registers the
public half with the one-time token, and stores the identity, the tenant's pass keys and the
device config in the edge store (see `edge.sync_store`).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import BaseModel, ValidationError

from edge.store import Store
from edge.sync_store import SyncStore
from shared.passes import generate_signing_key, public_key_to_text

AGENT_VERSION = "0.1.0"
ENROLL_PATH = "/api/v1/fleet/enroll"


class EnrollmentFailed(Exception):
    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class _EnrollAnswer(BaseModel):
    device_id: str
    tenant_id: str
    library_id: str
    library_timezone: str
    key_id: str
    pass_keys: dict[str, str]
    config: dict[str, Any]


@dataclass(frozen=True)
class Enrollment:
    device_id: str
    library_id: str
    key_id: str
    pass_keys: dict[str, str]


def tls_verify(ca_file: str | None) -> ssl.SSLContext | bool:
    """Certificate verification, against a pinned CA bundle when one is given."""
    return ssl.create_default_context(cafile=ca_file) if ca_file else True


def enroll(
    cloud_url: str,
    token: str,
    store: Store,
    *,
    agent_version: str = AGENT_VERSION,
    ca_file: str | None = None,
    transport: httpx.BaseTransport | None = None,
    timeout: float = 30.0,
) -> Enrollment:
    """Enrol this edge (again, with a new token, after a reinstall); raises EnrollmentFailed."""
    private_key = generate_signing_key()
    body = {
        "token": token,
        "public_key": public_key_to_text(private_key.public_key()),
        "agent_version": agent_version,
    }
    base_url = cloud_url.rstrip("/")
    try:
        with httpx.Client(
            base_url=base_url, timeout=timeout, verify=tls_verify(ca_file), transport=transport
        ) as client:
            response = client.post(ENROLL_PATH, json=body)
    except httpx.HTTPError as exc:
        raise EnrollmentFailed(f"cannot reach the cloud at {base_url}: {exc}") from exc
    if response.status_code != 200:
        raise _failure(response)
    try:
        answer = _EnrollAnswer.model_validate_json(response.content)
    except ValidationError as exc:
        raise EnrollmentFailed(f"the cloud answered something unexpected: {exc}") from exc
    SyncStore(store).save_identity(
        cloud_url=base_url, device_id=answer.device_id, tenant_id=answer.tenant_id,
        library_id=answer.library_id,
        library_timezone=answer.library_timezone, key_id=answer.key_id, private_key=private_key,
        pass_keys=answer.pass_keys, config=answer.config,
    )  # fmt: skip
    return Enrollment(answer.device_id, answer.library_id, answer.key_id, answer.pass_keys)


def _failure(response: httpx.Response) -> EnrollmentFailed:
    try:
        error = response.json()["error"]
        return EnrollmentFailed(str(error["message"]), status=response.status_code, code=str(error["code"]))
    except (ValueError, KeyError, TypeError):
        return EnrollmentFailed(
            f"enrolment failed with HTTP {response.status_code}", status=response.status_code
        )
