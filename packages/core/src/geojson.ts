import { z } from 'zod'
import { EAQI_POLLUTANTS, siteIndex } from './aqi.ts'
import { SiteId } from './ids.ts'
import { METRICS, type Metric, type MetricValues } from './metrics.ts'
import { Site } from './registry.ts'

/**
 * Sites as GeoJSON (RFC 7946): one Point Feature per site, `id` = site id, coordinates
 * `[lon, lat]` in WGS84 (RFC 7946 §3.1.1: longitude first). The schemas below are the single
 * source of this shape: the API serves it, the map reads it, and a site file in the same shape
 * (without `latest`) can be imported as a site list.
 *
 *   {"type":"FeatureCollection","features":[{"type":"Feature","id":"<siteId>",
 *     "geometry":{"type":"Point","coordinates":[13.19,55.70]},
 *     "properties":{"name","kind","stages","address","locality","municipality","demo",
 *                   "latest":{"ts":"<ISO UTC>","values":{"pm25":7.4},"times":{"pm25":"<ISO UTC>"},
 *                             "age_s":42} | null}}]}
 */

/**
 * Newest values at a site: `ts` is the time of the newest value, `age_s` how old it was when served,
 * and `times` the measurement time of each value (a sensor that stopped reporting one metric keeps
 * showing its last value, with its own, older time).
 */
export const LatestSummary = z.object({
  ts: z.iso.datetime(),
  values: z.partialRecord(z.enum(METRICS), z.number()),
  times: z.partialRecord(z.enum(METRICS), z.iso.datetime()).default({}),
  age_s: z.number().int().nonnegative(),
})
export type LatestSummary = z.infer<typeof LatestSummary>

/**
 * The European index of a site now: from the latest value of each index pollutant measured within
 * INDEX_MAX_AGE_MS (older values say nothing about the air now). Levels 1–6 as in core/aqi.ts.
 */
export const EaqiLevelSchema = z.number().int().min(1).max(6)
export const IndexSummary = z.object({
  band: EaqiLevelSchema.nullable(),
  pollutant: z.enum(EAQI_POLLUTANTS).nullable(),
  bands: z.partialRecord(z.enum(EAQI_POLLUTANTS), EaqiLevelSchema),
})
export type IndexSummary = z.infer<typeof IndexSummary>
export const INDEX_MAX_AGE_MS = 3 * 3_600_000
export const NO_INDEX: IndexSummary = { band: null, pollutant: null, bands: {} }

/** Device health at a site (core/health.ts), counted; `last_seen` is the newest reading of any device. */
export const HealthSummary = z.object({
  devices: z.number().int().nonnegative(),
  ok: z.number().int().nonnegative(),
  suspect: z.number().int().nonnegative(),
  offline: z.number().int().nonnegative(),
  never: z.number().int().nonnegative(),
  last_seen: z.iso.datetime().nullable(),
})
export type HealthSummary = z.infer<typeof HealthSummary>
export const NO_DEVICES: HealthSummary = { devices: 0, ok: 0, suspect: 0, offline: 0, never: 0, last_seen: null }

/** Open threshold breach incidents at the site (stored by the breach evaluation of issue 4). */
export const BreachSummary = z.object({ open: z.number().int().nonnegative() })
export type BreachSummary = z.infer<typeof BreachSummary>

/** The index from a latest summary, leaving out values older than INDEX_MAX_AGE_MS. */
export function latestIndex(latest: LatestSummary | null, now: number): IndexSummary {
  if (latest === null) return NO_INDEX
  const fresh: Partial<Record<(typeof EAQI_POLLUTANTS)[number], number>> = {}
  for (const p of EAQI_POLLUTANTS) {
    const value = latest.values[p]
    const time = latest.times[p] ?? latest.ts
    if (value !== undefined && now - Date.parse(time) <= INDEX_MAX_AGE_MS) fresh[p] = value
  }
  return siteIndex(fresh)
}

/** RFC 7946 §3.1.1: a position is [longitude, latitude], optionally followed by altitude. */
export const LonLat = z.tuple([Site.shape.lon, Site.shape.lat], z.number())

export const SiteFeatureProperties = Site.pick({
  name: true,
  kind: true,
  stages: true,
  address: true,
  locality: true,
  municipality: true,
  demo: true,
}).extend({
  /** Absent in an imported site file; the API always sends it (null when the site has no data). */
  latest: LatestSummary.nullable().default(null),
  index: IndexSummary.default(NO_INDEX),
  health: HealthSummary.default(NO_DEVICES),
  breaches: BreachSummary.default({ open: 0 }),
})
export type SiteFeatureProperties = z.infer<typeof SiteFeatureProperties>

export const SiteFeature = z.object({
  type: z.literal('Feature'),
  id: SiteId,
  geometry: z.object({ type: z.literal('Point'), coordinates: LonLat }),
  properties: SiteFeatureProperties,
})
export type SiteFeature = z.infer<typeof SiteFeature>

export const SiteFeatureCollection = z.object({
  type: z.literal('FeatureCollection'),
  features: z.array(SiteFeature),
})
export type SiteFeatureCollection = z.infer<typeof SiteFeatureCollection>

/**
 * Summarises a latest reading. A device clock may run a little ahead of ours (ingest accepts up to
 * MAX_FUTURE_SKEW_MS), so the age is clamped at 0 rather than reported negative.
 */
export function latestSummary(
  reading: {
    readonly ts: number
    readonly values: MetricValues
    readonly metricTs?: Partial<Record<Metric, number>>
  },
  now: number,
): LatestSummary {
  const values: LatestSummary['values'] = {}
  const times: LatestSummary['times'] = {}
  // A reading's metrics usually share one time: format each distinct time once (the map formats
  // 10 000 sites × 6 metrics per snapshot).
  const tsIso = new Date(reading.ts).toISOString()
  let lastMs = reading.ts
  let lastIso = tsIso
  for (const metric of METRICS) {
    const value = reading.values[metric]
    if (value === undefined) continue
    values[metric] = value
    const ms = reading.metricTs?.[metric] ?? reading.ts
    if (ms !== lastMs) {
      lastMs = ms
      lastIso = new Date(ms).toISOString()
    }
    times[metric] = lastIso
  }
  return {
    ts: tsIso,
    values,
    times,
    age_s: Math.max(0, Math.round((now - reading.ts) / 1000)),
  }
}

export interface SiteStatus {
  readonly latest: LatestSummary | null
  readonly index?: IndexSummary
  readonly health?: HealthSummary
  readonly breaches?: BreachSummary
}

export function siteFeature(site: Site, status: SiteStatus | LatestSummary | null): SiteFeature {
  const s: SiteStatus = status === null ? { latest: null } : 'latest' in status ? status : { latest: status }
  return {
    type: 'Feature',
    id: site.id,
    geometry: { type: 'Point', coordinates: [site.lon, site.lat] },
    properties: {
      name: site.name,
      kind: site.kind,
      stages: [...site.stages],
      address: site.address,
      locality: site.locality,
      municipality: site.municipality,
      demo: site.demo,
      latest: s.latest,
      index: s.index ?? NO_INDEX,
      health: s.health ?? NO_DEVICES,
      breaches: s.breaches ?? { open: 0 },
    },
  }
}

/** Every site in the given order; a site without an entry in `latest` gets `latest: null`. */
export function siteFeatureCollection(
  sites: readonly Site[],
  latest: ReadonlyMap<string, LatestSummary>,
): SiteFeatureCollection {
  return {
    type: 'FeatureCollection',
    features: sites.map((site) => siteFeature(site, latest.get(site.id) ?? null)),
  }
}
