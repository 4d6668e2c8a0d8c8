"""Notification configuration from the environment and the channel set a worker runs with.

Environment (nested fields use `__`), for example:
    NOTIFY_SMTP__HOST=smtp.example.com NOTIFY_SMTP__PORT=587 NOTIFY_SMTP__SECURITY=starttls
    NOTIFY_SMTP__USERNAME=... NOTIFY_SMTP__PASSWORD=... NOTIFY_SMTP__FROM_ADDRESS=no-reply@example.com
    NOTIFY_TWILIO__ACCOUNT_SID=AC... NOTIFY_TWILIO__AUTH_TOKEN=... NOTIFY_TWILIO__FROM_NUMBER=+1...
    NOTIFY_WHATSAPP__ACCESS_TOKEN=... NOTIFY_WHATSAPP__PHONE_NUMBER_ID=...
    NOTIFY_FCM_SERVICE_ACCOUNT_FILE=/run/secrets/fcm.json
    NOTIFY_UNSUBSCRIBE_SECRET=... NOTIFY_UNSUBSCRIBE_BASE_URL=https://api.example/api/v1/notifications/unsubscribe
A channel without settings is absent; the console channel is on unless NOTIFY_CONSOLE=false.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from cloud.notifications.channels.base import Channel
from cloud.notifications.channels.console import ConsoleChannel
from cloud.notifications.channels.email import EmailChannel, SmtpSettings
from cloud.notifications.channels.push import FcmSettings, PushChannel, ServiceAccount
from cloud.notifications.channels.sms import SmsChannel, TwilioSettings
from cloud.notifications.channels.whatsapp import WhatsAppChannel, WhatsAppSettings
from cloud.notifications.dispatch import UnsubscribeLinks
from cloud.notifications.kinds import ChannelKind
from cloud.notifications.ratelimit import SendRateLimiter


class NotificationConfigError(ValueError):
    """A configured channel cannot be built (unreadable key file, bad JSON...)."""


class NotificationSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFY_", env_nested_delimiter="__", extra="ignore")

    smtp: SmtpSettings | None = Field(
        default=None,
        description="Email over SMTP: set NOTIFY_SMTP__HOST, __PORT, __SECURITY, __USERNAME, ...",
    )
    twilio: TwilioSettings | None = Field(
        default=None,
        description="SMS through Twilio: NOTIFY_TWILIO__ACCOUNT_SID, __AUTH_TOKEN, __FROM_NUMBER.",
    )
    whatsapp: WhatsAppSettings | None = Field(
        default=None,
        description="WhatsApp Cloud API: NOTIFY_WHATSAPP__ACCESS_TOKEN, __PHONE_NUMBER_ID.",
    )
    fcm_service_account_file: Path | None = Field(
        default=None, description="Google service-account JSON key for push through FCM HTTP v1."
    )
    fcm_base_url: str = Field(default="https://fcm.googleapis.com", description="FCM API base URL.")
    console: bool = Field(default=True, description="Also write every message to the console (the demo).")
    unsubscribe_secret: SecretStr | None = Field(
        default=None, description="At least 32 bytes; signs the one-click unsubscribe links."
    )
    unsubscribe_base_url: str | None = Field(default=None, description="Public URL of the unsubscribe route.")
    rate_limit_storage: str = Field(
        default="async+memory://",
        description="`limits` storage for send rate limits (async+redis://... in production).",
    )


def load_service_account(path: Path) -> ServiceAccount:
    """Read a Google service-account JSON key file (the fields the JWT bearer flow needs)."""
    try:
        return ServiceAccount.model_validate(json.loads(path.read_text()))
    except (OSError, ValueError, ValidationError) as exc:
        raise NotificationConfigError(f"cannot read FCM service account {path}: {exc}") from exc


def build_channels(settings: NotificationSettings) -> dict[ChannelKind, Channel]:
    channels: dict[ChannelKind, Channel] = {}
    if settings.smtp:
        channels[ChannelKind.EMAIL] = EmailChannel(settings.smtp)
    if settings.twilio:
        channels[ChannelKind.SMS] = SmsChannel(settings.twilio)
    if settings.whatsapp:
        channels[ChannelKind.WHATSAPP] = WhatsAppChannel(settings.whatsapp)
    if settings.fcm_service_account_file:
        account = load_service_account(settings.fcm_service_account_file)
        channels[ChannelKind.PUSH] = PushChannel(
            FcmSettings(service_account=account, base_url=settings.fcm_base_url)
        )
    if settings.console:
        channels[ChannelKind.CONSOLE] = ConsoleChannel(sys.stdout)
    return channels


def build_unsubscribe_links(settings: NotificationSettings) -> UnsubscribeLinks | None:
    if settings.unsubscribe_secret is None or settings.unsubscribe_base_url is None:
        return None
    return UnsubscribeLinks(settings.unsubscribe_secret.get_secret_value(), settings.unsubscribe_base_url)


def build_rate_limiter(settings: NotificationSettings) -> SendRateLimiter:
    return SendRateLimiter(settings.rate_limit_storage)
