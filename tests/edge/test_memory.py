"""The agent's memory tuning: large C buffers go back to the system, device logins skip argon2 on
reconnect (until the registry changes), device passwords use the cheap hash. Sizes are in bench/."""

from __future__ import annotations

import platform
import subprocess
import sys

import argon2
import pytest

from edge import broker as broker_module
from edge.broker import CredentialAuthority
from edge.devices import EnrolledDevice, enroll_device
from edge.memory import return_large_frees_to_the_system
from edge.provisioning import remove_device, rotate_device
from edge.store import Store, hash_secret, verify_secret

AGENT_PASSWORD = "agent-password"


def test_large_frees_go_back_to_the_system_on_glibc() -> None:
    assert return_large_frees_to_the_system() is (platform.libc_ver()[0] == "glibc")


def test_the_agent_never_imports_the_httpx_command_line_tool() -> None:
    code = (
        "import sys\nfrom edge.memory import skip_httpx_cli\nskip_httpx_cli()\nimport httpx\n"
        "print(sys.modules.get('httpx._main') is None, 'rich' in sys.modules, httpx.AsyncClient.__name__)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["True", "False", "AsyncClient"]


@pytest.fixture
def verifications(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts the argon2 verifications the broker runs (the real ones still run)."""
    seen: list[str] = []

    def counting(secret_hash: str, secret: str) -> bool:
        seen.append(secret_hash)
        return verify_secret(secret_hash, secret)

    monkeypatch.setattr(broker_module, "verify_secret", counting)
    return seen


@pytest.fixture
def door(store: Store) -> tuple[CredentialAuthority, EnrolledDevice]:
    return CredentialAuthority(store, "agent", AGENT_PASSWORD), enroll_device(
        store, device_id="door-1", kind="door"
    )


async def test_a_reconnect_skips_argon2_and_a_wrong_password_is_never_remembered(
    door: tuple[CredentialAuthority, EnrolledDevice], verifications: list[str]
) -> None:
    authority, device = door
    username = device.record.username
    assert await authority.authenticate(username, device.password)
    assert await authority.authenticate(username, device.password)
    assert len(verifications) == 1
    assert not await authority.authenticate(username, device.password + "x")
    assert not await authority.authenticate(username, device.password + "x")
    assert len(verifications) == 3 and len(authority.verified) == 1


async def test_a_rotated_or_removed_device_is_refused_despite_the_remembered_login(
    store: Store, door: tuple[CredentialAuthority, EnrolledDevice], verifications: list[str]
) -> None:
    authority, old = door
    username = old.record.username
    assert await authority.authenticate(username, old.password)

    new = rotate_device(store, "door-1")
    assert not await authority.authenticate(username, old.password)
    assert await authority.authenticate(username, new.password)
    assert await authority.authenticate(username, new.password)
    assert len(verifications) == 3  # old once, old again against the new hash, new once

    remove_device(store, "door-1")
    assert not await authority.authenticate(username, new.password)


async def test_device_passwords_use_the_cheap_hash_and_older_hashes_still_verify(store: Store) -> None:
    device = enroll_device(store, device_id="env-1", kind="env")
    found = store.device_credentials(device.record.username)
    assert found is not None and found[1] is not None
    assert argon2.extract_parameters(found[1]).memory_cost == 1024
    assert argon2.extract_parameters(hash_secret("1234")).memory_cost == 19456  # staff PINs stay slow

    store.db.execute(
        "UPDATE devices SET password_hash = ? WHERE id = 'env-1'", [hash_secret(device.password)]
    )
    authority = CredentialAuthority(store, "agent", AGENT_PASSWORD)
    assert await authority.authenticate(device.record.username, device.password)


def test_a_guessable_device_password_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="generated tokens"):
        store.register_device(
            device_id="door-1", kind="door", topic_prefix="door-1", username="dev-door-1", password="door1234"
        )
