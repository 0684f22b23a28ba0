import { join } from 'node:path'
import { DAY_MS, HOUR_MS, type Role } from '@skolluft/core'
import { hashSecret, silentLogger } from '@skolluft/runtime'
import { openSqliteStorage, type Storage, type StoredReading } from '@skolluft/storage'
import { tempDir } from '@skolluft/testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { type RunningApi, startApi } from '../server.ts'
import { addTestUsers, type Caller, call, logInTestUsers } from '../test-http.ts'
import { REPORT_CSV_COLUMNS, ReportResponse } from './reports.ts'

/**
 * Site reports over real HTTP against a real SQLite file, with readings written through
 * storage.readings.writeReadings (one reading an hour, one expected an hour: every written hour is valid). The
 * expected means, coverage and pattern numbers are computed here from the constructed hours, without core.
 *
 * Period: 7 whole weeks, Monday 5 January – Sunday 22 February 2026, all in Swedish normal time (UTC+1), so the
 * local hour of the profiles is the hour of the UTC+1 day. 7 weeks because the drop-off pattern needs ≥ 20
 * counted hours in its thinnest group (weekend 07–09: 2 hours × 2 days a week).
 */
const NOW = Date.parse('2026-11-30T12:00:00Z')
const clock = () => NOW

/** 5 January 2026 00:00 UTC+1. */
const START = Date.parse('2026-01-04T23:00:00Z')
const DAYS = 49
const PERIOD = 'from=2026-01-05&to=2026-02-22'

/** D: weekday drop-off NO2 peak. FLAT: the same levels at every hour. OTHER: another school. */
const D = 'site-drop'
const FLAT = 'site-flat'
const OTHER = 'site-other'
/** BG: an urban background site ~5.6 km north of D (NO2 8, PM2.5 6 at every hour). */
const BG = 'site-bg'
/** FAR: a school ~33 km north of D, more than 20 km from BG too. */
const FAR = 'site-far'
/** IO: a school with an outdoor and an indoor device (registered, placed since before the period). */
const IO = 'site-io'
/** IN: a school with one device, indoors. */
const IN = 'site-in'

interface HourRow {
  readonly pm1: number
  readonly pm25: number
  readonly pm10: number
  readonly no2: number
  readonly rh: number
}

const flatRow = (no2: number): HourRow => ({ pm1: 6, pm25: 10, pm10: 20, no2, rh: 50 })

/** Day 0 is a Monday; days 5 and 6 of each week are the weekend. */
const isWeekdayIndex = (day: number) => day % 7 < 5

/**
 * Site D: NO2 20, except 60 at 07:00–09:00 on weekdays; PM flat. Missing: day 10 (a Thursday) from 12:00, and
 * day 20 (a Sunday) entirely. Plus one hour before the period (NO2 500) that must not count.
 */
function siteD(): Map<number, HourRow> {
  const data = new Map<number, HourRow>()
  data.set(-1, flatRow(500))
  for (let d = 0; d < DAYS; d++) {
    if (d === 20) continue
    for (let h = 0; h < 24; h++) {
      if (d === 10 && h >= 12) continue
      data.set(d * 24 + h, flatRow(isWeekdayIndex(d) && (h === 7 || h === 8) ? 60 : 20))
    }
  }
  return data
}

function siteFlat(): Map<number, HourRow> {
  const data = new Map<number, HourRow>()
  for (let i = 0; i < DAYS * 24; i++) data.set(i, flatRow(20))
  return data
}

function readings(siteId: string, data: ReadonlyMap<number, HourRow>, deviceId = `dev-${siteId}`): StoredReading[] {
  return [...data].map(([i, values]) => {
    const ts = START + i * HOUR_MS + 30 * 60_000
    return { deviceId, siteId, ts, seq: null, values, receivedAt: ts, expectedPerHour: 1 }
  })
}

/** Every hour of the period with the same row. */
function constant(row: HourRow): Map<number, HourRow> {
  return new Map(Array.from({ length: DAYS * 24 }, (_, i) => [i, row] as const))
}

