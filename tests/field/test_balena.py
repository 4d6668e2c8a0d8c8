"""deploy/balena: a compose file balena accepts, a multi-arch Dockerfile, balena.yml, and the
balena-variable → agent-config bridge checked against the agent's real config loader."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import pytest
import yaml
from pydantic import BaseModel

from edge.config import EdgeConfig, KioskSettings, parse_config

REPO_ROOT = Path(__file__).resolve().parents[2]
BALENA_DIR = REPO_ROOT / "deploy" / "balena"
COMPOSE_SCHEMA = Path(__file__).parent / "vendor" / "compose-spec.json"
DOCS_DIR = REPO_ROOT / "docs"

# balena supervisor docs, "docker-compose.yml fields" (compose format 2.4 subset).
BALENA_SERVICE_FIELDS = frozenset(
    """
    build cap_add cap_drop cgroup_parent command cpu_shares cpu_quota cpuset devices depends_on dns
    dns_opt dns_search domainname entrypoint environment expose extra_hosts group_add healthcheck
    hostname image ipc labels mac_address mem_limit mem_reservation network_mode networks
    oom_kill_disable oom_score_adj pid pids_limit ports privileged read_only restart security_opt
    shm_size stop_grace_period stop_signal sysctls tmpfs ulimits user userns_mode volumes working_dir
    """.split()
)
BALENA_BUILD_FIELDS = frozenset(
    {"context", "dockerfile", "args", "cache_from", "extra_hosts", "labels", "shm_size", "target"}
)
BALENA_NETWORK_MODES = ("bridge", "host", "none")
BALENA_TOP_LEVEL = frozenset({"version", "services", "volumes", "networks"})
RUN_COMMAND = ["studyspot", "edge", "run", "--config", "/data/edge.toml"]


def _load_module(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


render_config = _load_module(BALENA_DIR / "agent" / "render_config.py", "studyspot_balena_render_config")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((BALENA_DIR / "docker-compose.yml").read_text(encoding="utf-8"))
    return loaded


def _documented_text() -> str:
    return "\n".join(path.read_text(encoding="utf-8") for path in sorted(DOCS_DIR.glob("*.md")))


# --- docker-compose.yml --------------------------------------------------------------------------


def test_compose_file_validates_against_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = json.loads(COMPOSE_SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(compose), key=str)
    assert not errors, [error.message for error in errors]


def test_the_schema_check_catches_a_wrong_field(compose: dict[str, Any]) -> None:
    schema = json.loads(COMPOSE_SCHEMA.read_text(encoding="utf-8"))
    broken = {**compose, "services": {"agent": {**compose["services"]["agent"], "restart_policy": "always"}}}
    assert list(jsonschema.Draft7Validator(schema).iter_errors(broken))


def test_compose_uses_only_what_balena_supports(compose: dict[str, Any]) -> None:
    assert set(compose) <= BALENA_TOP_LEVEL
    assert compose["version"] == "2.4"
    raw = (BALENA_DIR / "docker-compose.yml").read_text(encoding="utf-8")
    assert "$" not in raw, "balena does no variable substitution"
    for name, service in compose["services"].items():
        assert set(service) <= BALENA_SERVICE_FIELDS, (name, set(service) - BALENA_SERVICE_FIELDS)
        assert "privileged" not in service, name
        assert service["restart"] in ("always", "unless-stopped", "on-failure"), name
        assert service.get("network_mode", "bridge") in BALENA_NETWORK_MODES, name
        assert isinstance(service.get("depends_on", []), list), "balena: only the array form"
        build = service.get("build")
        if isinstance(build, dict):
            assert set(build) <= BALENA_BUILD_FIELDS, name


def test_volumes_are_named_never_bind_mounts(compose: dict[str, Any]) -> None:
    declared = set(compose["volumes"])
    for service in compose["services"].values():
        for entry in service.get("volumes", []):
            assert isinstance(entry, str), "balena: short syntax only"
            assert entry.split(":")[0] in declared


def test_build_contexts_are_subfolders_with_a_dockerfile(compose: dict[str, Any]) -> None:
    for service in compose["services"].values():
        context = service["build"] if isinstance(service["build"], str) else service["build"]["context"]
        folder = (BALENA_DIR / context).resolve()
        assert folder.is_relative_to(BALENA_DIR) and folder != BALENA_DIR
        assert any(folder.glob("Dockerfile*")), context


def test_agent_gets_gpio_without_privileges_and_a_health_check(compose: dict[str, Any]) -> None:
    agent = compose["services"]["agent"]
    assert "/dev/gpiomem:/dev/gpiomem" in agent["devices"]
    assert agent["cap_add"] == ["SYS_RAWIO"]
    assert "studyspot-data:/data" in agent["volumes"]
    assert agent["healthcheck"]["test"] == ["CMD", "python3", "/usr/src/app/healthcheck.py"]
    healthcheck = (BALENA_DIR / "agent" / "healthcheck.py").read_text(encoding="utf-8")
    assert "/health" in healthcheck


def test_kiosk_browser_points_at_the_agents_kiosk_port(compose: dict[str, Any]) -> None:
    kiosk = compose["services"]["kiosk"]
    assert kiosk["environment"]["LAUNCH_URL"] == f"http://localhost:{KioskSettings().port}/"
    assert kiosk["depends_on"] == ["agent"]


# --- Dockerfiles ---------------------------------------------------------------------------------


def test_agent_dockerfile_builds_from_the_multi_arch_balenalib_base() -> None:
    text = (BALENA_DIR / "agent" / "Dockerfile.template").read_text(encoding="utf-8")
    bases = re.findall(r"^FROM\s+(\S+)", text, flags=re.MULTILINE)
    assert bases and all(base.startswith("balenalib/%%BALENA_MACHINE_NAME%%-python:3.11") for base in bases)
    assert '"${wheel}[edge]"' in text and "wheels/studyspot-*.whl" in text
    cmd = re.search(r"^CMD\s+(\[.*\])\s*$", text, flags=re.MULTILINE)
    assert cmd is not None and json.loads(cmd.group(1)) == RUN_COMMAND
    entrypoint = re.search(r"^ENTRYPOINT\s+(\[.*\])\s*$", text, flags=re.MULTILINE)
    assert entrypoint is not None and json.loads(entrypoint.group(1)) == ["/usr/src/app/entrypoint.sh"]
    for line in re.findall(r"^COPY\s+(?!--from)(.+)$", text, flags=re.MULTILINE):
        for source in line.split()[:-1]:
            assert (BALENA_DIR / "agent" / source.rstrip("/")).exists() or source == "wheels/", source


def test_kiosk_dockerfiles_cover_every_architecture() -> None:
    template = (BALENA_DIR / "kiosk" / "Dockerfile.template").read_text(encoding="utf-8")
    assert "FROM bh.cr/balenalabs/browser-%%BALENA_ARCH%%" in template
    assert "browser-arm32" in (BALENA_DIR / "kiosk" / "Dockerfile.armv7hf").read_text(encoding="utf-8")


def test_run_command_is_a_real_cli_command() -> None:
    from typer.testing import CliRunner

    from edge.cli import app

    result = CliRunner().invoke(app, ["run", "--help"])
    assert result.exit_code == 0 and "--config" in result.output


# --- balena.yml ----------------------------------------------------------------------------------


def test_balena_yml_describes_the_fleet() -> None:
    manifest = yaml.safe_load((BALENA_DIR / "balena.yml").read_text(encoding="utf-8"))
    assert manifest["type"] == "sw.application"
    assert manifest["name"] and manifest["description"]
    data = manifest["data"]
    assert data["defaultDeviceType"] in data["supportedDeviceTypes"]
    assert {"raspberrypi3", "raspberrypi4-64", "raspberrypi5"} <= set(data["supportedDeviceTypes"])
    names = [name for item in data["applicationEnvironmentVariables"] for name in item]
    assert set(names) <= set(render_config_variables())
    assert all(
        isinstance(value, str) for item in data["applicationEnvironmentVariables"] for value in item.values()
    )


# --- balena variables → agent config -------------------------------------------------------------


def render_config_variables() -> list[str]:
    return [setting.variable for setting in render_config.ENV_SETTINGS] + [
        render_config.DEVICES_VARIABLE,
        render_config.BROKER_VARIABLE,
    ]


def test_every_variable_maps_onto_a_real_config_key() -> None:
    for setting in render_config.ENV_SETTINGS:
        model: type[BaseModel] = EdgeConfig
        *sections, leaf = setting.key.split(".")
        for section in sections:
            annotation = model.model_fields[section].annotation
            assert isinstance(annotation, type) and issubclass(annotation, BaseModel), setting.key
            model = annotation
        assert leaf in model.model_fields, setting.key


def test_every_variable_is_documented_with_its_config_key() -> None:
    documented = _documented_text()
    for setting in render_config.ENV_SETTINGS:
        assert f"| `{setting.variable}` | `{setting.key}` |" in documented, setting.variable
    for name in (render_config.DEVICES_VARIABLE, render_config.BROKER_VARIABLE):
        assert f"`{name}`" in documented, name


def test_every_variable_any_deploy_file_reads_is_documented() -> None:
    documented = _documented_text()
    read: set[str] = set()
    for path in BALENA_DIR.rglob("*"):
        if path.is_file() and path.suffix in ("", ".sh", ".py", ".template", ".yml", ".armv7hf"):
            read.update(re.findall(r"STUDYSPOT_[A-Z0-9_]+", path.read_text(encoding="utf-8")))
    assert read >= {"STUDYSPOT_CONFIG", "STUDYSPOT_BROKER", "STUDYSPOT_KIOSK_PORT"}
    assert sorted(name for name in read if f"`{name}`" not in documented) == []


def test_variables_render_a_config_the_agent_accepts(tmp_path: Path) -> None:
    environ = {
        "STUDYSPOT_LIBRARY_ID": "3f1c2a9e-8b7d-4e6f-9a1b-2c3d4e5f6a7b",
        "STUDYSPOT_DATA_DIR": str(tmp_path / "data"),
        "STUDYSPOT_KIOSK_PORT": "8081",
        "STUDYSPOT_KIOSK_ENABLED": "yes",
        "STUDYSPOT_RELOCK_SECONDS": "7.5",
        "STUDYSPOT_UNLOCK_COMMAND": "OPEN",
        "STUDYSPOT_GPIO_ENABLED": "0",
        "STUDYSPOT_TIMEZONE": "Asia/Kolkata",
        "STUDYSPOT_OPEN_AT": "06:00",
        "STUDYSPOT_DEVICES": "door:door-1, env:env-1 ,energy:energy-1,relay:fan-1,relay:ac-1",
        "STUDYSPOT_COMFORT_RELAYS": "ac-1, ",
        "STUDYSPOT_VENTILATION_RELAY": "fan-1",
        "STUDYSPOT_LOG_LEVEL": "",
        "UNRELATED": "ignored",
    }
    output = render_config.render(environ, tmp_path / "edge.toml")
    config = parse_config(output.read_text(encoding="utf-8"), str(output))
    assert config.library_id == environ["STUDYSPOT_LIBRARY_ID"]
    assert config.kiosk.port == 8081 and config.kiosk.enabled is True
    assert config.checkin.relock_seconds == 7.5 and config.checkin.unlock_command == "OPEN"
    assert config.gpio.enabled is False
    assert config.rules.timezone == "Asia/Kolkata" and config.rules.open_at is not None
    assert [(d.id, d.kind, d.topic_prefix) for d in config.devices] == [
        ("door-1", "door", "door-1"),
        ("env-1", "env", "env-1"),
        ("energy-1", "energy", "energy-1"),
        ("fan-1", "relay", "fan-1"),
        ("ac-1", "relay", "ac-1"),
    ]
    assert config.rules.comfort_relays == ["ac-1"] and config.rules.ventilation_relay == "fan-1"
    assert config.log_level == "INFO"  # empty variable = the agent's default
    assert config.agent_password and config.mqtt_url is None


def test_generated_agent_password_survives_restarts(tmp_path: Path) -> None:
    environ = {"STUDYSPOT_LIBRARY_ID": "lib-1", "STUDYSPOT_DATA_DIR": str(tmp_path)}
    first = parse_config(render_config.render(environ, tmp_path / "edge.toml").read_text(encoding="utf-8"))
    second = parse_config(render_config.render(environ, tmp_path / "edge.toml").read_text(encoding="utf-8"))
    assert first.agent_password == second.agent_password
    assert (tmp_path / "edge.toml").stat().st_mode & 0o077 == 0


def test_mosquitto_broker_points_the_agent_at_it(tmp_path: Path) -> None:
    environ = {
        "STUDYSPOT_LIBRARY_ID": "lib-1",
        "STUDYSPOT_DATA_DIR": str(tmp_path),
        "STUDYSPOT_BROKER": "mosquitto",
        "STUDYSPOT_AGENT_PASSWORD": "p@ss:word/1",
    }
    config = parse_config(render_config.render(environ, tmp_path / "edge.toml").read_text(encoding="utf-8"))
    assert config.mqtt_url == "mqtt://studyspot-agent:p%40ss%3Aword%2F1@127.0.0.1:1883"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({}, "STUDYSPOT_LIBRARY_ID"),
        ({"STUDYSPOT_LIBRARY_ID": "x", "STUDYSPOT_KIOSK_PORT": "eighty"}, "STUDYSPOT_KIOSK_PORT"),
        ({"STUDYSPOT_LIBRARY_ID": "x", "STUDYSPOT_GPIO_ENABLED": "maybe"}, "STUDYSPOT_GPIO_ENABLED"),
        ({"STUDYSPOT_LIBRARY_ID": "x", "STUDYSPOT_DEVICES": "door-1"}, "STUDYSPOT_DEVICES"),
        ({"STUDYSPOT_LIBRARY_ID": "x", "STUDYSPOT_DEVICES": "lamp:l-1"}, "STUDYSPOT_DEVICES"),
        ({"STUDYSPOT_LIBRARY_ID": "x", "STUDYSPOT_BROKER": "rabbit"}, "STUDYSPOT_BROKER"),
    ],
)
def test_bad_variables_are_named_in_the_error(tmp_path: Path, environ: dict[str, str], message: str) -> None:
    with pytest.raises(render_config.RenderError, match=message):
        render_config.render({**environ, "STUDYSPOT_DATA_DIR": str(tmp_path)}, tmp_path / "edge.toml")


def test_text_with_quotes_and_backslashes_survives_toml(tmp_path: Path) -> None:
    environ = {
        "STUDYSPOT_LIBRARY_ID": 'lib "quoted" \\ back',
        "STUDYSPOT_AGENT_PASSWORD": "ü\n\t'x'",
        "STUDYSPOT_DATA_DIR": str(tmp_path),
    }
    config = parse_config(render_config.render(environ, tmp_path / "edge.toml").read_text(encoding="utf-8"))
    assert config.library_id == 'lib "quoted" \\ back'
    assert config.agent_password == "ü\n\t'x'"


def test_entrypoint_renders_then_runs_the_command(tmp_path: Path) -> None:
    environ = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "STUDYSPOT_CONFIG": str(tmp_path / "edge.toml"),
        "STUDYSPOT_DATA_DIR": str(tmp_path),
        "STUDYSPOT_LIBRARY_ID": "lib-42",
    }
    result = subprocess.run(
        ["bash", str(BALENA_DIR / "agent" / "entrypoint.sh"), "cat", str(tmp_path / "edge.toml")],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert parse_config(result.stdout).library_id == "lib-42"


def test_entrypoint_refuses_to_start_without_a_library(tmp_path: Path) -> None:
    environ = {key: value for key, value in os.environ.items() if not key.startswith("STUDYSPOT_")} | {
        "STUDYSPOT_CONFIG": str(tmp_path / "edge.toml"),
        "STUDYSPOT_DATA_DIR": str(tmp_path),
    }
    result = subprocess.run(
        ["bash", str(BALENA_DIR / "agent" / "entrypoint.sh"), "true"],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2 and "STUDYSPOT_LIBRARY_ID" in result.stderr
