"""The agent's outgoing events: JSON on `studyspot/<library_id>/events/<kind>` plus alerts.

Live events are best effort (the broker may be down); anything the cloud must receive is also in
the store's outbox, written before the live publish is attempted.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from edge.store import Store, iso, utcnow
from shared.topics import event_topic

log = logging.getLogger(__name__)

Publisher = Callable[[str, str], Awaitable[None]]


class EventBus:
    def __init__(self, *, store: Store, library_id: str, publish: Publisher) -> None:
        self.store = store
        self.library_id = library_id
        self.publish = publish
        self.recent: deque[dict[str, Any]] = deque(maxlen=50)

    async def emit(self, kind: str, payload: dict[str, Any], at: datetime | None = None) -> None:
        body = {"kind": kind, "library_id": self.library_id, "at": iso(at or utcnow())} | payload
        self.recent.appendleft(body)
        try:
            await self.publish(event_topic(self.library_id, kind), json.dumps(body, default=str))
        except Exception as exc:
            log.warning("event %s not published live: %s", kind, exc)

    async def alert(self, kind: str, device_id: str | None, message: str, at: datetime | None = None) -> None:
        moment = at or utcnow()
        alert_id = self.store.raise_alert(kind, device_id, message, moment)
        log.warning("alert %s on %s: %s", kind, device_id, message)
        await self.emit(
            "alert", {"alert_id": alert_id, "alert": kind, "device_id": device_id, "message": message}, moment
        )
