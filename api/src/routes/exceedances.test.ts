import { join } from 'node:path'
import {
  DAY_MS,
  HOUR_MS,
  type Metric,
  PROFILES,
  type Role,
  type RuleHour,
  type ThresholdProfile,
  type ThresholdRule,
} from '@skolluft/core'
import { silentLogger } from '@skolluft/runtime'
import { openSqliteStorage, type Storage, type StoredReading } from '@skolluft/storage'
import { tempDir } from '@skolluft/testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { type RunningApi, startApi } from '../server.ts'
import { ANONYMOUS_CALLER, addTestUsers, type Caller, call, logInTestUsers } from '../test-http.ts'
import { ExceedancesResponse, exceedanceProfiles } from './exceedances.ts'

/**
 * Yearly exceedance counts over real HTTP against a real SQLite file, with readings written through
 * storage.readings.writeReadings (one reading an hour, one expected an hour: every written hour is valid).
 * The expected counts, coverage and annual means are computed here from the constructed hours, without core:
 * PM hours at relative humidity above 90 % are left out, a day counts with ≥ 18 counted hours, a count is of
 * means strictly above the value, coverage is over the whole year.
 */
const NOW = Date.parse('2026-11-30T12:00:00Z')
const clock = () => NOW

/** 1 January 2025 and 2026, 00:00 UTC+1. */
const Y2025 = Date.parse('2024-12-31T23:00:00Z')
const Y2026 = Date.parse('2025-12-31T23:00:00Z')
const HOURS_2025 = 8760

/** A: a constructed quarter of 2025 and a few days of 2026. B: another school. F: a full year 2025. */
const A = 'site-a'
const B = 'site-b'
const F = 'site-f'

interface HourRow {
  readonly pm1: number
  readonly pm25: number
  readonly pm10: number
  readonly no2: number
  readonly rh: number
}

function row(pm10: number, no2: number, rh = 50): HourRow {
  // pm1 < pm25 < pm10, as the quality checks' PM order demands.
  return { pm1: pm10 * 0.3, pm25: pm10 * 0.5, pm10, no2, rh }
}

/**
 * Site A, 2025: hour index (from 1 January 00:00 UTC+1) → values; absent hours have no reading.
 * Days 0–89 at PM10 20, NO2 30, RH 50, except:
 * - days 10, 11, 40: PM10 60 all day (3 days above the EU daily limit of 50);
 * - day 50: PM10 60 all day but RH 95 all day (every PM hour excluded: no valid PM day); NO2 120 all day;
 * - day 60: hours 0–5 PM10 200 at RH 95 (excluded), the other 18 at 40 (valid day, mean 40, not above 50;
 *   with the humid hours it would be 80);
 * - day 20: NO2 250 at 07–11 (5 hours above 200); day 21: NO2 100 at 07–16 (10 hours above 90);
 * - day 70: hours 16–23 missing (16 hours: no valid day).
 * Plus one hour before the year (NO2 300, PM10 400) that must not count.
 */
function siteA2025(): Map<number, HourRow> {
  const data = new Map<number, HourRow>()
  data.set(-1, row(400, 300))
  for (let d = 0; d < 90; d++) {
    for (let h = 0; h < 24; h++) {
      let r = row(20, 30)
      if ([10, 11, 40].includes(d)) r = row(60, 30)
      if (d === 50) r = row(60, 120, 95)
      if (d === 60) r = h < 6 ? row(200, 30, 95) : row(40, 30)
      if (d === 20 && h >= 7 && h <= 11) r = row(20, 250)
      if (d === 21 && h >= 7 && h <= 16) r = row(20, 100)
      if (d === 70 && h >= 16) continue
      data.set(d * 24 + h, r)
    }
  }
  return data
}

/** Site A, 2026: the first 5 days at PM10 60 (above 50 every day). */
function siteA2026(): Map<number, HourRow> {
  const data = new Map<number, HourRow>()
  for (let i = 0; i < 5 * 24; i++) data.set(i, row(60, 30))
  return data
}

