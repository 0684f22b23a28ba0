import { join } from 'node:path'
import { DAY_MS, HOUR_MS, type Role } from '@skolluft/core'
import { hashSecret, silentLogger } from '@skolluft/runtime'
import { openSqliteStorage, type Storage, type StoredReading } from '@skolluft/storage'
import { tempDir } from '@skolluft/testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { type RunningApi, startApi } from '../server.ts'
import { ANONYMOUS_CALLER, addTestUsers, type Caller, call, logInTestUsers } from '../test-http.ts'
import { MUNICIPAL_CSV_COLUMNS, MUNICIPAL_REPORT_CACHE_MS, MunicipalReportResponse } from './municipal-report.ts'
import { ReportResponse } from './reports.ts'

/**
 * The municipality report over real HTTP against a real SQLite file. One week (Monday 5 – Sunday 11 January 2026,
 * UTC+1), one reading an hour with one expected an hour, constant levels per device, so every expected number is
 * written down here: PM2.5 A 10, B 14, C (preschool) 8, IO 12 outdoors (30 indoors), LOW 20 on half the hours,
 * BG (urban background) 6. PM10 = 1.5 × PM2.5 and NO2 10 everywhere, so with WHO 2021 (PM2.5 5, PM10 15, NO2 10
 * µg/m³ a year) PM2.5 gives every site its score: PM2.5 / 5.
 */
const NOW = Date.parse('2026-11-30T12:00:00Z')
const START = Date.parse('2026-01-04T23:00:00Z')
const DAYS = 7
const PERIOD = 'from=2026-01-05&to=2026-01-11'
const HOURS = DAYS * 24

interface SiteSpec {
  readonly id: string
  readonly kind: 'school' | 'preschool' | 'background'
  readonly pm25: number
  /** Keep hour i when true; default every hour. */
  readonly keep?: (i: number) => boolean
}

const SITES: readonly SiteSpec[] = [
  { id: 'a', kind: 'school', pm25: 10 },
  { id: 'b', kind: 'school', pm25: 14 },
  { id: 'c', kind: 'preschool', pm25: 8 },
  { id: 'low', kind: 'school', pm25: 20, keep: (i) => i % 2 === 0 },
  { id: 'bg', kind: 'background', pm25: 6 },
]
/** IO has an outdoor (PM2.5 12) and an indoor (PM2.5 30) device. */
const IO = 'io'

const row = (pm25: number) => ({ pm1: pm25 / 2, pm25, pm10: pm25 * 1.5, no2: 10, rh: 50 })

function readings(siteId: string, deviceId: string, pm25: number, keep: (i: number) => boolean = () => true) {
  const out: StoredReading[] = []
  for (let i = 0; i < HOURS; i++) {
    if (!keep(i)) continue
    const ts = START + i * HOUR_MS + 30 * 60_000
    out.push({ deviceId, siteId, ts, seq: null, values: row(pm25), receivedAt: ts, expectedPerHour: 1 })
  }
  return out
}

const Problem = z.object({ status: z.number(), code: z.string(), detail: z.string() })

let dir: Awaited<ReturnType<typeof tempDir>>
let storage: Storage
let api: RunningApi
const callers = new Map<string, Caller>()
const USERS: readonly { who: string; role: Role; sites: string[] }[] = [
  { who: 'staff', role: 'staff', sites: [] },
  { who: 'principal', role: 'principal', sites: ['a'] },
]

function get(who: string, path: string) {
  const caller = callers.get(who)
  if (caller === undefined) throw new Error(`no session for ${who}`)
  return call(api, caller, 'GET', path)
}

async function municipal(query: string): Promise<MunicipalReportResponse> {
  const res = await get('staff', `/reports/municipality?${query}`)
  expect(res.status, JSON.stringify(res.body)).toBe(200)
  return MunicipalReportResponse.parse(res.body)
}

