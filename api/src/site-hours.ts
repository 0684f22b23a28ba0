import {
  DAY_MS,
  HOUR_MS,
  type HourBucket,
  hourPoint,
  type Metric,
  type Placement,
  type SiteHourAggregate,
  type TimeWindow,
} from '@skolluft/core'
import type { ReadingStore } from '@skolluft/storage'

/**
 * Metrics read for a site's rules and reports: the rules' pollutants (pm25, pm10, no2) and what the quality checks
 * need besides (pm1 for the pm1 > pm25 order check, rh for high humidity), as alerts/src/evaluator.ts reads them.
 */
export const SITE_HOUR_METRICS = ['pm1', 'pm25', 'pm10', 'no2', 'rh'] as const satisfies readonly Metric[]

/**
 * Hours read on either side of the window, so the quality checks see a stuck run that crosses its edge whole
 * (quality.ts STUCK_MIN_HOURS: at most 6 h); callers count only the window's own hours.
 */
export const QC_MARGIN_MS = DAY_MS

export type SiteSeries = Partial<Record<Metric, readonly SiteHourAggregate[]>>

/**
 * A site's hourly aggregates of SITE_HOUR_METRICS over `window` plus QC_MARGIN_MS on each side, per metric: one
 * ReadingStore.siteHourly read (the same points as one aggregateSeries per metric; a year and a half at most,
 * ~9 650 hourly points each).
 */
export async function readSiteHours(
  readings: Pick<ReadingStore, 'siteHourly'>,
  siteId: string,
  window: TimeWindow,
): Promise<SiteSeries> {
  const from = window.from - QC_MARGIN_MS
  const to = window.to + QC_MARGIN_MS
  const hourly = await readings.siteHourly({ siteId, metrics: SITE_HOUR_METRICS, from, to })
  const series: Partial<Record<Metric, readonly SiteHourAggregate[]>> = {}
  const parseTime = createTimeParser()
  for (const metric of SITE_HOUR_METRICS) {
    series[metric] = (hourly.get(metric) ?? []).map((p) => ({
      t: parseTime(p.t),
      mean: p.mean,
      min: p.min,
      max: p.max,
      n: p.n,
      expected: p.expected,
      coverage: p.coverage,
      valid: p.valid,
    }))
  }
  return series
}

/** Characters of a whole-hour ISO time as storage writes them (aggregation.ts createHourIsoFormatter). */
const HOUR_ISO_LENGTH = 24
const HOUR_ISO_TAIL = ':00:00.000Z'
const DIGIT_0 = 48

/**
 * Date.parse for hour starts `YYYY-MM-DDTHH:00:00.000Z`, parsing each day's date once (a year of five metrics is
 * ~48 000 times; Date.parse alone was a few ms per site). Same result as Date.parse: the date part still goes
 * through it, and anything not of that form (or an hour past 23) goes to it whole.
 */
function createTimeParser(): (iso: string) => number {
  let prefix = ''
  let dayStart = Number.NaN
  return (iso) => {
    if (iso.length !== HOUR_ISO_LENGTH || !iso.endsWith(HOUR_ISO_TAIL)) return Date.parse(iso)
    const tens = iso.charCodeAt(11) - DIGIT_0
    const ones = iso.charCodeAt(12) - DIGIT_0
    const hour = tens * 10 + ones
    if (!(tens >= 0 && tens <= 2 && ones >= 0 && ones <= 9 && hour <= 23)) return Date.parse(iso)
    if (prefix === '' || !iso.startsWith(prefix)) {
      prefix = iso.slice(0, 11)
      dayStart = Date.parse(`${prefix}00:00:00.000Z`)
    }
    return dayStart + hour * HOUR_MS
  }
}

/** A device with its placement history (storage DeviceRecord satisfies it). */
export interface PlacedDevice {
  readonly id: string
  readonly placements: readonly Placement[]
}

export interface SiteDeviceSplit {
  /** Devices with an indoor / outdoor placement at the site overlapping the window, by id. */
  readonly indoor: readonly string[]
  readonly outdoor: readonly string[]
  /** The site's placements overlapping the window widened by QC_MARGIN_MS (the hours that are read). */
  readonly placements: readonly Placement[]
}

const overlaps = (p: Placement, from: number, to: number): boolean => p.from < to && (p.to === null || p.to > from)

