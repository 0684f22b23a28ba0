import { unsetIfEmpty } from '@skolluft/runtime'
import { z } from 'zod'

/**
 * Longest share name and client id accepted. MQTT 3.1.1 only obliges a broker to accept client ids of 1–23
 * characters [MQTT-3.1.3-5]; Mosquitto takes far longer ones, the skolluft gateway up to 64
 * (gateway/src/limits.ts MAX_CLIENT_ID_LENGTH), so 64 keeps a worker's id valid on both.
 */
export const MAX_MQTT_NAME_LENGTH = 64

/**
 * A share name is one topic level: at least one character [MQTT-4.8.2-1], no `/`, `+` or `#` [MQTT-4.8.2-2].
 * `$` is refused too (it marks broker topics; a name starting with it would read as one), and so are
 * whitespace and control characters, which only ever get there by accident in an env file.
 */
export const SHARE_NAME_PATTERN = /^[^/+#$\s\p{Cc}]+$/u
/** Printable ASCII without spaces: safe in logs, in broker ACL files and in Mosquitto's `%c` patterns. */
export const CLIENT_ID_PATTERN = /^[\x21-\x7e]+$/

/** Environment of a stand-alone ingest process. Credentials may also come from the data directory. */
export const IngestConfig = z.object({
  MQTT_URL: z
    .url({ protocol: /^mqtts?$/, error: 'MQTT_URL must be an mqtt:// or mqtts:// URL' })
    .default('mqtt://127.0.0.1:1883'),
  MQTT_USERNAME: z.string().min(1).optional(),
  MQTT_PASSWORD: z.string().min(1).optional(),
  /**
   * Scale-out: workers with the same group share the telemetry through the MQTT shared subscription
   * `$share/<group>/aq/v1/devices/+/telemetry`, each message going to one of them. Needs a broker with shared
   * subscriptions (Mosquitto 2, docs/scaling.md); the built-in gateway (aedes) refuses it, and the ingest then
   * stops with SUBSCRIBE_REFUSED. Unset: one ingest receives everything (the default).
   */
  INGEST_SHARED_GROUP: z.preprocess(
    unsetIfEmpty,
    z
      .string()
      .max(MAX_MQTT_NAME_LENGTH)
      .regex(SHARE_NAME_PATTERN, 'INGEST_SHARED_GROUP must be one MQTT topic level: no "/", "+", "#", "$" or spaces')
      .optional(),
  ),
  /**
   * The MQTT client id, which names the broker session that queues telemetry while the worker is away.
   * Default: the MQTT username (one ingest). Every worker of a shared group needs its own id that stays the
   * same across its restarts, e.g. `skolluft-ingest-$(hostname)` with a stable host name (a StatefulSet pod
   * name, a systemd template instance): Mosquitto 2 keeps queueing a worker's round-robin share in its
   * session while it is down and hands it over only to a worker connecting with the same id (docs/scaling.md).
   * Behind the skolluft gateway the id must be the username or start with `<username>-`.
   */
  INGEST_CLIENT_ID: z.preprocess(
    unsetIfEmpty,
    z
      .string()
      .max(MAX_MQTT_NAME_LENGTH)
      .regex(CLIENT_ID_PATTERN, 'INGEST_CLIENT_ID must be printable ASCII without spaces')
      .optional(),
  ),
})
export type IngestConfig = z.infer<typeof IngestConfig>
