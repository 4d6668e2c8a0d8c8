"""Local stand-ins for Twilio, Meta's WhatsApp Cloud API and FCM HTTP v1 (+ Google's OAuth token endpoint).

Each fake is a Starlette app that checks what the real provider checks (credentials, request shape,
recipient validity) and answers with the provider's own error bodies. Tests and benchmarks start
them with `ServerThread` on a free port; `python -m cloud.notifications.fake_providers` runs all
three for a demo. Queue `fail_next(...)` to make the next request answer 429/5xx.
"""

from __future__ import annotations

import base64
import binascii
import collections
import hashlib
import hmac
import itertools
import re
import secrets
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt
import phonenumbers
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
_FCM_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_:\-]{20,4096}$")


@dataclass
class ScriptedAnswer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class FailureQueue:
    def __init__(self) -> None:
        self._answers: collections.deque[ScriptedAnswer] = collections.deque()

    def push(self, status: int, body: dict[str, Any], retry_after: int | None = None) -> None:
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        self._answers.append(ScriptedAnswer(status, body, headers))

    def pop(self) -> JSONResponse | None:
        if not self._answers:
            return None
        answer = self._answers.popleft()
        return JSONResponse(answer.body, status_code=answer.status, headers=answer.headers)


def _valid_e164(number: str) -> bool:
    if not number.startswith("+"):
        return False
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(number, None))
    except phonenumbers.NumberParseException:
        return False


# ---------------------------------------------------------------- Twilio