/** The site's devices in the window by placement (`indoor`); a device moved indoors mid-period is in both. */
export function splitSiteDevices(
  devices: readonly PlacedDevice[],
  siteId: string,
  window: TimeWindow,
): SiteDeviceSplit {
  const placements = devices.flatMap((d) =>
    d.placements.filter(
      (p) => p.siteId === siteId && overlaps(p, window.from - QC_MARGIN_MS, window.to + QC_MARGIN_MS),
    ),
  )
  const ids = (indoor: boolean) => [
    ...new Set(
      placements.filter((p) => p.indoor === indoor && overlaps(p, window.from, window.to)).map((p) => p.deviceId),
    ),
  ]
  return { indoor: ids(true).sort(), outdoor: ids(false).sort(), placements }
}

/**
 * The hourly aggregates of the readings the given placements' devices took at the site while so placed, combined
 * per hour as storage combines a site's devices (samples and expected samples add up: core aggregation.ts
 * `hourPoint`), over `window` plus QC_MARGIN_MS. One query per device and metric.
 */
export async function readPlacedHours(
  readings: Pick<ReadingStore, 'aggregateSeries'>,
  siteId: string,
  window: TimeWindow,
  placements: readonly Placement[],
): Promise<SiteSeries> {
  const from = window.from - QC_MARGIN_MS
  const to = window.to + QC_MARGIN_MS
  const byDevice = new Map<string, Placement[]>()
  for (const p of placements) byDevice.set(p.deviceId, [...(byDevice.get(p.deviceId) ?? []), p])
  const series: SiteSeries = {}
  for (const metric of SITE_HOUR_METRICS) {
    const buckets = new Map<number, HourBucket>()
    for (const [deviceId, own] of byDevice) {
      const points = await readings.aggregateSeries({
        siteId,
        deviceId,
        metric,
        every: '1h',
        from,
        to,
        limit: (to - from) / HOUR_MS,
      })
      for (const p of points) {
        const t = Date.parse(p.t)
        // An hour counts for the placement it started in (a move mid-hour goes with the earlier placement).
        if (p.mean === null || p.min === null || p.max === null) continue
        if (!own.some((pl) => pl.from <= t && (pl.to === null || t < pl.to))) continue
        const seen = buckets.get(t)
        buckets.set(
          t,
          seen === undefined
            ? { start: t, n: p.n, sum: p.mean * p.n, min: p.min, max: p.max, expected: p.expected }
            : {
                start: t,
                n: seen.n + p.n,
                sum: seen.sum + p.mean * p.n,
                min: Math.min(seen.min, p.min),
                max: Math.max(seen.max, p.max),
                expected: seen.expected + p.expected,
              },
        )
      }
    }
    series[metric] = [...buckets.values()]
      .sort((a, b) => a.start - b.start)
      .map((bucket) => ({ ...hourPoint(bucket), t: bucket.start }))
  }
  return series
}

export interface SiteAirHours {
  readonly split: SiteDeviceSplit
  /**
   * The series a report counts: with indoor AND outdoor devices in the window, the outdoor devices' hours only
   * (limit values are for outdoor air); otherwise every reading of the site (readSiteHours).
   */
  readonly series: SiteSeries
  /** Both sides, when the site had both kinds of device; null otherwise. */
  readonly indoorOutdoor: { readonly indoor: SiteSeries; readonly outdoor: SiteSeries } | null
}

/** A site's hours for a report, split by placement when it had indoor and outdoor devices (see SiteAirHours). */
export async function readSiteAirHours(
  readings: Pick<ReadingStore, 'aggregateSeries' | 'siteHourly'>,
  siteId: string,
  window: TimeWindow,
  devices: readonly PlacedDevice[],
): Promise<SiteAirHours> {
  const split = splitSiteDevices(devices, siteId, window)
  if (split.indoor.length === 0 || split.outdoor.length === 0) {
    return { split, series: await readSiteHours(readings, siteId, window), indoorOutdoor: null }
  }
  const outdoor = await readPlacedHours(
    readings,
    siteId,
    window,
    split.placements.filter((p) => !p.indoor),
  )
  const indoor = await readPlacedHours(
    readings,
    siteId,
    window,
    split.placements.filter((p) => p.indoor),
  )
  return { split, series: outdoor, indoorOutdoor: { indoor, outdoor } }
}
