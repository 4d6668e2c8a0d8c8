"""Document storage behind an interface; the local implementation encrypts with AES-256-GCM."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Protocol

from cloud import crypto

_KEY_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,127}")


class DocumentStore(Protocol):
    def put(self, key: str, data: bytes) -> None: ...
    def get(self, key: str) -> bytes: ...
    def delete(self, key: str) -> None: ...


class EncryptedFileStore:
    """Files under `root`, each `nonce || AES-GCM(ciphertext+tag)` with the key name as associated
    data (a file renamed onto another key fails to decrypt)."""

    def __init__(self, root: Path, master_key: bytes) -> None:
        self.root = root
        self.master_key = master_key

    def _path(self, key: str) -> Path:
        if not _KEY_PATTERN.fullmatch(key):
            raise ValueError(f"invalid storage key {key!r}")
        return self.root / f"{key}.bin"

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temp = path.with_suffix(".tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(crypto.encrypt(self.master_key, data, key.encode()))
            handle.flush()
            os.fsync(handle.fileno())
        temp.replace(path)

    def get(self, key: str) -> bytes:
        return crypto.decrypt(self.master_key, self._path(key).read_bytes(), key.encode())

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)
