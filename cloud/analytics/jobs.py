"""Periodic analytics work: roll the per-minute edge telemetry up into hourly rows.

    from cloud.analytics.jobs import run_analytics_jobs
    run_analytics_jobs(app.state)     # call it as often as you like (the worker's minute tick):
                                      # it rolls up once per new hour, or now with force=True

Edges may push up to 72 h late (offline), so the last `ROLLUP_LOOKBACK` of closed hours is rolled
again on every run; the upsert makes that idempotent.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from cloud.db import platform_scope
from cloud.models_common import utcnow

log = logging.getLogger(__name__)

ROLLUP_LOOKBACK = dt.timedelta(hours=73)
HOUR = dt.timedelta(hours=1)
ROLLED_HOUR_ATTRIBUTE = "analytics_rolled_hour"

# One row per library sensor metric and UTC hour. `increase` sums the rises of `last` from minute
# to minute (a drop is a meter reset: the new reading counts); a series' first minute counts its
# own max - min. The lag looks one hour back so the first minute of the range has its predecessor.
HOURLY_FROM_MINUTES = """
WITH m AS (
  SELECT tenant_id, library_id, sensor, metric, minute, samples, total, minimum, maximum, last,
         lag(last) OVER (PARTITION BY library_id, sensor, metric ORDER BY minute) AS prev
  FROM edge_telemetry
  WHERE minute >= CAST(:since AS timestamptz) - interval '1 hour' AND minute < :until
    AND (CAST(:library AS uuid) IS NULL OR library_id = CAST(:library AS uuid))
    AND (CAST(:metric AS text) IS NULL OR metric = CAST(:metric AS text))
)
SELECT tenant_id, library_id, sensor, metric, date_trunc('hour', minute, 'UTC') AS hour,
       count(*) AS minutes, sum(samples) AS samples, sum(total) AS total, min(minimum) AS minimum,
       max(maximum) AS maximum, (array_agg(last ORDER BY minute DESC))[1] AS last,
       sum(CASE WHEN prev IS NULL THEN maximum - minimum WHEN last >= prev THEN last - prev ELSE last END)
         AS increase
FROM m WHERE minute >= :since
GROUP BY tenant_id, library_id, sensor, metric, date_trunc('hour', minute, 'UTC')
"""

_UPSERT = text(
    f"""
INSERT INTO telemetry_hourly
  (tenant_id, library_id, sensor, metric, hour, minutes, samples, total, minimum, maximum, last, increase)
SELECT tenant_id, library_id, sensor, metric, hour, minutes, samples, total, minimum, maximum, last, increase
FROM ({HOURLY_FROM_MINUTES}) rolled
ON CONFLICT (library_id, sensor, metric, hour) DO UPDATE SET
  minutes = EXCLUDED.minutes, samples = EXCLUDED.samples, total = EXCLUDED.total,
  minimum = EXCLUDED.minimum, maximum = EXCLUDED.maximum, last = EXCLUDED.last, increase = EXCLUDED.increase
"""  # noqa: S608 - only a module constant is interpolated
)


def hour_floor(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


def roll_up_telemetry(
    session: Session,
    *,
    now: dt.datetime,
    since: dt.datetime | None = None,
    library_id: uuid.UUID | None = None,
) -> int:
    """Upsert the hourly rows of the closed hours in [since, now's hour) (default: the lookback).

    Runs in the caller's transaction and scope; returns the number of hourly rows written.
    """
    until = hour_floor(now)
    start = hour_floor(since) if since is not None else until - ROLLUP_LOOKBACK
    params = {"since": start, "until": until, "library": library_id, "metric": None}
    return int(session.execute(_UPSERT, params).rowcount or 0)  # type: ignore[attr-defined]


def run_analytics_jobs(state: Any, now: dt.datetime | None = None, *, force: bool = False) -> int:
    """The worker's entry point: roll up every tenant's telemetry under the platform scope, once
    per hour (remembered on `state`); returns the hourly rows written (0 when not due)."""
    now = now or utcnow()
    if not force and getattr(state, ROLLED_HOUR_ATTRIBUTE, None) == hour_floor(now):
        return 0
    with state.session_factory() as session:
        platform_scope(session)
        written = roll_up_telemetry(session, now=now)
        session.commit()
    setattr(state, ROLLED_HOUR_ATTRIBUTE, hour_floor(now))
    if written:
        log.info("telemetry roll-up: %d hourly rows", written)
    return written
