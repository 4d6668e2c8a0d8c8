from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
import segno
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.passes import (
    PASS_PREFIX,
    PassClaims,
    PassRejected,
    PassRejectReason,
    PassScope,
    base45_decode,
    base45_encode,
    generate_signing_key,
    issue_pass,
    key_id_for,
    new_pass_id,
    parse_pass,
    private_key_from_text,
    private_key_to_text,
    public_key_from_text,
    public_key_to_text,
    short_id,
    verify_pass,
)
from tests.shared.factories import NOW, make_claims

BASE45_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def keys_of(*keys: Ed25519PrivateKey) -> dict[str, object]:
    return {key_id_for(key.public_key()): key.public_key() for key in keys}


def verify(text: str | bytes, key: Ed25519PrivateKey, claims: PassClaims, **kwargs: object) -> PassClaims:
    options: dict[str, object] = {"public_keys": keys_of(key), "library": claims.library, "now": NOW}
    options.update(kwargs)
    return verify_pass(text, **options)  # type: ignore[arg-type]


def reason_of(text: str | bytes, key: Ed25519PrivateKey, claims: PassClaims, **kwargs: object) -> str:
    with pytest.raises(PassRejected) as caught:
        verify(text, key, claims, **kwargs)
    return caught.value.reason


def resign(text: str, key: Ed25519PrivateKey, *, key_id: bytes | None = None) -> str:
    """Re-sign a pass's body with `key`, optionally swapping the key id bytes first."""
    raw = base45_decode(text.removeprefix(PASS_PREFIX))
    body = raw[:-64]
    if key_id is not None:
        body = body[:1] + key_id + body[5:]
    return PASS_PREFIX + base45_encode(body + key.sign(body))


# --- ids, keys, codec -------------------------------------------------------------------------------


def test_short_id_is_first_eight_bytes_of_the_uuid() -> None:
    value = uuid.UUID("12345678-9abc-def0-1234-56789abcdef0")
    assert short_id(value) == "123456789abcdef0"
    assert short_id(str(value)) == "123456789abcdef0"


