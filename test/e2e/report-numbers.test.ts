import { join } from 'node:path'
import { type RunningApi, startApi } from '@skolluft/api'
import { hashSecret, silentLogger } from '@skolluft/runtime'
import { openSqliteStorage, type Storage, type StoredReading } from '@skolluft/storage'
import { tempDir } from '@skolluft/testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { type ImportedDataDir, importedDataDir, readArchive, SC_SITE } from '../support/export-fixtures.ts'
import {
  type Bucket,
  countedHours,
  countRule,
  DAY_MS,
  dayOfWeek,
  dropOff,
  HOUR_MS,
  type Hours,
  hourlyFromSamples,
  hourOfDay,
  type MetricNumbers,
  medianIntervalS,
  metricNumbers,
  ORACLE_COUNT_RULES,
  ORACLE_MEAN_RULES,
  reportWindow,
  type Sample,
  stockholmLocal,
  suspectHours,
  type Window,
} from '../support/report-oracle.ts'

/**
 * Issue 7: a site report's numbers over real HTTP (real API, real SQLite file) against numbers computed
 * INDEPENDENTLY from the raw samples by test/support/report-oracle.ts (no core report, profile, quality or
 * aggregation code). Two data sets:
 * 1. Synthetic samples with known properties, written through storage.readings.writeReadings: constant levels,
 *    a known number of PM2.5 days above WHO 2021's 15 µg/m³ (two of them only in fixed UTC+1 days, not in UTC or
 *    local days), gaps and partial hours of known size, humid hours, a weekday 07–08 local NO2 peak, and the
 *    spring clock change (29 March 2026) inside the period.
 * 2. The real Sensor.Community archive of test/fixtures/sensor-community (Aberdeen, 5–11 November 2018) imported
 *    with the real CLI.
 * The API rounds means and coverage to 3 decimals; numbers are compared within 1e-3 (plus float noise).
 */

const NOW = Date.parse('2026-11-30T12:00:00Z')
const TOLERANCE = 1e-3 + 1e-9

// ---- The response, as far as this test reads it (its own schema: the contract, not the route's code) ----

const Worst = z.object({ t: z.string(), value: z.number(), coverage: z.number() })
const MetricOut = z.object({
  metric: z.string(),
  mean: z.number().nullable(),
  countedHours: z.number(),
  expectedHours: z.number(),
  coverage: z.number(),
  sufficientCoverage: z.boolean(),
  validDays: z.number(),
  expectedDays: z.number(),
  dayCoverage: z.number(),
  worstHours: z.array(Worst),
  worstDays: z.array(Worst),
})
const RuleOut = z.object({
  rule: z.string(),
  kind: z.enum(['count', 'mean']),
  pollutant: z.string(),
  period: z.string(),
  value: z.number(),
  coverage: z.number(),
  sufficientCoverage: z.boolean(),
  count: z.number().optional(),
  validPeriods: z.number().optional(),
  expectedPeriods: z.number().optional(),
  allowedPerYear: z.number().nullable().optional(),
  allowedForYearOnly: z.boolean().optional(),
  mean: z.number().nullable().optional(),
  countedHours: z.number().optional(),
  expectedHours: z.number().optional(),
  aboveValue: z.boolean().nullable().optional(),
  exceeded: z.boolean().nullable(),
})
const BucketOut = z.object({
  key: z.number(),
  mean: z.number().nullable(),
  hours: z.number(),
  periodHours: z.number(),
  coverage: z.number().nullable(),
})
const Report = z.object({
  site: z.string(),
  from: z.string(),
  to: z.string(),
  report: z.object({
    periodIsYear: z.boolean(),
    metrics: z.array(MetricOut),
    profiles: z.array(z.object({ id: z.string(), rules: z.array(RuleOut) })),
  }),
  profiles: z.array(
    z.object({
      metric: z.string(),
      timeZone: z.string(),
      hourOfDay: z.array(BucketOut),
      dayOfWeek: z.array(BucketOut),
    }),
  ),
  suggestions: z.array(
    z.object({
      pattern: z.string(),
      metric: z.string(),
      hours: z.number(),
      coverage: z.number(),
      values: z.record(z.string(), z.number()),
    }),
  ),
  skipped: z.array(z.object({ pattern: z.string(), metric: z.string(), hours: z.number(), coverage: z.number() })),
  evaluated: z.array(z.object({ pattern: z.string(), metric: z.string(), result: z.string() })),
})
type Report = z.infer<typeof Report>
type MetricOut = z.infer<typeof MetricOut>

