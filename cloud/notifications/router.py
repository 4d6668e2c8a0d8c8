"""Thin routes: my notification preferences and push tokens, one-click unsubscribe (RFC 8058), Twilio
status callback, owner announcements. Importing it also registers the edge `alert` handler."""

from __future__ import annotations

import datetime as dt
import html
import uuid
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.orm import Session

from cloud.deps import Principal, current_principal, platform_session, require_role, scoped_session
from cloud.errors import ApiError
from cloud.identity.roles import Role
from cloud.models_common import utcnow
from cloud.notifications import announcements, outbox, push_tokens, staff_alerts
from cloud.notifications.announcements import AnnouncementIn, AnnouncementOut
from cloud.notifications.channels.sms import InvalidStatusCallback, parse_status_callback
from cloud.notifications.config import NotificationSettings
from cloud.notifications.kinds import ChannelKind, EventKind, Language
from cloud.notifications.preferences import NotificationPreferences, QuietHours
from cloud.notifications.recipients import InvalidRecipientError
from cloud.notifications.schemas import OutboxStatus
from cloud.notifications.unsubscribe import InvalidUnsubscribeToken, verify_unsubscribe_token
from cloud.openapi import errors

router = APIRouter(tags=["notifications"])
staff_alerts.install()

PREFERENCES = "/api/v1/users/me/notification-preferences"
UNSUBSCRIBE = "/api/v1/notifications/unsubscribe"
TWILIO_STATUS = "/api/v1/notifications/twilio/status"
PUSH_TOKENS = "/api/v1/users/me/push-tokens"
ANNOUNCEMENTS = "/api/v1/libraries/{library_id}/announcements"


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


class PushTokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=1, max_length=4096)
    platform: push_tokens.Platform


class PushTokenOut(BaseModel):
    id: uuid.UUID
    platform: push_tokens.Platform
    token_hint: str  # the last characters, enough to tell devices apart
    created_at: dt.datetime


def _token_out(record: Any) -> PushTokenOut:
    return PushTokenOut(
        id=record.id,
        platform=push_tokens.Platform(record.platform),
        token_hint="…" + record.token[-8:],
        created_at=record.created_at,
    )


@router.post(PUSH_TOKENS, status_code=201, response_model=PushTokenOut)
def register_push_token(
    body: PushTokenIn,
    principal: Principal = Depends(current_principal),
    session: Session = Depends(scoped_session),
) -> PushTokenOut:
    try:
        record = push_tokens.register_token(session, principal.user_id, body.token, body.platform)
    except InvalidRecipientError as exc:
        raise ApiError(422, "invalid_token", str(exc)) from exc
    session.commit()
    return _token_out(record)


@router.get(PUSH_TOKENS, response_model=list[PushTokenOut])
def list_push_tokens(
    principal: Principal = Depends(current_principal), session: Session = Depends(scoped_session)
) -> list[PushTokenOut]:
    return [_token_out(record) for record in push_tokens.list_tokens(session, principal.user_id)]


@router.delete(PUSH_TOKENS + "/{token_id}", status_code=204)
def delete_push_token(
    token_id: uuid.UUID,
    principal: Principal = Depends(current_principal),
    session: Session = Depends(scoped_session),
) -> Response:
    if not push_tokens.delete_token(session, principal.user_id, token_id):
        raise ApiError(404, "not_found", "no such push token")
    session.commit()
    return Response(status_code=204)


@router.post(ANNOUNCEMENTS, status_code=201, response_model=AnnouncementOut)
def post_announcement(
    library_id: uuid.UUID,
    body: AnnouncementIn,
    principal: Principal = Depends(require_role(Role.LIBRARY_OWNER)),
    session: Session = Depends(scoped_session),
) -> AnnouncementOut:
    assert principal.tenant_id is not None  # an owner always acts in their tenant
    created = announcements.announce(
        session, principal.tenant_id, principal.user_id, library_id, body, utcnow()
    )
    session.commit()
    return created


@router.get(ANNOUNCEMENTS, response_model=list[AnnouncementOut])
def get_announcements(
    library_id: uuid.UUID,
    principal: Principal = Depends(require_role(Role.LIBRARY_OWNER)),
    session: Session = Depends(scoped_session),
) -> list[AnnouncementOut]:
    assert principal.tenant_id is not None
    return announcements.list_announcements(session, principal.tenant_id, library_id)
