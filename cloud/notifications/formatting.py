"""Locale-aware formatting for templates: money from integer minor units, times in the library's zone."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime, format_time
from babel.numbers import format_currency, format_decimal, get_currency_precision


class FormattingError(ValueError):
    """A value a template asked to format has the wrong shape (naive time, float money, ...)."""


def money(amount_minor: int, currency: str, locale: str) -> str:
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int):
        raise FormattingError(f"money must be integer minor units, got {amount_minor!r}")
    digits = get_currency_precision(currency)
    return format_currency(Decimal(amount_minor).scaleb(-digits), currency, locale=locale)


def _aware(value: dt.datetime | str) -> dt.datetime:
    # Contexts read back from the outbox's JSON column carry ISO 8601 strings.
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError as exc:
            raise FormattingError(f"not an ISO 8601 datetime: {value!r}") from exc
    if not isinstance(value, dt.datetime):
        raise FormattingError(f"expected a datetime, got {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise FormattingError(f"naive datetime {value.isoformat()} (times must be timezone-aware)")
    return value


def local_datetime(value: dt.datetime | str, zone: ZoneInfo, locale: str) -> str:
    return format_datetime(_aware(value), "d MMM y, h:mm a", tzinfo=zone, locale=locale)


def local_time(value: dt.datetime | str, zone: ZoneInfo, locale: str) -> str:
    return format_time(_aware(value).astimezone(zone), "h:mm a", locale=locale)


def local_date(value: dt.date | dt.datetime | str, zone: ZoneInfo, locale: str) -> str:
    if isinstance(value, str):
        value = _parse_day_or_datetime(value)
    if isinstance(value, dt.datetime):
        value = _aware(value).astimezone(zone).date()
    if not isinstance(value, dt.date):
        raise FormattingError(f"expected a date, got {value!r}")
    return format_date(value, "d MMM y", locale=locale)


def _parse_day_or_datetime(value: str) -> dt.date | dt.datetime:
    try:
        return dt.date.fromisoformat(value) if len(value) == 10 else dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise FormattingError(f"not an ISO 8601 date: {value!r}") from exc


def number(value: float | int, locale: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FormattingError(f"expected a number, got {value!r}")
    return format_decimal(value, locale=locale)
