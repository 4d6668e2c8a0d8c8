"""MQTT topic scheme: ESPHome conventions for devices, plus the agent's own event topics.

Device topics (unmodified ESPHome firmware):
    <prefix>/status                                 online / offline (retained)
    <prefix>/<component>/<object_id>/state          from the device (retained)
    <prefix>/<component>/<object_id>/command        to the device (not retained)
Agent events:
    studyspot/<library_id>/events/<kind>            JSON

A prefix may contain slashes, so topics are parsed from the right.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

EVENT_ROOT = "studyspot"
MAX_TOPIC_LENGTH = 512

_SEGMENT = re.compile(r"[A-Za-z0-9_\-.]+")
_OBJECT_ID = re.compile(r"[a-z0-9_\-]+")


class TopicError(ValueError):
    """A topic, or a part of one, that does not follow the scheme."""


class Component(StrEnum):
    LOCK = "lock"
    BINARY_SENSOR = "binary_sensor"
    SENSOR = "sensor"
    TEXT_SENSOR = "text_sensor"
    SWITCH = "switch"


COMMANDABLE_COMPONENTS = frozenset({Component.LOCK, Component.SWITCH})


class DeviceKind(StrEnum):
    DOOR = "door"
    SCANNER = "scanner"
    ENV = "env"
    ENERGY = "energy"
    RELAY = "relay"
    SEAT = "seat"


# --- payloads -------------------------------------------------------------------------------------


class LockCommand(StrEnum):
    LOCK = "LOCK"
    UNLOCK = "UNLOCK"
    OPEN = "OPEN"


class LockState(StrEnum):
    LOCKED = "LOCKED"
    UNLOCKED = "UNLOCKED"
    JAMMED = "JAMMED"


class SwitchState(StrEnum):
    ON = "ON"
    OFF = "OFF"


class Availability(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"


LOCK, UNLOCK, OPEN = LockCommand.LOCK.value, LockCommand.UNLOCK.value, LockCommand.OPEN.value
LOCKED, UNLOCKED, JAMMED = LockState.LOCKED.value, LockState.UNLOCKED.value, LockState.JAMMED.value
ON, OFF = SwitchState.ON.value, SwitchState.OFF.value
ONLINE, OFFLINE = Availability.ONLINE.value, Availability.OFFLINE.value


def parse_lock_command(payload: str | bytes) -> LockCommand:
    """ESPHome matches lock commands case-insensitively; so do we. Raises ValueError otherwise."""
    text = payload.decode("utf-8", errors="replace") if isinstance(payload, bytes) else payload
    try:
        return LockCommand(text.strip().upper())
    except ValueError:
        raise ValueError(f"not a lock command: {text[:32]!r}") from None


# --- device profiles -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Entity:
    role: str  # our name for what the entity does, unique within a device kind
    component: Component
    object_id: str
    name: str  # ESPHome `name:`; ESPHome derives object_id from it


def object_id_for(name: str) -> str:
    """ESPHome's object_id: snake_case of the name, then anything outside [a-z0-9_-] becomes `_`."""
    snake = name.lower().replace(" ", "_")
    return re.sub(r"[^a-z0-9_\-]", "_", snake)


def _entity(role: str, component: Component, name: str) -> Entity:
    return Entity(role=role, component=component, object_id=object_id_for(name), name=name)


_FEEDBACK = (
    _entity("led_green", Component.SWITCH, "LED Green"),
    _entity("led_red", Component.SWITCH, "LED Red"),
    _entity("buzzer", Component.SWITCH, "Buzzer"),
)

DEVICE_PROFILES: dict[DeviceKind, tuple[Entity, ...]] = {
    DeviceKind.DOOR: (
        _entity("lock", Component.LOCK, "Door Lock"),
        _entity("contact", Component.BINARY_SENSOR, "Door Contact"),
        _entity("exit_button", Component.BINARY_SENSOR, "Exit Button"),
        _entity("scan", Component.TEXT_SENSOR, "QR Scan"),
        *_FEEDBACK,
    ),
    DeviceKind.SCANNER: (_entity("scan", Component.TEXT_SENSOR, "QR Scan"), *_FEEDBACK),
    DeviceKind.ENV: (
        _entity("temperature", Component.SENSOR, "Temperature"),
        _entity("humidity", Component.SENSOR, "Humidity"),
        _entity("co2", Component.SENSOR, "CO2"),
        _entity("noise", Component.SENSOR, "Noise"),
    ),
    DeviceKind.ENERGY: (
        _entity("voltage", Component.SENSOR, "Voltage"),
        _entity("current", Component.SENSOR, "Current"),
        _entity("power", Component.SENSOR, "Power"),
        _entity("energy", Component.SENSOR, "Energy"),
    ),
    DeviceKind.RELAY: (_entity("relay", Component.SWITCH, "Relay"),),
    DeviceKind.SEAT: (_entity("presence", Component.BINARY_SENSOR, "Presence"),),
}


def entity(kind: DeviceKind, role: str) -> Entity:
    """The entity of a device kind by role (or by its object_id). Raises KeyError if it has none."""
    for candidate in DEVICE_PROFILES[DeviceKind(kind)]:
        if role in (candidate.role, candidate.object_id):
            return candidate
    raise KeyError(f"{kind} has no entity {role!r}")


