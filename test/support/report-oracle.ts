/**
 * An INDEPENDENT computation of a site report's numbers (GET /api/v1/sites/{id}/report), for
 * test/e2e/report-numbers.test.ts. Plain code from raw samples: it imports nothing from packages/core (no
 * aggregation, quality, rule-values, annual-exceedances, profiles, site-report or measures code). Every rule value
 * is restated here with where it comes from, so a changed constant in the platform shows up as a failing test
 * instead of being followed silently.
 *
 * Definitions (as the platform documents them: docs, packages/core/src/site-report.ts header, and the air-quality
 * reference /work/shared/reference/air-quality.md):
 * - Hour: a UTC hour. Its mean is the mean of all samples in it (every device at the site that measured the metric);
 *   it expects Σ 3600 / interval samples over those devices; coverage = min(1, n / expected); valid when
 *   coverage ≥ 75 % (reference §3, 2008/50 Annex VII).
 * - Quality checks (reference §4.1, §5.2, restated from the platform's documented rules): an hour is suspect when
 *   stuck (≥ 2 consecutive PM hours, ≥ 6 NO2 hours, each with ≥ 2 samples all equal to one non-zero value), out of
 *   range (PM max > 500 or min < 0; NO2 mean < −5), humid (the site's RH hourly mean > 90 % → PM hours) or out of
 *   PM order (finer mean above coarser by > 1 µg/m³ and > 10 % → both).
 * - Counted hour: valid and not suspect (every hour of these tests is long final at the report's `now`).
 * - Day: calendar day in FIXED UTC+1 (reference §3 recommendation); mean of its counted hours, valid with ≥ 18.
 * - Exceedance: a valid period mean STRICTLY above the value (reference §3).
 * - Profiles: local time of Europe/Stockholm, with daylight saving (EU rule: UTC+2 from the last Sunday of March
 *   01:00 UTC to the last Sunday of October 01:00 UTC, UTC+1 otherwise). Computed here from that rule, not Intl.
 */

export const HOUR_MS = 3_600_000
export const DAY_MS = 24 * HOUR_MS
/** Regulatory days: fixed UTC+1 (reference §3, "compute regulatory days in fixed UTC+1"). */
export const UTC_PLUS_1_MS = HOUR_MS
/** Valid hourly mean: ≥ 75 % of expected samples (reference §3, 2008/50 Annex VII). */
export const HOURLY_MIN_COVERAGE = 0.75
/** Valid daily mean: ≥ 18 valid hours (reference §3, 2024/2881 Annex V point C). */
export const DAILY_MIN_VALID_HOURS = 18
/** Coverage below 85 % is indicative (reference §3, 2024/2881 annual mean rule; site-report.ts uses it for all). */
export const SUFFICIENT_COVERAGE = 0.85
/** Worst hours and days a report lists by default (site-report.ts DEFAULT_WORST_COUNT, an editorial choice). */
export const WORST_COUNT = 5

/** Quality-check values, restated from packages/core/src/quality.ts (reference §4.1 and §5.2). */
const STUCK_MIN_HOURS: Readonly<Record<string, number>> = { pm1: 2, pm25: 2, pm10: 2, no2: 6 }
const STUCK_MIN_SAMPLES = 2
const PM_SENSOR_MAX = 500
const NO2_MIN_HOURLY_MEAN = -5
const HIGH_HUMIDITY_PERCENT = 90
const PM_ORDER_MIN_EXCESS = 1
const PM_ORDER_MIN_RATIO = 0.1
const PM_METRICS = ['pm1', 'pm25', 'pm10'] as const

/** Weekday drop-off hours, local 07:00–09:00 (measures.ts DROP_OFF_HOURS, the "drop-off" window). */
export const DROP_OFF_HOURS = [7, 8] as const

/**
 * Count rules the tests check, restated from the air-quality reference §1 (µg/m³; `allowedPerYear` "n/yr").
 * WHO 2021 daily AQG: 3 days a year (§1.1 footnote (a): "3–4 exceedance days per year"; the platform takes 3).
 */
