"""Thin routes: my notification preferences, one-click unsubscribe (RFC 8058), Twilio status callback."""

from __future__ import annotations

import datetime as dt
import html
import uuid
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy.orm import Session

from cloud.deps import Principal, current_principal, platform_session, scoped_session
from cloud.errors import ApiError
from cloud.notifications import outbox
from cloud.notifications.channels.sms import InvalidStatusCallback, parse_status_callback
from cloud.notifications.config import NotificationSettings
from cloud.notifications.kinds import ChannelKind, EventKind, Language
from cloud.notifications.preferences import NotificationPreferences, QuietHours
from cloud.notifications.schemas import OutboxStatus
from cloud.notifications.unsubscribe import InvalidUnsubscribeToken, verify_unsubscribe_token
from cloud.openapi import errors

router = APIRouter(tags=["notifications"])

PREFERENCES = "/api/v1/users/me/notification-preferences"
UNSUBSCRIBE = "/api/v1/notifications/unsubscribe"
TWILIO_STATUS = "/api/v1/notifications/twilio/status"


class PreferencesPatch(BaseModel):
    """Only the fields sent change; `quiet_hours: null` clears them."""

    model_config = ConfigDict(extra="forbid")

    language: Language | None = None
    disabled: dict[EventKind, set[ChannelKind]] | None = None
    disabled_everywhere: set[ChannelKind] | None = None
    quiet_hours: QuietHours | None = None


def _notification_settings(request: Request) -> NotificationSettings:
    settings = getattr(request.app.state, "notification_settings", None)
    if settings is None:
        settings = NotificationSettings()
        request.app.state.notification_settings = settings
    return settings


@router.get(PREFERENCES, response_model=NotificationPreferences)
def get_preferences(
    principal: Principal = Depends(current_principal), session: Session = Depends(scoped_session)
) -> NotificationPreferences:
    return outbox.load_preferences(session, principal.user_id)


@router.patch(PREFERENCES, response_model=NotificationPreferences)
def patch_preferences(
    body: PreferencesPatch,
    principal: Principal = Depends(current_principal),
    session: Session = Depends(scoped_session),
) -> NotificationPreferences:
    current = outbox.load_preferences(session, principal.user_id)
    changes = {name: getattr(body, name) for name in body.model_fields_set}
    if changes.get("language") is None:
        changes.pop("language", None)
    try:
        updated = NotificationPreferences.model_validate({**current.model_dump(), **changes})
    except ValidationError as exc:  # e.g. an explicit null for a field that cannot be null
        details = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        raise ApiError(422, "validation_error", "preferences are not valid", details) from exc
    outbox.save_preferences(session, principal.user_id, updated)
    session.commit()
    return updated


def _verified(request: Request, token: str) -> tuple[uuid.UUID, EventKind | None]:
    settings = _notification_settings(request)
    if settings.unsubscribe_secret is None:
        raise ApiError(404, "not_configured", "unsubscribe links are not configured")
    try:
        asked = verify_unsubscribe_token(settings.unsubscribe_secret.get_secret_value(), token)
        return uuid.UUID(asked.recipient_id), asked.kind
    except (InvalidUnsubscribeToken, ValueError) as exc:
        raise ApiError(400, "invalid_token", str(exc)) from exc


@router.post(UNSUBSCRIBE, responses=errors(404))
def unsubscribe(
    request: Request,
    token: str = Query(..., min_length=1, max_length=2000),
    session: Session = Depends(platform_session),
) -> dict[str, Any]:
    """The one-click POST a mail client sends for `List-Unsubscribe-Post: List-Unsubscribe=One-Click`."""
    user_id, kind = _verified(request, token)
    outbox.unsubscribe_email(session, user_id, kind)
    session.commit()
    return {"unsubscribed": True, "channel": ChannelKind.EMAIL.value, "kind": kind.value if kind else None}


@router.get(UNSUBSCRIBE, response_class=HTMLResponse, responses=errors(404))
def unsubscribe_page(request: Request, token: str = Query(..., min_length=1, max_length=2000)) -> str:
    """A page with a confirm button: link scanners GET links, so GET changes nothing."""
    _verified(request, token)
    return (
        "<!doctype html><meta charset=utf-8><title>Unsubscribe</title>"
        f'<form method=post action="{html.escape(UNSUBSCRIBE + "?" + urlencode({"token": token}))}">'
        "<p>Stop StudySpot emails that are not about your bookings' safety or dues?</p>"
        "<button type=submit>Unsubscribe</button></form>"
    )


@router.post(TWILIO_STATUS, status_code=204, responses=errors(403))
async def twilio_status(request: Request, session: Session = Depends(platform_session)) -> None:
    """Delivery receipts: a message Twilio accepted but could not deliver is dead-lettered with the code."""
    twilio = _notification_settings(request).twilio
    if twilio is None:
        raise ApiError(404, "not_configured", "Twilio is not configured")
    form = await request.form()
    params = {key: str(value) for key, value in form.items()}
    try:
        update = parse_status_callback(
            twilio.auth_token.get_secret_value(),
            str(request.url),
            params,
            request.headers.get("X-Twilio-Signature"),
        )
    except InvalidStatusCallback as exc:
        raise ApiError(403, "invalid_signature", str(exc)) from exc
    if update.failed:
        error = f"twilio {update.status} (error {update.error_code}) at {dt.datetime.now(dt.UTC).isoformat()}"
        outbox.mark_provider_status(session, update.message_sid, OutboxStatus.DEAD, error)
        session.commit()
