import { join } from 'node:path'
import { DAY_MS, defaultScopes, HOUR_MS, type MetricValues, SiteFeature, SiteFeatureCollection } from '@skolluft/core'
import { createLogger, hashSecret, silentLogger } from '@skolluft/runtime'
import { openSqliteStorage, type Storage, type StoredReading } from '@skolluft/storage'
import { tempDir, waitFor } from '@skolluft/testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { issueApiToken } from './auth/credentials.ts'
import { SeriesResponse } from './routes/openapi.ts'
import { MAX_SERIES_POINTS, MAX_SERIES_SPAN } from './series-query.ts'
import { type RunningApi, startApi } from './server.ts'

/**
 * The API over real HTTP (127.0.0.1, port 0, global fetch) against a real SQLite file, seeded through
 * the storage interface. The clock is fixed so ages and default windows are exact. The public map is on
 * (anonymous reads of the map and hourly series) and the map snapshot is rebuilt for every request;
 * raw readings need a role, here a staff API token. Roles and permissions in full: permissions.test.ts.
 */
const NOW = Date.parse('2026-11-30T12:00:00Z')
const MINUTE_MS = 60_000
const TOKEN = 'operator-token-0123456789abcdef'

let dir: Awaited<ReturnType<typeof tempDir>>
let storage: Storage
/** With an operator token. */
let api: RunningApi
/** Without one: the operator token is just an unknown bearer token there. */
let bare: RunningApi
const logLines: string[] = []
/** A staff API token (`skl_…`), for raw readings. */
let staffToken: string
const asStaff = (): RequestInit => ({ headers: { Authorization: `Bearer ${staffToken}` } })

function reading(deviceId: string, siteId: string, ts: number, values: MetricValues, intervalS: number): StoredReading {
  return { deviceId, siteId, ts, seq: null, values, receivedAt: ts + 1000, expectedPerHour: 3600 / intervalS }
}

async function seed(store: Storage): Promise<void> {
  await store.registry.upsertSites([
    {
      id: 'vikingaskolan',
      name: 'Vikingaskolan',
      kind: 'school',
      stages: ['f-3', '4-6'],
      address: 'Vikingavägen 1',
      locality: 'Lund',
      municipality: 'Lund',
      lat: 55.7135,
      lon: 13.2051,
    },
    { id: 'backaskolan', name: 'Backaskolan', kind: 'school', municipality: 'Lund', lat: 55.72, lon: 13.18 },
    {
      id: 'demo-forskola',
      name: 'Demoförskolan',
      kind: 'preschool',
      municipality: 'Lund',
      lat: 55.7,
      lon: 13.19,
      demo: true,
    },
    { id: 'stora-skolan', name: 'Stora skolan', kind: 'school', municipality: 'Lund', lat: 55.71, lon: 13.2 },
  ])
  const secretHash = await hashSecret('device-secret')
  const devices = [
    ['aq-0001', 'vikingaskolan', 60],
    ['aq-0002', 'backaskolan', 600],
    ['aq-0003', 'stora-skolan', 60],
  ] as const
  for (const [id, siteId, intervalS] of devices) {
    await store.registry.addDevice(
      {
        id,
        model: 'test',
        sensors: ['pm25', 'no2'],
        intervalS,
        secretHash,
        placement: { siteId, from: NOW - 30 * DAY_MS, indoor: false, heightM: 2 },
      },
      NOW - 30 * DAY_MS,
    )
  }

  // aq-0001 at vikingaskolan, one reading a minute:
  //   09:00Z full hour, pm25 cycling 5,6,7,8 (mean 6.5); 10:00Z 30 of 60 (coverage 0.5);
  //   11:00Z 45 of 60 (coverage 0.75, just valid); the newest reading 11:44Z also carries NO2.
  const h9 = Date.parse('2026-11-30T09:00:00Z')
  const first: StoredReading[] = []
  for (let m = 0; m < 60; m++)
    first.push(reading('aq-0001', 'vikingaskolan', h9 + m * MINUTE_MS, { pm25: 5 + (m % 4) }, 60))
  for (let m = 0; m < 30; m++)
    first.push(reading('aq-0001', 'vikingaskolan', h9 + HOUR_MS + m * MINUTE_MS, { pm25: 10 }, 60))
  for (let m = 0; m < 45; m++) {
    const values: MetricValues = m === 44 ? { pm25: 20, no2: 18.2 } : { pm25: 20 }
    first.push(reading('aq-0001', 'vikingaskolan', h9 + 2 * HOUR_MS + m * MINUTE_MS, values, 60))
  }
  // Written newest first: the API must still return time order.
  await store.readings.writeReadings(first.reverse())

  // aq-0002 at backaskolan, every 10 min. UTC+1 day 2026-11-29 starts 2026-11-28T23:00Z: 20 full hours with
  // pm25 = hour index (valid day, mean 9.5). The next day: 5 full hours of 100 (invalid day, 5 of 24 hours).
  const day1 = Date.parse('2026-11-28T23:00:00Z')
  const second: StoredReading[] = []
  for (let h = 0; h < 20; h++) {
    for (let k = 0; k < 6; k++)
      second.push(reading('aq-0002', 'backaskolan', day1 + h * HOUR_MS + k * 600_000, { pm25: h }, 600))
  }
  for (let h = 0; h < 5; h++) {
    for (let k = 0; k < 6; k++) {
      second.push(reading('aq-0002', 'backaskolan', day1 + DAY_MS + h * HOUR_MS + k * 600_000, { pm25: 100 }, 600))
    }
  }
  await store.readings.writeReadings(second)

  // aq-0003 at stora-skolan: one more raw point than the cap, all inside the 7-day raw window.
  const big: StoredReading[] = []
  for (let i = 0; i <= MAX_SERIES_POINTS; i++) {
    big.push(reading('aq-0003', 'stora-skolan', NOW - (MAX_SERIES_POINTS + 1 - i) * MINUTE_MS, { pm25: i % 50 }, 60))
  }
  await store.readings.writeReadings(big)

  await store.rejects.record([
    {
      at: NOW - 3 * MINUTE_MS,
      deviceId: null,
      topic: 'aq/v1/devices/BAD/telemetry',
      code: 'bad_topic',
      message: 'bad',
      index: null,
    },
    {
      at: NOW - 2 * MINUTE_MS,
      deviceId: 'aq-0001',
      topic: 'aq/v1/devices/aq-0001/telemetry',
      code: 'out_of_range',
      message: '"pm25" = 5000',
      index: 3,
    },
    {
      at: NOW - MINUTE_MS,
      deviceId: 'aq-0001',
      topic: 'aq/v1/devices/aq-0001/telemetry',
      code: 'bad_json',
      message: 'not JSON',
      index: null,
    },
  ])
}

