"""The ESPHome firmware configs: valid for ESPHome, and on MQTT exactly what the agent expects."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from shared.topics import DEVICE_PROFILES, DeviceKind, device_topics, status_topic
from tests.field.esphome_configs import (
    FIRMWARE_DIR,
    EsphomeConfigError,
    ValidatedConfig,
    device_files,
    mqtt_entities,
    published_and_subscribed_topics,
    run_esphome_config,
    secret_names_used,
)

KIND_OF_FILE = {
    "door-1.yaml": DeviceKind.DOOR,
    "env-1.yaml": DeviceKind.ENV,
    "energy-1.yaml": DeviceKind.ENERGY,
    "seat-1.yaml": DeviceKind.SEAT,
    "scanner-1.yaml": DeviceKind.SCANNER,
    "relay-1.yaml": DeviceKind.RELAY,
}


def test_every_device_file_has_a_kind() -> None:
    assert sorted(path.name for path in device_files()) == sorted(KIND_OF_FILE)
    assert set(KIND_OF_FILE.values()) == set(DeviceKind), "one example firmware per device kind"


@pytest.mark.parametrize("file", sorted(KIND_OF_FILE))
def test_topics_are_exactly_those_of_the_device_profile(
    file: str, validated: dict[str, ValidatedConfig], object_ids: dict[str, str]
) -> None:
    config = validated[file].config
    prefix = config["mqtt"]["topic_prefix"]
    expected = set(device_topics(KIND_OF_FILE[file], prefix).values())
    assert published_and_subscribed_topics(config, object_ids) == expected


@pytest.mark.parametrize("file", sorted(KIND_OF_FILE))
def test_entity_names_give_the_profile_object_ids(
    file: str, validated: dict[str, ValidatedConfig], object_ids: dict[str, str]
) -> None:
    entities = mqtt_entities(validated[file].config)
    got = {(item.domain, object_ids[item.name]) for item in entities if item.name}
    profile = {(entity.component.value, entity.object_id) for entity in DEVICE_PROFILES[KIND_OF_FILE[file]]}
    assert got == profile
    assert {item.name for item in entities} == {e.name for e in DEVICE_PROFILES[KIND_OF_FILE[file]]}


@pytest.mark.parametrize("file", sorted(KIND_OF_FILE))
def test_esphome_has_no_warnings(file: str, validated: dict[str, ValidatedConfig]) -> None:
    """E.g. a strapping pin on the relay would click the lock at boot: ESPHome warns about it."""
    assert "Configuration is valid!" in validated[file].log
    assert "WARNING" not in validated[file].log


@pytest.mark.parametrize("file", sorted(KIND_OF_FILE))
def test_mqtt_link_follows_the_design(file: str, validated: dict[str, ValidatedConfig]) -> None:
    config = validated[file].config
    mqtt = config["mqtt"]
    node_name = config["esphome"]["name"]
    assert "api" not in config, "MQTT only: no native API"
    assert mqtt["topic_prefix"] == node_name, "DESIGN.md: topic_prefix defaults to the node name"
    assert mqtt["broker"] == "192.168.1.10"  # from secrets.example.yaml, i.e. through !secret
    secret_stem = node_name.replace("-", "_")
    secrets = yaml.safe_load((FIRMWARE_DIR / "secrets.example.yaml").read_text(encoding="utf-8"))
    assert mqtt["username"] == secrets[f"{secret_stem}_mqtt_username"]
    assert mqtt["password"] == secrets[f"{secret_stem}_mqtt_password"]
    for message, payload in (("birth_message", "online"), ("will_message", "offline")):
        assert mqtt[message] == {
            "topic": status_topic(node_name),
            "payload": payload,
            "qos": 0,
            "retain": True,
        }
    assert mqtt["discovery"] is False
    assert mqtt["log_topic"] is None
    assert not mqtt.get("on_message") and not mqtt.get("on_json_message")
    # A LAN broker gets 5 min, not ESPHome's 15 min default.
    assert mqtt["reboot_timeout"] == "5min"


@pytest.mark.parametrize("file", ["door-1.yaml", "scanner-1.yaml"])
def test_a_scan_is_not_retained(file: str, validated: dict[str, ValidatedConfig]) -> None:
    scans = [item for item in mqtt_entities(validated[file].config) if item.domain == "text_sensor"]
    assert [item.retain for item in scans] == [False]


def test_exit_button_opens_the_door_without_the_agent(validated: dict[str, ValidatedConfig]) -> None:
    buttons = [
        item for item in validated["door-1.yaml"].config["binary_sensor"] if item["id"] == "exit_button"
    ]
    actions = buttons[0]["on_press"][0]["then"]
    assert {"lock.open": {"id": "door_lock"}} in actions


def test_secrets_example_documents_every_secret() -> None:
    documented = yaml.safe_load((FIRMWARE_DIR / "secrets.example.yaml").read_text(encoding="utf-8"))
    assert secret_names_used() == set(documented)


def test_esphome_rejects_a_config_with_a_bad_pin(esphome: Path, staged_firmware: Path) -> None:
    broken = staged_firmware / "door-broken.yaml"
    text = (staged_firmware / "door-1.yaml").read_text(encoding="utf-8")
    broken.write_text(text.replace("  node_name: door-1\n", "  node_name: door-1\n  strike_pin: GPIO99\n"))
    try:
        with pytest.raises(EsphomeConfigError, match="99"):
            run_esphome_config(esphome, broken)
    finally:
        broken.unlink()
