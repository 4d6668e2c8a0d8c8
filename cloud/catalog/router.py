"""Thin routes: library details, zones, seats and plans (owner/staff write, everyone reads)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Depends, Response
from sqlalchemy.orm import Session

from cloud.booking.cache import AvailabilityCache, get_availability_cache
from cloud.catalog import service
from cloud.catalog.schemas import (
    LibraryCreate,
    LibraryFields,
    LibraryOut,
    PlanIn,
    PlanOut,
    PlanPatch,
    SeatOut,
    SeatPatch,
    SeatsIn,
    ZoneIn,
    ZoneOut,
    ZonePatch,
)
from cloud.deps import Principal, get_session, require_tenant_member, scoped_session
from cloud.identity.roles import Permission

router = APIRouter(tags=["catalog"])
writer = require_tenant_member(Permission.WRITE_LIBRARY_DATA)


def _tenant(principal: Principal) -> uuid.UUID:
    return service.require_tenant(principal.tenant_id)


@router.post("/api/v1/libraries", status_code=201, response_model=LibraryOut)
def create_library(
    body: LibraryCreate, principal: Principal = Depends(writer), session: Session = Depends(scoped_session)
) -> LibraryOut:
    return service.library_out(service.create_library(session, _tenant(principal), body))


@router.get("/api/v1/libraries/{library_id}", response_model=LibraryOut)
def get_library(library_id: uuid.UUID, session: Session = Depends(get_session)) -> LibraryOut:
    return service.library_out(service.get_library(session, library_id))


@router.patch("/api/v1/libraries/{library_id}", response_model=LibraryOut)
def update_library(
    library_id: uuid.UUID,
    body: LibraryFields,
    principal: Principal = Depends(writer),
    session: Session = Depends(scoped_session),
    cache: AvailabilityCache = Depends(get_availability_cache),
) -> LibraryOut:
    library = service.update_library(session, _tenant(principal), library_id, body)
    cache.invalidate(library_id)
    return service.library_out(library)


@router.post("/api/v1/libraries/{library_id}/zones", status_code=201, response_model=ZoneOut)
def create_zone(
    library_id: uuid.UUID,
    body: ZoneIn,
    principal: Principal = Depends(writer),
    session: Session = Depends(scoped_session),
) -> Any:
    return service.create_zone(session, _tenant(principal), library_id, body)


@router.get("/api/v1/libraries/{library_id}/zones", response_model=list[ZoneOut])
def list_zones(library_id: uuid.UUID, session: Session = Depends(get_session)) -> Any:
    return service.list_zones(session, library_id)


@router.patch("/api/v1/zones/{zone_id}", response_model=ZoneOut)
def update_zone(
    zone_id: uuid.UUID,
    body: ZonePatch,
    principal: Principal = Depends(writer),
    session: Session = Depends(scoped_session),
) -> Any:
    return service.update_zone(session, _tenant(principal), zone_id, body)


@router.delete("/api/v1/zones/{zone_id}", status_code=204)
def delete_zone(
    zone_id: uuid.UUID,
    principal: Principal = Depends(writer),
    session: Session = Depends(scoped_session),
    cache: AvailabilityCache = Depends(get_availability_cache),
) -> Response:
    cache.invalidate(service.delete_zone(session, _tenant(principal), zone_id))
    return Response(status_code=204)


@router.post("/api/v1/libraries/{library_id}/seats", status_code=201, response_model=list[SeatOut])
def create_seats(
    library_id: uuid.UUID,
    body: SeatsIn,
    principal: Principal = Depends(writer),
    session: Session = Depends(scoped_session),
    cache: AvailabilityCache = Depends(get_availability_cache),
) -> list[SeatOut]:
    seats = service.create_seats(session, _tenant(principal), library_id, body)
    cache.invalidate(library_id)
    return [service.seat_out(seat) for seat in seats]


@router.get("/api/v1/libraries/{library_id}/seats", response_model=list[SeatOut])
def list_seats(library_id: uuid.UUID, session: Session = Depends(get_session)) -> list[SeatOut]:
    return [service.seat_out(seat) for seat in service.list_seats(session, library_id)]


@router.patch("/api/v1/seats/{seat_id}", response_model=SeatOut)
def update_seat(
    seat_id: uuid.UUID,
    body: SeatPatch,
    principal: Principal = Depends(writer),
    session: Session = Depends(scoped_session),
    cache: AvailabilityCache = Depends(get_availability_cache),
) -> SeatOut:
    seat = service.update_seat(session, _tenant(principal), seat_id, body)
    cache.invalidate(seat.library_id)
    return service.seat_out(seat)


@router.post("/api/v1/libraries/{library_id}/plans", status_code=201, response_model=PlanOut)
def create_plan(
    library_id: uuid.UUID,
    body: PlanIn,
    principal: Principal = Depends(writer),
    session: Session = Depends(scoped_session),
) -> Any:
    return service.create_plan(session, _tenant(principal), library_id, body)


@router.get("/api/v1/libraries/{library_id}/plans", response_model=list[PlanOut])
def list_plans(
    library_id: uuid.UUID, include_inactive: bool = False, session: Session = Depends(get_session)
) -> Any:
    return service.list_plans(session, library_id, include_inactive)


@router.patch("/api/v1/plans/{plan_id}", response_model=PlanOut)
def update_plan(
    plan_id: uuid.UUID,
    body: PlanPatch,
    principal: Principal = Depends(writer),
    session: Session = Depends(scoped_session),
) -> Any:
    return service.update_plan(session, _tenant(principal), plan_id, body)
