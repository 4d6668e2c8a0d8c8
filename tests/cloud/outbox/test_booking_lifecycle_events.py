"""Booking modified, reminder, waitlist promoted and no-show released: each written to the outbox in
the transaction of its change (rows checked as the owner role), and a reminder delivered by the
worker to the real SMTP server."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cloud.booking.jobs import run_booking_jobs
from cloud.identity.roles import Role
from cloud.notifications.kinds import ChannelKind
from cloud.notifications.models import OutboxRecord
from cloud.notifications.worker import OutboxWorker
from tests.cloud.booking.conftest import build_library
from tests.cloud.booking.helpers import ALL_DAY, hourly, local_day, now_slot, slot
from tests.cloud.outbox.conftest import Inbox, email_channel


def _rows(session: Session, user_id: uuid.UUID, kind: str) -> list[OutboxRecord]:
    session.expire_all()
    return list(
        session.scalars(
            select(OutboxRecord)
            .where(OutboxRecord.recipient_user_id == user_id, OutboxRecord.kind == kind)
            .order_by(OutboxRecord.created_at)
        )
    )


async def test_modification_queues_booking_modified_each_time(
    cloud_client: httpx.AsyncClient, make_account: Any, owner_session: Session
) -> None:
    owner, student = await make_account(Role.LIBRARY_OWNER), await make_account(Role.STUDENT)
    setup = await build_library(cloud_client, owner)
    booked = await cloud_client.post(
        "/api/v1/bookings",
        json=hourly(setup, "A1", slot(1, "08:00", "09:00"), "Free hour"),
        headers=student.headers,
    )
    url = f"/api/v1/bookings/{booked.json()['id']}"
    moved = await cloud_client.patch(url, json={"seat_id": setup.seat("A2")["id"]}, headers=student.headers)
    assert moved.status_code == 200, moved.text
    [row] = _rows(owner_session, student.id, "booking_modified")
    assert row.context["seat_label"] == "A2" and row.channel == ChannelKind.EMAIL
    starts_at = dt.datetime.fromisoformat(row.context["starts_at"])
    assert starts_at == dt.datetime.fromisoformat(slot(1, "08:00", "09:00")["start"])
    later = slot(1, "10:00", "11:00")
    assert (await cloud_client.patch(url, json=later, headers=student.headers)).status_code == 200
    unchanged = await cloud_client.patch(url, json=later, headers=student.headers)
    assert unchanged.status_code == 200
    assert len(_rows(owner_session, student.id, "booking_modified")) == 2  # a no-op move sends nothing


async def test_one_reminder_per_booking_delivered_by_email_before_the_start(
    cloud_app: FastAPI,
    cloud_client: httpx.AsyncClient,
    make_account: Any,
    owner_session: Session,
    app_sessions: sessionmaker[Session],
    smtp_server: Inbox,
) -> None:
    owner, student = await make_account(Role.LIBRARY_OWNER), await make_account(Role.STUDENT)
    setup = await build_library(cloud_client, owner, name="Gyan Deep")
    times = slot(1, "10:00", "11:00")
    booked = await cloud_client.post(
        "/api/v1/bookings", json=hourly(setup, "A3", times, "Free hour"), headers=student.headers
    )
    assert booked.status_code == 201, booked.text
    start = dt.datetime.fromisoformat(times["start"])
    assert run_booking_jobs(cloud_app.state, start - dt.timedelta(minutes=45)).reminders == 0  # too early
    assert run_booking_jobs(cloud_app.state, start - dt.timedelta(minutes=25)).reminders == 1
    assert run_booking_jobs(cloud_app.state, start - dt.timedelta(minutes=20)).reminders == 0  # deduped
    [row] = _rows(owner_session, student.id, "booking_reminder")
    assert row.expires_at == start and row.status == "pending"

    worker = OutboxWorker(
        app_sessions,
        {ChannelKind.EMAIL: email_channel(smtp_server.port)},
        clock=lambda: start - dt.timedelta(minutes=20),
    )
    assert await worker.drain() == 2  # the confirmation and the reminder
    subjects = [message["Subject"] for message in smtp_server.to(student.email)]
    assert any(subject.startswith("Starts at") and "A3" in subject for subject in subjects), subjects
    assert _rows(owner_session, student.id, "booking_reminder")[0].status == "sent"

    moved = slot(1, "13:00", "14:00")
    url = f"/api/v1/bookings/{booked.json()['id']}"
    assert (await cloud_client.patch(url, json=moved, headers=student.headers)).status_code == 200
    new_start = dt.datetime.fromisoformat(moved["start"])
    assert run_booking_jobs(cloud_app.state, new_start - dt.timedelta(minutes=25)).reminders == 1
    assert len(_rows(owner_session, student.id, "booking_reminder")) == 2  # reminded again for the new time


async def test_waitlist_offer_and_no_show_release_queue_their_messages(
    cloud_app: FastAPI, cloud_client: httpx.AsyncClient, make_account: Any, owner_session: Session
) -> None:
    owner = await make_account(Role.LIBRARY_OWNER)
    # open around the clock: the no-show part books the coming hour, whatever the time of day
    setup = await build_library(cloud_client, owner, extra={"opening_hours": ALL_DAY})
    day, day_pass = local_day(2).isoformat(), setup.plans["Day pass"]["id"]
    bookings = []
    for seat in setup.seats:
        holder = await make_account(Role.STUDENT)
        body = {"plan_id": day_pass, "seat_id": seat["id"], "date": day}
        booking = (await cloud_client.post("/api/v1/bookings", json=body, headers=holder.headers)).json()
        await cloud_client.post(f"/api/v1/bookings/{booking['id']}/confirm", headers=owner.headers)  # cash
        bookings.append(booking)
    waiting = await make_account(Role.STUDENT)
    joined = await cloud_client.post(
        f"/api/v1/libraries/{setup.id}/waitlist",
        json={"plan_id": day_pass, "date": day},
        headers=waiting.headers,
    )
    assert joined.status_code == 201, joined.text
    await cloud_client.post(f"/api/v1/bookings/{bookings[0]['id']}/cancel", headers=owner.headers)

    latecomer = await make_account(Role.STUDENT)
    no_show = await cloud_client.post(
        "/api/v1/bookings", json=hourly(setup, "C1", now_slot(), "Free hour"), headers=latecomer.headers
    )
    assert no_show.status_code == 201, no_show.text
    later = dt.datetime.fromisoformat(now_slot()["start"]) + dt.timedelta(minutes=16)
    report = run_booking_jobs(cloud_app.state, later)
    assert (report.waitlist_offers, report.no_shows) == (1, 1)

    [offer] = _rows(owner_session, waiting.id, "waitlist_promoted")
    [entry] = (await cloud_client.get("/api/v1/waitlist", headers=waiting.headers)).json()
    held = (await cloud_client.get(f"/api/v1/bookings/{entry['booking_id']}", headers=waiting.headers)).json()
    deadline = dt.datetime.fromisoformat(held["hold_expires_at"])
    assert dt.datetime.fromisoformat(offer.context["hold_until"]) == deadline == offer.expires_at
    assert offer.context["action_url"].endswith(held["id"]) and offer.context["seat_label"] == "A1"

    [released] = _rows(owner_session, latecomer.id, "no_show_released")
    assert released.context["seat_label"] == "C1"
    assert run_booking_jobs(cloud_app.state, later).no_shows == 0
    assert len(_rows(owner_session, latecomer.id, "no_show_released")) == 1
