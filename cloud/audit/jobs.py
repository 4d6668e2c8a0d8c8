"""Periodic audit work: anchor every chain's head outside the database when the last anchor is old."""

from __future__ import annotations

import datetime as dt
from typing import Any

from cloud.audit.anchor import anchor_due, anchor_path, take_anchor
from cloud.db import platform_scope
from cloud.models_common import utcnow


def run_audit_anchor_job(state: Any, now: dt.datetime | None = None) -> bool:
    """`state` is the app's `app.state`; returns whether an anchor was written."""
    settings = state.settings
    path = anchor_path(settings.data_dir)
    interval = dt.timedelta(minutes=settings.audit_anchor_interval_minutes)
    if not anchor_due(path, interval, now or utcnow()):
        return False
    with state.session_factory() as session:
        platform_scope(session)
        take_anchor(session, path, settings.audit_anchor_url)
    return True
