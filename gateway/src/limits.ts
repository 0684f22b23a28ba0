import { MAX_PAYLOAD_BYTES, MAX_TOPIC_LEVELS } from '@skolluft/core'

/**
 * Limits the gateway enforces on every client. Each default is a named constant with the reason for
 * its value; tests and operators override single fields through `startGateway({ limits })`.
 */
export interface GatewayLimits {
  /** Largest PUBLISH payload (telemetry, status, config or a will) accepted, bytes. */
  readonly maxPayloadBytes: number
  /** Deepest topic or filter accepted, in `/`-separated levels. */
  readonly maxTopicLevels: number
  /** Longest MQTT client id accepted, characters. */
  readonly maxClientIdLength: number
  /** Sustained PUBLISH rate per device (token bucket refill), messages per second. */
  readonly publishRatePerS: number
  /** Token bucket size per device: how many messages a device may send back to back. */
  readonly publishBurst: number
  /** How long a subscriber's full socket may block delivery before it is disconnected, ms. */
  readonly drainTimeoutMs: number
  /** How long a new TCP connection may wait before sending CONNECT, ms. */
  readonly connectTimeoutMs: number
  /** First back-off after a failed login for a registered username, ms; doubles per failure. */
  readonly authBackoffBaseMs: number
  /** Longest back-off after repeated failed logins, ms. */
  readonly authBackoffMaxMs: number
  /** Password verifications (scrypt) allowed in flight at once; beyond it CONNECT is answered "server unavailable". */
  readonly maxPendingVerifications: number
  /** Telemetry messages the spool holds at most (when one is configured); beyond it telemetry is refused. */
  readonly maxSpoolEntries: number
}

/** The device contract's limit (core MAX_PAYLOAD_BYTES): 500 readings × ~200 B. The ingest applies the same one. */
export const GATEWAY_MAX_PAYLOAD_BYTES = MAX_PAYLOAD_BYTES

/**
 * Every topic of the v1 grammar has exactly five levels (core MAX_TOPIC_LEVELS). Checked by our hooks so the
 * refusal is logged and counted per device; aedes' own `maxTopicLevels` guard (default 100, the qlobber
 * ceiling) stays as the backstop for anything deeper, before a hook ever runs.
 */
export const GATEWAY_MAX_TOPIC_LEVELS = MAX_TOPIC_LEVELS

/**
 * A device's client id is its device id, at most 64 characters (core ID_PATTERN); our services use short
 * ids of their own. MQTT 3.1.1 sets no limit (3.1 set 23, which aedes applies to 3.1 clients through
 * `maxClientsIdLength`, so we pass this value there too).
 */
export const MAX_CLIENT_ID_LENGTH = 64

/**
 * Sustained rate: a device sends one reading a minute (device contract); 5 msg/s leaves room for status
 * messages and a replay that is paced, while a runaway loop is cut off within seconds.
 */
export const PUBLISH_RATE_PER_S = 5

/**
 * Burst: a device back from an outage replays its buffer as batches of up to 500 readings (core
 * MAX_BATCH_READINGS). A week offline at one reading a minute is ~10 000 readings = 21 batches; 200 covers
 * months of buffer sent back to back. A flood beyond the bucket is refused.
 */
export const PUBLISH_BURST = 200

/**
 * aedes docs (`drainTimeout`): one subscriber that stops reading its socket eventually blocks delivery to
 * everyone. 30 s is the value the aedes docs recommend for production; it is longer than the ingest's
 * longest write-retry back-off (5 s), so a briefly slow ingest is not disconnected, while a frozen one is.
 */
export const DRAIN_TIMEOUT_MS = 30_000

/**
 * aedes' default. A connection that has not sent CONNECT has cost us no authentication work yet, and
 * cellular devices in poor coverage can take several seconds per round trip, so we do not shorten it.
 */
export const CONNECT_TIMEOUT_MS = 30_000

