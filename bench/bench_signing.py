"""RFC 9421 request signing throughput (Ed25519 + Content-Digest): sign/s and verify/s."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from bench.harness import BenchResult, measure
from shared.passes import generate_signing_key
from shared.signing import sign_request, verify_request

ITERATIONS = 2000
URL = "https://cloud.example/api/v1/sync/push?cursor=1024"


def _rate(figure: str, seconds: tuple[float, float]) -> BenchResult:
    """Per-call seconds → calls per second; the p99 column is the rate of the slowest 1 % of calls."""
    median, p99 = seconds
    return BenchResult(figure=figure, median=1 / median, p99=1 / p99, unit="ops/s")


def _bench_body(label: str, body: bytes) -> list[BenchResult]:
    key = generate_signing_key()
    public_key = key.public_key()
    headers = sign_request("POST", URL, {}, body, key_id="device-1", private_key=key)

    def sign() -> None:
        sign_request("POST", URL, {}, body, key_id="device-1", private_key=key)

    def verify() -> None:
        # The nonce store always answers "new" so every call does the full check.
        verify_request(
            "POST",
            URL,
            headers,
            body,
            resolve_key=lambda _: public_key,
            now=datetime.now(UTC),
            remember_nonce=lambda _key_id, _nonce: True,
        )

    return [
        _rate(f"sign request ({label} body)", measure(sign, ITERATIONS)),
        _rate(f"verify request ({label} body)", measure(verify, ITERATIONS)),
    ]


def run() -> list[BenchResult]:
    return [
        *_bench_body("1 KiB", secrets.token_bytes(1024)),
        *_bench_body("64 KiB", secrets.token_bytes(65536)),
    ]