/** The documented CSV columns (OpenAPI entry of the report route). */
const CSV_HEADER =
  'kind,profile,rule,metric,period,value,mean,count,allowed_per_year,counted,expected,coverage,sufficient_coverage'

async function getReport(api: RunningApi, site: string, from: string, to: string): Promise<Report> {
  const res = await fetch(`http://127.0.0.1:${api.port}/api/v1/sites/${site}/report?from=${from}&to=${to}`)
  const text = await res.text()
  expect(res.status, text.slice(0, 500)).toBe(200)
  return Report.parse(JSON.parse(text))
}

async function getCsv(api: RunningApi, site: string, from: string, to: string): Promise<Record<string, string>[]> {
  const res = await fetch(`http://127.0.0.1:${api.port}/api/v1/sites/${site}/report?from=${from}&to=${to}&format=csv`)
  const text = await res.text()
  expect(res.status, text.slice(0, 500)).toBe(200)
  expect(res.headers.get('content-type')).toMatch(/^text\/csv/)
  expect(text.endsWith('\r\n')).toBe(true)
  const [head, ...lines] = text.slice(0, -2).split('\r\n')
  expect(head).toBe(CSV_HEADER)
  const names = CSV_HEADER.split(',')
  return lines.map((line) => {
    // No cell of these rows holds a comma or a quote (ids, numbers, booleans).
    const cells = line.split(',')
    expect(cells, line).toHaveLength(names.length)
    return Object.fromEntries(names.map((n, i) => [n, cells[i] ?? '']))
  })
}

// ---- Comparisons ----

function expectClose(actual: number | null | undefined, expected: number | null, label: string): void {
  if (expected === null) {
    expect(actual ?? null, label).toBeNull()
    return
  }
  expect(actual, label).toBeTypeOf('number')
  expect(Math.abs((actual ?? Number.NaN) - expected), `${label}: got ${actual}, expected ${expected}`).toBeLessThan(
    TOLERANCE,
  )
}

const iso = (t: number): string => new Date(t).toISOString()

function expectMetric(got: MetricOut | undefined, want: MetricNumbers): void {
  const m = want.metric
  expect(got, m).toBeDefined()
  if (got === undefined) return
  expectClose(got.mean, want.mean, `${m} mean`)
  expect([got.countedHours, got.expectedHours, got.validDays, got.expectedDays], `${m} hours and days`).toEqual([
    want.countedHours,
    want.expectedHours,
    want.validDays,
    want.expectedDays,
  ])
  expectClose(got.coverage, want.coverage, `${m} coverage`)
  expectClose(got.dayCoverage, want.dayCoverage, `${m} dayCoverage`)
  expect(got.sufficientCoverage, `${m} sufficientCoverage`).toBe(want.sufficientCoverage)
  for (const [kind, g, w] of [
    ['worstHours', got.worstHours, want.worstHours],
    ['worstDays', got.worstDays, want.worstDays],
  ] as const) {
    expect(
      g.map((x) => x.t),
      `${m} ${kind} times`,
    ).toEqual(w.map((x) => iso(x.t)))
    w.forEach((x, i) => {
      expectClose(g[i]?.value, x.value, `${m} ${kind}[${i}] value`)
      expectClose(g[i]?.coverage, x.coverage, `${m} ${kind}[${i}] coverage`)
    })
  }
}

function rulesById(report: Report): Map<string, z.infer<typeof RuleOut>> {
  return new Map(report.report.profiles.flatMap((p) => p.rules.map((r) => [r.rule, r] as const)))
}

/** `isYear`: the period is one whole calendar year (UTC+1), so allowances and annual values judge it. */
function expectRules(report: Report, hours: Hours, suspect: Map<string, Set<number>>, w: Window, isYear = false): void {
  const rules = rulesById(report)
  for (const spec of ORACLE_COUNT_RULES) {
    const got = rules.get(spec.rule)
    expect(got, spec.rule).toBeDefined()
    const want = countRule(countedHours(hours, suspect, spec.pollutant, w), spec.period, spec.value, w)
    expect(got, spec.rule).toMatchObject({
      kind: 'count',
      pollutant: spec.pollutant,
      period: spec.period,
      value: spec.value,
      allowedPerYear: spec.allowedPerYear,
      count: want.count,
      validPeriods: want.validPeriods,
      expectedPeriods: want.expectedPeriods,
      // A period that is not a calendar year: the allowance is shown unscaled, and cannot be judged unless passed.
      allowedForYearOnly: !isYear,
      exceeded: want.count > spec.allowedPerYear ? true : isYear ? false : null,
    })
    expectClose(got?.coverage, want.coverage, `${spec.rule} coverage`)
  }
  for (const spec of ORACLE_MEAN_RULES) {
    const got = rules.get(spec.rule)
    const counted = [...countedHours(hours, suspect, spec.pollutant, w).values()]
    const mean = counted.length === 0 ? null : counted.reduce((a, b) => a + b, 0) / counted.length
    expect(got, spec.rule).toMatchObject({
      kind: 'mean',
      pollutant: spec.pollutant,
      value: spec.value,
      countedHours: counted.length,
      expectedHours: (w.to - w.from) / HOUR_MS,
      aboveValue: mean === null ? null : mean > spec.value,
      exceeded: isYear && mean !== null ? mean > spec.value : null,
    })
    expectClose(got?.mean, mean, `${spec.rule} mean`)
  }
}