/** IO outdoor: PM2.5 10, NO2 20. IO indoor: PM2.5 14 (above outdoor every hour), NO2 6 (well below). */
const IO_OUTDOOR: HourRow = { pm1: 6, pm25: 10, pm10: 20, no2: 20, rh: 50 }
const IO_INDOOR: HourRow = { pm1: 9, pm25: 14, pm10: 16, no2: 6, rh: 35 }
const BG_ROW: HourRow = { pm1: 4, pm25: 6, pm10: 12, no2: 8, rh: 60 }

/** Mean and count of the NO2 hours of the period that pass `include` (day index, hour of day). */
function no2Mean(data: ReadonlyMap<number, HourRow>, include: (day: number, hour: number) => boolean = () => true) {
  let sum = 0
  let n = 0
  for (const [i, r] of data) {
    if (i < 0 || i >= DAYS * 24) continue
    const day = Math.floor(i / 24)
    if (!include(day, i % 24)) continue
    sum += r.no2
    n += 1
  }
  return { mean: sum / n, n }
}

const round3 = (x: number) => Math.round(x * 1000) / 1000

const Problem = z.object({ status: z.number(), code: z.string(), detail: z.string() })

let dir: Awaited<ReturnType<typeof tempDir>>
let storage: Storage
let api: RunningApi
const callers = new Map<string, Caller>()

const USERS: readonly { who: string; role: Role; sites: string[] }[] = [
  { who: 'staff', role: 'staff', sites: [] },
  { who: 'principal', role: 'principal', sites: [D] },
]

function get(who: string, path: string) {
  const caller = callers.get(who)
  if (caller === undefined) throw new Error(`no session for ${who}`)
  return call(api, caller, 'GET', path)
}

async function report(path: string, who = 'staff'): Promise<ReportResponse> {
  const res = await get(who, path)
  expect(res.status, JSON.stringify(res.body)).toBe(200)
  return ReportResponse.parse(res.body)
}

beforeAll(async () => {
  dir = await tempDir('skolluft-reports-')
  storage = openSqliteStorage({ path: join(dir.path, 'skolluft.db') })
  await storage.registry.upsertSites([
    ...[D, FLAT, OTHER].map((id, i) => ({
      id,
      name: `Skola ${id}`,
      kind: 'school' as const,
      municipality: 'Lund',
      lat: 55.7 + i / 100,
      lon: 13.2,
    })),
    { id: BG, name: 'Takstation', kind: 'background', municipality: 'Lund', lat: 55.75, lon: 13.2 },
    { id: FAR, name: 'Skola långt bort', kind: 'school', municipality: 'Höör', lat: 56.0, lon: 13.2 },
    { id: IO, name: 'Skola inne och ute', kind: 'school', municipality: 'Lund', lat: 55.705, lon: 13.2 },
    { id: IN, name: 'Skola inne', kind: 'school', municipality: 'Lund', lat: 55.706, lon: 13.2 },
  ])
  for (const [id, indoor, siteId] of [
    ['dev-io-out', false, IO],
    ['dev-io-in', true, IO],
    ['dev-in-only', true, IN],
  ] as const) {
    await storage.registry.addDevice(
      {
        id,
        model: 'test',
        sensors: ['pm1', 'pm25', 'pm10', 'no2', 'rh'],
        intervalS: 3600,
        secretHash: await hashSecret(`secret of ${id}`),
        placement: { siteId, from: START - 30 * DAY_MS, indoor, heightM: indoor ? 1 : 3 },
      },
      START - 30 * DAY_MS,
    )
  }
  await storage.readings.writeReadings([
    ...readings(D, siteD()),
    ...readings(FLAT, siteFlat()),
    ...readings(BG, constant(BG_ROW)),
    ...readings(IO, constant(IO_OUTDOOR), 'dev-io-out'),
    ...readings(IO, constant(IO_INDOOR), 'dev-io-in'),
    ...readings(IN, constant(IO_INDOOR), 'dev-in-only'),
  ])
  await addTestUsers(storage, USERS, NOW - DAY_MS)
  api = await startApi({
    log: silentLogger(),
    storage,
    clock,
    host: '127.0.0.1',
    port: 0,
    options: { publicMap: false },
  })
  for (const [who, caller] of await logInTestUsers(api, USERS)) callers.set(who, caller)
})

afterAll(async () => {
  await api?.close()
  await storage?.close()
  await dir?.cleanup()
})

