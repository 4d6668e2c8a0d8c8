"""Signed unsubscribe links for `List-Unsubscribe` (RFC 2369) with one-click POST (RFC 8058).

The token names the recipient and what to stop (one event kind, or every optional message), is
signed with a server secret (HS256 via PyJWT) and expires so that leaked links age out.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from urllib.parse import urlencode

import jwt

from cloud.notifications.kinds import EventKind

TOKEN_PURPOSE = "unsubscribe"  # noqa: S105 - a claim value, not a secret
DEFAULT_LIFETIME = dt.timedelta(days=365)
MIN_SECRET_BYTES = 32


class InvalidUnsubscribeToken(ValueError):
    """The link was tampered with, expired, or not an unsubscribe token."""


@dataclass(frozen=True)
class UnsubscribeRequest:
    recipient_id: str
    kind: EventKind | None  # None: every optional message


def _check_secret(secret: str) -> bytes:
    raw = secret.encode()
    if len(raw) < MIN_SECRET_BYTES:
        raise ValueError(f"unsubscribe secret must be at least {MIN_SECRET_BYTES} bytes")
    return raw


def make_unsubscribe_token(
    secret: str,
    recipient_id: str,
    kind: EventKind | None,
    now: dt.datetime | None = None,
    lifetime: dt.timedelta = DEFAULT_LIFETIME,
) -> str:
    issued = now or dt.datetime.now(dt.UTC)
    claims = {
        "sub": recipient_id,
        "kind": kind.value if kind else None,
        "purpose": TOKEN_PURPOSE,
        "iat": int(issued.timestamp()),
        "exp": int((issued + lifetime).timestamp()),
    }
    return jwt.encode(claims, _check_secret(secret), algorithm="HS256")


def verify_unsubscribe_token(secret: str, token: str, now: dt.datetime | None = None) -> UnsubscribeRequest:
    try:
        claims = jwt.decode(
            token,
            _check_secret(secret),
            algorithms=["HS256"],
            options={"require": ["sub", "exp", "purpose"], "verify_exp": False},
        )
    except jwt.PyJWTError as exc:
        raise InvalidUnsubscribeToken(f"invalid unsubscribe token: {exc}") from exc
    current = now or dt.datetime.now(dt.UTC)
    if not isinstance(claims["exp"], int) or claims["exp"] < current.timestamp():
        raise InvalidUnsubscribeToken("invalid unsubscribe token: expired")
    if claims.get("purpose") != TOKEN_PURPOSE or not isinstance(claims.get("sub"), str):
        raise InvalidUnsubscribeToken("invalid unsubscribe token: wrong purpose")
    try:
        kind = EventKind(claims["kind"]) if claims.get("kind") else None
    except ValueError as exc:
        raise InvalidUnsubscribeToken("invalid unsubscribe token: unknown event kind") from exc
    return UnsubscribeRequest(recipient_id=claims["sub"], kind=kind)


def unsubscribe_url(base_url: str, token: str) -> str:
    """`base_url` is the public endpoint, e.g. https://api.example/api/v1/notifications/unsubscribe."""
    return f"{base_url}?{urlencode({'token': token})}"
