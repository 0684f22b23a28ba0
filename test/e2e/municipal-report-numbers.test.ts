import { join } from 'node:path'
import { type RunningApi, startApi } from '@skolluft/api'
import type { Metric } from '@skolluft/core'
import { hashSecret, silentLogger } from '@skolluft/runtime'
import { openSqliteStorage, type StoredReading } from '@skolluft/storage'
import { tempDir } from '@skolluft/testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import {
  attentionNumbers,
  DAY_MS,
  FINAL_GRACE_MS,
  FOLLOW_UP_MIN_COVERAGE,
  followUpSide,
  followUpWindows,
  HOUR_MS,
  hourlyFromSamples,
  metricNumbers,
  municipalMetricNumbers,
  reportWindow,
  type Sample,
  type SiteLevels,
  seasonsOf,
  suspectHours,
  utcPlus1Midnight,
  WEATHER_MAX_TEMP_DIFFERENCE_C,
  type Window,
  weatherMean,
} from '../support/report-oracle.ts'

/**
 * Issue 7: the municipality report (GET /api/v1/reports/municipality) and a measure's follow-up
 * (GET /api/v1/sites/{id}/measures/{measureId}/follow-up) over real HTTP (real API, real SQLite file), against
 * numbers computed INDEPENDENTLY from the raw samples by test/support/report-oracle.ts (no core report code).
 * Synthetic data with known levels: every hour has 4 samples level −1, +1, −1, +1 (never a flat, "stuck" hour),
 * and a day shape that averages to zero, so each site's period mean is its level exactly.
 * The API rounds to 3 decimals; numbers are compared within 1e-3 (plus float noise).
 */

const NOW = Date.parse('2026-11-30T12:00:00Z')
const TOLERANCE = 1e-3 + 1e-9
const PER_HOUR = 4
const SAMPLE_MINUTES = [5, 20, 35, 50]
const DEVIATIONS = [-1, 1, -1, 1]
/** Added to the level by UTC hour: +6 at 06–07, −1 at 12–23, 0 otherwise: sums to 0 over a day. */
const DAY_SHAPE = (hour: number): number => (hour === 6 || hour === 7 ? 6 : hour >= 12 ? -1 : 0)
/** Sensors a test device may carry. */
const SENSORS: readonly Metric[] = ['pm1', 'pm25', 'pm10', 'no2', 'temp', 'rh']
const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i)
const iso = (t: number): string => new Date(t).toISOString()

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

interface Level {
  readonly pm25: number
  /** Null: the device has no NO2 sensor. */
  readonly no2: number | null
  readonly rh: number
  /** Null: no temperature sensor. */
  readonly temp: number | null
}

interface Device {
  readonly siteId: string
  readonly deviceId: string
  readonly indoor: boolean
  readonly sensors: readonly Metric[]
  readonly readings: StoredReading[]
  readonly samples: Sample[]
}

/** 4 samples an hour on each listed UTC+1 day (day indexes from `start`), at `level(t)`. */
function device(
  siteId: string,
  start: number,
  days: readonly number[],
  level: (t: number) => Level,
  options: { indoor?: boolean; until?: number } = {},
): Device {
  const deviceId = `dev-${siteId}${options.indoor === true ? '-in' : ''}`
  const readings: StoredReading[] = []
  const samples: Sample[] = []
  const sensors = new Set<string>()
  for (const day of days) {
    for (let hour = 0; hour < 24; hour++) {
      const t = start + day * DAY_MS + hour * HOUR_MS
      if (options.until !== undefined && t >= options.until) continue
      const l = level(t)
      const shape = DAY_SHAPE(new Date(t).getUTCHours())
      const pm25 = l.pm25 + shape
      DEVIATIONS.forEach((dev, i) => {
        const ts = t + (SAMPLE_MINUTES[i] ?? 0) * 60_000
        // PM fractions nested (PM1 ≤ PM2.5 ≤ PM10) so the order check never fires.
        const values: Record<string, number> = {
          pm1: 0.6 * pm25 + dev,
          pm25: pm25 + dev,
          pm10: 1.5 * pm25 + 3 + dev,
          rh: l.rh + dev,
        }
        if (l.no2 !== null) values.no2 = l.no2 + shape + dev
        if (l.temp !== null) values.temp = l.temp + dev
        for (const metric of Object.keys(values)) sensors.add(metric)
        readings.push({ deviceId, siteId, ts, seq: null, values, receivedAt: ts, expectedPerHour: PER_HOUR })
        for (const [metric, value] of Object.entries(values)) samples.push({ deviceId, ts, metric, value })
      })
    }
  }
  return {
    siteId,
    deviceId,
    indoor: options.indoor === true,
    sensors: SENSORS.filter((m) => sensors.has(m)),
    readings,
    samples,
  }
}

interface SiteSpec {
  readonly id: string
  readonly kind: 'school' | 'preschool' | 'background'
  readonly lat: number
  readonly lon: number
}

