"""Small builders shared by the notification tests."""

from __future__ import annotations

from email.message import EmailMessage

from cloud.notifications.channels.base import OutgoingMessage
from cloud.notifications.kinds import ChannelKind, EventKind, Language
from cloud.notifications.samples import SAMPLE_CONTEXTS
from cloud.notifications.templates import render

UNSUBSCRIBE_SECRET = "unsubscribe-secret-for-tests-0123456789"


def message_for(
    channel: ChannelKind,
    recipient: str,
    kind: EventKind = EventKind.BOOKING_CONFIRMED,
    language: Language = Language.ENGLISH,
    unsubscribe_url: str | None = None,
    message_id: str = "msg-1",
) -> OutgoingMessage:
    content = render(
        kind,
        channel,
        language,
        SAMPLE_CONTEXTS[kind],
        library_tz="Asia/Kolkata",
        unsubscribe_url=unsubscribe_url,
    )
    return OutgoingMessage(
        message_id=message_id,
        channel=channel,
        kind=kind,
        recipient=recipient,
        language=language,
        content=content,
        unsubscribe_url=unsubscribe_url,
    )


def body_of(mail: EmailMessage, subtype: str) -> str:
    part = mail.get_body((subtype,))
    assert part is not None, f"no text/{subtype} part"
    return str(part.get_content())
