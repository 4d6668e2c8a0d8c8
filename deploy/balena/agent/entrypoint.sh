#!/usr/bin/env bash
# Container entrypoint: turn balena device variables into the agent's config, then run the command.
set -euo pipefail

config_file="${STUDYSPOT_CONFIG:-/data/edge.toml}"
data_dir="${STUDYSPOT_DATA_DIR:-/data}"
python3 "$(dirname "${BASH_SOURCE[0]}")/render_config.py" --output "${config_file}"

# With the optional Mosquitto service, write its password file, ACL and config from the device
# registry; the mosquitto service waits for mosquitto.conf (restart both after `device add`).
if [[ "${STUDYSPOT_BROKER:-embedded}" == "mosquitto" ]]; then
    mosquitto_dir="${data_dir}/mosquitto"
    studyspot edge device mosquitto-files --out "${mosquitto_dir}" --config "${config_file}"
    cat > "${mosquitto_dir}/mosquitto.conf.tmp" <<CONF
listener 1883
allow_anonymous false
password_file ${mosquitto_dir}/passwd
acl_file ${mosquitto_dir}/acl
persistence false
CONF
    mv "${mosquitto_dir}/mosquitto.conf.tmp" "${mosquitto_dir}/mosquitto.conf"
fi

exec "$@"
