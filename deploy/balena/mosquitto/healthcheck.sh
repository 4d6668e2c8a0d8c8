#!/bin/sh
# Healthy when idle by design, or when the broker process runs.
if [ "${STUDYSPOT_BROKER:-embedded}" != "mosquitto" ]; then
    exit 0
fi
pgrep mosquitto >/dev/null
