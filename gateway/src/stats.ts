/** Counters of what the gateway refused, in total and per device. */
export interface RefusalCounts {
  /** Failed CONNECTs: bad or missing credentials, unknown or revoked devices, wrong client id or will. */
  authFailures: number
  /** PUBLISHes (and wills) to topics the client may not use. */
  deniedPublishes: number
  /** SUBSCRIBE filters the client may not use (answered with 0x80). */
  deniedSubscribes: number
  /** Payloads over the payload limit, and packets over the frame limit. */
  oversized: number
  /** Topics or filters deeper than the level limit. */
  topicTooDeep: number
  /** PUBLISHes beyond the device's token bucket. */
  rateLimited: number
  /** Telemetry the spool could not keep (full, or its write failed); the device keeps the reading. */
  spoolRefusals: number
}
export type RefusalKind = keyof RefusalCounts

export interface DeviceRefusals extends RefusalCounts {
  /** Epoch ms of the latest refusal. */
  lastAt: number
  lastReason: string
}

export interface GatewayStats extends RefusalCounts {
  /** Clients with an established MQTT session (aedes' count). */
  connectedClients: number
  connectedDevices: number
  connectedServices: number
  /** Successful logins, and how many of them were answered from the verification cache (no scrypt). */
  authSuccesses: number
  authCacheHits: number
  /** Clients disconnected because the registry changed under them (revoked, secret rotated, removed). */
  registryDisconnects: number
  /** Telemetry messages in the spool (accepted, not yet acknowledged by the ingest); 0 without a spool. */
  spoolEntries: number
  /** Refusals per device id; bounded, oldest-updated devices drop out first. */
  devices: Record<string, DeviceRefusals>
}

/** Devices with refusal counters kept; a fleet is hundreds, so this is a bound, not a working size. */
const MAX_DEVICES_TRACKED = 10_000

export function emptyRefusals(): RefusalCounts {
  return {
    authFailures: 0,
    deniedPublishes: 0,
    deniedSubscribes: 0,
    oversized: 0,
    topicTooDeep: 0,
    rateLimited: 0,
    spoolRefusals: 0,
  }
}

export interface StatsRecorder {
  refuse(kind: RefusalKind, deviceId: string | null, reason: string): void
  readonly totals: RefusalCounts & { authSuccesses: number; authCacheHits: number; registryDisconnects: number }
  devices(): Record<string, DeviceRefusals>
}

export function createStatsRecorder(clock: () => number): StatsRecorder {
  const totals = { ...emptyRefusals(), authSuccesses: 0, authCacheHits: 0, registryDisconnects: 0 }
  const perDevice = new Map<string, DeviceRefusals>()
  return {
    totals,
    refuse(kind, deviceId, reason) {
      totals[kind] += 1
      if (deviceId === null) return
      const entry = perDevice.get(deviceId) ?? { ...emptyRefusals(), lastAt: 0, lastReason: '' }
      entry[kind] += 1
      entry.lastAt = clock()
      entry.lastReason = reason
      // Re-insert so the map's order is by last update; evict from the front.
      perDevice.delete(deviceId)
      if (perDevice.size >= MAX_DEVICES_TRACKED) {
        const oldest = perDevice.keys().next()
        if (!oldest.done) perDevice.delete(oldest.value)
      }
      perDevice.set(deviceId, entry)
    },
    devices() {
      const out: Record<string, DeviceRefusals> = {}
      for (const [id, entry] of perDevice) out[id] = { ...entry }
      return out
    },
  }
}
