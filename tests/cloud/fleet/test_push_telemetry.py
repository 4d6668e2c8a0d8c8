"""The telemetry upsert (one statement over a JSON parameter): a minute sent twice in one batch and
again later; the device's report written without loading it; numbers JSON cannot carry refused."""

from __future__ import annotations

import datetime as dt
import json
import math
import uuid
from typing import Any

import pytest
from sqlalchemy import text

from cloud.db import tenant_scope
from cloud.errors import ApiError
from cloud.fleet.push import EdgeReport, apply_push
from cloud.fleet.router import parse_batch
from cloud.fleet.service import DeviceKey, new_key_id

from .conftest import LiveCloud, make_tenant


def _owner_rows(cloud: LiveCloud, sql: str, **params: Any) -> list[Any]:
    with cloud.owner_session() as session:
        result = session.connection().execute(text(sql), params)
        rows = list(result.all()) if result.returns_rows else []
        session.commit()
        return rows


def _telemetry(minute: dt.datetime, **values: float) -> dict[str, Any]:
    rows = [
        {"sensor": "env", "metric": metric, "count": 2, "total": value, "minimum": value, "maximum": value,
         "last": value}
        for metric, value in values.items()
    ]  # fmt: skip
    return {"id": str(uuid.uuid4()), "kind": "telemetry", "occurred_at": minute.isoformat(),
            "payload": {"minute": minute.isoformat(), "rows": rows}}  # fmt: skip


def _push(cloud: LiveCloud, key: DeviceKey, events: list[dict[str, Any]], report: EdgeReport) -> None:
    now = dt.datetime.now(dt.UTC)
    batch = {"version": 1, "device_id": str(key.device_id), "sent_at": now.isoformat(),
             "clock": (now + dt.timedelta(seconds=3)).isoformat(), "events": events}  # fmt: skip
    factory: Any = cloud.session_factory
    with factory() as session:
        tenant_scope(session, key.tenant_id, None)
        results = apply_push(session, key, batch, now=now, report=report)
        session.commit()
    assert {r.status for r in results.results} == {"applied"}


def test_telemetry_upsert_and_device_report(live_cloud: LiveCloud) -> None:
    tenant = make_tenant(live_cloud)
    key = DeviceKey(new_key_id(), "", "active", uuid.uuid4(), tenant.tenant_id, tenant.library_id)
    _owner_rows(
        live_cloud,
        "INSERT INTO edge_devices (id, tenant_id, library_id, name, status, agent_version, queue_depth)"
        " VALUES (:d, :t, :l, 'door', 'active', '0.9', 7)",
        d=key.device_id, t=tenant.tenant_id, l=tenant.library_id,
    )  # fmt: skip
    minute = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0) - dt.timedelta(minutes=1)
    first = [_telemetry(minute, co2=400.0, temp=21.5), _telemetry(minute, co2=410.0, hum=55.0)]
    _push(live_cloud, key, first, EdgeReport(agent_version=None, queue_depth=None, dead_letters=None))
    unreported = "SELECT agent_version, queue_depth FROM edge_devices WHERE id = :d"
    assert _owner_rows(live_cloud, unreported, d=key.device_id) == [("0.9", 7)]  # kept when not reported
    _push(live_cloud, key, [_telemetry(minute, co2=420.0)], EdgeReport("1.2.0", 0, 1))

    rows = _owner_rows(
        live_cloud,
        "SELECT metric, last FROM edge_telemetry WHERE edge_device_id = :d ORDER BY metric",
        d=key.device_id,
    )
    assert [row.metric for row in rows] == ["co2", "hum", "temp"]
    assert [row.last for row in rows] == [420.0, 55.0, 21.5]
    (device,) = _owner_rows(
        live_cloud,
        "SELECT agent_version, queue_depth, dead_letters, events_received, clock_skew_seconds,"
        " last_seen_at FROM edge_devices WHERE id = :d",
        d=key.device_id,
    )
    assert (device.agent_version, device.queue_depth, device.dead_letters, device.events_received) == (
        "1.2.0", 0, 1, 3,
    )  # fmt: skip
    assert device.clock_skew_seconds == 3.0 and device.last_seen_at is not None


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_a_batch_with_nan_or_infinity_is_a_bad_request(value: float) -> None:
    minute = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    body = json.dumps({"version": 1, "events": [_telemetry(minute, co2=value)]}).encode()
    with pytest.raises(ApiError) as raised:
        parse_batch(body, "")
    assert (raised.value.status, raised.value.code) == (400, "bad_request")
