"""The `make reliability` summary: a pytest plugin (`-p tests.reliability.report`) that counts what the
security and reliability tests tried and prints/writes a table.

Tests add to the counters through the `tally` fixture (`tally.add("inputs", n)`); tests of the
existing attack/fuzz suites that record nothing are counted one per test in their area.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import psutil
import pytest

KINDS = ("attacks", "faults", "inputs", "load")
# test file prefix -> (area, kind counted once per test when the test records nothing itself)
AREAS: tuple[tuple[str, str, str], ...] = (
    ("tests/cloud/test_auth.py", "auth attacks", "attacks"),
    ("tests/cloud/test_otp.py", "auth attacks", "attacks"),
    ("tests/cloud/test_route_matrix.py", "route x role / tenant isolation", "attacks"),
    ("tests/cloud/test_tenancy_rls.py", "tenant isolation (SQL)", "attacks"),
    ("tests/cloud/test_fuzz_inputs.py", "parser fuzzing (cloud)", "inputs"),
    ("tests/edge/test_fuzz.py", "parser fuzzing (edge)", "inputs"),
    ("tests/shared/", "parser fuzzing (shared)", "inputs"),
    ("tests/edge/test_crash_durability.py", "fault injection", "faults"),
    ("tests/cloud/fleet/test_fleet_faults.py", "fault injection", "faults"),
    ("tests/edge/test_broker.py", "transport security", "attacks"),
    ("tests/reliability/test_schema_fuzz.py", "API schema fuzzing", "inputs"),
    ("tests/reliability/test_faults", "fault injection", "faults"),
    ("tests/reliability/test_load", "load", "load"),
    ("tests/reliability/test_transport", "transport security", "attacks"),
    ("tests/reliability/", "reliability (other)", "attacks"),
)


def area_of(nodeid: str) -> tuple[str, str]:
    for prefix, area, kind in AREAS:
        if nodeid.startswith(prefix):
            return area, kind
    return "other", "attacks"


@dataclass
class AreaCount:
    tests: int = 0
    failures: int = 0
    counts: Counter[str] = field(default_factory=Counter)


class Tally:
    """What the running session tried, by area. One per process (pytest runs the suite in one)."""

    _current: ClassVar[Tally | None] = None

    def __init__(self) -> None:
        self.areas: dict[str, AreaCount] = {}
        self.recorded: Counter[str] = Counter()  # per test: counts added while it ran
        self.running: str | None = None

    @classmethod
    def current(cls) -> Tally:
        if cls._current is None:
            cls._current = Tally()
        return cls._current

    def add(self, kind: str, amount: int = 1) -> None:
        assert kind in KINDS, kind
        self.recorded[kind] += amount

    def finish_test(self, nodeid: str, failed: bool) -> None:
        area, kind = area_of(nodeid)
        count = self.areas.setdefault(area, AreaCount())
        count.tests += 1
        count.failures += int(failed)
        count.counts.update(self.recorded if self.recorded else Counter({kind: 1}))
        self.recorded = Counter()

    def table(self) -> str:
        lines = [
            "| area | tests | attacks tried | faults injected | inputs fuzzed | load requests | failures |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        total = AreaCount()
        for area, count in sorted(self.areas.items()):
            lines.append(_row(area, count))
            total.tests += count.tests
            total.failures += count.failures
            total.counts.update(count.counts)
        lines.append(_row("**total**", total))
        return "\n".join(lines)


def _row(area: str, count: AreaCount) -> str:
    c = count.counts
    return (
        f"| {area} | {count.tests} | {c['attacks']} | {c['faults']} | {c['inputs']} | {c['load']} "
        f"| {count.failures} |"
    )


def machine() -> str:
    return (
        f"{platform.node()}, {platform.system()} {platform.release()}, {platform.machine()}, "
        f"{os.cpu_count()} CPUs, {psutil.virtual_memory().total // 2**20} MiB RAM, "
        f"Python {platform.python_version()}, load {os.getloadavg()[0]:.2f}"
    )


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    tally = Tally.current()
    if report.when == "call" or (report.when == "setup" and report.failed):
        tally.finish_test(report.nodeid, report.failed)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    tally = Tally.current()
    table = tally.table()
    terminalreporter.write_sep("=", "reliability summary")
    terminalreporter.write_line(table)
    target = os.environ.get("RELIABILITY_REPORT")
    if target:
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        scope = os.environ.get("RELIABILITY_SCOPE", "`make reliability`")
        Path(target).write_text(
            f"# Reliability and security suite\n\n{scope}, {now}, on {machine()}.\n\n"
            f"{table}\n\nA failure is a test that failed: a server error, a leak, a lost or duplicated "
            "event, or an attack that was not refused.\n",
            encoding="utf-8",
        )
        terminalreporter.write_line(f"written to {target}")
