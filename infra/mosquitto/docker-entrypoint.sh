#!/bin/sh
# Entry point of the Mosquitto container (infra/compose.yaml, infra/k8s/mosquitto.yaml): builds the broker's password
# file from the operator's device file and the services' passwords in the environment, then runs mosquitto.
# Paths can be moved with the variables below (test/e2e/infra.test.ts runs this script against Debian's mosquitto).
set -eu

conf="${MOSQUITTO_CONF:-/mosquitto/config/mosquitto.conf}"
devices="${MOSQUITTO_DEVICES_FILE:-/mosquitto/config/devices.passwd}"
passwd="${MOSQUITTO_PASSWORD_FILE:-/mosquitto/data/passwd}"
health="${MOSQUITTO_HEALTH_FILE:-/mosquitto/data/health.password}"

umask 077
if [ -f "$devices" ]; then
  cp "$devices" "$passwd.new"
else
  echo "mosquitto: no $devices: only the services can log in until you add devices (mosquitto_passwd)" >&2
  : >"$passwd.new"
fi

# add <username> <variable name>: the service's password comes from the environment, never from a file in the image.
add() {
  eval "secret=\${$2:-}"
  if [ -z "$secret" ]; then
    echo "mosquitto: $2 is not set (the password of $1)" >&2
    exit 1
  fi
  mosquitto_passwd -b "$passwd.new" "$1" "$secret"
}
add svc.ingest MQTT_INGEST_PASSWORD
add svc.api MQTT_API_PASSWORD
add svc.alerts MQTT_ALERTS_PASSWORD
if [ -n "${MQTT_ADMIN_PASSWORD:-}" ]; then add svc.admin MQTT_ADMIN_PASSWORD; fi

# 24 random bytes as hex for the health check's own account.
health_secret=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
mosquitto_passwd -b "$passwd.new" svc.health "$health_secret"
printf '%s' "$health_secret" >"$health"
mv "$passwd.new" "$passwd"

# As root (the image's default), mosquitto drops to the `mosquitto` user, which must read the password file and write
# its persistence directory.
if [ "$(id -u)" = 0 ] && id mosquitto >/dev/null 2>&1; then
  chown -R mosquitto:mosquitto "$(dirname "$passwd")"
fi

exec mosquitto -c "$conf"
