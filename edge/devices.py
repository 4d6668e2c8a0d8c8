"""The device layer: ESPHome MQTT messages → typed device messages; device enrolment.

The same code runs whichever broker carries the messages (embedded amqtt or an external
Mosquitto). Entity names come from `shared.topics.DEVICE_PROFILES`, the single source of truth.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from enum import StrEnum

from edge.mosquitto import MosquittoError, mosquitto_hash, mosquitto_passwd_binary
from edge.store import DeviceRecord, Store
from shared.topics import DEVICE_PROFILES, Component, DeviceKind, TopicError, parse_device_topic

MAX_PAYLOAD_BYTES = 1024
# Any battery-powered device may add an ESPHome battery sensor ("Battery" / "Battery Level", in %).
BATTERY_ROLE = "battery"
BATTERY_OBJECT_IDS = frozenset({"battery", "battery_level"})


class MessageRejectReason(StrEnum):
    BAD_TOPIC = "bad_topic"
    UNKNOWN_DEVICE = "unknown_device"
    UNKNOWN_ENTITY = "unknown_entity"
    TOO_LARGE = "too_large"
    NOT_UTF8 = "not_utf8"
    BAD_VALUE = "bad_value"


class MessageRejected(ValueError):
    def __init__(self, reason: MessageRejectReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class DeviceMessage:
    device: DeviceRecord
    channel: str  # "status" | "state" | "command"
    role: str | None
    component: Component | None
    raw: bytes
    retained: bool

    def text(self) -> str:
        """The payload as text; raises MessageRejected if oversized or not UTF-8."""
        return decode_text(self.raw)


def decode_text(payload: bytes, limit: int = MAX_PAYLOAD_BYTES) -> str:
    if len(payload) > limit:
        raise MessageRejected(MessageRejectReason.TOO_LARGE, f"{len(payload)} bytes > {limit}")
    try:
        return payload.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise MessageRejected(MessageRejectReason.NOT_UTF8, str(exc)) from None


def parse_number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise MessageRejected(MessageRejectReason.BAD_VALUE, f"not a number: {text[:40]!r}") from None
    if not math.isfinite(value):
        raise MessageRejected(MessageRejectReason.BAD_VALUE, f"not finite: {text[:40]!r}")
    return value


def parse_on_off(text: str) -> bool:
    upper = text.upper()
    if upper not in ("ON", "OFF"):
        raise MessageRejected(MessageRejectReason.BAD_VALUE, f"expected ON/OFF, got {text[:40]!r}")
    return upper == "ON"


LOCK_STATES = ("LOCKED", "UNLOCKED", "JAMMED", "LOCKING", "UNLOCKING", "OPEN", "OPENING")


def parse_lock_state(text: str) -> str:
    upper = text.upper()
    if upper not in LOCK_STATES:
        raise MessageRejected(MessageRejectReason.BAD_VALUE, f"unknown lock state {text[:40]!r}")
    return upper


class DeviceDirectory:
    """Maps topics to registered devices and their entity roles."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._by_prefix: dict[str, DeviceRecord] = {}
        self._by_id: dict[str, DeviceRecord] = {}
        self.refresh()

    def refresh(self) -> None:
        devices = self.store.devices()
        self._by_prefix = {device.topic_prefix: device for device in devices}
        self._by_id = {device.id: device for device in devices}

    def get(self, device_id: str) -> DeviceRecord | None:
        return self._by_id.get(device_id)

    def all(self) -> list[DeviceRecord]:
        return list(self._by_id.values())

    def doors(self) -> list[DeviceRecord]:
        return [device for device in self._by_id.values() if device.kind == DeviceKind.DOOR]

    def resolve(self, topic: str, payload: bytes, retained: bool) -> DeviceMessage:
        try:
            parsed = parse_device_topic(topic)
        except TopicError as exc:
            raise MessageRejected(MessageRejectReason.BAD_TOPIC, str(exc)) from None
        device = self._by_prefix.get(parsed.prefix)
        if device is None:
            self.refresh()
            device = self._by_prefix.get(parsed.prefix)
        if device is None:
            raise MessageRejected(
                MessageRejectReason.UNKNOWN_DEVICE, f"no device with prefix {parsed.prefix!r}"
            )
        if parsed.channel == "status":
            return DeviceMessage(device, "status", None, None, payload, retained)
        role = _role_of(device, parsed.component, parsed.object_id)
        return DeviceMessage(device, parsed.channel, role, parsed.component, payload, retained)


def _role_of(device: DeviceRecord, component: Component | None, object_id: str | None) -> str:
    try:
        profile = DEVICE_PROFILES[DeviceKind(device.kind)]
    except (ValueError, KeyError):
        raise MessageRejected(
            MessageRejectReason.UNKNOWN_ENTITY, f"unknown device kind {device.kind}"
        ) from None
    for entity in profile:
        if entity.component == component and entity.object_id == object_id:
            return entity.role
    if component == Component.SENSOR and object_id in BATTERY_OBJECT_IDS:
        return BATTERY_ROLE
    raise MessageRejected(MessageRejectReason.UNKNOWN_ENTITY, f"{device.kind} has no {component}/{object_id}")


@dataclass(frozen=True)
class EnrolledDevice:
    record: DeviceRecord
    password: str


def enroll_device(
    store: Store,
    *,
    device_id: str,
    kind: DeviceKind | str,
    topic_prefix: str | None = None,
    door_id: str | None = None,
    direction: str = "in",
    zone: str | None = None,
) -> EnrolledDevice:
    """Register a device with fresh credentials; returns the plaintext password once."""
    kind = DeviceKind(kind)
    password = secrets.token_urlsafe(18)
    username = f"dev-{device_id}"
    hashed_for_mosquitto: str | None = None
    if mosquitto_passwd_binary() is not None:
        try:
            hashed_for_mosquitto = mosquitto_hash(username, password)
        except MosquittoError:
            hashed_for_mosquitto = None
    record = store.register_device(
        device_id=device_id,
        kind=kind.value,
        topic_prefix=topic_prefix or device_id,
        username=username,
        password=password,
        door_id=door_id,
        direction=direction,
        zone=zone,
        mosquitto_hash=hashed_for_mosquitto,
    )
    return EnrolledDevice(record=record, password=password)
