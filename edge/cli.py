"""`studyspot edge ...`: run the agent, manage devices. Heavy imports stay inside the commands."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer

app = typer.Typer(help="StudySpot edge agent (runs on the library's Raspberry Pi).", no_args_is_help=True)
device_app = typer.Typer(help="The device registry.", no_args_is_help=True)
app.add_typer(device_app, name="device")

CONFIG_OPTION = typer.Option(..., "--config", "-c", help="TOML config file (see edge/example-config.toml)")


def _load(config_path: Path):  # type: ignore[no-untyped-def]
    from edge.config import ConfigError, load_config

    try:
        return load_config(config_path)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(code=2) from None


def _configure_logging(level: str) -> None:
    import logging

    logging.basicConfig(
        level=level,
        format='ts=%(asctime)s level=%(levelname)s logger=%(name)s msg="%(message)s"',
    )
    # amqtt and its state machine narrate every connection at INFO; keep the agent's log readable.
    for noisy in ("amqtt", "transitions"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))


@app.command()
def run(config: Path = CONFIG_OPTION) -> None:
    """Run the agent: broker, devices, check-in, rules and kiosk, until Ctrl-C."""
    import asyncio

    from edge.memory import tune_agent_process

    tune_agent_process()
    from edge.agent import Agent

    settings = _load(config)
    _configure_logging(settings.log_level)
    asyncio.run(Agent(settings).run_forever())


@app.command()
def enroll(
    config: Path = CONFIG_OPTION,
    cloud: str = typer.Option(..., "--cloud", help="Cloud base URL, e.g. https://api.studyspot.example"),
    token: str = typer.Option(..., "--token", help="One-time enrolment token from the owner's dashboard."),
    ca_file: Path | None = typer.Option(None, "--ca-file", help="Pin the cloud's CA certificate."),
) -> None:
    """Enrol this agent with the cloud: make its signing key, register it, store ids and pass keys."""
    from edge.enroll import EnrollmentFailed
    from edge.enroll import enroll as enroll_with_cloud
    from edge.store import Store

    settings = _load(config)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(settings.store_path)
    try:
        enrolled = enroll_with_cloud(cloud, token, store, ca_file=str(ca_file) if ca_file else None)
    except EnrollmentFailed as exc:
        typer.echo(f"enrolment failed: {exc}", err=True)
        raise typer.Exit(code=1) from None
    finally:
        store.close()
    if str(enrolled.library_id) != settings.library_id:
        typer.echo(
            f"warning: enrolled for library {enrolled.library_id}, but the config says "
            f"{settings.library_id}; sync stays off until they match",
            err=True,
        )
    typer.echo(f"enrolled device {enrolled.device_id} for library {enrolled.library_id}")


@app.command("check-config")
def check_config(config: Path = CONFIG_OPTION) -> None:
    """Validate a config file and exit."""
    settings = _load(config)
    typer.echo(f"ok: library {settings.library_id}, {len(settings.devices)} device(s)")


SECRETS_OPTION = typer.Option(
    None, "--secrets", help="ESPHome secrets.yaml to write the device's MQTT credentials into"
)


@device_app.command("add")
def device_add(
    device_id: str,
    kind: str = typer.Option(..., help="door, scanner, env, energy, relay or seat"),
    prefix: str | None = typer.Option(None, help="ESPHome topic_prefix (default: the id)"),
    door: str | None = typer.Option(None, help="for a scanner: the door it opens"),
    direction: str = typer.Option("in", help="for a scanner: in or out"),
    secrets: Path | None = SECRETS_OPTION,
    config: Path = CONFIG_OPTION,
) -> None:
    """Register a device with fresh MQTT credentials (shown once, or written to --secrets)."""
    from edge.devices import enroll_device

    with _store(config) as store:
        if store.device(device_id) is not None:
            typer.echo(
                f"error: device {device_id!r} exists; use `device rotate` for new credentials", err=True
            )
            raise typer.Exit(code=2)
        try:
            enrolled = enroll_device(
                store, device_id=device_id, kind=kind, topic_prefix=prefix, door_id=door, direction=direction
            )
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(code=2) from None
    _hand_out_credentials(enrolled, secrets)


@device_app.command("rotate")
def device_rotate(
    device_id: str, secrets: Path | None = SECRETS_OPTION, config: Path = CONFIG_OPTION
) -> None:
    """New MQTT credentials for a device; the old password is refused from now on."""
    from edge.provisioning import ProvisioningError, rotate_device

    with _store(config) as store:
        try:
            enrolled = rotate_device(store, device_id)
        except ProvisioningError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(code=2) from None
    _hand_out_credentials(enrolled, secrets)


@device_app.command("remove")
def device_remove(device_id: str, config: Path = CONFIG_OPTION) -> None:
    """Forget a device: its credentials stop working; its history stays."""
    from edge.provisioning import ProvisioningError, remove_device

    with _store(config) as store:
        try:
            remove_device(store, device_id)
        except ProvisioningError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(code=2) from None
    typer.echo(f"removed {device_id}")


@device_app.command("list")
def device_list(config: Path = CONFIG_OPTION) -> None:
    """The device registry: id, kind, topic prefix, MQTT user, online, last seen."""
    with _store(config) as store:
        rows = store.device_status()
    for row in rows:
        typer.echo(json.dumps(row, default=str))


def _hand_out_credentials(enrolled: Any, secrets: Path | None) -> None:
    from edge.provisioning import secrets_fragment, write_secrets

    fragment = secrets_fragment(enrolled)
    if secrets is not None:
        write_secrets(secrets, fragment)
        typer.echo(f"{enrolled.record.id}: credentials written to {secrets} as {', '.join(fragment)}")
    else:
        typer.echo("\n".join(f"{key}: {json.dumps(value)}" for key, value in fragment.items()))


@contextlib.contextmanager
def _store(config_path: Path) -> Iterator[Any]:
    from edge.store import Store

    settings = _load(config_path)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(settings.store_path)
    try:
        yield store
    finally:
        store.close()


@device_app.command("mosquitto-files")
def device_mosquitto_files(
    out: Path = typer.Option(..., help="directory for passwd and acl"),
    config: Path = CONFIG_OPTION,
) -> None:
    """Write a Mosquitto password file and ACL from the device registry."""
    from edge.mosquitto import write_mosquitto_files
    from edge.store import Store

    settings = _load(config)
    if not settings.agent_password:
        typer.echo("error: set agent_password in the config so the agent can log in to Mosquitto", err=True)
        raise typer.Exit(code=2)
    store = Store(settings.store_path)
    try:
        files = write_mosquitto_files(
            store, out, agent_username=settings.agent_username, agent_password=settings.agent_password
        )
    finally:
        store.close()
    typer.echo(f"wrote {files.passwd} and {files.acl}")


@app.command("demo-devices")
def demo_devices(
    out: Path = typer.Option(..., help="write the demo.json `devices` entries here (JSON list)"),
    config: Path = CONFIG_OPTION,
) -> None:
    """Enrol the demo's simulated devices in the agent's store with fresh credentials."""
    from edge.simulator import prepare_demo_devices

    settings = _load(config)
    devices = prepare_demo_devices(settings.store_path)
    out.write_text(json.dumps([device.demo_entry() for device in devices], indent=2), encoding="utf-8")
    typer.echo(f"enrolled {len(devices)} demo devices; wrote {out}")


@app.command()
def simulate(
    devices_json: Path = typer.Option(..., "--devices", help="JSON list written by `demo-devices`"),
    host: str = typer.Option("127.0.0.1", help="MQTT broker host"),
    port: int = typer.Option(1883, help="MQTT broker port"),
) -> None:
    """Run the simulated ESPHome devices against a broker until Ctrl-C."""
    import asyncio
    import signal

    from edge.simulator import SimDevice

    entries = json.loads(devices_json.read_text(encoding="utf-8"))
    devices = [
        SimDevice(
            id=e["id"],
            kind=e["kind"],
            topic_prefix=e["topic_prefix"],
            username=e["username"],
            password=e["password"],
        )
        for e in entries
    ]

    async def main() -> None:
        from edge.simulator import run_simulated_devices

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await run_simulated_devices(host, port, devices, stop)

    asyncio.run(main())