function url(server: RunningApi, path: string): string {
  return `http://127.0.0.1:${server.port}${path}`
}

async function get(path: string, init: RequestInit = {}, server = api): Promise<{ res: Response; body: unknown }> {
  const res = await fetch(url(server, path), init)
  const text = await res.text()
  return { res, body: text === '' ? undefined : JSON.parse(text) }
}

/** Asserts an RFC 9457 problem response and returns its body. */
async function problem(path: string, status: number, init: RequestInit = {}, server = api) {
  const { res, body } = await get(path, init, server)
  expect(res.status).toBe(status)
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/)
  expect(res.headers.get('cache-control')).toBe('no-store')
  expect(body).toMatchObject({
    status,
    type: expect.stringMatching(/^urn:skolluft:problem:/),
    title: expect.any(String),
  })
  const parsed = body as { code: string; detail: string; type: string; errors?: { path: string; message: string }[] }
  expect(parsed.type).toBe(`urn:skolluft:problem:${parsed.code}`)
  return { res, body: parsed }
}

beforeAll(async () => {
  dir = await tempDir('skolluft-api-')
  storage = openSqliteStorage({ path: join(dir.path, 'skolluft.db') })
  await seed(storage)
  const issued = await issueApiToken()
  await storage.access.createToken({
    id: issued.id,
    name: 'app test staff',
    role: 'staff',
    scopes: defaultScopes('staff'),
    sites: [],
    userId: null,
    secretHash: issued.secretHash,
    createdAt: NOW - DAY_MS,
    expiresAt: null,
  })
  staffToken = issued.value
  const log = createLogger({ level: 'debug', destination: { write: (line: string) => void logLines.push(line) } })
  const clock = () => NOW
  const options = { publicMap: true, mapSnapshotMaxAgeMs: 0 }
  api = await startApi({
    log,
    storage,
    clock,
    host: '127.0.0.1',
    port: 0,
    options: { ...options, operatorToken: TOKEN },
  })
  bare = await startApi({ log: silentLogger(), storage, clock, host: '127.0.0.1', port: 0, options })
})

