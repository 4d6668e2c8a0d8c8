"""Password and PIN hashing: argon2id (argon2-cffi; its RFC 9106 low-memory defaults unless configured)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
# verified against when the account does not exist, so timing does not reveal which emails exist
_dummy_hash = _hasher.hash("studyspot-dummy-password")


def configure_hasher(time_cost: int | None = None, memory_kib: int | None = None) -> None:
    """Set the argon2id cost for new hashes (existing hashes keep verifying with their own)."""
    global _hasher, _dummy_hash
    default = PasswordHasher()
    hasher = PasswordHasher(
        time_cost=time_cost or default.time_cost,
        memory_cost=memory_kib or default.memory_cost,
        parallelism=default.parallelism if memory_kib is None else 1,
    )
    if (hasher.time_cost, hasher.memory_cost) != (_hasher.time_cost, _hasher.memory_cost):
        _hasher = hasher
        _dummy_hash = hasher.hash("studyspot-dummy-password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _dummy_hash, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False
