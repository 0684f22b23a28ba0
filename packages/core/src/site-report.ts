import { DAY_MS, HOUR_MS, REGULATORY_DAY_OFFSET_MS, regulatoryDayStart } from './aggregation.ts'
import {
  type AnnualMean,
  countableValues,
  countExceedances,
  profileYearWindow,
  type TimeWindow,
} from './annual-exceedances.ts'
import { ANNUAL_MIN_COVERAGE, type PeriodValue } from './incidents.ts'
import type { Metric } from './metrics.ts'
import { type RuleHour, type SiteHourAggregate, siteRuleHours } from './rule-values.ts'
import type { ThresholdProfile, ThresholdRule } from './thresholds.ts'

/**
 * The numbers of one site's period report (issue 7: "mean levels, exceedances of each selected rule with the
 * allowed number, worst hours and days, data coverage next to every number"), for any period [from, to): a month,
 * a school term, a year. Pure. Every number is built by the code the yearly exceedance counts use
 * (annual-exceedances.ts, rule-values.ts), so a report and `GET /sites/:id/exceedances` agree for a year.
 *
 * Definitions (air-quality reference §3 unless stated):
 * - Counted hour: an hourly mean that is valid (≥ 75 % of its expected samples, aggregation.ts
 *   HOURLY_MIN_COVERAGE), free of quality issues (quality.ts, via rule-values.ts `siteRuleHours`) and final at
 *   `now` (rule-values.ts `hourIsFinal`). Only counted hours enter any number below.
 * - Period mean of a metric: the mean of the counted hourly means whose start lies in the period (as the annual
 *   mean, annual-exceedances.ts `annualMean`). Coverage = counted hours / hours of the period.
 * - Day: calendar day in fixed UTC+1 (Swedish normal time, §3 recommendation); its mean is the mean of its
 *   counted hourly means, valid with ≥ 18 of them (aggregation.ts DAILY_MIN_VALID_HOURS, 2024/2881 Annex V).
 *   A day's coverage = counted hours / 24.
 * - Exceedance: a valid period mean STRICTLY greater than the rule's value, counted for `hour` and `day` rules
 *   (incidents.ts `exceedances`); persistence and hysteresis govern incidents, not counts. Running 24-h rules are
 *   never counted (§3: running means are for display only) and are left out of the report.
 * - `year` rules (annual limit values) are compared with the period mean; the comparison is a judgement on the
 *   rule only when the period is a whole calendar year (UTC+1), otherwise it is for orientation (`exceeded` null).
 * - Allowed number: every rule's `allowedPerYear` is defined per CALENDAR YEAR (§1: "n/yr"). When the period is
 *   not exactly one calendar year it is reported unchanged with `allowedForYearOnly: true`, never scaled: a
 *   month's share of 35 days would be meaningless for episodic pollution (PM10 peaks in spring, §6.2).
 * - Coverage below 85 % marks a number as indicative (`sufficientCoverage` false; 2024/2881 Annex V, §3, the
 *   threshold for annual and short-term means alike). Low-cost data are indicative anyway (§3, last rule).
 * - Worst hours / days: the N highest counted hourly means / valid daily means of the period, highest first;
 *   equal values in time order (earlier first), so the order is deterministic.
 * - A profile counts only over the part of the period in which it applies (thresholds.ts validFrom/validTo,
 *   annual-exceedances.ts `profileYearWindow`); expected periods are those of that part.
 */

/** Worst hours and days listed when the caller does not say: enough for a printed page (editorial choice). */
export const DEFAULT_WORST_COUNT = 5

/** Hours in a regulatory day (fixed UTC+1, no daylight saving: every day has 24). */
const HOURS_PER_DAY = DAY_MS / HOUR_MS

export class SiteReportError extends Error {
  readonly code: 'EMPTY_WINDOW' | 'WINDOW_NOT_DAY_ALIGNED' | 'INVALID_WORST_COUNT'
  constructor(code: SiteReportError['code'], message: string) {
    super(message)
    this.name = 'SiteReportError'
    this.code = code
  }
}