export const ORACLE_COUNT_RULES = [
  // §1.1 WHO 2021 AQG, 24 h.
  { rule: 'who2021-aqg-pm25-day', pollutant: 'pm25', period: 'day', value: 15, allowedPerYear: 3 },
  { rule: 'who2021-aqg-pm10-day', pollutant: 'pm10', period: 'day', value: 45, allowedPerYear: 3 },
  { rule: 'who2021-aqg-no2-day', pollutant: 'no2', period: 'day', value: 25, allowedPerYear: 3 },
  // §1.1 WHO 2021 IT-4, 24 h.
  { rule: 'who2021-it4-pm25-day', pollutant: 'pm25', period: 'day', value: 25, allowedPerYear: 3 },
  // §1.2 EU 2008/50/EC.
  { rule: 'eu2008-pm10-day', pollutant: 'pm10', period: 'day', value: 50, allowedPerYear: 35 },
  { rule: 'eu2008-no2-hour', pollutant: 'no2', period: 'hour', value: 200, allowedPerYear: 18 },
  // §1.4 Swedish MKN.
  { rule: 'se-mkn-no2-hour', pollutant: 'no2', period: 'hour', value: 90, allowedPerYear: 175 },
  { rule: 'se-mkn-no2-day', pollutant: 'no2', period: 'day', value: 60, allowedPerYear: 7 },
  // §1.5 Frisk luft.
  { rule: 'se-frisk-luft-no2-hour', pollutant: 'no2', period: 'hour', value: 60, allowedPerYear: 175 },
  { rule: 'se-frisk-luft-pm25-day', pollutant: 'pm25', period: 'day', value: 25, allowedPerYear: 3 },
  { rule: 'se-frisk-luft-pm10-day', pollutant: 'pm10', period: 'day', value: 30, allowedPerYear: 35 },
] as const

/** Annual (calendar-year) rules: compared with the period mean (reference §1). */
export const ORACLE_MEAN_RULES = [
  { rule: 'who2021-aqg-pm25-year', pollutant: 'pm25', value: 5 }, // §1.1
  { rule: 'eu2008-pm10-year', pollutant: 'pm10', value: 40 }, // §1.2
  { rule: 'eu2008-no2-year', pollutant: 'no2', value: 40 }, // §1.2
  { rule: 'se-frisk-luft-pm25-year', pollutant: 'pm25', value: 10 }, // §1.5
] as const

export type OracleCountRule = (typeof ORACLE_COUNT_RULES)[number]
export type OracleMeanRule = (typeof ORACLE_MEAN_RULES)[number]

export interface Window {
  /** Epoch ms, inclusive. */
  readonly from: number
  /** Epoch ms, exclusive. */
  readonly to: number
}

/** One measured value: a device, a time, a metric. */
export interface Sample {
  readonly deviceId: string
  readonly ts: number
  readonly metric: string
  readonly value: number
}

export interface Hour {
  readonly t: number
  readonly n: number
  readonly sum: number
  readonly min: number
  readonly max: number
  readonly expected: number
  readonly mean: number
  readonly coverage: number
  readonly valid: boolean
}

/** Per metric, hour start → hour. */
export type Hours = Map<string, Map<number, Hour>>

const floorHour = (t: number): number => Math.floor(t / HOUR_MS) * HOUR_MS

/** Start of the fixed UTC+1 day containing t. */
export function regulatoryDay(t: number): number {
  return Math.floor((t + UTC_PLUS_1_MS) / DAY_MS) * DAY_MS - UTC_PLUS_1_MS
}

/** `YYYY-MM-DD` 00:00 in fixed UTC+1, epoch ms. */
export function utcPlus1Midnight(date: string): number {
  return Date.parse(`${date}T00:00:00Z`) - UTC_PLUS_1_MS
}

/** The report window of `from=…&to=…` (both inclusive calendar days in UTC+1). */
export function reportWindow(from: string, to: string): Window {
  return { from: utcPlus1Midnight(from), to: utcPlus1Midnight(to) + DAY_MS }
}

