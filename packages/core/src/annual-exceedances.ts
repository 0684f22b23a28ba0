import { DAY_MS, HOUR_MS, REGULATORY_DAY_OFFSET_MS } from './aggregation.ts'
import {
  ANNUAL_MIN_COVERAGE,
  type ExceedanceCount,
  exceedances,
  IncidentError,
  type PeriodValue,
  periodMs,
  regulatoryYearStart,
} from './incidents.ts'
import { periodValues, type RuleHour } from './rule-values.ts'
import type { ThresholdPeriod, ThresholdProfile, ThresholdRule } from './thresholds.ts'

/**
 * Exceedance counts and annual means of one rule over one calendar year (UTC+1, as incidents.ts `exceedances`),
 * from one site's hourly values as rules see them (rule-values.ts `siteRuleHours`: invalid, suspect and not yet
 * final hours do not count). Pure.
 *
 * Annual mean (`year` rules) = the mean of the counted HOURLY means of the year, not of the valid daily means.
 * Reference §3: the annual mean under 2008/50 is built from "1-h (or 24-h) values", the 24-h values being for
 * methods that only produce daily samples (gravimetric PM); skolluft's sensors report continuously, so the
 * hourly values are the basis. Averaging daily means instead would drop every counted hour of a day with fewer
 * than 18 of them and weight an 18-hour day like a full one. Coverage = counted hours / hours of the year, and
 * below 85 % (2024/2881, reference §3) the mean is indicative (`sufficientCoverage` false). The 2024/2881
 * requirement that the data be spread over quarters, months and weekdays is NOT checked here.
 */

/** A span [from, to) in epoch ms. */
export interface TimeWindow {
  readonly from: number
  readonly to: number
}

/** The calendar year in fixed UTC+1 (23:00 UTC on 31 December of the year before, to the same a year later). */
export function regulatoryYearWindow(year: number): TimeWindow {
  return { from: regulatoryYearStart(year), to: regulatoryYearStart(year + 1) }
}

/**
 * The part of a year in which a profile applies. Its `validFrom` and `validTo` are inclusive calendar days,
 * taken as UTC+1 days like every regulatory day. Null when the profile applies on no day of the year (the same
 * answer as `profileValidOn` for every day of it).
 */
export function profileYearWindow(
  profile: Pick<ThresholdProfile, 'validFrom' | 'validTo'>,
  year: number,
): TimeWindow | null {
  const whole = regulatoryYearWindow(year)
  const from =
    profile.validFrom === null
      ? whole.from
      : Math.max(whole.from, Date.parse(profile.validFrom) - REGULATORY_DAY_OFFSET_MS)
  const to =
    profile.validTo === null
      ? whole.to
      : Math.min(whole.to, Date.parse(profile.validTo) + DAY_MS - REGULATORY_DAY_OFFSET_MS)
  return from < to ? { from, to } : null
}

export interface AnnualMean {
  /** µg/m³; null when no hour counted. */
  readonly mean: number | null
  readonly countedHours: number
  /** Hours of the window (8 760, or 8 784 in a leap year, for a whole year), whether they have passed or not. */
  readonly expectedHours: number
}

/** Mean of the counted hourly means (valid, free of quality issues, final at `now`) whose start lies in `window`. */
export function annualMean(hours: readonly RuleHour[], window: TimeWindow, now: number): AnnualMean {
  return meanOf(countableValues(hours, 'year', window, now), window)
}

function meanOf(hourly: readonly PeriodValue[], window: TimeWindow): AnnualMean {
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

export interface YearExceedance extends ExceedanceCount {
  /** `year` rules only: the annual mean (µg/m³) of the counted hours, null when none counted. */
  readonly annualMean?: number | null
}

/**
 * The period values a count over `window` is made of: hourly values for `hour` rules and for `year` rules (the
 * annual mean is built from them), daily values for `day` rules; only periods inside the window. Depends on the
 * pollutant's hours, the period and the window, not on the rule: a caller counting many rules can compute it once
 * per pollutant, period and window (`countExceedances`).
 */
export function countableValues(
  hours: readonly RuleHour[],
  period: ThresholdPeriod,
  window: TimeWindow,
  now: number,
): PeriodValue[] {
  if (period === 'running24h') {
    throw new IncidentError('NOT_COUNTABLE', 'running 24-h means are not used for exceedance counts (reference §3)')
  }
  const inWindow = hours.filter((h) => h.t >= window.from && h.t < window.to)
  return periodValues(inWindow, period === 'year' ? 'hour' : period, now)
}

/**
 * One rule over one year, or over the part of it given as `window` (`profileYearWindow`, for a profile that takes
 * effect or ends within the year; day-aligned). Expected periods are those of the whole window even when it
 * reaches past `now`, so for the current year the coverage says how much of the year is in.
 * - `hour` and `day` rules: every valid period above the value counts (incidents.ts `exceedances`).
 * - `year` rules: ONE period, the annual mean; count 1 when it is above the value. `validPeriods` and
 *   `expectedPeriods` are then the counted and expected HOURS the mean is built from, so that the coverage is
 *   that of the data behind the mean.
 * - `running24h` rules are refused (IncidentError NOT_COUNTABLE): running means are never counted (reference §3).
 */
export function yearExceedances(
  hours: readonly RuleHour[],
  rule: Pick<ThresholdRule, 'period' | 'value' | 'allowedPerYear'>,
  year: number,
  now: number,
  window: TimeWindow = regulatoryYearWindow(year),
): YearExceedance {
  checkWindow(window, year)
  return countExceedances(countableValues(hours, rule.period, window, now), rule, year, window)
}

/** `yearExceedances` from values already made by `countableValues(hours, rule.period, window, now)`. */
export function countExceedances(
  values: readonly PeriodValue[],
  rule: Pick<ThresholdRule, 'period' | 'value' | 'allowedPerYear'>,
  year: number,
  window: TimeWindow = regulatoryYearWindow(year),
): YearExceedance {
  checkWindow(window, year)
  if (rule.period === 'running24h') {
    throw new IncidentError('NOT_COUNTABLE', 'running 24-h means are not used for exceedance counts (reference §3)')
  }
  if (rule.period === 'year') {
    const { mean, countedHours, expectedHours } = meanOf(values, window)
    const count = mean !== null && mean > rule.value ? 1 : 0
    const coverage = Math.min(1, countedHours / expectedHours)
    return {
      count,
      allowed: rule.allowedPerYear,
      exceeded: count > (rule.allowedPerYear ?? 0),
      validPeriods: countedHours,
      expectedPeriods: expectedHours,
      coverage,
      sufficientCoverage: coverage >= ANNUAL_MIN_COVERAGE,
      annualMean: mean,
    }
  }
  const counted = exceedances(values, rule, year)
  const expectedPeriods = (window.to - window.from) / periodMs(rule.period)
  const coverage = Math.min(1, counted.validPeriods / expectedPeriods)
  return { ...counted, expectedPeriods, coverage, sufficientCoverage: coverage >= ANNUAL_MIN_COVERAGE }
}

function checkWindow(window: TimeWindow, year: number): void {
  const whole = regulatoryYearWindow(year)
  if (window.from < whole.from || window.to > whole.to || window.from >= window.to) {
    throw new RangeError(`window must be a non-empty part of the year ${year}`)
  }
}
