"""PushChannel over real HTTP against the local FCM v1 + OAuth token endpoint fake."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from cloud.notifications.channels.base import PermanentDeliveryError, TransientDeliveryError
from cloud.notifications.channels.push import FcmSettings, PushChannel, ServiceAccount
from cloud.notifications.kinds import ChannelKind, EventKind, Language

from .conftest import DEVICE_TOKEN, FCM_EMAIL, FCM_PROJECT, RunningFake
from .helpers import message_for


def settings(base_url: str, private_key: str) -> FcmSettings:
    account = ServiceAccount(
        project_id=FCM_PROJECT,
        client_email=FCM_EMAIL,
        private_key=private_key,
        private_key_id="key-1",
        token_uri=f"{base_url}/token",
    )
    return FcmSettings(service_account=account, base_url=base_url)


@pytest.fixture
async def push(fcm: RunningFake, rsa_key_pem: tuple[str, str]) -> AsyncIterator[PushChannel]:
    channel = PushChannel(settings(fcm.base_url, rsa_key_pem[0]))
    yield channel
    await channel.aclose()


async def test_sends_notification_and_reuses_access_token(push: PushChannel, fcm: RunningFake) -> None:
    before = fcm.fake.token_requests
    message = message_for(ChannelKind.PUSH, DEVICE_TOKEN, EventKind.DOOR_FORCED, Language.ENGLISH)
    first = await push.send(message)
    await push.send(message)
    assert fcm.fake.token_requests - before == 1
    assert first.provider_message_id is not None
    assert first.provider_message_id.startswith(f"projects/{FCM_PROJECT}/messages/")
    sent = fcm.fake.messages[-1]["message"]
    assert sent["token"] == DEVICE_TOKEN
    assert sent["notification"]["title"] == "ALERT: Main door forced open at Gyan Deep Library"
    assert sent["data"]["kind"] == "door_forced" and sent["data"]["notification_id"] == "msg-1"


async def test_token_close_to_expiry_is_refreshed(push: PushChannel, fcm: RunningFake) -> None:
    fcm.fake.token_lifetime = 30  # shorter than the refresh margin: stale on the next send
    try:
        before = fcm.fake.token_requests
        await push.send(message_for(ChannelKind.PUSH, DEVICE_TOKEN))
        await push.send(message_for(ChannelKind.PUSH, DEVICE_TOKEN))
        assert fcm.fake.token_requests - before == 2
    finally:
        fcm.fake.token_lifetime = 3600


async def test_revoked_access_token_is_replaced_once(push: PushChannel, fcm: RunningFake) -> None:
    await push.send(message_for(ChannelKind.PUSH, DEVICE_TOKEN))
    fcm.fake.revoke_access_tokens()
    result = await push.send(message_for(ChannelKind.PUSH, DEVICE_TOKEN))
    assert result.provider_message_id is not None


async def test_unregistered_device_token_must_be_removed(push: PushChannel) -> None:
    stale = "fQ3b:APA91b-uninstalled-app-token-000000"
    with pytest.raises(PermanentDeliveryError) as caught:
        await push.send(message_for(ChannelKind.PUSH, stale))
    assert caught.value.provider_code == "UNREGISTERED" and caught.value.remove_recipient


async def test_malformed_device_token_must_be_removed(push: PushChannel) -> None:
    with pytest.raises(PermanentDeliveryError) as caught:
        await push.send(message_for(ChannelKind.PUSH, "short"))
    assert caught.value.provider_code == "INVALID_ARGUMENT" and caught.value.remove_recipient


async def test_quota_exceeded_is_transient_with_retry_after(push: PushChannel, fcm: RunningFake) -> None:
    fcm.fake.fail_next(429, "QUOTA_EXCEEDED", retry_after=120)
    with pytest.raises(TransientDeliveryError) as caught:
        await push.send(message_for(ChannelKind.PUSH, DEVICE_TOKEN))
    assert caught.value.retry_after == dt.timedelta(seconds=120)
    assert not isinstance(caught.value, PermanentDeliveryError)


async def test_unavailable_is_transient(push: PushChannel, fcm: RunningFake) -> None:
    fcm.fake.fail_next(503, "UNAVAILABLE")
    with pytest.raises(TransientDeliveryError):
        await push.send(message_for(ChannelKind.PUSH, DEVICE_TOKEN))


async def test_wrong_service_account_key_is_permanent(fcm: RunningFake) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    channel = PushChannel(settings(fcm.base_url, pem))
    with pytest.raises(PermanentDeliveryError, match=r"invalid_grant|Invalid JWT"):
        await channel.send(message_for(ChannelKind.PUSH, DEVICE_TOKEN))
    await channel.aclose()


async def test_garbage_private_key_is_permanent(fcm: RunningFake) -> None:
    channel = PushChannel(settings(fcm.base_url, "not a pem"))
    with pytest.raises(PermanentDeliveryError, match="private key"):
        await channel.send(message_for(ChannelKind.PUSH, DEVICE_TOKEN))
    await channel.aclose()
