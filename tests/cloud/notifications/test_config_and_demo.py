"""Channels built from environment settings; the demo printer covers every event in both languages."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from cloud.notifications.channels.email import EmailChannel, SmtpSecurity
from cloud.notifications.channels.push import PushChannel
from cloud.notifications.channels.sms import SmsChannel
from cloud.notifications.config import (
    NotificationConfigError,
    NotificationSettings,
    build_channels,
    build_unsubscribe_links,
)
from cloud.notifications.demo import print_every_event
from cloud.notifications.kinds import ChannelKind, EventKind, Language

from .conftest import FCM_EMAIL, FCM_PROJECT


def test_channels_come_from_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, rsa_key_pem: tuple[str, str]
) -> None:
    key_file = tmp_path / "fcm.json"
    key_file.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": FCM_PROJECT,
                "client_email": FCM_EMAIL,
                "private_key": rsa_key_pem[0],
            }
        )
    )
    env = {
        "NOTIFY_SMTP__HOST": "smtp.example.com",
        "NOTIFY_SMTP__PORT": "465",
        "NOTIFY_SMTP__SECURITY": "tls",
        "NOTIFY_SMTP__FROM_ADDRESS": "no-reply@example.com",
        "NOTIFY_TWILIO__ACCOUNT_SID": "AC" + "3" * 32,
        "NOTIFY_TWILIO__AUTH_TOKEN": "t",
        "NOTIFY_TWILIO__MESSAGING_SERVICE_SID": "MG" + "4" * 32,
        "NOTIFY_FCM_SERVICE_ACCOUNT_FILE": str(key_file),
        "NOTIFY_CONSOLE": "false",
        "NOTIFY_UNSUBSCRIBE_SECRET": "x" * 40,
        "NOTIFY_UNSUBSCRIBE_BASE_URL": "https://api.example/unsubscribe",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = NotificationSettings()
    assert settings.smtp is not None and settings.smtp.security is SmtpSecurity.TLS
    channels = build_channels(settings)
    assert set(channels) == {ChannelKind.EMAIL, ChannelKind.SMS, ChannelKind.PUSH}
    assert isinstance(channels[ChannelKind.EMAIL], EmailChannel)
    assert isinstance(channels[ChannelKind.SMS], SmsChannel)
    assert isinstance(channels[ChannelKind.PUSH], PushChannel)
    assert build_unsubscribe_links(settings) is not None


def test_unreadable_service_account_is_a_config_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(NotificationConfigError, match="service account"):
        build_channels(NotificationSettings(fcm_service_account_file=broken, console=False))


async def test_demo_prints_every_event_in_both_languages() -> None:
    out = io.StringIO()
    count = await print_every_event(out)
    assert count == len(EventKind) * len(Language)
    printed = out.getvalue()
    assert printed.count("[notification demo-") == count
    assert "बुकिंग पक्की" in printed and "Booking confirmed" in printed