afterAll(async () => {
  await api?.close()
  await bare?.close()
  await storage?.close()
  await dir?.cleanup()
})

describe('GET /api/v1/sites', () => {
  it('is a GeoJSON FeatureCollection of every site with latest values or null', async () => {
    const { res, body } = await get('/api/v1/sites')
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/^application\/geo\+json/)
    // The public map is cached publicly for publicMaxAgeS (default 5 s).
    expect(res.headers.get('cache-control')).toBe('public, max-age=5')
    const parsed = SiteFeatureCollection.safeParse(body)
    expect(parsed.success).toBe(true)
    const features = parsed.data?.features ?? []
    expect(features.map((f) => f.id).sort()).toEqual(['backaskolan', 'demo-forskola', 'stora-skolan', 'vikingaskolan'])
    // The wire format always carries `latest` (the schema would default a missing one to null).
    const raw = body as { features: { properties: Record<string, unknown> }[] }
    for (const feature of raw.features) expect(feature.properties).toHaveProperty('latest')
    const byId = new Map(features.map((f) => [f.id, f]))
    expect(byId.get('vikingaskolan')?.properties.latest).toEqual({
      ts: '2026-11-30T11:44:00.000Z',
      values: { pm25: 20, no2: 18.2 },
      times: { pm25: '2026-11-30T11:44:00.000Z', no2: '2026-11-30T11:44:00.000Z' },
      age_s: 16 * 60,
    })
    expect(byId.get('backaskolan')?.properties.latest).toEqual({
      ts: '2026-11-30T03:50:00.000Z',
      values: { pm25: 100 },
      times: { pm25: '2026-11-30T03:50:00.000Z' },
      age_s: (NOW - Date.parse('2026-11-30T03:50:00Z')) / 1000,
    })
    expect(byId.get('demo-forskola')?.properties).toMatchObject({ demo: true, latest: null, kind: 'preschool' })

    // The index is the worst band of the fresh index pollutants: pm25 20 is band 3 (15 < x ≤ 50), no2 18.2 band 2.
    expect(byId.get('vikingaskolan')?.properties.index).toEqual({
      band: 3,
      pollutant: 'pm25',
      bands: { pm25: 3, no2: 2 },
    })
    // backaskolan's newest value is 8 h 10 min old, older than INDEX_MAX_AGE_MS (3 h): no index.
    expect(byId.get('backaskolan')?.properties.index).toEqual({ band: null, pollutant: null, bands: {} })
    // stora-skolan: pm25 = 10 000 mod 50 = 0, one minute ago: band 1.
    expect(byId.get('stora-skolan')?.properties.index).toEqual({ band: 1, pollutant: 'pm25', bands: { pm25: 1 } })
    expect(byId.get('demo-forskola')?.properties.index).toEqual({ band: null, pollutant: null, bands: {} })

    // Health: aq-0001 (60 s) last sent 16 min ago, past max(3 × 60 s, 10 min): offline. aq-0002 (600 s) last
    // sent 8 h ago: offline. aq-0003 sent every minute for the whole last day: ok. demo-forskola has no device.
    expect(byId.get('vikingaskolan')?.properties.health).toEqual({
      devices: 1,
      ok: 0,
      suspect: 0,
      offline: 1,
      never: 0,
      last_seen: '2026-11-30T11:44:00.000Z',
    })
    expect(byId.get('backaskolan')?.properties.health).toEqual({
      devices: 1,
      ok: 0,
      suspect: 0,
      offline: 1,
      never: 0,
      last_seen: '2026-11-30T03:50:00.000Z',
    })
    expect(byId.get('stora-skolan')?.properties.health).toEqual({
      devices: 1,
      ok: 1,
      suspect: 0,
      offline: 0,
      never: 0,
      last_seen: '2026-11-30T11:59:00.000Z',
    })
    expect(byId.get('demo-forskola')?.properties.health).toEqual({
      devices: 0,
      ok: 0,
      suspect: 0,
      offline: 0,
      never: 0,
      last_seen: null,
    })
    // No incidents are stored here: every site has none open (see 'open breaches' below).
    for (const feature of features) expect(feature.properties.breaches).toEqual({ open: 0 })
  })

  it('gives one site as a Feature, and a 404 problem for an unknown or malformed id', async () => {
    const { res, body } = await get('/api/v1/sites/vikingaskolan')
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/^application\/geo\+json/)
    expect(SiteFeature.safeParse(body).success).toBe(true)
    expect(body).toEqual({
      type: 'Feature',
      id: 'vikingaskolan',
      geometry: { type: 'Point', coordinates: [13.2051, 55.7135] },
      properties: {
        name: 'Vikingaskolan',
        kind: 'school',
        stages: ['f-3', '4-6'],
        address: 'Vikingavägen 1',
        locality: 'Lund',
        municipality: 'Lund',
        demo: false,
        latest: {
          ts: '2026-11-30T11:44:00.000Z',
          values: { pm25: 20, no2: 18.2 },
          times: { pm25: '2026-11-30T11:44:00.000Z', no2: '2026-11-30T11:44:00.000Z' },
          age_s: 960,
        },
        index: { band: 3, pollutant: 'pm25', bands: { pm25: 3, no2: 2 } },
        health: { devices: 1, ok: 0, suspect: 0, offline: 1, never: 0, last_seen: '2026-11-30T11:44:00.000Z' },
        breaches: { open: 0 },
      },
    })
    // Anonymous callers see no devices; staff see each device with its health.
    const staff = await get('/api/v1/sites/vikingaskolan', asStaff())
    expect(staff.res.status).toBe(200)
    expect(staff.res.headers.get('cache-control')).toBe('private, max-age=5')
    expect((staff.body as { properties: { devices: unknown } }).properties.devices).toEqual([
      {
        id: 'aq-0001',
        model: 'test',
        sensors: ['pm25', 'no2'],
        interval_s: 60,
        indoor: false,
        height_m: 2,
        since: new Date(NOW - 30 * DAY_MS).toISOString(),
        last_seen: '2026-11-30T11:44:00.000Z',
        health: 'offline',
        // 135 readings over the last 24 h where 1 440 were expected.
        coverage_24h: Math.round((135 / 1440) * 1000) / 1000,
      },
    ])
    const missing = await problem('/api/v1/sites/nowhere', 404)
    expect(missing.body.code).toBe('site_not_found')
    expect(missing.body.detail).toContain('"nowhere"')
    expect((await problem('/api/v1/sites/Not%20An%20Id', 404)).body.code).toBe('site_not_found')
  })
})

