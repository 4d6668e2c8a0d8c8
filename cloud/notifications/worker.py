"""The outbox worker: claim due rows (FOR UPDATE SKIP LOCKED), deliver, write the outcome back.

    worker = OutboxWorker(session_factory, channels, links=links, limiter=limiter)
    sent = await worker.run_once()          # one batch; 0 when nothing was due
    await run_worker(worker, stop, jobs=lambda: run_periodic_jobs(app.state))   # the loop

Rows stay locked by the claiming transaction while they are sent, so any number of workers can run
side by side and a row is never handed to two of them. A bad row is dead-lettered, never raised.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import signal
import time
import uuid
from collections.abc import Callable, Mapping

from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker

from cloud.config import CloudSettings
from cloud.db import platform_scope
from cloud.models_common import utcnow
from cloud.notifications import outbox, push_tokens
from cloud.notifications.channels.base import Channel
from cloud.notifications.config import (
    NotificationSettings,
    build_channels,
    build_rate_limiter,
    build_unsubscribe_links,
)
from cloud.notifications.dispatch import UnsubscribeLinks, deliver
from cloud.notifications.kinds import ChannelKind
from cloud.notifications.models import OutboxRecord
from cloud.notifications.preferences import NotificationPreferences
from cloud.notifications.ratelimit import SendRateLimiter
from cloud.notifications.retry import RetryPolicy
from cloud.notifications.schemas import OutboxRow, OutboxStatus, OutboxUpdate

log = logging.getLogger("studyspot.notifications.worker")

Clock = Callable[[], dt.datetime]


class OutboxWorker:
    def __init__(
        self,
        session_factory: sessionmaker[Session],
        channels: Mapping[ChannelKind, Channel],
        *,
        policy: RetryPolicy | None = None,
        links: UnsubscribeLinks | None = None,
        limiter: SendRateLimiter | None = None,
        batch_size: int = 20,
        clock: Clock = utcnow,
    ) -> None:
        self.session_factory = session_factory
        self.channels = channels
        self.policy = policy or RetryPolicy()
        self.links = links
        self.limiter = limiter
        self.batch_size = batch_size
        self.clock = clock

    async def run_once(self) -> int:
        """Claim one batch of due rows, attempt each, persist; returns how many were claimed."""
        now = self.clock()
        with self.session_factory() as session:
            platform_scope(session)
            with session.begin():
                records = outbox.claim_due(session, now, self.batch_size)
                for record in records:
                    outcome = await self._attempt(session, record, now)
                    outbox.apply_update(session, record, outcome)
        return len(records)

    async def drain(self, max_batches: int = 1000) -> int:
        """Run batches until nothing is due (tests, the demo); returns rows handled."""
        total = 0
        for _ in range(max_batches):
            claimed = await self.run_once()
            total += claimed
            if claimed == 0:
                break
        return total

    async def _attempt(self, session: Session, record: OutboxRecord, now: dt.datetime) -> OutboxUpdate:
        try:
            row = outbox.to_row(record)
        except (ValidationError, ValueError) as exc:
            return OutboxUpdate(
                status=OutboxStatus.DEAD, attempts=record.attempts + 1, last_error=f"unreadable row: {exc}"
            )
        stored = _stored_preferences(session, row.recipient_user_id)
        if stored is not None:
            # the stored language wins: whoever queued the row may not have been allowed to read it
            row = row.model_copy(update={"language": stored.language})
        prefs = stored or NotificationPreferences()
        if _unregistered_push_token(session, row):
            return OutboxUpdate(
                status=OutboxStatus.SUPPRESSED,
                attempts=row.attempts,
                last_error="the device token was removed before sending",
            )
        outcome = await deliver(
            row,
            self.channels,
            prefs=prefs,
            now=now,
            policy=self.policy,
            links=self.links,
            limiter=self.limiter,
        )
        if outcome.remove_recipient and row.channel is ChannelKind.PUSH and row.recipient_user_id:
            removed = push_tokens.forget_token(session, row.recipient_user_id, row.recipient)
            log.info("forgot %d stale push token(s): %s", removed, outcome.last_error)
        return outcome


def _unregistered_push_token(session: Session, row: OutboxRow) -> bool:
    """A push row whose token the user deleted (logged out) or FCM rejected for another message."""
    if row.channel is not ChannelKind.PUSH or row.recipient_user_id is None:
        return False
    return not push_tokens.is_registered(session, row.recipient_user_id, row.recipient)


def _stored_preferences(session: Session, user_id: uuid.UUID | None) -> NotificationPreferences | None:
    try:
        return outbox.stored_preferences(session, user_id)
    except ValidationError:
        log.warning("stored preferences of %s are unreadable; using defaults", user_id)
        return None


async def run_worker(
    worker: OutboxWorker,
    stop: asyncio.Event,
    *,
    jobs: Callable[[], object] | None = None,
    jobs_interval: float = 60.0,
    idle_sleep: float = 1.0,
    once: bool = False,
) -> None:
    """Deliver until `stop` is set; also run `jobs` (booking jobs) about every `jobs_interval` s."""
    next_jobs = time.monotonic()
    while not stop.is_set():
        if jobs is not None and time.monotonic() >= next_jobs:
            _run_jobs(jobs)
            next_jobs = time.monotonic() + jobs_interval
        claimed = await _batch(worker)
        if once and claimed == 0:
            return
        if claimed == 0:
            try:
                await asyncio.wait_for(stop.wait(), timeout=idle_sleep)
            except TimeoutError:
                pass


async def _batch(worker: OutboxWorker) -> int:
    try:
        return await worker.run_once()
    except Exception:  # a lost database connection must not end the loop; the next pass retries
        log.exception("outbox batch failed")
        return 0


def _run_jobs(jobs: Callable[[], object]) -> None:
    try:
        jobs()
    except Exception:
        log.exception("periodic jobs failed")


async def serve(settings: CloudSettings, *, once: bool = False, batch_size: int = 20) -> None:
    """`studyspot cloud worker`: the outbox loop plus the booking jobs, until SIGINT/SIGTERM."""
    from cloud.app import close_app, create_app
    from cloud.jobs import run_periodic_jobs

    notify = NotificationSettings()
    channels = build_channels(notify)
    limiter = build_rate_limiter(notify)
    app = create_app(settings)
    worker = OutboxWorker(
        app.state.session_factory,
        channels,
        links=build_unsubscribe_links(notify),
        limiter=limiter,
        batch_size=batch_size,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    log.info("outbox worker started with channels %s", sorted(channel.value for channel in channels))
    try:
        await run_worker(worker, stop, jobs=lambda: run_periodic_jobs(app.state), once=once)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        for channel in channels.values():
            await channel.aclose()
        await limiter.aclose()
        await close_app(app)