/** Median spacing of a device's sample times, whole seconds (how the importer sets a device's interval). */
export function medianIntervalS(times: readonly number[]): number {
  const sorted = [...new Set(times)].sort((a, b) => a - b)
  const gaps: number[] = []
  for (let i = 1; i < sorted.length; i++) gaps.push((sorted[i] ?? 0) - (sorted[i - 1] ?? 0))
  gaps.sort((a, b) => a - b)
  const mid = Math.floor(gaps.length / 2)
  const median = gaps.length % 2 === 1 ? (gaps[mid] ?? 0) : ((gaps[mid - 1] ?? 0) + (gaps[mid] ?? 0)) / 2
  return Math.round(median / 1000)
}

/**
 * Hourly buckets from raw samples. `expectedPerHour(deviceId)` is 3600 / the device's interval; a site's hour
 * expects the sum over the devices that measured the metric in that hour.
 */
export function hourlyFromSamples(samples: readonly Sample[], expectedPerHour: (deviceId: string) => number): Hours {
  interface Acc {
    n: number
    sum: number
    min: number
    max: number
    devices: Set<string>
  }
  const acc = new Map<string, Map<number, Acc>>()
  // Sum in time order, as a database adding rows in insertion order would (tolerance absorbs any other order).
  const sorted = [...samples].sort((a, b) => a.ts - b.ts)
  for (const s of sorted) {
    let byHour = acc.get(s.metric)
    if (byHour === undefined) {
      byHour = new Map()
      acc.set(s.metric, byHour)
    }
    const t = floorHour(s.ts)
    const a = byHour.get(t) ?? { n: 0, sum: 0, min: Infinity, max: -Infinity, devices: new Set<string>() }
    a.n += 1
    a.sum += s.value
    a.min = Math.min(a.min, s.value)
    a.max = Math.max(a.max, s.value)
    a.devices.add(s.deviceId)
    byHour.set(t, a)
  }
  const hours: Hours = new Map()
  for (const [metric, byHour] of acc) {
    const out = new Map<number, Hour>()
    for (const [t, a] of byHour) {
      let expected = 0
      for (const d of a.devices) expected += expectedPerHour(d)
      const coverage = Math.min(1, a.n / expected)
      out.set(t, {
        t,
        n: a.n,
        sum: a.sum,
        min: a.min,
        max: a.max,
        expected,
        mean: a.sum / a.n,
        coverage,
        valid: coverage >= HOURLY_MIN_COVERAGE,
      })
    }
    hours.set(metric, out)
  }
  return hours
}

/** Suspect hours per pollutant (the quality checks of the header). */
export function suspectHours(hours: Hours): Map<string, Set<number>> {
  const suspect = new Map<string, Set<number>>()
  const mark = (metric: string, t: number) => {
    const set = suspect.get(metric) ?? new Set<number>()
    set.add(t)
    suspect.set(metric, set)
  }
  for (const metric of ['pm1', 'pm25', 'pm10', 'no2']) {
    const list = [...(hours.get(metric)?.values() ?? [])].sort((a, b) => a.t - b.t)
    // Stuck runs.
    let run: Hour[] = []
    const close = () => {
      if (run.length >= (STUCK_MIN_HOURS[metric] ?? Infinity)) for (const h of run) mark(metric, h.t)
      run = []
    }
    for (const h of list) {
      const flat = h.n >= STUCK_MIN_SAMPLES && h.min === h.max && h.min !== 0
      const last = run[run.length - 1]
      if (!(flat && last !== undefined && h.t - last.t === HOUR_MS && h.min === last.min)) close()
      if (flat) run.push(h)
    }
    close()
    // Range.
    for (const h of list) {
      if (metric === 'no2' ? h.mean < NO2_MIN_HOURLY_MEAN : h.max > PM_SENSOR_MAX || h.min < 0) mark(metric, h.t)
    }
  }
  // Humidity.
  for (const rh of hours.get('rh')?.values() ?? []) {
    if (rh.mean <= HIGH_HUMIDITY_PERCENT) continue
    for (const metric of PM_METRICS) if (hours.get(metric)?.has(rh.t)) mark(metric, rh.t)
  }
  // PM order.
  for (const [finer, coarser] of [
    ['pm25', 'pm10'],
    ['pm1', 'pm25'],
  ] as const) {
    for (const h of hours.get(finer)?.values() ?? []) {
      const c = hours.get(coarser)?.get(h.t)
      if (c === undefined) continue
      const excess = h.mean - c.mean
      if (excess > PM_ORDER_MIN_EXCESS && excess > PM_ORDER_MIN_RATIO * c.mean) {
        mark(finer, h.t)
        mark(coarser, h.t)
      }
    }
  }
  return suspect
}