/** Site F: every hour of 2025, a daily cycle (PM10 10–56, NO2 up to 95 at rush hour), humid nights in autumn. */
function siteF2025(): Map<number, HourRow> {
  const data = new Map<number, HourRow>()
  for (let i = 0; i < HOURS_2025; i++) {
    const h = i % 24
    const d = Math.floor(i / 24)
    const rush = h === 8 || h === 17
    data.set(i, row(10 + 2 * h, rush && d % 3 === 0 ? 95 : 20 + h, d > 270 && h < 5 ? 93 : 60))
  }
  return data
}

function readings(siteId: string, yearStart: number, data: ReadonlyMap<number, HourRow>): StoredReading[] {
  return [...data].map(([i, values]) => {
    const ts = yearStart + i * HOUR_MS + 30 * 60_000
    return { deviceId: `dev-${siteId}`, siteId, ts, seq: null, values, receivedAt: ts, expectedPerHour: 1 }
  })
}

interface Expected {
  readonly count: number
  readonly valid: number
  readonly expected: number
  readonly mean?: number | null
}

/** The count as the reference defines it, computed from the constructed hours of one whole year. */
function expectedFor(
  data: ReadonlyMap<number, HourRow>,
  rule: { pollutant: string; period: string; value: number },
  hoursInYear: number,
): Expected {
  const pollutant = z.enum(['pm25', 'pm10', 'no2']).parse(rule.pollutant)
  const counted = new Map<number, number>()
  for (const [i, r] of data) {
    if (i < 0 || i >= hoursInYear) continue
    if (pollutant !== 'no2' && r.rh > 90) continue
    counted.set(i, r[pollutant])
  }
  const values = [...counted.values()]
  if (rule.period === 'hour') {
    return { count: values.filter((v) => v > rule.value).length, valid: values.length, expected: hoursInYear }
  }
  if (rule.period === 'year') {
    const mean = values.length === 0 ? null : values.reduce((a, b) => a + b, 0) / values.length
    return { count: mean !== null && mean > rule.value ? 1 : 0, valid: values.length, expected: hoursInYear, mean }
  }
  const days = new Map<number, number[]>()
  for (const [i, v] of counted) {
    const list = days.get(Math.floor(i / 24)) ?? []
    list.push(v)
    days.set(Math.floor(i / 24), list)
  }
  const means = [...days.values()].filter((l) => l.length >= 18).map((l) => l.reduce((a, b) => a + b, 0) / l.length)
  return { count: means.filter((m) => m > rule.value).length, valid: means.length, expected: hoursInYear / 24 }
}

const round3 = (x: number) => Math.round(x * 1000) / 1000

type Report = z.infer<typeof ExceedancesResponse>
type RuleRow = Report['profiles'][number]['rules'][number]

function ruleOf(report: Report, profileId: string, ruleId: string): RuleRow {
  const found = report.profiles.find((p) => p.id === profileId)?.rules.find((r) => r.rule === ruleId)
  if (found === undefined) throw new Error(`no rule ${profileId}/${ruleId} in the report`)
  return found
}

/** Every rule of every profile that covers the whole year, against `expectedFor`. */
function checkAgainstIndependent(report: Report, data: ReadonlyMap<number, HourRow>, hoursInYear: number): number {
  let checked = 0
  for (const profile of report.profiles) {
    const clipped =
      (profile.valid_from !== null && profile.valid_from > `${report.year}-01-01`) ||
      (profile.valid_to !== null && profile.valid_to < `${report.year}-12-31`)
    if (clipped) continue
    for (const r of profile.rules) {
      const want = expectedFor(data, r, hoursInYear)
      const coverage = want.valid / want.expected
      expect(r, `${profile.id}/${r.rule}`).toMatchObject({
        count: want.count,
        exceeded: want.count > (r.allowed_per_year ?? 0),
        valid_periods: want.valid,
        expected_periods: want.expected,
        coverage: round3(coverage),
        sufficient_coverage: coverage >= 0.85,
      })
      if (r.period === 'year') {
        expect(r.annual_mean, `${profile.id}/${r.rule}`).toBe(
          want.mean === null || want.mean === undefined ? null : round3(want.mean),
        )
      } else {
        expect(r).not.toHaveProperty('annual_mean')
      }
      checked += 1
    }
  }
  return checked
}

