import { type EaqiPollutant, GUIDELINE_LINES, type GuidelineLine, isEaqiPollutant } from '@skolluft/core'
import type { Translate } from './i18n.ts'

/**
 * Which periods of panel charts there are, what they ask the API for, and which guideline lines they
 * draw. A line applies to one averaging period (core guidelines.ts): hourly charts show the hour
 * limits and, for reference, the day values; daily charts show the day values; the year chart also
 * shows the annual values.
 */
export const CHART_RANGES = ['24h', '7d', '30d', '1y'] as const
export type ChartRange = (typeof CHART_RANGES)[number]
export type ChartEvery = 'raw' | '1h' | '1d'

const HOUR_MS = 3_600_000
const DAY_MS = 24 * HOUR_MS

interface RangeSpec {
  readonly spanMs: number
  /** Resolution asked for when raw readings are not wanted or not allowed. */
  readonly every: Exclude<ChartEvery, 'raw'>
  /** Whether a caller who may read raw readings gets them (24 h of raw readings fit the API's point cap). */
  readonly raw: boolean
}

export const RANGE_SPECS: Readonly<Record<ChartRange, RangeSpec>> = {
  '24h': { spanMs: DAY_MS, every: '1h', raw: true },
  '7d': { spanMs: 7 * DAY_MS, every: '1h', raw: false },
  '30d': { spanMs: 30 * DAY_MS, every: '1h', raw: false },
  '1y': { spanMs: 365 * DAY_MS, every: '1d', raw: false },
}

export interface SeriesRequest {
  readonly from: number
  readonly to: number
  readonly every: ChartEvery
}

export function seriesRequest(range: ChartRange, now: number, preferRaw: boolean): SeriesRequest {
  const spec = RANGE_SPECS[range]
  return { from: now - spec.spanMs, to: now, every: preferRaw && spec.raw ? 'raw' : spec.every }
}

export function seriesUrl(siteId: string, metric: string, request: SeriesRequest): string {
  const query = new URLSearchParams({
    metric,
    every: request.every,
    from: new Date(request.from).toISOString(),
    to: new Date(request.to).toISOString(),
  })
  return `/api/v1/sites/${encodeURIComponent(siteId)}/series?${query.toString()}`
}

/** Guideline lines for a chart of `metric` at resolution `every` over `range` (none for temperature etc.). */
export function chartLines(metric: string, every: ChartEvery, range: ChartRange): GuidelineLine[] {
  if (!isEaqiPollutant(metric)) return []
  const pollutant: EaqiPollutant = metric
  const periods = new Set<GuidelineLine['period']>(every === '1d' ? ['day'] : ['hour', 'day'])
  if (range === '1y') periods.add('year')
  return GUIDELINE_LINES.filter((line) => line.pollutant === pollutant && periods.has(line.period))
}

/** Names of the sources as printed on a chart (proper names, the same in both languages). */
export const SOURCE_NAMES: Readonly<Record<GuidelineLine['source'], string>> = {
  who2021: 'WHO 2021',
  eu2008: 'EU 2008/50',
  eu2030: 'EU 2030',
}

/** "WHO 2021 dygn" / "WHO 2021 24 h": the source and the averaging period in the page's language. */
export function lineLabel(t: Translate, line: GuidelineLine): string {
  return `${SOURCE_NAMES[line.source]} ${t(`period_${line.period}`)}`
}

/**
 * The lines the y scale must reach: the short-term ones (hour, day), which is what hourly and daily
 * values are compared with; annual values are drawn only when they fall inside the scale anyway.
 */
export function scaleLines(lines: readonly GuidelineLine[]): readonly GuidelineLine[] {
  const shortTerm = lines.filter((l) => l.period !== 'year')
  return shortTerm.length > 0 ? shortTerm : lines
}
