import { DAY_MS, HOUR_MS, type Metric, type SiteHourAggregate, type TimeWindow } from '@skolluft/core'
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

/** A site's hourly aggregates of SITE_HOUR_METRICS over `window` plus QC_MARGIN_MS on each side, per metric. */
export async function readSiteHours(
  readings: Pick<ReadingStore, 'aggregateSeries'>,
  siteId: string,
  window: TimeWindow,
): Promise<Partial<Record<Metric, readonly SiteHourAggregate[]>>> {
  const from = window.from - QC_MARGIN_MS
  const to = window.to + QC_MARGIN_MS
  const series: Partial<Record<Metric, readonly SiteHourAggregate[]>> = {}
  // One query per metric (a year and a half at most: ~9 650 hourly points each); SQLite answers synchronously,
  // so in turn.
  for (const metric of SITE_HOUR_METRICS) {
    const points = await readings.aggregateSeries({
      siteId,
      metric,
      every: '1h',
      from,
      to,
      limit: (to - from) / HOUR_MS,
    })
    series[metric] = points.map((p) => ({ ...p, t: Date.parse(p.t) }))
  }
  return series
}
