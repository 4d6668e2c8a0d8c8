"""The offline check-in decision: scanned text → verified pass → checks → durable record.

No network is involved: passes are verified against the pinned public keys, revocations and
presence come from the store. An accepted scan is committed (synchronous=FULL) before this
returns, so the caller may open the door only after the record is on disk.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edge.store import Store, iso
from shared.passes import PassClaims, PassRejected, PassRejectReason, PassScope, verify_pass

log = logging.getLogger(__name__)


class RejectReason(StrEnum):
    MALFORMED = "malformed"
    UNKNOWN_KEY = "unknown_key"
    BAD_SIGNATURE = "bad_signature"
    NOT_YET_VALID = "not_yet_valid"
    EXPIRED = "expired"
    WRONG_LIBRARY = "wrong_library"
    REVOKED = "revoked"
    ANTI_PASSBACK = "anti_passback"
    CONCURRENT_USE = "concurrent_use"
    DOOR_NOT_ALLOWED = "door_not_allowed"
    TOO_LONG = "too_long"


@dataclass(frozen=True)
class Door:
    """Where a scan happened: the door it opens, whether it is the way in or out, its zone."""

    door_id: str
    direction: str  # "in" | "out"
    zone: str | None = None


@dataclass(frozen=True)
class Decision:
    accepted: bool
    door: Door
    reason: RejectReason | None = None
    detail: str = ""
    claims: PassClaims | None = None
    event_id: str | None = None

    def event_payload(self) -> dict[str, object]:
        claims = self.claims
        return {
            "door_id": self.door.door_id,
            "direction": self.door.direction,
            "accepted": self.accepted,
            "reason": self.reason.value if self.reason else None,
            "detail": self.detail,
            "event_id": self.event_id,
            "pass_id": claims.pass_id if claims else None,
            "holder": claims.holder if claims else None,
            "target": claims.target if claims else None,
            "scope": claims.scope.value if claims else None,
        }


# A pass that entered at one door this recently cannot be entering at another: it is being shared.
CONCURRENT_WINDOW = timedelta(seconds=30)
# Leaving needs a genuine pass, not a current one: someone whose booking just ended must get out.
_EXIT_TOLERATED = {PassRejectReason.EXPIRED, PassRejectReason.NOT_YET_VALID}


class CheckinDesk:
    def __init__(
        self,
        store: Store,
        *,
        public_keys: dict[str, Ed25519PublicKey],
        library: str,
        skew: timedelta,
        anti_passback: bool = True,
        max_scan_bytes: int = 512,
    ) -> None:
        self.store = store
        self.public_keys = public_keys
        self.library = library
        self.skew = skew
        self.anti_passback = anti_passback
        self.max_scan_bytes = max_scan_bytes

    def decide(self, scanned: bytes | str, door: Door, now: datetime) -> Decision:
        raw = scanned.encode("utf-8", "surrogateescape") if isinstance(scanned, str) else scanned
        if len(raw) > self.max_scan_bytes:
            return Decision(False, door, RejectReason.TOO_LONG, f"{len(raw)} bytes")
        claims, failure = self._verify(raw.strip(), door, now)
        if failure is not None:
            return failure
        assert claims is not None
        if self.store.is_revoked(claims.pass_id):
            return Decision(False, door, RejectReason.REVOKED, "pass revoked", claims)
        problem = self._door_problem(claims, door, now)
        if problem is not None:
            return problem
        event_id = self.store.record_checkin(
            pass_id=claims.pass_id,
            holder=claims.holder,
            door_id=door.door_id,
            direction=door.direction,
            method="qr",
            at=now,
            outbox_payload={
                "pass_id": claims.pass_id,
                "holder": claims.holder,
                "target": claims.target,
                "door_id": door.door_id,
                "direction": door.direction,
                "occurred_at": iso(now),
            },
        )
        return Decision(True, door, claims=claims, event_id=event_id)

    def _verify(self, raw: bytes, door: Door, now: datetime) -> tuple[PassClaims | None, Decision | None]:
        try:
            claims = verify_pass(
                raw, public_keys=self.public_keys, library=self.library, now=now, skew=self.skew
            )
            return claims, None
        except PassRejected as rejected:
            if door.direction == "out" and rejected.reason in _EXIT_TOLERATED:
                return verify_pass(
                    raw, public_keys=self.public_keys, library=self.library, now=_inside(raw), skew=self.skew
                ), None
            reason = RejectReason(rejected.reason.value)
            return None, Decision(False, door, reason, rejected.detail)

    def _door_problem(self, claims: PassClaims, door: Door, now: datetime) -> Decision | None:
        if door.zone is not None and claims.scope == PassScope.ZONE and claims.target != door.zone:
            return Decision(
                False, door, RejectReason.DOOR_NOT_ALLOWED, f"pass is for zone {claims.target}", claims
            )
        presence = self.store.presence(claims.pass_id)
        inside = bool(presence and presence["inside"])
        if door.direction == "in" and inside and presence is not None:
            entered_at = datetime.fromisoformat(presence["at"])
            if presence["door_id"] != door.door_id and now - entered_at < CONCURRENT_WINDOW:
                return Decision(
                    False, door, RejectReason.CONCURRENT_USE, "entered at another door just now", claims
                )
            if self.anti_passback:
                return Decision(False, door, RejectReason.ANTI_PASSBACK, "already inside", claims)
        if door.direction == "out" and not inside and self.anti_passback and presence is not None:
            return Decision(False, door, RejectReason.ANTI_PASSBACK, "not inside", claims)
        return None


def _inside(raw: bytes) -> datetime:
    """A moment inside the pass's own window, to re-check signature and library for an exit."""
    from shared.passes import parse_pass

    claims = parse_pass(raw)
    return claims.valid_from + (claims.valid_until - claims.valid_from) / 2
