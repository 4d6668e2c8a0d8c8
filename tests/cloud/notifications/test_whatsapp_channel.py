"""WhatsAppChannel over real HTTP against the local Cloud API fake (template messages)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import pytest

from cloud.notifications.channels.base import PermanentDeliveryError, TransientDeliveryError
from cloud.notifications.channels.whatsapp import WhatsAppChannel, WhatsAppSettings
from cloud.notifications.kinds import ChannelKind, EventKind, Language

from .conftest import WA_PHONE_ID, WA_TOKEN, RunningFake
from .helpers import message_for

PHONE = "+919876543210"


def settings(base_url: str, token: str = WA_TOKEN) -> WhatsAppSettings:
    return WhatsAppSettings(access_token=token, phone_number_id=WA_PHONE_ID, base_url=base_url)


@pytest.fixture
async def wa(whatsapp: RunningFake) -> AsyncIterator[WhatsAppChannel]:
    channel = WhatsAppChannel(settings(whatsapp.base_url))
    yield channel
    await channel.aclose()


async def test_sends_template_with_language_and_parameters(
    wa: WhatsAppChannel, whatsapp: RunningFake
) -> None:
    message = message_for(ChannelKind.WHATSAPP, PHONE, EventKind.WAITLIST_PROMOTED, Language.HINDI)
    result = await wa.send(message)
    payload = whatsapp.fake.messages[-1]
    assert result.provider_message_id is not None and result.provider_message_id.startswith("wamid.")
    assert payload["to"] == "919876543210" and payload["type"] == "template"
    template = payload["template"]
    assert template["name"] == "studyspot_waitlist_promoted"
    assert template["language"] == {"code": "hi"}
    texts = [p["text"] for p in template["components"][0]["parameters"]]
    assert texts == [
        "Priya Sharma",
        "A-12",
        "Gyan Deep Library",
        "25 नव॰ 2026, 9:00 am",
        "25 नव॰ 2026, 7:00 am",
    ]


async def test_undeliverable_recipient_is_permanent(wa: WhatsAppChannel) -> None:
    with pytest.raises(PermanentDeliveryError) as caught:
        await wa.send(message_for(ChannelKind.WHATSAPP, "+9112"))
    assert caught.value.provider_code == "131026" and caught.value.remove_recipient


async def test_rate_limit_is_transient(wa: WhatsAppChannel, whatsapp: RunningFake) -> None:
    whatsapp.fake.fail_next(429, 130429, "Rate limit hit", retry_after=60)
    with pytest.raises(TransientDeliveryError) as caught:
        await wa.send(message_for(ChannelKind.WHATSAPP, PHONE))
    assert caught.value.retry_after == dt.timedelta(seconds=60)


async def test_pair_rate_limit_answered_with_400_is_still_transient(
    wa: WhatsAppChannel, whatsapp: RunningFake
) -> None:
    whatsapp.fake.fail_next(400, 131056, "(Business Account, Consumer Account) pair rate limit hit")
    with pytest.raises(TransientDeliveryError):
        await wa.send(message_for(ChannelKind.WHATSAPP, PHONE))


async def test_expired_access_token_is_permanent(whatsapp: RunningFake) -> None:
    channel = WhatsAppChannel(settings(whatsapp.base_url, token="expired"))
    with pytest.raises(PermanentDeliveryError) as caught:
        await channel.send(message_for(ChannelKind.WHATSAPP, PHONE))
    await channel.aclose()
    assert caught.value.provider_code == "190"


async def test_unapproved_template_is_permanent(whatsapp: RunningFake) -> None:
    channel = WhatsAppChannel(settings(whatsapp.base_url).model_copy(update={"template_prefix": "other_"}))
    with pytest.raises(PermanentDeliveryError) as caught:
        await channel.send(message_for(ChannelKind.WHATSAPP, PHONE))
    await channel.aclose()
    assert caught.value.provider_code == "132001"