describe('GET /api/v1/sites: open breaches', () => {
  it('counts each site’s open incidents from storage, leaving out closed and withdrawn ones', async () => {
    const base = {
      pollutant: 'pm10' as const,
      profileId: 'eu2008-50',
      profileVersion: '2026-11-30',
      severity: 'warning' as const,
      threshold: 50,
      peak: 80,
      escalations: [],
      retrospective: false,
      updatedAt: NOW,
    }
    const open = {
      start: NOW - 2 * DAY_MS,
      end: null,
      openedAt: NOW - 2 * DAY_MS,
      closedAt: null,
      peakAt: NOW - DAY_MS,
    }
    const saved = [
      await storage.breaches.saveIncident({ ...base, ...open, siteId: 'backaskolan', ruleId: 'eu2008-pm10-day' }),
      await storage.breaches.saveIncident({ ...base, ...open, siteId: 'backaskolan', ruleId: 'se-mkn-pm10-day' }),
      await storage.breaches.saveIncident({
        ...base,
        siteId: 'backaskolan',
        ruleId: 'who2021-aqg-pm10-day',
        start: NOW - 5 * DAY_MS,
        end: NOW - 4 * DAY_MS,
        openedAt: NOW - 5 * DAY_MS,
        closedAt: NOW - 4 * DAY_MS,
        peakAt: NOW - 5 * DAY_MS,
      }),
      await storage.breaches.saveIncident({ ...base, ...open, siteId: 'stora-skolan', ruleId: 'eu2008-pm10-day' }),
    ]
    const withdrawn = saved[3]
    if (withdrawn === undefined) throw new Error('no incident saved')
    await storage.breaches.withdrawIncident(withdrawn.id, NOW)
    try {
      const { body } = await get('/api/v1/sites')
      const open = new Map(
        SiteFeatureCollection.parse(body).features.map((f) => [f.id, f.properties.breaches.open] as const),
      )
      expect(Object.fromEntries(open)).toEqual({
        vikingaskolan: 0,
        backaskolan: 2,
        'demo-forskola': 0,
        'stora-skolan': 0,
      })
    } finally {
      for (const incident of saved) await storage.breaches.withdrawIncident(incident.id, NOW)
    }
  })
})

