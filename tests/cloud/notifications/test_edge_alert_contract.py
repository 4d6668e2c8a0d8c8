"""Every alert the edge agent can raise is either turned into staff messages or deliberately silent."""

from __future__ import annotations

import re
from pathlib import Path

from cloud.notifications.staff_alerts import EDGE_ALERT_KINDS, SILENT_EDGE_ALERTS

EDGE = Path(__file__).resolve().parents[3] / "edge"
ALERT_CALL = re.compile(r"\.alert\(\s*\"([a-z0-9_]+)\"")


def edge_alert_names() -> set[str]:
    return {name for path in EDGE.glob("*.py") for name in ALERT_CALL.findall(path.read_text("utf-8"))}


def test_the_cloud_knows_every_alert_the_edge_raises() -> None:
    names = edge_alert_names()
    assert {"forced_door", "co2_high", "energy_budget"} <= names  # the scan itself works
    assert names - EDGE_ALERT_KINDS.keys() - SILENT_EDGE_ALERTS == set()
