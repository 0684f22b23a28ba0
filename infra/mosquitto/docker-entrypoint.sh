#!/bin/sh
# Entry point of the Mosquitto container (infra/compose.yaml, infra/k8s/mosquitto.yaml): builds the configuration of
# Mosquitto's dynamic-security plugin (clients, roles, ACLs) from the operator's device file and the services'
# passwords in the environment, then runs mosquitto. Regenerated at every start: the file is the only source, and no
# client may change it at run time (nobody is granted $CONTROL/dynamic-security).
# Paths can be moved with the variables below (test/e2e/infra.test.ts runs this script against Debian's mosquitto).
#
# Why the plugin and not acl_file: Mosquitto 2.0's acl_file never checks SUBSCRIBE, only each delivery, so any
# logged-in device could join the ingest's `$share/<group>/…` subscription, take its turn in the rotation and have
# that turn refused at delivery: telemetry lost (measured on 2.0.11, test/e2e/infra.test.ts). The plugin refuses
# the SUBSCRIBE itself (SUBACK 0x80/0x87), so the rogue member never joins.
set -eu

conf="${MOSQUITTO_CONF:-/mosquitto/config/mosquitto.conf}"
devices="${MOSQUITTO_DEVICES_FILE:-/mosquitto/config/devices.passwd}"
dynsec="${MOSQUITTO_DYNSEC_FILE:-/mosquitto/data/dynamic-security.json}"
health="${MOSQUITTO_HEALTH_FILE:-/mosquitto/data/health.password}"

umask 077
work="$dynsec.work"
rm -rf "$work"
mkdir "$work"

# The device file is `mosquitto_passwd` output of Mosquitto 2 (`<device id>:$7$<iterations>$<salt>$<hash>`,
# PBKDF2-SHA512): the plugin takes the same salt, hash and iteration count, so device passwords never pass through
# this script. Device ids follow core ID_PATTERN (no dot, so no device can be named like a service).
entry='^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?:\$7\$[0-9]+\$[A-Za-z0-9+/]+=*\$[A-Za-z0-9+/]+=*$'
if [ -f "$devices" ]; then
  bad=$(grep -n -v -E -e "$entry" -e '^$' "$devices" | cut -d: -f1 | tr '\n' ' ' | sed 's/ $//')
  if [ -n "$bad" ]; then
    echo "mosquitto: $devices, line(s) $bad: not '<device id>:\$7\$…' (create entries with Mosquitto 2's mosquitto_passwd)" >&2
    exit 1
  fi
  twice=$(grep -v '^$' "$devices" | cut -d: -f1 | sort | uniq -d | tr '\n' ' ' | sed 's/ $//')
  if [ -n "$twice" ]; then
    echo "mosquitto: $devices names these devices more than once: $twice" >&2
    exit 1
  fi
  grep -v '^$' "$devices" >"$work/devices" || true
else
  echo "mosquitto: no $devices: only the services can log in until you add devices (mosquitto_passwd)" >&2
  : >"$work/devices"
fi

# add <username> <variable name>: the service's password comes from the environment, never from a file in the image.
: >"$work/services"
add() {
  eval "secret=\${$2:-}"
  if [ -z "$secret" ]; then
    echo "mosquitto: $2 is not set (the password of $1)" >&2
    exit 1
  fi
  mosquitto_passwd -b "$work/services" "$1" "$secret"
}
add svc.ingest MQTT_INGEST_PASSWORD
add svc.api MQTT_API_PASSWORD
add svc.alerts MQTT_ALERTS_PASSWORD
if [ -n "${MQTT_ADMIN_PASSWORD:-}" ]; then add svc.admin MQTT_ADMIN_PASSWORD; fi

# 24 random bytes as hex for the health check's own account; it never leaves the container.
health_secret=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
mosquitto_passwd -b "$work/services" svc.health "$health_secret"

