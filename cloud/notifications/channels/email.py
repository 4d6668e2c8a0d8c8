"""Email over SMTP (aiosmtplib): STARTTLS or implicit TLS, AUTH, plain-text + HTML, one-click unsubscribe."""

from __future__ import annotations

import asyncio
import enum
import re
import ssl
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate

import aiosmtplib
from pydantic import BaseModel, Field, SecretStr

from cloud.notifications.channels.base import (
    Channel,
    DeliveryResult,
    OutgoingMessage,
    PermanentDeliveryError,
    TransientDeliveryError,
    utc_now,
)
from cloud.notifications.kinds import ChannelKind

_MSGID_UNSAFE = re.compile(r"[^A-Za-z0-9.\-]")


class SmtpSecurity(enum.StrEnum):
    STARTTLS = "starttls"
    TLS = "tls"  # implicit TLS, usually port 465
    NONE = "none"  # only for a relay on localhost


class SmtpSettings(BaseModel):
    host: str
    port: int = Field(587, ge=1, le=65535)
    security: SmtpSecurity = SmtpSecurity.STARTTLS
    username: str | None = None
    password: SecretStr | None = None
    from_address: str
    from_name: str = "StudySpot"
    ca_file: str | None = None  # extra trust anchor, e.g. a private relay's certificate
    timeout_seconds: float = 15.0


class EmailChannel(Channel):
    """Keeps up to `max_connections` authenticated SMTP sessions open and reuses them between sends.

    Use one instance per event loop (the pool's sessions belong to the loop that opened them).
    """

    kind = ChannelKind.EMAIL

    def __init__(self, settings: SmtpSettings, max_connections: int = 4) -> None:
        self._settings = settings
        self._tls_context = _tls_context(settings)
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: list[aiosmtplib.SMTP] = []

    async def send(self, message: OutgoingMessage) -> DeliveryResult:
        try:
            email = build_email(message, self._settings)
        except (ValueError, TypeError) as exc:  # e.g. a line break smuggled into a header
            raise PermanentDeliveryError(f"cannot build the email: {exc}") from exc
        try:
            await self._transmit(email)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise _recipient_error(exc.recipients) from exc
        except aiosmtplib.SMTPRecipientRefused as exc:
            raise _recipient_error([exc]) from exc
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise PermanentDeliveryError(
                f"SMTP authentication failed: {exc.code} {exc.message}", provider_status=exc.code
            ) from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise _response_error(exc) from exc
        except (aiosmtplib.SMTPException, OSError, ssl.SSLError) as exc:
            raise TransientDeliveryError(f"SMTP delivery failed: {type(exc).__name__}: {exc}") from exc
        return DeliveryResult(self.kind, provider_message_id=email["Message-ID"], accepted_at=utc_now())

    async def _transmit(self, email: EmailMessage) -> None:
        async with self._slots:
            while self._idle:
                client = self._idle.pop()
                if not client.is_connected:
                    continue
                try:
                    await client.send_message(email)
                except aiosmtplib.SMTPServerDisconnected:
                    continue  # the server dropped an idle session: take another or open a new one
                except BaseException:
                    await _close_quietly(client)
                    raise
                self._idle.append(client)
                return
            client = await self._connect()
            try:
                await client.send_message(email)
            except BaseException:
                await _close_quietly(client)
                raise
            self._idle.append(client)

    async def _connect(self) -> aiosmtplib.SMTP:
        settings = self._settings
        secure = settings.security is not SmtpSecurity.NONE
        client = aiosmtplib.SMTP(
            hostname=settings.host,
            port=settings.port,
            timeout=settings.timeout_seconds,
            use_tls=settings.security is SmtpSecurity.TLS,
            start_tls=settings.security is SmtpSecurity.STARTTLS,
            tls_context=self._tls_context if secure else None,
            username=settings.username,
            password=settings.password.get_secret_value() if settings.password else None,
        )
        await client.connect()
        return client

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for client in idle:
            transport = client.transport
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError):
                await _close_quietly(client)
            if isinstance(transport, asyncio.Transport):
                # QUIT is answered; skip the TLS close_notify round trip that would outlive the loop.
                transport.abort()


async def _close_quietly(client: aiosmtplib.SMTP) -> None:
    try:
        client.close()
    except (aiosmtplib.SMTPException, OSError):
        pass


def _tls_context(settings: SmtpSettings) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if settings.ca_file:
        context.load_verify_locations(cafile=settings.ca_file)
    return context


def build_email(message: OutgoingMessage, settings: SmtpSettings) -> EmailMessage:
    domain = settings.from_address.rpartition("@")[2] or "studyspot.local"
    email = EmailMessage()
    email["From"] = Address(settings.from_name, addr_spec=settings.from_address)
    email["To"] = message.recipient
    email["Subject"] = message.content.subject
    email["Date"] = formatdate(localtime=False, usegmt=True)
    # Derived from the outbox id, so a resend after a crash carries the same id and mail clients dedupe it.
    email["Message-ID"] = f"<notification.{_MSGID_UNSAFE.sub('-', message.message_id)}@{domain}>"
    email["X-StudySpot-Notification"] = message.message_id
    if message.unsubscribe_url:
        email["List-Unsubscribe"] = f"<{message.unsubscribe_url}>"
        email["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    email.set_content(message.content.text)
    if message.content.html:
        email.add_alternative(message.content.html, subtype="html")
    # After the body: making it multipart moves Content-* headers into the first part.
    email["Content-Language"] = message.language.value
    return email


# 550 mailbox unavailable, 551 user not local, 553 mailbox name not allowed.
_UNKNOWN_MAILBOX_CODES = frozenset({550, 551, 553})


def _recipient_error(refusals: list[aiosmtplib.SMTPRecipientRefused]) -> Exception:
    codes = [refusal.code for refusal in refusals]
    reason = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in refusals)
    if codes and all(400 <= code < 500 for code in codes):
        return TransientDeliveryError(f"recipient deferred: {reason}", provider_status=codes[0])
    return PermanentDeliveryError(
        f"recipient refused: {reason}",
        remove_recipient=bool(codes) and all(code in _UNKNOWN_MAILBOX_CODES for code in codes),
        provider_status=codes[0] if codes else None,
    )


def _response_error(exc: aiosmtplib.SMTPResponseException) -> Exception:
    reason = f"SMTP server answered {exc.code} {exc.message}"
    if 400 <= exc.code < 500 or exc.code < 0:
        return TransientDeliveryError(reason, provider_status=exc.code)
    return PermanentDeliveryError(reason, provider_status=exc.code)