const Problem = z.object({
  status: z.number(),
  code: z.string(),
  detail: z.string(),
  errors: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
})

let dir: Awaited<ReturnType<typeof tempDir>>
let storage: Storage
let publicOff: RunningApi
let publicOn: RunningApi
const callers = new Map<string, Caller>()

const USERS: readonly { who: string; role: Role; sites: string[] }[] = [
  { who: 'staff', role: 'staff', sites: [] },
  { who: 'principal', role: 'principal', sites: [A] },
  { who: 'researcher', role: 'researcher', sites: [] },
]

function get(server: RunningApi, who: string | null, path: string) {
  const caller = who === null ? ANONYMOUS_CALLER : callers.get(who)
  if (caller === undefined) throw new Error(`no session for ${who}`)
  return call(server, caller, 'GET', path)
}

async function report(path: string, who: string | null = 'staff', server = publicOff): Promise<Report> {
  const res = await get(server, who, path)
  expect(res.status, JSON.stringify(res.body)).toBe(200)
  return ExceedancesResponse.parse(res.body)
}

beforeAll(async () => {
  dir = await tempDir('skolluft-exceedances-')
  storage = openSqliteStorage({ path: join(dir.path, 'skolluft.db') })
  await storage.registry.upsertSites(
    [A, B, F].map((id, i) => ({
      id,
      name: `Skola ${id}`,
      kind: 'school',
      municipality: 'Lund',
      lat: 55.7 + i / 100,
      lon: 13.2,
    })),
  )
  await storage.readings.writeReadings([
    ...readings(A, Y2025, siteA2025()),
    ...readings(A, Y2026, siteA2026()),
    ...readings(B, Y2025, siteA2026()),
    ...readings(F, Y2025, siteF2025()),
  ])
  await addTestUsers(storage, USERS, NOW - DAY_MS)
  const base = { log: silentLogger(), storage, clock, host: '127.0.0.1', port: 0 }
  publicOff = await startApi({ ...base, options: { publicMap: false } })
  publicOn = await startApi({ ...base, options: { publicMap: true } })
  for (const [who, caller] of await logInTestUsers(publicOff, USERS)) callers.set(who, caller)
})

afterAll(async () => {
  await publicOff?.close()
  await publicOn?.close()
  await storage?.close()
  await dir?.cleanup()
})