async function openStore(prefix: string, sites: readonly SiteSpec[], devices: readonly Device[]) {
  const dir = await tempDir(prefix)
  const storage = openSqliteStorage({ path: join(dir.path, 'skolluft.db') })
  await storage.registry.upsertSites(sites.map((s) => ({ ...s, name: `Name of ${s.id}`, municipality: 'Lund' })))
  const secretHash = await hashSecret('not used: the readings are written directly')
  for (const d of devices) {
    await storage.registry.addDevice(
      {
        id: d.deviceId,
        model: 'test',
        sensors: [...d.sensors],
        intervalS: 3600 / PER_HOUR,
        secretHash,
        placement: { siteId: d.siteId, from: 0, indoor: d.indoor, heightM: 2 },
      },
      0,
    )
  }
  await storage.readings.writeReadings(devices.flatMap((d) => d.readings))
  const api = await startApi({
    log: silentLogger(),
    storage,
    clock: () => NOW,
    host: '127.0.0.1',
    port: 0,
    options: { publicMap: true },
  })
  return { dir, storage, api }
}

async function getJson<T>(api: RunningApi, path: string, schema: z.ZodType<T>): Promise<T> {
  const res = await fetch(`http://127.0.0.1:${api.port}${path}`)
  const text = await res.text()
  expect(res.status, text.slice(0, 500)).toBe(200)
  return schema.parse(JSON.parse(text))
}

// ---- 1. Municipality report ----

/** The response, as far as this test reads it (its own schema: the contract, not the route's code). */
const MunicipalOut = z.object({
  from: z.string(),
  to: z.string(),
  threshold_profiles: z.array(z.string()),
  outdoor_only_sites: z.array(z.string()),
  report: z.object({
    sites: z.number(),
    backgroundSites: z.number(),
    metrics: z.array(
      z.object({
        metric: z.string(),
        median: z.number().nullable(),
        included: z.number(),
        leftOut: z.array(
          z.object({
            siteId: z.string(),
            kind: z.string(),
            reason: z.string(),
            mean: z.number().nullable(),
            coverage: z.number().nullable(),
          }),
        ),
        leftOutCounts: z.record(z.string(), z.number()),
        kinds: z.array(z.object({ kind: z.string(), median: z.number().nullable(), sites: z.number() })),
        sites: z.array(
          z.object({
            siteId: z.string(),
            kind: z.string(),
            mean: z.number(),
            coverage: z.number(),
            differenceFromMedian: z.number(),
            ratioToMedian: z.number().nullable(),
            kindMedian: z.number(),
            differenceFromKindMedian: z.number(),
            ratioToKindMedian: z.number().nullable(),
            rankInKind: z.number(),
            sitesOfKind: z.number(),
          }),
        ),
        background: z.array(
          z.object({
            siteId: z.string(),
            mean: z.number().nullable(),
            coverage: z.number(),
            sufficientCoverage: z.boolean(),
          }),
        ),
      }),
    ),
    ranking: z.object({
      formula: z.object({ sv: z.string(), en: z.string() }),
      basis: z.array(z.object({ metric: z.string(), value: z.number(), rule: z.string(), profile: z.string() })),
      ranked: z.array(
        z.object({
          rank: z.number(),
          siteId: z.string(),
          kind: z.string(),
          score: z.number(),
          drivenBy: z.string(),
          components: z.array(
            z.object({
              metric: z.string(),
              mean: z.number().nullable(),
              coverage: z.number().nullable(),
              sufficientCoverage: z.boolean(),
              ratio: z.number().nullable(),
            }),
          ),
        }),
      ),
      notEnoughData: z.array(z.object({ siteId: z.string() })),
    }),
  }),
})
type MunicipalOut = z.infer<typeof MunicipalOut>

const M_FROM = '2026-02-02' // a Monday
const M_TO = '2026-02-15' // a Sunday: 14 whole days, all winter (no clock change)
const M_WINDOW = reportWindow(M_FROM, M_TO)
const M_DAYS = 14
const METRICS = ['pm1', 'pm25', 'pm10', 'no2'] as const
/** Every threshold profile (the default of `profiles=`), as the reference lists them. */
const ALL_PROFILES = [
  'who2021-aqg',
  'who2021-it1',
  'who2021-it2',
  'who2021-it3',
  'who2021-it4',
  'eu2008-50',
  'eu2024-2881',
  'eu2024-2881-thresholds',
  'se-mkn',
  'se-frisk-luft',
  'eea-index',
]

/**
 * Sites and their levels (PM2.5, NO2). Counting PM2.5: 5 sites (odd; median 8), schools 8, 12, 8 (a tie for rank
 * 2), preschools 6, 10 (even; median 8). Counting NO2: 4 sites (preschool-b has no NO2 sensor; even; median 22.5).
 * school-low has data on 10 of 14 days (71 % < 85 %): listed as indicative, not in medians nor ranked, though its
 * levels are the highest. The background site would move the PM2.5 median (to 9) and top the ranking if it took
 * part. school-c has an indoor device at PM2.5 100: only its outdoor device counts.
 * Attention (default profiles, yardstick PM2.5 5, PM10 15, NO2 10): school-c 3.0 (NO2), preschool-a 2.5 (NO2),
 * school-b 2.4 (PM2.5), preschool-b 2.0 (PM2.5) and school-a 2.0 (NO2): equal scores by site id.
 */
