"""Thin route: `GET /api/v1/libraries` (public search)."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Depends, Query
from sqlalchemy.orm import Session

from cloud.deps import get_session
from cloud.models_common import utcnow
from cloud.search.schemas import SearchPage, SearchSort
from cloud.search.service import SearchQuery, parse_shift, search_libraries

router = APIRouter(tags=["search"])


@router.get("/api/v1/libraries", response_model=SearchPage)
def search(
    q: str | None = Query(default=None, min_length=1, max_length=200),
    lat: float | None = Query(default=None, ge=-90, le=90),
    lon: float | None = Query(default=None, ge=-180, le=180),
    radius_km: float | None = Query(default=None, gt=0, le=20000),
    amenities: list[str] = Query(default=[], description="comma-separated or repeated; all must match"),
    max_price: int | None = Query(default=None, ge=0, description="cheapest hourly/day price, minor units"),
    open_now: bool = False,
    free_on: dt.date | None = Query(default=None, description="local date: at least one seat free"),
    shift: str = Query(
        default="full_day",
        max_length=20,
        description="with free_on: morning, evening, full_day or HH:MM-HH:MM",
    ),
    sort: SearchSort | None = None,
    cursor: str | None = Query(default=None, max_length=500),
    limit: int = Query(default=20, ge=1, le=100),
    session: Session = Depends(get_session),
) -> SearchPage:
    wanted = [part for value in amenities for part in value.split(",") if part.strip()]
    if len(wanted) > 30:
        wanted = wanted[:30]
    query = SearchQuery(
        q=q.strip() or None if q else None,
        lat=lat,
        lon=lon,
        radius_km=radius_km,
        amenities=wanted,
        max_price=max_price,
        open_now=open_now,
        free_on=free_on,
        shift=parse_shift(shift),
        sort=sort,
        cursor=cursor,
        limit=limit,
    )
    return search_libraries(session, query, utcnow())