export interface SiteReportInput {
  readonly siteId: string
  /** The period [from, to), epoch ms, on UTC+1 day boundaries (a month, term or year is). */
  readonly window: TimeWindow
  /** Metrics reported (means, worst hours and days; rules on these pollutants). */
  readonly metrics: readonly Metric[]
  /**
   * The site's hourly aggregates per metric, as `siteRuleHours` takes them. Pass rh and pm1 too when available
   * (humidity and PM-order checks), and preferably a day on either side of the window so a stuck run crossing its
   * edge is seen whole (as api/src/routes/exceedances.ts does); only hours inside the window are counted.
   */
  readonly series: Partial<Record<Metric, readonly SiteHourAggregate[]>>
  /** The selected threshold profiles (e.g. the deployment's evaluated profiles). */
  readonly profiles: readonly ThresholdProfile[]
  /** Epoch ms; hours not final at `now` are not counted yet. */
  readonly now: number
  /** How many worst hours and days to list; default DEFAULT_WORST_COUNT. */
  readonly worstCount?: number
}

/** One hour or day among the worst of the period. */
export interface WorstPeriod {
  /** Start of the hour, or of the UTC+1 day (23:00 UTC the evening before), epoch ms. */
  readonly t: number
  /** µg/m³ (or the metric's unit). */
  readonly value: number
  /** Hour: fraction of its expected samples that arrived. Day: counted hours / 24. */
  readonly coverage: number
}

export interface MetricReport {
  readonly metric: Metric
  /** Mean of the counted hourly means; null when no hour counted. */
  readonly mean: number | null
  readonly countedHours: number
  readonly expectedHours: number
  /** countedHours / expectedHours, 0–1. */
  readonly coverage: number
  /** coverage ≥ 85 %; below it the mean is indicative. */
  readonly sufficientCoverage: boolean
  /** Valid days (≥ 18 counted hours) of the period, and their share of the period's days. */
  readonly validDays: number
  readonly expectedDays: number
  readonly dayCoverage: number
  readonly worstHours: readonly WorstPeriod[]
  readonly worstDays: readonly WorstPeriod[]
}

interface RuleReportBase {
  readonly rule: string
  readonly pollutant: ThresholdRule['pollutant']
  /** µg/m³; a valid period mean strictly above it is an exceedance. */
  readonly value: number
  readonly unverified?: string
  readonly coverage: number
  readonly sufficientCoverage: boolean
}

/** An `hour` or `day` rule: exceedances counted over the part of the period in which its profile applies. */
export interface CountRuleReport extends RuleReportBase {
  readonly kind: 'count'
  readonly period: 'hour' | 'day'
  readonly count: number
  readonly validPeriods: number
  readonly expectedPeriods: number
  /** Permitted exceedances per CALENDAR YEAR (null: none stated), never scaled to the period. */
  readonly allowedPerYear: number | null
  /** True when an allowed number exists and the period is not one calendar year: it then does not apply as is. */
  readonly allowedForYearOnly: boolean
  /**
   * Whole calendar year: count above the allowed number (above 0 when none is stated). Other periods: true when
   * the count within one calendar year already passes that year's allowance (counts only rise as gaps fill, §3),
   * otherwise null (not decidable from part of a year).
   */
  readonly exceeded: boolean | null
  /** Plain-language caveat for the reader, present when `allowedForYearOnly`. */
  readonly note?: string
}

/** A `year` rule (annual limit value): compared with the period mean. */
export interface MeanRuleReport extends RuleReportBase {
  readonly kind: 'mean'
  readonly period: 'year'
  /** Mean of the counted hourly means over the part of the period in which the profile applies. */
  readonly mean: number | null
  readonly countedHours: number
  readonly expectedHours: number
  /** mean > value (null without a mean), whatever the period. */
  readonly aboveValue: boolean | null
  /** Whole calendar year: `aboveValue`. Other periods: null (an annual value judges a year's mean only). */
  readonly exceeded: boolean | null
  readonly note?: string
}

export type RuleReport = CountRuleReport | MeanRuleReport

export interface ProfileReport {
  readonly id: string
  readonly version: string
  readonly name: string
  readonly legal: boolean
  readonly unverified?: string
  /** The part of the period in which the profile applies; null when none (then `rules` is empty). */
  readonly applies: TimeWindow | null
  readonly rules: readonly RuleReport[]
}