const M_SITES: readonly (SiteSpec & { level: Level; days?: readonly number[] })[] = [
  { id: 'school-a', kind: 'school', lat: 55.7, lon: 13.19, level: { pm25: 8, no2: 20, rh: 60, temp: 2 } },
  // One day missing: 13 of 14 days, 93 % ≥ 85 %: counts.
  {
    id: 'school-b',
    kind: 'school',
    lat: 55.71,
    lon: 13.19,
    level: { pm25: 12, no2: 15, rh: 60, temp: 2 },
    days: range(-1, M_DAYS + 1).filter((d) => d !== 6),
  },
  { id: 'school-c', kind: 'school', lat: 55.72, lon: 13.19, level: { pm25: 8, no2: 30, rh: 60, temp: 2 } },
  {
    id: 'school-low',
    kind: 'school',
    lat: 55.73,
    lon: 13.19,
    level: { pm25: 40, no2: 50, rh: 60, temp: 2 },
    days: range(0, 10),
  },
  { id: 'preschool-a', kind: 'preschool', lat: 55.74, lon: 13.19, level: { pm25: 6, no2: 25, rh: 60, temp: 2 } },
  { id: 'preschool-b', kind: 'preschool', lat: 55.75, lon: 13.19, level: { pm25: 10, no2: null, rh: 60, temp: 2 } },
  { id: 'bg-city', kind: 'background', lat: 55.76, lon: 13.19, level: { pm25: 20, no2: 12, rh: 60, temp: 2 } },
]