/** The counted hourly means of a metric in the window: hour start → mean (valid, not suspect). */
export function countedHours(hours: Hours, suspect: Map<string, Set<number>>, metric: string, w: Window) {
  const counted = new Map<number, number>()
  for (const h of hours.get(metric)?.values() ?? []) {
    if (h.t < w.from || h.t >= w.to || !h.valid || suspect.get(metric)?.has(h.t)) continue
    counted.set(h.t, h.mean)
  }
  return new Map([...counted].sort((a, b) => a[0] - b[0]))
}

export interface DayValue {
  readonly t: number
  readonly hours: number
  /** Null when fewer than DAILY_MIN_VALID_HOURS hours counted. */
  readonly mean: number | null
}

/** Every UTC+1 day of the window with its counted hours and mean. */
export function days(counted: ReadonlyMap<number, number>, w: Window): DayValue[] {
  const out: DayValue[] = []
  for (let d = w.from; d < w.to; d += DAY_MS) {
    let sum = 0
    let n = 0
    for (let t = d; t < d + DAY_MS; t += HOUR_MS) {
      const v = counted.get(t)
      if (v === undefined) continue
      sum += v
      n += 1
    }
    out.push({ t: d, hours: n, mean: n >= DAILY_MIN_VALID_HOURS ? sum / n : null })
  }
  return out
}

export interface Worst {
  readonly t: number
  readonly value: number
  readonly coverage: number
}

function worstOf(items: readonly Worst[], n: number): Worst[] {
  return [...items].sort((a, b) => b.value - a.value || a.t - b.t).slice(0, n)
}

export interface MetricNumbers {
  readonly metric: string
  readonly mean: number | null
  readonly countedHours: number
  readonly expectedHours: number
  readonly coverage: number
  readonly sufficientCoverage: boolean
  readonly validDays: number
  readonly expectedDays: number
  readonly dayCoverage: number
  readonly worstHours: Worst[]
  readonly worstDays: Worst[]
}

export function metricNumbers(hours: Hours, suspect: Map<string, Set<number>>, metric: string, w: Window) {
  const counted = countedHours(hours, suspect, metric, w)
  const values = [...counted.values()]
  const expectedHours = (w.to - w.from) / HOUR_MS
  const expectedDays = (w.to - w.from) / DAY_MS
  const dayList = days(counted, w)
  const validDays = dayList.filter((d) => d.mean !== null).length
  const coverage = Math.min(1, values.length / expectedHours)
  const byHour = hours.get(metric)
  return {
    metric,
    mean: values.length === 0 ? null : values.reduce((a, b) => a + b, 0) / values.length,
    countedHours: values.length,
    expectedHours,
    coverage,
    sufficientCoverage: coverage >= SUFFICIENT_COVERAGE,
    validDays,
    expectedDays,
    dayCoverage: Math.min(1, validDays / expectedDays),
    worstHours: worstOf(
      [...counted].map(([t, value]) => ({ t, value, coverage: byHour?.get(t)?.coverage ?? 0 })),
      WORST_COUNT,
    ),
    worstDays: worstOf(
      dayList.flatMap((d) => (d.mean === null ? [] : [{ t: d.t, value: d.mean, coverage: d.hours / 24 }])),
      WORST_COUNT,
    ),
  } satisfies MetricNumbers
}

export interface CountNumbers {
  readonly count: number
  readonly validPeriods: number
  readonly expectedPeriods: number
  readonly coverage: number
}

