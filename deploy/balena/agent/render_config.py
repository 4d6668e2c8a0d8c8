"""Write the edge agent's TOML config from balena device variables (STUDYSPOT_*).

balenaCloud configures a device through environment variables; the agent reads one TOML file
(`studyspot edge run --config /data/edge.toml`). This script is the bridge, run by entrypoint.sh
on every container start, so the dashboard stays the source of truth. Every variable it reads is
in ENV_SETTINGS and documented in docs/balena.md.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

TomlValue = str | int | float | bool | list[str]


class RenderError(ValueError):
    """A device variable is missing or malformed; the message names it."""


def _text(value: str) -> str:
    return value


def _integer(value: str) -> int:
    return int(value)


def _number(value: str) -> float:
    return float(value)


def _text_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _boolean(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"not a boolean: {value!r} (true/false, 1/0, yes/no, on/off)")


@dataclass(frozen=True)
class EnvSetting:
    variable: str
    key: str  # dotted key in the agent's TOML config
    parse: Callable[[str], TomlValue]
    description: str


ENV_SETTINGS: tuple[EnvSetting, ...] = (
    EnvSetting(
        "STUDYSPOT_LIBRARY_ID", "library_id", _text, "Library UUID from the cloud dashboard (required)"
    ),
    EnvSetting("STUDYSPOT_DATA_DIR", "data_dir", _text, "Store, keys and broker files; the named volume"),
    EnvSetting(
        "STUDYSPOT_MQTT_URL", "mqtt_url", _text, "External broker, e.g. mqtt://user:pw@127.0.0.1:1884"
    ),
    EnvSetting("STUDYSPOT_AGENT_USERNAME", "agent_username", _text, "The agent's own MQTT user"),
    EnvSetting("STUDYSPOT_AGENT_PASSWORD", "agent_password", _text, "The agent's MQTT password"),
    EnvSetting("STUDYSPOT_LOG_LEVEL", "log_level", _text, "DEBUG, INFO, WARNING or ERROR"),
    EnvSetting("STUDYSPOT_BROKER_PORT", "broker.port", _integer, "Port of the embedded MQTT broker"),
    EnvSetting("STUDYSPOT_KIOSK_PORT", "kiosk.port", _integer, "Port of the kiosk web page and /health"),
    EnvSetting("STUDYSPOT_KIOSK_ENABLED", "kiosk.enabled", _boolean, "Serve the kiosk page"),
    EnvSetting("STUDYSPOT_UNLOCK_COMMAND", "checkin.unlock_command", _text, "UNLOCK or OPEN"),
    EnvSetting("STUDYSPOT_RELOCK_SECONDS", "checkin.relock_seconds", _number, "Door release time"),
    EnvSetting("STUDYSPOT_ANTI_PASSBACK", "checkin.anti_passback", _boolean, "Refuse a second entry"),
    EnvSetting("STUDYSPOT_GPIO_ENABLED", "gpio.enabled", _boolean, "A door wired to the Pi's own pins"),
    EnvSetting(
        "STUDYSPOT_GPIO_PIN_FACTORY", "gpio.pin_factory", _text, "gpiozero pin factory (lgpio on a Pi)"
    ),
    EnvSetting("STUDYSPOT_GPIO_STRIKE_PIN", "gpio.strike_pin", _integer, "BCM pin of the strike relay"),
    EnvSetting(
        "STUDYSPOT_GPIO_EXIT_BUTTON_PIN", "gpio.exit_button_pin", _integer, "BCM pin of the exit button"
    ),
    EnvSetting("STUDYSPOT_GPIO_CONTACT_PIN", "gpio.contact_pin", _integer, "BCM pin of the door contact"),
    EnvSetting("STUDYSPOT_GPIO_PIR_PIN", "gpio.pir_pin", _integer, "BCM pin of a PIR sensor"),
    EnvSetting("STUDYSPOT_TIMEZONE", "rules.timezone", _text, "Library time zone, e.g. Asia/Kolkata"),
    EnvSetting("STUDYSPOT_OPEN_AT", "rules.open_at", _text, "Opening time HH:MM (local)"),
    EnvSetting("STUDYSPOT_CLOSE_AT", "rules.close_at", _text, "Closing time HH:MM (local)"),
    EnvSetting(
        "STUDYSPOT_EMPTY_ROOM_MINUTES",
        "rules.empty_room_minutes",
        _number,
        "Minutes before an empty hall powers down",
    ),
    EnvSetting(
        "STUDYSPOT_DOOR_HELD_OPEN_SECONDS",
        "rules.door_held_open_seconds",
        _number,
        "Door held open alert after",
    ),
    EnvSetting(
        "STUDYSPOT_COMFORT_RELAYS", "rules.comfort_relays", _text_list, "Relay ids for lights/AC, comma list"
    ),
    EnvSetting(
        "STUDYSPOT_VENTILATION_RELAY", "rules.ventilation_relay", _text, "Relay id of the ventilation fan"
    ),
    EnvSetting("STUDYSPOT_CO2_THRESHOLD_PPM", "rules.co2_threshold_ppm", _number, "Ventilation alert level"),
    EnvSetting(
        "STUDYSPOT_ENERGY_DAILY_BUDGET_KWH", "rules.energy_daily_budget_kwh", _number, "Daily energy alert"
    ),
)
DEVICES_VARIABLE = "STUDYSPOT_DEVICES"
# `mosquitto` makes the agent use the optional Mosquitto service (docker-compose.yml) on port 1883.
BROKER_VARIABLE = "STUDYSPOT_BROKER"
MOSQUITTO_PORT = 1883
DEVICE_KINDS = ("door", "scanner", "env", "energy", "relay", "seat")
AGENT_PASSWORD_FILE = "agent-mqtt-password"  # noqa: S105 - a file name, not a password


def _set_dotted(config: dict[str, Any], dotted: str, value: TomlValue) -> None:
    *sections, leaf = dotted.split(".")
    target = config
    for section in sections:
        target = target.setdefault(section, {})
    target[leaf] = value


def parse_devices(text: str) -> list[dict[str, str]]:
    """`door:door-1,env:env-1` → devices whose id and topic prefix are the ESPHome node name."""
    devices = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        kind, separator, name = item.partition(":")
        if not separator or kind not in DEVICE_KINDS or not name:
            raise RenderError(
                f"{DEVICES_VARIABLE}: {item!r} is not <kind>:<node name> ({', '.join(DEVICE_KINDS)})"
            )
        devices.append({"id": name, "kind": kind, "topic_prefix": name})
    return devices


def build_config(environ: Mapping[str, str]) -> dict[str, Any]:
    """The config as a dict; only variables that are set (and not empty) appear in it."""
    config: dict[str, Any] = {}
    for setting in ENV_SETTINGS:
        raw = environ.get(setting.variable, "").strip()
        if not raw:
            continue
        try:
            _set_dotted(config, setting.key, setting.parse(raw))
        except ValueError as exc:
            raise RenderError(f"{setting.variable}: {exc}") from exc
    if "library_id" not in config:
        raise RenderError("STUDYSPOT_LIBRARY_ID is not set: copy the library id from the cloud dashboard")
    devices = parse_devices(environ.get(DEVICES_VARIABLE, ""))
    if devices:
        config["devices"] = devices
    return config


def ensure_agent_password(config: dict[str, Any], data_dir: Path) -> None:
    """Without STUDYSPOT_AGENT_PASSWORD, keep one random password on the volume across restarts."""
    if "agent_password" in config:
        return
    stored = data_dir / AGENT_PASSWORD_FILE
    if not stored.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        stored.write_text(secrets.token_urlsafe(24), encoding="utf-8")
        stored.chmod(0o600)
    config["agent_password"] = stored.read_text(encoding="utf-8").strip()


def _toml_value(value: TomlValue) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid TOML basic string


def to_toml(config: Mapping[str, Any]) -> str:
    """TOML for this config's shape: scalars, one level of tables, and the [[devices]] array."""
    lines = ["# Written by deploy/balena/agent/render_config.py from STUDYSPOT_* variables: do not edit."]
    scalars = {key: value for key, value in config.items() if not isinstance(value, dict | list)}
    lines += [f"{key} = {_toml_value(value)}" for key, value in scalars.items()]
    for section, table in config.items():
        if isinstance(table, dict):
            lines += ["", f"[{section}]", *(f"{key} = {_toml_value(value)}" for key, value in table.items())]
    for device in config.get("devices", []):
        lines += ["", "[[devices]]", *(f"{key} = {_toml_value(value)}" for key, value in device.items())]
    return "\n".join(lines) + "\n"