function expectBuckets(got: readonly z.infer<typeof BucketOut>[] | undefined, want: readonly Bucket[], label: string) {
  expect(
    got?.map((b) => [b.key, b.hours, b.periodHours]),
    `${label} hours`,
  ).toEqual(want.map((b) => [b.key, b.hours, b.periodHours]))
  want.forEach((b, i) => {
    expectClose(got?.[i]?.mean, b.mean, `${label}[${b.key}] mean`)
    expectClose(got?.[i]?.coverage, b.coverage, `${label}[${b.key}] coverage`)
  })
}

function expectProfiles(report: Report, hours: Hours, suspect: Map<string, Set<number>>, w: Window, metric: string) {
  const got = report.profiles.find((p) => p.metric === metric)
  expect(got?.timeZone).toBe('Europe/Stockholm')
  const counted = countedHours(hours, suspect, metric, w)
  expectBuckets(got?.hourOfDay, hourOfDay(counted, w), `${metric} hourOfDay`)
  expectBuckets(got?.dayOfWeek, dayOfWeek(counted, w), `${metric} dayOfWeek`)
}

/** CSV rows against the JSON's numbers and the oracle's. */
function expectCsv(
  rows: readonly Record<string, string>[],
  want: readonly MetricNumbers[],
  hours: Hours,
  suspect: Map<string, Set<number>>,
  w: Window,
) {
  for (const m of want) {
    const row = rows.find((r) => r.kind === 'metric' && r.metric === m.metric)
    expect(row, m.metric).toBeDefined()
    if (m.mean === null) expect(row?.mean).toBe('')
    else expectClose(Number(row?.mean), m.mean, `csv ${m.metric} mean`)
    expect([row?.counted, row?.expected], `csv ${m.metric}`).toEqual([String(m.countedHours), String(m.expectedHours)])
    expectClose(Number(row?.coverage), m.coverage, `csv ${m.metric} coverage`)
    expect(row?.sufficient_coverage).toBe(String(m.sufficientCoverage))
  }
  for (const spec of ORACLE_COUNT_RULES) {
    const row = rows.find((r) => r.kind === 'rule' && r.rule === spec.rule)
    const c = countRule(countedHours(hours, suspect, spec.pollutant, w), spec.period, spec.value, w)
    expect(row, spec.rule).toMatchObject({
      metric: spec.pollutant,
      period: spec.period,
      value: String(spec.value),
      count: String(c.count),
      allowed_per_year: String(spec.allowedPerYear),
      counted: String(c.validPeriods),
      expected: String(c.expectedPeriods),
    })
    expectClose(Number(row?.coverage), c.coverage, `csv ${spec.rule} coverage`)
  }
}

// ---- 1. Synthetic data ----

const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i)

const SYN_FROM = '2026-03-09' // a Monday
const SYN_TO = '2026-04-19' // a Sunday: 6 whole weeks
const SYN = reportWindow(SYN_FROM, SYN_TO)
const SYN_DAYS = 42
/** Site with the shaped data, one with constant levels, one with the NO2 peak over the autumn clock change. */
const SHAPED = 'syn-shaped'
const FLAT = 'syn-flat'
const AUTUMN = 'syn-autumn'
/** Two weeks around 25 October 2026, when local time goes back from UTC+2 to UTC+1 (local 02 occurs twice). */
const AUTUMN_FROM = '2026-10-19' // a Monday
const AUTUMN_TO = '2026-11-01' // a Sunday
const AUTUMN_WINDOW = reportWindow(AUTUMN_FROM, AUTUMN_TO)
/**
 * A whole calendar year (2025, UTC+1), one sample an hour: PM2.5 8 except 4 days at 30 (one more than WHO's 3
 * allowed days above 15), NO2 exactly 20 (Frisk luft's annual 20 is not exceeded), 30 days missing in summer.
 */
