"""The JSON error envelope `{"error": {"code", "message", "details"}}` for every error response."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    410: "gone",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    503: "service_unavailable",
}


class ApiError(Exception):
    """An error a service raises on purpose; becomes the envelope with `status`.

    Services may raise it (it carries no FastAPI types), routes need not translate it.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers or {}


def error_response(
    status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "details": jsonable_encoder(details)}}
    return JSONResponse(body, status_code=status, headers=headers)


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = STATUS_CODES.get(exc.status_code, "http_error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    details = None if isinstance(exc.detail, str) else exc.detail
    return error_response(exc.status_code, code, message, details, dict(exc.headers or {}))


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [
        {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
        for err in exc.errors()
    ]
    return error_response(422, "validation_error", "request is not valid", details)


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """The database is down or restarting (connection lost or refused, no pool slot), not a bad query;
    or (SQLSTATE class 40) the transaction lost a deadlock or serialization race: 409, retry."""
    orig = getattr(exc, "orig", None)
    sqlstate = str(getattr(orig, "sqlstate", None) or "")
    if sqlstate.startswith("40"):  # deadlock_detected, serialization_failure: the database is fine
        log.info("transaction rolled back on %s: %s", request.url.path, sqlstate)
        return error_response(
            409, "write_conflict", "a concurrent change conflicted with this request; retry it",
            {"sqlstate": sqlstate},
        )  # fmt: skip
    # also reached from WebSocket routes, whose connection has no method
    log.warning("database unavailable on %s: %s %s", request.url.path, type(orig or exc).__name__, sqlstate)
    return error_response(
        503,
        "database_unavailable",
        "the database is unavailable; retry shortly",
        headers={"Retry-After": "1"},
    )


async def _invalid_data(request: Request, exc: Exception) -> JSONResponse:
    """A value PostgreSQL cannot store (a NUL character in text, a number or date out of range) that
    got past validation: the caller's data, so 422 rather than a 500."""
    orig = getattr(exc, "orig", None) or exc
    log.warning("value refused by the database on %s %s: %s", request.method, request.url.path, orig)
    first_line = str(orig).splitlines()[0] if str(orig) else "invalid value"
    return error_response(422, "invalid_value", f"a value cannot be stored: {first_line}")


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal_error", "internal server error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    for unavailable in (OperationalError, InterfaceError, PoolTimeout):
        app.add_exception_handler(unavailable, _database_unavailable)
    app.add_exception_handler(DataError, _invalid_data)
    app.add_exception_handler(Exception, _unexpected_error)
