"""Library search: PostgreSQL full text + pg_trgm fuzzy names, earthdistance, filters, keyset cursor.

Relevance = ts_rank over name (weight A) and address (B) + trigram similarity of the name, so a
misspelt query ("sunrize libary") still finds "Sunrise Library". Matching uses indexable operators
only (`@@`, `%`, `<%`), and distance filtering `earth_box` before the exact `earth_distance`.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from cloud.booking.timing import WEEKDAYS
from cloud.errors import ApiError
from cloud.search.schemas import LibraryHit, RankExplained, SearchPage, SearchSort

NO_DISTANCE = 1e12
# Fuzzy relevance pages read this many rows beyond the page by word similarity: ties up to this
# size are read whole; a larger tie is dense enough to read in id order.
TIE_PROBE = 300
# Transaction-local: a stricter trigram threshold keeps fuzzy matches selective (so the GIN index
# pays off), and SSD-like page costs let the planner pick it over a sequential scan.
_TUNING = text(
    "SELECT set_config('pg_trgm.similarity_threshold', '0.45', true), "
    "set_config('random_page_cost', '1.1', true)"
)

_OPEN_NOW = """(
  NOT l.closures @> jsonb_build_array(
    jsonb_build_object('date', to_char(timezone(l.timezone, :now), 'YYYY-MM-DD')))
  AND coalesce(
    to_char(timezone(l.timezone, :now), 'HH24:MI')
      >= l.opening_hours -> lower(to_char(timezone(l.timezone, :now), 'dy')) ->> 'open'
    AND to_char(timezone(l.timezone, :now), 'HH24:MI')
      < l.opening_hours -> lower(to_char(timezone(l.timezone, :now), 'dy')) ->> 'close',
    false))"""

# The wanted shift clipped to the library's opening hours on :free_on (local wall times), as a
# half-open UTC range; no row when the library is closed then. A seat is free when no active booking
# (or monthly-plan day) overlaps that range: library_busy_seats sees every tenant's bookings.
_FREE_ON = """EXISTS (
  SELECT 1 FROM (
    SELECT tstzrange(timezone(l.timezone, q.day + greatest(q.shift_from, o.open)),
                     timezone(l.timezone, q.day + least(q.shift_to, o.close)), '[)') AS during
    FROM (SELECT CAST(:free_on AS date) AS day, CAST(:free_on_text AS text) AS day_text,
                 CAST(:weekday AS text) AS weekday,
                 CAST(:shift_start AS interval) AS shift_from, CAST(:shift_end AS interval) AS shift_to) q
    CROSS JOIN LATERAL (
      SELECT (l.opening_hours -> q.weekday ->> 'open')::time::interval AS open,
             CASE WHEN l.opening_hours -> q.weekday ->> 'close' = '24:00' THEN interval '24 hours'
                  ELSE (l.opening_hours -> q.weekday ->> 'close')::time::interval END AS close) o
    WHERE o.open IS NOT NULL AND o.close IS NOT NULL
      AND NOT l.closures @> jsonb_build_array(jsonb_build_object('date', q.day_text))
      AND greatest(q.shift_from, o.open) < least(q.shift_to, o.close)) w
  JOIN seats s ON s.library_id = l.id AND s.status = 'active'
  WHERE NOT EXISTS (SELECT 1 FROM library_busy_seats(l.id, w.during) b WHERE b.seat_id = s.id))"""

_CHEAPEST = """(SELECT {column} FROM plans p WHERE p.library_id = l.id AND p.active
  AND p.kind IN ('hourly', 'day_pass') ORDER BY p.price_minor LIMIT 1)"""

_TEXT_RANK = "ts_rank(l.search_doc, websearch_to_tsquery('simple', :q))::float8"
_SIMILARITY = "greatest(similarity(lower(l.name), :q), word_similarity(:q, lower(l.name)))::float8"
_FULL_TEXT = "l.search_doc @@ websearch_to_tsquery('simple', :q)"
_FUZZY_NAME = "(lower(l.name) % :q OR :q <% lower(l.name))"
_MATCHES = f"({_FULL_TEXT} OR {_FUZZY_NAME})"
_AFTER_CURSOR = f"(-({_TEXT_RANK} + {_SIMILARITY}), l.id) > (:cursor_key, :cursor_id)"


def _ranks_by_name_alone(q: str) -> bool:
    """True when a library that does not match the full-text query ranks by its name's similarity
    alone: ts_rank gives every such row the same constant for a query of one or two plain words.
    (Three words, OR, phrases, negation or punctuation give partial matches a rank of their own.)"""
    words = q.split()
    return 0 < len(words) <= 2 and all(word.isalnum() and word.lower() != "or" for word in words)


def _relevance_candidates(filters: list[str], after_cursor: bool) -> str:
    """The rows a relevance page can come from, without ranking every fuzzy match (a common word
    matches thousands of names): every full-text match, and the names nearest by word similarity,
    read in distance order from the GiST trigram index (among all names, and among the names
    similar as a whole, `%`). The caller still applies the match condition to these.

    Exact for `_ranks_by_name_alone` queries. Outside the full-text matches score = a constant +
    word_similarity (pg_trgm's word_similarity is never below similarity: its best extent of the
    name holds every trigram the two share). A name with word_similarity at or above the `<%`
    threshold matches, so down to there the nearest names are the best matches, in rank order:
    a row among the best `:limit` is among the `:limit` nearest, or tied with the `:limit`-th
    and among the lowest `:limit` ids of that tie. Below that threshold only `%` names match:
    the `:limit` of those nearest by word similarity (and ties) are candidates too.
    A small tie is read whole within the `:probe` nearest; a larger one (thousands of names
    sharing the query's one common word) is read in id order, where its rows are dense. The
    nearest names are read without the match condition so that the scan stops at the first row
    past the tie instead of looking through every name for one more match."""
    where = " AND ".join([*filters, *([_AFTER_CURSOR] if after_cursor else [])])
    # = ANY(ARRAY(...)): the candidates are read first and fetched by id; with IN the planner may
    # instead scan every match and probe the candidates, ranking them all again
    return f"""l.id = ANY(ARRAY(
      WITH by_word AS MATERIALIZED (
        SELECT * FROM (
          SELECT l.id, :q <<-> lower(l.name) AS distance FROM libraries l WHERE {where}
          ORDER BY distance FETCH FIRST :limit ROWS WITH TIES) nearest
        LIMIT :probe),
      edge AS MATERIALIZED (SELECT max(distance) AS distance, count(*) = :probe AS spills FROM by_word)
      SELECT l.id FROM libraries l WHERE {" AND ".join([*filters, _FULL_TEXT])}
      UNION ALL (SELECT l.id FROM libraries l WHERE {where} AND lower(l.name) % :q
                 ORDER BY :q <<-> lower(l.name) FETCH FIRST :limit ROWS WITH TIES)
      UNION ALL SELECT id FROM by_word, edge
        WHERE by_word.distance < edge.distance OR (by_word.distance = edge.distance AND NOT edge.spills)
      UNION ALL (SELECT l.id FROM libraries l WHERE (SELECT spills FROM edge) AND {where}
                   AND :q <<-> lower(l.name) <= (SELECT distance FROM edge)
                 ORDER BY l.id LIMIT :limit)))"""  # noqa: S608 - fragments are constants; values are bound


@dataclass
class SearchQuery:
    q: str | None = None
    lat: float | None = None
    lon: float | None = None
    radius_km: float | None = None
    amenities: list[str] = field(default_factory=list)
    max_price: int | None = None
    open_now: bool = False
    free_on: dt.date | None = None
    shift: tuple[dt.timedelta, dt.timedelta] = (dt.timedelta(0), dt.timedelta(hours=24))
    sort: SearchSort | None = None
    cursor: str | None = None
    limit: int = 20


def _resolve_sort(query: SearchQuery) -> SearchSort:
    has_point = query.lat is not None
    sort = query.sort or (
        SearchSort.RELEVANCE if query.q else SearchSort.DISTANCE if has_point else SearchSort.NAME
    )
    if sort is SearchSort.RELEVANCE and not query.q:
        raise ApiError(422, "invalid_search", "relevance sort needs q")
    if sort is SearchSort.DISTANCE and not has_point:
        raise ApiError(422, "invalid_search", "distance sort needs lat and lon")
    return sort


def _validate(query: SearchQuery) -> None:
    if (query.lat is None) != (query.lon is None):
        raise ApiError(422, "invalid_search", "give both lat and lon, or neither")
    if query.radius_km is not None and query.lat is None:
        raise ApiError(422, "invalid_search", "radius_km needs lat and lon")


def _cursor(sort: SearchSort, key: Any, row_id: uuid.UUID) -> str:
    raw = json.dumps({"s": sort.value, "k": key, "id": str(row_id)})
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _read_cursor(cursor: str, sort: SearchSort) -> tuple[Any, uuid.UUID]:
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        key, row_id = data["k"], uuid.UUID(data["id"])
        valid = data["s"] == sort.value and isinstance(key, str if sort is SearchSort.NAME else (int, float))
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise ApiError(400, "invalid_cursor", "that cursor is not valid") from exc
    if not valid:
        raise ApiError(400, "invalid_cursor", "that cursor belongs to another search")
    return key, row_id


def _build(query: SearchQuery, sort: SearchSort, now: dt.datetime) -> tuple[str, dict[str, Any]]:
    params: dict[str, Any] = {"now": now, "limit": query.limit + 1, "probe": query.limit + 1 + TIE_PROBE}
    filters = ["l.status = 'active'"]
    text_rank = similarity = "0.0::float8"
    distance = "NULL::float8"
    if query.q:
        params["q"] = query.q.strip().lower()
        text_rank = _TEXT_RANK
        similarity = _SIMILARITY
    if query.lat is not None:
        params.update(lat=query.lat, lon=query.lon)
        distance = "earth_distance(ll_to_earth(:lat, :lon), ll_to_earth(l.latitude, l.longitude))"
        if query.radius_km is not None:
            params["radius_m"] = query.radius_km * 1000
            filters.append(
                "earth_box(ll_to_earth(:lat, :lon), :radius_m) @> ll_to_earth(l.latitude, l.longitude) "
                f"AND {distance} <= :radius_m"
            )
    if query.amenities:
        params["amenities"] = json.dumps(sorted({a.strip().lower() for a in query.amenities if a.strip()}))
        filters.append("l.amenities @> CAST(:amenities AS jsonb)")
    if query.max_price is not None:
        params["max_price"] = query.max_price
        filters.append(
            "EXISTS (SELECT 1 FROM plans p WHERE p.library_id = l.id AND p.active "
            "AND p.kind IN ('hourly', 'day_pass') AND p.price_minor <= :max_price)"
        )
    if query.open_now:
        filters.append(_OPEN_NOW)
    if query.free_on is not None:
        params.update(
            free_on=query.free_on,
            free_on_text=query.free_on.isoformat(),
            weekday=WEEKDAYS[query.free_on.weekday()],
            shift_start=query.shift[0],
            shift_end=query.shift[1],
        )
        filters.append(_FREE_ON)
    sort_key = {
        SearchSort.RELEVANCE: "-(text_rank + similarity)",
        SearchSort.DISTANCE: f"coalesce(distance_m, {NO_DISTANCE})",
        SearchSort.NAME: "lower(name)",
    }[sort]
    after = ""
    if query.cursor:
        params["cursor_key"], params["cursor_id"] = _read_cursor(query.cursor, sort)
        after = "WHERE (sort_key, id) > (:cursor_key, :cursor_id)"
    if query.q:
        if sort is SearchSort.RELEVANCE and _ranks_by_name_alone(query.q):
            filters.append(_relevance_candidates(filters, bool(query.cursor)))
        filters.append(_MATCHES)
    # rank and page first; the per-row extras (cheapest plan, open now) only for the page's rows
    sql = f"""
      SELECT page.*,
             {_CHEAPEST.format(column="p.price_minor")} AS min_price_minor,
             {_CHEAPEST.format(column="p.currency")} AS currency,
             {_OPEN_NOW} AS open_now
      FROM (
        SELECT * FROM (
          SELECT hits.*, {sort_key} AS sort_key FROM (
            SELECT l.id, l.name, l.address, l.latitude, l.longitude, l.timezone, l.amenities, l.rating,
                   {text_rank} AS text_rank, {similarity} AS similarity, {distance} AS distance_m
            FROM libraries l WHERE {" AND ".join(filters)}
          ) hits
        ) ranked {after}
        ORDER BY sort_key, id LIMIT :limit
      ) page JOIN libraries l ON l.id = page.id
      ORDER BY page.sort_key, page.id"""  # noqa: S608 - fragments are constants; values are bound
    return sql, params


def search_libraries(session: Session, query: SearchQuery, now: dt.datetime) -> SearchPage:
    _validate(query)
    sort = _resolve_sort(query)
    sql, params = _build(query, sort, now)
    session.execute(_TUNING)
    rows = session.execute(text(sql), params).mappings().all()
    items = [_hit(row) for row in rows[: query.limit]]
    next_cursor = None
    if len(rows) > query.limit:
        last = rows[query.limit - 1]
        next_cursor = _cursor(sort, last["sort_key"], last["id"])
    return SearchPage(items=items, next_cursor=next_cursor, sort=sort)


def _hit(row: Any) -> LibraryHit:
    return LibraryHit(
        id=row["id"],
        name=row["name"],
        address=row["address"],
        latitude=row["latitude"],
        longitude=row["longitude"],
        timezone=row["timezone"],
        amenities=list(row["amenities"]),
        rating=row["rating"],
        min_price_minor=row["min_price_minor"],
        currency=row["currency"],
        open_now=bool(row["open_now"]),
        rank=RankExplained(
            score=row["text_rank"] + row["similarity"],
            text_rank=row["text_rank"],
            similarity=row["similarity"],
            distance_m=row["distance_m"],
        ),
    )


NAMED_SHIFTS: dict[str, tuple[str, str]] = {
    "morning": ("06:00", "14:00"),
    "evening": ("14:00", "22:00"),
    "full_day": ("00:00", "24:00"),
}


def _offset(hhmm: str) -> dt.timedelta:
    hour, minute = (int(part) for part in hhmm.split(":"))
    if not (0 <= minute < 60 and (0 <= hour < 24 or (hour, minute) == (24, 0))):
        raise ValueError(hhmm)
    return dt.timedelta(hours=hour, minutes=minute)


def parse_shift(shift: str) -> tuple[dt.timedelta, dt.timedelta]:
    """`morning` (06-14), `evening` (14-22), `full_day` (opening hours) or local `HH:MM-HH:MM`, as
    offsets from local midnight; 422 for anything else."""
    named = NAMED_SHIFTS.get(shift.strip().lower())
    start, sep, end = (named[0], "-", named[1]) if named else shift.strip().partition("-")
    try:
        if not sep:
            raise ValueError(shift)
        span = _offset(start), _offset(end)
    except ValueError as exc:
        raise ApiError(
            422,
            "invalid_shift",
            "shift is morning, evening, full_day or local HH:MM-HH:MM",
            {"named": sorted(NAMED_SHIFTS)},
        ) from exc
    if span[1] <= span[0]:
        raise ApiError(422, "invalid_shift", "the shift must end after it starts")
    return span
