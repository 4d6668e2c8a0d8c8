"""Login codes reach the SMS provider through the outbox once Twilio is configured."""

from __future__ import annotations

import pytest

from cloud.app import close_app, create_app
from cloud.config import CloudSettings
from cloud.identity.otp import ConsoleOtpSender
from cloud.notifications.outbox import OutboxOtpSender


@pytest.mark.parametrize(("twilio", "expected"), [(True, OutboxOtpSender), (False, ConsoleOtpSender)])
async def test_otp_sender_follows_the_sms_configuration(
    cloud_settings: CloudSettings, monkeypatch: pytest.MonkeyPatch, twilio: bool, expected: type
) -> None:
    if twilio:
        monkeypatch.setenv("NOTIFY_TWILIO__ACCOUNT_SID", "AC" + "0" * 32)
        monkeypatch.setenv("NOTIFY_TWILIO__AUTH_TOKEN", "secret-token")
        monkeypatch.setenv("NOTIFY_TWILIO__FROM_NUMBER", "+15005550006")
    else:
        monkeypatch.delenv("NOTIFY_TWILIO__ACCOUNT_SID", raising=False)
    app = create_app(cloud_settings)
    try:
        assert isinstance(app.state.otp_sender, expected)
    finally:
        await close_app(app)
