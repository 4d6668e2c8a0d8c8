"""Helpers for analytics tests."""

from __future__ import annotations

from typing import Any

import httpx


async def library_view(client: httpx.AsyncClient, setup: Any, view: str, query: str = "") -> dict[str, Any]:
    """GET /analytics/libraries/{id}/{view}?{query} as the library's owner; asserts 200."""
    response = await client.get(
        f"/api/v1/analytics/libraries/{setup.id}/{view}?{query}", headers=setup.owner.headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body
