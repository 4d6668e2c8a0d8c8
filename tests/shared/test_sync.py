from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from shared.sync import (
    MAX_EVENTS_PER_BATCH,
    EdgeEvent,
    EventKind,
    EventResult,
    PassRecord,
    PassStatus,
    PlanRecord,
    PullResponse,
    PushBatch,
    PushResult,
    RemoteCommand,
    Revocation,
    StaffRecord,
)

NOW = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)


def event_json(**changes: Any) -> dict[str, Any]:
    event = {
        "id": str(uuid.uuid4()),
        "kind": "checkin",
        "occurred_at": "2026-11-24T09:30:00+05:30",
        "payload": {"pass_id": "00112233445566aa", "door": "door-1"},
    }
    event.update(changes)
    return event


def batch_json(**changes: Any) -> dict[str, Any]:
    batch = {
        "version": 1,
        "device_id": str(uuid.uuid4()),
        "sent_at": "2026-11-24T04:00:00Z",
        "clock": "2026-11-24T04:00:01Z",
        "events": [event_json(), event_json(kind="telemetry", payload={"co2": 612})],
    }
    batch.update(changes)
    return batch


def test_push_batch_parses_and_round_trips_through_json() -> None:
    batch = PushBatch.model_validate(batch_json())
    assert batch.events[0].kind is EventKind.CHECKIN
    assert batch.events[0].occurred_at == datetime(2026, 11, 24, 4, 0, tzinfo=UTC)
    assert PushBatch.model_validate_json(batch.model_dump_json()) == batch


def test_batch_of_exactly_the_limit_is_accepted() -> None:
    events = [event_json() for _ in range(MAX_EVENTS_PER_BATCH)]
    assert len(PushBatch.model_validate(batch_json(events=events)).events) == 500


@pytest.mark.parametrize(
    "changes",
    [
        {"events": [event_json() for _ in range(MAX_EVENTS_PER_BATCH + 1)]},
        {"version": 2},
        {"version": "1"},
        {"version": None},
        {"sent_at": "2026-11-24T04:00:00"},  # naive
        {"clock": "yesterday"},
        {"device_id": "door-1"},
        {"events": [event_json(occurred_at="2026-11-24T09:30:00")]},  # naive event time
        {"events": [event_json(kind="teleport")]},
        {"events": [event_json(id="not-a-uuid")]},
        {"events": [event_json(payload=[1, 2])]},
        {"events": [event_json(extra_field=1)]},
        {"unexpected": True},
        {"events": "none"},
    ],
)
def test_bad_push_batches_are_rejected(changes: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        PushBatch.model_validate(batch_json(**changes))


def test_duplicate_event_ids_in_one_batch_are_rejected() -> None:
    event = event_json()
    with pytest.raises(ValidationError, match="unique"):
        PushBatch.model_validate(batch_json(events=[event, event]))


def test_push_result() -> None:
    ok = EventResult(id=uuid.uuid4(), status="applied")
    dup = EventResult(id=uuid.uuid4(), status="duplicate")
    bad = EventResult(id=uuid.uuid4(), status="rejected", reason="unknown seat")
    result = PushResult(results=[ok, dup, bad])
    assert result.version == 1
    assert PushResult.model_validate_json(result.model_dump_json()) == result
    with pytest.raises(ValidationError):
        EventResult(id=uuid.uuid4(), status="rejected")
    with pytest.raises(ValidationError):
        EventResult.model_validate({"id": str(uuid.uuid4()), "status": "lost"})


def full_pull_response() -> PullResponse:
    return PullResponse(
        cursor="c-1024",
        has_more=True,
        passes=[
            PassRecord(
                pass_id="00112233445566aa",
                booking_id=uuid.uuid4(),
                seat_id=uuid.uuid4(),
                seat_label="A-12",
                holder_id=uuid.uuid4(),
                holder_name="Asha",
                valid_from=NOW,
                valid_until=NOW + timedelta(hours=4),
            )
        ],
        revocations=[Revocation(pass_id="00112233445566ab", revoked_at=NOW, reason="refunded")],
        staff=[
            StaffRecord(
                user_id=uuid.uuid4(), name="Ravi", pin_hash="$argon2id$v=19$...", role="library_staff"
            )
        ],
        plans=[
            PlanRecord(
                id=uuid.uuid4(),
                name="Day pass",
                kind="day_pass",
                price_minor=15000,
                currency="INR",
                duration_minutes=720,
            )
        ],
        config={"relock_seconds": 5},
        commands=[RemoteCommand(id=uuid.uuid4(), kind="unlock_door", args={"door": "door-1"}, issued_at=NOW)],
        pass_keys={"0a1b2c3d": "MCowBQYDK2VwAyEA"},
    )


def test_pull_response_round_trips_through_json() -> None:
    response = full_pull_response()
    assert PullResponse.model_validate_json(response.model_dump_json()) == response
    assert response.passes[0].status is PassStatus.ACTIVE


def test_minimal_pull_response_has_empty_defaults() -> None:
    response = PullResponse.model_validate({"version": 1, "cursor": "0"})
    assert response.passes == [] and response.config is None and not response.full_resync


def test_pull_response_tolerates_fields_added_later() -> None:
    response = full_pull_response()
    data = response.model_dump(mode="json")
    data["announcements"] = ["new field"]
    data["passes"][0]["locker"] = 7
    assert PullResponse.model_validate(data) == response


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("version",), 2),
        (("passes", 0, "pass_id"), "XYZ"),
        (("passes", 0, "valid_from"), "2026-11-24T09:30:00"),
        (("passes", 0, "valid_until"), "2026-11-23T09:30:00+00:00"),  # before valid_from
        (("passes", 0, "status"), "lost"),
        (("revocations", 0, "revoked_at"), "2026-11-24T09:30:00"),
        (("plans", 0, "price_minor"), -1),
        (("plans", 0, "price_minor"), 10.5),
        (("plans", 0, "currency"), "rupees"),
        (("staff", 0, "name"), ""),
        (("commands", 0, "issued_at"), "soon"),
    ],
)
def test_bad_pull_responses_are_rejected(path: tuple[str | int, ...], value: object) -> None:
    data = full_pull_response().model_dump(mode="json")
    target: Any = data
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    with pytest.raises(ValidationError):
        PullResponse.model_validate(data)


aware_datetimes = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
events = st.builds(
    EdgeEvent,
    id=st.uuids(),
    kind=st.sampled_from(EventKind),
    occurred_at=aware_datetimes,
    payload=st.dictionaries(st.text(max_size=10), json_values, max_size=4),
)


@settings(max_examples=50, deadline=None)
@given(
    device_id=st.uuids(),
    sent_at=aware_datetimes,
    events=st.lists(events, max_size=8, unique_by=lambda event: event.id),
)
def test_any_valid_batch_round_trips(
    device_id: uuid.UUID, sent_at: datetime, events: list[EdgeEvent]
) -> None:
    batch = PushBatch(device_id=device_id, sent_at=sent_at, clock=sent_at, events=events)
    assert PushBatch.model_validate_json(batch.model_dump_json()) == batch
