"""The edge's sync client: pushes the outbox and pulls the door's data, each on its own loop.

- Push drains the outbox in gzip batches; only events the cloud answered `applied`/`duplicate`
  are removed; `rejected` ones become dead letters with the reason and are never retried. A batch
  the cloud refuses as a whole (422/413) is split in halves down to one event, which is then
  dead-lettered, so one bad event never blocks the queue.
- Pull applies pages into the store, one transaction per page with its cursor, then runs new
  remote commands and queues their acknowledgement.
- A failure of one loop never stops the other; each backs off exponentially with full jitter.
- Every request is signed (RFC 9421) with `created` corrected by the clock offset measured from
  the cloud's `X-Server-Time`, so a Pi with a wrong clock still syncs (and the cloud sees the skew).
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import logging
import random
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from pydantic import ValidationError

from edge.enroll import AGENT_VERSION, tls_verify
from edge.store import Store
from edge.sync_store import DeviceIdentity, SyncStore
from shared.passes import generate_signing_key, public_key_to_text
from shared.signing import sign_request
from shared.sync import MAX_EVENTS_PER_BATCH, EdgeEvent, PullResponse, PushBatch, PushResult, RemoteCommand

log = logging.getLogger(__name__)

PUSH_PATH = "/api/v1/fleet/sync/push"
PULL_PATH = "/api/v1/fleet/sync/pull"
ROTATE_PATH = "/api/v1/fleet/keys/rotate"
SERVER_TIME_HEADER = "x-server-time"

CommandHandler = Callable[[RemoteCommand], Awaitable[dict[str, Any]]]
# Opening a door hours after someone asked (the link was down) is worse than not opening it.
PROMPT_COMMANDS = frozenset({"unlock_door"})
PROMPT_COMMAND_TTL = timedelta(minutes=5)


@dataclass(frozen=True)
class SyncSettings:
    interval_seconds: float = 30.0
    batch_size: int = MAX_EVENTS_PER_BATCH
    backoff_base_seconds: float = 1.0
    backoff_max_seconds: float = 300.0
    timeout_seconds: float = 30.0
    ca_file: str | None = None
    agent_version: str = AGENT_VERSION


class SyncError(Exception):
    """The cloud could not be reached or answered with an error."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass
class PushOutcome:
    sent: int = 0
    applied: int = 0
    duplicates: int = 0
    rejected: int = 0


@dataclass
class _LoopState:
    failures: int = 0
    last_error: str | None = None
    last_success: datetime | None = None


class _ClockCorrectedSigner(httpx.Auth):
    """Signs with the device key; `created` is the edge clock plus the measured offset."""

    requires_request_body = True

    def __init__(self, client: SyncClient) -> None:
        self._client = client

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        key_id, private_key = self._client.signing_key()
        created = datetime.now(UTC) + timedelta(seconds=self._client.clock_offset)
        headers = sign_request(
            request.method, str(request.url), request.headers, request.content,
            key_id=key_id, private_key=private_key, created=created,
        )  # fmt: skip
        request.headers.update(headers)
        request.extensions["studyspot_key_id"] = key_id
        yield request


