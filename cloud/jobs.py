"""The periodic work the worker runs about once a minute (`studyspot cloud worker`, and the demo's
in-process worker): booking jobs (holds, no-shows, waitlist, reminders, billing) and the hourly
telemetry roll-up, the audit anchor. One job failing does not stop the others."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


def _jobs() -> list[Callable[[Any], object]]:
    from cloud.analytics.jobs import run_analytics_jobs
    from cloud.audit.jobs import run_audit_anchor_job
    from cloud.booking.jobs import run_booking_jobs

    return [run_booking_jobs, run_analytics_jobs, run_audit_anchor_job]


def run_periodic_jobs(state: Any) -> None:
    for job in _jobs():
        try:
            job(state)
        except Exception:
            log.exception("periodic job %s failed", job.__name__)
