from __future__ import annotations

from pathlib import Path

import pytest

from tests.field.esphome_configs import (
    ValidatedConfig,
    device_files,
    esphome_object_ids,
    esphome_venv,
    mqtt_entities,
    stage_configs,
    validate_all,
)


@pytest.fixture(scope="session")
def esphome() -> Path:
    """The ESPHome virtualenv (installed on first use)."""
    return esphome_venv()


@pytest.fixture(scope="session")
def staged_firmware(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return stage_configs(tmp_path_factory.mktemp("firmware"))


@pytest.fixture(scope="session")
def validated(esphome: Path, staged_firmware: Path) -> dict[str, ValidatedConfig]:
    """Every device file run through `esphome config`, in parallel, once per session."""
    files = [staged_firmware / path.name for path in device_files()]
    return validate_all(esphome, files)


@pytest.fixture(scope="session")
def object_ids(esphome: Path, validated: dict[str, ValidatedConfig]) -> dict[str, str]:
    names = {item.name for result in validated.values() for item in mqtt_entities(result.config) if item.name}
    return esphome_object_ids(esphome, sorted(names))
