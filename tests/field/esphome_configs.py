"""Run the real `esphome config` on the firmware configs and read back what each device will do on MQTT.

ESPHome lives in its own virtualenv (deploy/tools/install-esphome.sh) because it pins versions that
clash with the project's. `esphome config` validates fully offline: it neither compiles nor downloads.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
FIRMWARE_DIR = REPO_ROOT / "firmware-configs"
INSTALL_SCRIPT = REPO_ROOT / "deploy" / "tools" / "install-esphome.sh"
DEFAULT_ESPHOME_VENV = REPO_ROOT / ".studyspot" / "tools" / "esphome"

# ESPHome components whose entities talk MQTT in our scheme, and which of them take commands.
ENTITY_DOMAINS = ("lock", "binary_sensor", "sensor", "text_sensor", "switch")
COMMAND_DOMAINS = frozenset({"lock", "switch"})
# Other ESPHome entity domains: a device must not grow any (their topics would be unhandled).
FOREIGN_ENTITY_DOMAINS = ("button", "number", "select", "text", "cover", "fan", "light", "climate", "valve")


class EsphomeConfigError(RuntimeError):
    """`esphome config` rejected a file."""


@dataclass(frozen=True)
class ValidatedConfig:
    file: str
    config: dict[str, Any]
    log: str  # what esphome printed besides the config (INFO/WARNING lines)


def esphome_venv() -> Path:
    """The ESPHome virtualenv at the version pinned in install-esphome.sh (installed if missing)."""
    venv = Path(os.environ.get("STUDYSPOT_ESPHOME_VENV", DEFAULT_ESPHOME_VENV))
    subprocess.run(
        ["bash", str(INSTALL_SCRIPT), str(venv)],
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True,
        check=True,
        timeout=600,
    )
    return venv


def device_files() -> list[Path]:
    """The instance files (one per example device); packages/ holds what they share."""
    return sorted(path for path in FIRMWARE_DIR.glob("*.yaml") if path.name != "secrets.example.yaml")


def stage_configs(workdir: Path) -> Path:
    """Copy the configs beside a secrets.yaml made from secrets.example.yaml, as an installer would."""
    staged = workdir / "firmware-configs"
    shutil.copytree(FIRMWARE_DIR, staged, ignore=shutil.ignore_patterns("secrets.yaml", ".esphome"))
    shutil.copy(staged / "secrets.example.yaml", staged / "secrets.yaml")
    return staged


class _TolerantLoader(yaml.SafeLoader):
    """Reads ESPHome's dump, which tags lambdas (`!lambda`) and the like."""


def _construct_tagged(loader: yaml.SafeLoader, _suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)


_TolerantLoader.add_multi_constructor("!", _construct_tagged)


def _offline_environment() -> dict[str, str]:
    """`esphome config` needs no network; any HTTP download it tried would hit a dead proxy and fail."""
    environ = {key: value for key, value in os.environ.items() if key.lower() != "no_proxy"}
    dead_proxy = "http://127.0.0.1:9"
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        environ[name] = dead_proxy
    return environ


def run_esphome_config(venv: Path, config_file: Path) -> ValidatedConfig:
    """Validate one file with `esphome config --show-secrets` and parse the validated YAML it prints."""
    result = subprocess.run(
        [str(venv / "bin" / "esphome"), "config", "--show-secrets", config_file.name],
        cwd=config_file.parent,
        capture_output=True,
        text=True,
        timeout=120,
        env=_offline_environment(),
        check=False,
    )
    if result.returncode != 0:
        raise EsphomeConfigError(
            f"{config_file.name}: esphome config failed:\n{result.stdout}\n{result.stderr}"
        )
    parsed = yaml.load(result.stdout, Loader=_TolerantLoader)  # noqa: S506 - a SafeLoader subclass
    if not isinstance(parsed, dict):
        raise EsphomeConfigError(f"{config_file.name}: esphome printed no configuration")
    return ValidatedConfig(file=config_file.name, config=parsed, log=result.stderr)


def validate_all(venv: Path, files: list[Path]) -> dict[str, ValidatedConfig]:
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda path: run_esphome_config(venv, path), files))
    return {result.file: result for result in results}


def esphome_object_ids(venv: Path, names: list[str]) -> dict[str, str]:
    """object_id for each entity name, computed by ESPHome's own helpers (not a copy of them)."""
    script = (
        "import json, sys\n"
        "from esphome.helpers import sanitize, snake_case\n"
        "names = json.load(sys.stdin)\n"
        "print(json.dumps({n: sanitize(snake_case(n)) for n in names}))\n"
    )
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-c", script],
        input=json.dumps(names),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    ids: dict[str, str] = json.loads(result.stdout)
    return ids


def _entities_in(value: Any) -> Iterator[dict[str, Any]]:
    """Entity configs inside one platform entry (a platform like scd4x nests several)."""
    if isinstance(value, dict):
        if "disabled_by_default" in value:
            yield value
            return
        for child in value.values():
            yield from _entities_in(child)
    elif isinstance(value, list):
        for child in value:
            yield from _entities_in(child)


@dataclass(frozen=True)
class MqttEntity:
    domain: str
    name: str | None
    state_topic: str | None
    command_topic: str | None
    retain: bool


def mqtt_entities(config: Mapping[str, Any]) -> list[MqttEntity]:
    """Every entity that talks MQTT (internal ones do not), with any per-entity topic overrides."""
    found = []
    for domain in ENTITY_DOMAINS + FOREIGN_ENTITY_DOMAINS:
        for item in _entities_in(config.get(domain) or []):
            if item.get("internal"):
                continue
            found.append(
                MqttEntity(
                    domain=domain,
                    name=item.get("name"),
                    state_topic=item.get("state_topic"),
                    command_topic=item.get("command_topic"),
                    retain=bool(item.get("retain", True)),
                )
            )
    return found


def published_and_subscribed_topics(config: Mapping[str, Any], object_ids: Mapping[str, str]) -> set[str]:
    """The topics a device publishes (status, states) and subscribes to (commands)."""
    mqtt = config["mqtt"]
    prefix = mqtt["topic_prefix"]
    topics = {mqtt["birth_message"]["topic"], mqtt["will_message"]["topic"]}
    for item in mqtt_entities(config):
        if item.name is None:
            raise AssertionError(f"a {item.domain} without a name would borrow the device name")
        default = f"{prefix}/{item.domain}/{object_ids[item.name]}"
        topics.add(item.state_topic or f"{default}/state")
        if item.domain in COMMAND_DOMAINS:
            topics.add(item.command_topic or f"{default}/command")
    return topics


def secret_names_used() -> set[str]:
    pattern = re.compile(r"!secret\s+([A-Za-z0-9_]+)")
    used: set[str] = set()
    for path in FIRMWARE_DIR.rglob("*.yaml"):
        if path.name != "secrets.example.yaml":
            used.update(pattern.findall(path.read_text(encoding="utf-8")))
    return used
