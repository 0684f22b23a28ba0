import { ConfigError, unsetIfEmpty } from '@skolluft/runtime'
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

/** An API token's shape (`skl_<id>_<secret>`, api/src/auth/credentials.ts), loosely: printable, no spaces. */
const API_TOKEN_SHAPE = /^skl_[\x21-\x7e]+$/

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
  /**
   * An ingest on another machine than the SQLite file (issue 6): the device registry is read and rejects are
   * recorded through the API at this URL (its base, e.g. `https://luft.lund.se`), with REGISTRY_TOKEN, instead of
   * the SQLite file in DATA_DIR. Readings then go to InfluxDB (STORE=influxdb). Unset: the SQLite file (the default).
   */
  REGISTRY_URL: z.preprocess(
    unsetIfEmpty,
    z.url({ protocol: /^https?$/, error: 'REGISTRY_URL must be the http:// or https:// URL of the API' }).optional(),
  ),
  /** An API token of role service (`skolluft token create --role service`); required with REGISTRY_URL. */
  REGISTRY_TOKEN: z.preprocess(
    unsetIfEmpty,
    z
      .string()
      .regex(API_TOKEN_SHAPE, 'REGISTRY_TOKEN must be an API token (skl_…, from skolluft token create --role service)')
      .optional(),
  ),
})
export type IngestConfig = z.infer<typeof IngestConfig>

/** Where the registry is read when it is not the SQLite file: the API's URL and the service token. */
export interface RemoteRegistry {
  readonly url: string
  readonly token: string
}

/**
 * REGISTRY_URL and REGISTRY_TOKEN go together, and with STORE=influxdb: a remote registry beside local SQLite
 * readings would put readings on this machine that no API serves. Throws ConfigError naming every problem.
 */
export function remoteRegistry(
  config: Pick<IngestConfig, 'REGISTRY_URL' | 'REGISTRY_TOKEN'> & { readonly STORE?: string },
): RemoteRegistry | undefined {
  const { REGISTRY_URL: url, REGISTRY_TOKEN: token } = config
  if (url === undefined && token === undefined) return undefined
  const problems: string[] = []
  if (url === undefined) problems.push('REGISTRY_URL: required with REGISTRY_TOKEN (not set)')
  if (token === undefined) problems.push('REGISTRY_TOKEN: required with REGISTRY_URL (not set)')
  if (config.STORE !== 'influxdb') {
    problems.push(
      `STORE: must be influxdb with REGISTRY_URL (is ${config.STORE ?? 'sqlite'}): an ingest that reads the registry through the API writes its readings to InfluxDB, not to a SQLite file on this machine`,
    )
  }
  if (problems.length > 0 || url === undefined || token === undefined) throw new ConfigError(problems)
  return { url, token }
}
