"""QR passes: Ed25519-signed, verifiable offline, small enough for a cheap scanner.

Wire format: ``SS1:`` followed by the Base45 (RFC 9285) text of 114 bytes:

    version(1) key_id(4) pass_id(8) scope(1) library(8) target(8) holder(8)
    valid_from(4) valid_until(4) issued_at(4)        -- uint32 epoch seconds, big-endian
    signature(64)                                    -- Ed25519 over all bytes before it

That is 175 characters, all in the QR alphanumeric set, so the code fits QR version 7 at ECC M.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import struct
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

PASS_PREFIX = "SS1:"  # noqa: S105 - a format marker, not a secret
FORMAT_VERSION = 1
MAX_PASS_TEXT_LENGTH = 512  # checked before any decoding; a valid pass is 175 characters

_BODY = struct.Struct(">B4s8sB8s8s8sIII")
_SIGNATURE_LENGTH = 64
_PASS_LENGTH = _BODY.size + _SIGNATURE_LENGTH
_MAX_EPOCH = 2**32 - 1

_HEX16 = re.compile(r"[0-9a-f]{16}")
_HEX8 = re.compile(r"[0-9a-f]{8}")


class PassScope(StrEnum):
    SEAT = "seat"
    ZONE = "zone"


_SCOPE_CODES: dict[PassScope, int] = {PassScope.SEAT: 1, PassScope.ZONE: 2}
_SCOPES_BY_CODE: dict[int, PassScope] = {code: scope for scope, code in _SCOPE_CODES.items()}


@dataclass(frozen=True)
class PassClaims:
    pass_id: str  # 16 hex
    library: str  # short_id(library uuid)
    scope: PassScope
    target: str  # short_id(seat uuid) or short_id(zone uuid)
    holder: str  # short_id(user uuid)
    valid_from: datetime  # tz-aware UTC, whole seconds
    valid_until: datetime
    issued_at: datetime
    key_id: str  # 8 hex chars, key_id_for(public_key)


class PassRejectReason(StrEnum):
    MALFORMED = "malformed"
    UNKNOWN_KEY = "unknown_key"
    BAD_SIGNATURE = "bad_signature"
    NOT_YET_VALID = "not_yet_valid"
    EXPIRED = "expired"
    WRONG_LIBRARY = "wrong_library"


class PassRejected(Exception):
    def __init__(self, reason: PassRejectReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


# --- ids and keys -----------------------------------------------------------------------------------


def short_id(value: uuid.UUID | str) -> str:
    """First 8 bytes of a UUID as 16 lowercase hex chars (the id form used inside passes)."""
    as_uuid = value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    return as_uuid.bytes[:8].hex()


def new_pass_id() -> str:
    return secrets.token_bytes(8).hex()


def generate_signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def _raw_public(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes_raw()


def key_id_for(public_key: Ed25519PublicKey) -> str:
    """8 hex chars: the first 4 bytes of SHA-256 over the raw public key."""
    return hashlib.sha256(_raw_public(public_key)).digest()[:4].hex()


def _b64url_encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64url_decode_32(text: str) -> bytes:
    stripped = text.strip().rstrip("=")
    if not re.fullmatch(r"[A-Za-z0-9_-]{43}", stripped):
        raise ValueError("expected base64url of 32 raw key bytes")
    return base64.urlsafe_b64decode(stripped + "=")


def public_key_to_text(public_key: Ed25519PublicKey) -> str:
    return _b64url_encode(_raw_public(public_key))


def public_key_from_text(text: str) -> Ed25519PublicKey:
    """Raises ValueError for anything but base64url of 32 bytes."""
    return Ed25519PublicKey.from_public_bytes(_b64url_decode_32(text))


def private_key_to_text(private_key: Ed25519PrivateKey) -> str:
    return _b64url_encode(private_key.private_bytes_raw())


def private_key_from_text(text: str) -> Ed25519PrivateKey:
    """Raises ValueError for anything but base64url of a 32-byte seed."""
    return Ed25519PrivateKey.from_private_bytes(_b64url_decode_32(text))


# --- Base45 (RFC 9285) ------------------------------------------------------------------------------

_BASE45_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
_BASE45_VALUES = {char: index for index, char in enumerate(_BASE45_ALPHABET)}


def base45_encode(data: bytes) -> str:
    chars: list[str] = []
    for start in range(0, len(data) - 1, 2):
        value = data[start] * 256 + data[start + 1]
        value, c = divmod(value, 45)
        e, d = divmod(value, 45)
        chars += (_BASE45_ALPHABET[c], _BASE45_ALPHABET[d], _BASE45_ALPHABET[e])
    if len(data) % 2:
        d, c = divmod(data[-1], 45)
        chars += (_BASE45_ALPHABET[c], _BASE45_ALPHABET[d])
    return "".join(chars)


def base45_decode(text: str) -> bytes:
    """Strict decoder: raises ValueError on foreign characters, bad length or out-of-range groups."""
    if len(text) % 3 == 1:
        raise ValueError("base45 length leaves a dangling character")
    try:
        values = [_BASE45_VALUES[char] for char in text]
    except KeyError as exc:
        raise ValueError(f"character {exc.args[0]!r} is not base45") from None
    out = bytearray()
    for start in range(0, len(values), 3):
        group = values[start : start + 3]
        number = sum(value * 45**position for position, value in enumerate(group))
        if len(group) == 3:
            if number > 0xFFFF:
                raise ValueError("base45 group out of range")
            out += number.to_bytes(2, "big")
        else:
            if number > 0xFF:
                raise ValueError("base45 group out of range")
            out.append(number)
    return bytes(out)


# --- issue --------------------------------------------------------------------------------------------


def _epoch(moment: datetime, field: str) -> int:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{field} must be timezone-aware")
    seconds = int(moment.timestamp() // 1)
    if not 0 <= seconds <= _MAX_EPOCH:
        raise ValueError(f"{field} is outside the uint32 epoch range")
    return seconds


def _require_hex(value: str, pattern: re.Pattern[str], field: str) -> bytes:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ValueError(f"{field} must be {pattern.pattern} (lowercase hex)")
    return bytes.fromhex(value)


def _pack_claims(claims: PassClaims) -> bytes:
    valid_from = _epoch(claims.valid_from, "valid_from")
    valid_until = _epoch(claims.valid_until, "valid_until")
    if valid_until < valid_from:
        raise ValueError("valid_until is before valid_from")
    return _BODY.pack(
        FORMAT_VERSION,
        _require_hex(claims.key_id, _HEX8, "key_id"),
        _require_hex(claims.pass_id, _HEX16, "pass_id"),
        _SCOPE_CODES[PassScope(claims.scope)],
        _require_hex(claims.library, _HEX16, "library"),
        _require_hex(claims.target, _HEX16, "target"),
        _require_hex(claims.holder, _HEX16, "holder"),
        valid_from,
        valid_until,
        _epoch(claims.issued_at, "issued_at"),
    )


def issue_pass(claims: PassClaims, private_key: Ed25519PrivateKey) -> str:
    """Sign claims into QR text. Times are truncated to whole seconds.

    Raises ValueError if the claims do not fit the format or `claims.key_id` is not this key's id.
    """
    expected_key_id = key_id_for(private_key.public_key())
    if claims.key_id != expected_key_id:
        raise ValueError(f"claims.key_id {claims.key_id!r} is not the signing key's id {expected_key_id!r}")
    body = _pack_claims(claims)
    return PASS_PREFIX + base45_encode(body + private_key.sign(body))


# --- parse and verify ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _DecodedPass:
    claims: PassClaims
    signed_bytes: bytes
    signature: bytes


def _malformed(detail: str) -> PassRejected:
    return PassRejected(PassRejectReason.MALFORMED, detail)


def _as_text(text: str | bytes) -> str:
    if not isinstance(text, str | bytes | bytearray):
        raise _malformed(f"expected text, got {type(text).__name__}")
    if len(text) > MAX_PASS_TEXT_LENGTH:
        raise _malformed(f"longer than {MAX_PASS_TEXT_LENGTH} characters")
    # A valid pass never ends in a space (the last Base45 digit is at most 32), so stripping the
    # CR/LF or blanks a scanner appends cannot damage one.
    if isinstance(text, str):
        return text.strip()
    try:
        return bytes(text).decode("ascii").strip()
    except UnicodeDecodeError:
        raise _malformed("not ASCII") from None


def _from_epoch(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def _decode(text: str | bytes) -> _DecodedPass:
    cleaned = _as_text(text)
    if not cleaned.startswith(PASS_PREFIX):
        raise _malformed(f"missing {PASS_PREFIX!r} prefix")
    try:
        raw = base45_decode(cleaned[len(PASS_PREFIX) :])
    except ValueError as exc:
        raise _malformed(str(exc)) from None
    if len(raw) != _PASS_LENGTH:
        raise _malformed(f"decoded to {len(raw)} bytes, expected {_PASS_LENGTH}")
    body, signature = raw[: _BODY.size], raw[_BODY.size :]
    version, key_id, pass_id, scope, library, target, holder, v_from, v_until, issued = _BODY.unpack(body)
    if version != FORMAT_VERSION:
        raise _malformed(f"unsupported format version {version}")
    if scope not in _SCOPES_BY_CODE:
        raise _malformed(f"unknown scope code {scope}")
    claims = PassClaims(
        pass_id=pass_id.hex(),
        library=library.hex(),
        scope=_SCOPES_BY_CODE[scope],
        target=target.hex(),
        holder=holder.hex(),
        valid_from=_from_epoch(v_from),
        valid_until=_from_epoch(v_until),
        issued_at=_from_epoch(issued),
        key_id=key_id.hex(),
    )
    return _DecodedPass(claims=claims, signed_bytes=body, signature=signature)


def parse_pass(text: str | bytes) -> PassClaims:
    """Structure only, NO signature check. Raises PassRejected(MALFORMED) for anything unparseable."""
    return _decode(text).claims


def verify_pass(
    text: str | bytes,
    *,
    public_keys: Mapping[str, Ed25519PublicKey],
    library: str,
    now: datetime,
    skew: timedelta = timedelta(seconds=120),
) -> PassClaims:
    """Full offline check, in order: structure, key, signature, library, validity window (± skew).

    Raises PassRejected with the first failing reason; ValueError only for a naive `now`.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    decoded = _decode(text)
    claims = decoded.claims
    public_key = public_keys.get(claims.key_id)
    if public_key is None:
        raise PassRejected(PassRejectReason.UNKNOWN_KEY, f"no public key with id {claims.key_id}")
    try:
        public_key.verify(decoded.signature, decoded.signed_bytes)
    except InvalidSignature:
        raise PassRejected(PassRejectReason.BAD_SIGNATURE, "signature does not match") from None
    if claims.library != library:
        raise PassRejected(PassRejectReason.WRONG_LIBRARY, f"pass is for library {claims.library}")
    if now + skew < claims.valid_from:
        raise PassRejected(PassRejectReason.NOT_YET_VALID, f"valid from {claims.valid_from.isoformat()}")
    if now - skew > claims.valid_until:
        raise PassRejected(PassRejectReason.EXPIRED, f"expired at {claims.valid_until.isoformat()}")
    return claims


__all__ = [
    "PASS_PREFIX",
    "PassClaims",
    "PassRejectReason",
    "PassRejected",
    "PassScope",
    "base45_decode",
    "base45_encode",
    "generate_signing_key",
    "issue_pass",
    "key_id_for",
    "new_pass_id",
    "parse_pass",
    "private_key_from_text",
    "private_key_to_text",
    "public_key_from_text",
    "public_key_to_text",
    "short_id",
    "verify_pass",
]
