"""The demo's booking activity: upcoming bookings of the demo students and a waitlist entry."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.booking.demo import seed_demo_activity
from cloud.booking.models import Booking, WaitlistEntry
from cloud.errors import ApiError
from cloud.identity.roles import Role
from cloud.models_common import utcnow
from cloud.notifications.models import OutboxRecord
from tests.cloud.booking.conftest import LibrarySetup


async def test_seed_demo_activity_books_upcoming_seats_and_queues_one_student(
    cloud_app: FastAPI,
    cloud_client: httpx.AsyncClient,
    setup_library: LibrarySetup,
    make_account: Any,
    owner_session: Session,
) -> None:
    students = [(await make_account(Role.STUDENT)).id for _ in range(2)]
    args: dict[str, Any] = {
        "tenant_id": setup_library.owner.tenant_id,
        "library_id": uuid.UUID(setup_library.id),
        "student_ids": students,
        "now": utcnow(),
    }
    with cloud_app.state.session_factory() as session:  # the app role: RLS applies
        first = seed_demo_activity(session, **args)
    assert len(first["booking_ids"]) == 5 and first["waitlist_entry_id"]
    bookings = owner_session.scalars(
        select(Booking).where(Booking.library_id == uuid.UUID(setup_library.id))
    ).all()
    assert {b.status for b in bookings} == {"confirmed"} and {b.user_id for b in bookings} == set(students)
    assert all(b.start > args["now"] for b in bookings)
    entry = owner_session.get(WaitlistEntry, uuid.UUID(first["waitlist_entry_id"]))
    assert entry is not None and entry.status == "waiting" and entry.user_id == students[-1]
    confirmations = owner_session.scalars(
        select(OutboxRecord).where(OutboxRecord.kind == "booking_confirmed")
    ).all()
    assert len(confirmations) == 5

    with cloud_app.state.session_factory() as session:
        again = seed_demo_activity(session, **args)
    assert again == {"booking_ids": [], "waitlist_entry_id": first["waitlist_entry_id"]}

    with cloud_app.state.session_factory() as session, pytest.raises(ApiError) as refused:
        seed_demo_activity(session, **{**args, "tenant_id": uuid.uuid4()})
    assert refused.value.code == "library_not_in_tenant"
