"""Analytics routes (CONTRACTS.md "analytics"): thin wrappers over the analytics services."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Query, Response
from sqlalchemy.orm import Session

from cloud.analytics import platform, revenue, service
from cloud.analytics.schemas import (
    BestTimeOut,
    FleetDeviceOut,
    ForecastOut,
    OccupancyOut,
    OverviewOut,
    ReportFormat,
    RevenueGroup,
    RevenueOut,
    SummaryOut,
)
from cloud.catalog.models import LibraryRecord
from cloud.deps import Principal, RequestContext, get_request_context, get_session, require_role
from cloud.errors import ApiError
from cloud.identity.roles import Role
from cloud.models_common import utcnow

router = APIRouter(tags=["analytics"])
staff_or_admin = require_role(Role.LIBRARY_STAFF, Role.LIBRARY_OWNER, Role.SUPER_ADMIN)
owner_or_admin = require_role(Role.LIBRARY_OWNER, Role.SUPER_ADMIN)
super_admin = require_role(Role.SUPER_ADMIN)
DEFAULT_REPORT_DAYS = 365


def viewer_of(principal: Principal, context: RequestContext) -> service.Viewer:
    return service.Viewer(
        user_id=principal.user_id,
        tenant_id=principal.tenant_id,
        platform=principal.role is Role.SUPER_ADMIN,
        ip=context.ip,
    )


@dataclass(frozen=True)
class LibraryAccess:
    """A library the caller may read analytics of, and the session scoped for them."""

    session: Session
    library: LibraryRecord


def library_access(action: str) -> Callable[..., LibraryAccess]:
    """Dependency: staff/owner of the library's tenant, or a super admin (audited as `action`)."""

    def dependency(
        library_id: uuid.UUID,
        principal: Principal = Depends(staff_or_admin),
        session: Session = Depends(get_session),
        context: RequestContext = Depends(get_request_context),
    ) -> LibraryAccess:
        library = service.open_library(session, viewer_of(principal, context), library_id, action)
        return LibraryAccess(session, library)

    return dependency


@router.get("/api/v1/analytics/libraries/{library_id}/occupancy", response_model=OccupancyOut)
def occupancy(
    days: int = Query(28, ge=1, le=366),
    access: LibraryAccess = Depends(library_access("analytics.occupancy.read")),
) -> OccupancyOut:
    return service.occupancy(access.session, access.library, days, utcnow())


@router.get("/api/v1/analytics/libraries/{library_id}/summary", response_model=SummaryOut)
def summary(
    days: int = Query(30, ge=1, le=366),
    access: LibraryAccess = Depends(library_access("analytics.summary.read")),
) -> SummaryOut:
    return service.summary(access.session, access.library, days, utcnow())


@router.get("/api/v1/analytics/libraries/{library_id}/forecast", response_model=ForecastOut)
def forecast(access: LibraryAccess = Depends(library_access("analytics.forecast.read"))) -> ForecastOut:
    return service.forecast(access.session, access.library, utcnow())


@router.get("/api/v1/libraries/{library_id}/best-time", response_model=BestTimeOut, tags=["libraries"])
def best_time(
    library_id: uuid.UUID, date: dt.date | None = None, session: Session = Depends(get_session)
) -> BestTimeOut:
    """Public: the quietest hours of a day by the forecast ("best time to come")."""
    library = service.public_library(session, library_id)
    return service.best_time(session, library, date, utcnow())


@router.get(
    "/api/v1/analytics/revenue", response_model=RevenueOut, responses={200: {"content": {"text/csv": {}}}}
)
def revenue_report(
    group_by: RevenueGroup = RevenueGroup.MONTH,
    start: dt.date | None = Query(None, alias="from"),
    end: dt.date | None = Query(None, alias="to"),
    library_id: uuid.UUID | None = None,
    tenant_id: uuid.UUID | None = None,
    format: ReportFormat = ReportFormat.JSON,
    principal: Principal = Depends(owner_or_admin),
    session: Session = Depends(get_session),
    context: RequestContext = Depends(get_request_context),
) -> Any:
    """Owner: their tenant only. Super admin: every tenant (audited), optionally one `tenant_id`."""
    viewer = viewer_of(principal, context)
    if not viewer.platform and tenant_id is not None and tenant_id != viewer.tenant_id:
        raise ApiError(403, "forbidden", "an owner sees their own tenant's revenue only")
    target = f"tenant:{tenant_id or viewer.tenant_id}"
    service.scope_for(session, viewer, "analytics.revenue.read", target, tenant_id)
    if library_id is not None:
        service.library_in_scope(session, viewer, library_id)
    end = end or utcnow().date()
    start = start or end - dt.timedelta(days=DEFAULT_REPORT_DAYS)
    report = revenue.revenue(
        session, group_by=group_by, start=start, end=end,
        tenant_id=tenant_id if viewer.platform else viewer.tenant_id, library_id=library_id,
    )  # fmt: skip
    if format is ReportFormat.CSV:
        filename = f"revenue-{group_by.value}-{start}-{end}.csv"
        return Response(
            revenue.revenue_csv(report),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )
    return report


@router.get("/api/v1/admin/analytics/overview", response_model=OverviewOut, tags=["admin"])
def overview(
    principal: Principal = Depends(super_admin),
    session: Session = Depends(get_session),
    context: RequestContext = Depends(get_request_context),
) -> OverviewOut:
    service.scope_for(session, viewer_of(principal, context), "analytics.overview.read", "platform")
    return platform.overview(session)


@router.get("/api/v1/admin/fleet", response_model=list[FleetDeviceOut], tags=["admin"])
def fleet_health(
    principal: Principal = Depends(super_admin),
    session: Session = Depends(get_session),
    context: RequestContext = Depends(get_request_context),
) -> list[FleetDeviceOut]:
    service.scope_for(session, viewer_of(principal, context), "fleet.health.read", "platform")
    return platform.fleet_health(session)
