#!/bin/sh
# Idle unless STUDYSPOT_BROKER=mosquitto; then run Mosquitto on the files the agent writes to the
# shared volume (passwd, acl and mosquitto.conf under /data/mosquitto).
set -eu

if [ "${STUDYSPOT_BROKER:-embedded}" != "mosquitto" ]; then
    echo "mosquitto: idle (the agent's embedded broker is in use; set STUDYSPOT_BROKER=mosquitto)"
    exec sleep 2147483647
fi
conf=/data/mosquitto/mosquitto.conf
until [ -f "${conf}" ]; do
    echo "mosquitto: waiting for the agent to write ${conf}"
    sleep 2
done
exec mosquitto -c "${conf}"
