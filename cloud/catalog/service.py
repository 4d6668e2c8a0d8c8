"""Catalog logic: libraries, zones, seats and plans of the caller's tenant.

Reads are public (row-level security lets everyone read the catalogue); writes are checked here
against the caller's tenant (a clear 403) and again by RLS (tenant_id = app_tenant()).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloud.catalog.models import CatalogBase, LibraryRecord, Plan, SeatRecord, Zone
from cloud.catalog.schemas import (
    RULE_FIELDS,
    BookingRules,
    LibraryCreate,
    LibraryFields,
    LibraryOut,
    PlanIn,
    PlanPatch,
    SeatOut,
    SeatPatch,
    SeatsIn,
    ZoneIn,
    ZonePatch,
    all_day_hours,
)
from cloud.errors import ApiError

Row = TypeVar("Row", bound=CatalogBase)


def _not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"{what} not found")


def require_tenant(tenant_id: uuid.UUID | None) -> uuid.UUID:
    if tenant_id is None:
        raise ApiError(403, "tenant_required", "this action needs a library owner or staff account")
    return tenant_id


def _owned(row: Row | None, tenant_id: uuid.UUID, what: str) -> Row:
    if row is None:
        raise _not_found(what)
    if getattr(row, "tenant_id", None) != tenant_id:
        raise ApiError(403, "forbidden", f"this {what} belongs to another tenant")
    return row


def get_library(session: Session, library_id: uuid.UUID) -> LibraryRecord:
    library = session.get(LibraryRecord, library_id)
    if library is None:
        raise _not_found("library")
    return library


def owned_library(session: Session, tenant_id: uuid.UUID, library_id: uuid.UUID) -> LibraryRecord:
    return _owned(session.get(LibraryRecord, library_id), tenant_id, "library")


def library_out(library: LibraryRecord) -> LibraryOut:
    return LibraryOut(
        id=library.id,
        tenant_id=library.tenant_id,
        name=library.name,
        address=library.address,
        description=library.description,
        latitude=library.latitude,
        longitude=library.longitude,
        timezone=library.timezone,
        amenities=list(library.amenities),
        photos=list(library.photos),
        rating=library.rating,
        rating_count=library.rating_count,
        capacity=library.capacity,
        opening_hours=dict(library.opening_hours),
        closures=list(library.closures),
        rules=rules_of(library),
        status=library.status,
    )


def rules_of(library: LibraryRecord) -> BookingRules:
    return BookingRules(**{name: getattr(library, name) for name in RULE_FIELDS})


def _apply_library_fields(library: LibraryRecord, fields: LibraryFields) -> None:
    values = fields.model_dump(
        exclude_unset=True, exclude={"rules", "photos", "amenities", "opening_hours"}, mode="json"
    )
    for name, value in values.items():
        if value is None and name not in ("latitude", "longitude", "address", "description"):
            continue
        setattr(library, name, "" if value is None and name in ("address", "description") else value)
    if fields.opening_hours is not None:
        library.opening_hours = fields.opening_hours.model_dump(mode="json")
    if fields.photos is not None:
        library.photos = [str(url) for url in fields.photos]
    if fields.amenities is not None:
        library.amenities = sorted({amenity.strip().lower() for amenity in fields.amenities})
    if fields.rules is not None:
        for name, value in fields.rules.model_dump().items():
            setattr(library, name, value)
    if (library.latitude is None) != (library.longitude is None):
        raise ApiError(422, "invalid_location", "give both latitude and longitude, or neither")


def create_library(session: Session, tenant_id: uuid.UUID, body: LibraryCreate) -> LibraryRecord:
    library = LibraryRecord(
        tenant_id=tenant_id,
        name=body.name,
        timezone=body.timezone,
        opening_hours=all_day_hours().model_dump(mode="json"),
        capacity=0,
    )
    _apply_library_fields(library, body)
    session.add(library)
    session.commit()
    return library


def update_library(
    session: Session, tenant_id: uuid.UUID, library_id: uuid.UUID, body: LibraryFields
) -> LibraryRecord:
    library = owned_library(session, tenant_id, library_id)
    _apply_library_fields(library, body)
    session.commit()
    return library


# --- zones ----------------------------------------------------------------------------------------


def _commit_unique(session: Session, code: str, message: str) -> None:
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise ApiError(409, code, message) from exc


def create_zone(session: Session, tenant_id: uuid.UUID, library_id: uuid.UUID, body: ZoneIn) -> Zone:
    owned_library(session, tenant_id, library_id)
    zone = Zone(tenant_id=tenant_id, library_id=library_id, name=body.name, description=body.description)
    session.add(zone)
    _commit_unique(session, "zone_exists", "a zone with that name already exists in this library")
    return zone


def list_zones(session: Session, library_id: uuid.UUID) -> Sequence[Zone]:
    get_library(session, library_id)
    return session.scalars(select(Zone).where(Zone.library_id == library_id).order_by(Zone.name)).all()


def update_zone(session: Session, tenant_id: uuid.UUID, zone_id: uuid.UUID, body: ZonePatch) -> Zone:
    zone = _owned(session.get(Zone, zone_id), tenant_id, "zone")
    if body.description is not None:
        zone.description = body.description
    if body.name is not None:
        zone.name = body.name
        for seat in session.scalars(select(SeatRecord).where(SeatRecord.zone_id == zone.id)):
            seat.zone = body.name
    _commit_unique(session, "zone_exists", "a zone with that name already exists in this library")
    return zone


def delete_zone(session: Session, tenant_id: uuid.UUID, zone_id: uuid.UUID) -> uuid.UUID:
    zone = _owned(session.get(Zone, zone_id), tenant_id, "zone")
    for seat in session.scalars(select(SeatRecord).where(SeatRecord.zone_id == zone.id)):
        seat.zone_id, seat.zone = None, ""
    session.delete(zone)
    session.commit()
    return zone.library_id


# --- seats ----------------------------------------------------------------------------------------


def seat_out(seat: SeatRecord) -> SeatOut:
    return SeatOut(
        id=seat.id,
        library_id=seat.library_id,
        label=seat.label,
        zone_id=seat.zone_id,
        zone=seat.zone,
        seat_type=seat.seat_type,
        active=seat.status == "active",
    )


def _zone_in_library(session: Session, zone_id: uuid.UUID, library_id: uuid.UUID) -> Zone:
    zone = session.get(Zone, zone_id)
    if zone is None or zone.library_id != library_id:
        raise ApiError(422, "zone_not_in_library", "that zone does not belong to this library")
    return zone


def create_seats(
    session: Session, tenant_id: uuid.UUID, library_id: uuid.UUID, body: SeatsIn
) -> list[SeatRecord]:
    library = owned_library(session, tenant_id, library_id)
    if len(set(body.labels)) != len(body.labels):
        raise ApiError(422, "duplicate_labels", "seat labels must be unique")
    zone = _zone_in_library(session, body.zone_id, library_id) if body.zone_id else None
    seats = [
        SeatRecord(
            tenant_id=tenant_id,
            library_id=library_id,
            label=label,
            zone_id=zone.id if zone else None,
            zone=zone.name if zone else "",
            seat_type=body.seat_type.value,
            status="active",
        )
        for label in body.labels
    ]
    session.add_all(seats)
    library.capacity += len(seats)
    _commit_unique(session, "seat_exists", "a seat with one of those labels already exists")
    return seats


def list_seats(session: Session, library_id: uuid.UUID) -> Sequence[SeatRecord]:
    get_library(session, library_id)
    return session.scalars(
        select(SeatRecord).where(SeatRecord.library_id == library_id).order_by(SeatRecord.label)
    ).all()


def update_seat(session: Session, tenant_id: uuid.UUID, seat_id: uuid.UUID, body: SeatPatch) -> SeatRecord:
    seat = _owned(session.get(SeatRecord, seat_id), tenant_id, "seat")
    if body.label is not None:
        seat.label = body.label
    if body.seat_type is not None:
        seat.seat_type = body.seat_type.value
    if body.active is not None:
        seat.status = "active" if body.active else "inactive"
    if body.clear_zone:
        seat.zone_id, seat.zone = None, ""
    elif body.zone_id is not None:
        zone = _zone_in_library(session, body.zone_id, seat.library_id)
        seat.zone_id, seat.zone = zone.id, zone.name
    _commit_unique(session, "seat_exists", "a seat with that label already exists")
    return seat


# --- plans ----------------------------------------------------------------------------------------


def create_plan(session: Session, tenant_id: uuid.UUID, library_id: uuid.UUID, body: PlanIn) -> Plan:
    owned_library(session, tenant_id, library_id)
    plan = Plan(tenant_id=tenant_id, library_id=library_id, **body.model_dump())
    plan.kind = body.kind.value
    session.add(plan)
    session.commit()
    return plan


def list_plans(session: Session, library_id: uuid.UUID, include_inactive: bool = False) -> Sequence[Plan]:
    get_library(session, library_id)
    query = select(Plan).where(Plan.library_id == library_id)
    if not include_inactive:
        query = query.where(Plan.active.is_(True))
    return session.scalars(query.order_by(Plan.kind, Plan.price_minor)).all()


def update_plan(session: Session, tenant_id: uuid.UUID, plan_id: uuid.UUID, body: PlanPatch) -> Plan:
    plan = _owned(session.get(Plan, plan_id), tenant_id, "plan")
    for name, value in body.model_dump(exclude_unset=True).items():
        if value is not None:
            setattr(plan, name, value)
    session.commit()
    return plan
