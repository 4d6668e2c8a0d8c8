"""Mosquitto support: hash device passwords with `mosquitto_passwd` and write passwd + ACL files.

The store keeps a Mosquitto-format hash next to the argon2 one (made at registration time by the
`mosquitto_passwd` binary), so both files can be regenerated from the registry without plaintext.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from edge.store import Store


class MosquittoError(RuntimeError):
    """mosquitto_passwd is missing or failed."""


def mosquitto_passwd_binary() -> str | None:
    return shutil.which("mosquitto_passwd")


def mosquitto_hash(username: str, password: str) -> str:
    """The `$7$...` hash mosquitto_passwd writes for this user and password."""
    binary = mosquitto_passwd_binary()
    if binary is None:
        raise MosquittoError("mosquitto_passwd not found (Debian package mosquitto)")
    with tempfile.TemporaryDirectory() as tmp:
        passwd = Path(tmp) / "passwd"
        passwd.touch()
        result = subprocess.run(
            [binary, "-b", str(passwd), username, password], capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise MosquittoError(f"mosquitto_passwd failed: {result.stderr.strip()}")
        line = passwd.read_text(encoding="utf-8").strip()
    user, _, hashed = line.partition(":")
    if user != username or not hashed:
        raise MosquittoError("mosquitto_passwd wrote an unexpected line")
    return hashed


@dataclass(frozen=True)
class MosquittoFiles:
    passwd: Path
    acl: Path


def write_mosquitto_files(
    store: Store, directory: Path, *, agent_username: str, agent_password: str
) -> MosquittoFiles:
    """Write `passwd` and `acl` for every registered device plus the agent's own client."""
    directory.mkdir(parents=True, exist_ok=True)
    passwd_lines = [f"{agent_username}:{mosquitto_hash(agent_username, agent_password)}"]
    acl_lines = [f"user {agent_username}", "topic readwrite #", ""]
    for device, hashed in store.mosquitto_hashes():
        if hashed is None:
            continue
        passwd_lines.append(f"{device.username}:{hashed}")
        acl_lines += [
            f"user {device.username}",
            f"topic write {device.topic_prefix}/#",
            f"topic read {device.topic_prefix}/+/+/command",
            "",
        ]
    files = MosquittoFiles(passwd=directory / "passwd", acl=directory / "acl")
    files.passwd.write_text("\n".join(passwd_lines) + "\n", encoding="utf-8")
    files.acl.write_text("\n".join(acl_lines) + "\n", encoding="utf-8")
    files.passwd.chmod(0o600)
    files.acl.chmod(0o600)
    return files


MAX_QUEUED_MESSAGES = 100_000


def mosquitto_conf(files: MosquittoFiles, *, host: str, port: int, user: str | None = None) -> str:
    """A minimal mosquitto.conf; `user` is who mosquitto runs as after starting as root.

    Mosquitto acknowledges a device's QoS 1 publish itself and queues it for the agent; past
    `max_queued_messages` (1,000 by default) it silently drops what the agent has not taken yet,
    so a burst of readings while the agent is busy would lose scans too. The agent is the only
    subscriber with more than a handful of messages, so a high bound costs memory only in a burst.
    """
    return (
        (f"user {user}\n" if user else "") + f"listener {port} {host}\n"
        "allow_anonymous false\n"
        f"password_file {files.passwd}\n"
        f"acl_file {files.acl}\n"
        "persistence false\n"
        "set_tcp_nodelay true\n"
        f"max_queued_messages {MAX_QUEUED_MESSAGES}\n"
    )