class FakeTwilio:
    """`POST /2010-04-01/Accounts/{AccountSid}/Messages.json` with HTTP basic auth."""

    def __init__(self, account_sid: str, auth_token: str) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.messages: list[dict[str, str]] = []
        self.failures = FailureQueue()
        self.app = Starlette(
            routes=[Route("/2010-04-01/Accounts/{sid}/Messages.json", self._create, methods=["POST"])]
        )

    def fail_next(self, status: int, code: int, message: str, retry_after: int | None = None) -> None:
        self.failures.push(status, self._error_body(status, code, message), retry_after)

    @staticmethod
    def _error_body(status: int, code: int, message: str) -> dict[str, Any]:
        return {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        }

    def _error(self, status: int, code: int, message: str) -> JSONResponse:
        return JSONResponse(self._error_body(status, code, message), status_code=status)

    def _authorized(self, request: Request) -> bool:
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return hmac.compare_digest(user, self.account_sid) and hmac.compare_digest(password, self.auth_token)

    async def _create(self, request: Request) -> JSONResponse:
        if not self._authorized(request):
            return self._error(401, 20003, "Authenticate")
        if request.path_params["sid"] != self.account_sid:
            return self._error(404, 20404, "The requested resource was not found")
        scripted = self.failures.pop()
        if scripted is not None:
            return scripted
        form = {key: str(value) for key, value in (await request.form()).items()}
        problem = self._check_form(form)
        if problem is not None:
            return problem
        sid = "SM" + secrets.token_hex(16)
        self.messages.append({**form, "sid": sid})
        body = {
            "sid": sid,
            "account_sid": self.account_sid,
            "to": form["To"],
            "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "body": form["Body"],
            "status": "queued",
            "num_segments": "1",
        }
        return JSONResponse(body, status_code=201)

    def _check_form(self, form: Mapping[str, str]) -> JSONResponse | None:
        if not form.get("To"):
            return self._error(400, 21604, "A 'To' phone number is required.")
        if not (form.get("From") or form.get("MessagingServiceSid")):
            return self._error(400, 21603, "A 'From' phone number is required.")
        if not form.get("Body"):
            return self._error(400, 21602, "Message body is required.")
        if len(form["Body"]) > 1600:
            return self._error(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
        if not _valid_e164(form["To"]):
            return self._error(400, 21211, f"The 'To' number {form['To']} is not a valid phone number.")
        return None

    def status_callback(self, message_sid: str, status: str, url: str) -> tuple[dict[str, str], str]:
        """The form Twilio would POST to StatusCallback, and its X-Twilio-Signature."""
        params = {
            "AccountSid": self.account_sid,
            "MessageSid": message_sid,
            "SmsSid": message_sid,
            "MessageStatus": status,
            "SmsStatus": status,
        }
        signed = url + "".join(f"{key}{params[key]}" for key in sorted(params))
        digest = hmac.new(self.auth_token.encode(), signed.encode(), hashlib.sha1).digest()
        return params, base64.b64encode(digest).decode()


# ---------------------------------------------------------------- WhatsApp Cloud API


class FakeWhatsApp:
    """`POST /{version}/{phone_number_id}/messages` with a Bearer token; template messages only."""

    def __init__(self, access_token: str, phone_number_id: str, templates: Mapping[str, int]) -> None:
        self.access_token = access_token
        self.phone_number_id = phone_number_id
        self.templates = dict(templates)  # approved name -> number of body parameters
        self.messages: list[dict[str, Any]] = []
        self.failures = FailureQueue()
        self.app = Starlette(routes=[Route("/{version}/{phone_id}/messages", self._send, methods=["POST"])])

    def fail_next(self, status: int, code: int, message: str, retry_after: int | None = None) -> None:
        self.failures.push(status, self._error_body(code, message), retry_after)

    @staticmethod
    def _error_body(code: int, message: str, kind: str = "OAuthException") -> dict[str, Any]:
        return {"error": {"message": message, "type": kind, "code": code, "fbtrace_id": secrets.token_hex(8)}}

    def _error(self, status: int, code: int, message: str) -> JSONResponse:
        return JSONResponse(self._error_body(code, message), status_code=status)

    async def _send(self, request: Request) -> JSONResponse:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if not hmac.compare_digest(token, self.access_token):
            return self._error(401, 190, "Invalid OAuth access token - Cannot parse access token")
        if not re.fullmatch(r"v\d+\.\d+", request.path_params["version"]):
            return self._error(400, 2500, "Unknown path components")
        if request.path_params["phone_id"] != self.phone_number_id:
            return self._error(400, 100, "Unsupported post request. Object does not exist.")
        scripted = self.failures.pop()
        if scripted is not None:
            return scripted
        try:
            payload = await request.json()
        except ValueError:
            return self._error(400, 100, "Invalid parameter: body is not JSON")
        problem = self._check_payload(payload)
        if problem is not None:
            return problem
        self.messages.append(payload)
        wamid = "wamid." + secrets.token_hex(12)
        return JSONResponse(
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": payload["to"], "wa_id": payload["to"]}],
                "messages": [{"id": wamid, "message_status": "accepted"}],
            }
        )

    def _check_payload(self, payload: Any) -> JSONResponse | None:
        if not isinstance(payload, dict) or payload.get("messaging_product") != "whatsapp":
            return self._error(400, 100, "Invalid parameter: messaging_product must be whatsapp")
        if payload.get("type") != "template" or not isinstance(payload.get("template"), dict):
            return self._error(400, 100, "Invalid parameter: only template messages are enabled")
        to = str(payload.get("to", ""))
        if not _valid_e164("+" + to.removeprefix("+")):
            return self._error(400, 131026, "Message Undeliverable.")
        template = payload["template"]
        name = template.get("name")
        language = (template.get("language") or {}).get("code")
        if name not in self.templates or not language:
            return self._error(404, 132001, "Template name does not exist in the translation")
        parameters = [
            parameter
            for component in template.get("components") or []
            if component.get("type") == "body"
            for parameter in component.get("parameters") or []
        ]
        if len(parameters) != self.templates[name]:
            return self._error(
                400, 132000, "Number of parameters does not match the expected number of params"
            )
        return None


# ---------------------------------------------------------------- FCM HTTP v1 + OAuth token endpoint