describe('GET /api/v1/sites/:id/series', () => {
  const series = '/api/v1/sites/vikingaskolan/series'

  it('returns raw points in time order with device, from inclusive and to exclusive', async () => {
    const { res, body } = await get(
      `${series}?metric=pm25&every=raw&from=2026-11-30T09:00:00Z&to=2026-11-30T09:06:00Z`,
      asStaff(),
    )
    expect(res.status).toBe(200)
    expect(res.headers.get('cache-control')).toBe('private, max-age=5')
    expect(res.headers.get('content-type')).toMatch(/^application\/json/)
    expect(body).toEqual({
      site: 'vikingaskolan',
      metric: 'pm25',
      unit: 'µg/m³',
      every: 'raw',
      from: '2026-11-30T09:00:00.000Z',
      to: '2026-11-30T09:06:00.000Z',
      points: [5, 6, 7, 8, 5, 6].map((value, m) => ({
        t: `2026-11-30T09:0${m}:00.000Z`,
        value,
        device: 'aq-0001',
      })),
    })
  })

  it('needs a role for raw readings, even with the public map on', async () => {
    const { body } = await problem(`${series}?metric=pm25&every=raw`, 401)
    expect(body.code).toBe('unauthorized')
    expect(body.detail).toContain('read raw readings')
  })

  it('returns hourly means with n, coverage and validity', async () => {
    const { res, body } = await get(`${series}?metric=pm25&every=1h&from=2026-11-30T09:00:00Z&to=2026-11-30T12:00:00Z`)
    expect(res.status).toBe(200)
    expect(res.headers.get('cache-control')).toBe('public, max-age=5')
    expect(body).toMatchObject({ every: '1h', unit: 'µg/m³' })
    expect((body as { points: unknown[] }).points).toEqual([
      { t: '2026-11-30T09:00:00.000Z', mean: 6.5, min: 5, max: 8, n: 60, expected: 60, coverage: 1, valid: true },
      { t: '2026-11-30T10:00:00.000Z', mean: 10, min: 10, max: 10, n: 30, expected: 60, coverage: 0.5, valid: false },
      { t: '2026-11-30T11:00:00.000Z', mean: 20, min: 20, max: 20, n: 45, expected: 60, coverage: 0.75, valid: true },
    ])
  })

  it('defaults to hourly means over the 24 h before now, every hour of them', async () => {
    const { body } = await get(`${series}?metric=no2`)
    expect(body).toMatchObject({ every: '1h', from: '2026-11-29T12:00:00.000Z', to: '2026-11-30T12:00:00.000Z' })
    const points = (body as { points: { t: string; n: number }[] }).points
    expect(points.map((p) => p.t)).toEqual(
      Array.from({ length: 24 }, (_, i) => new Date(Date.parse('2026-11-29T12:00:00Z') + i * HOUR_MS).toISOString()),
    )
    expect(points.filter((p) => p.n > 0)).toEqual([
      {
        t: '2026-11-30T11:00:00.000Z',
        mean: 18.2,
        min: 18.2,
        max: 18.2,
        n: 1,
        expected: 60,
        coverage: 0.017,
        valid: false,
      },
    ])
  })

  it('keeps the empty hours of the range, from the hour containing a mid-hour from', async () => {
    const { body } = await get(`${series}?metric=pm25&every=1h&from=2026-11-30T07:30:00Z&to=2026-11-30T12:00:00Z`)
    const empty = (t: string) => ({ t, mean: null, min: null, max: null, n: 0, expected: 0, coverage: 0, valid: false })
    expect((body as { points: unknown[] }).points).toEqual([
      empty('2026-11-30T07:00:00.000Z'),
      empty('2026-11-30T08:00:00.000Z'),
      expect.objectContaining({ t: '2026-11-30T09:00:00.000Z', n: 60 }),
      expect.objectContaining({ t: '2026-11-30T10:00:00.000Z', n: 30 }),
      expect.objectContaining({ t: '2026-11-30T11:00:00.000Z', n: 45 }),
    ])
    // As documented in the OpenAPI description (null numbers for an empty window).
    expect(SeriesResponse.safeParse(body).success).toBe(true)
    const none = await get(`${series}?metric=pm10&every=1h&from=2026-11-30T09:00:00Z&to=2026-11-30T11:00:00Z`)
    expect((none.body as { points: unknown[] }).points).toEqual([
      empty('2026-11-30T09:00:00.000Z'),
      empty('2026-11-30T10:00:00.000Z'),
    ])
  })

  it('serves every window of the longest allowed hourly and daily spans within the point cap', async () => {
    // From mid-hour / mid-day, the longest span touches one window more than span / window.
    for (const [every, from, windowMs] of [
      ['1h', NOW - MAX_SERIES_SPAN['1h'].ms - 30 * MINUTE_MS, HOUR_MS],
      ['1d', NOW + 12 * HOUR_MS - MAX_SERIES_SPAN['1d'].ms, DAY_MS],
    ] as const) {
      const to = from + MAX_SERIES_SPAN[every].ms
      const url = `${series}?metric=pm25&every=${every}&from=${new Date(from).toISOString()}&to=${new Date(to).toISOString()}`
      const { res, body } = await get(url)
      expect(res.status).toBe(200)
      const points = (body as { points: { t: string; n: number }[] }).points
      expect(points).toHaveLength(MAX_SERIES_SPAN[every].ms / windowMs + 1)
      expect(points.length).toBeLessThanOrEqual(MAX_SERIES_POINTS)
      expect(points.filter((p) => p.n > 0).length).toBe(every === '1h' ? 3 : 1)
      const times = points.map((p) => Date.parse(p.t))
      expect(times.every((t, i) => i === 0 || t - (times[i - 1] ?? 0) === windowMs)).toBe(true)
      // One window longer is refused with a 400, not shortened.
      const longer = `${series}?metric=pm25&every=${every}&from=${new Date(from - windowMs).toISOString()}&to=${new Date(to).toISOString()}`
      expect((await problem(longer, 400)).body.code).toBe('span_too_long')
    }
  })

  it('returns UTC+1 daily means of valid hours, marking days under 18 valid hours invalid, empty days kept', async () => {
    const { res, body } = await get(
      '/api/v1/sites/backaskolan/series?metric=pm25&every=1d&from=2026-11-28T12:00:00Z&to=2026-11-30T12:00:00Z',
    )
    expect(res.status).toBe(200)
    expect((body as { points: unknown[] }).points).toEqual([
      // The UTC+1 day containing `from` (2026-11-28), without data.
      { t: '2026-11-27T23:00:00.000Z', mean: null, min: null, max: null, n: 0, expected: 0, coverage: 0, valid: false },
      // Coverage 20/24 and 5/24, sent with 3 decimals.
      {
        t: '2026-11-28T23:00:00.000Z',
        mean: 9.5,
        min: 0,
        max: 19,
        n: 120,
        expected: 144,
        coverage: 0.833,
        valid: true,
      },
      {
        t: '2026-11-29T23:00:00.000Z',
        mean: 100,
        min: 100,
        max: 100,
        n: 30,
        expected: 144,
        coverage: 0.208,
        valid: false,
      },
    ])
  })

  it('filters by device, and 404s for an unknown site or device', async () => {
    const other = await get(`${series}?metric=pm25&every=raw&device=aq-0002`, asStaff())
    expect(other.res.status).toBe(200)
    expect(other.body).toMatchObject({ device: 'aq-0002', points: [] })
    expect((await problem(`${series}?metric=pm25&device=aq-9999`, 404)).body.code).toBe('device_not_found')
    expect((await problem('/api/v1/sites/nowhere/series?metric=pm25', 404)).body.code).toBe('site_not_found')
  })

  it('answers a bad metric, bad dates and from >= to with a 400 problem naming the parameter', async () => {
    const metric = await problem(`${series}?metric=co2`, 400)
    expect(metric.body.code).toBe('invalid_request')
    expect(metric.body.detail).toContain('metric must be one of pm1, pm25, pm10, no2, temp, rh')
    expect(metric.body.errors).toEqual([{ path: 'metric', message: expect.stringContaining('pm25') }])

    const dates = await problem(`${series}?metric=pm25&from=yesterday&to=2026-13-01T00:00:00Z`, 400)
    expect(dates.body.errors?.map((e) => e.path).sort()).toEqual(['from', 'to'])
    expect(dates.body.detail).toContain('from must be an ISO 8601 date-time')

    const order = await problem(`${series}?metric=pm25&from=2026-11-30T10:00:00Z&to=2026-11-30T09:00:00Z`, 400)
    expect(order.body.detail).toContain('from (2026-11-30T10:00:00.000Z) must be before to (2026-11-30T09:00:00.000Z)')

    expect((await problem(`${series}?metric=pm25&metric=pm10`, 400)).body.errors?.[0]?.path).toBe('metric')
  })

  it('refuses a window longer than the resolution allows, saying the cap and how to split', async () => {
    const { body } = await problem(
      `${series}?metric=pm25&every=raw&from=2026-11-20T00:00:00Z&to=2026-11-30T00:00:00Z`,
      400,
      asStaff(),
    )
    expect(body.code).toBe('span_too_long')
    expect(body.detail).toContain('every=raw allows at most 7 days')
    expect(body.detail).toContain('requested 10.0 days')
    expect(body.detail).toContain('split the window')
  })

  it(`refuses more than ${MAX_SERIES_POINTS} points instead of truncating, and serves exactly the cap`, async () => {
    const big = '/api/v1/sites/stora-skolan/series?metric=pm25&every=raw'
    const from = new Date(NOW - 7 * DAY_MS).toISOString()
    const to = new Date(NOW).toISOString()
    const over = await problem(`${big}&from=${from}&to=${to}`, 400, asStaff())
    expect(over.body.code).toBe('series_too_large')
    expect(over.body.detail).toContain(`more than ${MAX_SERIES_POINTS} points`)
    expect(over.body.detail).toContain('split')

    // Starting one reading later leaves exactly MAX_SERIES_POINTS points.
    const secondTs = new Date(NOW - MAX_SERIES_POINTS * MINUTE_MS).toISOString()
    const { res, body } = await get(`${big}&from=${secondTs}&to=${to}`, asStaff())
    expect(res.status).toBe(200)
    const points = (body as { points: { t: string }[] }).points
    expect(points).toHaveLength(MAX_SERIES_POINTS)
    expect(points[0]?.t).toBe(secondTs)
    expect(points.at(-1)?.t).toBe(new Date(NOW - MINUTE_MS).toISOString())
  })
})