export interface SiteReport {
  readonly siteId: string
  readonly window: TimeWindow
  /** Whether the period is exactly one calendar year in UTC+1 (then allowed numbers and annual values apply). */
  readonly periodIsYear: boolean
  readonly metrics: readonly MetricReport[]
  readonly profiles: readonly ProfileReport[]
}

export const ALLOWED_FOR_YEAR_NOTE =
  'The allowed number is per calendar year; this period is not a calendar year, so the count is shown beside it unscaled.'
export const ANNUAL_VALUE_NOTE =
  'An annual limit value judges a calendar-year mean; over this period the comparison is for orientation only.'

/** The regulatory (UTC+1) calendar year a time falls in. */
function regulatoryYearOf(t: number): number {
  return new Date(t + REGULATORY_DAY_OFFSET_MS).getUTCFullYear()
}

/** The period cut at UTC+1 year boundaries, with each piece's year (countExceedances counts within one year). */
function yearPieces(window: TimeWindow): { year: number; piece: TimeWindow }[] {
  const pieces: { year: number; piece: TimeWindow }[] = []
  for (let year = regulatoryYearOf(window.from); year <= regulatoryYearOf(window.to - 1); year += 1) {
    const from = Math.max(window.from, Date.UTC(year, 0, 1) - REGULATORY_DAY_OFFSET_MS)
    const to = Math.min(window.to, Date.UTC(year + 1, 0, 1) - REGULATORY_DAY_OFFSET_MS)
    if (from < to) pieces.push({ year, piece: { from, to } })
  }
  return pieces
}

function checkInput(input: SiteReportInput): number {
  const { from, to } = input.window
  if (!(from < to)) throw new SiteReportError('EMPTY_WINDOW', 'the report period must have from < to')
  if (regulatoryDayStart(from) !== from || regulatoryDayStart(to) !== to) {
    throw new SiteReportError('WINDOW_NOT_DAY_ALIGNED', 'the report period must start and end on UTC+1 day boundaries')
  }
  const worst = input.worstCount ?? DEFAULT_WORST_COUNT
  if (!Number.isInteger(worst) || worst < 0) {
    throw new SiteReportError('INVALID_WORST_COUNT', 'worstCount must be a whole number ≥ 0')
  }
  return worst
}

/** Highest first; equal values earlier first. */
const worstFirst = (a: { t: number; value: number }, b: { t: number; value: number }): number =>
  b.value - a.value || a.t - b.t

/**
 * The first `n` of the valid values in `worstFirst` order, as a stable sort of them all would give (a value goes
 * after those it ties with), kept in a list of n instead of sorting a year of hours for 5 of them.
 */
function worst(values: readonly PeriodValue[], n: number, coverageOf: (t: number) => number): WorstPeriod[] {
  const top: { t: number; value: number }[] = []
  if (n > 0) {
    for (const { t, value } of values) {
      if (value === null) continue
      const candidate = { t, value }
      const last = top[top.length - 1]
      if (top.length >= n && last !== undefined && worstFirst(candidate, last) >= 0) continue
      let at = top.length
      while (at > 0) {
        const before = top[at - 1]
        if (before === undefined || worstFirst(candidate, before) >= 0) break
        at -= 1
      }
      top.splice(at, 0, candidate)
      if (top.length > n) top.pop()
    }
  }
  return top.map(({ t, value }) => ({ t, value, coverage: coverageOf(t) }))
}

/**
 * `countableValues` computed once per pollutant, period and window: a report asks for the same values for its
 * metric numbers and for every rule on the pollutant (~35 rules over all profiles), each a pass over a year of
 * hours. The arrays are shared, so they are never changed after they are made.
 */
type CountableValues = (
  hours: readonly RuleHour[],
  period: 'hour' | 'day',
  window: TimeWindow,
  now: number,
) => readonly PeriodValue[]

function memoizedCountableValues(): CountableValues {
  const cache = new Map<readonly RuleHour[], Map<string, readonly PeriodValue[]>>()
  return (hours, period, window, now) => {
    let byKey = cache.get(hours)
    if (byKey === undefined) {
      byKey = new Map()
      cache.set(hours, byKey)
    }
    const key = `${period} ${window.from} ${window.to} ${now}`
    let values = byKey.get(key)
    if (values === undefined) {
      values = countableValues(hours, period, window, now)
      byKey.set(key, values)
    }
    return values
  }
}