const YEAR = 'syn-year'
const YEAR_FROM = '2025-01-01'
const YEAR_TO = '2025-12-31'
const YEAR_WINDOW = reportWindow(YEAR_FROM, YEAR_TO)
const YEAR_DAYS = 365
const YEAR_ELEVATED_DAYS = [20, 80, 250, 340]
const YEAR_GAP_DAYS = range(180, 210)
/** 4 samples an hour (15-min interval) so partial hours can be valid (3 of 4) or not (2 of 4). */
const PER_HOUR = 4
const SAMPLE_MINUTES = [5, 20, 35, 50]
/** Deviations around the hour's level: never a flat hour (which the stuck check would flag), mean = the level. */
const DEVIATIONS: Readonly<Record<number, readonly number[]>> = {
  4: [-1, 1, -1, 1],
  3: [-1, 1, 0],
  2: [-1, 1],
  1: [0],
}

/** Day indexes (UTC+1 days from 9 March) and UTC+1 hours with known properties. */
const ELEVATED_DAYS = [2, 9, 30] // PM2.5 30 all day: above 15 and 25
const EARLY_PEAK_DAY = 5 // Sat 14 March (UTC+1 = local): PM2.5 60 at UTC+1 00–03 → day mean 16.667 > 15
const LATE_PEAK_DAY = 33 // Sat 11 April (local = UTC+2): PM2.5 60 at UTC+1 20–23 → day mean 16.667 > 15
const AT_VALUE_DAY = 16 // PM2.5 exactly 15 all day: not above (strictly greater)
const SHORT_DAY = 12 // PM2.5 40, hours 17–23 missing: 17 hours, not a valid day
const GAP_DAY = 25 // hours 10–23 missing: 10 hours, not a valid day
const NEARLY_FULL_DAY = 35 // hours 0–5 missing: 18 hours, a valid day
const HUMID_DAY = 22 // RH 95 at hours 10–14: PM hours suspect (PM2.5 100 there must not count), NO2 counted
const THREE_SAMPLE = [
  [7, 12],
  [7, 13],
  [7, 14],
  [EARLY_PEAK_DAY, 1],
] as const // 3 of 4 samples: valid, coverage 0.75
const TWO_SAMPLE_DAY = 8 // hours 12–13 with 2 of 4 samples (invalid) and PM2.5 200, NO2 250: must not count

interface Level {
  readonly pm25: number
  readonly no2: number
  readonly rh: number
}

function shapedLevel(day: number, hour: number, t: number): Level {
  if (day < 0 || day >= SYN_DAYS) return { pm25: 300, no2: 300, rh: 60 } // outside the period: must not count
  const local = stockholmLocal(t)
  const no2 = local.weekday < 5 && (local.hour === 7 || local.hour === 8) ? 60 : 20
  let pm25 = 8
  if (ELEVATED_DAYS.includes(day)) pm25 = 30
  if (day === EARLY_PEAK_DAY && hour <= 3) pm25 = 60
  if (day === LATE_PEAK_DAY && hour >= 20) pm25 = 60
  if (day === AT_VALUE_DAY) pm25 = 15
  if (day === SHORT_DAY) pm25 = 40
  const humid = day === HUMID_DAY && hour >= 10 && hour <= 14
  if (humid) pm25 = 100
  if (day === TWO_SAMPLE_DAY && (hour === 12 || hour === 13)) return { pm25: 200, no2: 250, rh: 60 }
  return { pm25, no2, rh: humid ? 95 : 60 }
}

function shapedSamplesInHour(day: number, hour: number): number {
  if (day === SHORT_DAY && hour >= 17) return 0
  if (day === GAP_DAY && hour >= 10) return 0
  if (day === NEARLY_FULL_DAY && hour <= 5) return 0
  if (day === TWO_SAMPLE_DAY && (hour === 12 || hour === 13)) return 2
  if (THREE_SAMPLE.some(([d, h]) => d === day && h === hour)) return 3
  return PER_HOUR
}

interface Dataset {
  readonly readings: StoredReading[]
  readonly siteId: string
  readonly deviceId: string
  readonly samples: Sample[]
  readonly expectedPerHour: number
}