/** An `hour` or `day` count rule over the window (within one calendar year). */
export function countRule(
  counted: ReadonlyMap<number, number>,
  period: 'hour' | 'day',
  value: number,
  w: Window,
): CountNumbers {
  const periods =
    period === 'hour' ? [...counted.values()] : days(counted, w).flatMap((d) => (d.mean === null ? [] : [d.mean]))
  const expectedPeriods = (w.to - w.from) / (period === 'hour' ? HOUR_MS : DAY_MS)
  return {
    count: periods.filter((v) => v > value).length,
    validPeriods: periods.length,
    expectedPeriods,
    coverage: Math.min(1, periods.length / expectedPeriods),
  }
}

// ---- Local time (Europe/Stockholm) from the EU summer-time rule, not from Intl ----

/** The last Sunday of a month (0-based), 01:00 UTC: when EU summer time starts (March) or ends (October). */
function lastSunday0100Utc(year: number, month: number): number {
  const lastDay = new Date(Date.UTC(year, month + 1, 0))
  const day = lastDay.getUTCDate() - lastDay.getUTCDay()
  return Date.UTC(year, month, day, 1)
}

/** Offset of Europe/Stockholm from UTC at t (Directive 2000/84/EC summer time: CEST from/to 01:00 UTC). */
export function stockholmOffsetMs(t: number): number {
  const year = new Date(t).getUTCFullYear()
  const summer = t >= lastSunday0100Utc(year, 2) && t < lastSunday0100Utc(year, 9)
  return (summer ? 2 : 1) * HOUR_MS
}

export interface Local {
  readonly hour: number
  /** 0 = Monday … 6 = Sunday. */
  readonly weekday: number
}

export function stockholmLocal(t: number): Local {
  const local = new Date(t + stockholmOffsetMs(t))
  return { hour: local.getUTCHours(), weekday: (local.getUTCDay() + 6) % 7 }
}

export interface Bucket {
  readonly key: number
  readonly mean: number | null
  readonly hours: number
  readonly periodHours: number
  readonly coverage: number | null
}

/** A profile in Stockholm local time: `size` buckets keyed by `keyOf`, over the window's hours. */
export function localProfile(
  counted: ReadonlyMap<number, number>,
  w: Window,
  size: number,
  keyOf: (local: Local) => number,
  where: (local: Local) => boolean = () => true,
): Bucket[] {
  const period = new Array<number>(size).fill(0)
  const n = new Array<number>(size).fill(0)
  const sum = new Array<number>(size).fill(0)
  for (let t = w.from; t < w.to; t += HOUR_MS) {
    const local = stockholmLocal(t)
    if (!where(local)) continue
    const k = keyOf(local)
    period[k] = (period[k] ?? 0) + 1
    const v = counted.get(t)
    if (v === undefined) continue
    n[k] = (n[k] ?? 0) + 1
    sum[k] = (sum[k] ?? 0) + v
  }
  return period.map((p, key) => {
    const hours = n[key] ?? 0
    return {
      key,
      mean: hours > 0 ? (sum[key] ?? 0) / hours : null,
      hours,
      periodHours: p,
      coverage: p > 0 ? hours / p : null,
    }
  })
}

export const hourOfDay = (counted: ReadonlyMap<number, number>, w: Window): Bucket[] =>
  localProfile(counted, w, 24, (l) => l.hour)
export const dayOfWeek = (counted: ReadonlyMap<number, number>, w: Window): Bucket[] =>
  localProfile(counted, w, 7, (l) => l.weekday)

interface Pooled {
  readonly mean: number
  readonly hours: number
  readonly coverage: number
}

function pooled(counted: ReadonlyMap<number, number>, w: Window, where: (local: Local) => boolean): Pooled | null {
  let sum = 0
  let hours = 0
  let periodHours = 0
  for (let t = w.from; t < w.to; t += HOUR_MS) {
    const local = stockholmLocal(t)
    if (!where(local)) continue
    periodHours += 1
    const v = counted.get(t)
    if (v === undefined) continue
    sum += v
    hours += 1
  }
  return hours === 0 ? null : { mean: sum / hours, hours, coverage: hours / periodHours }
}

/**
 * The drop-off numbers: local 07–09 mean and all-day mean on weekdays and on weekends (Saturday, Sunday), their
 * ratios, and the evidence's thinnest hours and coverage over those four groups.
 */
