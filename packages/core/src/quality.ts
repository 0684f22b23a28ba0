import { HOUR_MS } from './aggregation.ts'
import type { Metric } from './metrics.ts'

/**
 * Hour-level quality checks over ONE site's hourly aggregates (air-quality reference §4.1 check pipeline and
 * §5.2 "suppress alerts when the sensor's QC state is suspect … and instead raise a maintenance ticket").
 * Pure: the caller passes the hourly means with their min, max and sample count; the result says which
 * pollutant hours are suspect. Suspect hours are excluded from breach evaluation and reported to caretakers.
 *
 * Per-sample checks (physical range, negative PM) already run at ingest (metrics.ts METRIC_INFO); these are the
 * checks that need a whole hour, or several hours, or two metrics side by side.
 */
export const QUALITY_ISSUES = ['stuck', 'out_of_range', 'high_humidity', 'pm_order'] as const
export type QualityIssue = (typeof QUALITY_ISSUES)[number]

/** The metrics quality issues are reported for (the pollutants; temperature and RH only inform them). */
export const QC_POLLUTANTS = ['pm1', 'pm25', 'pm10', 'no2'] as const satisfies readonly Metric[]
export type QcPollutant = (typeof QC_POLLUTANTS)[number]

export interface QcHour {
  /** Hour start, epoch ms. */
  readonly t: number
  readonly mean: number | null
  readonly min: number | null
  readonly max: number | null
  /** Samples in the hour. */
  readonly n: number
}

/** Hourly series per metric of one site, each ordered by t (hour start, epoch ms). */
export type SiteHourSeries = Partial<Record<Metric, readonly QcHour[]>>

/**
 * Stuck / flat-line: hours of identical non-zero readings in a row before they are flagged. Reference §4.1:
 * "N is UNVERIFIED – suggest ≥ 2 h of identical non-zero readings for PM, ≥ 6 h for NO2". An electrochemical
 * NO2 cell in clean air can sit on one value for hours, hence the longer run. UNVERIFIED there, so here too.
 */
export const STUCK_MIN_HOURS: Readonly<Record<QcPollutant, number>> = { pm1: 2, pm25: 2, pm10: 2, no2: 6 }

/** An hour needs at least this many samples to show zero variance (one sample has min === max trivially). */
export const STUCK_MIN_SAMPLES = 2

/**
 * Upper end of the optical PM sensor's range, µg/m³: reference §4.1 "PM > sensor max (e.g. 500 µg/m³ for
 * Plantower PMS5003 class) → invalid". Ingest keeps samples up to METRIC_INFO.max (1000/2000) so a real
 * smoke event is stored; an hour whose max passes 500 is outside what the sensor can measure and is suspect.
 */
export const PM_SENSOR_MAX_UG_M3 = 500

/**
 * Lowest plausible NO2 HOURLY mean, µg/m³. Electrochemical cells read slightly negative around zero; ingest
 * keeps single samples down to −20 (METRIC_INFO noise floor). Averaging ~60 one-minute samples shrinks
 * independent noise by √60 ≈ 7.7, to about −20 / 7.7 ≈ −2.6; a mean below −5 (≈ −2.6 ppb at the EU factor
 * 1.9125, reference §4.4) is therefore not noise but a baseline offset, the drift and temperature effects of
 * reference §4.3. Engineering choice (no primary source): UNVERIFIED, tune on co-location data.
 */
export const NO2_MIN_HOURLY_MEAN_UG_M3 = -5

/**
 * Relative humidity (%) above which an optical PM hour is suspect. Reference §5.2 lists "RH > 90 % without
 * correction" as a suspect QC state. §4.1 notes the bias begins near 70 % (SDS011 range), but Lund nights are
 * often above 80–90 % in autumn and winter (§6.3), so flagging at 70 would blank most nights; 70–90 % is for
 * a humidity correction (§4.2), not for suppression. NO2 is electrochemical and is not flagged by this check.
 */
export const HIGH_HUMIDITY_PERCENT = 90

/**
 * PM ordering (reference §4.1 "PM1 ≤ PM2.5 ≤ PM10, mass fractions are nested"): a finer fraction whose hourly
 * mean exceeds the coarser one by more than BOTH tolerances flags both. The tolerances absorb rounding and
 * the sensor's own noise at low concentrations (1 µg/m³) and proportional error at high ones (10 %);
 * engineering choices, UNVERIFIED.
 */
export const PM_ORDER_MIN_EXCESS_UG_M3 = 1
export const PM_ORDER_MIN_EXCESS_RATIO = 0.1

const PM_METRICS = ['pm1', 'pm25', 'pm10'] as const

type IssueMap = Map<Metric, Map<number, QualityIssue[]>>

function flag(issues: IssueMap, metric: Metric, t: number, issue: QualityIssue): void {
  let hours = issues.get(metric)
  if (hours === undefined) {
    hours = new Map()
    issues.set(metric, hours)
  }
  const list = hours.get(t)
  if (list === undefined) hours.set(t, [issue])
  else if (!list.includes(issue)) list.push(issue)
}

