import { promisify } from 'node:util'
import { gzip } from 'node:zlib'
import {
  coverageOf,
  currentPlacement,
  type DeviceHealth,
  deviceHealth,
  HEALTH_WINDOW_MS,
  type HealthSummary,
  latestIndex,
  latestSummary,
  NO_DEVICES,
  type Site,
  type SiteFeature,
  siteFeature,
} from '@skolluft/core'
import type { Logger } from '@skolluft/runtime'
import type { Storage } from '@skolluft/storage'

const gzipAsync = promisify(gzip)

/**
 * The map's data: every site with its latest values, index and device health, built from storage at
 * most every `maxAgeMs` (default SNAPSHOT_MAX_AGE_MS) and shared by all requests. Once one exists, a
 * stale snapshot is served while the next one is built (stale-while-revalidate), so no request waits
 * for a rebuild; with `maxAgeMs` 0 (tests) every request waits for a fresh one. Sites and devices are
 * re-read only when the registry revision changes. The full public collection is serialised and
 * gzipped once per snapshot, so serving 10 000 sites costs a buffer write, not 10 000 objects.
 *
 * The HTTP map is for the first load and for catching up after a lost connection; live changes reach
 * the open map over socket.io within a second, so a few seconds of snapshot age cost nothing.
 */
export const SNAPSHOT_MAX_AGE_MS = 5_000
/** Health (coverage over 24 h, offline after ≥ 10 min) moves slowly; its query is the costly one. */
export const HEALTH_MAX_AGE_MS = 30_000
/** Sites per slice of a snapshot build (~10 ms of work on the reference machine). */
const BUILD_SLICE_SITES = 500

export interface DeviceRow {
  readonly id: string
  readonly model: string
  readonly sensors: readonly string[]
  readonly interval_s: number
  readonly indoor: boolean
  readonly height_m: number | null
  readonly since: string
  readonly last_seen: string | null
  readonly health: DeviceHealth
  /** Share of expected readings over the last 24 h (or since placement); null when too early to judge. */
  readonly coverage_24h: number | null
}

export interface MapSnapshot {
  readonly builtAt: number
  readonly features: readonly SiteFeature[]
  readonly byId: ReadonlyMap<string, SiteFeature>
  readonly devicesBySite: ReadonlyMap<string, readonly DeviceRow[]>
  /** The whole FeatureCollection, serialised, and gzipped. */
  readonly json: string
  readonly gzipped: Buffer
  readonly etag: string
}

interface HealthData {
  readonly at: number
  readonly devicesBySite: Map<string, DeviceRow[]>
  readonly summaries: Map<string, HealthSummary>
}

function summarise(rows: readonly DeviceRow[]): HealthSummary {
  const summary = { ...NO_DEVICES, devices: rows.length }
  let lastSeen: string | null = null
  for (const row of rows) {
    summary[row.health] += 1
    if (row.last_seen !== null && (lastSeen === null || row.last_seen > lastSeen)) lastSeen = row.last_seen
  }
  return { ...summary, last_seen: lastSeen }
}

async function loadHealth(storage: Storage, now: number): Promise<HealthData> {
  const from = now - HEALTH_WINDOW_MS
  const [devices, latest, samples] = await Promise.all([
    storage.registry.listDevices(),
    storage.readings.latestByDevice(),
    storage.readings.sampleCounts({ from, to: now }),
  ])
  const lastTs = new Map(latest.map((l) => [l.deviceId, l.ts]))
  const devicesBySite = new Map<string, DeviceRow[]>()
  for (const device of devices) {
    if (device.revokedAt !== null) continue
    const placement = currentPlacement(device.placements)
    if (placement === undefined) continue
    const last = lastTs.get(device.id) ?? null
    const coverage = coverageOf(samples.get(device.id) ?? 0, device.intervalS, from, placement.from, now)
    const row: DeviceRow = {
      id: device.id,
      model: device.model,
      sensors: [...device.sensors],
      interval_s: device.intervalS,
      indoor: placement.indoor,
      height_m: placement.heightM ?? null,
      since: new Date(placement.from).toISOString(),
      last_seen: last === null ? null : new Date(last).toISOString(),
      health: deviceHealth({ lastTs: last, intervalS: device.intervalS, now, coverage }),
      coverage_24h: coverage === null ? null : Math.round(coverage * 1000) / 1000,
    }
    const rows = devicesBySite.get(placement.siteId)
    if (rows) rows.push(row)
    else devicesBySite.set(placement.siteId, [row])
  }
  const summaries = new Map<string, HealthSummary>()
  for (const [siteId, rows] of devicesBySite) summaries.set(siteId, summarise(rows))
  return { at: now, devicesBySite, summaries }
}