export function dropOff(counted: ReadonlyMap<number, number>, w: Window) {
  const weekday = (l: Local) => l.weekday < 5
  const weekend = (l: Local) => l.weekday >= 5
  const morning = (l: Local) => (DROP_OFF_HOURS as readonly number[]).includes(l.hour)
  const parts = [
    pooled(counted, w, (l) => weekday(l) && morning(l)),
    pooled(counted, w, weekday),
    pooled(counted, w, (l) => weekend(l) && morning(l)),
    pooled(counted, w, weekend),
  ]
  const [wm, wd, em, ed] = parts
  if (wm == null || wd == null || em == null || ed == null) return null
  return {
    values: {
      weekdayMorning: wm.mean,
      weekdayDaily: wd.mean,
      weekdayRatio: wm.mean / wd.mean,
      weekendMorning: em.mean,
      weekendDaily: ed.mean,
      weekendRatio: em.mean / ed.mean,
    },
    hours: Math.min(wm.hours, wd.hours, em.hours, ed.hours),
    coverage: Math.min(wm.coverage, wd.coverage, em.coverage, ed.coverage),
  }
}

export const round3 = (x: number): number => Math.round(x * 1000) / 1000

// ---- Municipality report (GET /api/v1/reports/municipality), from per-site numbers ----

/**
 * Annual (`year`) values of every threshold profile, restated from the air-quality reference §1 (µg/m³), for the
 * attention ranking's yardstick: the strictest annual value per pollutant among the selected profiles (equal
 * values: the smallest rule id). EU 2024/2881 applies from 2030 (§1.3) and is not in force in the tests' periods.
 */
export const ORACLE_YEAR_RULES = [
  // §1.1 WHO 2021: AQG and interim targets IT-1…IT-4 (profile per rung).
  ...(
    [
      ['aqg', 5, 15, 10],
      ['it1', 35, 70, 40],
      ['it2', 25, 50, 30],
      ['it3', 15, 30, 20],
      ['it4', 10, 20, null],
    ] as const
  ).flatMap(([level, pm25, pm10, no2]) => [
    { profile: `who2021-${level}`, rule: `who2021-${level}-pm25-year`, pollutant: 'pm25', value: pm25 },
    { profile: `who2021-${level}`, rule: `who2021-${level}-pm10-year`, pollutant: 'pm10', value: pm10 },
    ...(no2 === null
      ? []
      : [{ profile: `who2021-${level}`, rule: `who2021-${level}-no2-year`, pollutant: 'no2', value: no2 }]),
  ]),
  // §1.2 EU 2008/50/EC.
  { profile: 'eu2008-50', rule: 'eu2008-pm10-year', pollutant: 'pm10', value: 40 },
  { profile: 'eu2008-50', rule: 'eu2008-pm25-year', pollutant: 'pm25', value: 25 },
  { profile: 'eu2008-50', rule: 'eu2008-no2-year', pollutant: 'no2', value: 40 },
  // §1.4 Swedish MKN.
  { profile: 'se-mkn', rule: 'se-mkn-no2-year', pollutant: 'no2', value: 40 },
  { profile: 'se-mkn', rule: 'se-mkn-pm10-year', pollutant: 'pm10', value: 40 },
  { profile: 'se-mkn', rule: 'se-mkn-pm25-year', pollutant: 'pm25', value: 25 },
  // §1.5 Frisk luft.
  { profile: 'se-frisk-luft', rule: 'se-frisk-luft-no2-year', pollutant: 'no2', value: 20 },
  { profile: 'se-frisk-luft', rule: 'se-frisk-luft-pm25-year', pollutant: 'pm25', value: 10 },
  { profile: 'se-frisk-luft', rule: 'se-frisk-luft-pm10-year', pollutant: 'pm10', value: 15 },
] as const satisfies readonly { profile: string; rule: string; pollutant: string; value: number }[]

/** A site's period numbers per metric, as the municipality report takes them from each site's report. */
export interface SiteLevels {
  readonly siteId: string
  readonly kind: 'school' | 'preschool' | 'background'
  /** Per metric: mean (null: no counted hour) and coverage. */
  readonly metrics: ReadonlyMap<string, { readonly mean: number | null; readonly coverage: number }>
}

