"""HTTP Message Signatures (RFC 9421) with Ed25519 for edge → cloud requests.

Signature base and Ed25519 signing/verification come from the `http-message-signatures` library.
What it leaves to the caller is done here: a strict policy on the signature's shape (one signature,
exactly the covered components below, required parameters), the time window against an injected
clock (the library's own check reads the wall clock with a 5 s skew, so it is switched off),
Content-Digest (RFC 9530) against the body, and nonce replay through a caller-supplied store.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import urllib.parse
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

import http_sfv
import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from http_message_signatures import (
    ContentDigest,
    HTTPMessageSignaturesException,
    HTTPMessageSigner,
    HTTPMessageVerifier,
    HTTPSignatureComponentResolver,
    HTTPSignatureKeyResolver,
    algorithms,
)

if TYPE_CHECKING:
    from starlette.requests import Request

SIGNATURE_LABEL = "studyspot"
ALGORITHM = "ed25519"
COVERED_COMPONENTS: tuple[str, ...] = ("@method", "@path", "@query", "content-digest")
REQUIRED_PARAMETERS = frozenset({"created", "keyid", "nonce", "alg"})
MAX_HEADER_LENGTH = 4096  # each of Signature, Signature-Input, Content-Digest; checked before parsing
MAX_NONCE_LENGTH = 128
DEFAULT_MAX_SKEW = timedelta(seconds=300)

# Only the path and query are covered, so the authority of a relative URL is a placeholder.
_PLACEHOLDER_ORIGIN = "http://signed.invalid"
_SIGNATURE_HEADERS = ("signature-input", "signature", "content-digest")


class SignatureRejectReason(StrEnum):
    MISSING = "missing"
    MALFORMED = "malformed"
    UNKNOWN_KEY = "unknown_key"
    BAD_SIGNATURE = "bad_signature"
    STALE = "stale"
    FUTURE = "future"
    REPLAYED = "replayed"
    DIGEST_MISMATCH = "digest_mismatch"


class SignatureRejected(Exception):
    def __init__(self, reason: SignatureRejectReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class VerifiedSignature:
    key_id: str
    created: datetime
    nonce: str


# --- adapters for the library -----------------------------------------------------------------------


@dataclass
class _Message:
    """The request view the library resolves components from."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)


class _OneKeyResolver(HTTPSignatureKeyResolver):
    def __init__(
        self,
        key_id: str,
        *,
        public_key: Ed25519PublicKey | None = None,
        private_key: Ed25519PrivateKey | None = None,
    ) -> None:
        self._key_id = key_id
        self._public_key = public_key
        self._private_key = private_key

    def resolve_public_key(self, key_id: str) -> Ed25519PublicKey | None:
        return self._public_key if key_id == self._key_id else None

    def resolve_private_key(self, key_id: str) -> Ed25519PrivateKey:
        if key_id != self._key_id or self._private_key is None:
            raise KeyError(key_id)
        return self._private_key


class _InjectedClockVerifier(HTTPMessageVerifier):
    """Library verifier whose own time check is off: verify_request checks `created` against `now`."""

    def validate_created_and_expires(self, sig_input: object, max_age: timedelta | None = None) -> None:
        return None


