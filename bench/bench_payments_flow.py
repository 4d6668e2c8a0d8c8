"""The whole payment flow through the cloud: booking -> order -> the fake gateway pays -> its signed
webhook -> booking confirmed -> pass issued (p50/p99), and signed webhooks applied per second by the
cloud (verify, dedupe, capture, invoice number, confirm, outbox) at 8 concurrent deliveries.

`bench_payments.py` measures the gateway half alone (parsing, fake round trip, invoice PDF); this
one runs the real app behind uvicorn on a throwaway embedded PostgreSQL, with the fake gateways over
HTTP, as the demo does.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import socket
import threading
import time
import uuid
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from sqlalchemy import text

from bench.cloud_rig import bench_cloud
from bench.harness import BenchResult, summarize
from cloud.app import close_app, create_app
from cloud.db import platform_scope
from cloud.identity import service as identity
from cloud.identity.roles import Role, permissions_of
from cloud.payments.fake_gateway import RunningFakeGateways, start_fake_gateways
from cloud.payments.gateways import RazorpayGateway, StripeGateway
from cloud.payments.gateways.razorpay import sign_webhook as sign_razorpay
from cloud.tenancy import service as tenancy

FLOWS = 60
WEBHOOKS = 300
WEBHOOK_CLIENTS = 8
SEATS = 40
STUDENTS = 8  # each may hold at most 100 active bookings
PRICE_MINOR = 5000


def _serve(app: FastAPI) -> tuple[uvicorn.Server, threading.Thread, str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    return server, thread, f"http://127.0.0.1:{sock.getsockname()[1]}"


def _seed(app: FastAPI) -> tuple[str, list[str], list[dict[str, str]]]:
    """A 24-hour library with SEATS seats, a paid hourly plan and STUDENTS student tokens."""
    with app.state.session_factory() as session:
        platform_scope(session)
        tenant, _ = tenancy.create_tenant(
            session, name="Pay bench", owner_email="owner@paybench.example",
            owner_password="bench owner pw 1", actor_id=None,
        )  # fmt: skip
        library = tenancy.create_library(session, tenant.id, name="Pay Library", timezone="Asia/Kolkata")
        seats = tenancy.add_seats(session, library, [f"P{i:03d}" for i in range(SEATS)])
        session.execute(
            text("UPDATE libraries SET max_active_bookings = 100, booking_window_days = 365 WHERE id = :id"),
            {"id": library.id},
        )
        plan_id = session.execute(
            text(
                "INSERT INTO plans (tenant_id, library_id, name, kind, price_minor, currency) "
                "VALUES (:t, :l, 'Hourly', 'hourly', :price, 'INR') RETURNING id"
            ),
            {"t": tenant.id, "l": library.id, "price": PRICE_MINOR},
        ).scalar_one()
        students = [
            identity.create_user(session, f"payer{i}@paybench.example", None) for i in range(STUDENTS)
        ]
        session.commit()
        tokens = [
            app.state.tokens.issue(student.id, None, Role.STUDENT, permissions_of(Role.STUDENT))
            for student in students
        ]
        return (
            str(plan_id),
            [str(seat.id) for seat in seats],
            [{"Authorization": f"Bearer {t}"} for t in tokens],
        )


class _Slots:
    """One-hour slots, each on its own (seat, hour): no two bookings of the bench collide."""

    def __init__(self, seats: list[str]) -> None:
        self.seats = seats
        self.day0 = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        self.n = 0

    def next(self, plan_id: str) -> dict[str, str]:
        seat, hour = self.seats[self.n % len(self.seats)], self.n // len(self.seats)
        self.n += 1
        start = self.day0 + dt.timedelta(hours=hour)
        end = start + dt.timedelta(hours=1)
        return {"plan_id": plan_id, "seat_id": seat, "start": start.isoformat(), "end": end.isoformat()}


async def _book_and_order(client: httpx.AsyncClient, body: dict[str, str], headers: dict[str, str]) -> Any:
    booking = await client.post("/api/v1/bookings", json=body, headers=headers)
    if booking.status_code != 201:
        raise RuntimeError(f"booking failed: {booking.status_code} {booking.text}")
    order = await client.post(
        "/api/v1/payments/orders",
        json={"booking_id": booking.json()["id"], "provider": "razorpay"},
        headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
    )
    if order.status_code != 201:
        raise RuntimeError(f"order failed: {order.status_code} {order.text}")
    return booking.json()["id"], order.json()


async def _one_flow(
    client: httpx.AsyncClient, fakes: RunningFakeGateways, body: dict[str, str], headers: dict[str, str]
) -> float:
    began = time.perf_counter()
    booking_id, order = await _book_and_order(client, body, headers)
    paid = await client.post(f"{fakes.base_url}/_fake/razorpay/orders/{order['order_ref']}/pay")
    paid.raise_for_status()
    deadline = time.monotonic() + 30
    while True:  # the webhook is the source of truth: wait for it, do not call /verify
        status = (await client.get(f"/api/v1/bookings/{booking_id}", headers=headers)).json()["status"]
        if status == "confirmed":
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"booking {booking_id} not confirmed")
        await asyncio.sleep(0.002)
    issued = await client.get(f"/api/v1/bookings/{booking_id}/pass", headers=headers)
    if issued.status_code != 200:
        raise RuntimeError(f"pass failed: {issued.status_code} {issued.text}")
    return time.perf_counter() - began


def _captured_event(order: dict[str, Any], secret: str) -> tuple[bytes, dict[str, str]]:
    payment = {
        "id": f"pay_{uuid.uuid4().hex[:14]}", "amount": order["amount_minor"], "currency": "INR",
        "order_id": order["order_ref"], "status": "captured",
    }  # fmt: skip
    body = json.dumps(
        {"event": "payment.captured", "payload": {"payment": {"entity": payment}},
         "created_at": int(time.time())}
    ).encode()  # fmt: skip
    headers = {
        "X-Razorpay-Signature": sign_razorpay(body, secret),
        "x-razorpay-event-id": f"evt_{uuid.uuid4().hex[:14]}",
        "Content-Type": "application/json",
    }
    return body, headers


async def _webhook_rate(
    client: httpx.AsyncClient,
    fakes: RunningFakeGateways,
    slots: _Slots,
    plan_id: str,
    headers: list[dict[str, str]],
) -> tuple[float, list[float]]:
    orders = [
        (await _book_and_order(client, slots.next(plan_id), headers[n % STUDENTS]))[1]
        for n in range(WEBHOOKS)
    ]
    secret = fakes.config.razorpay_webhook_secret
    events = [_captured_event(order, secret) for order in orders]
    latencies: list[float] = []

    async def deliver(chunk: list[tuple[bytes, dict[str, str]]]) -> None:
        for body, event_headers in chunk:
            began = time.perf_counter()
            response = await client.post(
                "/api/v1/payments/webhooks/razorpay", content=body, headers=event_headers
            )
            latencies.append(time.perf_counter() - began)
            if response.json().get("status") != "applied":
                raise RuntimeError(f"webhook not applied: {response.text}")

    began = time.perf_counter()
    await asyncio.gather(*(deliver(events[i::WEBHOOK_CLIENTS]) for i in range(WEBHOOK_CLIENTS)))
    return len(events) / (time.perf_counter() - began), latencies


async def _measure(url: str, app: FastAPI, fakes: RunningFakeGateways) -> list[BenchResult]:
    plan_id, seats, headers = await asyncio.to_thread(_seed, app)
    slots = _Slots(seats)
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        for n in range(5):  # warm-up
            await _one_flow(client, fakes, slots.next(plan_id), headers[n % STUDENTS])
        flows = [
            await _one_flow(client, fakes, slots.next(plan_id), headers[n % STUDENTS]) for n in range(FLOWS)
        ]
        rate, latencies = await _webhook_rate(client, fakes, slots, plan_id, headers)
    flow_median, flow_p99 = summarize(flows)
    hook_median, hook_p99 = summarize(latencies)
    return [
        BenchResult(
            "booking -> order -> fake Razorpay pays -> webhook -> confirmed -> pass (HTTP)",
            flow_median * 1e3, flow_p99 * 1e3, "ms", "p99 <= 1000 ms",
        ),
        BenchResult(
            f"signed webhook applied by the cloud, {WEBHOOK_CLIENTS} concurrent deliveries",
            hook_median * 1e3, hook_p99 * 1e3, "ms",
        ),
        BenchResult(f"webhooks applied per second, {WEBHOOK_CLIENTS} concurrent", rate, rate, "webhooks/s"),
    ]  # fmt: skip


def run() -> list[BenchResult]:
    with bench_cloud("bench_payflow") as settings:
        app = create_app(settings)
        server, thread, url = _serve(app)
        fakes = start_fake_gateways(webhook_target_url=f"{url}/api/v1/payments/webhooks")
        app.state.payment_gateways = {
            "razorpay": RazorpayGateway(fakes.razorpay_config()),
            "stripe": StripeGateway(fakes.stripe_config()),
        }
        try:
            return asyncio.run(_measure(url, app, fakes))
        finally:
            fakes.stop()
            server.should_exit = True
            thread.join(10)
            asyncio.run(_close(app))


async def _close(app: FastAPI) -> None:
    for gateway in app.state.payment_gateways.values():
        await gateway.aclose()
    await close_app(app)


if __name__ == "__main__":
    for result in run():
        print(f"{result.figure}: median {result.median:.2f} p99 {result.p99:.2f} {result.unit}")