/** Median; even count: mean of the two middle values. Null when empty. */
export function median(values: readonly number[]): number | null {
  if (values.length === 0) return null
  const s = [...values].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? (s[mid] ?? 0) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2
}

const cmpId = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

export interface MunicipalMetricNumbers {
  readonly metric: string
  readonly median: number | null
  readonly counting: readonly {
    siteId: string
    kind: string
    mean: number
    coverage: number
    kindMedian: number
    rankInKind: number
    sitesOfKind: number
  }[]
  readonly leftOut: readonly { siteId: string; reason: string; mean: number | null; coverage: number }[]
  readonly kinds: readonly { kind: string; median: number | null; sites: number }[]
  readonly background: readonly { siteId: string; mean: number | null; coverage: number }[]
}

/**
 * One metric of the municipality report: sites count with a mean and coverage ≥ SUFFICIENT_COVERAGE; background
 * sites are only listed apart; rank in kind = 1 + number of same-kind counting sites with a strictly higher mean.
 */
export function municipalMetricNumbers(metric: string, sites: readonly SiteLevels[]): MunicipalMetricNumbers {
  const compared = [...sites].filter((s) => s.kind !== 'background').sort((a, b) => cmpId(a.siteId, b.siteId))
  const counting: { siteId: string; kind: string; mean: number; coverage: number }[] = []
  const leftOut: { siteId: string; reason: string; mean: number | null; coverage: number }[] = []
  for (const s of compared) {
    const m = s.metrics.get(metric) ?? { mean: null, coverage: 0 }
    if (m.mean === null) leftOut.push({ siteId: s.siteId, reason: 'no-data', mean: null, coverage: m.coverage })
    else if (m.coverage < SUFFICIENT_COVERAGE) {
      leftOut.push({ siteId: s.siteId, reason: 'insufficient-coverage', mean: m.mean, coverage: m.coverage })
    } else counting.push({ siteId: s.siteId, kind: s.kind, mean: m.mean, coverage: m.coverage })
  }
  const ofKind = (kind: string) => counting.filter((c) => c.kind === kind).map((c) => c.mean)
  return {
    metric,
    median: median(counting.map((c) => c.mean)),
    counting: counting.map((c) => ({
      ...c,
      kindMedian: median(ofKind(c.kind)) ?? Number.NaN,
      rankInKind: 1 + ofKind(c.kind).filter((v) => v > c.mean).length,
      sitesOfKind: ofKind(c.kind).length,
    })),
    leftOut,
    kinds: (['preschool', 'school'] as const)
      .filter((k) => compared.some((s) => s.kind === k))
      .map((kind) => ({ kind, median: median(ofKind(kind)), sites: ofKind(kind).length })),
    background: sites
      .filter((s) => s.kind === 'background')
      .sort((a, b) => cmpId(a.siteId, b.siteId))
      .map((s) => ({
        siteId: s.siteId,
        mean: s.metrics.get(metric)?.mean ?? null,
        coverage: s.metrics.get(metric)?.coverage ?? 0,
      })),
  }
}

export interface AttentionNumbers {
  readonly basis: readonly { metric: string; value: number; rule: string; profile: string }[]
  readonly ranked: readonly { rank: number; siteId: string; score: number; drivenBy: string }[]
  readonly notEnoughData: readonly string[]
}

/**
 * The attention ranking: score = max over basis pollutants with coverage ≥ SUFFICIENT_COVERAGE of mean / the
 * strictest annual value among `profiles`; highest first, equal scores by site id; the driving pollutant is the
 * first in `metrics` order on equal ratios; background sites are not ranked.
 */