def test_new_pass_ids_are_sixteen_hex_chars_and_differ() -> None:
    ids = {new_pass_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(len(i) == 16 and int(i, 16) >= 0 for i in ids)


def test_key_text_round_trips(signing_key: Ed25519PrivateKey) -> None:
    public_text = public_key_to_text(signing_key.public_key())
    private_text = private_key_to_text(signing_key)
    assert len(public_text) == 43 and "=" not in public_text
    assert key_id_for(public_key_from_text(public_text)) == key_id_for(signing_key.public_key())
    assert key_id_for(private_key_from_text(private_text).public_key()) == key_id_for(
        signing_key.public_key()
    )
    assert key_id_for(public_key_from_text(public_text + "=")) == key_id_for(signing_key.public_key())


@pytest.mark.parametrize("bad", ["", "abc", "!" * 43, "A" * 44, "A" * 42])
def test_key_from_bad_text_raises_value_error(bad: str) -> None:
    with pytest.raises(ValueError):
        public_key_from_text(bad)
    with pytest.raises(ValueError):
        private_key_from_text(bad)


@pytest.mark.parametrize(
    ("raw", "encoded"),
    [
        (b"AB", "BB8"),
        (b"Hello!!", "%69 VD92EX0"),
        (b"base-45", "UJCLQE7W581"),
        (b"ietf!", "QED8WEX0"),
        (b"", ""),
    ],
)
def test_base45_matches_rfc_9285_examples(raw: bytes, encoded: str) -> None:
    assert base45_encode(raw) == encoded
    assert base45_decode(encoded) == raw


@pytest.mark.parametrize("bad", ["GGW", "A", "ABCD", "abc", "ZZZ", "::", "Ä00"])
def test_base45_rejects_invalid_text(bad: str) -> None:
    with pytest.raises(ValueError):
        base45_decode(bad)


@given(st.binary(max_size=300))
def test_base45_round_trips(data: bytes) -> None:
    assert base45_decode(base45_encode(data)) == data


# --- issue ------------------------------------------------------------------------------------------


def test_issued_pass_verifies_and_round_trips(signing_key: Ed25519PrivateKey) -> None:
    claims = make_claims(signing_key, scope=PassScope.ZONE)
    text = issue_pass(claims, signing_key)
    assert parse_pass(text) == claims
    assert verify(text, signing_key, claims) == claims
    assert verify(text.encode("ascii"), signing_key, claims) == claims


def test_scanner_line_endings_are_tolerated(signing_key: Ed25519PrivateKey) -> None:
    claims = make_claims(signing_key)
    assert verify(issue_pass(claims, signing_key) + "\r\n", signing_key, claims) == claims


@given(
    pass_id=st.binary(min_size=8, max_size=8),
    ids=st.lists(st.binary(min_size=8, max_size=8), min_size=3, max_size=3),
    times=st.lists(st.integers(min_value=0, max_value=2**32 - 1), min_size=3, max_size=3),
    scope=st.sampled_from(PassScope),
)
@settings(max_examples=60, deadline=None)
def test_every_pass_fits_180_chars_and_qr_version_7_at_ecc_m(
    signing_key: Ed25519PrivateKey, pass_id: bytes, ids: list[bytes], times: list[int], scope: PassScope
) -> None:
    valid_from, valid_until = sorted(times[:2])
    claims = PassClaims(
        pass_id=pass_id.hex(),
        library=ids[0].hex(),
        scope=scope,
        target=ids[1].hex(),
        holder=ids[2].hex(),
        valid_from=datetime.fromtimestamp(valid_from, UTC),
        valid_until=datetime.fromtimestamp(valid_until, UTC),
        issued_at=datetime.fromtimestamp(times[2], UTC),
        key_id=key_id_for(signing_key.public_key()),
    )
    text = issue_pass(claims, signing_key)
    assert len(text) <= 180
    assert set(text) <= set(BASE45_ALPHABET)
    qr = segno.make(text, error="m")
    assert isinstance(qr.version, int) and qr.version <= 7  # an int: a full QR code, not a Micro QR
    assert qr.mode == "alphanumeric"
    assert parse_pass(text) == claims


def test_sub_second_times_are_truncated_and_offsets_normalised_to_utc(signing_key: Ed25519PrivateKey) -> None:
    india = timezone(timedelta(hours=5, minutes=30))
    claims = make_claims(signing_key, valid_from=NOW.astimezone(india).replace(microsecond=999_999))
    parsed = parse_pass(issue_pass(claims, signing_key))
    assert parsed.valid_from == NOW
    assert parsed.valid_from.tzinfo == UTC


@pytest.mark.parametrize(
    "changes",
    [
        {"valid_from": datetime(2026, 11, 24, 9, 30)},  # naive
        {"valid_until": NOW - timedelta(hours=1)},  # before valid_from
        {"issued_at": datetime(1960, 1, 1, tzinfo=UTC)},  # before the epoch
        {"valid_until": datetime(2107, 1, 1, tzinfo=UTC)},  # past uint32
        {"pass_id": "xyz"},
        {"library": "ABCDEF0123456789"},  # upper case would not round-trip
        {"holder": "0" * 15},
        {"key_id": "00000000"},  # not this key's id
        {"scope": "room"},
    ],
)
def test_issue_refuses_claims_that_do_not_fit(
    signing_key: Ed25519PrivateKey, changes: dict[str, object]
) -> None:
    with pytest.raises(ValueError):
        issue_pass(make_claims(signing_key, **changes), signing_key)


# --- verify: each reason ------------------------------------------------------------------------------


def test_unknown_key(signing_key: Ed25519PrivateKey, other_key: Ed25519PrivateKey) -> None:
    claims = make_claims(other_key)
    assert reason_of(issue_pass(claims, other_key), signing_key, claims) == PassRejectReason.UNKNOWN_KEY


def test_resigned_with_another_key_is_unknown_key(
    signing_key: Ed25519PrivateKey, other_key: Ed25519PrivateKey
) -> None:
    claims = make_claims(signing_key)
    forged = resign(
        issue_pass(claims, signing_key), other_key, key_id=bytes.fromhex(key_id_for(other_key.public_key()))
    )
    assert reason_of(forged, signing_key, claims) == PassRejectReason.UNKNOWN_KEY


def test_resigned_with_another_key_under_the_trusted_key_id_is_bad_signature(
    signing_key: Ed25519PrivateKey, other_key: Ed25519PrivateKey
) -> None:
    claims = make_claims(signing_key)
    forged = resign(issue_pass(claims, signing_key), other_key)
    assert reason_of(forged, signing_key, claims) == PassRejectReason.BAD_SIGNATURE


def test_swapped_key_id_is_bad_signature(
    signing_key: Ed25519PrivateKey, other_key: Ed25519PrivateKey
) -> None:
    """A pass signed by key A whose key id is rewritten to trusted key B (signature left as is)."""
    claims = make_claims(other_key)
    text = issue_pass(claims, other_key)
    raw = bytearray(base45_decode(text.removeprefix(PASS_PREFIX)))
    raw[1:5] = bytes.fromhex(key_id_for(signing_key.public_key()))
    swapped = PASS_PREFIX + base45_encode(bytes(raw))
    both = keys_of(signing_key, other_key)
    assert reason_of(swapped, signing_key, claims, public_keys=both) == PassRejectReason.BAD_SIGNATURE


def test_wrong_library(signing_key: Ed25519PrivateKey) -> None:
    claims = make_claims(signing_key)
    text = issue_pass(claims, signing_key)
    assert reason_of(text, signing_key, claims, library="0" * 16) == PassRejectReason.WRONG_LIBRARY


def test_wrong_library_is_reported_before_the_time_window(signing_key: Ed25519PrivateKey) -> None:
    claims = make_claims(signing_key)
    text = issue_pass(claims, signing_key)
    late = NOW + timedelta(days=30)
    assert reason_of(text, signing_key, claims, library="0" * 16, now=late) == PassRejectReason.WRONG_LIBRARY


def test_time_window_with_skew(signing_key: Ed25519PrivateKey) -> None:
    claims = make_claims(signing_key)
    text = issue_pass(claims, signing_key)
    skew = timedelta(seconds=120)
    second = timedelta(seconds=1)
    assert verify(text, signing_key, claims, now=claims.valid_from - skew) == claims
    assert verify(text, signing_key, claims, now=claims.valid_until + skew) == claims
    early = claims.valid_from - skew - second
    late = claims.valid_until + skew + second
    assert reason_of(text, signing_key, claims, now=early) == PassRejectReason.NOT_YET_VALID
    assert reason_of(text, signing_key, claims, now=late) == PassRejectReason.EXPIRED
    assert verify(text, signing_key, claims, now=late, skew=timedelta(minutes=5)) == claims


def test_naive_clock_is_a_programming_error(signing_key: Ed25519PrivateKey) -> None:
    claims = make_claims(signing_key)
    with pytest.raises(ValueError):
        verify(issue_pass(claims, signing_key), signing_key, claims, now=datetime(2026, 11, 24))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "SS1:",
        "SS2:" + "0" * 171,
        "ss1:" + "0" * 171,
        PASS_PREFIX + "GGW" * 57,
        PASS_PREFIX + "0" * 170,
        PASS_PREFIX + "0" * 174,
        "A" * 10_000_000,
        b"\xff\xfe\x00",
        "SS1:ÄÖÜ",
    ],
)
def test_malformed_inputs(signing_key: Ed25519PrivateKey, text: str | bytes) -> None:
    claims = make_claims(signing_key)
    assert reason_of(text, signing_key, claims) == PassRejectReason.MALFORMED
    with pytest.raises(PassRejected):
        parse_pass(text)