class SyncClient:
    """Owns the link to the cloud. `start()`/`stop()` run both loops; the `*_once` calls work alone."""

    def __init__(
        self,
        store: Store,
        settings: SyncSettings | None = None,
        *,
        on_command: CommandHandler | None = None,
        on_pulled: Callable[[], None] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings or SyncSettings()
        self.sync_store = SyncStore(store)
        self.on_command = on_command
        self.on_pulled = on_pulled  # e.g. reload the pass keys into the check-in desk
        self._transport = transport
        self._http: httpx.AsyncClient | None = None
        self._identity: DeviceIdentity | None = None
        self._batch_size = self.settings.batch_size
        self.clock_offset = self.sync_store.clock_offset()
        self._push_state = _LoopState()
        self._pull_state = _LoopState()
        self._push_wakeup = asyncio.Event()
        self._pull_wakeup = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    # -- lifecycle --------------------------------------------------------------------------------
    async def start(self) -> None:
        self._stopping = False
        self._tasks = [
            asyncio.create_task(
                self._loop(self.drain, self._push_state, self._push_wakeup), name="sync-push"
            ),
            asyncio.create_task(
                self._loop(self.pull_once, self._pull_state, self._pull_wakeup), name="sync-pull"
            ),
        ]

    async def stop(self) -> None:
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def sync_now(self) -> None:
        """Push at once (call after a check-in, a sale or an alert)."""
        self._push_wakeup.set()

    def pull_now(self) -> None:
        self._pull_wakeup.set()

    async def _loop(
        self, work: Callable[[], Awaitable[Any]], state: _LoopState, wakeup: asyncio.Event
    ) -> None:
        while not self._stopping:
            try:
                await work()
                state.failures, state.last_error, state.last_success = 0, None, datetime.now(UTC)
                delay = self.settings.interval_seconds
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure: log, back off, try again; never die
                state.failures += 1
                state.last_error = str(exc)[:300]
                delay = self.backoff_delay(state.failures)
                log.warning("sync %s failed (%d in a row): %s", work.__name__, state.failures, exc)
            wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wakeup.wait(), timeout=delay)

    def backoff_delay(self, failures: int) -> float:
        """Full jitter: uniform in [base/2, min(max, base * 2^failures)]."""
        base = self.settings.backoff_base_seconds
        ceiling = min(self.settings.backoff_max_seconds, base * 2 ** min(failures, 30))
        return random.uniform(base / 2, max(base / 2, ceiling))

    # -- http -------------------------------------------------------------------------------------
    def identity(self) -> DeviceIdentity:
        self._identity = self.sync_store.identity()
        return self._identity

    def signing_key(self) -> tuple[str, Any]:
        pending = self.sync_store.next_key()
        if pending is not None and pending[0] is not None:
            return pending[0], pending[1]
        identity = self._identity or self.identity()
        return identity.key_id, identity.private_key

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            identity = self.identity()
            self._http = httpx.AsyncClient(
                base_url=identity.cloud_url,
                timeout=self.settings.timeout_seconds,
                verify=tls_verify(self.settings.ca_file),
                transport=self._transport,
                auth=_ClockCorrectedSigner(self),
            )
        return self._http

    def _report_headers(self) -> dict[str, str]:
        return {
            "X-Studyspot-Agent-Version": self.settings.agent_version,
            "X-Studyspot-Queue-Depth": str(self.sync_store.queue_depth()),
            "X-Studyspot-Dead-Letters": str(self.sync_store.dead_letter_count()),
        }

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        client = self._client()
        sent_at = datetime.now(UTC)
        try:
            response = await client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise SyncError(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        self._learn_clock(response, sent_at, datetime.now(UTC))
        if response.status_code >= 400:
            raise _error_of(response)
        if response.request.extensions.get("studyspot_key_id") == (self.sync_store.next_key() or (None,))[0]:
            self.sync_store.promote_next_key()
            self.identity()
        return response

    def _learn_clock(self, response: httpx.Response, sent_at: datetime, received_at: datetime) -> None:
        server_time = response.headers.get(SERVER_TIME_HEADER)
        if not server_time:
            return
        try:
            server = datetime.fromisoformat(server_time)
        except ValueError:
            return
        midpoint = sent_at + (received_at - sent_at) / 2
        self.clock_offset = (server - midpoint).total_seconds()
        self.sync_store.set_clock_offset(self.clock_offset)

    # -- push -------------------------------------------------------------------------------------
    async def drain(self) -> PushOutcome:
        """Push until the outbox is empty (or nothing more can be delivered now)."""
        total = PushOutcome()
        self.sync_store.queue_closed_telemetry(datetime.now(UTC))
        while True:
            outcome = await self.push_once()
            for name in ("sent", "applied", "duplicates", "rejected"):
                setattr(total, name, getattr(total, name) + getattr(outcome, name))
            if outcome.sent == 0:
                return total

    async def push_once(self) -> PushOutcome:
        rows = self.sync_store.pending(self._batch_size)
        if not rows:
            self.sync_store.mark("push")
            return PushOutcome()
        events = self._events_of(rows)
        if not events:
            return PushOutcome(sent=len(rows), rejected=len(rows))
        try:
            result = await self._post_batch(events)
        except SyncError as exc:
            if exc.status in (413, 422) and exc.code != "wrong_device":
                return self._split_after_refusal(events, exc)
            raise
        self._batch_size = self.settings.batch_size
        return self._settle(events, result)

    def _events_of(self, rows: list[dict[str, Any]]) -> list[EdgeEvent]:
        events, broken = [], {}
        for row in rows:
            try:
                events.append(
                    EdgeEvent(
                        id=row["id"], kind=row["kind"], occurred_at=row["occurred_at"], payload=row["payload"]
                    )
                )
            except ValidationError as exc:
                broken[row["id"]] = f"invalid on the edge: {exc.errors()[0]['msg']}"
        self.sync_store.dead_letter(broken)
        return events

    async def _post_batch(self, events: list[EdgeEvent]) -> PushResult:
        identity = self._identity or self.identity()
        now = datetime.now(UTC)
        batch = PushBatch(device_id=identity.device_id, sent_at=now, clock=now, events=events)
        body = gzip.compress(batch.model_dump_json().encode(), compresslevel=6)
        headers = {"Content-Type": "application/json", "Content-Encoding": "gzip", **self._report_headers()}
        response = await self._request("POST", PUSH_PATH, content=body, headers=headers)
        try:
            return PushResult.model_validate_json(response.content)
        except ValidationError as exc:
            raise SyncError(f"the cloud's push answer is not valid: {exc}") from exc

    def _split_after_refusal(self, events: list[EdgeEvent], error: SyncError) -> PushOutcome:
        if len(events) == 1:
            self.sync_store.dead_letter({str(events[0].id): f"refused by the cloud: {error}"[:500]})
            self._batch_size = self.settings.batch_size
            return PushOutcome(sent=1, rejected=1)
        self._batch_size = max(1, len(events) // 2)
        return PushOutcome(sent=len(events))  # nothing settled; the next round sends a smaller batch

    def _settle(self, events: list[EdgeEvent], result: PushResult) -> PushOutcome:
        sent = {str(event.id) for event in events}
        outcome = PushOutcome(sent=len(events))
        done, rejected = [], {}
        for item in result.results:
            event_id = str(item.id)
            if event_id not in sent:
                continue
            if item.status == "rejected":
                rejected[event_id] = item.reason or "rejected"
                outcome.rejected += 1
            else:
                done.append(event_id)
                outcome.applied += item.status == "applied"
                outcome.duplicates += item.status == "duplicate"
        self.sync_store.settle_push(done, rejected)
        if not done and not rejected:
            raise SyncError("the cloud answered for none of the events sent")
        return outcome

    # -- pull -------------------------------------------------------------------------------------
    async def pull_once(self) -> int:
        """Pull every page of the delta; returns the number of pages applied."""
        pages = 0
        fresh: list[RemoteCommand] = []
        while True:
            cursor = self.sync_store.cursor()
            params = {"cursor": cursor} if cursor else {}
            response = await self._request("GET", PULL_PATH, params=params, headers=self._report_headers())
            try:
                page = PullResponse.model_validate_json(response.content)
            except ValidationError as exc:
                raise SyncError(f"the cloud's pull answer is not valid: {exc}") from exc
            fresh += self.sync_store.apply_pull(page)
            pages += 1
            if not page.has_more:
                break
        self.sync_store.mark("pull")
        if self.on_pulled is not None:
            self.on_pulled()
        if fresh or self.sync_store.undone_commands():
            await self.run_commands()
        return pages

    async def run_commands(self) -> None:
        for command in self.sync_store.undone_commands():
            result = await self._execute(command)
            self.sync_store.finish_command(command, result)
        self.sync_now()

    async def _execute(self, command: RemoteCommand) -> dict[str, Any]:
        cloud_now = datetime.now(UTC) + timedelta(seconds=self.clock_offset)
        if command.kind in PROMPT_COMMANDS and cloud_now - command.issued_at > PROMPT_COMMAND_TTL:
            return {"ok": False, "detail": f"expired: issued at {command.issued_at.isoformat()}, not run"}
        try:
            if command.kind == "rotate_key":
                return await self.rotate_key()
            if self.on_command is None:
                return {"ok": False, "detail": f"{command.kind} is not supported by this agent"}
            return await self.on_command(command)
        except Exception as exc:  # a failing command is acknowledged with its error, not retried forever
            log.exception("remote command %s failed", command.kind)
            return {"ok": False, "detail": str(exc)[:300]}

    async def rotate_key(self) -> dict[str, Any]:
        """Register a new key; requests switch to it, and the cloud retires the old one on first use."""
        pending = self.sync_store.next_key()
        if pending is None:
            self.sync_store.save_next_key(generate_signing_key())
            pending = self.sync_store.next_key()
        assert pending is not None
        body = {"public_key": public_key_to_text(pending[1].public_key())}
        identity = self.identity()
        # register while still signing with the current key
        self._clear_next_key_id()
        response = await self._request("POST", ROTATE_PATH, json=body)
        key_id = str(response.json()["key_id"])
        self.sync_store.set_next_key_id(key_id)
        await self._request("GET", PULL_PATH, params={"cursor": self.sync_store.cursor() or ""})
        return {"ok": True, "old_key_id": identity.key_id, "new_key_id": key_id}

    def _clear_next_key_id(self) -> None:
        self.sync_store.db.execute("DELETE FROM settings WHERE key = 'device_next_key_id'")

    # -- health -----------------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        get = self.sync_store.store.get_setting
        return {
            "enrolled": self.sync_store.is_enrolled(),
            "running": bool(self._tasks),
            "last_success": get("sync_last_success"),
            "last_push": get("sync_last_push"),
            "last_pull": get("sync_last_pull"),
            "queued_events": self.sync_store.queue_depth(),
            "dead_letters": self.sync_store.dead_letter_count(),
            "clock_offset_seconds": round(self.clock_offset, 3),
            "push_failures": self._push_state.failures,
            "pull_failures": self._pull_state.failures,
            "last_error": self._push_state.last_error or self._pull_state.last_error,
        }


def _error_of(response: httpx.Response) -> SyncError:
    try:
        error = response.json()["error"]
        return SyncError(
            f"HTTP {response.status_code} {error['code']}: {error['message']} {error.get('details') or ''}"[
                :500
            ],
            status=response.status_code,
            code=str(error["code"]),
        )
    except (ValueError, KeyError, TypeError):
        return SyncError(f"HTTP {response.status_code}", status=response.status_code)


__all__ = ["PushOutcome", "SyncClient", "SyncError", "SyncSettings"]