export function attentionNumbers(
  metrics: readonly string[],
  profiles: readonly string[],
  sites: readonly SiteLevels[],
): AttentionNumbers {
  const basis = metrics.flatMap((metric) => {
    const rules = ORACLE_YEAR_RULES.filter((r) => r.pollutant === metric && profiles.includes(r.profile)).sort(
      (a, b) => a.value - b.value || cmpId(a.rule, b.rule),
    )
    const best = rules[0]
    return best === undefined ? [] : [{ metric, value: best.value, rule: best.rule, profile: best.profile }]
  })
  const scored: { siteId: string; score: number; drivenBy: string }[] = []
  const notEnoughData: string[] = []
  for (const s of sites) {
    if (s.kind === 'background') continue
    let best: { score: number; drivenBy: string } | null = null
    for (const b of basis) {
      const m = s.metrics.get(b.metric)
      if (m === undefined || m.mean === null || m.coverage < SUFFICIENT_COVERAGE) continue
      const r = m.mean / b.value
      if (best === null || r > best.score) best = { score: r, drivenBy: b.metric }
    }
    if (best === null) notEnoughData.push(s.siteId)
    else scored.push({ siteId: s.siteId, ...best })
  }
  scored.sort((a, b) => b.score - a.score || cmpId(a.siteId, b.siteId))
  return {
    basis,
    ranked: scored.map((s, i) => ({ rank: i + 1, ...s })),
    notEnoughData: notEnoughData.sort(cmpId),
  }
}

// ---- Measure follow-up (GET /api/v1/sites/{id}/measures/{measureId}/follow-up) ----

/** A follow-up window's mean is thin below 75 % of its hours (reference §3, ≥ 18 of 24 h, by analogy). */
export const FOLLOW_UP_MIN_COVERAGE = 0.75
/** Temperature means further apart than this (°C) make the weather differ (measure-follow-up.ts, stated there). */
export const WEATHER_MAX_TEMP_DIFFERENCE_C = 3

/** An hour is final once it ended 5 minutes ago (rule-values.ts FINAL_GRACE_MS, issue 4). */
export const FINAL_GRACE_MS = 5 * 60_000

export interface FollowUpSideNumbers {
  readonly mean: number | null
  readonly countedHours: number
  readonly expectedHours: number
  readonly coverage: number
  readonly sufficientCoverage: boolean
}

/** The N UTC+1 days before `takenOn` and the N days from it. */
export function followUpWindows(takenOn: string, days: number): { before: Window; after: Window } {
  const start = utcPlus1Midnight(takenOn)
  return { before: { from: start - days * DAY_MS, to: start }, after: { from: start, to: start + days * DAY_MS } }
}

/** Counted hours (valid, not suspect) of a pollutant in a window; only hours ended ≥ 5 min before `now` count. */
export function followUpSide(
  hours: Hours,
  suspect: Map<string, Set<number>>,
  metric: string,
  w: Window,
  now: number,
): FollowUpSideNumbers {
  const values = [...countedHours(hours, suspect, metric, w)]
    .filter(([t]) => t + HOUR_MS + FINAL_GRACE_MS <= now)
    .map(([, v]) => v)
  const expectedHours = (w.to - w.from) / HOUR_MS
  const coverage = Math.min(1, values.length / expectedHours)
  return {
    mean: values.length === 0 ? null : values.reduce((a, b) => a + b, 0) / values.length,
    countedHours: values.length,
    expectedHours,
    coverage,
    sufficientCoverage: coverage >= FOLLOW_UP_MIN_COVERAGE,
  }
}

/** Mean of the valid hourly means of a weather metric (temp, rh) in a window; null without any. */
export function weatherMean(hours: Hours, metric: string, w: Window): number | null {
  const values = [...(hours.get(metric)?.values() ?? [])]
    .filter((h) => h.valid && h.t >= w.from && h.t < w.to)
    .map((h) => h.mean)
  return values.length === 0 ? null : values.reduce((a, b) => a + b, 0) / values.length
}

/** Meteorological seasons (Dec–Feb winter, …) of the UTC+1 calendar months a window touches, in time order. */
export function seasonsOf(w: Window): string[] {
  const names = ['winter', 'spring', 'summer', 'autumn']
  const out: string[] = []
  for (let t = w.from; t < w.to; t += DAY_MS) {
    const month = new Date(t + UTC_PLUS_1_MS).getUTCMonth()
    const season = names[Math.floor(((month + 1) % 12) / 3)] ?? '?'
    if (out.at(-1) !== season) out.push(season)
  }
  return out
}
