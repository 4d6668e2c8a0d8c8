"""EmailChannel against a real aiosmtpd server: plain, STARTTLS + AUTH, implicit TLS + AUTH."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

from cloud.notifications.channels.base import PermanentDeliveryError, TransientDeliveryError
from cloud.notifications.channels.email import EmailChannel, SmtpSecurity, SmtpSettings
from cloud.notifications.kinds import ChannelKind, EventKind, Language
from cloud.notifications.unsubscribe import make_unsubscribe_token, unsubscribe_url, verify_unsubscribe_token

from .conftest import SMTP_PASSWORD, SMTP_USER, SmtpServer, TlsFiles, free_port
from .helpers import UNSUBSCRIBE_SECRET, body_of, message_for

# aiosmtpd warns about AUTH without STARTTLS even when the connection is implicit TLS.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")

UNSUB_BASE = "https://api.studyspot.example/api/v1/notifications/unsubscribe"


def plain_settings(port: int) -> SmtpSettings:
    return SmtpSettings(
        host="127.0.0.1", port=port, security=SmtpSecurity.NONE, from_address="no-reply@studyspot.example"
    )


def secure_settings(port: int, security: SmtpSecurity, tls: TlsFiles, password: str = SMTP_PASSWORD):
    return SmtpSettings(
        host="localhost",
        port=port,
        security=security,
        username=SMTP_USER,
        password=password,
        from_address="no-reply@studyspot.example",
        ca_file=str(tls.cert),
    )


async def test_sends_multipart_mail_with_one_click_unsubscribe(smtp_plain: SmtpServer) -> None:
    token = make_unsubscribe_token(UNSUBSCRIBE_SECRET, "user-42", None)
    link = unsubscribe_url(UNSUB_BASE, token)
    message = message_for(ChannelKind.EMAIL, "priya@example.com", unsubscribe_url=link)

    async with EmailChannel(plain_settings(smtp_plain.port)) as channel:
        result = await channel.send(message)

    received = smtp_plain.handler.last_to("priya@example.com")
    assert result.provider_message_id == received["Message-ID"]
    assert received["Subject"] == "Booking confirmed: seat A-12 at Gyan Deep Library"
    assert received["List-Unsubscribe"] == f"<{link}>"
    assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert received.get_content_type() == "multipart/alternative"
    text = body_of(received, "plain")
    html = body_of(received, "html")
    assert "9:00 am" in text and "₹120.50" in text and link in text
    assert 'lang="en"' in html and "Unsubscribe" in html
    listed = httpx.URL(received["List-Unsubscribe"].strip("<>")).params["token"]
    assert verify_unsubscribe_token(UNSUBSCRIBE_SECRET, listed).recipient_id == "user-42"


async def test_hindi_subject_and_body_survive_encoding(smtp_plain: SmtpServer) -> None:
    message = message_for(ChannelKind.EMAIL, "amit@example.com", EventKind.PAYMENT_SUCCEEDED, Language.HINDI)
    async with EmailChannel(plain_settings(smtp_plain.port)) as channel:
        await channel.send(message)
    received = smtp_plain.handler.last_to("amit@example.com")
    assert received["Subject"] == "भुगतान प्राप्त: ₹1,500.00"
    assert received["Content-Language"] == "hi"
    assert "भुगतान संदर्भ: pay_N8f3" in body_of(received, "plain")


async def test_starttls_with_auth(smtp_starttls: SmtpServer, tls_files: TlsFiles) -> None:
    settings = secure_settings(smtp_starttls.port, SmtpSecurity.STARTTLS, tls_files)
    async with EmailChannel(settings) as channel:
        await channel.send(message_for(ChannelKind.EMAIL, "tls@example.com"))
    assert smtp_starttls.handler.last_to("tls@example.com")["To"] == "tls@example.com"


async def test_implicit_tls_with_auth(smtp_implicit_tls: SmtpServer, tls_files: TlsFiles) -> None:
    settings = secure_settings(smtp_implicit_tls.port, SmtpSecurity.TLS, tls_files)
    async with EmailChannel(settings) as channel:
        await channel.send(message_for(ChannelKind.EMAIL, "implicit@example.com"))
    assert smtp_implicit_tls.handler.last_to("implicit@example.com")["To"] == "implicit@example.com"


async def test_connection_is_reused_between_sends(smtp_plain: SmtpServer) -> None:
    before = len(smtp_plain.handler.received)
    async with EmailChannel(plain_settings(smtp_plain.port)) as channel:
        for index in range(3):
            await channel.send(message_for(ChannelKind.EMAIL, f"reuse{index}@example.com"))
    peers = {session.peer for _, _, session in smtp_plain.handler.received[before:]}
    assert len(smtp_plain.handler.received) - before == 3 and len(peers) == 1


async def test_resending_the_same_outbox_row_keeps_the_message_id(smtp_plain: SmtpServer) -> None:
    async with EmailChannel(plain_settings(smtp_plain.port)) as channel:
        first = await channel.send(message_for(ChannelKind.EMAIL, "twice@example.com", message_id="row-9"))
        second = await channel.send(message_for(ChannelKind.EMAIL, "twice@example.com", message_id="row-9"))
    assert first.provider_message_id == second.provider_message_id == "<notification.row-9@studyspot.example>"


async def test_wrong_password_is_permanent(smtp_starttls: SmtpServer, tls_files: TlsFiles) -> None:
    settings = secure_settings(smtp_starttls.port, SmtpSecurity.STARTTLS, tls_files, password="wrong")
    with pytest.raises(PermanentDeliveryError, match="authentication"):
        await EmailChannel(settings).send(message_for(ChannelKind.EMAIL, "nobody@example.com"))


async def test_untrusted_certificate_is_refused(smtp_starttls: SmtpServer, tls_files: TlsFiles) -> None:
    settings = secure_settings(smtp_starttls.port, SmtpSecurity.STARTTLS, tls_files).model_copy(
        update={"ca_file": None}
    )
    with pytest.raises(TransientDeliveryError):
        await EmailChannel(settings).send(message_for(ChannelKind.EMAIL, "mitm@example.com"))


async def test_unknown_mailbox_is_permanent_and_flags_removal(smtp_plain: SmtpServer) -> None:
    with pytest.raises(PermanentDeliveryError) as caught:
        await EmailChannel(plain_settings(smtp_plain.port)).send(
            message_for(ChannelKind.EMAIL, "ghost@bounce.test")
        )
    assert caught.value.remove_recipient and caught.value.provider_status == 550


async def test_greylisting_is_transient(smtp_plain: SmtpServer) -> None:
    with pytest.raises(TransientDeliveryError) as caught:
        await EmailChannel(plain_settings(smtp_plain.port)).send(
            message_for(ChannelKind.EMAIL, "later@greylist.test")
        )
    assert caught.value.provider_status == 451


async def test_header_injection_is_refused_before_connecting(smtp_plain: SmtpServer) -> None:
    message = message_for(ChannelKind.EMAIL, "victim@example.com\r\nBcc: everyone@example.com")
    async with EmailChannel(plain_settings(smtp_plain.port)) as channel:
        with pytest.raises(PermanentDeliveryError, match="cannot build"):
            await channel.send(message)


async def test_dead_smtp_server_is_transient() -> None:
    settings = plain_settings(free_port()).model_copy(update={"timeout_seconds": 2.0})
    with pytest.raises(TransientDeliveryError):
        await EmailChannel(settings).send(message_for(ChannelKind.EMAIL, "x@example.com"))


def test_unsubscribe_link_rejects_tampering_and_expiry() -> None:
    from cloud.notifications.unsubscribe import InvalidUnsubscribeToken

    now = dt.datetime(2026, 11, 24, tzinfo=dt.UTC)
    token = make_unsubscribe_token(UNSUBSCRIBE_SECRET, "user-7", EventKind.OWNER_ANNOUNCEMENT, now)
    request = verify_unsubscribe_token(UNSUBSCRIBE_SECRET, token, now)
    assert (request.recipient_id, request.kind) == ("user-7", EventKind.OWNER_ANNOUNCEMENT)
    with pytest.raises(InvalidUnsubscribeToken):
        verify_unsubscribe_token(UNSUBSCRIBE_SECRET, token[:-2] + "xx", now)
    with pytest.raises(InvalidUnsubscribeToken):
        verify_unsubscribe_token("another-secret-of-sufficient-length-000", token, now)
    with pytest.raises(InvalidUnsubscribeToken, match="expired"):
        verify_unsubscribe_token(UNSUBSCRIBE_SECRET, token, now + dt.timedelta(days=400))
    with pytest.raises(ValueError, match="at least"):
        make_unsubscribe_token("short", "user-7", None)
