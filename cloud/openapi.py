"""The OpenAPI document with the error responses every operation can give, in the error envelope.

FastAPI documents only the success code and 422. The API's error contract is wider and follows from
how a route is built, so it is derived here rather than repeated on ~90 routes:

- every operation: 400 (bad host/request), 413 (body limit), 422 (validation), 503 (database down);
- every `/api/v1` operation: 429 (rate limits);
- an operation that depends on the bearer token (`current_claims`): 401 and 403;
- an operation with path parameters or an `*_id` query parameter: 404 (unknown or other tenant's id);
- POST/PUT/PATCH/DELETE: 404 (an id in the body, or a provider that is not configured) and 409
  (state conflicts).

Route-specific codes beyond these are declared with `responses=` on the route.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from fastapi import FastAPI, routing
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from cloud.deps import current_claims
from cloud.errors import STATUS_CODES

ERROR_SCHEMA_NAME = "ErrorEnvelope"
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {},
            },
        }
    },
}
ALWAYS = (400, 413, 422, 503)
WRITE_METHODS = frozenset({"post", "put", "patch", "delete"})


def _needs_token(dependant: Dependant) -> bool:
    return any(
        dep.call is current_claims or _needs_token(dep) for dep in dependant.dependencies if dep is not None
    )


def _takes_an_id_in_the_query(dependant: Dependant) -> bool:
    return any(param.name.endswith("_id") for param in dependant.query_params) or any(
        _takes_an_id_in_the_query(dep) for dep in dependant.dependencies if dep is not None
    )


def api_routes(routes: Sequence[BaseRoute]) -> Iterator[tuple[str, APIRoute]]:
    """(full path template, route) of every API route, also inside included routers."""
    contexts = getattr(routing, "iter_route_contexts", None)  # FastAPI >= 0.160 nests included routers
    if contexts is None:
        yield from ((route.path_format, route) for route in routes if isinstance(route, APIRoute))
        return
    for context in contexts(routes):
        if isinstance(context.original_route, APIRoute) and context.path_format:
            yield context.path_format, context.original_route


def error_codes(path: str, route: APIRoute, method: str) -> list[int]:
    codes = set(ALWAYS)
    if path.startswith("/api/v1/"):
        codes.add(429)
    if _needs_token(route.dependant):
        codes.update((401, 403))
    if "{" in path or _takes_an_id_in_the_query(route.dependant):  # an unknown or foreign id
        codes.add(404)
    if method in WRITE_METHODS:
        codes.update((404, 409))
    return sorted(codes)


def _error_response(code: int) -> dict[str, Any]:
    return {
        "description": STATUS_CODES.get(code, "error").replace("_", " "),
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR_SCHEMA_NAME}"}}},
    }


def build_openapi(app: FastAPI) -> dict[str, Any]:
    document = get_openapi(title=app.title, version=app.version, routes=app.routes)
    document.setdefault("components", {}).setdefault("schemas", {})[ERROR_SCHEMA_NAME] = ERROR_SCHEMA
    for path, route in api_routes(app.routes):
        if not route.include_in_schema:
            continue
        for method in route.methods or ():
            operation = document["paths"].get(path, {}).get(method.lower())
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            for code in error_codes(path, route, method.lower()):
                if str(code) == "422" and "422" in responses:
                    responses["422"] = _error_response(422)  # ours is the envelope, not FastAPI's default
                responses.setdefault(str(code), _error_response(code))
    return document


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route's own error codes (beyond the derived ones), in the envelope."""
    return {
        code: {
            "description": STATUS_CODES.get(code, "error").replace("_", " "),
            "content": {"application/json": {"schema": ERROR_SCHEMA}},
        }
        for code in codes
    }
