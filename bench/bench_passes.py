"""QR pass throughput and size: issue/s and verify/s (Ed25519), characters and QR version."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import segno

from bench.harness import BenchResult, measure
from shared.passes import (
    PassClaims,
    PassRejected,
    PassScope,
    generate_signing_key,
    issue_pass,
    key_id_for,
    new_pass_id,
    short_id,
    verify_pass,
)

ITERATIONS = 3000


def _rate(figure: str, seconds: tuple[float, float], goal: str = "") -> BenchResult:
    """Per-call seconds → calls per second; the p99 column is the rate of the slowest 1 % of calls."""
    median, p99 = seconds
    return BenchResult(figure=figure, median=1 / median, p99=1 / p99, unit="ops/s", goal=goal)


def run() -> list[BenchResult]:
    key = generate_signing_key()
    now = datetime.now(UTC).replace(microsecond=0)
    claims = PassClaims(
        pass_id=new_pass_id(),
        library=short_id(uuid.uuid4()),
        scope=PassScope.SEAT,
        target=short_id(uuid.uuid4()),
        holder=short_id(uuid.uuid4()),
        valid_from=now,
        valid_until=now + timedelta(hours=4),
        issued_at=now,
        key_id=key_id_for(key.public_key()),
    )
    public_keys = {claims.key_id: key.public_key()}
    text = issue_pass(claims, key)
    tampered = text[:-5] + ("0" if text[-5] != "0" else "1") + text[-4:]

    def verify() -> None:
        verify_pass(text, public_keys=public_keys, library=claims.library, now=now)

    def reject_tampered() -> None:
        try:
            verify_pass(tampered, public_keys=public_keys, library=claims.library, now=now)
        except PassRejected:
            return
        raise AssertionError("tampered pass accepted")

    version = segno.make(text, error="m").version
    return [
        _rate("issue pass", measure(lambda: issue_pass(claims, key), ITERATIONS)),
        _rate("verify pass (valid)", measure(verify, ITERATIONS)),
        _rate("verify pass (tampered, rejected)", measure(reject_tampered, ITERATIONS)),
        BenchResult("pass size", float(len(text)), float(len(text)), "chars", goal="<= 180"),
        BenchResult("QR version at ECC M", float(version), float(version), "version", goal="<= 7"),
    ]