function dataset(
  siteId: string,
  days: readonly number[],
  level: (day: number, hour: number, t: number) => Level,
  samplesInHour: (day: number, hour: number) => number,
  start = SYN.from,
  expectedPerHour = PER_HOUR,
): Dataset {
  const deviceId = `dev-${siteId}`
  const readings: StoredReading[] = []
  const samples: Sample[] = []
  for (const day of days) {
    for (let hour = 0; hour < 24; hour++) {
      const t = start + day * DAY_MS + hour * HOUR_MS
      const { pm25, no2, rh } = level(day, hour, t)
      const n = samplesInHour(day, hour)
      const deviations = DEVIATIONS[n] ?? []
      deviations.forEach((dev, i) => {
        const ts = t + (SAMPLE_MINUTES[i] ?? 0) * 60_000
        // PM fractions nested (PM1 ≤ PM2.5 ≤ PM10) so the order check never fires.
        const values = {
          pm1: 0.6 * pm25 + dev,
          pm25: pm25 + dev,
          pm10: 1.5 * pm25 + 3 + dev,
          no2: no2 + dev,
          rh: rh + dev,
        }
        readings.push({ deviceId, siteId, ts, seq: null, values, receivedAt: ts, expectedPerHour })
        for (const [metric, value] of Object.entries(values)) samples.push({ deviceId, ts, metric, value })
      })
    }
  }
  return { siteId, deviceId, readings, samples, expectedPerHour }
}