describe('municipality report numbers: synthetic sites with known levels', () => {
  const devices = M_SITES.map((s) =>
    device(s.id, M_WINDOW.from, s.days ?? range(-1, M_DAYS + 1), (t) =>
      // Outside the period: far higher levels, which must not count.
      t < M_WINDOW.from || t >= M_WINDOW.to ? { ...s.level, pm25: s.level.pm25 + 50 } : s.level,
    ),
  )
  const indoor = device('school-c', M_WINDOW.from, range(0, M_DAYS), () => ({ pm25: 100, no2: 90, rh: 40, temp: 21 }), {
    indoor: true,
  })
  /** Per site, the oracle's numbers from the outdoor samples. */
  const levels: SiteLevels[] = M_SITES.map((s) => {
    const d = devices.find((x) => x.siteId === s.id)
    const hours = hourlyFromSamples(d?.samples ?? [], () => PER_HOUR)
    const suspect = suspectHours(hours)
    return {
      siteId: s.id,
      kind: s.kind,
      metrics: new Map(
        METRICS.map((m) => {
          const n = metricNumbers(hours, suspect, m, M_WINDOW)
          return [m, { mean: n.mean, coverage: n.coverage }] as const
        }),
      ),
    }
  })
  let store: Awaited<ReturnType<typeof openStore>>

  beforeAll(async () => {
    store = await openStore('skolluft-municipal-numbers-', M_SITES, [...devices, indoor])
  })

  afterAll(async () => {
    await store?.api.close()
    await store?.storage.close()
    await store?.dir.cleanup()
  })

  const get = (query = ''): Promise<MunicipalOut> =>
    getJson(store.api, `/api/v1/reports/municipality?from=${M_FROM}&to=${M_TO}${query}`, MunicipalOut)

  it('the oracle itself reproduces the known levels', () => {
    const of = (id: string, m: string) => levels.find((l) => l.siteId === id)?.metrics.get(m)
    expect(of('school-a', 'pm25')).toEqual({ mean: 8, coverage: 1 })
    expect(of('school-b', 'no2')).toEqual({ mean: 15, coverage: 13 / 14 })
    expect(of('school-low', 'pm25')).toEqual({ mean: 40, coverage: 10 / 14 })
    expect(of('preschool-b', 'no2')).toEqual({ mean: null, coverage: 0 })
    const pm25 = municipalMetricNumbers('pm25', levels)
    expect([pm25.median, pm25.counting.length]).toEqual([8, 5])
    expect(pm25.kinds).toEqual([
      { kind: 'preschool', median: 8, sites: 2 },
      { kind: 'school', median: 8, sites: 3 },
    ])
    expect(pm25.counting.map((c) => [c.siteId, c.rankInKind])).toEqual([
      ['preschool-a', 2],
      ['preschool-b', 1],
      ['school-a', 2],
      ['school-b', 1],
      ['school-c', 2],
    ])
    expect(municipalMetricNumbers('no2', levels).median).toBe(22.5)
    const ranking = attentionNumbers(METRICS, ALL_PROFILES, levels)
    expect(ranking.ranked.map((r) => [r.siteId, r.score, r.drivenBy])).toEqual([
      ['school-c', 3, 'no2'],
      ['preschool-a', 2.5, 'no2'],
      ['school-b', 2.4, 'pm25'],
      ['preschool-b', 2, 'pm25'],
      ['school-a', 2, 'no2'],
    ])
    expect(ranking.notEnoughData).toEqual(['school-low'])
  })

  function expectMunicipal(got: MunicipalOut, profiles: readonly string[]): void {
    expect(got).toMatchObject({ from: iso(M_WINDOW.from), to: iso(M_WINDOW.to), outdoor_only_sites: ['school-c'] })
    expect(got.report).toMatchObject({ sites: 6, backgroundSites: 1 })
    expect(got.report.metrics.map((m) => m.metric)).toEqual([...METRICS])
    for (const metric of METRICS) {
      const want = municipalMetricNumbers(metric, levels)
      const m = got.report.metrics.find((x) => x.metric === metric)
      expect(m, metric).toBeDefined()
      if (m === undefined) continue
      expectClose(m.median, want.median, `${metric} median`)
      expect(m.included, `${metric} included`).toBe(want.counting.length)
      expect(
        m.sites.map((s) => [s.siteId, s.kind, s.rankInKind, s.sitesOfKind]),
        `${metric} counting sites`,
      ).toEqual(want.counting.map((c) => [c.siteId, c.kind, c.rankInKind, c.sitesOfKind]))
      want.counting.forEach((c, i) => {
        const s = m.sites[i]
        const label = `${metric} ${c.siteId}`
        const med = want.median ?? Number.NaN
        expectClose(s?.mean, c.mean, `${label} mean`)
        expectClose(s?.coverage, c.coverage, `${label} coverage`)
        expectClose(s?.differenceFromMedian, c.mean - med, `${label} differenceFromMedian`)
        expectClose(s?.ratioToMedian, med === 0 ? null : c.mean / med, `${label} ratioToMedian`)
        expectClose(s?.kindMedian, c.kindMedian, `${label} kindMedian`)
        expectClose(s?.differenceFromKindMedian, c.mean - c.kindMedian, `${label} differenceFromKindMedian`)
        expectClose(s?.ratioToKindMedian, c.mean / c.kindMedian, `${label} ratioToKindMedian`)
      })
      expect(
        m.leftOut.map((l) => [l.siteId, l.reason]),
        `${metric} left out`,
      ).toEqual(want.leftOut.map((l) => [l.siteId, l.reason]))
      want.leftOut.forEach((l, i) => {
        expectClose(m.leftOut[i]?.mean, l.mean, `${metric} left out ${l.siteId} mean`)
        expectClose(m.leftOut[i]?.coverage, l.coverage, `${metric} left out ${l.siteId} coverage`)
      })
      const counts = { 'insufficient-coverage': 0, 'no-data': 0, 'not-reported': 0 }
      for (const l of want.leftOut) counts[l.reason as keyof typeof counts] += 1
      expect(m.leftOutCounts, `${metric} leftOutCounts`).toEqual(counts)
      expect(
        m.kinds.map((k) => [k.kind, k.sites]),
        `${metric} kinds`,
      ).toEqual(want.kinds.map((k) => [k.kind, k.sites]))
      for (const [i, k] of want.kinds.entries()) expectClose(m.kinds[i]?.median, k.median, `${metric} ${k.kind} median`)
      expect(
        m.background.map((b) => b.siteId),
        `${metric} background`,
      ).toEqual(want.background.map((b) => b.siteId))
      want.background.forEach((b, i) => {
        expectClose(m.background[i]?.mean, b.mean, `${metric} background mean`)
        expectClose(m.background[i]?.coverage, b.coverage, `${metric} background coverage`)
      })
    }
    const want = attentionNumbers(METRICS, profiles, levels)
    expect(got.report.ranking.basis, 'basis').toEqual(want.basis)
    expect(
      got.report.ranking.ranked.map((r) => [r.rank, r.siteId, r.drivenBy]),
      'ranking',
    ).toEqual(want.ranked.map((r) => [r.rank, r.siteId, r.drivenBy]))
    for (const [i, r] of want.ranked.entries()) {
      expectClose(got.report.ranking.ranked[i]?.score, r.score, `${r.siteId} score`)
    }
    // Every part of a score is shown: one component per basis pollutant, a ratio only with sufficient coverage.
    for (const r of got.report.ranking.ranked) {
      const site = levels.find((l) => l.siteId === r.siteId)
      expect(r.components.map((c) => c.metric)).toEqual(want.basis.map((b) => b.metric))
      for (const c of r.components) {
        const m = site?.metrics.get(c.metric)
        const value = want.basis.find((b) => b.metric === c.metric)?.value ?? Number.NaN
        const counts = m !== undefined && m.mean !== null && m.coverage >= 0.85
        expect(c.sufficientCoverage, `${r.siteId} ${c.metric} sufficientCoverage`).toBe(counts)
        expectClose(c.ratio, counts && m?.mean != null ? m.mean / value : null, `${r.siteId} ${c.metric} ratio`)
      }
    }
    expect(got.report.ranking.notEnoughData.map((n) => n.siteId)).toEqual(want.notEnoughData)
  }

  it('all profiles: medians (odd and even counts), kind medians, ranks with ties, left-out sites, background apart, ranking', async () => {
    const got = await get()
    expect(got.threshold_profiles).toEqual(ALL_PROFILES)
    expectMunicipal(got, ALL_PROFILES)
    // The known numbers, literally.
    const pm25 = got.report.metrics.find((m) => m.metric === 'pm25')
    const no2 = got.report.metrics.find((m) => m.metric === 'no2')
    expect([pm25?.median, no2?.median]).toEqual([8, 22.5])
    expect(pm25?.sites.find((s) => s.siteId === 'school-c')?.mean).toBe(8) // outdoor only, not the indoor 100
    expect(pm25?.leftOut).toEqual([
      { siteId: 'school-low', kind: 'school', reason: 'insufficient-coverage', mean: 40, coverage: 0.714 },
    ])
    expect(no2?.leftOut.map((l) => [l.siteId, l.reason])).toEqual([
      ['preschool-b', 'no-data'],
      ['school-low', 'insufficient-coverage'],
    ])
    expect(pm25?.background).toEqual([{ siteId: 'bg-city', mean: 20, coverage: 1, sufficientCoverage: true }])
    expect(got.report.ranking.basis).toEqual([
      { metric: 'pm25', value: 5, rule: 'who2021-aqg-pm25-year', profile: 'who2021-aqg' },
      { metric: 'pm10', value: 15, rule: 'se-frisk-luft-pm10-year', profile: 'se-frisk-luft' },
      { metric: 'no2', value: 10, rule: 'who2021-aqg-no2-year', profile: 'who2021-aqg' },
    ])
    expect(got.report.ranking.ranked.map((r) => [r.rank, r.siteId, r.score])).toEqual([
      [1, 'school-c', 3],
      [2, 'preschool-a', 2.5],
      [3, 'school-b', 2.4],
      [4, 'preschool-b', 2],
      [5, 'school-a', 2],
    ])
  })

  it('profiles=se-frisk-luft: the yardstick and the ranking follow the selected profile', async () => {
    const got = await get('&profiles=se-frisk-luft')
    expect(got.threshold_profiles).toEqual(['se-frisk-luft'])
    expectMunicipal(got, ['se-frisk-luft'])
    // PM2.5 10, PM10 15, NO2 20: school-a's PM10 and NO2 ratios are both 1; the first in metric order drives it.
    expect(got.report.ranking.ranked.map((r) => [r.siteId, r.score, r.drivenBy])).toEqual([
      ['school-c', 1.5, 'no2'],
      ['school-b', 1.4, 'pm10'],
      ['preschool-a', 1.25, 'no2'],
      ['preschool-b', 1.2, 'pm10'],
      ['school-a', 1, 'pm10'],
    ])
  })

  it('CSV: medians, site rows and ranks as in the JSON', async () => {
    const res = await fetch(
      `http://127.0.0.1:${store.api.port}/api/v1/reports/municipality?from=${M_FROM}&to=${M_TO}&format=csv`,
    )
    const text = await res.text()
    expect(res.status, text.slice(0, 300)).toBe(200)
    const [head, ...lines] = text.trimEnd().split('\r\n')
    const names = (head ?? '').split(',')
    const rows = lines.map((l) => Object.fromEntries(l.split(',').map((c, i) => [names[i] ?? `${i}`, c])))
    for (const metric of METRICS) {
      const want = municipalMetricNumbers(metric, levels)
      const median = rows.find((r) => r.kind === 'median' && r.metric === metric)
      expectClose(median?.median === '' ? null : Number(median?.median), want.median, `csv ${metric} median`)
      for (const c of want.counting) {
        const row = rows.find((r) => r.kind === 'site' && r.metric === metric && r.site === c.siteId)
        expectClose(Number(row?.mean), c.mean, `csv ${metric} ${c.siteId} mean`)
        expect(row?.rank_in_kind, `csv ${metric} ${c.siteId} rank`).toBe(String(c.rankInKind))
      }
      expect(rows.filter((r) => r.kind === 'background' && r.metric === metric).map((r) => r.site)).toEqual(['bg-city'])
    }
    const ranking = attentionNumbers(METRICS, ALL_PROFILES, levels)
    expect(rows.filter((r) => r.kind === 'rank').map((r) => [r.rank, r.site, r.driven_by])).toEqual(
      ranking.ranked.map((r) => [String(r.rank), r.siteId, r.drivenBy]),
    )
    expect(rows.filter((r) => r.kind === 'not_ranked').map((r) => r.site)).toEqual(['school-low'])
  })
})

