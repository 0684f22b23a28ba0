import { join } from 'node:path'
import { DAY_MS, DEFAULT_MEASURES, HOUR_MS, type Measure, type Role } from '@skolluft/core'
import { silentLogger } from '@skolluft/runtime'
import { openSqliteStorage, type Storage, type StoredReading } from '@skolluft/storage'
import { tempDir } from '@skolluft/testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { type RunningApi, startApi } from '../server.ts'
import { ANONYMOUS_CALLER, addTestUsers, type Caller, call, createToken, logInTestUsers } from '../test-http.ts'
import { FollowUpResponse, MeasureCatalogueResponse, SiteMeasureListResponse, SiteMeasureResponse } from './measures.ts'

/**
 * The catalogue of measures, measures taken and their follow-up over real HTTP against a real SQLite file: who may
 * read and change them, optimistic concurrency on the catalogue (428, 412), validation with the zod path, audit,
 * and a follow-up whose numbers are known from the data written (site and urban background, before and after).
 */
const NOW = Date.parse('2026-11-30T12:00:00Z')
const clock = () => NOW
const SITE = 'school-a'
/** Another school, bound to another principal; no background site within reach (Stockholm). */
const FAR = 'school-far'
const BACKGROUND = 'bg-lund'
/** A school with an outdoor device (PM2.5 10) and an indoor one (30). */
const IO = 'school-io'
/** Monday 5 October 2026; 7-day windows: 28 Sep – 4 Oct and 5 – 11 Oct (UTC+1 days), all autumn. */
const TAKEN_ON = '2026-10-05'
const START = Date.parse('2026-10-04T23:00:00Z')
const DAYS = 7
const INTERVAL_S = 600
const PER_HOUR = 3600 / INTERVAL_S

const USERS: readonly { who: string; role: Role; sites?: string[] }[] = [
  { who: 'admin', role: 'admin' },
  { who: 'staff', role: 'staff' },
  { who: 'principal', role: 'principal', sites: [SITE] },
  { who: 'principalFar', role: 'principal', sites: [FAR] },
  { who: 'caretaker', role: 'caretaker' },
  { who: 'researcher', role: 'researcher' },
]

const Problem = z.object({
  status: z.number(),
  code: z.string(),
  detail: z.string(),
  errors: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
})

let dir: Awaited<ReturnType<typeof tempDir>>
let storage: Storage
let api: RunningApi
const callers = new Map<string, Caller>()

function callerOf(who: string): Caller {
  const caller = callers.get(who)
  if (caller === undefined) throw new Error(`no caller ${who}`)
  return caller
}

/** A PUT with headers of its own (test-http's `call` sends GET, POST and DELETE without extra headers). */
async function put(
  caller: Caller,
  path: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: unknown; headers: Headers }> {
  const res = await fetch(`http://127.0.0.1:${api.port}/api/v1${path}`, {
    method: 'PUT',
    headers: {
      ...caller.headers,
      'Content-Type': 'application/json',
      ...(caller.csrf === null ? {} : { 'X-CSRF-Token': caller.csrf }),
      ...headers,
    },
    body: JSON.stringify(body),
  })
  const text = await res.text()
  return { status: res.status, body: text === '' ? undefined : JSON.parse(text), headers: res.headers }
}

async function currentEtag(): Promise<string> {
  const res = await call(api, callerOf('admin'), 'GET', '/measures')
  const etag = res.headers.get('etag')
  if (etag === null) throw new Error('GET /measures sent no ETag')
  return etag
}

function reading(deviceId: string, siteId: string, ts: number, values: StoredReading['values']): StoredReading {
  return { deviceId, siteId, ts, seq: null, values, receivedAt: ts, expectedPerHour: PER_HOUR }
}

/**
 * ±1 around a level, alternating reading by reading within each hour (6 readings: the hourly mean is the level
 * exactly), so that no hour looks stuck to the quality checks (quality.ts: identical readings for ≥ 2 h).
 */
