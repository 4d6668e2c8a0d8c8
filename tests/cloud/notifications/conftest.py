"""Real servers for the notification tests: aiosmtpd (plain, STARTTLS+AUTH, implicit TLS+AUTH) and the
local provider fakes (Twilio, WhatsApp Cloud API, FCM + OAuth) under uvicorn, each started once."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import ipaddress
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from cloud.notifications.fake_providers import FakeFcm, FakeTwilio, FakeWhatsApp, ServerThread
from cloud.notifications.kinds import ChannelKind, EventKind, Language
from cloud.notifications.samples import SAMPLE_CONTEXTS
from cloud.notifications.templates import render

SMTP_USER = "mailer"
SMTP_PASSWORD = "s3cret-pass"
TWILIO_SID = "AC" + "1" * 32
TWILIO_TOKEN = "twilio-auth-token"
WA_TOKEN = "wa-access-token"
WA_PHONE_ID = "109876543210"
FCM_PROJECT = "studyspot-test"
FCM_EMAIL = "fcm-sender@studyspot-test.iam.gserviceaccount.com"
DEVICE_TOKEN = "dXk3nq0Zl0E:APA91bH-registered-device-token-0001"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class TlsFiles:
    cert: Path
    key: Path


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("smtp-tls")
    files = TlsFiles(folder / "cert.pem", folder / "key.pem")
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return files


@dataclass
class RecordingHandler:
    """Keeps every accepted message; refuses @bounce.test (550) and defers @greylist.test (451)."""

    received: list[tuple[Envelope, EmailMessage, Session]] = field(default_factory=list)

    async def handle_RCPT(
        self, server: Any, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.endswith("@bounce.test"):
            return "550 5.1.1 No such user here"
        if address.endswith("@greylist.test"):
            return "451 4.7.1 Greylisted, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        raw = envelope.content if isinstance(envelope.content, bytes) else str(envelope.content).encode()
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.received.append((envelope, parsed, session))
        return "250 Message accepted for delivery"

    def last_to(self, address: str) -> EmailMessage:
        for envelope, message, _ in reversed(self.received):
            if address in envelope.rcpt_tos:
                return message
        raise AssertionError(f"no mail received for {address}")


def _authenticate(server: Any, session: Session, envelope: Envelope, mechanism: str, data: Any) -> AuthResult:
    ok = (
        isinstance(data, LoginPassword)
        and data.login == SMTP_USER.encode()
        and data.password == (SMTP_PASSWORD.encode())
    )
    return AuthResult(success=ok, handled=False)


@dataclass
class SmtpServer:
    port: int
    handler: RecordingHandler


def _server_tls(files: TlsFiles) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(files.cert, files.key)
    return context


def _run_smtp(controller_args: dict[str, Any]) -> Iterator[SmtpServer]:
    handler = RecordingHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, **controller_args)
    controller.start()
    try:
        yield SmtpServer(port, handler)
    finally:
        controller.stop()


@pytest.fixture(scope="session")
def smtp_plain() -> Iterator[SmtpServer]:
    yield from _run_smtp({})


@pytest.fixture(scope="session")
def smtp_starttls(tls_files: TlsFiles) -> Iterator[SmtpServer]:
    yield from _run_smtp(
        {
            "tls_context": _server_tls(tls_files),
            "require_starttls": True,
            "authenticator": _authenticate,
            "auth_required": True,
            "server_hostname": "localhost",
        }
    )


@pytest.fixture(scope="session")
def smtp_implicit_tls(tls_files: TlsFiles) -> Iterator[SmtpServer]:
    yield from _run_smtp(
        {
            "ssl_context": _server_tls(tls_files),
            "authenticator": _authenticate,
            "auth_required": True,
            # aiosmtpd only counts STARTTLS as TLS; here the whole connection is TLS from the start.
            "auth_require_tls": False,
            "server_hostname": "localhost",
        }
    )


@pytest.fixture(scope="session")
def rsa_key_pem() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


@dataclass
class RunningFake:
    fake: Any
    base_url: str


@pytest.fixture(scope="session")
def twilio() -> Iterator[RunningFake]:
    fake = FakeTwilio(TWILIO_SID, TWILIO_TOKEN)
    with ServerThread(fake.app) as base_url:
        yield RunningFake(fake, base_url)


def whatsapp_template_sizes() -> dict[str, int]:
    """Approved templates as they would be registered at Meta: one per event, with its parameter count."""
    sizes = {}
    for kind in EventKind:
        rendered = render(
            kind, ChannelKind.WHATSAPP, Language.ENGLISH, SAMPLE_CONTEXTS[kind], library_tz="UTC"
        )
        sizes[f"studyspot_{kind.value}"] = len(rendered.template_parameters)
    return sizes


@pytest.fixture(scope="session")
def whatsapp() -> Iterator[RunningFake]:
    fake = FakeWhatsApp(WA_TOKEN, WA_PHONE_ID, whatsapp_template_sizes())
    with ServerThread(fake.app) as base_url:
        yield RunningFake(fake, base_url)


@pytest.fixture(scope="session")
def fcm(rsa_key_pem: tuple[str, str]) -> Iterator[RunningFake]:
    fake = FakeFcm(FCM_PROJECT, FCM_EMAIL, rsa_key_pem[1], {DEVICE_TOKEN})
    with ServerThread(fake.app) as base_url:
        yield RunningFake(fake, base_url)


@pytest.fixture
def limits_redis_uri(redis_url: str) -> str:
    """The shared test Redis (tests/cloud/conftest.py, flushed per test) as a `limits` async storage URI."""
    return f"async+{redis_url}"