describe('GET /sites/:id/report', () => {
  it("reports means and coverage as computed independently from the site's hours", async () => {
    const body = await report(`/sites/${D}/report?${PERIOD}`)
    expect(body).toMatchObject({
      site: D,
      from: new Date(START).toISOString(),
      to: new Date(START + DAYS * DAY_MS).toISOString(),
      generated_at: new Date(NOW).toISOString(),
    })
    const data = siteD()
    const all = no2Mean(data)
    // 49 × 24 − 24 (day 20) − 12 (day 10 afternoon); the hour before the period does not count.
    expect(all.n).toBe(DAYS * 24 - 36)
    const no2 = body.report.metrics.find((m) => m.metric === 'no2')
    expect(no2).toMatchObject({
      mean: round3(all.mean),
      countedHours: all.n,
      expectedHours: DAYS * 24,
      coverage: round3(all.n / (DAYS * 24)),
      sufficientCoverage: all.n / (DAYS * 24) >= 0.85,
      // Day 10 has 12 hours (< 18): not a valid day; day 20 none.
      validDays: DAYS - 2,
      expectedDays: DAYS,
    })
    // The highest hour is 60, first on Monday 5 January 07:00 UTC+1.
    expect(no2?.worstHours[0]).toEqual({ t: new Date(START + 7 * HOUR_MS).toISOString(), value: 60, coverage: 1 })
    expect(body.report.metrics.find((m) => m.metric === 'pm10')).toMatchObject({ mean: 20, countedHours: all.n })
    // An annual rule on NO2 carries the period mean, for orientation only (the period is not a calendar year).
    const annual = body.report.profiles
      .find((p) => p.id === 'eu2008-50')
      ?.rules.find((r) => r.rule === 'eu2008-no2-year')
    expect(annual).toMatchObject({ kind: 'mean', mean: round3(all.mean), exceeded: null })
    expect(body.report.periodIsYear).toBe(false)
    // Profiles: local 07 on weekdays-and-weekends mixed; Monday's mean from its own hours.
    const profile = body.profiles.find((p) => p.metric === 'no2')
    expect(profile?.timeZone).toBe('Europe/Stockholm')
    const h7 = no2Mean(data, (_d, h) => h === 7)
    expect(profile?.hourOfDay[7]).toMatchObject({ key: 7, mean: round3(h7.mean), hours: h7.n, periodHours: DAYS })
    const monday = no2Mean(data, (d) => d % 7 === 0)
    expect(profile?.dayOfWeek[0]).toMatchObject({ key: 0, mean: round3(monday.mean), hours: monday.n })
    expect(profile?.season.map((b) => b.hours)).toEqual([all.n, 0, 0, 0])
  })

  it('suggests the drop-off measure with its numbers, and says what was not evaluated', async () => {
    const body = await report(`/sites/${D}/report?${PERIOD}`)
    const data = siteD()
    const weekdayMorning = no2Mean(data, (d, h) => isWeekdayIndex(d) && (h === 7 || h === 8))
    const weekdayDaily = no2Mean(data, (d) => isWeekdayIndex(d))
    const weekendMorning = no2Mean(data, (d, h) => !isWeekdayIndex(d) && (h === 7 || h === 8))
    const weekendDaily = no2Mean(data, (d) => !isWeekdayIndex(d))
    // The local increment over BG is tested below; here the site's own patterns.
    const own = body.suggestions.filter((s) => s.pattern !== 'local-increment')
    expect(own).toHaveLength(1)
    const [suggestion] = own
    expect(suggestion).toMatchObject({
      measureId: 'traffic-at-drop-off',
      pattern: 'drop-off-peak',
      metric: 'no2',
      // Thinnest group: weekend 07–09, 14 days × 2 hours less Sunday day 20.
      hours: 26,
      coverage: round3(26 / 28),
      values: {
        weekdayMorning: 60,
        weekdayDaily: round3(weekdayDaily.mean),
        weekdayRatio: round3(weekdayMorning.mean / weekdayDaily.mean),
        weekendMorning: 20,
        weekendDaily: round3(weekendDaily.mean),
        weekendRatio: 1,
      },
    })
    expect(weekendMorning.n).toBe(26)
    expect(suggestion?.evidence.en).toContain(`averaged 60.0 µg/m³ against ${weekdayDaily.mean.toFixed(1)} µg/m³`)
    expect(suggestion?.evidence.sv).toMatch(/^Data tyder på/)
    expect(body.evaluated).toContainEqual({ pattern: 'drop-off-peak', metric: 'no2', result: 'found' })
    expect(body.evaluated).toContainEqual({ pattern: 'drop-off-peak', metric: 'pm10', result: 'not_found' })
    // January–February has no spring and no summer: those patterns had no data, not a negative finding.
    expect(body.evaluated).toContainEqual({ pattern: 'spring-road-dust', metric: 'pm10', result: 'no_data' })
    expect(body.evaluated).toContainEqual({ pattern: 'winter-evening-peak', metric: 'pm25', result: 'no_data' })
    // D has an urban background site within 20 km but no indoor device.
    expect(body.not_evaluated.map((n) => n.pattern).sort()).toEqual(['indoor-follows-outdoor', 'indoor-sources'])
    expect(body.not_evaluated.every((n) => /indoor and an outdoor device.*no indoor device/.test(n.reason))).toBe(true)
    expect(body.not_evaluated.map((n) => n.code)).toEqual(['NO_INDOOR_DEVICE', 'NO_INDOOR_DEVICE'])
    expect(body.indoor_outdoor).toBeNull()
    expect(body.indoor_only).toBe(false)
  })

  it('suggests none of its own patterns for a flat site', async () => {
    const body = await report(`/sites/${FLAT}/report?${PERIOD}`)
    expect(body.suggestions.filter((s) => s.pattern !== 'local-increment')).toEqual([])
    expect(body.skipped).toEqual([])
    expect(body.evaluated).toContainEqual({ pattern: 'drop-off-peak', metric: 'no2', result: 'not_found' })
    expect(body.report.metrics.find((m) => m.metric === 'no2')).toMatchObject({ mean: 20, coverage: 1 })
  })

  it('finds the drop-off pattern in four weeks of data (the weekend mornings of a month are enough evidence)', async () => {
    // 5 Jan – 1 Feb: four whole weeks, 8 weekend days = 16 weekend drop-off hours (MIN_PATTERN_HOURS is 12).
    const body = await report(`/sites/${D}/report?from=2026-01-05&to=2026-02-01`)
    expect(body.skipped).toEqual([])
    expect(body.suggestions.map((s) => `${s.pattern}/${s.metric}`)).toContain('drop-off-peak/no2')
  })

  it('skips the drop-off pattern over January: the data (from 5 Jan) cover too little of its weekend mornings', async () => {
    const body = await report(`/sites/${D}/report?from=2026-01-01&to=2026-01-31`)
    expect(body.suggestions.filter((s) => s.pattern !== 'local-increment')).toEqual([])
    expect(body.skipped).toEqual([
      expect.objectContaining({ pattern: 'drop-off-peak', metric: 'no2', reason: 'LOW_COVERAGE' }),
    ])
  })

  it('gives the same numbers as CSV, one row per metric and rule', async () => {
    const json = await report(`/sites/${D}/report?${PERIOD}`)
    const res = await get('staff', `/sites/${D}/report?${PERIOD}&format=csv`)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('text/csv; charset=utf-8')
    const text = z.string().parse(res.body)
    expect(text.endsWith('\r\n')).toBe(true)
    const lines = text.slice(0, -2).split('\r\n')
    expect(lines[0]).toBe(REPORT_CSV_COLUMNS.join(','))
    const rows = lines.slice(1).map((line) => {
      const cells = line.split(',')
      expect(cells).toHaveLength(REPORT_CSV_COLUMNS.length)
      return Object.fromEntries(REPORT_CSV_COLUMNS.map((c, i) => [c, cells[i] ?? '']))
    })
    const num = (cell: string | undefined) => (cell === '' || cell === undefined ? null : Number(cell))
    const metricRows = rows.filter((r) => r.kind === 'metric')
    expect(metricRows.map((r) => r.metric)).toEqual(json.report.metrics.map((m) => m.metric))
    for (const m of json.report.metrics) {
      const row = metricRows.find((r) => r.metric === m.metric)
      expect(num(row?.mean)).toBe(m.mean)
      expect(num(row?.counted)).toBe(m.countedHours)
      expect(num(row?.expected)).toBe(m.expectedHours)
      expect(num(row?.coverage)).toBe(m.coverage)
      expect(row?.sufficient_coverage).toBe(String(m.sufficientCoverage))
    }
    const ruleRows = rows.filter((r) => r.kind === 'rule')
    const rules = json.report.profiles.flatMap((p) => p.rules.map((r) => ({ profile: p.id, ...r })))
    expect(ruleRows).toHaveLength(rules.length)
    expect(rules.length).toBeGreaterThan(10)
    for (const r of rules) {
      const row = ruleRows.find((x) => x.profile === r.profile && x.rule === r.rule)
      expect(row, `${r.profile}/${r.rule}`).toBeDefined()
      expect(num(row?.value)).toBe(r.value)
      expect(num(row?.coverage)).toBe(r.coverage)
      expect(row?.period).toBe(r.period)
      if (r.kind === 'count') {
        expect(num(row?.count)).toBe(r.count)
        expect(num(row?.allowed_per_year)).toBe(r.allowedPerYear)
        expect(num(row?.counted)).toBe(r.validPeriods)
        expect(num(row?.expected)).toBe(r.expectedPeriods)
      } else {
        expect(num(row?.mean)).toBe(r.mean)
        expect(num(row?.counted)).toBe(r.countedHours)
      }
    }
  })

  it('gives the background and indoor/outdoor comparisons as CSV rows with the JSON numbers', async () => {
    const csvRows = async (site: string) => {
      const text = z.string().parse((await get('staff', `/sites/${site}/report?${PERIOD}&format=csv`)).body)
      return text
        .slice(0, -2)
        .split('\r\n')
        .slice(1)
        .map((line) => Object.fromEntries(REPORT_CSV_COLUMNS.map((c, i) => [c, line.split(',')[i] ?? ''])))
    }
    const cases = [
      { site: D, kind: 'background', rule: BG },
      { site: IO, kind: 'indoor_outdoor', rule: 'indoor' },
    ] as const
    for (const { site, kind, rule } of cases) {
      const json = await report(`/sites/${site}/report?${PERIOD}`)
      const comparisons = (kind === 'background' ? json.background : json.indoor_outdoor)?.comparisons ?? []
      expect(comparisons.length, kind).toBeGreaterThan(0)
      const rows = (await csvRows(site)).filter((r) => r.kind === kind)
      expect(rows.map((r) => r.metric)).toEqual(comparisons.map((c) => c.metric))
      for (const c of comparisons) {
        const row = rows.find((r) => r.metric === c.metric)
        expect(row).toMatchObject({
          rule,
          mean: c.meanA === null ? '' : String(c.meanA),
          value: c.meanB === null ? '' : String(c.meanB),
          counted: String(c.pairedHours),
          expected: String(c.periodHours),
        })
      }
    }
  })

  it('compares a school with the nearest urban background site, hour by hour, and finds the local increment', async () => {
    const body = await report(`/sites/${D}/report?${PERIOD}`)
    const all = no2Mean(siteD())
    // Great circle over 0.05° of latitude: 0.05 × π/180 × 6371.0088 km.
    expect(body.background).toMatchObject({
      site: BG,
      name: 'Takstation',
      distance_km: round3((0.05 * Math.PI * 6371.0088) / 180),
      max_distance_km: 20,
    })
    const no2 = body.background?.comparisons.find((c) => c.metric === 'no2')
    // BG has every hour; D's counted hours are the paired ones.
    expect(no2).toMatchObject({
      periodHours: DAYS * 24,
      hoursA: all.n,
      hoursB: DAYS * 24,
      pairedHours: all.n,
      meanA: round3(all.mean),
      meanB: 8,
      meanDifference: round3(all.mean - 8),
      ratioOfMeans: round3(all.mean / 8),
      shareAGreater: 1,
    })
    expect(body.evaluated).toContainEqual({ pattern: 'local-increment', metric: 'no2', result: 'found' })
    // PM2.5 10 against 6: ratio 1.67 ≥ 1.2.
    expect(body.evaluated).toContainEqual({ pattern: 'local-increment', metric: 'pm25', result: 'found' })
    const local = body.suggestions.filter((s) => s.pattern === 'local-increment')
    expect(local.length).toBeGreaterThan(0)
    expect(local.find((s) => s.metric === 'pm25')?.values).toMatchObject({ site: 10, background: 6, increment: 4 })
  })

  it('says when no background site lies within 20 km, and that a background site has no background itself', async () => {
    const far = await report(`/sites/${FAR}/report?${PERIOD}`)
    expect(far.background).toBeNull()
    expect(far.not_evaluated).toContainEqual({
      pattern: 'local-increment',
      code: 'NO_BACKGROUND',
      reason: expect.stringMatching(/within 20 km/),
    })
    const bg = await report(`/sites/${BG}/report?${PERIOD}`)
    expect(bg.background).toBeNull()
    expect(bg.not_evaluated).toContainEqual({
      pattern: 'local-increment',
      code: 'IS_BACKGROUND',
      reason: expect.stringMatching(/itself/),
    })
  })

  it("leaves out a background site the caller may not read (a principal's report of their own school)", async () => {
    const body = await report(`/sites/${D}/report?${PERIOD}`, 'principal')
    expect(body.background).toBeNull()
    expect(body.not_evaluated.map((n) => n.pattern)).toContain('local-increment')
  })

  it('uses the outdoor devices for the rules at a site with indoor and outdoor devices, and pairs the two', async () => {
    const body = await report(`/sites/${IO}/report?${PERIOD}`)
    // Site-wide the PM2.5 mean would be (10 + 14) / 2 = 12; the report counts outdoor air only.
    expect(body.report.metrics.find((m) => m.metric === 'pm25')).toMatchObject({ mean: 10, coverage: 1 })
    expect(body.report.metrics.find((m) => m.metric === 'no2')).toMatchObject({ mean: 20, coverage: 1 })
    expect(body.indoor_outdoor).toMatchObject({
      indoor_devices: ['dev-io-in'],
      outdoor_devices: ['dev-io-out'],
      report_series: 'outdoor',
    })
    expect(body.indoor_only).toBe(false)
    const pm25 = body.indoor_outdoor?.comparisons.find((c) => c.metric === 'pm25')
    expect(pm25).toMatchObject({
      pairedHours: DAYS * 24,
      meanA: 14,
      meanB: 10,
      ratioOfMeans: 1.4,
      shareAGreater: 1,
      coverage: 1,
    })
    expect(body.evaluated).toContainEqual({ pattern: 'indoor-sources', metric: 'pm25', result: 'found' })
    expect(body.evaluated).toContainEqual({ pattern: 'indoor-follows-outdoor', metric: 'pm25', result: 'not_found' })
    // PM10 indoors 16 against 20: ratio 0.8 ≥ 0.6, never above: follows outdoor.
    expect(body.evaluated).toContainEqual({ pattern: 'indoor-follows-outdoor', metric: 'pm10', result: 'found' })
    expect(body.evaluated).toContainEqual({ pattern: 'indoor-sources', metric: 'pm10', result: 'not_found' })
    // NO2 indoors 6 against 20 outdoors: ratio 0.3, never above: neither pattern.
    expect(body.evaluated).toContainEqual({ pattern: 'indoor-follows-outdoor', metric: 'no2', result: 'not_found' })
    expect(body.suggestions.map((s) => `${s.pattern}/${s.metric}`)).toContain('indoor-sources/pm25')
    expect(body.not_evaluated.map((n) => n.pattern)).not.toContain('indoor-sources')
    // Local increment over BG with the outdoor series: PM2.5 10 against 6.
    expect(body.background?.comparisons.find((c) => c.metric === 'pm25')).toMatchObject({ meanA: 10, meanB: 6 })
  })

  it('says when a site measured indoor air only', async () => {
    const body = await report(`/sites/${IN}/report?${PERIOD}`)
    expect(body.indoor_only).toBe(true)
    expect(body.indoor_outdoor).toBeNull()
    expect(body.report.metrics.find((m) => m.metric === 'pm25')).toMatchObject({ mean: 14 })
    expect(body.not_evaluated).toContainEqual({
      pattern: 'indoor-sources',
      code: 'NO_OUTDOOR_DEVICE',
      reason: expect.stringMatching(/no outdoor device/),
    })
  })

  it('evaluates only the selected threshold profiles and names unknown ones', async () => {
    const body = await report(`/sites/${D}/report?${PERIOD}&profiles=eu2008-50,who2021-aqg,eu2008-50`)
    expect(body.report.profiles.map((p) => p.id)).toEqual(['who2021-aqg', 'eu2008-50'])
    expect(body.threshold_profiles).toEqual(['who2021-aqg', 'eu2008-50'])
    const all = await report(`/sites/${D}/report?${PERIOD}`)
    expect(all.threshold_profiles.length).toBeGreaterThan(5)
    expect(all.report.profiles.map((p) => p.id)).toEqual(all.threshold_profiles)
    const csv = await get('staff', `/sites/${D}/report?${PERIOD}&profiles=eu2008-50&format=csv`)
    expect(z.string().parse(csv.body)).not.toMatch(/who2021/)
    const bad = await get('staff', `/sites/${D}/report?${PERIOD}&profiles=eu2008-50,nope,who2099`)
    expect(bad.status).toBe(400)
    expect(Problem.parse(bad.body).detail).toMatch(/unknown profile ids: nope, who2099/)
    expect((await get('staff', `/sites/${D}/report?${PERIOD}&profiles=`)).status).toBe(400)
  })

  it.each([
    ['to before from', 'from=2026-02-01&to=2026-01-31'],
    ['more than 400 days', 'from=2025-01-01&to=2026-02-05'],
    ['not a date', 'from=2026-02-30&to=2026-03-01'],
    ['a time instead of a day', 'from=2026-01-05T00:00:00Z&to=2026-02-22'],
    ['missing to', 'from=2026-01-05'],
    ['unknown parameter', `${PERIOD}&year=2026`],
    ['unknown format', `${PERIOD}&format=pdf`],
  ])('answers 400 problem+json for %s', async (_name, query) => {
    const res = await get('staff', `/sites/${D}/report?${query}`)
    expect(res.status).toBe(400)
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/)
    expect(Problem.parse(res.body)).toMatchObject({ status: 400, code: 'invalid_request' })
  })

  it("lets a principal read their own site only: 403 for another school's, 404 for an unknown one", async () => {
    expect((await get('principal', `/sites/${D}/report?${PERIOD}`)).status).toBe(200)
    const other = await get('principal', `/sites/${OTHER}/report?${PERIOD}`)
    expect(other.status).toBe(403)
    expect(other.headers.get('content-type')).toMatch(/^application\/problem\+json/)
    expect((await get('principal', `/sites/${OTHER}/report?${PERIOD}&format=csv`)).status).toBe(403)
    expect((await get('principal', `/sites/site-nowhere/report?${PERIOD}`)).status).toBe(404)
    expect((await call(api, { headers: {}, csrf: null }, 'GET', `/sites/${D}/report?${PERIOD}`)).status).toBe(401)
  })
})

