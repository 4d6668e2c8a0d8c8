"""`studyspot edge device add|list|rotate|remove`: credentials that the broker accepts, written where
the ESPHome firmware reads them."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from edge.broker import CredentialAuthority
from edge.cli import app
from edge.provisioning import secret_names
from edge.store import Store

FIRMWARE = Path(__file__).resolve().parents[2] / "firmware-configs"


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "edge.toml"
    path.write_text(f'library_id = "lib-1"\ndata_dir = "{tmp_path / "data"}"\n')
    return path


def _invoke(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


async def _accepted(config: Path, username: str, password: str) -> bool:
    store = Store(config.parent / "data" / "edge.sqlite3")
    try:
        return await CredentialAuthority(store, "agent", "agent-password").authenticate(username, password)
    finally:
        store.close()


async def test_add_rotate_remove_round_trip(tmp_path: Path) -> None:
    config, secrets = _config(tmp_path), tmp_path / "secrets.yaml"
    secrets.write_text('wifi_ssid: "Library"\n')
    _invoke("device", "add", "door-1", "--kind", "door", "--secrets", str(secrets), "--config", str(config))
    first = yaml.safe_load(secrets.read_text())
    user_key, password_key = secret_names("door-1")
    assert first["wifi_ssid"] == "Library"  # other secrets are kept
    assert await _accepted(config, first[user_key], first[password_key])
    assert oct(secrets.stat().st_mode & 0o777) == "0o600"

    listed = [json.loads(line) for line in _invoke("device", "list", "--config", str(config)).splitlines()]
    assert [(row["id"], row["kind"], row["topic_prefix"]) for row in listed] == [("door-1", "door", "door-1")]

    _invoke("device", "rotate", "door-1", "--secrets", str(secrets), "--config", str(config))
    second = yaml.safe_load(secrets.read_text())
    assert second[password_key] != first[password_key]
    assert not await _accepted(config, first[user_key], first[password_key])
    assert await _accepted(config, second[user_key], second[password_key])

    _invoke("device", "remove", "door-1", "--config", str(config))
    assert not await _accepted(config, second[user_key], second[password_key])


def test_refuses_unknown_devices_and_duplicates(tmp_path: Path) -> None:
    config = _config(tmp_path)
    runner = CliRunner()
    assert runner.invoke(app, ["device", "rotate", "ghost", "--config", str(config)]).exit_code == 2
    assert runner.invoke(app, ["device", "remove", "ghost", "--config", str(config)]).exit_code == 2
    _invoke("device", "add", "env-1", "--kind", "env", "--config", str(config))
    duplicate = runner.invoke(app, ["device", "add", "env-1", "--kind", "env", "--config", str(config)])
    assert duplicate.exit_code == 2 and "rotate" in duplicate.output


def test_secret_names_are_the_ones_the_firmware_reads() -> None:
    for firmware in sorted(FIRMWARE.glob("*-1.yaml")):
        text = firmware.read_text()
        for name in secret_names(firmware.stem):
            assert f"!secret {name}" in text, (firmware.name, name)