/** annual-exceedances.ts `annualMean` (the mean of the counted hourly values) from already made hourly values. */
function meanOfHourly(hourly: readonly PeriodValue[], window: TimeWindow): AnnualMean {
  let sum = 0
  let countedHours = 0
  for (const { value } of hourly) {
    if (value === null) continue
    sum += value
    countedHours += 1
  }
  return {
    mean: countedHours === 0 ? null : sum / countedHours,
    countedHours,
    expectedHours: (window.to - window.from) / HOUR_MS,
  }
}

type MeanOfHourly = (hourly: readonly PeriodValue[], window: TimeWindow) => AnnualMean

/** `meanOfHourly` once per list of values and window (several profiles' annual rules share a pollutant's mean). */
function memoizedMeanOfHourly(): MeanOfHourly {
  const cache = new Map<readonly PeriodValue[], Map<string, AnnualMean>>()
  return (hourly, window) => {
    let byWindow = cache.get(hourly)
    if (byWindow === undefined) {
      byWindow = new Map()
      cache.set(hourly, byWindow)
    }
    const key = `${window.from} ${window.to}`
    let mean = byWindow.get(key)
    if (mean === undefined) {
      mean = meanOfHourly(hourly, window)
      byWindow.set(key, mean)
    }
    return mean
  }
}

function metricReport(
  metric: Metric,
  hours: readonly RuleHour[],
  window: TimeWindow,
  now: number,
  n: number,
  valuesOf: CountableValues,
) {
  // annualMean = the mean of the period's 'hour' values (annual-exceedances.ts counts a 'year' as its hours).
  const hourly = valuesOf(hours, 'hour', window, now)
  const daily = valuesOf(hours, 'day', window, now)
  const { mean, countedHours, expectedHours } = meanOfHourly(hourly, window)
  // Only the worst hours' coverage and the worst days' counted hours are needed: looked up for those alone.
  // An hour's coverage as a Map built from `hours` would give it: the last hour with that start.
  const hourCoverage = (t: number): number => {
    for (let i = hours.length - 1; i >= 0; i -= 1) {
      const h = hours[i]
      if (h !== undefined && h.t === t) return h.coverage
    }
    return 0
  }
  const countedInDay = (day: number): number => {
    let counted = 0
    for (const { t, value } of hourly) if (value !== null && regulatoryDayStart(t) === day) counted += 1
    return counted
  }
  let validDays = 0
  for (const d of daily) if (d.value !== null) validDays += 1
  const expectedDays = (window.to - window.from) / DAY_MS
  const coverage = Math.min(1, countedHours / expectedHours)
  return {
    metric,
    mean,
    countedHours,
    expectedHours,
    coverage,
    sufficientCoverage: coverage >= ANNUAL_MIN_COVERAGE,
    validDays,
    expectedDays,
    dayCoverage: Math.min(1, validDays / expectedDays),
    worstHours: worst(hourly, n, hourCoverage),
    worstDays: worst(daily, n, (t) => countedInDay(t) / HOURS_PER_DAY),
  } satisfies MetricReport
}

function countRule(
  rule: ThresholdRule & { period: 'hour' | 'day' },
  hours: readonly RuleHour[],
  pieces: readonly { year: number; piece: TimeWindow }[],
  periodIsYear: boolean,
  now: number,
  valuesOf: CountableValues,
): CountRuleReport {
  let count = 0
  let validPeriods = 0
  let expectedPeriods = 0
  let passedInAYear = false
  for (const { year, piece } of pieces) {
    const result = countExceedances(valuesOf(hours, rule.period, piece, now), rule, year, piece)
    count += result.count
    validPeriods += result.validPeriods
    expectedPeriods += result.expectedPeriods
    if (result.exceeded) passedInAYear = true
  }
  const coverage = expectedPeriods === 0 ? 0 : Math.min(1, validPeriods / expectedPeriods)
  const allowedForYearOnly = rule.allowedPerYear !== null && !periodIsYear
  return {
    kind: 'count',
    rule: rule.id,
    pollutant: rule.pollutant,
    period: rule.period,
    value: rule.value,
    count,
    validPeriods,
    expectedPeriods,
    coverage,
    sufficientCoverage: coverage >= ANNUAL_MIN_COVERAGE,
    allowedPerYear: rule.allowedPerYear,
    allowedForYearOnly,
    exceeded: periodIsYear ? passedInAYear : passedInAYear ? true : null,
    ...(allowedForYearOnly ? { note: ALLOWED_FOR_YEAR_NOTE } : {}),
    ...(rule.unverified === undefined ? {} : { unverified: rule.unverified }),
  }
}

