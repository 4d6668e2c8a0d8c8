"""Secrets at rest: AES-256-GCM under the master key (`MASTER_KEY` or `<data_dir>/master.key`)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from cloud.config import CloudSettings

NONCE_BYTES = 12
KEY_FILE = "master.key"


class DecryptionError(Exception):
    """The ciphertext was altered, truncated, or encrypted under another key."""


def load_master_key(settings: CloudSettings) -> bytes:
    """The 32-byte master key; generated once into the data dir (mode 0600) when not configured."""
    if settings.master_key:
        return _decode_key(settings.master_key)
    path = Path(settings.data_dir) / KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())
    return _decode_key(path.read_text().strip())


def _decode_key(text: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
    except ValueError as exc:
        raise ValueError("MASTER_KEY is not base64") from exc
    if len(key) != 32:
        raise ValueError("MASTER_KEY must decode to 32 bytes")
    return key


def encrypt(key: bytes, plaintext: bytes, associated_data: bytes = b"") -> bytes:
    """nonce || ciphertext+tag; `associated_data` binds the blob to its owner (e.g. a row id)."""
    nonce = secrets.token_bytes(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, associated_data)


def decrypt(key: bytes, blob: bytes, associated_data: bytes = b"") -> bytes:
    if len(blob) < NONCE_BYTES + 16:
        raise DecryptionError("ciphertext too short")
    try:
        return AESGCM(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], associated_data)
    except InvalidTag as exc:
        raise DecryptionError("ciphertext failed authentication") from exc


def derive_key(master_key: bytes, purpose: str) -> bytes:
    """A 32-byte key for one purpose, so no key is used for two things."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode()).derive(master_key)


class PiiCipher:
    """Encrypts PII columns (AES-256-GCM, associated data = column + row id) and computes blind
    indexes (HMAC-SHA256) so a column can be looked up by exact value without decrypting it."""

    def __init__(self, master_key: bytes) -> None:
        self._encryption_key = derive_key(master_key, "studyspot pii encryption v1")
        self._index_key = derive_key(master_key, "studyspot pii blind index v1")

    def encrypt(self, value: str, context: bytes) -> bytes:
        return encrypt(self._encryption_key, value.encode(), context)

    def decrypt(self, blob: bytes, context: bytes) -> str:
        return decrypt(self._encryption_key, blob, context).decode()

    def blind_index(self, value: str) -> str:
        return hmac.new(self._index_key, value.encode(), hashlib.sha256).hexdigest()