# --- building -----------------------------------------------------------------------------------


def _check_prefix(prefix: str) -> str:
    if not isinstance(prefix, str) or not prefix:
        raise TopicError("empty topic prefix")
    if len(prefix) > MAX_TOPIC_LENGTH:
        raise TopicError("topic prefix too long")
    for segment in prefix.split("/"):
        if not _SEGMENT.fullmatch(segment):
            raise TopicError(f"bad prefix segment {segment[:40]!r} (letters, digits, _ - . only)")
    return prefix


def _check_object_id(object_id: str) -> str:
    if not isinstance(object_id, str) or not _OBJECT_ID.fullmatch(object_id):
        raise TopicError(f"bad object_id {str(object_id)[:40]!r} (a-z 0-9 _ - only)")
    return object_id


def _check_segment(value: str, what: str) -> str:
    if not isinstance(value, str) or not _SEGMENT.fullmatch(value):
        raise TopicError(f"bad {what} {str(value)[:40]!r} (letters, digits, _ - . only)")
    return value


def status_topic(prefix: str) -> str:
    return f"{_check_prefix(prefix)}/status"


def _entity_topic(prefix: str, component: Component, object_id: str, channel: str) -> str:
    return f"{_check_prefix(prefix)}/{Component(component).value}/{_check_object_id(object_id)}/{channel}"


def state_topic(prefix: str, component: Component, object_id: str) -> str:
    return _entity_topic(prefix, component, object_id, "state")


def command_topic(prefix: str, component: Component, object_id: str) -> str:
    return _entity_topic(prefix, component, object_id, "command")


def is_command_topic(topic: str) -> bool:
    """A command to a device (`<prefix>/<component>/<object_id>/command`), not an agent event."""
    return topic.endswith("/command") and not topic.startswith(f"{EVENT_ROOT}/")


def event_topic(library_id: str, kind: str) -> str:
    library_segment = _check_segment(library_id, "library id")
    return f"{EVENT_ROOT}/{library_segment}/events/{_check_segment(kind, 'event kind')}"


def device_topics(kind: DeviceKind, prefix: str) -> dict[str, str]:
    """role → state topic for every entity, `<role>_command` → command topic for locks and switches,
    and `status`."""
    topics = {"status": status_topic(prefix)}
    for item in DEVICE_PROFILES[DeviceKind(kind)]:
        topics[item.role] = state_topic(prefix, item.component, item.object_id)
        if item.component in COMMANDABLE_COMPONENTS:
            topics[f"{item.role}_command"] = command_topic(prefix, item.component, item.object_id)
    return topics


# --- parsing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceTopic:
    prefix: str
    component: Component | None
    object_id: str | None
    channel: Literal["status", "state", "command"]


def _split(topic: str) -> list[str]:
    if not isinstance(topic, str):
        raise TopicError(f"topic must be text, got {type(topic).__name__}")
    if not topic or len(topic) > MAX_TOPIC_LENGTH:
        raise TopicError("topic is empty or too long")
    return topic.split("/")


def parse_device_topic(topic: str) -> DeviceTopic:
    """Parse `<prefix>/status` or `<prefix>/<component>/<object_id>/state|command`; raises TopicError."""
    segments = _split(topic)
    channel = segments[-1]
    if channel == "status":
        prefix = _check_prefix("/".join(segments[:-1]))
        return DeviceTopic(prefix=prefix, component=None, object_id=None, channel="status")
    if channel not in ("state", "command"):
        raise TopicError(f"unknown channel {channel[:40]!r} (status, state or command)")
    if len(segments) < 4:
        raise TopicError("an entity topic is <prefix>/<component>/<object_id>/<channel>")
    try:
        component = Component(segments[-3])
    except ValueError:
        raise TopicError(f"unknown component {segments[-3][:40]!r}") from None
    return DeviceTopic(
        prefix=_check_prefix("/".join(segments[:-3])),
        component=component,
        object_id=_check_object_id(segments[-2]),
        channel="state" if channel == "state" else "command",
    )


@dataclass(frozen=True)
class EventTopic:
    library_id: str
    kind: str


def parse_event_topic(topic: str) -> EventTopic:
    """Parse `studyspot/<library_id>/events/<kind>`; raises TopicError."""
    segments = _split(topic)
    if len(segments) != 4 or segments[0] != EVENT_ROOT or segments[2] != "events":
        raise TopicError(f"an event topic is {EVENT_ROOT}/<library_id>/events/<kind>")
    return EventTopic(
        library_id=_check_segment(segments[1], "library id"), kind=_check_segment(segments[3], "event kind")
    )


__all__ = [
    "DEVICE_PROFILES",
    "Availability",
    "Component",
    "DeviceKind",
    "DeviceTopic",
    "Entity",
    "EventTopic",
    "LockCommand",
    "LockState",
    "SwitchState",
    "TopicError",
    "command_topic",
    "device_topics",
    "entity",
    "event_topic",
    "object_id_for",
    "parse_device_topic",
    "parse_event_topic",
    "parse_lock_command",
    "state_topic",
    "status_topic",
]
