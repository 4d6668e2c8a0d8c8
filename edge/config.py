"""Edge agent configuration: a TOML file validated into a pydantic model.

Every error names the offending key and, when it can be found, the line of the file, so a
technician at the library can fix the file; the agent refuses to start on any error.
"""

from __future__ import annotations

import re
import tomllib
import uuid
from datetime import time
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


class ConfigError(Exception):
    """The configuration file is unusable; the message says where and why."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BrokerSettings(_Section):
    """The embedded amqtt broker (ignored when `mqtt_url` points at an external broker)."""

    host: str = "0.0.0.0"
    port: int = Field(default=1883, ge=0, le=65535)
    tls_port: int | None = Field(default=None, ge=0, le=65535)
    certfile: Path | None = None
    keyfile: Path | None = None
    # a device publishing faster than this is disconnected, alerted on and refused for the cooldown
    client_messages_per_second: int = Field(default=200, ge=0)  # 0: no limit; devices send a few per second
    flood_cooldown_seconds: float = Field(default=60.0, ge=0)

    @model_validator(mode="after")
    def _tls_needs_files(self) -> BrokerSettings:
        if self.tls_port is not None and (self.certfile is None or self.keyfile is None):
            raise ValueError("tls_port needs both certfile and keyfile")
        for path in (self.certfile, self.keyfile):
            if path is not None and not path.is_file():
                raise ValueError(f"TLS file not found: {path}")
        return self


class KioskSettings(_Section):
    host: str = "0.0.0.0"
    port: int = Field(default=8080, ge=0, le=65535)
    enabled: bool = True
    # The library's booking timing, as in the cloud (passes open this early; no-show after start + grace).
    checkin_open_minutes: int = Field(default=15, ge=0, le=240)
    no_show_grace_minutes: int = Field(default=15, ge=1, le=240)


class CheckinSettings(_Section):
    skew_seconds: int = Field(default=120, ge=0, le=3600)
    relock_seconds: float = Field(default=5.0, gt=0, le=300)
    lock_confirm_seconds: float = Field(default=2.0, gt=0, le=60)
    anti_passback: bool = True
    unlock_command: Literal["UNLOCK", "OPEN"] = "UNLOCK"
    max_scan_bytes: int = Field(default=512, ge=64, le=4096)


class DeviceSettings(_Section):
    """A device declared in the config (metadata only; credentials live hashed in the store)."""

    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    kind: Literal["door", "scanner", "env", "energy", "relay", "seat"]
    topic_prefix: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")
    door: str | None = None
    direction: Literal["in", "out"] = "in"
    zone: str | None = None


class GpioSettings(_Section):
    """A door wired straight to the Pi's pins, driven through gpiozero."""

    enabled: bool = False
    pin_factory: Literal["mock", "lgpio", "rpigpio", "native"] = "mock"
    door_id: str = "gpio-door"
    strike_pin: int = 17
    exit_button_pin: int = 27
    pir_pin: int = 22
    contact_pin: int = 23


class SyncSettingsSection(_Section):
    """The link to the cloud (used once the agent is enrolled with `studyspot edge enroll`)."""

    enabled: bool = True
    interval_seconds: float = Field(default=30, ge=1, le=3600)
    ca_file: Path | None = None

    @field_validator("ca_file")
    @classmethod
    def _ca_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"CA file not found: {value}")
        return value


class RulesSettings(_Section):
    timezone: str = "UTC"
    open_at: time | None = None
    close_at: time | None = None
    empty_room_minutes: float = Field(default=15, gt=0)
    co2_threshold_ppm: float = Field(default=1200, gt=0)
    door_held_open_seconds: float = Field(default=60, gt=0)
    energy_daily_budget_kwh: float | None = Field(default=None, gt=0)
    comfort_relays: list[str] = Field(default_factory=list)
    ventilation_relay: str | None = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # OSError: a name too long for a path
            raise ValueError(f"unknown time zone {value[:64]!r}") from exc
        return value


class EdgeConfig(_Section):
    library_id: str = Field(min_length=1, max_length=64)
    data_dir: Path = Path(".studyspot/edge")
    mqtt_url: str | None = None
    agent_username: str = "studyspot-agent"
    agent_password: str | None = None
    pass_keys: dict[str, str] = Field(default_factory=dict)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    broker: BrokerSettings = Field(default_factory=BrokerSettings)
    kiosk: KioskSettings = Field(default_factory=KioskSettings)
    checkin: CheckinSettings = Field(default_factory=CheckinSettings)
    gpio: GpioSettings = Field(default_factory=GpioSettings)
    rules: RulesSettings = Field(default_factory=RulesSettings)
    sync: SyncSettingsSection = Field(default_factory=SyncSettingsSection)
    devices: list[DeviceSettings] = Field(default_factory=list)

    @field_validator("mqtt_url")
    @classmethod
    def _mqtt_url_shape(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError("mqtt_url must look like mqtt://user:password@host:port")
        return value

    @field_validator("pass_keys")
    @classmethod
    def _keys_decode(cls, value: dict[str, str]) -> dict[str, str]:
        from shared.passes import public_key_from_text

        for key_id, text in value.items():
            try:
                public_key_from_text(text)
            except Exception as exc:
                raise ValueError(f"pass key {key_id!r} is not a base64url Ed25519 public key") from exc
        return value

    @model_validator(mode="after")
    def _scanners_name_doors(self) -> EdgeConfig:
        ids = [device.id for device in self.devices]
        if len(ids) != len(set(ids)):
            raise ValueError("device ids must be unique")
        doors = {device.id for device in self.devices if device.kind == "door"}
        for device in self.devices:
            if device.kind == "scanner" and device.door is not None and device.door not in doors:
                raise ValueError(f"scanner {device.id!r} names unknown door {device.door!r}")
        return self

    @property
    def library_short_id(self) -> str:
        """The library id as it appears inside passes (first 8 bytes of the UUID, hex)."""
        try:
            return uuid.UUID(self.library_id).hex[:16]
        except ValueError:
            return self.library_id

    @property
    def store_path(self) -> Path:
        return self.data_dir / "edge.sqlite3"


def _line_of(text: str, loc: tuple[int | str, ...]) -> int | None:
    """Best-effort line number of the key at `loc` in the TOML source."""
    keys = [part for part in loc if isinstance(part, str)]
    if not keys:
        return None
    section = ".".join(keys[:-1])
    wanted = keys[-1]
    current = ""
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        header = re.match(r"^\[\[?\s*([^\]]+?)\s*\]\]?", stripped)
        if header:
            current = header.group(1)
            if current == ".".join(keys):
                return number
            continue
        if current == section and re.match(rf"^{re.escape(wanted)}\s*=", stripped):
            return number
    return None


def _describe(errors: ValidationError, text: str, source: str) -> str:
    lines = []
    for error in errors.errors():
        loc = tuple(error["loc"])
        key = ".".join(str(part) for part in loc) or "(top level)"
        line = _line_of(text, loc)
        where = f"{source}:{line}" if line else source
        lines.append(f"{where}: key '{key}': {error['msg']}")
    return "invalid configuration:\n  " + "\n  ".join(lines)


def parse_config(text: str, source: str = "<config>") -> EdgeConfig:
    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from exc
    try:
        return EdgeConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, text, source)) from exc


def load_config(path: Path) -> EdgeConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    config = parse_config(text, str(path))
    if not config.data_dir.is_absolute():
        config = config.model_copy(update={"data_dir": (path.parent / config.data_dir).resolve()})
    return config
