import {
  coverageOf,
  currentPlacement,
  type DeviceHealth,
  deviceHealth,
  HEALTH_WINDOW_MS,
  HOUR_MS,
} from '@skolluft/core'
import type { NewAlertEvent, Storage } from '@skolluft/storage'
import type { AlertEventData } from './event-data.ts'

/**
 * Device health transitions for caretakers (issue 4): a device that goes offline (missed
 * OFFLINE_AFTER_INTERVALS expected readings, core health.ts), that reports too little (suspect coverage), and
 * that recovers. The last state per device is stored, so a restart neither repeats nor misses a transition; the
 * dedupe key names the device and the time the state began.
 */
export interface DeviceHealthMonitor {
  check(): Promise<number>
}

export function createDeviceHealthMonitor(options: {
  readonly storage: Pick<Storage, 'registry' | 'readings' | 'alerts'>
  readonly clock: () => number
}): DeviceHealthMonitor {
  const { storage, clock } = options
  return {
    async check() {
      const now = clock()
      const [devices, latest, states, sites] = await Promise.all([
        storage.registry.listDevices(),
        storage.readings.latestByDevice(),
        storage.alerts.deviceHealthStates(),
        storage.registry.listSites(),
      ])
      const windowStart = Math.floor((now - HEALTH_WINDOW_MS) / HOUR_MS) * HOUR_MS
      const counts = await storage.readings.sampleCounts({ from: windowStart, to: now })
      const lastTs = new Map(latest.map((l) => [l.deviceId, l.ts]))
      const siteNames = new Map(sites.map((s) => [s.id, s.name]))
      const events: NewAlertEvent[] = []
      for (const device of devices) {
        if (device.revokedAt !== null) continue
        const placement = currentPlacement(device.placements)
        if (placement === undefined) continue
        const last = lastTs.get(device.id) ?? null
        const coverage = coverageOf(counts.get(device.id) ?? 0, device.intervalS, windowStart, placement.from, now)
        const state = deviceHealth({ lastTs: last, intervalS: device.intervalS, now, coverage })
        const previous = states.get(device.id)
        if (state === 'never' || previous?.state === state) continue
        // Offline since the last reading; the other states since now.
        const since = state === 'offline' && last !== null ? last : now
        await storage.alerts.setDeviceHealthState(device.id, state, since)
        const kind = transitionKind(previous?.state, state)
        if (kind === null) continue
        const data: AlertEventData = {
          kind,
          siteId: placement.siteId,
          siteName: siteNames.get(placement.siteId) ?? placement.siteId,
          deviceId: device.id,
          ...(state === 'suspect' ? { issue: 'low_coverage' as const } : {}),
          since,
          severity: 'warning',
        }
        events.push({
          key: `${device.id}:${kind}:${since}`,
          kind,
          topic: 'device-health',
          siteId: placement.siteId,
          deviceId: device.id,
          incidentId: null,
          severity: 'warning',
          urgent: false,
          live: true,
          at: since,
          data,
        })
      }
      return events.length === 0 ? 0 : storage.alerts.appendEvents(events, now)
    },
  }
}

function transitionKind(
  previous: string | undefined,
  state: DeviceHealth,
): 'device-offline' | 'device-quality' | 'device-recovered' | null {
  if (state === 'offline') return 'device-offline'
  if (state === 'suspect') return 'device-quality'
  // ok: news only after a problem (a first sighting of a healthy device is not).
  if (state === 'ok' && (previous === 'offline' || previous === 'suspect')) return 'device-recovered'
  return null
}