// ---- 2. Measure follow-up ----

const FollowSide = z.object({
  mean: z.number().nullable(),
  counted_hours: z.number(),
  expected_hours: z.number(),
  coverage: z.number(),
  sufficient_coverage: z.boolean(),
})
const FollowComparison = z.object({
  before: FollowSide,
  after: FollowSide,
  change: z.object({ absolute: z.number(), percent: z.number().nullable() }).nullable(),
})
const FollowWeather = z.object({
  before: z.number().nullable(),
  after: z.number().nullable(),
  source: z.string().nullable(),
})
const FollowUpOut = z.object({
  site: z.string(),
  days: z.number(),
  before: z.object({ from: z.string(), to: z.string() }),
  after: z.object({ from: z.string(), to: z.string() }),
  after_complete: z.boolean(),
  background: z.object({ site: z.string(), distance_km: z.number() }).nullable(),
  metrics: z.array(
    FollowComparison.extend({
      metric: z.string(),
      background: FollowComparison.nullable(),
      difference_in_differences: z.number().nullable(),
    }),
  ),
  weather: z.object({ temp: FollowWeather, rh: FollowWeather }),
  seasons: z.object({ before: z.array(z.string()), after: z.array(z.string()) }),
  caveats: z.array(z.object({ code: z.string(), text: z.object({ sv: z.string(), en: z.string() }) })),
})
type FollowUpOut = z.infer<typeof FollowUpOut>