def _absolute_url(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme and parts.netloc:
        return url
    path = parts.path or "/"
    return f"{_PLACEHOLDER_ORIGIN}{path}" + (f"?{parts.query}" if parts.query else "")


# --- signing --------------------------------------------------------------------------------------------


def sign_request(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    key_id: str,
    private_key: Ed25519PrivateKey,
    created: datetime | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """Return the headers to ADD to the request: Content-Digest, Signature-Input, Signature.

    `headers` are the request's existing headers; none of them is covered (the covered set is
    COVERED_COMPONENTS), so they do not change the result. Raises ValueError for a URL or
    parameters the signature cannot represent.
    """
    del headers  # not covered; accepted so callers can pass the request as they have it
    if created is not None and (created.tzinfo is None or created.utcoffset() is None):
        raise ValueError("created must be timezone-aware")
    message = _Message(method=method.upper(), url=_absolute_url(url))
    signer = HTTPMessageSigner(
        signature_algorithm=algorithms.ED25519,
        key_resolver=_OneKeyResolver(key_id, private_key=private_key),
    )
    try:
        signer.sign(
            message,
            key_id=key_id,
            created=created or datetime.now(UTC),
            nonce=nonce or secrets.token_urlsafe(16),
            label=SIGNATURE_LABEL,
            covered_component_ids=COVERED_COMPONENTS,
            body=body,
        )
    except HTTPMessageSignaturesException as exc:
        raise ValueError(f"cannot sign this request: {exc}") from exc
    return dict(message.headers)


class HttpxRequestSigner(httpx.Auth):
    """httpx auth that signs every request (sync and async clients)."""

    requires_request_body = True

    def __init__(self, key_id: str, private_key: Ed25519PrivateKey) -> None:
        self.key_id = key_id
        self._private_key = private_key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        signature_headers = sign_request(
            request.method,
            str(request.url),
            request.headers,
            request.content,
            key_id=self.key_id,
            private_key=self._private_key,
        )
        request.headers.update(signature_headers)
        yield request


# --- verification ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _SignatureFields:
    key_id: str
    created: datetime
    nonce: str
    # Set when the headers have the one spelling `sign_request` writes (parsed by _CANONICAL_*): the
    # signature and the serialized Signature-Input member, which is the base's @signature-params.
    signature: bytes | None = None
    signature_params: str | None = None


# What `sign_request` writes (through the library), matched whole. A header in this form parses to
# exactly these values under RFC 8941 (strings of [A-Za-z0-9_.~-] need no escaping, an integer has
# no leading zero: the member is already its own serialization), so it skips the general
# structured-field parsers (about half of a verification's CPU time); any other spelling takes the
# general path.
_CANONICAL_INPUT = re.compile(
    rf'{SIGNATURE_LABEL}=(?P<params>\("@method" "@path" "@query" "content-digest"\)'
    r';created=(?P<created>[1-9][0-9]{0,14});keyid="(?P<keyid>[A-Za-z0-9_.~-]+)"'
    rf';alg="{ALGORITHM}";nonce="(?P<nonce>[A-Za-z0-9_.~-]{{1,{MAX_NONCE_LENGTH}}})")'
)
_CANONICAL_SIGNATURE = re.compile(rf"{SIGNATURE_LABEL}=:(?P<signature>[A-Za-z0-9+/]{{86}}==):")


def _reject(reason: SignatureRejectReason, detail: str) -> SignatureRejected:
    return SignatureRejected(reason, detail)


def _malformed(detail: str) -> SignatureRejected:
    return SignatureRejected(SignatureRejectReason.MALFORMED, detail)


def _signature_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    """The three signature headers, lower-cased; repeated field lines are joined as HTTP combines them."""
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    found: dict[str, list[str]] = {}
    for name, value in pairs:
        lowered = name.lower()
        if lowered in _SIGNATURE_HEADERS:
            found.setdefault(lowered, []).append(value)
    combined = {name: ", ".join(values) for name, values in found.items()}
    for name in _SIGNATURE_HEADERS:
        if name not in combined:
            raise _reject(SignatureRejectReason.MISSING, f"no {name} header")
        if len(combined[name]) > MAX_HEADER_LENGTH:
            raise _malformed(f"{name} header longer than {MAX_HEADER_LENGTH}")
        if not combined[name].isascii():
            raise _malformed(f"{name} header is not ASCII")
    return combined


def _parse_dictionary(name: str, value: str) -> http_sfv.Dictionary:
    dictionary = http_sfv.Dictionary()
    try:
        dictionary.parse(value.encode("ascii"))
    except Exception as exc:  # the parser raises assorted errors on garbage
        reason = str(exc) or type(exc).__name__
        raise _malformed(f"{name} is not a structured-field dictionary ({reason})") from None
    return dictionary


def _check_covered(inner_list: http_sfv.InnerList) -> None:
    covered = []
    for item in inner_list:
        if not isinstance(item.value, str) or item.params:
            raise _malformed("covered components must be plain strings")
        covered.append(item.value)
    if sorted(covered) != sorted(COVERED_COMPONENTS):
        raise _malformed(f"covered components must be exactly {', '.join(COVERED_COMPONENTS)}")


def _check_parameters(params: Mapping[str, object]) -> _SignatureFields:
    if set(params) != REQUIRED_PARAMETERS:
        raise _malformed(f"signature parameters must be exactly {sorted(REQUIRED_PARAMETERS)}")
    created, key_id, nonce, alg = params["created"], params["keyid"], params["nonce"], params["alg"]
    if alg != ALGORITHM:
        raise _malformed(f"alg must be {ALGORITHM}")
    if type(created) is not int or not isinstance(key_id, str) or not isinstance(nonce, str):
        raise _malformed("created must be an integer, keyid and nonce strings")
    if not key_id or not nonce or len(nonce) > MAX_NONCE_LENGTH:
        raise _malformed("keyid and nonce must be non-empty (nonce at most 128 chars)")
    try:
        created_at = datetime.fromtimestamp(created, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise _malformed("created is not a representable time") from None
    return _SignatureFields(key_id=key_id, created=created_at, nonce=nonce)


def _parse_canonical(fields: Mapping[str, str]) -> _SignatureFields | None:
    signature_input = _CANONICAL_INPUT.fullmatch(fields["signature-input"])
    signature = _CANONICAL_SIGNATURE.fullmatch(fields["signature"])
    if signature_input is None or signature is None:
        return None
    try:
        signature_bytes = base64.b64decode(signature["signature"], validate=True)
        created = datetime.fromtimestamp(int(signature_input["created"]), tz=UTC)
    except (binascii.Error, OverflowError, OSError, ValueError):
        return None  # the general path names the problem
    return _SignatureFields(
        key_id=signature_input["keyid"],
        created=created,
        nonce=signature_input["nonce"],
        signature=signature_bytes,
        signature_params=signature_input["params"],
    )


def _parse_signature(fields: Mapping[str, str]) -> _SignatureFields:
    canonical = _parse_canonical(fields)
    if canonical is not None:
        return canonical
    inputs = _parse_dictionary("Signature-Input", fields["signature-input"])
    signatures = _parse_dictionary("Signature", fields["signature"])
    if list(inputs.keys()) != [SIGNATURE_LABEL] or list(signatures.keys()) != [SIGNATURE_LABEL]:
        raise _malformed(f"expected exactly one signature labelled {SIGNATURE_LABEL!r}")
    inner_list, signature = inputs[SIGNATURE_LABEL], signatures[SIGNATURE_LABEL]
    if not isinstance(inner_list, http_sfv.InnerList):
        raise _malformed("Signature-Input member must be an inner list")
    if not isinstance(signature, http_sfv.Item) or not isinstance(signature.value, bytes):
        raise _malformed("Signature member must be a byte sequence")
    if len(signature.value) != 64:
        raise _malformed("an Ed25519 signature is 64 bytes")
    _check_covered(inner_list)
    return _check_parameters(inner_list.params)


def _canonical_signature_base(method: str, url: str, content_digest: str, signature_params: str) -> bytes:
    """The RFC 9421 signature base of COVERED_COMPONENTS, as the library builds it: the derived
    components come from its component resolver, and a value it would refuse is refused here too."""
    resolver = HTTPSignatureComponentResolver(_Message(method=method, url=url))
    derived = (resolver.get_method(), resolver.get_path(), resolver.get_query())
    if not all(value.isprintable() and value.strip() == value for value in derived):
        raise ValueError("the method, path or query has characters a signature base cannot hold")
    if not content_digest.replace("\t", " ").isprintable():
        raise ValueError("Content-Digest has control characters")
    values = (*derived, content_digest, signature_params)
    names = (*COVERED_COMPONENTS, "@signature-params")
    return "\n".join(f'"{name}": {value}' for name, value in zip(names, values, strict=True)).encode("ascii")


def _check_canonical_signature(
    method: str, url: str, fields: Mapping[str, str], parsed: _SignatureFields, public_key: Ed25519PublicKey
) -> None:
    assert parsed.signature is not None and parsed.signature_params is not None
    try:
        base = _canonical_signature_base(method, url, fields["content-digest"], parsed.signature_params)
        algorithms.ED25519(public_key=public_key).verify(parsed.signature, base)
    except (HTTPMessageSignaturesException, ValueError, InvalidSignature) as exc:
        detail = str(exc) or "signature does not match method, path, query and Content-Digest"
        raise _reject(SignatureRejectReason.BAD_SIGNATURE, detail) from None


def _check_signature(
    method: str, url: str, fields: Mapping[str, str], parsed: _SignatureFields, public_key: Ed25519PublicKey
) -> None:
    if parsed.signature_params is not None:
        _check_canonical_signature(method.upper(), _absolute_url(url), fields, parsed, public_key)
        return
    verifier = _InjectedClockVerifier(
        signature_algorithm=algorithms.ED25519,
        key_resolver=_OneKeyResolver(parsed.key_id, public_key=public_key),
    )
    try:
        message = _Message(method=method.upper(), url=_absolute_url(url), headers=dict(fields))
        verifier.verify(message, max_age=None, require_components=COVERED_COMPONENTS)
    except (HTTPMessageSignaturesException, ValueError) as exc:
        detail = str(exc) or "signature does not match method, path, query and Content-Digest"
        raise _reject(SignatureRejectReason.BAD_SIGNATURE, detail) from None


def _check_digest(content_digest: str, body: bytes) -> None:
    try:
        ContentDigest.verify(content_digest, body)
    except Exception as exc:  # InvalidSignature, or a parser error on a signed but odd field
        raise _reject(SignatureRejectReason.DIGEST_MISMATCH, str(exc) or "digest does not match") from None


def _check_window(created: datetime, now: datetime, max_skew: timedelta) -> None:
    if created > now + max_skew:
        detail = f"created {created.isoformat()} is ahead of {now.isoformat()}"
        raise _reject(SignatureRejectReason.FUTURE, detail)
    if created < now - max_skew:
        raise _reject(SignatureRejectReason.STALE, f"created {created.isoformat()} is older than {max_skew}")


def verify_request(
    method: str,
    url: str,
    headers: Mapping[str, str] | Iterable[tuple[str, str]],
    body: bytes,
    *,
    resolve_key: Callable[[str], Ed25519PublicKey | None],
    now: datetime,
    max_skew: timedelta = DEFAULT_MAX_SKEW,
    remember_nonce: Callable[[str, str], bool],
) -> VerifiedSignature:
    """Verify a signed request, in order: headers present → shape → key → signature → body digest →
    `created` within ±max_skew of `now` → nonce unseen. Raises SignatureRejected with the reason.

    `headers` may also be an iterable of (name, value) pairs so repeated field lines are kept.
    `remember_nonce(key_id, nonce)` must return False when the nonce was seen before; keep nonces
    for at least 2 * max_skew. Only a naive `now` raises something else (ValueError).
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    fields = _signature_headers(headers)
    parsed = _parse_signature(fields)
    public_key = resolve_key(parsed.key_id)
    if public_key is None:
        raise _reject(SignatureRejectReason.UNKNOWN_KEY, f"no key with id {parsed.key_id!r}")
    _check_signature(method, url, fields, parsed, public_key)
    _check_digest(fields["content-digest"], body)
    _check_window(parsed.created, now, max_skew)
    if not remember_nonce(parsed.key_id, parsed.nonce):
        raise _reject(SignatureRejectReason.REPLAYED, "nonce was used before")
    return VerifiedSignature(key_id=parsed.key_id, created=parsed.created, nonce=parsed.nonce)


def starlette_request_url(request: Request) -> str:
    """The URL as the client sent it (raw, still percent-encoded), which is what it signed."""
    raw_path: bytes = request.scope.get("raw_path") or request.scope["path"].encode("utf-8")
    path = raw_path.split(b"?", 1)[0].decode("latin-1")
    query = request.scope.get("query_string", b"").decode("latin-1")
    return f"{_PLACEHOLDER_ORIGIN}{path}" + (f"?{query}" if query else "")


async def verify_starlette_request(
    request: Request,
    *,
    resolve_key: Callable[[str], Ed25519PublicKey | None],
    now: datetime,
    max_skew: timedelta = DEFAULT_MAX_SKEW,
    remember_nonce: Callable[[str, str], bool],
) -> VerifiedSignature:
    """verify_request for a Starlette/FastAPI request; reads (and caches) the body."""
    body = await request.body()
    return verify_request(
        request.method,
        starlette_request_url(request),
        request.headers.items(),
        body,
        resolve_key=resolve_key,
        now=now,
        max_skew=max_skew,
        remember_nonce=remember_nonce,
    )


__all__ = [
    "COVERED_COMPONENTS",
    "HttpxRequestSigner",
    "SignatureRejectReason",
    "SignatureRejected",
    "VerifiedSignature",
    "sign_request",
    "starlette_request_url",
    "verify_request",
    "verify_starlette_request",
]
