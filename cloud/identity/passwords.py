"""Password and PIN hashing: argon2id at OWASP's recommended minimum (19 MiB, 2 passes, 1 lane).

argon2-cffi's own default (RFC 9106 low-memory: 64 MiB, 3 passes, 4 lanes) made a login cost ~130 ms
of CPU on a 2-core server, so a burst of logins starved every other request; OWASP's configuration
keeps argon2id's memory-hardness at a fifth of the cost. Both are configurable; a hash made with
other parameters is still verified and is upgraded at the next successful login (`needs_rehash`).
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

DEFAULT_TIME_COST = 2
DEFAULT_MEMORY_KIB = 19 * 1024

_hasher = PasswordHasher(time_cost=DEFAULT_TIME_COST, memory_cost=DEFAULT_MEMORY_KIB, parallelism=1)
# verified against when the account does not exist, so timing does not reveal which emails exist
_dummy_hash = _hasher.hash("studyspot-dummy-password")


def configure_hasher(time_cost: int | None = None, memory_kib: int | None = None) -> None:
    """Set the argon2id cost for new hashes (existing hashes keep verifying with their own)."""
    global _hasher, _dummy_hash
    hasher = PasswordHasher(
        time_cost=time_cost or DEFAULT_TIME_COST, memory_cost=memory_kib or DEFAULT_MEMORY_KIB, parallelism=1
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


def needs_rehash(password_hash: str) -> bool:
    """The hash was made with other parameters than the current ones (rehash it on login)."""
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True