describe('operator endpoints', () => {
  const auth = (token: string) => ({ headers: { Authorization: `Bearer ${token}` } })

  it('need a log-in or token; without a configured operator token that token is just an invalid bearer', async () => {
    const none = await problem('/api/v1/rejects', 401, {}, bare)
    expect(none.body.code).toBe('unauthorized')
    expect(none.res.headers.get('www-authenticate')).toBe('Bearer realm="skolluft"')
    const unknown = await problem('/api/v1/rejects/counts', 401, auth(TOKEN), bare)
    expect(unknown.body.code).toBe('invalid_token')
    expect(unknown.res.headers.get('www-authenticate')).toBe('Bearer realm="skolluft", error="invalid_token"')
  })

  it('answer 401 without a token or with a wrong one', async () => {
    const none = await problem('/api/v1/rejects', 401)
    expect(none.body.code).toBe('unauthorized')
    expect(none.res.headers.get('www-authenticate')).toBe('Bearer realm="skolluft"')
    const wrong = await problem('/api/v1/rejects', 401, auth(`${TOKEN}x`))
    expect(wrong.body.code).toBe('invalid_token')
    expect(wrong.res.headers.get('www-authenticate')).toContain('error="invalid_token"')
    expect((await problem('/api/v1/rejects/counts', 401, auth('short'))).body.code).toBe('invalid_token')
    const basic = await problem('/api/v1/rejects', 401, { headers: { Authorization: `Basic ${TOKEN}` } })
    expect(basic.body.code).toBe('invalid_token')
    expect(logLines.some((line) => line.includes(TOKEN))).toBe(false)
  })

  it('answer 403 to a role without rejects:read, and the operator token reads nothing else', async () => {
    expect((await problem('/api/v1/rejects', 403, asStaff())).body.code).toBe('forbidden')
    expect((await problem('/api/v1/rejects/counts', 403, asStaff())).body.code).toBe('forbidden')
    // The operator token holds rejects:read only: raw readings stay closed to it.
    const raw = await problem('/api/v1/sites/vikingaskolan/series?metric=pm25&every=raw', 403, auth(TOKEN))
    expect(raw.body.code).toBe('forbidden')
  })

  it('list rejects newest first, filtered and limited, with the right token', async () => {
    const { res, body } = await get('/api/v1/rejects', auth(TOKEN))
    expect(res.status).toBe(200)
    expect(res.headers.get('cache-control')).toBe('no-store')
    expect(body).toEqual({
      rejects: [
        {
          at: new Date(NOW - MINUTE_MS).toISOString(),
          device: 'aq-0001',
          topic: 'aq/v1/devices/aq-0001/telemetry',
          code: 'bad_json',
          message: 'not JSON',
          index: null,
        },
        expect.objectContaining({ code: 'out_of_range', index: 3 }),
        expect.objectContaining({ code: 'bad_topic', device: null }),
      ],
    })
    const filtered = await get('/api/v1/rejects?device=aq-0001&limit=1', {
      headers: { authorization: `bearer ${TOKEN}` },
    })
    expect((filtered.body as { rejects: { code: string }[] }).rejects.map((r) => r.code)).toEqual(['bad_json'])
    const bad = await problem('/api/v1/rejects?limit=0', 400, auth(TOKEN))
    expect(bad.body.detail).toContain('limit must be at least 1')
  })

  it('count rejects per device and code', async () => {
    const { res, body } = await get('/api/v1/rejects/counts', auth(TOKEN))
    expect(res.status).toBe(200)
    const counts = (body as { counts: { device: string | null; code: string; count: number; last_at: string }[] })
      .counts
    expect(counts).toHaveLength(3)
    expect(counts).toContainEqual({
      device: 'aq-0001',
      code: 'out_of_range',
      count: 1,
      last_at: new Date(NOW - 2 * MINUTE_MS).toISOString(),
    })
    expect(counts).toContainEqual(expect.objectContaining({ device: null, code: 'bad_topic', count: 1 }))
  })
})

