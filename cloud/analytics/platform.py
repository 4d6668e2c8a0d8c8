"""The platform admin's views: the overview across tenants and the health of every edge."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cloud.analytics.revenue import net_by_tenant
from cloud.analytics.schemas import FleetDeviceOut, OverviewOut
from cloud.fleet import service as fleet
from cloud.fleet.schemas import DeviceOut
from cloud.tenancy.models import Library, Tenant


def fleet_health(session: Session) -> list[FleetDeviceOut]:
    """Every edge device in the session's scope (the platform scope: all tenants)."""
    return [_fleet_row(device) for device in fleet.list_devices(session)]


def _fleet_row(device: DeviceOut) -> FleetDeviceOut:
    reported = device.last_seen_at is not None  # queue figures are only known once it synced
    return FleetDeviceOut(
        device_id=device.id,
        tenant_id=device.tenant_id,
        library_id=device.library_id,
        name=device.name,
        online=device.online,
        last_seen_at=device.last_seen_at,
        agent_version=device.agent_version or None,
        queue_depth=device.queue_depth if reported else None,
        dead_letters=device.dead_letters if reported else None,
        clock_skew_s=device.clock_skew_seconds,
        skew_flagged=device.clock_skew_flagged,
        revoked=device.status == "revoked" or device.revoked_at is not None,
    )


def overview(session: Session) -> OverviewOut:
    devices = [device for device in fleet_health(session) if not device.revoked]
    return OverviewOut(
        tenants=int(session.scalar(select(func.count()).select_from(Tenant)) or 0),
        libraries=int(session.scalar(select(func.count()).select_from(Library)) or 0),
        edges=len(devices),
        edges_online=sum(1 for device in devices if device.online),
        revenue_by_tenant=net_by_tenant(session),
    )