function meanRule(
  rule: ThresholdRule,
  hours: readonly RuleHour[],
  applies: TimeWindow,
  periodIsYear: boolean,
  now: number,
  valuesOf: CountableValues,
  meanOf: MeanOfHourly,
): MeanRuleReport {
  const { mean, countedHours, expectedHours } = meanOf(valuesOf(hours, 'hour', applies, now), applies)
  const coverage = Math.min(1, countedHours / expectedHours)
  const aboveValue = mean === null ? null : mean > rule.value
  return {
    kind: 'mean',
    rule: rule.id,
    pollutant: rule.pollutant,
    period: 'year',
    value: rule.value,
    mean,
    countedHours,
    expectedHours,
    coverage,
    sufficientCoverage: coverage >= ANNUAL_MIN_COVERAGE,
    aboveValue,
    exceeded: periodIsYear ? aboveValue : null,
    ...(periodIsYear ? {} : { note: ANNUAL_VALUE_NOTE }),
    ...(rule.unverified === undefined ? {} : { unverified: rule.unverified }),
  }
}

function isCountRule(rule: ThresholdRule): rule is ThresholdRule & { period: 'hour' | 'day' } {
  return rule.period === 'hour' || rule.period === 'day'
}

/** The report for one site, one metric set and one period. See the definitions at the top of this file. */
export function siteReport(input: SiteReportInput): SiteReport {
  const n = checkInput(input)
  const { window, now } = input
  const ruleHours = siteRuleHours(input.series).hours
  const hoursOf = (metric: Metric): readonly RuleHour[] => ruleHours.get(metric) ?? []
  const pieces = yearPieces(window)
  const first = pieces[0]
  const periodIsYear =
    pieces.length === 1 &&
    first !== undefined &&
    first.piece.from === Date.UTC(first.year, 0, 1) - REGULATORY_DAY_OFFSET_MS &&
    first.piece.to === Date.UTC(first.year + 1, 0, 1) - REGULATORY_DAY_OFFSET_MS
  const reported = new Set<Metric>(input.metrics)
  const valuesOf = memoizedCountableValues()
  const meanOf = memoizedMeanOfHourly()

  const profiles: ProfileReport[] = input.profiles.map((profile) => {
    const applicable: { year: number; piece: TimeWindow }[] = []
    for (const { year, piece } of pieces) {
      const inForce = profileYearWindow(profile, year)
      if (inForce === null) continue
      const from = Math.max(piece.from, inForce.from)
      const to = Math.min(piece.to, inForce.to)
      if (from < to) applicable.push({ year, piece: { from, to } })
    }
    const firstPiece = applicable[0]
    const lastPiece = applicable[applicable.length - 1]
    const applies =
      firstPiece === undefined || lastPiece === undefined
        ? null
        : { from: firstPiece.piece.from, to: lastPiece.piece.to }
    const rules: RuleReport[] = []
    if (applies !== null) {
      for (const rule of profile.rules) {
        if (!reported.has(rule.pollutant)) continue
        const hours = hoursOf(rule.pollutant)
        if (isCountRule(rule)) rules.push(countRule(rule, hours, applicable, periodIsYear, now, valuesOf))
        else if (rule.period === 'year') rules.push(meanRule(rule, hours, applies, periodIsYear, now, valuesOf, meanOf))
        // running24h: never counted (reference §3), left out.
      }
    }
    return {
      id: profile.id,
      version: profile.version,
      name: profile.name,
      legal: profile.legal,
      ...(profile.unverified === undefined ? {} : { unverified: profile.unverified }),
      applies,
      rules,
    }
  })

  return {
    siteId: input.siteId,
    window,
    periodIsYear,
    metrics: input.metrics.map((metric) => metricReport(metric, hoursOf(metric), window, now, n, valuesOf)),
    profiles,
  }
}
