"""Staff at the desk: PIN check against the synced `staff` table, lockout, signed session cookies."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import jwt

from edge.store import Store, hash_secret, utcnow, verify_secret

MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=5)
SESSION_LIFETIME = timedelta(hours=12)
SESSION_COOKIE = "kiosk_session"
_SECRET_SETTING = "kiosk_session_secret"  # noqa: S105 - a settings key, not a secret
_ALGORITHM = "HS256"


@dataclass(frozen=True)
class StaffMember:
    user_id: str
    name: str
    role: str


class LockedOut(Exception):
    def __init__(self, until: datetime) -> None:
        super().__init__(f"too many wrong PINs; try again after {until.isoformat()}")
        self.until = until


def ensure_staff(store: Store, user_id: str, name: str, pin: str, role: str = "staff") -> None:
    """Add (or reset) one staff member with a hashed PIN: for the demo and first boot before sync."""
    if not pin.isdigit() or not 4 <= len(pin) <= 12:
        raise ValueError("a PIN is 4 to 12 digits")
    store.db.table("staff").upsert(
        {"user_id": user_id, "name": name, "pin_hash": hash_secret(pin), "role": role, "active": 1},
        pk="user_id",
    )


def staff_for_pin(store: Store, pin: str) -> StaffMember | None:
    rows = store.db.query("SELECT user_id, name, role, pin_hash FROM staff WHERE active = 1")
    for row in rows:
        if row["pin_hash"] and verify_secret(row["pin_hash"], pin):
            return StaffMember(row["user_id"], row["name"] or row["user_id"], row["role"] or "staff")
    return None


@dataclass
class LoginThrottle:
    """Failures per client address; five wrong PINs lock that address out for five minutes."""

    failures: dict[str, list[datetime]] = field(default_factory=dict)
    locked_until: dict[str, datetime] = field(default_factory=dict)

    def check(self, client: str, now: datetime) -> None:
        until = self.locked_until.get(client)
        if until is not None and now < until:
            raise LockedOut(until)
        if until is not None:
            del self.locked_until[client]

    def failed(self, client: str, now: datetime) -> None:
        recent = [at for at in self.failures.get(client, []) if now - at < LOCKOUT] + [now]
        self.failures[client] = recent
        if len(recent) >= MAX_FAILURES:
            self.failures.pop(client)
            self.locked_until[client] = now + LOCKOUT

    def succeeded(self, client: str) -> None:
        self.failures.pop(client, None)


def session_secret(store: Store) -> str:
    secret = store.get_setting(_SECRET_SETTING)
    if secret is None:
        secret = secrets.token_urlsafe(32)
        store.set_setting(_SECRET_SETTING, secret)
    return secret


def issue_session(secret: str, member: StaffMember, now: datetime | None = None) -> str:
    moment = now or utcnow()
    claims: dict[str, Any] = {
        "sub": member.user_id,
        "name": member.name,
        "role": member.role,
        "csrf": secrets.token_urlsafe(16),
        "iat": moment,
        "exp": moment + SESSION_LIFETIME,
    }
    return jwt.encode(claims, secret, algorithm=_ALGORITHM)


def read_session(secret: str, token: str | None) -> dict[str, Any] | None:
    if not token:
        return None
    try:
        return dict(jwt.decode(token, secret, algorithms=[_ALGORITHM], options={"require": ["exp", "sub"]}))
    except jwt.PyJWTError:
        return None