describe('GET /sites/:id/exceedances', () => {
  it('counts a constructed year as computed independently, with coverage beside every count', async () => {
    const body = await report(`/sites/${A}/exceedances?year=2025`)
    expect(body).toMatchObject({
      site: A,
      year: 2025,
      from: '2024-12-31T23:00:00.000Z',
      to: '2025-12-31T23:00:00.000Z',
      generated_at: new Date(NOW).toISOString(),
    })
    // Every profile in force on some day of 2025: all but the two EU 2024/2881 ones (from 2030 and 11 Dec 2026).
    expect(body.profiles.map((p) => p.id)).toEqual(
      PROFILES.map((p) => p.id).filter((id) => id !== 'eu2024-2881' && id !== 'eu2024-2881-thresholds'),
    )
    const checked = checkAgainstIndependent(body, siteA2025(), HOURS_2025)
    expect(checked).toBeGreaterThan(40)
  })

  it('gives the hand-counted numbers for the EU limits, humid PM hours excluded and NO2 kept', async () => {
    const body = await report(`/sites/${A}/exceedances?year=2025&profile=eu2008-50`)
    expect(body.profiles.map((p) => p.id)).toEqual(['eu2008-50'])
    // Days 10, 11 and 40; not day 50 (all humid) nor day 60 (mean 40 without its 6 humid hours, 80 with them).
    // Valid days: 90 constructed − day 50 (no PM hour counted) − day 70 (16 hours) = 88.
    expect(ruleOf(body, 'eu2008-50', 'eu2008-pm10-day')).toEqual({
      rule: 'eu2008-pm10-day',
      pollutant: 'pm10',
      period: 'day',
      value: 50,
      allowed_per_year: 35,
      count: 3,
      exceeded: false,
      coverage: round3(88 / 365),
      valid_periods: 88,
      expected_periods: 365,
      sufficient_coverage: false,
    })
    // NO2 at 250 for 5 hours on day 20; the hour before the year (300) is not in it. Humidity does not touch NO2:
    // 90 × 24 − 8 missing hours.
    expect(ruleOf(body, 'eu2008-50', 'eu2008-no2-hour')).toMatchObject({
      count: 5,
      allowed_per_year: 18,
      exceeded: false,
      valid_periods: 2152,
      expected_periods: 8760,
      coverage: 0.246,
    })
    const pm10Year = ruleOf(body, 'eu2008-50', 'eu2008-pm10-year')
    expect(pm10Year).toMatchObject({ period: 'year', count: 0, allowed_per_year: null, exceeded: false })
    // Counted PM10 hours: 2152 − 24 (day 50) − 6 (day 60).
    expect(pm10Year.valid_periods).toBe(2122)
    expect(pm10Year.sufficient_coverage).toBe(false)
    // 72 hours at 60 (days 10, 11, 40), 18 at 40 (day 60), the other 2032 at 20.
    expect(pm10Year.annual_mean).toBe(round3((60 * 72 + 40 * 18 + 20 * 2032) / 2122))
    // The Swedish standards: NO2 above 90 in 5 + 10 + 24 hours; days above 60: day 20 (mean 75.8) and day 50 (120).
    const mkn = await report(`/sites/${A}/exceedances?year=2025&profile=se-mkn`)
    expect(ruleOf(mkn, 'se-mkn', 'se-mkn-no2-hour')).toMatchObject({ count: 39, allowed_per_year: 175 })
    expect(ruleOf(mkn, 'se-mkn', 'se-mkn-no2-day')).toMatchObject({ count: 2, allowed_per_year: 7, exceeded: false })
    expect(mkn.profiles[0]?.unverified).toMatch(/UNVERIFIED/)
  })

  it('counts a full year with full coverage', async () => {
    const body = await report(`/sites/${F}/exceedances?year=2025`)
    checkAgainstIndependent(body, siteF2025(), HOURS_2025)
    const no2Hour = ruleOf(body, 'se-mkn', 'se-mkn-no2-hour')
    // Rush hours (08 and 17) every third day: 122 days × 2.
    expect(no2Hour).toMatchObject({ count: 244, coverage: 1, valid_periods: 8760, sufficient_coverage: true })
    expect(no2Hour.exceeded).toBe(true)
    // Humid autumn nights: PM coverage below 1 but above 85 %.
    const pm10Year = ruleOf(body, 'se-mkn', 'se-mkn-pm10-year')
    expect(pm10Year.valid_periods).toBe(8760 - 94 * 5)
    expect(pm10Year.sufficient_coverage).toBe(true)
  })

  it('expects the whole current year, so its coverage says how much of the year is in', async () => {
    const body = await report(`/sites/${A}/exceedances?year=2026`)
    expect(ruleOf(body, 'eu2008-50', 'eu2008-pm10-day')).toMatchObject({
      count: 5,
      valid_periods: 5,
      expected_periods: 365,
      coverage: round3(5 / 365),
      sufficient_coverage: false,
    })
    // In force from 11 December 2026: counted over its 21 days only (no data then).
    const thresholds = body.profiles.find((p) => p.id === 'eu2024-2881-thresholds')
    expect(thresholds).toMatchObject({ valid_from: '2026-12-11', valid_to: null })
    expect(ruleOf(body, 'eu2024-2881-thresholds', 'eu2024-pm10-info')).toMatchObject({
      count: 0,
      valid_periods: 0,
      expected_periods: 21,
      coverage: 0,
      unverified: expect.stringMatching(/UNVERIFIED/),
    })
  })

  it('leaves running 24-hour rules out', async () => {
    const body = await report(`/sites/${A}/exceedances?year=2025`)
    const periods = new Set(body.profiles.flatMap((p) => p.rules.map((r) => r.period)))
    expect([...periods].sort()).toEqual(['day', 'hour', 'year'])
    // A profile with a running 24-h rule (none of today's has one) reports its other rules only.
    const rule = (id: string, period: ThresholdRule['period']): ThresholdRule => ({
      id,
      pollutant: 'pm10',
      period,
      value: 50,
      allowedPerYear: null,
      clearValue: 40,
      clearAfter: 1,
      persistence: 1,
      severity: 'info',
      escalateAt: [],
    })
    const profile: ThresholdProfile = {
      id: 'test-running',
      version: '1',
      name: 'test',
      source: 'test',
      validFrom: null,
      validTo: null,
      legal: false,
      rules: [rule('test-running24h', 'running24h'), rule('test-hour', 'hour')],
    }
    const hours = new Map<Metric, RuleHour[]>([
      ['pm10', Array.from({ length: 48 }, (_, i) => hourOf(Y2025 + i * HOUR_MS, 100))],
    ])
    const [result] = exceedanceProfiles(hours, [profile], 2025, NOW)
    expect(result?.rules.map((r) => [r.rule, r.count])).toEqual([['test-hour', 48]])
  })

  it('lets a principal read their own site, not another school’s; anonymous only with the public map', async () => {
    expect((await report(`/sites/${A}/exceedances?year=2025`, 'principal')).site).toBe(A)
    const other = await get(publicOff, 'principal', `/sites/${B}/exceedances?year=2025`)
    expect([other.status, Problem.parse(other.body).code]).toEqual([403, 'forbidden'])
    expect((await report(`/sites/${B}/exceedances?year=2025`, 'researcher')).site).toBe(B)
    const anonymous = await get(publicOff, null, `/sites/${A}/exceedances?year=2025`)
    expect([anonymous.status, Problem.parse(anonymous.body).code]).toEqual([401, 'unauthorized'])
    const open = await get(publicOn, null, `/sites/${B}/exceedances?year=2025`)
    expect(open.status).toBe(200)
    expect(open.headers.get('cache-control')).toMatch(/^public/)
  })

  it('answers an unknown site with 404', async () => {
    for (const id of ['no-such-site', 'Not%20An%20Id']) {
      const res = await get(publicOff, 'staff', `/sites/${id}/exceedances?year=2025`)
      expect([res.status, Problem.parse(res.body).code]).toEqual([404, 'site_not_found'])
    }
  })

  it.each([
    ['', 'year', /year is required/],
    ['?year=25', 'year', /four-digit/],
    ['?year=2025.0', 'year', /four-digit/],
    ['?year=1999', 'year', /from 2000 to 2026/],
    ['?year=2027', 'year', /from 2000 to 2026/],
    ['?year=2025&year=2026', 'year', /four-digit/],
    ['?year=2025&profile=who', 'profile', /profile must be one of who2021-aqg/],
    ['?year=2025&colour=red', '', /unknown query parameter: colour/],
  ])('refuses %j with a 400 naming %j', async (query, path, message) => {
    const res = await get(publicOff, 'staff', `/sites/${A}/exceedances${query}`)
    expect(res.status, JSON.stringify(res.body)).toBe(400)
    const problem = Problem.parse(res.body)
    expect(problem.code).toBe('invalid_request')
    expect(problem.errors?.map((e) => e.path)).toEqual([path])
    expect(problem.detail).toMatch(message)
  })

  it('refuses a named profile that is not in force in the year, saying when it is', async () => {
    const res = await get(publicOff, 'staff', `/sites/${A}/exceedances?year=2025&profile=eu2024-2881`)
    expect(res.status).toBe(400)
    expect(Problem.parse(res.body)).toMatchObject({
      code: 'profile_not_in_force',
      detail: 'profile eu2024-2881 applies from 2030-01-01, not in 2025',
    })
  })
})

function hourOf(t: number, mean: number): RuleHour {
  return { t, mean, coverage: 1, valid: true, suspect: false }
}
