import { DAILY_MIN_VALID_HOURS, HOUR_MS, REGULATORY_DAY_OFFSET_MS, regulatoryDayStart } from './aggregation.ts'
import type { PeriodValue } from './incidents.ts'
import { METRICS, type Metric } from './metrics.ts'
import { type QcHour, type QualityIssue, qualityIssues } from './quality.ts'
import type { ThresholdPeriod } from './thresholds.ts'

/**
 * From one site's hourly aggregates of one pollutant to the period values a rule is evaluated on
 * (incidents.ts `PeriodValue`). Pure. The rules (air-quality reference §3, §5.2):
 * - An hour counts only when it is valid (≥ 75 % of its expected samples), FINAL, and free of quality issues
 *   (quality.ts: stuck, out of range, high humidity, PM order): suspect data never opens or closes an incident.
 * - FINAL: every expected sample arrived, or the hour ended at least `FINAL_GRACE_MS` ago. Evaluating an hour
 *   that is still filling would alert on a partial mean; waiting for the end of the hour plus a grace lets the
 *   reading that completes the hour trigger the evaluation at once (issue 4: queued within 5 s of it).
 * - Day (UTC+1 calendar day, §3): mean of the day's counted hourly means, valid with ≥ 18 of them; known once
 *   every hour of the day is final.
 * - Running 24 h: at each final hour h, the mean of the counted hourly means of h−23 … h, valid with ≥ 18.
 * - Year: not evaluated as incidents (an annual mean is a report, see `exceedances`).
 */

/** After the end of an hour, how long late samples may still complete it before it is final. */
export const FINAL_GRACE_MS = 5 * 60_000

export interface RuleHour {
  /** Hour start, epoch ms. */
  readonly t: number
  readonly mean: number | null
  /** Fraction 0–1 of the expected samples that arrived. */
  readonly coverage: number
  readonly valid: boolean
  /** Quality issues of this hour (quality.ts); an hour with any is not counted. */
  readonly suspect: boolean
}

/** One hourly aggregate of a site as storage gives it, with its start as epoch ms. */
export interface SiteHourAggregate extends QcHour {
  readonly coverage: number
  readonly valid: boolean
}

export interface SiteRuleHours {
  /** Per metric, the hours as rules see them: suspect when quality.ts finds any issue in them. */
  readonly hours: ReadonlyMap<Metric, readonly RuleHour[]>
  /** quality.ts issues per metric and hour (pm1, pm25, pm10, no2). */
  readonly issues: ReadonlyMap<Metric, ReadonlyMap<number, readonly QualityIssue[]>>
}

/**
 * One site's hourly aggregates (every metric the checks need: PM, NO2 and RH) with the quality checks applied.
 * The one place where "which hours count" is decided, for live evaluation and for the yearly exceedance counts.
 */
export function siteRuleHours(series: Partial<Record<Metric, readonly SiteHourAggregate[]>>): SiteRuleHours {
  const issues = qualityIssues(series)
  const hours = new Map<Metric, RuleHour[]>()
  for (const metric of METRICS) {
    const points = series[metric]
    if (points === undefined) continue
    const flagged = issues.get(metric)
    hours.set(
      metric,
      points.map((p) => ({
        t: p.t,
        mean: p.mean,
        coverage: p.coverage,
        valid: p.valid,
        suspect: (flagged?.get(p.t)?.length ?? 0) > 0,
      })),
    )
  }
  return { hours, issues }
}

/** Whether an hour can no longer change in normal operation (late data may still change it, as late data). */
export function hourIsFinal(hour: Pick<RuleHour, 't' | 'coverage'>, now: number): boolean {
  return hour.coverage >= 1 || hour.t + HOUR_MS + FINAL_GRACE_MS <= now
}

/** The hourly value that counts, or null (invalid, suspect, or not yet final). */
function countedMean(hour: RuleHour, now: number): number | null {
  if (!hour.valid || hour.suspect || hour.mean === null || !hourIsFinal(hour, now)) return null
  return hour.mean
}

/**
 * Period values for one rule period over the hours given (ordered by t, any gaps). Periods without data are
 * absent or null; both are gaps to the incident state machine. Periods that are not final yet are left out,
 * so an incident can neither open nor close on them.
 */
export function periodValues(hours: readonly RuleHour[], period: ThresholdPeriod, now: number): PeriodValue[] {
  switch (period) {
    case 'hour':
      return hours.filter((h) => hourIsFinal(h, now)).map((h) => ({ t: h.t, value: countedMean(h, now) }))
    case 'day':
      return dailyValues(hours, now)
    case 'running24h':
      return running24hValues(hours, now)
    case 'year':
      return []
  }
}

function dailyValues(hours: readonly RuleHour[], now: number): PeriodValue[] {
  const days = new Map<number, { sum: number; count: number }>()
  for (const hour of hours) {
    const day = regulatoryDayStart(hour.t)
    const entry = days.get(day) ?? { sum: 0, count: 0 }
    days.set(day, entry)
    const value = countedMean(hour, now)
    if (value === null) continue
    entry.sum += value
    entry.count += 1
  }
  const values: PeriodValue[] = []
  for (const [t, { sum, count }] of [...days].sort((a, b) => a[0] - b[0])) {
    // Final once its last hour is final by time; a day is never complete early (24 hours of devices rarely are).
    if (!hourIsFinal({ t: t + 23 * HOUR_MS, coverage: 0 }, now)) continue
    values.push({ t, value: count >= DAILY_MIN_VALID_HOURS ? sum / count : null })
  }
  return values
}

function running24hValues(hours: readonly RuleHour[], now: number): PeriodValue[] {
  const counted = new Map<number, number>()
  for (const hour of hours) {
    const value = countedMean(hour, now)
    if (value !== null) counted.set(hour.t, value)
  }
  const values: PeriodValue[] = []
  for (const hour of hours) {
    if (!hourIsFinal(hour, now)) continue
    let sum = 0
    let count = 0
    for (let i = 0; i < 24; i++) {
      const value = counted.get(hour.t - i * HOUR_MS)
      if (value === undefined) continue
      sum += value
      count += 1
    }
    values.push({ t: hour.t, value: count >= DAILY_MIN_VALID_HOURS ? sum / count : null })
  }
  return values
}

/**
 * How far before the first changed hour a re-evaluation must start so the state machine sees every run that can
 * reach into it: the rule's persistence in periods plus one period, for a day rule in whole days, for a running
 * mean plus its 24 hours. Stored incidents that overlap the window extend it further (the caller's job).
 */
export function evaluationLookbackMs(period: ThresholdPeriod, persistence: number): number {
  switch (period) {
    case 'hour':
      return (persistence + 1) * HOUR_MS
    case 'running24h':
      return (persistence + 24) * HOUR_MS
    case 'day':
      return (persistence + 1) * 24 * HOUR_MS + REGULATORY_DAY_OFFSET_MS
    case 'year':
      return 0
  }
}