describe('site report numbers: synthetic data with known properties', () => {
  const shaped = dataset(SHAPED, range(-1, SYN_DAYS + 1), shapedLevel, shapedSamplesInHour)
  const flat = dataset(
    FLAT,
    range(0, SYN_DAYS),
    () => ({ pm25: 8, no2: 20, rh: 60 }),
    () => PER_HOUR,
  )
  const oracle = (d: Dataset) => {
    const hours = hourlyFromSamples(d.samples, () => d.expectedPerHour)
    return { hours, suspect: suspectHours(hours) }
  }
  const shapedOracle = oracle(shaped)
  const flatOracle = oracle(flat)
  const autumnLevel = (_day: number, _hour: number, t: number): Level => {
    const local = stockholmLocal(t)
    return { pm25: 8, no2: local.weekday < 5 && (local.hour === 7 || local.hour === 8) ? 60 : 20, rh: 60 }
  }
  const autumn = dataset(AUTUMN, range(0, 14), autumnLevel, () => PER_HOUR, AUTUMN_WINDOW.from)
  const autumnOracle = oracle(autumn)
  const year = dataset(
    YEAR,
    range(-1, YEAR_DAYS + 1).filter((d) => !YEAR_GAP_DAYS.includes(d)),
    (day) =>
      day < 0 || day >= YEAR_DAYS
        ? { pm25: 300, no2: 300, rh: 60 }
        : { pm25: YEAR_ELEVATED_DAYS.includes(day) ? 30 : 8, no2: 20, rh: 60 },
    () => 1,
    YEAR_WINDOW.from,
    1,
  )
  const yearOracle = oracle(year)
  let dir: Awaited<ReturnType<typeof tempDir>>
  let storage: Storage
  let api: RunningApi

  beforeAll(async () => {
    dir = await tempDir('skolluft-report-numbers-')
    storage = openSqliteStorage({ path: join(dir.path, 'skolluft.db') })
    await storage.registry.upsertSites(
      [SHAPED, FLAT, AUTUMN, YEAR].map((id, i) => ({
        id,
        name: id,
        kind: 'school',
        municipality: 'Lund',
        lat: 55.7 + i / 100,
        lon: 13.2,
      })),
    )
    // Each site's device registered outdoors (limit values are for outdoor air), as `skolluft device add` does.
    const secretHash = await hashSecret('not used: the readings are written directly')
    for (const d of [shaped, flat, autumn, year]) {
      await storage.registry.addDevice(
        {
          id: d.deviceId,
          model: 'test',
          sensors: ['pm1', 'pm25', 'pm10', 'no2', 'rh'],
          intervalS: 3600 / d.expectedPerHour,
          secretHash,
          placement: { siteId: d.siteId, from: 0, indoor: false, heightM: 2 },
        },
        NOW - DAY_MS,
      )
    }
    await storage.readings.writeReadings([...shaped.readings, ...flat.readings, ...autumn.readings, ...year.readings])
    api = await startApi({
      log: silentLogger(),
      storage,
      clock: () => NOW,
      host: '127.0.0.1',
      port: 0,
      options: { publicMap: true },
    })
  })

  afterAll(async () => {
    await api?.close()
    await storage?.close()
    await dir?.cleanup()
  })

  it('the oracle itself reproduces the known properties of the data', () => {
    const { hours, suspect } = shapedOracle
    const pm25 = countedHours(hours, suspect, 'pm25', SYN)
    const no2 = countedHours(hours, suspect, 'no2', SYN)
    // 42 × 24 hours, minus 7 + 14 + 6 missing and 2 invalid (2 of 4 samples); PM2.5 also minus 5 humid hours.
    expect(no2.size).toBe(SYN_DAYS * 24 - 27 - 2)
    expect(pm25.size).toBe(no2.size - 5)
    // WHO 2021 AQG 15: the 3 elevated days and the two peak days (16.667), not the day at exactly 15.
    expect(countRule(pm25, 'day', 15, SYN)).toEqual({
      count: 5,
      validPeriods: 40,
      expectedPeriods: 42,
      coverage: 40 / 42,
    })
    expect(countRule(pm25, 'day', 25, SYN).count).toBe(3)
    // The two peak days count only in fixed UTC+1 days: in UTC (early) or local summer time (late) days they split.
    const early = SYN.from + EARLY_PEAK_DAY * DAY_MS
    const late = SYN.from + LATE_PEAK_DAY * DAY_MS
    const meanOver = (from: number) => {
      const values = range(0, 24).map((i) => pm25.get(from + i * HOUR_MS) ?? Number.NaN)
      return values.reduce((a, b) => a + b, 0) / values.length
    }
    expect(meanOver(early)).toBeCloseTo(50 / 3, 9)
    expect(meanOver(early + HOUR_MS)).toBeLessThanOrEqual(15) // the UTC day (from 00:00 UTC)
    expect(meanOver(late)).toBeCloseTo(50 / 3, 9)
    expect(meanOver(late - HOUR_MS)).toBeLessThanOrEqual(15) // the local (UTC+2) day
    expect(stockholmLocal(late - HOUR_MS).hour).toBe(0)
    // Local hour 02 does not exist on 29 March; local 00 of 20 April is inside the period (22:00 UTC).
    const h = hourOfDay(no2, SYN)
    expect([h[0]?.periodHours, h[2]?.periodHours, h[12]?.periodHours]).toEqual([43, 41, 42])
    expect(dayOfWeek(no2, SYN).map((b) => b.periodHours)).toEqual([145, 144, 144, 144, 144, 144, 143])
    expect(dropOff(no2, SYN)?.values).toMatchObject({ weekdayMorning: 60, weekendMorning: 20 })
  })

  it('constant levels: every mean is the constant, coverage 1, no exceedance', async () => {
    const report = await getReport(api, FLAT, SYN_FROM, SYN_TO)
    const { hours, suspect } = flatOracle
    const want = ['pm1', 'pm25', 'pm10', 'no2'].map((m) => metricNumbers(hours, suspect, m, SYN))
    expect(want.map((m) => [m.metric, m.mean, m.coverage, m.validDays])).toEqual([
      ['pm1', expect.closeTo(4.8, 9), 1, 42],
      ['pm25', 8, 1, 42],
      ['pm10', 15, 1, 42],
      ['no2', 20, 1, 42],
    ])
    for (const m of want)
      expectMetric(
        report.report.metrics.find((g) => g.metric === m.metric),
        m,
      )
    expectRules(report, hours, suspect, SYN)
    expect(rulesById(report).get('who2021-aqg-pm25-day')).toMatchObject({ count: 0, validPeriods: 42 })
    expectProfiles(report, hours, suspect, SYN, 'no2')
  })

  it('shaped data: means, coverage, worst hours and days, counts as the oracle computes them', async () => {
    const report = await getReport(api, SHAPED, SYN_FROM, SYN_TO)
    expect(report).toMatchObject({ site: SHAPED, from: iso(SYN.from), to: iso(SYN.to) })
    expect(report.report.periodIsYear).toBe(false)
    const { hours, suspect } = shapedOracle
    for (const metric of ['pm1', 'pm25', 'pm10', 'no2']) {
      expectMetric(
        report.report.metrics.find((g) => g.metric === metric),
        metricNumbers(hours, suspect, metric, SYN),
      )
    }
    expectRules(report, hours, suspect, SYN)
    // The known numbers, literally.
    const rules = rulesById(report)
    expect(rules.get('who2021-aqg-pm25-day')).toMatchObject({ count: 5, validPeriods: 40, expectedPeriods: 42 })
    expect(rules.get('se-frisk-luft-pm25-day')).toMatchObject({ count: 3 })
    expect(rules.get('se-frisk-luft-no2-hour')).toMatchObject({ count: 0 }) // peaks of exactly 60 are not above 60
    expect(rules.get('eu2008-no2-hour')).toMatchObject({ count: 0 }) // the invalid 250 hours do not count
    const pm25 = report.report.metrics.find((m) => m.metric === 'pm25')
    expect(pm25?.worstHours.map((w) => [w.value, w.coverage])).toEqual([
      [60, 1],
      [60, 0.75],
      [60, 1],
      [60, 1],
      [60, 1],
    ])
    expect(pm25?.worstDays.map((w) => w.value)).toEqual([30, 30, 30, 16.667, 16.667])
  })

  it('shaped data: local-time hour-of-day and day-of-week profiles across the clock change, and the drop-off peak', async () => {
    const report = await getReport(api, SHAPED, SYN_FROM, SYN_TO)
    const { hours, suspect } = shapedOracle
    for (const metric of ['pm25', 'pm10', 'no2']) expectProfiles(report, hours, suspect, SYN, metric)
    const no2 = report.profiles.find((p) => p.metric === 'no2')
    expect([no2?.hourOfDay[0]?.periodHours, no2?.hourOfDay[2]?.periodHours]).toEqual([43, 41])

    const want = dropOff(countedHours(hours, suspect, 'no2', SYN), SYN)
    expect(want).not.toBeNull()
    expect(report.evaluated).toContainEqual({ pattern: 'drop-off-peak', metric: 'no2', result: 'found' })
    const evidence = [...report.suggestions, ...report.skipped].filter(
      (s) => s.pattern === 'drop-off-peak' && s.metric === 'no2',
    )
    expect(evidence.length).toBeGreaterThan(0)
    for (const e of evidence) {
      expect(e.hours).toBe(want?.hours)
      expectClose(e.coverage, want?.coverage ?? null, 'drop-off coverage')
    }
    for (const s of report.suggestions.filter((x) => x.pattern === 'drop-off-peak' && x.metric === 'no2')) {
      for (const [k, v] of Object.entries(want?.values ?? {})) expectClose(s.values[k], v, `drop-off ${k}`)
    }
  })

  it('autumn clock change: local hour 02 twice, the peak stays on local 07–08', async () => {
    const report = await getReport(api, AUTUMN, AUTUMN_FROM, AUTUMN_TO)
    const { hours, suspect } = autumnOracle
    const counted = countedHours(hours, suspect, 'no2', AUTUMN_WINDOW)
    // The period starts at 00:00 UTC+1 = 01:00 local summer time: local 00 of 19 October is outside it.
    const h = hourOfDay(counted, AUTUMN_WINDOW)
    expect([h[0]?.periodHours, h[1]?.periodHours, h[2]?.periodHours]).toEqual([13, 14, 15])
    expect([h[7]?.mean, h[8]?.mean, h[9]?.mean]).toEqual([(10 * 60 + 4 * 20) / 14, (10 * 60 + 4 * 20) / 14, 20])
    for (const metric of ['pm25', 'no2']) expectProfiles(report, hours, suspect, AUTUMN_WINDOW, metric)
    for (const metric of ['pm25', 'no2']) {
      expectMetric(
        report.report.metrics.find((g) => g.metric === metric),
        metricNumbers(hours, suspect, metric, AUTUMN_WINDOW),
      )
    }
    expect(report.evaluated).toContainEqual({ pattern: 'drop-off-peak', metric: 'no2', result: 'found' })
  })

  it('a whole calendar year: allowances and annual values judge it', async () => {
    const report = await getReport(api, YEAR, YEAR_FROM, YEAR_TO)
    expect(report.report.periodIsYear).toBe(true)
    const { hours, suspect } = yearOracle
    for (const metric of ['pm1', 'pm25', 'pm10', 'no2']) {
      expectMetric(
        report.report.metrics.find((g) => g.metric === metric),
        metricNumbers(hours, suspect, metric, YEAR_WINDOW),
      )
    }
    expectRules(report, hours, suspect, YEAR_WINDOW, true)
    const rules = rulesById(report)
    expect(rules.get('who2021-aqg-pm25-day')).toMatchObject({ count: 4, validPeriods: 335, exceeded: true })
    expect(rules.get('se-frisk-luft-pm25-day')).toMatchObject({ count: 4, allowedPerYear: 3, exceeded: true })
    expect(rules.get('eu2008-pm10-day')).toMatchObject({ count: 0, exceeded: false, allowedForYearOnly: false })
    expect(rules.get('se-frisk-luft-no2-year')).toMatchObject({ mean: 20, aboveValue: false, exceeded: false })
    expect(rules.get('who2021-aqg-pm25-year')).toMatchObject({ aboveValue: true, exceeded: true })
    const pm25 = report.report.metrics.find((m) => m.metric === 'pm25')
    expect(pm25).toMatchObject({ countedHours: 335 * 24, expectedHours: 8760, sufficientCoverage: true })
    for (const metric of ['pm25', 'no2']) expectProfiles(report, hours, suspect, YEAR_WINDOW, metric)
  })

  it('CSV: the same numbers', async () => {
    const rows = await getCsv(api, SHAPED, SYN_FROM, SYN_TO)
    const { hours, suspect } = shapedOracle
    const want = ['pm1', 'pm25', 'pm10', 'no2'].map((m) => metricNumbers(hours, suspect, m, SYN))
    expectCsv(rows, want, hours, suspect, SYN)
  })
})