class FakeFcm:
    """Google's token endpoint (`POST /token`, JWT bearer grant) and `POST /v1/projects/{p}/messages:send`."""

    def __init__(
        self,
        project_id: str,
        client_email: str,
        public_key_pem: str,
        registered_tokens: set[str],
        token_lifetime: int = 3600,
        malformed_tokens: set[str] | None = None,
    ) -> None:
        self.project_id = project_id
        self.client_email = client_email
        self.public_key_pem = public_key_pem
        self.registered_tokens = registered_tokens
        # Well-formed to the eye but refused as INVALID_ARGUMENT (a token truncated by a client app).
        self.malformed_tokens = malformed_tokens if malformed_tokens is not None else set()
        self.token_lifetime = token_lifetime
        self.access_tokens: dict[str, float] = {}
        self.messages: list[dict[str, Any]] = []
        self.token_requests = 0
        self.failures = FailureQueue()
        self._counter = itertools.count(1)
        self.app = Starlette(
            routes=[
                Route("/token", self._token, methods=["POST"]),
                Route("/v1/projects/{project}/messages:send", self._send, methods=["POST"]),
            ]
        )

    def fail_next(self, status: int, fcm_code: str, retry_after: int | None = None) -> None:
        self.failures.push(status, self._error_body(status, fcm_code, fcm_code), retry_after)

    def revoke_access_tokens(self) -> None:
        self.access_tokens.clear()

    @staticmethod
    def _error_body(status: int, grpc_status: str, fcm_code: str | None, message: str = "") -> dict[str, Any]:
        error: dict[str, Any] = {"code": status, "message": message or grpc_status, "status": grpc_status}
        if fcm_code:
            error["details"] = [
                {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": fcm_code}
            ]
        return {"error": error}

    async def _token(self, request: Request) -> JSONResponse:
        self.token_requests += 1
        form = await request.form()
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        try:
            claims = jwt.decode(
                str(form.get("assertion", "")),
                self.public_key_pem,
                algorithms=["RS256"],
                audience=str(request.url),
                issuer=self.client_email,
                options={"require": ["iss", "aud", "exp", "iat", "scope"]},
            )
        except jwt.PyJWTError as exc:
            return JSONResponse(
                {"error": "invalid_grant", "error_description": f"Invalid JWT: {exc}"}, status_code=400
            )
        if FCM_SCOPE not in str(claims["scope"]).split():
            return JSONResponse({"error": "invalid_scope"}, status_code=400)
        token = "ya29.fake-" + secrets.token_urlsafe(24)
        self.access_tokens[token] = time.time() + self.token_lifetime
        return JSONResponse(
            {"access_token": token, "expires_in": self.token_lifetime, "token_type": "Bearer"}
        )

    def _authorized(self, request: Request) -> bool:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        expires = self.access_tokens.get(token)
        return expires is not None and expires > time.time()

    def _error(self, status: int, grpc_status: str, fcm_code: str | None, message: str) -> JSONResponse:
        return JSONResponse(self._error_body(status, grpc_status, fcm_code, message), status_code=status)

    async def _send(self, request: Request) -> JSONResponse:
        if not self._authorized(request):
            text = "Request had invalid authentication credentials."
            return self._error(401, "UNAUTHENTICATED", None, text)
        if request.path_params["project"] != self.project_id:
            return self._error(403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH", "SenderId mismatch")
        scripted = self.failures.pop()
        if scripted is not None:
            return scripted
        try:
            payload = await request.json()
        except ValueError:
            return self._error(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT", "Invalid JSON payload")
        message = payload.get("message") if isinstance(payload, dict) else None
        token = message.get("token") if isinstance(message, dict) else None
        malformed = not isinstance(token, str) or not _FCM_TOKEN_SHAPE.fullmatch(token)
        if malformed or token in self.malformed_tokens:
            text = "The registration token is not a valid FCM registration token"
            return self._error(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT", text)
        if token not in self.registered_tokens:
            return self._error(404, "NOT_FOUND", "UNREGISTERED", "Requested entity was not found.")
        self.messages.append(payload)
        return JSONResponse({"name": f"projects/{self.project_id}/messages/{next(self._counter)}"})


# ---------------------------------------------------------------- running them


class ServerThread:
    """Runs an ASGI app under uvicorn in a daemon thread on a free 127.0.0.1 port."""

    def __init__(self, app: Any) -> None:
        self._app = app
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    def start(self, timeout: float = 10.0) -> str:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(self._app, log_level="warning", lifespan="off", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("fake provider server did not start")
            time.sleep(0.01)
        self.base_url = f"http://127.0.0.1:{port}"
        return self.base_url

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def main() -> None:  # pragma: no cover - manual demo helper
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    fakes: dict[str, FakeTwilio | FakeWhatsApp | FakeFcm] = {
        "twilio": FakeTwilio("AC" + "0" * 32, "demo-token"),
        "whatsapp": FakeWhatsApp("demo-token", "100200300", {}),
        "fcm": FakeFcm("studyspot-demo", "demo@studyspot-demo.iam.gserviceaccount.com", public_pem, set()),
    }
    servers = {name: ServerThread(fake.app) for name, fake in fakes.items()}
    for name, server in servers.items():
        print(f"{name}: {server.start()}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        for server in servers.values():
            server.stop()


if __name__ == "__main__":
    main()