function sortedHours(hours: readonly QcHour[] | undefined): QcHour[] {
  return [...(hours ?? [])].sort((a, b) => a.t - b.t)
}

/** The identical non-zero value of a flat hour, or null when the hour cannot be part of a stuck run. */
function flatValue(h: QcHour): number | null {
  if (h.n < STUCK_MIN_SAMPLES || h.min === null || h.max === null) return null
  if (h.min !== h.max || h.min === 0) return null
  return h.min
}

function checkStuck(issues: IssueMap, metric: QcPollutant, hours: readonly QcHour[]): void {
  const minHours = STUCK_MIN_HOURS[metric]
  let run: QcHour[] = []
  let runValue: number | null = null
  const closeRun = (): void => {
    if (run.length >= minHours) for (const h of run) flag(issues, metric, h.t, 'stuck')
    run = []
    runValue = null
  }
  for (const h of hours) {
    const value = flatValue(h)
    const last = run[run.length - 1]
    const continues = value !== null && last !== undefined && h.t - last.t === HOUR_MS && value === runValue
    if (!continues) closeRun()
    if (value !== null) {
      run.push(h)
      runValue = value
    }
  }
  closeRun()
}

function checkRange(issues: IssueMap, metric: QcPollutant, hours: readonly QcHour[]): void {
  for (const h of hours) {
    if (metric === 'no2') {
      if (h.mean !== null && h.mean < NO2_MIN_HOURLY_MEAN_UG_M3) flag(issues, metric, h.t, 'out_of_range')
      continue
    }
    const high = h.max ?? h.mean
    const low = h.min ?? h.mean
    // PM < 0 is rejected per sample at ingest (reference §4.1); checked again so the rule holds on any input.
    if ((high !== null && high > PM_SENSOR_MAX_UG_M3) || (low !== null && low < 0)) {
      flag(issues, metric, h.t, 'out_of_range')
    }
  }
}

function checkHumidity(issues: IssueMap, series: SiteHourSeries): void {
  const humid = new Set<number>()
  for (const h of series.rh ?? []) {
    if (h.mean !== null && h.mean > HIGH_HUMIDITY_PERCENT) humid.add(h.t)
  }
  if (humid.size === 0) return
  for (const metric of PM_METRICS) {
    for (const h of series[metric] ?? []) {
      if (humid.has(h.t) && h.mean !== null) flag(issues, metric, h.t, 'high_humidity')
    }
  }
}

function checkOrder(issues: IssueMap, series: SiteHourSeries, finer: QcPollutant, coarser: QcPollutant): void {
  const coarse = new Map<number, number>()
  for (const h of series[coarser] ?? []) if (h.mean !== null) coarse.set(h.t, h.mean)
  for (const h of series[finer] ?? []) {
    const c = coarse.get(h.t)
    if (h.mean === null || c === undefined) continue
    const excess = h.mean - c
    if (excess > PM_ORDER_MIN_EXCESS_UG_M3 && excess > PM_ORDER_MIN_EXCESS_RATIO * c) {
      flag(issues, finer, h.t, 'pm_order')
      flag(issues, coarser, h.t, 'pm_order')
    }
  }
}

/**
 * Issues per pollutant metric (pm1, pm25, pm10, no2) per hour start; metrics and hours without issues are
 * absent. Each list is in QUALITY_ISSUES order without duplicates. Series need not be sorted (they are sorted
 * here); hours are consecutive only when their starts are exactly one hour apart.
 *
 * - stuck: a run of consecutive hours, each with ≥ 2 samples and min === max, all the same non-zero value,
 *   at least STUCK_MIN_HOURS long → every hour of the run. Zero is not "stuck": clean air reads 0.
 * - out_of_range: PM hour max > 500 µg/m³ (or min < 0); NO2 hour mean < −5 µg/m³.
 * - high_humidity: the site's RH hourly mean > 90 % → the PM hours (pm1, pm25, pm10) of that hour, never NO2.
 * - pm_order: pm25 mean above pm10 mean (or pm1 above pm25) by > 1 µg/m³ and > 10 % → both metrics.
 */
export function qualityIssues(series: SiteHourSeries): Map<Metric, Map<number, QualityIssue[]>> {
  const issues: IssueMap = new Map()
  for (const metric of QC_POLLUTANTS) {
    const hours = sortedHours(series[metric])
    checkStuck(issues, metric, hours)
    checkRange(issues, metric, hours)
  }
  checkHumidity(issues, series)
  checkOrder(issues, series, 'pm25', 'pm10')
  checkOrder(issues, series, 'pm1', 'pm25')
  for (const hours of issues.values()) {
    for (const list of hours.values()) list.sort((a, b) => QUALITY_ISSUES.indexOf(a) - QUALITY_ISSUES.indexOf(b))
  }
  return issues
}