/**
 * Words a follow-up text must never use: it states no conclusion (issue 7 plan: "effect", "caused", "proves";
 * core measures.ts FORBIDDEN_WORDS restated).
 */
const FORBIDDEN = {
  en: [
    'effect',
    'effects',
    'causes',
    'caused',
    'will',
    'proves',
    'proven',
    'must',
    'certainly',
    'definitely',
    'always',
  ],
  sv: ['effekt', 'orsakar', 'orsakas', 'orsakade', 'bevisar', 'bevisat', 'måste', 'definitivt', 'alltid', 'kommer att'],
}

const F_START = utcPlus1Midnight('2026-02-02')
/** Site levels by UTC+1 date: a lower PM2.5 from 16 February, a milder March. */
function schoolLevel(t: number): Level {
  if (t < utcPlus1Midnight('2026-02-16')) return { pm25: 12, no2: 20, rh: 70, temp: 2 }
  if (t < utcPlus1Midnight('2026-03-01')) return { pm25: 9, no2: 20, rh: 80, temp: 3 }
  return { pm25: 7, no2: 18, rh: 65, temp: 9 }
}
function backgroundLevel(t: number): Level {
  if (t < utcPlus1Midnight('2026-02-16')) return { pm25: 6, no2: 12, rh: 70, temp: 1 }
  if (t < utcPlus1Midnight('2026-03-01')) return { pm25: 5, no2: 14, rh: 80, temp: 2 }
  return { pm25: 4, no2: 10, rh: 65, temp: 8 }
}
/** 2 February – 29 March 2026 (56 days) and a day on each side; the school misses 20 February. */
const F_DAYS = range(-1, 57)
const F_SCHOOL_DAYS = F_DAYS.filter((d) => d !== 18)
/** Far site: 18–21 November (4 of the 7 days before 25 November), then 25 November until 06:00 UTC on 30 November. */
const FAR_FROM = utcPlus1Midnight('2026-11-18')
const FAR_DAYS = [0, 1, 2, 3, 7, 8, 9, 10, 11, 12]
const FAR_UNTIL = Date.parse('2026-11-30T06:00:00Z')

const F_SITES: readonly SiteSpec[] = [
  { id: 'fu-school', kind: 'school', lat: 55.705, lon: 13.19 },
  { id: 'fu-bg', kind: 'background', lat: 55.71, lon: 13.2 },
  // Stockholm: no background site within 20 km.
  { id: 'fu-far', kind: 'school', lat: 59.33, lon: 18.06 },
]