export interface MapSnapshots {
  get(): Promise<MapSnapshot>
}

export function createMapSnapshots(deps: {
  readonly storage: Storage
  readonly clock: () => number
  readonly log: Logger
  readonly maxAgeMs: number
}): MapSnapshots {
  const { storage, clock, log, maxAgeMs } = deps
  // With caching off (tests), health is as fresh as the rest.
  const healthMaxAgeMs = maxAgeMs === 0 ? 0 : Math.max(HEALTH_MAX_AGE_MS, maxAgeMs)
  let current: MapSnapshot | undefined
  let building: Promise<MapSnapshot> | undefined
  let health: HealthData | undefined
  let sitesCache: { revision: number; sites: Site[] } | undefined

  async function sites(): Promise<Site[]> {
    const revision = await storage.registry.revision()
    if (sitesCache?.revision !== revision) sitesCache = { revision, sites: await storage.registry.listSites() }
    return sitesCache.sites
  }

  async function build(): Promise<MapSnapshot> {
    const now = clock()
    if (health === undefined || now - health.at >= healthMaxAgeMs) health = await loadHealth(storage, now)
    const [all, latest, openBreaches] = await Promise.all([
      sites(),
      storage.readings.latestBySite(),
      storage.breaches.openCountBySite(),
    ])
    const currentHealth = health
    const features: SiteFeature[] = []
    const parts: string[] = []
    // In slices, yielding to the event loop between them, so requests are served while a large map is
    // built (10 000 sites took ~200 ms of features and JSON in one piece, a stall for every request).
    for (let i = 0; i < all.length; i += BUILD_SLICE_SITES) {
      const slice = all.slice(i, i + BUILD_SLICE_SITES).map((site) => {
        const reading = latest.get(site.id)
        const summary = reading === undefined ? null : latestSummary(reading, now)
        return siteFeature(site, {
          latest: summary,
          index: latestIndex(summary, now),
          health: currentHealth.summaries.get(site.id) ?? NO_DEVICES,
          breaches: { open: openBreaches.get(site.id) ?? 0 },
        })
      })
      features.push(...slice)
      parts.push(JSON.stringify(slice).slice(1, -1))
      if (i + BUILD_SLICE_SITES < all.length) await new Promise<void>((resolve) => setImmediate(resolve))
    }
    const json = `{"type":"FeatureCollection","features":[${parts.join(',')}]}`
    const gzipped = await gzipAsync(json, { level: 6 })
    const snapshot: MapSnapshot = {
      builtAt: now,
      features,
      byId: new Map(features.map((f) => [f.id, f])),
      devicesBySite: currentHealth.devicesBySite,
      json,
      gzipped,
      etag: `W/"map-${now.toString(36)}-${json.length.toString(36)}"`,
    }
    current = snapshot
    log.debug({ sites: features.length, bytes: json.length, ms: clock() - now }, 'map snapshot built')
    return snapshot
  }

  function rebuild(): Promise<MapSnapshot> {
    building ??= build().finally(() => {
      building = undefined
    })
    return building
  }

  return {
    async get() {
      if (current === undefined || maxAgeMs === 0) return rebuild()
      if (clock() - current.builtAt >= maxAgeMs) {
        rebuild().catch((error: unknown) =>
          log.error({ err: error }, 'map snapshot rebuild failed; serving the last one'),
        )
      }
      return current
    },
  }
}