// ---- 2. Real Sensor.Community data ----

const SC_FROM_DAY = '2018-11-05'
const SC_TO_DAY = '2018-11-11'
const SC = reportWindow(SC_FROM_DAY, SC_TO_DAY)

/**
 * The whole station (SDS011 + BME280: Aberdeen in November is humid, so most PM hours are suspect under RH > 90 %),
 * and the SDS011 alone (no humidity at the site: every valid hour counts, and some days pass the daily values).
 */
const SC_CASES = [
  { label: 'SDS011 and BME280', filter: () => true, pmHoursCounted: (n: number) => n > 0 && n < 100 },
  { label: 'SDS011 only', filter: (name: string) => name.includes('sds011'), pmHoursCounted: (n: number) => n === 167 },
] as const

describe.each(SC_CASES)(
  'site report numbers: real Sensor.Community data (Aberdeen, 5–11 November 2018, $label)',
  ({ filter, pmHoursCounted }) => {
    const source = readArchive(filter)
    const samples: Sample[] = source.values.map((v) => ({
      deviceId: v.deviceId,
      ts: v.ts,
      metric: v.metric,
      value: v.value,
    }))
    const intervals = new Map<string, number>()
    for (const deviceId of new Set(samples.map((s) => s.deviceId))) {
      intervals.set(deviceId, medianIntervalS(samples.filter((s) => s.deviceId === deviceId).map((s) => s.ts)))
    }
    const hours = hourlyFromSamples(samples, (d) => 3600 / (intervals.get(d) ?? Number.NaN))
    const suspect = suspectHours(hours)
    const want = ['pm1', 'pm25', 'pm10', 'no2'].map((m) => metricNumbers(hours, suspect, m, SC))
    let data: ImportedDataDir
    let storage: Storage
    let api: RunningApi

    beforeAll(async () => {
      data = await importedDataDir(source.files)
      storage = openSqliteStorage({ path: join(data.path, 'skolluft.db') })
      api = await startApi({
        log: silentLogger(),
        storage,
        clock: () => NOW,
        host: '127.0.0.1',
        port: 0,
        options: { publicMap: true },
      })
    })

    afterAll(async () => {
      await api?.close()
      await storage?.close()
      await data?.cleanup()
    })

    it('the import registered the intervals the oracle derived from the data', () => {
      expect(Object.fromEntries(data.report.devices.map((d) => [d.deviceId, d.intervalS]))).toEqual(
        Object.fromEntries(intervals),
      )
      // Sanity of the oracle on this data: counted PM hours (fewer when humid hours are left out), no PM1 or NO2.
      const counted = new Map(want.map((m) => [m.metric, m.countedHours]))
      expect([counted.get('pm1'), counted.get('no2')]).toEqual([0, 0])
      expect(pmHoursCounted(counted.get('pm25') ?? 0), `pm25 ${counted.get('pm25')}`).toBe(true)
      expect(pmHoursCounted(counted.get('pm10') ?? 0), `pm10 ${counted.get('pm10')}`).toBe(true)
    })

    it('means, coverage, worst hours and days, counts and profiles equal the oracle', async () => {
      const report = await getReport(api, SC_SITE, SC_FROM_DAY, SC_TO_DAY)
      expect(report).toMatchObject({ site: SC_SITE, from: iso(SC.from), to: iso(SC.to) })
      for (const m of want)
        expectMetric(
          report.report.metrics.find((g) => g.metric === m.metric),
          m,
        )
      expectRules(report, hours, suspect, SC)
      for (const metric of ['pm25', 'pm10']) expectProfiles(report, hours, suspect, SC, metric)
    })

    it('CSV: the same numbers', async () => {
      expectCsv(await getCsv(api, SC_SITE, SC_FROM_DAY, SC_TO_DAY), want, hours, suspect, SC)
    })
  },
)