const around = (level: number, t: number): number => level + ((t / (INTERVAL_S * 1000)) % 2 === 0 ? 1 : -1)

/** Every reading of [from, to) with `values(t)`. */
function readings(
  deviceId: string,
  siteId: string,
  from: number,
  to: number,
  values: (t: number) => StoredReading['values'],
) {
  const out: StoredReading[] = []
  for (let t = from; t < to; t += INTERVAL_S * 1000) out.push(reading(deviceId, siteId, t, values(t)))
  return out
}

const first = (): Measure => {
  const measure = DEFAULT_MEASURES[0]
  if (measure === undefined) throw new Error('the default catalogue is empty')
  return measure
}

beforeAll(async () => {
  dir = await tempDir('skolluft-measures-')
  storage = openSqliteStorage({ path: join(dir.path, 'skolluft.db') })
  await storage.registry.upsertSites([
    { id: SITE, name: 'Skola A', kind: 'school', municipality: 'Lund', lat: 55.7, lon: 13.19 },
    { id: BACKGROUND, name: 'Lund tak', kind: 'background', municipality: 'Lund', lat: 55.705, lon: 13.195 },
    { id: FAR, name: 'Skola Långt bort', kind: 'school', municipality: 'Stockholm', lat: 59.33, lon: 18.07 },
    { id: IO, name: 'Skola Inne och ute', kind: 'school', municipality: 'Lund', lat: 55.71, lon: 13.2 },
  ])
  const from = START - DAYS * DAY_MS
  const to = START + DAYS * DAY_MS
  const devices = [
    { id: 'dev-a', siteId: SITE, sensors: ['pm25', 'temp', 'rh'] as const, indoor: false },
    { id: 'dev-bg', siteId: BACKGROUND, sensors: ['pm25'] as const, indoor: false },
    { id: 'dev-io-out', siteId: IO, sensors: ['pm25'] as const, indoor: false },
    { id: 'dev-io-in', siteId: IO, sensors: ['pm25'] as const, indoor: true },
  ]
  for (const d of devices) {
    await storage.registry.addDevice(
      {
        id: d.id,
        model: 'SDS011',
        sensors: [...d.sensors],
        intervalS: INTERVAL_S,
        secretHash: 'x',
        placement: { siteId: d.siteId, from: from - DAY_MS, indoor: d.indoor, heightM: 2 },
      },
      from - DAY_MS,
    )
  }
  // Site: PM2.5 20 before, 15 after; 12 °C and 80 % before, 11 °C and 70 % after. Background: 10 before, 8 after.
  await storage.readings.writeReadings(
    readings('dev-a', SITE, from, to, (t) =>
      t < START ? { pm25: around(20, t), temp: 12, rh: 80 } : { pm25: around(15, t), temp: 11, rh: 70 },
    ),
  )
  await storage.readings.writeReadings(
    readings('dev-bg', BACKGROUND, from, to, (t) => ({ pm25: around(t < START ? 10 : 8, t) })),
  )
  await storage.readings.writeReadings(readings('dev-io-out', IO, from, to, (t) => ({ pm25: around(10, t) })))
  await storage.readings.writeReadings(readings('dev-io-in', IO, from, to, (t) => ({ pm25: around(30, t) })))
  await addTestUsers(storage, USERS, NOW - DAY_MS)
  api = await startApi({
    log: silentLogger(),
    storage,
    clock,
    host: '127.0.0.1',
    port: 0,
    // The clock stands still, so the per-address bucket never refills: room for every request of this file.
    options: { rateLimit: { ratePerS: 1, burst: 10_000 } },
  })
  callers.set('anonymous', ANONYMOUS_CALLER)
  for (const [who, caller] of await logInTestUsers(api, USERS)) callers.set(who, caller)
  const tokens = [
    ['staffToken', { name: 'staff, default scopes', role: 'staff' }],
    ['staffWriter', { name: 'measures desk', role: 'staff', scopes: ['series:hourly', 'measures:write'] }],
  ] as const
  for (const [who, body] of tokens) callers.set(who, (await createToken(api, callerOf('admin'), body)).caller)
})

