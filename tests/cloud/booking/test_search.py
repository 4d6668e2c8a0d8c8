"""Library search: fuzzy full text, distance, filters, open now, cursor pagination."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from cloud.search import service as search_service
from tests.cloud.booking.helpers import ALL_DAY

SEARCH = "/api/v1/libraries"
CLOSED = dict.fromkeys(ALL_DAY)
LIBRARIES: list[dict[str, Any]] = [
    {
        "name": "Sunrise Library",
        "latitude": 40.7128,
        "longitude": -74.0060,
        "amenities": ["wifi", "ac"],
        "price": 5000,
        "opening_hours": ALL_DAY,
        "address": "12 Main Street",
    },
    {
        "name": "Moonlight Study Hall",
        "latitude": 40.7178,
        "longitude": -74.0431,
        "amenities": ["wifi"],
        "price": 3000,
        "opening_hours": ALL_DAY,
        "address": "4 Grove Street",
    },
    {
        "name": "Sunset Reading Room",
        "latitude": 42.3601,
        "longitude": -71.0589,
        "amenities": ["ac"],
        "price": 8000,
        "opening_hours": CLOSED,
        "address": "1 Beacon Street",
    },
    {
        "name": "Quiet Corner",
        "latitude": None,
        "longitude": None,
        "amenities": [],
        "price": 9000,
        "opening_hours": ALL_DAY,
        "address": "Sunrise Avenue",
    },
]


@pytest.fixture
async def catalog(cloud_client: httpx.AsyncClient, owner: Any) -> dict[str, str]:
    ids = {}
    for spec in LIBRARIES:
        body = {k: v for k, v in spec.items() if k != "price"} | {"timezone": "America/New_York"}
        response = await cloud_client.post("/api/v1/libraries", json=body, headers=owner.headers)
        assert response.status_code == 201, response.text
        ids[spec["name"]] = response.json()["id"]
        plan = {"name": "Hourly", "kind": "hourly", "price_minor": spec["price"], "currency": "INR"}
        await cloud_client.post(
            f"/api/v1/libraries/{ids[spec['name']]}/plans", json=plan, headers=owner.headers
        )
    retired = await cloud_client.post(
        "/api/v1/libraries",
        json={"name": "Sunrise Old Library", "timezone": "UTC", "status": "inactive"},
        headers=owner.headers,
    )
    assert retired.status_code == 201
    return ids


async def _names(client: httpx.AsyncClient, **params: Any) -> list[str]:
    response = await client.get(SEARCH, params=params)
    assert response.status_code == 200, response.text
    return [hit["name"] for hit in response.json()["items"]]


async def test_misspelt_query_finds_the_library_and_rank_is_explained(
    cloud_client: httpx.AsyncClient, catalog: dict[str, str]
) -> None:
    response = await cloud_client.get(SEARCH, params={"q": "sunrize libary"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["sort"] == "relevance"
    assert body["items"][0]["name"] == "Sunrise Library"
    assert "Sunrise Old Library" not in [hit["name"] for hit in body["items"]]  # inactive
    rank = body["items"][0]["rank"]
    assert rank["similarity"] > 0.3 and rank["score"] == pytest.approx(rank["text_rank"] + rank["similarity"])
    names = await _names(cloud_client, q="sunrise")
    assert names[0] == "Sunrise Library" and "Quiet Corner" in names  # address matches too, ranked lower
    assert await _names(cloud_client, q="moonlite") == ["Moonlight Study Hall"]
    assert await _names(cloud_client, q="xylophone") == []


async def test_distance_sort_and_radius(cloud_client: httpx.AsyncClient, catalog: dict[str, str]) -> None:
    response = await cloud_client.get(SEARCH, params={"lat": 40.7130, "lon": -74.0050, "radius_km": 10})
    hits = response.json()["items"]
    assert [hit["name"] for hit in hits] == ["Sunrise Library", "Moonlight Study Hall"]
    assert hits[0]["rank"]["distance_m"] < 200 and 2500 < hits[1]["rank"]["distance_m"] < 4000
    everywhere = await _names(cloud_client, lat=40.7130, lon=-74.0050)
    assert everywhere == ["Sunrise Library", "Moonlight Study Hall", "Sunset Reading Room", "Quiet Corner"]


async def test_amenity_price_and_open_now_filters(
    cloud_client: httpx.AsyncClient, catalog: dict[str, str]
) -> None:
    assert await _names(cloud_client, amenities="wifi,ac") == ["Sunrise Library"]
    assert await _names(cloud_client, amenities=["ac"]) == ["Sunrise Library", "Sunset Reading Room"]
    assert await _names(cloud_client, max_price=5000) == ["Moonlight Study Hall", "Sunrise Library"]
    open_now = await _names(cloud_client, open_now="true")
    assert "Sunset Reading Room" not in open_now and "Sunrise Library" in open_now
    flags = {hit["name"]: hit["open_now"] for hit in (await cloud_client.get(SEARCH)).json()["items"]}
    assert flags["Sunset Reading Room"] is False and flags["Moonlight Study Hall"] is True
    cheapest = (await cloud_client.get(SEARCH, params={"q": "moonlight"})).json()["items"][0]
    assert (cheapest["min_price_minor"], cheapest["currency"]) == (3000, "INR")


async def test_cursor_pagination_walks_every_result_once(
    cloud_client: httpx.AsyncClient, catalog: dict[str, str]
) -> None:
    for params in ({"sort": "name"}, {"lat": 40.7, "lon": -74.0}, {"q": "street"}):
        seen: list[str] = []
        cursor = None
        for _ in range(10):
            page = (
                await cloud_client.get(
                    SEARCH, params={**params, "limit": 1, **({"cursor": cursor} if cursor else {})}
                )
            ).json()
            seen += [hit["name"] for hit in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == await _names(cloud_client, **params, limit=100), params
        assert len(seen) == len(set(seen)) >= 3


async def test_bad_search_input_is_a_clear_4xx(
    cloud_client: httpx.AsyncClient, catalog: dict[str, str]
) -> None:
    page = (await cloud_client.get(SEARCH, params={"sort": "name", "limit": 1})).json()
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"lat": 10}, 422, "invalid_search"),
        ({"radius_km": 5}, 422, "invalid_search"),
        ({"sort": "distance"}, 422, "invalid_search"),
        ({"sort": "relevance"}, 422, "invalid_search"),
        ({"lat": 200, "lon": 0}, 422, "validation_error"),
        ({"cursor": "not-a-cursor"}, 400, "invalid_cursor"),
        ({"cursor": page["next_cursor"], "lat": 1, "lon": 1}, 400, "invalid_cursor"),
        ({"max_price": -1}, 422, "validation_error"),
        ({"limit": 0}, 422, "validation_error"),
    ]
    for params, status, code in cases:
        response = await cloud_client.get(SEARCH, params=params)
        assert response.status_code == status, (params, response.text)
        assert response.json()["error"]["code"] == code, (params, response.text)


async def _walk(client: httpx.AsyncClient, q: str, limit: int) -> list[tuple[str, float]]:
    seen: list[tuple[str, float]] = []
    cursor = None
    for _ in range(50):
        params: dict[str, str | int] = {"q": q, "limit": limit, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(SEARCH, params=params)).json()
        seen += [(hit["id"], hit["rank"]["score"]) for hit in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return seen
    raise AssertionError("the pages did not end")


async def test_fuzzy_relevance_pages_read_from_the_trigram_index_equal_ranking_every_match(
    cloud_client: httpx.AsyncClient, owner: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = ["Zebracorn Study Hall", "Zebracorn Study Hall", "Zebracorn Reading Room", "Zebracorns Hall"]
    names += ["Zebra Hall", "Unicorn Study Hall", "Zebracorn", "Hall of Zebracorn Studies"]
    for name in names:
        body = {"name": name, "timezone": "UTC", "address": "Zebracorn Lane"}
        created = await cloud_client.post("/api/v1/libraries", json=body, headers=owner.headers)
        assert created.status_code == 201, created.text
    queries = ("zebracron hall", "zebracorn", "study hal", "zebracorn lane")
    # ties of up to TIE_PROBE rows are read from the index; larger ones (probe 0) in id order
    for probe in (300, 1, 0):
        monkeypatch.setattr(search_service, "TIE_PROBE", probe)
        for q in queries:
            for limit in (1, 2, 100):
                from_index = await _walk(cloud_client, q, limit)
                with monkeypatch.context() as everything:
                    everything.setattr(search_service, "_ranks_by_name_alone", lambda q: False)
                    ranked_all = await _walk(cloud_client, q, limit)
                assert from_index == ranked_all, (probe, q, limit)
                assert len(from_index) >= 2
