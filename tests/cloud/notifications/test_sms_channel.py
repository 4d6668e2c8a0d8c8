"""SmsChannel over real HTTP against the local Twilio fake, and the X-Twilio-Signature verifier."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import pytest

from cloud.notifications.channels.base import PermanentDeliveryError, TransientDeliveryError
from cloud.notifications.channels.sms import (
    InvalidStatusCallback,
    SmsChannel,
    TwilioSettings,
    parse_status_callback,
    twilio_signature,
    verify_twilio_signature,
)
from cloud.notifications.kinds import ChannelKind, EventKind, Language

from .conftest import TWILIO_SID, TWILIO_TOKEN, RunningFake, free_port
from .helpers import message_for

CALLBACK_URL = "https://api.studyspot.example/api/v1/notifications/twilio/status"
PHONE = "+919876543210"


def settings(base_url: str, token: str = TWILIO_TOKEN) -> TwilioSettings:
    return TwilioSettings(
        account_sid=TWILIO_SID,
        auth_token=token,
        from_number="+15005550006",
        base_url=base_url,
        status_callback_url=CALLBACK_URL,
    )


@pytest.fixture
async def sms(twilio: RunningFake) -> AsyncIterator[SmsChannel]:
    channel = SmsChannel(settings(twilio.base_url))
    yield channel
    await channel.aclose()


async def test_sends_form_with_status_callback(sms: SmsChannel, twilio: RunningFake) -> None:
    message = message_for(ChannelKind.SMS, PHONE, EventKind.OTP, Language.HINDI)
    result = await sms.send(message)
    sent = twilio.fake.messages[-1]
    assert result.provider_message_id == sent["sid"] and result.provider_status == "queued"
    assert sent["To"] == PHONE and sent["From"] == "+15005550006"
    assert sent["StatusCallback"] == CALLBACK_URL
    assert sent["Body"] == "482913 आपका StudySpot कोड है। 10 मिनट तक मान्य। किसी को न बताएँ।"


async def test_invalid_number_is_permanent_and_flags_removal(sms: SmsChannel) -> None:
    with pytest.raises(PermanentDeliveryError) as caught:
        await sms.send(message_for(ChannelKind.SMS, "+9112"))
    assert caught.value.provider_code == "21211" and caught.value.remove_recipient


async def test_rate_limit_is_transient_with_retry_after(sms: SmsChannel, twilio: RunningFake) -> None:
    twilio.fake.fail_next(429, 20429, "Too Many Requests", retry_after=30)
    with pytest.raises(TransientDeliveryError) as caught:
        await sms.send(message_for(ChannelKind.SMS, PHONE))
    assert caught.value.retry_after == dt.timedelta(seconds=30)
    assert caught.value.provider_status == 429


async def test_provider_outage_is_transient(sms: SmsChannel, twilio: RunningFake) -> None:
    twilio.fake.fail_next(503, 20500, "Service Unavailable")
    with pytest.raises(TransientDeliveryError) as caught:
        await sms.send(message_for(ChannelKind.SMS, PHONE))
    assert caught.value.retry_after is None


async def test_wrong_credentials_are_permanent(twilio: RunningFake) -> None:
    channel = SmsChannel(settings(twilio.base_url, token="not-the-token"))
    with pytest.raises(PermanentDeliveryError) as caught:
        await channel.send(message_for(ChannelKind.SMS, PHONE))
    await channel.aclose()
    assert caught.value.provider_status == 401 and not caught.value.remove_recipient


async def test_unreachable_provider_is_transient() -> None:
    channel = SmsChannel(settings(f"http://127.0.0.1:{free_port()}"))
    with pytest.raises(TransientDeliveryError, match="connection"):
        await channel.send(message_for(ChannelKind.SMS, PHONE))
    await channel.aclose()


def test_signature_matches_twilio_documented_example() -> None:
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+14158675309",
        "Digits": "1234",
        "From": "+14158675309",
        "To": "+18005551212",
    }
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert twilio_signature("12345", url, params) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    assert verify_twilio_signature("12345", url, params, "RSOYDt4T1cUTdK1PDd93/VVr8B8=")
    assert not verify_twilio_signature(
        "12345", url, {**params, "Digits": "9999"}, "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    )
    assert not verify_twilio_signature("12345", url, params, None)


async def test_status_callback_from_provider_is_verified(sms: SmsChannel, twilio: RunningFake) -> None:
    result = await sms.send(message_for(ChannelKind.SMS, PHONE))
    assert result.provider_message_id is not None
    params, signature = twilio.fake.status_callback(result.provider_message_id, "undelivered", CALLBACK_URL)
    params["ErrorCode"] = "30003"

    with pytest.raises(InvalidStatusCallback):  # ErrorCode was added after signing
        parse_status_callback(TWILIO_TOKEN, CALLBACK_URL, params, signature)
    del params["ErrorCode"]
    update = parse_status_callback(TWILIO_TOKEN, CALLBACK_URL, params, signature)
    assert update.message_sid == result.provider_message_id and update.failed
    with pytest.raises(InvalidStatusCallback):
        parse_status_callback(TWILIO_TOKEN, CALLBACK_URL + "?x=1", params, signature)
    with pytest.raises(InvalidStatusCallback, match="required"):
        unsigned = {"AccountSid": TWILIO_SID}
        parse_status_callback(
            TWILIO_TOKEN, CALLBACK_URL, unsigned, twilio_signature(TWILIO_TOKEN, CALLBACK_URL, unsigned)
        )


def test_settings_require_a_sender() -> None:
    with pytest.raises(ValueError, match="from_number"):
        TwilioSettings(account_sid=TWILIO_SID, auth_token="x")
