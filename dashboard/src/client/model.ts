import { type EaqiLevel, type EaqiPollutant, eaqiLevel, isMetric, type Metric } from '@skolluft/core'
import type { DeviceData, ReadingData, SiteFeatureData } from './schemas.ts'

/**
 * The dashboard's view of the sites, free of the DOM so it can be tested in Node: one mutable
 * SiteState per site (live readings change `latest` in place, 10 000 sites do not get copied per
 * message), the filters, the sort order of the list, and the value a marker shows.
 */

/**
 * A value older than this says nothing about the air now and is not coloured. Same as core's
 * INDEX_MAX_AGE_MS (geojson.ts; model.test.ts checks they agree): importing it from there would pull
 * the full zod into the browser bundle.
 */
export const INDEX_MAX_AGE_MS = 3 * 3_600_000

export interface SiteLatest {
  /** Epoch ms of the newest value. */
  ts: number
  values: Partial<Record<Metric, number>>
  /** Epoch ms per metric (a metric that stopped keeps its older time). */
  times: Partial<Record<Metric, number>>
}

export interface SiteHealth {
  readonly devices: number
  readonly offline: number
  readonly suspect: number
  readonly lastSeen: number | null
}

export interface SiteState {
  readonly id: string
  readonly name: string
  readonly kind: string
  readonly locality: string | null
  readonly address: string | null
  readonly demo: boolean
  readonly lat: number
  readonly lon: number
  /** Normalised name for search. */
  readonly searchKey: string
  latest: SiteLatest | null
  health: SiteHealth | null
  openBreaches: number
  /** Present only when the API showed this caller the devices (GET /sites/:id). */
  devices: readonly DeviceData[] | null
}

/** What a marker shows: the value and its EAQI level, or nulls when there is nothing current. */
export interface MarkerReading {
  readonly value: number | null
  readonly band: EaqiLevel | null
}

export const NO_READING: MarkerReading = { value: null, band: null }

/** Lower case without diacritics, so "angen" finds "Ängen". */
export function normalizeText(text: string): string {
  return text.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase().trim()
}

function parseTime(iso: string | null | undefined): number | null {
  if (iso === null || iso === undefined) return null
  const t = Date.parse(iso)
  return Number.isNaN(t) ? null : t
}

function metricRecord<T, U>(
  record: Readonly<Record<string, T>>,
  map: (value: T) => U | null,
): Partial<Record<Metric, U>> {
  const out: Partial<Record<Metric, U>> = {}
  for (const [key, value] of Object.entries(record)) {
    if (!isMetric(key)) continue
    const mapped = map(value)
    if (mapped !== null) out[key] = mapped
  }
  return out
}

export function latestFrom(latest: SiteFeatureData['properties']['latest']): SiteLatest | null {
  if (latest === null || latest === undefined) return null
  const ts = parseTime(latest.ts)
  if (ts === null) return null
  return {
    ts,
    values: metricRecord(latest.values, (v) => v),
    times: metricRecord(latest.times ?? {}, (v) => parseTime(v)),
  }
}

export function siteFromFeature(feature: SiteFeatureData): SiteState {
  const p = feature.properties
  const [lon, lat] = feature.geometry.coordinates
  return {
    id: feature.id,
    name: p.name,
    kind: p.kind,
    locality: p.locality ?? null,
    address: p.address ?? null,
    demo: p.demo === true,
    lat,
    lon,
    searchKey: normalizeText(p.name),
    latest: latestFrom(p.latest),
    health:
      p.health === null || p.health === undefined
        ? null
        : {
            devices: p.health.devices,
            offline: p.health.offline,
            suspect: p.health.suspect,
            lastSeen: parseTime(p.health.last_seen),
          },
    openBreaches: p.breaches?.open ?? 0,
    devices: p.devices ?? null,
  }
}

/**
 * Server time minus client time, from a served `latest` (its `ts` was `age_s` old when served), so
 * ages stay right on a device whose clock is off. Zero when no site has data.
 */
export function clockOffsetMs(features: readonly SiteFeatureData[], clientNow: number): number {
  for (const f of features) {
    const latest = f.properties.latest
    if (latest === null || latest === undefined) continue
    const ts = parseTime(latest.ts)
    if (ts !== null) return ts + latest.age_s * 1000 - clientNow
  }
  return 0
}

/** Merges one live reading into a site; per metric, an older reading never replaces a newer value. */
export function applyReading(site: SiteState, reading: ReadingData): boolean {
  const ts = parseTime(reading.ts)
  if (ts === null) return false
  const latest: SiteLatest = site.latest ?? { ts, values: {}, times: {} }
  let changed = false
  for (const [key, value] of Object.entries(reading.values)) {
    if (!isMetric(key)) continue
    const known = latest.times[key] ?? latest.ts
    if (latest.values[key] !== undefined && known > ts) continue
    latest.values[key] = value
    latest.times[key] = ts
    changed = true
  }
  if (!changed) return false
  if (ts > latest.ts || site.latest === null) latest.ts = ts
  site.latest = latest
  return true
}

/** Epoch ms of the value a marker of `pollutant` would show, or null. */
export function valueTime(site: SiteState, pollutant: EaqiPollutant): number | null {
  const latest = site.latest
  if (latest === null || latest.values[pollutant] === undefined) return null
  return latest.times[pollutant] ?? latest.ts
}

