"""Any bytes from a scanner or any MQTT message yields a typed rejection, never an exception."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.checkin import CheckinDesk, Door, RejectReason
from edge.devices import (
    DeviceDirectory,
    MessageRejected,
    enroll_device,
    parse_lock_state,
    parse_number,
    parse_on_off,
)
from edge.store import Store
from shared.passes import public_key_from_text

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _desk(store: Store, passes) -> CheckinDesk:
    return CheckinDesk(
        store,
        public_keys={passes.key_id: public_key_from_text(passes.public_text)},
        library=passes.library_id.hex[:16],
        skew=timedelta(seconds=120),
    )


@FUZZ
@given(scanned=st.binary(max_size=600) | st.text(max_size=300).map(str.encode))
def test_any_scan_is_rejected_with_a_reason(store, passes, scanned: bytes) -> None:
    decision = _desk(store, passes).decide(scanned, Door("door", "in"), datetime.now(UTC))
    assert not decision.accepted and isinstance(decision.reason, RejectReason)


@FUZZ
@given(data=st.data())
def test_mutated_valid_pass_is_rejected(store, passes, data) -> None:
    text, _ = passes.make()
    index = data.draw(st.integers(0, len(text) - 1))
    replacement = data.draw(st.characters(codec="ascii").filter(lambda c: c != text[index]))
    mutated = text[:index] + replacement + text[index + 1 :]
    decision = _desk(store, passes).decide(mutated, Door("door", "in"), datetime.now(UTC))
    assert not decision.accepted and decision.reason is not None


@FUZZ
@given(
    topic=st.text(max_size=80)
    | st.sampled_from(["door1/lock/door_lock/state", "door1/status", "door1/x/y/state"]),
    payload=st.binary(max_size=2000),
    retained=st.booleans(),
)
def test_any_mqtt_message_resolves_or_is_rejected(store, topic: str, payload: bytes, retained) -> None:
    store.declare_device(
        device_id="door1", kind="door", topic_prefix="door1", door_id=None, direction="in", zone=None
    )
    try:
        message = DeviceDirectory(store).resolve(topic, payload, retained)
        message.text()
    except MessageRejected as rejected:
        assert rejected.reason


@FUZZ
@given(text=st.text(max_size=60))
def test_value_parsers_return_or_reject(text: str) -> None:
    for parser in (parse_number, parse_on_off, parse_lock_state):
        try:
            parser(text)
        except MessageRejected as rejected:
            assert rejected.reason


def test_enrolled_device_topics_resolve(store: Store) -> None:
    enroll_device(store, device_id="scan1", kind="scanner", topic_prefix="lib/scan1")
    message = DeviceDirectory(store).resolve("lib/scan1/text_sensor/qr_scan/state", b"hello", False)
    assert message.role == "scan" and message.device.id == "scan1"


def test_pass_used_at_two_doors_at_once_is_refused(store: Store, passes) -> None:
    text, _ = passes.make()
    desk = _desk(store, passes)
    now = datetime.now(UTC)
    assert desk.decide(text, Door("north", "in"), now).accepted
    second = desk.decide(text, Door("south", "in"), now + timedelta(seconds=3))
    assert second.reason == RejectReason.CONCURRENT_USE


def test_expired_pass_may_still_leave(store: Store, passes) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=5)
    text, _ = passes.make(valid_from=start, valid_until=start + timedelta(hours=2))
    desk = _desk(store, passes)
    assert desk.decide(text, Door("main", "in"), datetime.now(UTC)).reason == RejectReason.EXPIRED
    assert desk.decide(text, Door("main", "out"), datetime.now(UTC)).accepted