def test_unknown_version_and_scope_bytes_are_malformed(signing_key: Ed25519PrivateKey) -> None:
    claims = make_claims(signing_key)
    raw = base45_decode(issue_pass(claims, signing_key).removeprefix(PASS_PREFIX))
    for position, value in ((0, 2), (13, 9)):
        changed = bytearray(raw)
        changed[position] = value
        text = PASS_PREFIX + base45_encode(bytes(changed))
        assert reason_of(text, signing_key, claims) == PassRejectReason.MALFORMED


def test_non_text_input_is_malformed(signing_key: Ed25519PrivateKey) -> None:
    claims = make_claims(signing_key)
    assert reason_of(12345, signing_key, claims) == PassRejectReason.MALFORMED  # type: ignore[arg-type]


# --- fuzz: any input gives a PassRejected, never another exception -------------------------------


@pytest.fixture(scope="module")
def sample(signing_key: Ed25519PrivateKey) -> tuple[PassClaims, str]:
    claims = make_claims(signing_key)
    return claims, issue_pass(claims, signing_key)


def assert_rejected(text: str | bytes, key: Ed25519PrivateKey, claims: PassClaims) -> PassRejectReason:
    try:
        verify(text, key, claims)
    except PassRejected as rejected:
        assert rejected.reason in PassRejectReason
        return rejected.reason
    raise AssertionError(f"accepted {text!r}")


