"""Device provisioning: register, rotate and remove devices, and write the ESPHome `secrets.yaml`
entries their firmware reads (firmware-configs/: `<node_name with - as _>_mqtt_username|password`)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from edge.devices import EnrolledDevice, enroll_device
from edge.store import Store

_SECRET_LINE = re.compile(r"^([A-Za-z0-9_]+)\s*:")


class ProvisioningError(ValueError):
    """The device cannot be provisioned as asked; the message says why."""


def secret_names(device_id: str) -> tuple[str, str]:
    """The `!secret` names a device's firmware file uses for its MQTT username and password."""
    stem = device_id.replace("-", "_").replace(".", "_")
    return f"{stem}_mqtt_username", f"{stem}_mqtt_password"


def secrets_fragment(device: EnrolledDevice) -> dict[str, str]:
    username_key, password_key = secret_names(device.record.id)
    return {username_key: device.record.username, password_key: device.password}


def write_secrets(path: Path, entries: dict[str, str]) -> None:
    """Set `entries` in an ESPHome secrets.yaml, keeping every other line; the file stays 0600."""
    lines = path.read_text().splitlines() if path.exists() else []
    pending = dict(entries)
    updated = []
    for line in lines:
        match = _SECRET_LINE.match(line)
        if match and match.group(1) in pending:
            key = match.group(1)
            updated.append(f"{key}: {json.dumps(pending.pop(key))}")
        else:
            updated.append(line)
    updated += [f"{key}: {json.dumps(value)}" for key, value in pending.items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text("\n".join(updated) + "\n")
    os.chmod(temporary, 0o600)
    temporary.replace(path)


def rotate_device(store: Store, device_id: str) -> EnrolledDevice:
    """New credentials for a device, same topics; the old password stops working at once."""
    record = store.device(device_id)
    if record is None:
        raise ProvisioningError(f"no device {device_id!r}")
    return enroll_device(
        store,
        device_id=record.id,
        kind=record.kind,
        topic_prefix=record.topic_prefix,
        door_id=record.door_id,
        direction=record.direction,
        zone=record.zone,
    )


def remove_device(store: Store, device_id: str) -> None:
    if not store.remove_device(device_id):
        raise ProvisioningError(f"no device {device_id!r}")