describe('measure follow-up numbers: known levels before and after', () => {
  const school = device('fu-school', F_START, F_SCHOOL_DAYS, schoolLevel)
  const background = device('fu-bg', F_START, F_DAYS, backgroundLevel)
  const far = device('fu-far', FAR_FROM, FAR_DAYS, () => ({ pm25: 11, no2: null, rh: 75, temp: null }), {
    until: FAR_UNTIL,
  })
  const oracle = (d: Device) => {
    const hours = hourlyFromSamples(d.samples, () => PER_HOUR)
    return { hours, suspect: suspectHours(hours) }
  }
  const oracles = new Map([school, background, far].map((d) => [d.siteId, oracle(d)]))
  let store: Awaited<ReturnType<typeof openStore>>
  const measureIds = new Map<string, string>()

  beforeAll(async () => {
    store = await openStore('skolluft-follow-up-numbers-', F_SITES, [school, background, far])
    for (const [key, siteId, takenOn] of [
      ['week', 'fu-school', '2026-02-16'],
      ['season', 'fu-school', '2026-03-01'],
      ['running', 'fu-far', '2026-11-25'],
    ] as const) {
      const m = await store.storage.measures.add({
        siteId,
        measureId: null,
        title: `Measure ${key}`,
        takenOn,
        note: null,
        recordedBy: 'test',
        recordedAt: NOW - 30 * DAY_MS,
      })
      measureIds.set(key, m.id)
    }
  })

  afterAll(async () => {
    await store?.api.close()
    await store?.storage.close()
    await store?.dir.cleanup()
  })

  const get = (key: string, siteId: string, query = ''): Promise<FollowUpOut> =>
    getJson(store.api, `/api/v1/sites/${siteId}/measures/${measureIds.get(key)}/follow-up${query}`, FollowUpOut)

  /** Expected per-metric comparison for a site over the windows. */
  function comparison(siteId: string, metric: string, w: { before: Window; after: Window }, complete: boolean) {
    const o = oracles.get(siteId)
    if (o === undefined) throw new Error(`no oracle for ${siteId}`)
    const before = followUpSide(o.hours, o.suspect, metric, w.before, NOW)
    const after = followUpSide(o.hours, o.suspect, metric, w.after, NOW)
    const change =
      complete && before.mean !== null && after.mean !== null
        ? {
            absolute: after.mean - before.mean,
            percent: before.mean === 0 ? null : ((after.mean - before.mean) / before.mean) * 100,
          }
        : null
    return { before, after, change }
  }

  function expectSide(
    got: z.infer<typeof FollowSide> | undefined,
    want: ReturnType<typeof followUpSide>,
    label: string,
  ) {
    expectClose(got?.mean, want.mean, `${label} mean`)
    expect([got?.counted_hours, got?.expected_hours, got?.sufficient_coverage], label).toEqual([
      want.countedHours,
      want.expectedHours,
      want.sufficientCoverage,
    ])
    expectClose(got?.coverage, want.coverage, `${label} coverage`)
  }

  function expectComparison(
    got: z.infer<typeof FollowComparison> | null | undefined,
    want: ReturnType<typeof comparison>,
    label: string,
  ) {
    expectSide(got?.before, want.before, `${label} before`)
    expectSide(got?.after, want.after, `${label} after`)
    if (want.change === null) expect(got?.change, `${label} change`).toBeNull()
    else {
      expectClose(got?.change?.absolute, want.change.absolute, `${label} change`)
      expectClose(got?.change?.percent, want.change.percent, `${label} change %`)
    }
  }

  /** Every number of a follow-up against the oracle; returns the expected caveat codes. */
  function expectFollowUp(
    got: FollowUpOut,
    siteId: string,
    takenOn: string,
    days: number,
    metrics: readonly string[],
    backgroundId: string | null,
  ): string[] {
    const w = followUpWindows(takenOn, days)
    // Complete once its last hour is final: ended FINAL_GRACE_MS ago.
    const complete = w.after.to + FINAL_GRACE_MS <= NOW
    expect(got).toMatchObject({
      site: siteId,
      days,
      before: { from: iso(w.before.from), to: iso(w.before.to) },
      after: { from: iso(w.after.from), to: iso(w.after.to) },
      after_complete: complete,
    })
    expect(got.background?.site ?? null).toBe(backgroundId)
    expect(got.metrics.map((m) => m.metric)).toEqual([...metrics])
    const caveats: string[] = []
    const seasons = { before: seasonsOf(w.before), after: seasonsOf(w.after) }
    expect(got.seasons).toEqual(seasons)
    if (new Set([...seasons.before, ...seasons.after]).size > 1) caveats.push('SEASON_DIFFERS')
    const site = oracles.get(siteId)
    const bg = backgroundId === null ? undefined : oracles.get(backgroundId)
    for (const metric of ['temp', 'rh'] as const) {
      const own = [
        weatherMean(site?.hours ?? new Map(), metric, w.before),
        weatherMean(site?.hours ?? new Map(), metric, w.after),
      ]
      const other = [
        weatherMean(bg?.hours ?? new Map(), metric, w.before),
        weatherMean(bg?.hours ?? new Map(), metric, w.after),
      ]
      const [before, after, source] =
        own[0] !== null || own[1] !== null
          ? [own[0] ?? null, own[1] ?? null, 'site']
          : other[0] !== null || other[1] !== null
            ? [other[0] ?? null, other[1] ?? null, 'background']
            : [null, null, null]
      expectClose(got.weather[metric].before, before, `${metric} before`)
      expectClose(got.weather[metric].after, after, `${metric} after`)
      expect(got.weather[metric].source, `${metric} source`).toBe(source)
      if (metric === 'temp') {
        if (before === null || after === null) caveats.push('WEATHER_UNKNOWN')
        else if (Math.abs(after - before) > WEATHER_MAX_TEMP_DIFFERENCE_C) caveats.push('WEATHER_DIFFERS')
      }
    }
    let thin = false
    let bgData = false
    for (const metric of metrics) {
      const m = got.metrics.find((x) => x.metric === metric)
      const want = comparison(siteId, metric, w, complete)
      expectComparison(m, want, metric)
      if (want.before.coverage < FOLLOW_UP_MIN_COVERAGE || (complete && want.after.coverage < FOLLOW_UP_MIN_COVERAGE))
        thin = true
      if (backgroundId === null) {
        expect(m?.background, `${metric} background`).toBeNull()
        expect(m?.difference_in_differences, `${metric} DiD`).toBeNull()
        continue
      }
      const wantBg = comparison(backgroundId, metric, w, complete)
      if (wantBg.before.countedHours > 0) bgData = true
      expectComparison(m?.background, wantBg, `${metric} background`)
      const did = want.change !== null && wantBg.change !== null ? want.change.absolute - wantBg.change.absolute : null
      expectClose(m?.difference_in_differences, did, `${metric} DiD`)
    }
    if (thin) caveats.push('LOW_COVERAGE')
    if (!complete) caveats.push('AFTER_INCOMPLETE')
    if (!bgData) caveats.push('NO_BACKGROUND')
    caveats.push('SCHOOL_HOLIDAYS')
    expect(got.caveats.map((c) => c.code)).toEqual(caveats)
    for (const c of got.caveats) {
      for (const lang of ['en', 'sv'] as const) {
        const text = c.text[lang].toLowerCase()
        for (const word of FORBIDDEN[lang]) {
          expect(new RegExp(`(^|[^\\p{L}])${word}($|[^\\p{L}])`, 'u').test(text), `${c.code} ${lang}: "${word}"`).toBe(
            false,
          )
        }
      }
    }
    return caveats
  }

  it('one week before and after, same season and weather, with the background site: means, changes, difference in differences', async () => {
    const got = await get('week', 'fu-school', '?days=7')
    const caveats = expectFollowUp(got, 'fu-school', '2026-02-16', 7, METRICS, 'fu-bg')
    expect(caveats).toEqual(['SCHOOL_HOLIDAYS'])
    // The known numbers, literally: PM2.5 12 → 9 (−25 %), the background 6 → 5: 2 µg/m³ more than the background.
    const pm25 = got.metrics.find((m) => m.metric === 'pm25')
    expect(pm25).toMatchObject({
      before: { mean: 12, counted_hours: 168, expected_hours: 168, coverage: 1 },
      after: { mean: 9, counted_hours: 144, coverage: 0.857, sufficient_coverage: true },
      change: { absolute: -3, percent: -25 },
      background: { change: { absolute: -1, percent: -16.667 } },
      difference_in_differences: -2,
    })
    expect(got.metrics.find((m) => m.metric === 'no2')).toMatchObject({
      change: { absolute: 0, percent: 0 },
      background: { change: { absolute: 2 } },
      difference_in_differences: -2,
    })
    expect(got.weather.temp).toEqual({ before: 2, after: 3, source: 'site' })
  })

  it('four weeks (the default) across the start of spring and a milder March: season and weather caveats', async () => {
    const got = await get('season', 'fu-school')
    const caveats = expectFollowUp(got, 'fu-school', '2026-03-01', 28, METRICS, 'fu-bg')
    expect(caveats).toEqual(['SEASON_DIFFERS', 'WEATHER_DIFFERS', 'SCHOOL_HOLIDAYS'])
    expect(got.seasons).toEqual({ before: ['winter'], after: ['spring'] })
    // Before (1–28 February): 15 days at 12 and 12 at 9 (20 February missing); after (1–28 March): 28 days at 7.
    expect(got.metrics.find((m) => m.metric === 'pm25')).toMatchObject({
      before: { mean: 10.667, counted_hours: 27 * 24 },
      after: { mean: 7, counted_hours: 28 * 24 },
      change: { absolute: -3.667, percent: -34.375 },
    })
  })

  it('an after window still running, a thin before window, no background site and no thermometer', async () => {
    const got = await get('running', 'fu-far', '?days=7')
    // No NO2 sensor at the site: NO2 is left out, not shown as a gap.
    const caveats = expectFollowUp(got, 'fu-far', '2026-11-25', 7, ['pm1', 'pm25', 'pm10'], null)
    // The after window reaches 1 December: winter.
    expect(caveats).toEqual([
      'SEASON_DIFFERS',
      'WEATHER_UNKNOWN',
      'LOW_COVERAGE',
      'AFTER_INCOMPLETE',
      'NO_BACKGROUND',
      'SCHOOL_HOLIDAYS',
    ])
    expect(got.metrics.find((m) => m.metric === 'pm25')).toMatchObject({
      before: { mean: 11, counted_hours: 96, coverage: 0.571, sufficient_coverage: false },
      // 25 November 00:00 UTC+1 (24th 23:00 UTC) to 30 November 06:00 UTC: 5 days and 7 hours.
      // The last, partial day holds one of the day shape's −1 hours (23:00 UTC) and none of its +6: 11 − 1/127.
      after: { mean: 10.992, counted_hours: 5 * 24 + 7, coverage: 0.756 },
      change: null,
    })
  })
})