describe('HTTP behaviour', () => {
  it('GET /healthz is ok while storage answers', async () => {
    const { res, body } = await get('/healthz')
    expect(res.status).toBe(200)
    expect(res.headers.get('cache-control')).toBe('no-store')
    expect(body).toEqual({ status: 'ok' })
  })

  it('GET /healthz is a 503 problem when storage does not answer', async () => {
    const own = await tempDir('skolluft-api-health-')
    const closed = openSqliteStorage({ path: join(own.path, 'closed.db') })
    await closed.close()
    const server = await startApi({ log: silentLogger(), storage: closed, host: '127.0.0.1', port: 0 })
    try {
      const { body } = await problem('/healthz', 503, {}, server)
      expect(body.code).toBe('storage_unavailable')
    } finally {
      await server.close()
      await own.cleanup()
    }
  })

  it('sets security headers on data, errors and health, and hides x-powered-by', async () => {
    for (const path of ['/api/v1/sites', '/api/v1/nope', '/healthz']) {
      const res = await fetch(url(api, path))
      await res.arrayBuffer()
      expect(res.headers.get('x-content-type-options')).toBe('nosniff')
      expect(res.headers.get('referrer-policy')).toBe('no-referrer')
      expect(res.headers.get('x-frame-options')).toBe('DENY')
      expect(res.headers.get('content-security-policy')).toContain("default-src 'none'")
      expect(res.headers.get('x-powered-by')).toBeNull()
    }
  })

  it('answers anything unknown with a 404 problem and wrong methods with 405', async () => {
    for (const path of ['/api/v1/nope', '/api', '/api/v2/sites', '/elsewhere']) {
      expect((await problem(path, 404)).body.code).toBe('not_found')
    }
    const post = await problem('/api/v1/sites', 405, { method: 'POST' })
    expect(post.res.headers.get('allow')).toBe('GET, HEAD')
  })

  it('refuses a JSON body over the limit with 413 before any route', async () => {
    const body = JSON.stringify({ padding: 'x'.repeat(200 * 1024) })
    const { body: p } = await problem('/api/v1/sites', 413, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body,
    })
    expect(p.code).toBe('payload_too_large')
  })

  it('logs one debug line per request with method, path, status and duration', async () => {
    await get('/api/v1/sites/demo-forskola?x=1')
    const line = await waitFor(
      () => logLines.find((l) => l.includes('"msg":"request"') && l.includes('/api/v1/sites/demo-forskola')),
      'request log line',
    )
    expect(JSON.parse(line)).toMatchObject({
      level: 20,
      method: 'GET',
      path: '/api/v1/sites/demo-forskola',
      status: 200,
      ms: expect.any(Number),
    })
  })
})
