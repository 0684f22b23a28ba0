#!/bin/sh
# Health check of the Mosquitto container: an authenticated subscription answered by the broker (the uptime in $SYS is
# retained, so a live broker answers at once). Exit 0 healthy, non-zero otherwise.
set -eu
port="${MOSQUITTO_PORT:-1883}"
health="${MOSQUITTO_HEALTH_FILE:-/mosquitto/data/health.password}"
exec mosquitto_sub -h 127.0.0.1 -p "$port" -u svc.health -P "$(cat "$health")" -t '$SYS/broker/uptime' -C 1 -W 5
