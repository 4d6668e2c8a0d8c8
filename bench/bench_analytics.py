"""Analytics benchmarks over 90 days of seeded history for one 40-seat library: seeding it, the
weekday x hour occupancy over the 90 days, the 30-day summary, and the forecast (8 weeks fitted,
last week held out) — the services as the routes call them, on a throwaway embedded PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import time

from sqlalchemy.orm import Session

from bench.cloud_rig import bench_cloud, bench_library
from bench.harness import BenchResult, measure
from cloud.analytics import service
from cloud.analytics.history import seed_history
from cloud.catalog.models import LibraryRecord
from cloud.db import app_url, make_engine, make_session_factory

SEATS = 40
HISTORY_DAYS = 90
ROUNDS = 10


def _seed(session: Session, now: dt.datetime) -> tuple[LibraryRecord, dict[str, int], float]:
    bench = bench_library(session, seats=SEATS, hourly_price_minor=5000)
    started = time.perf_counter()
    counts = seed_history(
        session, tenant_id=bench.tenant.id, library_id=bench.library.id, now=now, days=HISTORY_DAYS
    )
    session.commit()
    seeded_in = time.perf_counter() - started
    record = session.get(LibraryRecord, bench.library.id)
    assert record is not None
    return record, counts, seeded_in


def run() -> list[BenchResult]:
    now = dt.datetime.now(dt.UTC)
    with bench_cloud("bench_analytics") as settings:
        engine = make_engine(app_url(settings), pool_size=2)
        try:
            with make_session_factory(engine)() as session:
                library, counts, seeded_in = _seed(session, now)
                occupancy = measure(lambda: service.occupancy(session, library, HISTORY_DAYS, now), ROUNDS, 2)
                summary = measure(lambda: service.summary(session, library, 30, now), ROUNDS, 2)
                forecast = measure(lambda: service.forecast(session, library, now), ROUNDS, 2)
                scored = service.forecast(session, library, now)
        finally:
            engine.dispose()
    bookings = f"{counts['bookings']:,} bookings"
    return [
        BenchResult(f"seed {HISTORY_DAYS} days ({bookings}, {SEATS} seats)", seeded_in, seeded_in, "s"),
        BenchResult(f"occupancy weekday x hour over {HISTORY_DAYS} days", *_ms(occupancy), "ms", "< 500 ms"),
        BenchResult("summary over 30 days (bookings, occupancy, energy)", *_ms(summary), "ms", "< 500 ms"),
        BenchResult("forecast 7 x 24 h (8 weeks fitted, 1 held out)", *_ms(forecast), "ms", "< 500 ms"),
        BenchResult(
            f"forecast held-out MAE ({SEATS} seats; MAPE {scored.holdout_mape or 0:.0f} %)",
            scored.holdout_mae,
            scored.holdout_mae,
            "seats",
        ),
    ]


def _ms(figures: tuple[float, float]) -> tuple[float, float]:
    return figures[0] * 1000, figures[1] * 1000


if __name__ == "__main__":
    for result in run():
        print(result)