beforeAll(async () => {
  dir = await tempDir('skolluft-municipal-report-')
  storage = openSqliteStorage({ path: join(dir.path, 'skolluft.db') })
  await storage.registry.upsertSites([
    ...SITES.map((s, i) => ({
      id: s.id,
      name: `Plats ${s.id}`,
      kind: s.kind,
      municipality: 'Lund',
      lat: 55.7 + i / 100,
      lon: 13.2,
    })),
    { id: IO, name: 'Plats io', kind: 'school', municipality: 'Lund', lat: 55.69, lon: 13.2 },
  ])
  for (const [id, indoor] of [
    ['dev-io-out', false],
    ['dev-io-in', true],
  ] as const) {
    await storage.registry.addDevice(
      {
        id,
        model: 'test',
        sensors: ['pm1', 'pm25', 'pm10', 'no2', 'rh'],
        intervalS: 3600,
        secretHash: await hashSecret(`secret of ${id}`),
        placement: { siteId: IO, from: START - 30 * DAY_MS, indoor, heightM: null },
      },
      START - 30 * DAY_MS,
    )
  }
  await storage.readings.writeReadings([
    ...SITES.flatMap((s) => readings(s.id, `dev-${s.id}`, s.pm25, s.keep)),
    ...readings(IO, 'dev-io-out', 12),
    ...readings(IO, 'dev-io-in', 30),
  ])
  await addTestUsers(storage, USERS, NOW - DAY_MS)
  api = await startApi({
    log: silentLogger(),
    storage,
    clock: () => NOW,
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

describe('GET /reports/municipality', () => {
  it('takes the median over the schools and preschools with enough data, and lists the background apart', async () => {
    const body = await municipal(PERIOD)
    expect(body).toMatchObject({
      from: new Date(START).toISOString(),
      to: new Date(START + DAYS * DAY_MS).toISOString(),
      generated_at: new Date(NOW).toISOString(),
      outdoor_only_sites: [IO],
    })
    expect(body.report.sites).toBe(5)
    expect(body.report.backgroundSites).toBe(1)
    const pm25 = body.report.metrics.find((m) => m.metric === 'pm25')
    // Counting: a 10, b 14, c 8, io 12 (outdoor only) → median (10 + 12) / 2 = 11; low (50 %) and bg are not in it.
    expect(pm25?.median).toBe(11)
    expect(pm25?.included).toBe(4)
    expect(pm25?.sites.map((s) => [s.siteId, s.mean, s.differenceFromMedian])).toEqual([
      ['a', 10, -1],
      ['b', 14, 3],
      ['c', 8, -3],
      [IO, 12, 1],
    ])
    expect(pm25?.leftOut).toEqual([
      { siteId: 'low', name: 'Plats low', kind: 'school', reason: 'insufficient-coverage', mean: 20, coverage: 0.5 },
    ])
    expect(pm25?.kinds).toEqual([
      { kind: 'preschool', median: 8, sites: 1 },
      { kind: 'school', median: 12, sites: 3 },
    ])
    expect(pm25?.background).toEqual([
      { siteId: 'bg', name: 'Plats bg', mean: 6, coverage: 1, sufficientCoverage: true },
    ])
  })

  it('ranks by the highest ratio to the strictest annual value of the selected profiles, background left out', async () => {
    const body = await municipal(`${PERIOD}&profiles=who2021-aqg`)
    expect(body.threshold_profiles).toEqual(['who2021-aqg'])
    const { ranking } = body.report
    expect(ranking.basis.find((b) => b.metric === 'pm25')).toMatchObject({ value: 5, profile: 'who2021-aqg' })
    expect(ranking.ranked.map((r) => [r.rank, r.siteId, r.score, r.drivenBy])).toEqual([
      [1, 'b', 2.8, 'pm25'],
      [2, IO, 2.4, 'pm25'],
      [3, 'a', 2, 'pm25'],
      [4, 'c', 1.6, 'pm25'],
    ])
    expect(ranking.notEnoughData.map((n) => n.siteId)).toEqual(['low'])
    expect(ranking.formula.en).toContain('PM2.5 5 µg/m³')
    expect(ranking.formula.sv).toContain('5 µg/m³ (who2021-aqg-pm25-year)')
  })

  it('gives every site the numbers of its own site report for the same period and profiles', async () => {
    const body = await municipal(`${PERIOD}&profiles=eu2008-50`)
    for (const id of ['a', 'b', IO, 'low']) {
      const res = await get('staff', `/sites/${id}/report?${PERIOD}&profiles=eu2008-50`)
      const own = ReportResponse.parse(res.body)
      for (const m of own.report.metrics) {
        const municipalMetric = body.report.metrics.find((x) => x.metric === m.metric)
        const counted = municipalMetric?.sites.find((s) => s.siteId === id)
        const left = municipalMetric?.leftOut.find((s) => s.siteId === id)
        expect(counted?.mean ?? left?.mean, `${id} ${m.metric}`).toBe(m.mean)
        expect(counted?.coverage ?? left?.coverage, `${id} ${m.metric}`).toBe(m.coverage)
      }
    }
  })

  it('gives the same numbers as CSV', async () => {
    const json = await municipal(PERIOD)
    const res = await get('staff', `/reports/municipality?${PERIOD}&format=csv`)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('text/csv; charset=utf-8')
    expect(res.headers.get('content-disposition')).toContain('report-municipality-2026-01-05-2026-01-11.csv')
    const text = z.string().parse(res.body)
    const lines = text.slice(0, -2).split('\r\n')
    expect(lines[0]).toBe(MUNICIPAL_CSV_COLUMNS.join(','))
    const rows = lines.slice(1).map((line) => {
      const cells = line.split(',')
      expect(cells).toHaveLength(MUNICIPAL_CSV_COLUMNS.length)
      return Object.fromEntries(MUNICIPAL_CSV_COLUMNS.map((c, i) => [c, cells[i] ?? '']))
    })
    const num = (cell: string | undefined) => (cell === '' || cell === undefined ? null : Number(cell))
    for (const m of json.report.metrics) {
      expect(num(rows.find((r) => r.kind === 'median' && r.metric === m.metric)?.median)).toBe(m.median)
      for (const s of m.sites) {
        const r = rows.find((x) => x.kind === 'site' && x.metric === m.metric && x.site === s.siteId)
        expect(num(r?.mean)).toBe(s.mean)
        expect(num(r?.ratio_to_median)).toBe(s.ratioToMedian)
        expect(num(r?.rank_in_kind)).toBe(s.rankInKind)
      }
      expect(rows.filter((r) => r.kind === 'left_out' && r.metric === m.metric)).toHaveLength(m.leftOut.length)
      const bg = rows.find((r) => r.kind === 'background' && r.metric === m.metric)
      expect(num(bg?.mean)).toBe(m.background[0]?.mean)
    }
    const ranked = rows.filter((r) => r.kind === 'rank')
    expect(ranked.map((r) => [num(r.rank), r.site, num(r.score)])).toEqual(
      json.report.ranking.ranked.map((r) => [r.rank, r.siteId, r.score]),
    )
    expect(rows.filter((r) => r.kind === 'not_ranked').map((r) => r.site)).toEqual(['low'])
  })

  it('refuses a principal (403, with the reason) and an anonymous caller (401)', async () => {
    const res = await get('principal', `/reports/municipality?${PERIOD}`)
    expect(res.status).toBe(403)
    expect(Problem.parse(res.body).detail).toMatch(/compares every site/)
    expect((await call(api, ANONYMOUS_CALLER, 'GET', `/reports/municipality?${PERIOD}`)).status).toBe(401)
  })

  it.each([
    ['an unknown profile', `${PERIOD}&profiles=who2021-aqg,nope`, /unknown profile id: nope/],
    ['to before from', 'from=2026-02-01&to=2026-01-31', /before/],
    ['more than 400 days', 'from=2025-01-01&to=2026-02-05', /at most 400/],
    ['an unknown parameter', `${PERIOD}&site=a`, /unknown query parameter/],
  ])('answers 400 for %s', async (_name, query, detail) => {
    const res = await get('staff', `/reports/municipality?${query}`)
    expect(res.status).toBe(400)
    expect(Problem.parse(res.body)).toMatchObject({ status: 400, code: 'invalid_request', detail })
  })

  it('answers 405 for another method', async () => {
    expect((await call(api, callers.get('staff') ?? ANONYMOUS_CALLER, 'POST', '/reports/municipality')).status).toBe(
      405,
    )
  })
})

describe('GET /reports/municipality: numbers kept for a few minutes', () => {
  it('serves the same numbers with their generation time until MUNICIPAL_REPORT_CACHE_MS or a registry change', async () => {
    let now = NOW
    const cached = await startApi({
      log: silentLogger(),
      storage,
      clock: () => now,
      host: '127.0.0.1',
      port: 0,
      options: { publicMap: true },
    })
    try {
      const report = async () => {
        const res = await call(cached, ANONYMOUS_CALLER, 'GET', `/reports/municipality?${PERIOD}`)
        expect(res.status, JSON.stringify(res.body)).toBe(200)
        return MunicipalReportResponse.parse(res.body)
      }
      const first = await report()
      expect(first.generated_at).toBe(new Date(NOW).toISOString())
      now = NOW + MUNICIPAL_REPORT_CACHE_MS - 1
      expect(await report()).toEqual(first)
      now = NOW + MUNICIPAL_REPORT_CACHE_MS
      const later = await report()
      expect(later.generated_at).toBe(new Date(now).toISOString())
      expect(later.report).toEqual(first.report)
      // A registry change (here a new school without data) moves the revision: made again at once.
      now += 60_000
      await storage.registry.upsertSites([
        { id: 'new', name: 'Plats new', kind: 'school', municipality: 'Lund', lat: 55.8, lon: 13.2 },
      ])
      const changed = await report()
      expect(changed.generated_at).toBe(new Date(now).toISOString())
      expect(changed.report.sites).toBe(first.report.sites + 1)
    } finally {
      await cached.close()
    }
  })
})