/** The live marker of a site: its latest value of `pollutant` and that value's EAQI level, if current. */
export function liveReading(site: SiteState, pollutant: EaqiPollutant, now: number): MarkerReading {
  const value = site.latest?.values[pollutant]
  const time = valueTime(site, pollutant)
  if (value === undefined || time === null || now - time > INDEX_MAX_AGE_MS) return NO_READING
  return { value, band: eaqiLevel(pollutant, value) }
}

/** A site's marker at hour `index` of a replay (hourly means; null hours have no band). */
export function replayReading(
  replay: { readonly sites: Readonly<Record<string, readonly (number | null)[]>> },
  siteId: string,
  index: number,
  pollutant: EaqiPollutant,
): MarkerReading {
  const value = replay.sites[siteId]?.[index]
  if (value === null || value === undefined) return NO_READING
  return { value, band: eaqiLevel(pollutant, value) }
}

export interface Filters {
  /** null = every kind. */
  readonly kind: string | null
  readonly locality: string | null
  readonly breachesOnly: boolean
  readonly offlineOnly: boolean
  readonly query: string
}

export const NO_FILTERS: Filters = { kind: null, locality: null, breachesOnly: false, offlineOnly: false, query: '' }

export function siteMatches(site: SiteState, filters: Filters): boolean {
  if (filters.kind !== null && site.kind !== filters.kind) return false
  if (filters.locality !== null && site.locality !== filters.locality) return false
  if (filters.breachesOnly && site.openBreaches <= 0) return false
  if (filters.offlineOnly && (site.health === null || site.health.offline <= 0)) return false
  const query = normalizeText(filters.query)
  return query === '' || site.searchKey.includes(query)
}

export function filterSites(sites: readonly SiteState[], filters: Filters): SiteState[] {
  return sites.filter((site) => siteMatches(site, filters))
}

/** Distinct non-null values, sorted for people (Swedish collation puts Å Ä Ö last). */
export function distinctSorted(values: Iterable<string | null>, collator: Intl.Collator): string[] {
  const set = new Set<string>()
  for (const v of values) if (v !== null && v !== '') set.add(v)
  return [...set].sort(collator.compare)
}

export const SORT_KEYS = ['name', 'kind', 'locality', 'value', 'band', 'age', 'status'] as const
export type SortKey = (typeof SORT_KEYS)[number]
export type SortDir = 'ascending' | 'descending'

/** Higher is worse: an open breach, then an offline sensor, then a suspect one; unknown lowest. */
export function statusRank(site: SiteState): number {
  if (site.openBreaches > 0) return 4
  if (site.health === null) return 0
  if (site.health.offline > 0) return 3
  if (site.health.suspect > 0) return 2
  return 1
}

export interface SortContext {
  readonly collator: Intl.Collator
  readonly reading: (site: SiteState) => MarkerReading
  /** Measurement time of the value in the list (epoch ms), null when there is none. */
  readonly time: (site: SiteState) => number | null
  /** Display name of a kind. */
  readonly kindLabel: (kind: string) => string
}

type SortValue = string | number | null

function sortValue(site: SiteState, key: SortKey, ctx: SortContext): SortValue {
  switch (key) {
    case 'name':
      return site.name
    case 'kind':
      return ctx.kindLabel(site.kind)
    case 'locality':
      return site.locality
    case 'value':
      return ctx.reading(site).value
    case 'band':
      return ctx.reading(site).band
    case 'age':
      return ctx.time(site)
    case 'status':
      return statusRank(site)
  }
}

/**
 * Sorted copy; ties keep name order. Empty values (no data, no locality) go last in both directions,
 * so sorting never hides the sites that have data behind those that have none.
 */
export function sortSites(sites: readonly SiteState[], key: SortKey, dir: SortDir, ctx: SortContext): SiteState[] {
  const sign = dir === 'ascending' ? 1 : -1
  const keyed = sites.map((site) => ({ site, value: sortValue(site, key, ctx) }))
  keyed.sort((a, b) => {
    if (a.value === null || b.value === null) {
      if (a.value !== b.value) return a.value === null ? 1 : -1
    } else if (a.value !== b.value) {
      const c =
        typeof a.value === 'string' || typeof b.value === 'string'
          ? ctx.collator.compare(String(a.value), String(b.value))
          : a.value - b.value
      if (c !== 0) return sign * c
    }
    return ctx.collator.compare(a.site.name, b.site.name) || (a.site.id < b.site.id ? -1 : 1)
  })
  return keyed.map((k) => k.site)
}

/**
 * After a refetch: the fresh summary may be a few seconds older than live readings already applied
 * (the API serves a snapshot), so per metric the newer of the two values wins.
 */
export function keepNewerLatest(fresh: SiteState, old: SiteState): void {
  const prev = old.latest
  if (prev === null) return
  if (fresh.latest === null) {
    fresh.latest = { ts: prev.ts, values: { ...prev.values }, times: { ...prev.times } }
    return
  }
  const next = fresh.latest
  for (const [key, value] of Object.entries(prev.values)) {
    if (!isMetric(key) || value === undefined) continue
    const prevTime = prev.times[key] ?? prev.ts
    const nextTime = next.values[key] === undefined ? Number.NEGATIVE_INFINITY : (next.times[key] ?? next.ts)
    if (prevTime > nextTime) {
      next.values[key] = value
      next.times[key] = prevTime
    }
  }
  if (prev.ts > next.ts) next.ts = prev.ts
}

/** A site is all demo data: the page says so once, in a banner. */
export function allDemo(sites: readonly SiteState[]): boolean {
  return sites.length > 0 && sites.every((s) => s.demo)
}