def use_mosquitto(environ: Mapping[str, str]) -> bool:
    choice = environ.get(BROKER_VARIABLE, "embedded").strip().lower() or "embedded"
    if choice not in ("embedded", "mosquitto"):
        raise RenderError(f"{BROKER_VARIABLE}: {choice!r} is not embedded or mosquitto")
    return choice == "mosquitto"


def point_at_mosquitto(config: dict[str, Any]) -> None:
    """The agent logs in to the local Mosquitto with its own credentials (unless told otherwise)."""
    if "mqtt_url" in config:
        return
    username = quote(str(config.get("agent_username", "studyspot-agent")), safe="")
    password = quote(str(config["agent_password"]), safe="")
    config["mqtt_url"] = f"mqtt://{username}:{password}@127.0.0.1:{MOSQUITTO_PORT}"


def render(environ: Mapping[str, str], output: Path) -> Path:
    config = build_config(environ)
    data_dir = Path(str(config.get("data_dir", output.parent)))
    config.setdefault("data_dir", str(data_dir))
    ensure_agent_password(config, data_dir)
    if use_mosquitto(environ):
        point_at_mosquitto(config)
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_suffix(".tmp")
    partial.write_text(to_toml(config), encoding="utf-8")
    partial.chmod(0o600)
    partial.replace(output)
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--output", type=Path, default=Path("/data/edge.toml"))
    args = parser.parse_args(argv)
    try:
        render(os.environ, args.output)
    except RenderError as exc:
        print(f"studyspot: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