/**
 * Failed logins for a registered username back off 1 s, 2 s, 4 s … up to 60 s: a misprovisioned device
 * retrying every second costs one scrypt verification (~40 ms CPU, runtime secrets.ts) a minute instead of
 * one a second, and online guessing becomes pointless. The back-off is kept per (username, remote address),
 * so failures an attacker causes from one address do not hold back the device connecting from another,
 * and a device whose correct password is already in the verification cache is never held back at all.
 * Not covered: an attacker keeping MAX_PENDING_VERIFICATIONS busy answers every new login "server
 * unavailable" (devices retry); a per-address connection rate limit in front of the gateway is the remedy.
 */
export const AUTH_BACKOFF_BASE_MS = 1_000
export const AUTH_BACKOFF_MAX_MS = 60_000

/**
 * Node runs scrypt on the libuv thread pool (4 threads by default), each call ~40 ms and 16 MiB. 64 waiting
 * verifications is ~0.7 s of queue at 4 threads: enough for a fleet reconnecting after a gateway restart
 * (devices that get "server unavailable" retry), bounded against a flood of logins with wrong passwords.
 */
export const MAX_PENDING_VERIFICATIONS = 64

/**
 * How often the registry revision is polled, so that a revocation made by another process (the CLI) ends
 * the device's connection within this time.
 */
export const REGISTRY_POLL_MS = 2_000

/**
 * The telemetry spool (gateway.ts, Persistence) holds what the ingest has not yet acknowledged: normally
 * a fraction of a second of traffic, but everything while the ingest is down. 500 000 messages is ~2 days
 * of a 150-device fleet at one reading a minute, ~150 MB on disk at ~300 B per row. Full, the gateway
 * refuses telemetry (the connection closes without a PUBACK), so devices keep their readings in their own
 * buffers rather than the gateway accepting what it could not keep. aedes holds the same messages in memory
 * for the ingest's session, so the bound also keeps the broker's memory in check.
 */
export const SPOOL_MAX_ENTRIES = 500_000

/**
 * Safety net: an entry the ingest never acknowledged (no ingest session, or an acknowledgement the
 * gateway could not match) is dropped after a day, logged as a warning. An ingest outage long enough
 * to reach it is one nobody noticed for a day; until then every entry is replayed at each start.
 */
export const SPOOL_RETENTION_MS = 24 * 60 * 60_000

/** How often entries past SPOOL_RETENTION_MS are deleted. */
export const SPOOL_PRUNE_INTERVAL_MS = 60_000

export const DEFAULT_GATEWAY_LIMITS: GatewayLimits = Object.freeze({
  maxPayloadBytes: GATEWAY_MAX_PAYLOAD_BYTES,
  maxTopicLevels: GATEWAY_MAX_TOPIC_LEVELS,
  maxClientIdLength: MAX_CLIENT_ID_LENGTH,
  publishRatePerS: PUBLISH_RATE_PER_S,
  publishBurst: PUBLISH_BURST,
  drainTimeoutMs: DRAIN_TIMEOUT_MS,
  connectTimeoutMs: CONNECT_TIMEOUT_MS,
  authBackoffBaseMs: AUTH_BACKOFF_BASE_MS,
  authBackoffMaxMs: AUTH_BACKOFF_MAX_MS,
  maxPendingVerifications: MAX_PENDING_VERIFICATIONS,
  maxSpoolEntries: SPOOL_MAX_ENTRIES,
})

export class GatewayConfigError extends Error {
  readonly code = 'GATEWAY_LIMITS_INVALID'
  constructor(message: string) {
    super(message)
    this.name = 'GatewayConfigError'
  }
}

/** Merges overrides over the defaults and rejects values that would disable a limit by accident. */
export function resolveLimits(overrides: Partial<GatewayLimits> = {}): GatewayLimits {
  const limits: GatewayLimits = { ...DEFAULT_GATEWAY_LIMITS, ...overrides }
  for (const [name, value] of Object.entries(limits)) {
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
      throw new GatewayConfigError(`gateway limit ${name} must be a positive number, got ${String(value)}`)
    }
  }
  if (limits.maxTopicLevels > 100) {
    // aedes clamps its own guard to 100 levels (qlobber's max_words); a larger value could not be honoured.
    throw new GatewayConfigError(`gateway limit maxTopicLevels must be at most 100, got ${limits.maxTopicLevels}`)
  }
  return limits
}