describe('GET /sites/:id/report with an edited catalogue of measures', () => {
  it('suggests from the catalogue the municipality saved, not the default one', async () => {
    const before = await report(`/sites/${D}/report?${PERIOD}`)
    expect(before.evaluated).toContainEqual({ pattern: 'drop-off-peak', metric: 'pm10', result: 'not_found' })
    const saved = await storage.measures.catalogue()
    // The drop-off measure renamed and kept to NO2: the report names it so, and looks for the pattern in NO2 only.
    const edited = saved.measures.map((m) =>
      m.id === 'traffic-at-drop-off'
        ? {
            ...m,
            name: { sv: 'Gångfartsområde vid lämning', en: 'Walking-pace street at drop-off' },
            metrics: ['no2' as const],
          }
        : m,
    )
    await storage.measures.saveCatalogue(edited, { expectedRevision: saved.revision, by: 'test', at: NOW })
    try {
      const after = await report(`/sites/${D}/report?${PERIOD}`)
      const dropOff = after.suggestions.filter((s) => s.pattern === 'drop-off-peak')
      expect(dropOff.map((s) => [s.measureId, s.metric, s.name.en])).toEqual([
        ['traffic-at-drop-off', 'no2', 'Walking-pace street at drop-off'],
      ])
      expect(after.evaluated.filter((e) => e.pattern === 'drop-off-peak').map((e) => e.metric)).toEqual(['no2'])
    } finally {
      const current = await storage.measures.catalogue()
      await storage.measures.saveCatalogue(saved.measures, { expectedRevision: current.revision, by: 'test', at: NOW })
    }
  })
})