afterAll(async () => {
  await api?.close()
  await storage?.close()
  await dir?.cleanup()
})

describe('permissions', () => {
  // who → [GET /measures, PUT /measures, GET /sites/school-a/measures, POST /sites/school-a/measures]
  const TABLE: Readonly<Record<string, readonly [number, number, number, number]>> = {
    anonymous: [401, 401, 401, 401],
    caretaker: [200, 403, 200, 403],
    researcher: [200, 403, 200, 403],
    principal: [200, 403, 200, 403],
    // Bound to another site: the catalogue yes, this site's measures no.
    principalFar: [200, 403, 403, 403],
    // A staff token gets measures:write only when asked for by name.
    staffToken: [200, 403, 200, 403],
    staff: [200, 200, 200, 201],
    staffWriter: [200, 200, 200, 201],
    admin: [200, 200, 200, 201],
  }
  it.each(Object.entries(TABLE))('%s → %j', async (who, [get, change, list, record]) => {
    const caller = callerOf(who)
    expect((await call(api, caller, 'GET', '/measures')).status).toBe(get)
    const saved = await put(caller, '/measures', DEFAULT_MEASURES, { 'If-Match': await currentEtag() })
    expect(saved.status, JSON.stringify(saved.body)).toBe(change)
    expect((await call(api, caller, 'GET', `/sites/${SITE}/measures`)).status).toBe(list)
    const created = await call(api, caller, 'POST', `/sites/${SITE}/measures`, {
      body: { title: `test by ${who}`, takenOn: '2026-11-01' },
    })
    expect(created.status, JSON.stringify(created.body)).toBe(record)
    if (created.status === 201) {
      const { id } = SiteMeasureResponse.parse(created.body)
      expect((await call(api, caller, 'DELETE', `/sites/${SITE}/measures/${id}`)).status).toBe(204)
    }
  })

  it('refuses a session change without the CSRF token', async () => {
    const res = await call(api, callerOf('staff'), 'POST', `/sites/${SITE}/measures`, {
      body: { title: 'x', takenOn: '2026-11-01' },
      csrf: false,
    })
    expect(res.status).toBe(403)
  })
})

