#!/usr/bin/env bash
# Install the StudySpot edge agent on Raspberry Pi OS (Bookworm) as a systemd service.
#
#   sudo deploy/install-pi.sh --library-id <uuid> [--source DIR]
#
# Creates the `studyspot` user, a virtualenv in /opt/studyspot/venv with the `edge` extra,
# /etc/studyspot/edge.toml (kept if it exists) and the studyspot-edge service.
set -euo pipefail

PREFIX=/opt/studyspot
CONFIG_DIR=/etc/studyspot
DATA_DIR=/var/lib/studyspot
SERVICE_NAME=studyspot-edge
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source_dir="${repo_root}"
library_id=""
timezone="Asia/Kolkata"

usage() {
    echo "usage: sudo $0 --library-id UUID [--source DIR] [--timezone ZONE]" >&2
    exit 2
}

while [[ $# -gt 0 ]]; do
    case "$1" in
        --library-id) library_id="${2:-}"; shift 2 ;;
        --source) source_dir="${2:-}"; shift 2 ;;
        --timezone) timezone="${2:-}"; shift 2 ;;
        -h|--help) usage ;;
        *) echo "unknown option: $1" >&2; usage ;;
    esac
done

[[ -n "${library_id}" ]] || usage
if [[ "${EUID}" -ne 0 ]]; then
    echo "run as root (sudo)" >&2
    exit 1
fi

echo "==> system packages"
apt-get update -q
apt-get install -y -q python3 python3-venv python3-dev build-essential mosquitto-clients python3-lgpio

echo "==> user and directories"
if ! id studyspot >/dev/null 2>&1; then
    useradd --system --home-dir "${DATA_DIR}" --shell /usr/sbin/nologin studyspot
fi
if getent group gpio >/dev/null; then
    usermod -aG gpio studyspot
fi
install -d -o studyspot -g studyspot -m 0750 "${DATA_DIR}"
install -d -o root -g studyspot -m 0750 "${CONFIG_DIR}"
install -d -m 0755 "${PREFIX}"

echo "==> virtualenv"
# --system-site-packages lets gpiozero find the Debian python3-lgpio binding.
python3 -m venv --system-site-packages "${PREFIX}/venv"
"${PREFIX}/venv/bin/pip" install --quiet --upgrade pip
"${PREFIX}/venv/bin/pip" install --quiet "${source_dir}[edge]"
if [[ -d "${source_dir}/docs" ]]; then
    cp -r "${source_dir}/docs" "${PREFIX}/"
fi

echo "==> configuration"
config_file="${CONFIG_DIR}/edge.toml"
if [[ -f "${config_file}" ]]; then
    echo "keeping existing ${config_file}"
else
    agent_password="$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')"
    cat > "${config_file}" <<CONFIG
library_id = "${library_id}"
data_dir = "${DATA_DIR}"
agent_password = "${agent_password}"

[rules]
timezone = "${timezone}"

[gpio]
pin_factory = "lgpio"
CONFIG
    chown root:studyspot "${config_file}"
    chmod 0640 "${config_file}"
fi
"${PREFIX}/venv/bin/studyspot" edge check-config --config "${config_file}"

echo "==> service"
install -m 0644 "${repo_root}/deploy/systemd/${SERVICE_NAME}.service" "/etc/systemd/system/${SERVICE_NAME}.service"
systemctl daemon-reload
systemctl enable --now "${SERVICE_NAME}"
systemctl --no-pager status "${SERVICE_NAME}" || true

echo "done: kiosk on http://$(hostname -I | awk '{print $1}'):8080/ ; enrol with 'studyspot edge enroll'"