@FUZZ
@given(data=st.binary(max_size=400))
def test_random_bytes_are_rejected(signing_key: Ed25519PrivateKey, sample, data: bytes) -> None:
    assert_rejected(data, signing_key, sample[0])


@FUZZ
@given(text=st.text(max_size=400))
def test_random_text_is_rejected(signing_key: Ed25519PrivateKey, sample, text: str) -> None:
    assert_rejected(text, signing_key, sample[0])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.text(alphabet=BASE45_ALPHABET, min_size=160, max_size=180))
def test_random_base45_behind_the_prefix_is_rejected(
    signing_key: Ed25519PrivateKey, sample, body: str
) -> None:
    assert_rejected(PASS_PREFIX + body, signing_key, sample[0])


@FUZZ
@given(data=st.data())
def test_one_tampered_character_is_rejected(
    signing_key: Ed25519PrivateKey, sample, data: st.DataObject
) -> None:
    claims, text = sample
    position = data.draw(st.integers(min_value=0, max_value=len(text) - 1))
    replacement = data.draw(st.characters(codec="utf-8").filter(lambda c: c != text[position]))
    tampered = text[:position] + replacement + text[position + 1 :]
    reason = assert_rejected(tampered, signing_key, claims)
    assert reason in {
        PassRejectReason.MALFORMED,
        PassRejectReason.UNKNOWN_KEY,
        PassRejectReason.BAD_SIGNATURE,
    }


@FUZZ
@given(data=st.data())
def test_truncated_or_extended_pass_is_malformed(
    signing_key: Ed25519PrivateKey, sample, data: st.DataObject
) -> None:
    claims, text = sample
    cut = data.draw(st.integers(min_value=0, max_value=len(text) - 1))
    assert assert_rejected(text[:cut], signing_key, claims) == PassRejectReason.MALFORMED
    extra = data.draw(st.text(alphabet=BASE45_ALPHABET.replace(" ", ""), min_size=1, max_size=20))
    assert assert_rejected(text + extra, signing_key, claims) == PassRejectReason.MALFORMED


@settings(max_examples=50, deadline=None)
@given(key_seed=st.binary(min_size=32, max_size=32))
def test_resigned_with_any_other_key_is_rejected(
    signing_key: Ed25519PrivateKey, sample, key_seed: bytes
) -> None:
    claims, text = sample
    attacker = Ed25519PrivateKey.from_private_bytes(key_seed)
    assert assert_rejected(resign(text, attacker), signing_key, claims) == PassRejectReason.BAD_SIGNATURE
    own_id = bytes.fromhex(key_id_for(attacker.public_key()))
    assert assert_rejected(resign(text, attacker, key_id=own_id), signing_key, claims) in {
        PassRejectReason.UNKNOWN_KEY,
        PassRejectReason.BAD_SIGNATURE,  # only if the attacker's key id collides with ours
    }


def test_generated_keys_differ() -> None:
    assert key_id_for(generate_signing_key().public_key()) != key_id_for(generate_signing_key().public_key())
