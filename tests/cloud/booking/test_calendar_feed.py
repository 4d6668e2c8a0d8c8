"""The secret calendar feed: served without a bearer token, parsed back with icalendar, rotatable."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import icalendar

from cloud.identity.roles import Role
from tests.cloud.booking.conftest import LIBRARY_TZ, LibrarySetup
from tests.cloud.booking.helpers import at, hourly, slot


async def _feed(client: httpx.AsyncClient, url: str) -> httpx.Response:
    return await client.get(url.removeprefix("http://test"))


async def test_feed_lists_bookings_with_library_tzid_and_cancellations(
    cloud_client: httpx.AsyncClient, setup_library: LibrarySetup, student: Any, make_account: Any
) -> None:
    kept = await cloud_client.post(
        "/api/v1/bookings",
        json=hourly(setup_library, "A1", slot(1, "08:00", "10:00"), "Free hour"),
        headers=student.headers,
    )
    dropped = await cloud_client.post(
        "/api/v1/bookings",
        json=hourly(setup_library, "A2", slot(2, "15:00", "16:00"), "Free hour"),
        headers=student.headers,
    )
    assert kept.status_code == dropped.status_code == 201, (kept.text, dropped.text)
    await cloud_client.post(f"/api/v1/bookings/{dropped.json()['id']}/cancel", headers=student.headers)

    feed = await cloud_client.get("/api/v1/users/me/calendar", headers=student.headers)
    assert feed.status_code == 200, feed.text
    url = feed.json()["url"]
    assert feed.json()["webcal_url"].startswith("webcal://") and url.endswith(".ics")
    again = await cloud_client.get("/api/v1/users/me/calendar", headers=student.headers)
    assert again.json()["url"] == url  # stable until rotated

    served = await _feed(cloud_client, url)  # no Authorization header
    assert served.status_code == 200, served.text
    assert served.headers["content-type"].startswith("text/calendar")
    calendar = icalendar.Calendar.from_ical(served.content)
    events = {str(event["uid"]).split("@")[0]: event for event in calendar.walk("VEVENT")}
    assert set(events) == {kept.json()["id"], dropped.json()["id"]}
    event = events[kept.json()["id"]]
    assert event["dtstart"].params["TZID"] == LIBRARY_TZ
    assert event.decoded("dtstart") == at(1, "08:00")
    assert event.decoded("dtend") - event.decoded("dtstart") == dt.timedelta(hours=2)
    assert str(event["status"]) == "CONFIRMED" and "A1" in str(event["summary"])
    assert str(events[dropped.json()["id"]]["status"]) == "CANCELLED"
    assert [tz["tzid"] for tz in calendar.walk("VTIMEZONE")] == [LIBRARY_TZ]

    other = await make_account(Role.STUDENT)
    theirs = (await cloud_client.get("/api/v1/users/me/calendar", headers=other.headers)).json()["url"]
    assert theirs != url
    assert icalendar.Calendar.from_ical((await _feed(cloud_client, theirs)).content).walk("VEVENT") == []


async def test_rotation_kills_the_old_url_and_forged_tokens_are_404(
    cloud_client: httpx.AsyncClient, student: Any
) -> None:
    old = (await cloud_client.get("/api/v1/users/me/calendar", headers=student.headers)).json()["url"]
    rotated = await cloud_client.post("/api/v1/users/me/calendar/rotate", headers=student.headers)
    assert rotated.status_code == 200 and rotated.json()["url"] != old
    assert (await _feed(cloud_client, old)).status_code == 404
    fresh = await _feed(cloud_client, rotated.json()["url"])
    assert fresh.status_code == 200 and icalendar.Calendar.from_ical(fresh.content).walk("VEVENT") == []
    token = rotated.json()["url"].rsplit("/", 1)[1].removesuffix(".ics")
    forged = token[:32] + ("0" if token[-1] != "0" else "1") * 32
    for bad in (forged, "x" * 64, "short", token[:32]):
        response = await cloud_client.get(f"/api/v1/calendar/{bad}.ics")
        assert response.status_code == 404, bad
        assert response.json()["error"]["code"] == "not_found"