describe('GET|PUT /measures', () => {
  it('serves the catalogue with its revision as ETag; the default one before any edit', async () => {
    const fresh = await call(api, callerOf('researcher'), 'GET', '/measures')
    expect(fresh.status).toBe(200)
    const body = MeasureCatalogueResponse.parse(fresh.body)
    expect(fresh.headers.get('etag')).toBe(`"${body.revision}"`)
    expect(fresh.headers.get('cache-control')).toBe('no-store')
    if (body.revision === 0) expect(body).toMatchObject({ source: 'default', updated_at: null })
    else expect(body.source).toBe('edited')
  })

  it('needs If-Match (428), refuses a malformed one (400) and a stale revision (412), then saves and audits', async () => {
    const staff = callerOf('staff')
    const etag = await currentEtag()
    const revision = Number(etag.replaceAll('"', ''))
    const edited = [
      { ...first(), name: { sv: 'Bilfri skolgata', en: 'Car-free school street' } },
      ...DEFAULT_MEASURES.slice(1),
    ]

    const missing = await put(staff, '/measures', edited)
    expect(missing.status).toBe(428)
    expect(Problem.parse(missing.body).code).toBe('precondition_required')
    const weak = await put(staff, '/measures', edited, { 'If-Match': `W/${etag}` })
    expect(weak.status).toBe(400)
    expect(Problem.parse(weak.body).code).toBe('invalid_if_match')
    const stale = await put(staff, '/measures', edited, { 'If-Match': `"${revision + 5}"` })
    expect(stale.status).toBe(412)
    expect(Problem.parse(stale.body).code).toBe('revision_mismatch')
    expect(stale.headers.get('etag')).toBe(etag)

    const saved = await put(staff, '/measures', edited, { 'If-Match': etag })
    expect(saved.status, JSON.stringify(saved.body)).toBe(200)
    const body = MeasureCatalogueResponse.parse(saved.body)
    expect(body).toMatchObject({ revision: revision + 1, source: 'edited', updated_at: new Date(NOW).toISOString() })
    expect(body.measures[0]?.name.en).toBe('Car-free school street')
    expect(saved.headers.get('etag')).toBe(`"${revision + 1}"`)
    expect(MeasureCatalogueResponse.parse((await call(api, staff, 'GET', '/measures')).body)).toEqual(body)
    // The same If-Match again is stale now: the second of two editors cannot overwrite the first.
    expect((await put(staff, '/measures', DEFAULT_MEASURES, { 'If-Match': etag })).status).toBe(412)

    const entries = await storage.access.listAudit({ limit: 100 })
    const entry = entries.find(
      (e) => e.action === 'measures.catalogue.update' && e.target === `revision-${revision + 1}`,
    )
    expect(entry).toMatchObject({ actor: expect.stringMatching(/^user:/) })
    expect(entry?.detail).toMatchObject({ revision: revision + 1, measures: DEFAULT_MEASURES.map((m) => m.id) })
  })

  it('answers 400 with the zod path and message of an invalid catalogue, and keeps the stored one', async () => {
    const etag = await currentEtag()
    const cases: [unknown, string, RegExp][] = [
      [[{ ...first(), name: { sv: 'Bilfri gata', en: 'A car-free street proves it' } }], '0.name.en', /suggestion/],
      [[first(), first()], '1.id', /duplicate id/],
      [
        [{ ...first(), suggestedBy: [{ pattern: 'drop-off-peak', evidence: { sv: 'Se {x}', en: 'See {x}' } }] }],
        '0.suggestedBy.0.evidence.sv',
        /unknown placeholder \{x\}/,
      ],
      [{ measures: [] }, '', /array/],
    ]
    for (const [body, path, message] of cases) {
      const res = await put(callerOf('admin'), '/measures', body, { 'If-Match': etag })
      expect(res.status, JSON.stringify(res.body)).toBe(400)
      const problem = Problem.parse(res.body)
      expect(problem.errors?.find((e) => e.path === path)?.message, JSON.stringify(problem)).toMatch(message)
    }
    expect(await currentEtag()).toBe(etag)
  })
})

