from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.topics import (
    COMMANDABLE_COMPONENTS,
    DEVICE_PROFILES,
    Component,
    DeviceKind,
    DeviceTopic,
    EventTopic,
    LockCommand,
    TopicError,
    command_topic,
    device_topics,
    entity,
    event_topic,
    object_id_for,
    parse_device_topic,
    parse_event_topic,
    parse_lock_command,
    state_topic,
    status_topic,
)

segments = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCXYZ0123456789_-.", min_size=1, max_size=20)
prefixes = st.lists(segments, min_size=1, max_size=4).map("/".join)
object_ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=30)
components = st.sampled_from(Component)


def test_esphome_topic_shapes() -> None:
    assert status_topic("door-1") == "door-1/status"
    assert state_topic("door-1", Component.LOCK, "door_lock") == "door-1/lock/door_lock/state"
    assert command_topic("door-1", Component.LOCK, "door_lock") == "door-1/lock/door_lock/command"
    assert event_topic("lib-42", "checkin") == "studyspot/lib-42/events/checkin"


@given(prefix=prefixes)
def test_status_round_trips(prefix: str) -> None:
    assert parse_device_topic(status_topic(prefix)) == DeviceTopic(prefix, None, None, "status")


@given(prefix=prefixes, component=components, object_id=object_ids)
def test_state_and_command_round_trip(prefix: str, component: Component, object_id: str) -> None:
    assert parse_device_topic(state_topic(prefix, component, object_id)) == DeviceTopic(
        prefix, component, object_id, "state"
    )
    assert parse_device_topic(command_topic(prefix, component, object_id)) == DeviceTopic(
        prefix, component, object_id, "command"
    )


@given(library_id=segments, kind=segments)
def test_event_topic_round_trips(library_id: str, kind: str) -> None:
    assert parse_event_topic(event_topic(library_id, kind)) == EventTopic(library_id, kind)


@pytest.mark.parametrize(
    "topic",
    [
        "",
        "status",
        "/status",
        "door//status",
        "door/+/status",
        "door/#",
        "door/lock/door_lock/set",
        "door/lock/door_lock",
        "lock/door_lock/state",
        "door/climate/ac/state",
        "door/lock/Door Lock/state",
        "door/lock/door_lock/state/",
        "d\x00or/status",
        "x" * 600 + "/status",
    ],
)
def test_garbage_device_topics_raise_topic_error(topic: str) -> None:
    with pytest.raises(TopicError):
        parse_device_topic(topic)


@pytest.mark.parametrize(
    "topic",
    [
        "",
        "studyspot/lib/events",
        "other/lib/events/checkin",
        "studyspot/lib/log/checkin",
        "studyspot//events/x",
    ],
)
def test_garbage_event_topics_raise_topic_error(topic: str) -> None:
    with pytest.raises(TopicError):
        parse_event_topic(topic)


@settings(max_examples=400, deadline=None)
@given(topic=st.one_of(st.text(max_size=120), st.lists(st.text(max_size=12), max_size=6).map("/".join)))
def test_any_text_parses_to_a_rebuildable_topic_or_raises_topic_error(topic: str) -> None:
    try:
        parsed = parse_device_topic(topic)
    except TopicError:
        return
    if parsed.channel == "status":
        assert status_topic(parsed.prefix) == topic
    else:
        assert parsed.component is not None and parsed.object_id is not None
        build = state_topic if parsed.channel == "state" else command_topic
        assert build(parsed.prefix, parsed.component, parsed.object_id) == topic


@pytest.mark.parametrize(
    "build",
    [
        lambda: status_topic(""),
        lambda: status_topic("a/+"),
        lambda: state_topic("door", Component.LOCK, "Door Lock"),
        lambda: command_topic("door", "fan", "x"),  # type: ignore[arg-type]
        lambda: event_topic("lib/1", "checkin"),
        lambda: event_topic("lib", "#"),
    ],
)
def test_builders_refuse_bad_parts(build) -> None:
    with pytest.raises(ValueError):  # TopicError is a ValueError
        build()


def test_profiles_use_esphome_object_ids_derived_from_names() -> None:
    for kind, entities in DEVICE_PROFILES.items():
        roles = [item.role for item in entities]
        assert len(set(roles)) == len(roles), kind
        for item in entities:
            assert object_id_for(item.name) == item.object_id


def test_every_kind_has_a_profile() -> None:
    assert set(DEVICE_PROFILES) == set(DeviceKind)


def test_door_profile_matches_the_contract() -> None:
    door = {(item.component, item.object_id) for item in DEVICE_PROFILES[DeviceKind.DOOR]}
    assert door == {
        (Component.LOCK, "door_lock"),
        (Component.BINARY_SENSOR, "door_contact"),
        (Component.BINARY_SENSOR, "exit_button"),
        (Component.TEXT_SENSOR, "qr_scan"),
        (Component.SWITCH, "led_green"),
        (Component.SWITCH, "led_red"),
        (Component.SWITCH, "buzzer"),
    }
    assert entity(DeviceKind.DOOR, "lock").name == "Door Lock"


def test_entity_is_found_by_role_or_object_id() -> None:
    assert entity(DeviceKind.SCANNER, "scan") == entity(DeviceKind.SCANNER, "qr_scan")
    assert entity(DeviceKind.ENV, "co2").component == Component.SENSOR
    with pytest.raises(KeyError):
        entity(DeviceKind.ENV, "door_lock")


def test_device_topics_for_a_door() -> None:
    topics = device_topics(DeviceKind.DOOR, "lib1/door-main")
    assert topics["status"] == "lib1/door-main/status"
    assert topics["lock"] == "lib1/door-main/lock/door_lock/state"
    assert topics["lock_command"] == "lib1/door-main/lock/door_lock/command"
    assert topics["scan"] == "lib1/door-main/text_sensor/qr_scan/state"
    assert topics["led_green_command"] == "lib1/door-main/switch/led_green/command"
    assert "scan_command" not in topics and "contact_command" not in topics


@pytest.mark.parametrize("kind", list(DeviceKind))
def test_device_topics_all_parse_back(kind: DeviceKind) -> None:
    for role, topic in device_topics(kind, "dev").items():
        parsed = parse_device_topic(topic)
        assert parsed.prefix == "dev"
        if role.endswith("_command"):
            assert parsed.channel == "command" and parsed.component in COMMANDABLE_COMPONENTS


@pytest.mark.parametrize(
    ("payload", "expected"), [("unlock", LockCommand.UNLOCK), (b" Open\n", LockCommand.OPEN)]
)
def test_lock_commands_are_case_insensitive(payload: str | bytes, expected: LockCommand) -> None:
    assert parse_lock_command(payload) == expected


@pytest.mark.parametrize("payload", ["", "UNLOCKED", b"\xff\xfe", "LOCK LOCK"])
def test_bad_lock_commands_raise_value_error(payload: str | bytes) -> None:
    with pytest.raises(ValueError):
        parse_lock_command(payload)
