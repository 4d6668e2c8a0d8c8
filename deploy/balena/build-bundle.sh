#!/usr/bin/env bash
# Build the project wheel into deploy/balena/agent/wheels/ so `balena push` can install it.
# Usage (from anywhere): deploy/balena/build-bundle.sh && cd deploy/balena && balena push <fleet>
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "${here}/../.." && pwd)"
wheels="${here}/agent/wheels"
python_bin="${PYTHON:-${repo_root}/.venv/bin/python}"

rm -rf "${wheels}"
mkdir -p "${wheels}"
"${python_bin}" -m pip wheel --no-deps --wheel-dir "${wheels}" "${repo_root}"
ls "${wheels}"