describe('measures taken at a site', () => {
  it('records a catalogue measure (title from the catalogue), lists by date, hides who recorded it from readers', async () => {
    const staff = callerOf('staff')
    const later = await call(api, staff, 'POST', `/sites/${SITE}/measures`, {
      body: { measureId: 'spring-street-cleaning', takenOn: '2026-11-20', note: '  Sopning varje vecka ' },
    })
    expect(later.status, JSON.stringify(later.body)).toBe(201)
    const created = SiteMeasureResponse.parse(later.body)
    const catalogue = MeasureCatalogueResponse.parse((await call(api, staff, 'GET', '/measures')).body)
    expect(created).toMatchObject({
      site: SITE,
      measure_id: 'spring-street-cleaning',
      title: catalogue.measures.find((m) => m.id === 'spring-street-cleaning')?.name.sv,
      taken_on: '2026-11-20',
      note: 'Sopning varje vecka',
      recorded_at: new Date(NOW).toISOString(),
      recorded_by: expect.stringMatching(/^user:/),
    })
    const earlier = SiteMeasureResponse.parse(
      (
        await call(api, staff, 'POST', `/sites/${SITE}/measures`, {
          body: { measureId: null, title: 'Flyttat luftintag', takenOn: '2026-09-01' },
        })
      ).body,
    )
    const forStaff = SiteMeasureListResponse.parse((await call(api, staff, 'GET', `/sites/${SITE}/measures`)).body)
    const ids = forStaff.measures.map((m) => m.id)
    expect(ids.indexOf(earlier.id)).toBeLessThan(ids.indexOf(created.id))
    const forPrincipal = SiteMeasureListResponse.parse(
      (await call(api, callerOf('principal'), 'GET', `/sites/${SITE}/measures`)).body,
    )
    expect(forPrincipal.measures.map((m) => m.id)).toEqual(ids)
    for (const m of forPrincipal.measures) expect(m).not.toHaveProperty('recorded_by')
    const entries = await storage.access.listAudit({ limit: 100 })
    expect(entries.find((e) => e.action === 'site-measure.create' && e.target === created.id)?.detail).toEqual({
      site: SITE,
      measure: 'spring-street-cleaning',
      takenOn: '2026-11-20',
    })
  })

  it('refuses unknown catalogue measures, future dates, a missing title, and unknown fields', async () => {
    const cases: [unknown, string, string][] = [
      [{ measureId: 'teleport-the-school', takenOn: '2026-11-01' }, 'unknown_measure', 'measureId'],
      // NOW is 30 Nov 12:00 UTC = 13:00 UTC+1: 1 December is tomorrow.
      [{ title: 'x', takenOn: '2026-12-01' }, 'invalid_date', 'takenOn'],
      [{ takenOn: '2026-11-01' }, 'invalid_request', 'title'],
      [{ title: 'x', takenOn: '2026-02-30' }, 'invalid_request', 'takenOn'],
      [{ title: 'x', takenOn: '2026-11-01', by: 'me' }, 'invalid_request', ''],
    ]
    for (const [body, code, path] of cases) {
      const res = await call(api, callerOf('admin'), 'POST', `/sites/${SITE}/measures`, { body })
      expect(res.status, JSON.stringify(res.body)).toBe(400)
      const problem = Problem.parse(res.body)
      expect(problem.code).toBe(code)
      expect(problem.errors?.map((e) => e.path)).toContain(path)
    }
    // Today is fine.
    const today = await call(api, callerOf('admin'), 'POST', `/sites/${SITE}/measures`, {
      body: { title: 'x', takenOn: '2026-11-30' },
    })
    expect(today.status).toBe(201)
    expect((await call(api, callerOf('admin'), 'POST', '/sites/nowhere/measures', { body: {} })).status).toBe(404)
  })

  it('deletes a measure only under its own site, once, and audits it', async () => {
    const admin = callerOf('admin')
    const { id } = SiteMeasureResponse.parse(
      (await call(api, admin, 'POST', `/sites/${SITE}/measures`, { body: { title: 'oops', takenOn: '2026-11-02' } }))
        .body,
    )
    expect((await call(api, admin, 'DELETE', `/sites/${FAR}/measures/${id}`)).status).toBe(404)
    expect((await call(api, callerOf('principal'), 'DELETE', `/sites/${SITE}/measures/${id}`)).status).toBe(403)
    expect((await call(api, admin, 'DELETE', `/sites/${SITE}/measures/${id}`)).status).toBe(204)
    expect((await call(api, admin, 'DELETE', `/sites/${SITE}/measures/${id}`)).status).toBe(404)
    const list = SiteMeasureListResponse.parse((await call(api, admin, 'GET', `/sites/${SITE}/measures`)).body)
    expect(list.measures.map((m) => m.id)).not.toContain(id)
    const entries = await storage.access.listAudit({ limit: 100 })
    expect(entries.some((e) => e.action === 'site-measure.delete' && e.target === id)).toBe(true)
  })
})

