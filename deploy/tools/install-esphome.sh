#!/usr/bin/env bash
# Install the ESPHome CLI into its own virtualenv (default .studyspot/tools/esphome).
#
# ESPHome pins exact versions of cryptography, paho-mqtt, starlette, uvicorn, click and more that
# clash with the project's own dependencies, so it must not go into the project's .venv.
# Used by tests/field (the firmware configs are validated with `esphome config`) and by anyone
# flashing devices.  Usage: deploy/tools/install-esphome.sh [TARGET_DIR]
set -euo pipefail

ESPHOME_VERSION="${ESPHOME_VERSION:-2026.6.5}"
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
target="${1:-${repo_root}/.studyspot/tools/esphome}"
python_bin="${PYTHON:-python3.11}"

# Test workers may call this at the same time: one installs, the others wait and find it done.
mkdir -p "$(dirname "${target}")"
exec 9>"${target}.lock"
flock 9

if [[ -x "${target}/bin/esphome" ]] && "${target}/bin/esphome" version 2>/dev/null | grep -qx "Version: ${ESPHOME_VERSION}"; then
    echo "esphome ${ESPHOME_VERSION} already in ${target}"
    exit 0
fi

"${python_bin}" -m venv --clear "${target}"
"${target}/bin/pip" install --quiet --disable-pip-version-check "esphome==${ESPHOME_VERSION}"
"${target}/bin/esphome" version
