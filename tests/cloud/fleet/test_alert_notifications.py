"""Staff alerts end to end: alerts raised in a real edge store → real signed sync push → outbox rows
in the push transaction → the outbox worker → the aiosmtpd server (and the console channel).

Urgent door alerts ignore quiet hours, a CO2 alert waits for them to end, an unknown alert kind is
stored without a message, and a replayed batch never notifies twice.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from cloud.db import platform_scope
from cloud.identity import service as identity
from cloud.identity.roles import Role
from cloud.notifications.channels.base import Channel
from cloud.notifications.channels.console import ConsoleChannel
from cloud.notifications.kinds import ChannelKind
from cloud.notifications.preferences import NotificationPreferences, QuietHours
from cloud.notifications.worker import OutboxWorker
from cloud.tenancy import service as tenancy
from edge.store import Store, utcnow
from edge.sync import SyncClient
from tests.cloud.notifications.helpers import body_of
from tests.cloud.outbox.conftest import Inbox, email_channel
from tests.cloud.outbox.conftest import smtp_server as smtp_server  # the session fixture

from .conftest import TEST_PASSWORD, LiveCloud, Tenant, enrolled_store, make_tenant

ZONE = ZoneInfo("Asia/Kolkata")


@dataclass
class Staffed:
    tenant: Tenant
    owner_email: str
    staff_email: str


@pytest.fixture(scope="module")
def staffed(live_cloud: LiveCloud) -> Staffed:
    """A tenant with an owner in quiet hours right now and a staff member without any."""
    tenant = make_tenant(live_cloud)
    staff_email = f"staff-{uuid.uuid4().hex[:8]}@example.com"
    local = utcnow().astimezone(ZONE)
    quiet = QuietHours(
        start=(local - dt.timedelta(hours=1)).time(), end=(local + dt.timedelta(hours=2)).time()
    )
    prefs = NotificationPreferences(quiet_hours=quiet).model_dump(mode="json")
    with live_cloud.owner_session() as session:
        platform_scope(session)
        staff = identity.create_user(session, staff_email, TEST_PASSWORD)
        tenancy.add_membership(session, tenant.tenant_id, staff.id, Role.LIBRARY_STAFF)
        owner_email = session.execute(
            text("SELECT email FROM users WHERE id = :id"), {"id": tenant.owner_id}
        ).scalar_one()
        session.execute(
            text("INSERT INTO notification_preferences (user_id, prefs) VALUES (:id, CAST(:prefs AS jsonb))"),
            {"id": tenant.owner_id, "prefs": json.dumps(prefs)},
        )
        session.commit()
    return Staffed(tenant, owner_email, staff_email)


@pytest.fixture
def edge(live_cloud: LiveCloud, staffed: Staffed, tmp_path: Path) -> Iterator[Store]:
    store = enrolled_store(live_cloud.url, live_cloud, staffed.tenant, tmp_path / "edge.sqlite3")
    yield store
    store.close()


def outbox_rows(live_cloud: LiveCloud, tenant: Tenant) -> list[tuple[str, str, str, str]]:
    with live_cloud.owner_session() as session:
        rows = session.execute(
            text(
                "SELECT kind, channel, recipient, status FROM notification_outbox WHERE tenant_id = :t"
                " ORDER BY kind, channel, recipient"
            ),
            {"t": tenant.tenant_id},
        )
        return [tuple(row) for row in rows]


async def push(edge: Store) -> tuple[int, int]:
    client = SyncClient(edge)
    outcome = await client.drain()
    await client.stop()
    return outcome.applied, outcome.duplicates


async def test_edge_alerts_reach_owner_and_staff_once(
    live_cloud: LiveCloud,
    staffed: Staffed,
    edge: Store,
    smtp_server: Inbox,
) -> None:
    now = utcnow()
    edge.raise_alert("forced_door", "front-door", "door opened without an unlock", now)
    edge.raise_alert("co2_high", "hall-sensor", "CO2 1450 ppm above 1000 ppm", now)
    edge.raise_alert("mystery_blip", "front-door", "something odd", now)
    saved = [dict(row) for row in edge.db.query("SELECT * FROM outbox WHERE kind = 'alert'")]
    assert await push(edge) == (3, 0)

    for row in saved:  # as if the cloud's answer was lost: the edge sends the same batch again
        edge.db.table("outbox").insert(row)
    assert await push(edge) == (0, 3)

    rows = outbox_rows(live_cloud, staffed.tenant)
    email_rows = [(kind, to) for kind, channel, to, _ in rows if channel == ChannelKind.EMAIL]
    people = sorted([staffed.owner_email, staffed.staff_email])
    assert email_rows == [("co2_high", to) for to in people] + [("door_forced", to) for to in people]
    assert {kind for kind, *_ in rows} == {"co2_high", "door_forced"}  # the unknown kind notified nobody
    with live_cloud.owner_session() as session:
        stored = session.execute(
            text("SELECT payload->>'kind' FROM edge_events WHERE kind = 'alert' AND tenant_id = :t"),
            {"t": staffed.tenant.tenant_id},
        ).scalars()
        assert sorted(stored) == ["co2_high", "forced_door", "mystery_blip"]

    console = io.StringIO()
    channels: dict[ChannelKind, Channel] = {
        ChannelKind.EMAIL: email_channel(smtp_server.port),
        ChannelKind.CONSOLE: ConsoleChannel(console),
    }
    worker = OutboxWorker(live_cloud.session_factory, channels)  # type: ignore[arg-type]
    await worker.drain()
    for channel in channels.values():
        await channel.aclose()

    forced = "ALERT: front-door forced open at Main hall"
    assert [m["Subject"] for m in smtp_server.to(staffed.owner_email)] == [
        forced
    ]  # urgent: quiet hours ignored
    assert sorted(m["Subject"] for m in smtp_server.to(staffed.staff_email)) == sorted(
        [forced, "CO2 high in hall-sensor at Main hall"]
    )
    bodies = [body_of(mail, "plain") for mail in smtp_server.to(staffed.staff_email)]
    assert any("reached 1,450 ppm" in body for body in bodies)
    assert console.getvalue().count(forced) == 2  # owner and staff on the console (the demo's channel)
    statuses = {
        (kind, channel, to): status for kind, channel, to, status in outbox_rows(live_cloud, staffed.tenant)
    }
    assert statuses[("co2_high", "email", staffed.owner_email)] == "pending"  # waits for quiet hours to end
    assert statuses[("door_forced", "email", staffed.owner_email)] == "sent"
