"""Library search results (each hit explains its rank)."""

from __future__ import annotations

import uuid
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel


class SearchSort(StrEnum):
    RELEVANCE = "relevance"
    DISTANCE = "distance"
    NAME = "name"


class RankExplained(BaseModel):
    """score = text_rank + similarity (relevance sort); distance_m is from (lat, lon) when given."""

    score: float
    text_rank: float
    similarity: float
    distance_m: float | None


class LibraryHit(BaseModel):
    id: uuid.UUID
    name: str
    address: str
    latitude: float | None
    longitude: float | None
    timezone: str
    amenities: list[str]
    rating: Decimal | None
    min_price_minor: int | None
    currency: str | None
    open_now: bool
    rank: RankExplained


class SearchPage(BaseModel):
    items: list[LibraryHit]
    next_cursor: str | None
    sort: SearchSort
