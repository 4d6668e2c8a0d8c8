"""The billing pass of the periodic jobs (called by `cloud.booking.jobs.run_booking_jobs`):
renewals, dues reminders, suspensions; released seats are announced like any other release."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from cloud.billing.config import BillingSettings
from cloud.billing.dues import DuesReport, run_dues
from cloud.db import platform_scope
from cloud.models_common import utcnow

log = logging.getLogger(__name__)


def billing_settings_of(state: Any) -> BillingSettings:
    settings: BillingSettings | None = getattr(state, "billing_settings", None)
    if settings is None:
        settings = BillingSettings()
        state.billing_settings = settings
    return settings


def run_billing_jobs(state: Any, now: dt.datetime | None = None) -> DuesReport:
    """One pass over every tenant's dues; `state` is the app's `app.state`."""
    with state.session_factory() as session:
        platform_scope(session)
        report = run_dues(session, now or utcnow(), billing_settings_of(state))
    if report.renewals or report.notices or report.suspended:
        log.info(
            "billing jobs: %d renewals, %d notices, %d suspended",
            report.renewals, report.notices, report.suspended,
        )  # fmt: skip
    return report