describe('GET /sites/{id}/measures/{measureId}/follow-up', () => {
  let measureId = ''
  let farMeasureId = ''
  beforeAll(async () => {
    const record = async (site: string) =>
      SiteMeasureResponse.parse(
        (
          await call(api, callerOf('staff'), 'POST', `/sites/${site}/measures`, {
            body: { measureId: 'traffic-at-drop-off', takenOn: TAKEN_ON },
          })
        ).body,
      ).id
    measureId = await record(SITE)
    farMeasureId = await record(FAR)
  })

  it('compares the windows before and after, beside the nearest background site, with the caveats', async () => {
    const res = await call(api, callerOf('staff'), 'GET', `/sites/${SITE}/measures/${measureId}/follow-up?days=${DAYS}`)
    expect(res.status, JSON.stringify(res.body)).toBe(200)
    const body = FollowUpResponse.parse(res.body)
    expect(body).toMatchObject({
      site: SITE,
      days: DAYS,
      before: { from: new Date(START - DAYS * DAY_MS).toISOString(), to: new Date(START).toISOString() },
      after: { from: new Date(START).toISOString(), to: new Date(START + DAYS * DAY_MS).toISOString() },
      after_complete: true,
      background: { site: BACKGROUND, name: 'Lund tak', max_distance_km: 20 },
      weather: { temp: { before: 12, after: 11, source: 'site' }, rh: { before: 80, after: 70, source: 'site' } },
      seasons: { before: ['autumn'], after: ['autumn'] },
    })
    expect(body.background?.distance_km).toBeGreaterThan(0.5)
    expect(body.background?.distance_km).toBeLessThan(0.8)
    const pm25 = body.metrics.find((m) => m.metric === 'pm25')
    const hours = DAYS * 24
    expect(pm25).toEqual({
      metric: 'pm25',
      unit: 'µg/m³',
      before: { mean: 20, counted_hours: hours, expected_hours: hours, coverage: 1, sufficient_coverage: true },
      after: { mean: 15, counted_hours: hours, expected_hours: hours, coverage: 1, sufficient_coverage: true },
      change: { absolute: -5, percent: -25 },
      background: {
        before: { mean: 10, counted_hours: hours, expected_hours: hours, coverage: 1, sufficient_coverage: true },
        after: { mean: 8, counted_hours: hours, expected_hours: hours, coverage: 1, sufficient_coverage: true },
        change: { absolute: -2, percent: -20 },
      },
      difference_in_differences: -3,
    })
    // Only what a device at the site measures: no PM1, PM10 or NO2 there; and nothing but the holiday caveat.
    expect(body.metrics.map((m) => m.metric)).toEqual(['pm25'])
    expect(body.caveats.map((c) => c.code)).toEqual(['SCHOOL_HOLIDAYS'])
    const codes = body.caveats.map((c) => c.code)
    for (const absent of [
      'LOW_COVERAGE',
      'NO_BACKGROUND',
      'AFTER_INCOMPLETE',
      'SEASON_DIFFERS',
      'WEATHER_DIFFERS',
      'WEATHER_UNKNOWN',
    ]) {
      expect(codes).not.toContain(absent)
    }
    expect(res.headers.get('cache-control')).toMatch(/^private/)
  })

  it('uses 28 days by default and states no change while the after window runs', async () => {
    const body = FollowUpResponse.parse(
      (await call(api, callerOf('staff'), 'GET', `/sites/${SITE}/measures/${measureId}/follow-up`)).body,
    )
    expect(body.days).toBe(28)
    // 28 days from 5 October end on 2 November, before NOW: complete, but the data cover only 7 of the 28 days.
    const pm25 = body.metrics.find((m) => m.metric === 'pm25')
    expect(pm25?.before).toMatchObject({ mean: 20, counted_hours: DAYS * 24, coverage: 0.25 })
    expect(body.caveats.find((c) => c.code === 'LOW_COVERAGE')?.text.en).toContain('PM2.5 (before, after)')
    const recent = SiteMeasureResponse.parse(
      (
        await call(api, callerOf('staff'), 'POST', `/sites/${SITE}/measures`, {
          body: { title: 'Ny', takenOn: '2026-11-20' },
        })
      ).body,
    )
    const running = FollowUpResponse.parse(
      (await call(api, callerOf('staff'), 'GET', `/sites/${SITE}/measures/${recent.id}/follow-up?days=14`)).body,
    )
    expect(running.after_complete).toBe(false)
    expect(running.metrics.every((m) => m.change === null)).toBe(true)
    expect(running.caveats.map((c) => c.code)).toContain('AFTER_INCOMPLETE')
  })

  it('leaves out a background site the caller may not read (a principal bound to the school only)', async () => {
    const body = FollowUpResponse.parse(
      (await call(api, callerOf('principal'), 'GET', `/sites/${SITE}/measures/${measureId}/follow-up?days=7`)).body,
    )
    expect(body.background).toBeNull()
    expect(body.caveats.map((c) => c.code)).toContain('NO_BACKGROUND')
    expect(body.metrics.length).toBeGreaterThan(0)
  })

  it('follows up the outdoor air of a site with indoor and outdoor devices, as its report counts it', async () => {
    const id = SiteMeasureResponse.parse(
      (
        await call(api, callerOf('staff'), 'POST', `/sites/${IO}/measures`, {
          body: { measureId: 'traffic-at-drop-off', takenOn: TAKEN_ON },
        })
      ).body,
    ).id
    const body = FollowUpResponse.parse(
      (await call(api, callerOf('staff'), 'GET', `/sites/${IO}/measures/${id}/follow-up?days=7`)).body,
    )
    // Outdoor 10 before and after; with the indoor device (30) mixed in it would be 20.
    expect(body.metrics.map((m) => [m.metric, m.before.mean, m.after.mean])).toEqual([['pm25', 10, 10]])
  })

  it('says so when no background site is within reach', async () => {
    const body = FollowUpResponse.parse(
      (await call(api, callerOf('admin'), 'GET', `/sites/${FAR}/measures/${farMeasureId}/follow-up?days=7`)).body,
    )
    expect(body.background).toBeNull()
    // No device there: no pollutant to follow up.
    expect(body.metrics).toEqual([])
    expect(body.caveats.map((c) => c.code)).toEqual(expect.arrayContaining(['NO_BACKGROUND', 'WEATHER_UNKNOWN']))
  })

  it('refuses bad days, unknown parameters, other sites’ callers and unknown measures', async () => {
    const path = `/sites/${SITE}/measures/${measureId}/follow-up`
    for (const query of ['days=6', 'days=183', 'days=abc', 'days=7.5', 'day=7']) {
      const res = await call(api, callerOf('staff'), 'GET', `${path}?${query}`)
      expect(res.status, query).toBe(400)
    }
    expect((await call(api, callerOf('principalFar'), 'GET', path)).status).toBe(403)
    expect((await call(api, callerOf('anonymous'), 'GET', path)).status).toBe(401)
    expect((await call(api, callerOf('staff'), 'GET', `/sites/${FAR}/measures/${measureId}/follow-up`)).status).toBe(
      404,
    )
    expect((await call(api, callerOf('staff'), 'GET', `/sites/${SITE}/measures/sm-999999/follow-up`)).status).toBe(404)
  })

  it('keeps the measure and its follow-up numbers apart from hours outside the windows', async () => {
    // A reading far outside both windows changes nothing.
    await storage.readings.writeReadings([reading('dev-a', SITE, START + 60 * DAY_MS + HOUR_MS, { pm25: 999 })])
    const body = FollowUpResponse.parse(
      (await call(api, callerOf('staff'), 'GET', `/sites/${SITE}/measures/${measureId}/follow-up?days=7`)).body,
    )
    expect(body.metrics.find((m) => m.metric === 'pm25')?.change).toEqual({ absolute: -5, percent: -25 })
  })
})