# What each service may do: `<role> <ACL type> <topic>`, the rules of gateway/src/permissions.ts. The role of
# svc.<name> is <name>. Everything not granted is refused (defaultACLAccess below). Subscriptions are checked as
# sent, with their `$share/<group>/` prefix (measured on 2.0.11), hence the `$share/+/…` lines: only the ingest may
# join a shared group. publishClientReceive is checked at each delivery, subscribe* at SUBSCRIBE.
cat >"$work/acls" <<'EOF'
ingest subscribePattern aq/v1/devices/+/telemetry
ingest subscribePattern $share/+/aq/v1/devices/+/telemetry
ingest subscribePattern aq/v1/devices/+/status
ingest subscribePattern $share/+/aq/v1/devices/+/status
ingest publishClientReceive aq/v1/devices/+/telemetry
ingest publishClientReceive aq/v1/devices/+/status
ingest publishClientSend aq/v1/devices/+/config
ingest publishClientSend aq/v1/events/readings-committed
api subscribePattern aq/v1/devices/+/telemetry
api subscribePattern aq/v1/devices/+/status
api publishClientReceive aq/v1/devices/+/telemetry
api publishClientReceive aq/v1/devices/+/status
alerts subscribeLiteral aq/v1/events/readings-committed
alerts publishClientReceive aq/v1/events/readings-committed
admin publishClientSend aq/v1/devices/+/config
health subscribeLiteral $SYS/broker/uptime
health publishClientReceive $SYS/broker/uptime
EOF

# One role per device, because the plugin of Mosquitto 2.0.11 does not substitute %u in ACL topics (measured: a
# `publishClientSend aq/v1/devices/%u/telemetry` role refused the device's own telemetry). A device publishes only
# its own telemetry and status (its last will included) and subscribes to and receives only its own config.
# Every value written below was checked above or produced by mosquitto_passwd: no quote or backslash to escape.
awk -v acls="$work/acls" -v services="$work/services" -v devices="$work/devices" '
function q(s) { return "\"" s "\"" }
function acl(type, topic) { return "{" q("acltype") ": " q(type) ", " q("topic") ": " q(topic) ", " q("allow") ": true}" }
# <username>:$7$<iterations>$<salt>$<hash>
function client(line, role,   i, user, f) {
  i = index(line, ":")
  user = substr(line, 1, i - 1)
  split(substr(line, i + 1), f, "[$]")
  if (role == "") role = "device:" user
  return "{" q("username") ": " q(user) ", " q("password") ": " q(f[5]) ", " q("salt") ": " q(f[4]) ", " \
    q("iterations") ": " f[3] ", " q("roles") ": [{" q("rolename") ": " q(role) "}]}"
}
function item(text) { printf "%s\n    %s", sep, text; sep = "," }
BEGIN {
  print "{"
  printf "  %s: {%s: false, %s: false, %s: false, %s: true},\n", q("defaultACLAccess"), q("publishClientSend"), \
    q("publishClientReceive"), q("subscribe"), q("unsubscribe")
  printf "  %s: [],\n", q("groups")
  printf "  %s: [", q("clients")
  sep = ""
  while ((getline line < services) > 0) item(client(line, substr(line, 5, index(line, ":") - 5)))
  while ((getline line < devices) > 0) item(client(line, ""))
  close(devices)
  printf "\n  ],\n  %s: [", q("roles")
  sep = ""
  n = 0
  while ((getline line < acls) > 0) {
    split(line, a, " ")
    if (!(a[1] in rules)) { order[++n] = a[1]; rules[a[1]] = "" }
    rules[a[1]] = rules[a[1]] (rules[a[1]] == "" ? "" : ", ") acl(a[2], a[3])
  }
  for (k = 1; k <= n; k++) item("{" q("rolename") ": " q(order[k]) ", " q("acls") ": [" rules[order[k]] "]}")
  while ((getline line < devices) > 0) {
    id = substr(line, 1, index(line, ":") - 1)
    t = "aq/v1/devices/" id
    item("{" q("rolename") ": " q("device:" id) ", " q("acls") ": [" acl("publishClientSend", t "/telemetry") ", " \
      acl("publishClientSend", t "/status") ", " acl("subscribeLiteral", t "/config") ", " \
      acl("publishClientReceive", t "/config") "]}")
  }
  print "\n  ]"
  print "}"
}' >"$work/dynamic-security.json"

mv "$work/dynamic-security.json" "$dynsec"
printf '%s' "$health_secret" >"$health"
rm -rf "$work"

# As root (the image's default), mosquitto drops to the `mosquitto` user, which must read the plugin's file and write
# its persistence directory.
if [ "$(id -u)" = 0 ] && id mosquitto >/dev/null 2>&1; then
  chown -R mosquitto:mosquitto "$(dirname "$dynsec")"
fi

exec mosquitto -c "$conf"
