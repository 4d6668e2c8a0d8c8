"""Per-user delivery preferences as pure functions: channel opt-outs per event kind and quiet hours."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

from cloud.notifications.kinds import EVENT_SPECS, ChannelKind, EventKind, Language


class QuietHours(BaseModel):
    """A daily window in the library's local time; `start > end` means it spans midnight."""

    start: dt.time
    end: dt.time

    def contains(self, local: dt.time) -> bool:
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


class NotificationPreferences(BaseModel):
    language: Language = Language.ENGLISH
    # Channels switched off, per event kind; a kind missing here has every channel on.
    disabled: dict[EventKind, set[ChannelKind]] = Field(default_factory=dict)
    # Channels switched off for every optional message (what one-click unsubscribe sets for email).
    disabled_everywhere: set[ChannelKind] = Field(default_factory=set)
    quiet_hours: QuietHours | None = None


class Action(enum.StrEnum):
    SEND = "send"
    DEFER = "defer"
    SUPPRESS = "suppress"


@dataclass(frozen=True)
class Decision:
    action: Action
    defer_until: dt.datetime | None = None  # UTC, set when action is DEFER
    reason: str = ""


def channel_enabled(kind: EventKind, channel: ChannelKind, prefs: NotificationPreferences) -> bool:
    if EVENT_SPECS[kind].mandatory or channel is ChannelKind.CONSOLE:
        return True
    if channel in prefs.disabled_everywhere:
        return False
    return channel not in prefs.disabled.get(kind, set())


def quiet_hours_end(quiet: QuietHours, now: dt.datetime, zone: ZoneInfo) -> dt.datetime | None:
    """When the quiet window containing `now` ends (UTC), or None if `now` is outside it."""
    local = now.astimezone(zone)
    if not quiet.contains(local.time().replace(tzinfo=None)):
        return None
    end_day = local.date()
    if quiet.start > quiet.end and local.time() >= quiet.start:
        end_day += dt.timedelta(days=1)
    # Round-tripping through UTC resolves an end time that falls in a DST gap or overlap.
    end_local = dt.datetime.combine(end_day, quiet.end, tzinfo=zone)
    return end_local.astimezone(dt.UTC)


def should_send_now(
    kind: EventKind,
    channel: ChannelKind,
    prefs: NotificationPreferences,
    now: dt.datetime,
    library_tz: str | ZoneInfo,
    *,
    expires_at: dt.datetime | None = None,
) -> Decision:
    """Send, wait for the end of quiet hours, or drop. `expires_at`: after it the message is useless."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if expires_at is not None and now >= expires_at:
        return Decision(Action.SUPPRESS, reason="expired before it could be sent")
    if not channel_enabled(kind, channel, prefs):
        return Decision(Action.SUPPRESS, reason=f"{channel.value} is off for {kind.value}")
    if EVENT_SPECS[kind].urgent or prefs.quiet_hours is None:
        return Decision(Action.SEND)
    zone = library_tz if isinstance(library_tz, ZoneInfo) else ZoneInfo(library_tz)
    wake = quiet_hours_end(prefs.quiet_hours, now, zone)
    if wake is None:
        return Decision(Action.SEND)
    if expires_at is not None and wake >= expires_at:
        return Decision(Action.SUPPRESS, reason="quiet hours last past its expiry")
    return Decision(Action.DEFER, defer_until=wake, reason="quiet hours")
