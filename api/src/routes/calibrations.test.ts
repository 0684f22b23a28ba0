import { join } from 'node:path'
import { DAY_MS, HOUR_MS, type Role } from '@skolluft/core'
import { silentLogger } from '@skolluft/runtime'
import { openSqliteStorage, type Storage, type StoredReading } from '@skolluft/storage'
import { tempDir } from '@skolluft/testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { type RunningApi, startApi } from '../server.ts'
import { ANONYMOUS_CALLER, addTestUsers, type Caller, call, createToken, logInTestUsers } from '../test-http.ts'

/**
 * Calibrations over real HTTP against a real SQLite file: who may read and change them, a colocation fit on
 * stored hourly data (humidity-corrected device, paired by hour, invalid hours left out), manual lines, versions,
 * retirement, and the 400/404/409/422 answers with their reasons.
 */
const NOW = Date.parse('2026-11-30T12:00:00Z')
const clock = () => NOW
/** Start of the colocation period, a whole hour. */
const P0 = Date.parse('2026-11-01T00:00:00Z')
const SITE = 'site-a'
/** The device: 6 readings an hour (interval 600 s). */
const DEVICE_INTERVAL_S = 600
const PER_HOUR = 3600 / DEVICE_INTERVAL_S
/** RH of every device reading, %. */
const RH = 80
/** rh-hackair@1 for PM2.5 at 80 % (air-quality.md §4.2): divide by 1 + 0.48756 · 0.8^8.60068. */
const HACKAIR_FACTOR = 1 + 0.48756 * 0.8 ** 8.60068
/** The device's raw PM2.5 in hour h, and the reference's: 2 · (humidity-corrected device) + 1. */
const deviceRaw = (h: number) => 10 + h + (h % 3) * 0.5
const referenceOf = (h: number) => 2 * (deviceRaw(h) / HACKAIR_FACTOR) + 1
/** Hours in the good colocation period. */
const HOURS = 30

const USERS: readonly { who: string; role: Role }[] = [
  { who: 'admin', role: 'admin' },
  { who: 'staff', role: 'staff' },
  { who: 'caretaker', role: 'caretaker' },
  { who: 'researcher', role: 'researcher' },
]

const Problem = z.object({
  status: z.number(),
  code: z.string(),
  detail: z.string(),
  errors: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
})
const CalibrationJson = z.object({
  id: z.string(),
  ref: z.string(),
  device: z.string(),
  metric: z.string(),
  version: z.number(),
  slope: z.number(),
  intercept: z.number(),
  valid_from: z.string(),
  valid_to: z.string().nullable(),
  applied_after: z.string().nullable(),
  basis: z.record(z.string(), z.unknown()),
  created_at: z.string(),
  created_by: z.string(),
})
const List = z.object({ calibrations: z.array(CalibrationJson) })

let dir: Awaited<ReturnType<typeof tempDir>>
let storage: Storage
let api: RunningApi
const callers = new Map<string, Caller>()

function callerOf(who: string): Caller {
  const caller = callers.get(who)
  if (caller === undefined) throw new Error(`no caller ${who}`)
  return caller
}

function reading(deviceId: string, ts: number, values: StoredReading['values'], perHour: number): StoredReading {
  return { deviceId, siteId: SITE, ts, seq: null, values, receivedAt: ts, expectedPerHour: perHour }
}

const COLOCATION = {
  kind: 'colocation',
  deviceId: 'dev-a',
  metric: 'pm25',
  reference: { deviceId: 'ref-1' },
  from: new Date(P0).toISOString(),
  to: new Date(P0 + (HOURS + 1) * HOUR_MS).toISOString(),
}

beforeAll(async () => {
  dir = await tempDir('skolluft-calibrations-')
  storage = openSqliteStorage({ path: join(dir.path, 'skolluft.db') })
  await storage.registry.upsertSites([
    { id: SITE, name: 'Skola A', kind: 'school', municipality: 'Lund', lat: 55.7, lon: 13.2 },
  ])
  const placement = { siteId: SITE, from: P0 - DAY_MS, indoor: false, heightM: 2 }
  const devices = [
    { id: 'dev-a', model: 'SDS011', sensors: ['pm25', 'pm10', 'rh', 'temp'] as const, intervalS: DEVICE_INTERVAL_S },
    { id: 'ref-1', model: 'reference station', sensors: ['pm25', 'pm10', 'no2'] as const, intervalS: 3600 },
    { id: 'dev-n', model: 'alphasense-no2', sensors: ['no2'] as const, intervalS: DEVICE_INTERVAL_S },
  ]
  for (const d of devices) {
    await storage.registry.addDevice(
      { id: d.id, model: d.model, sensors: [...d.sensors], intervalS: d.intervalS, secretHash: 'x', placement },
      P0 - DAY_MS,
    )
  }
  const readings: StoredReading[] = []
  for (let h = 0; h < HOURS; h++) {
    const hour = P0 + h * HOUR_MS
    for (let i = 0; i < PER_HOUR; i++) {
      readings.push(reading('dev-a', hour + i * DEVICE_INTERVAL_S * 1000, { pm25: deviceRaw(h), rh: RH }, PER_HOUR))
    }
    readings.push(reading('ref-1', hour, { pm25: referenceOf(h) }, 1))
  }
  // Hour HOURS: the device has 2 of 6 readings (33 %, not valid) and the reference disagrees wildly: left out.
  const bad = P0 + HOURS * HOUR_MS
  readings.push(reading('dev-a', bad, { pm25: 500, rh: RH }, PER_HOUR))
  readings.push(reading('dev-a', bad + 600_000, { pm25: 500, rh: RH }, PER_HOUR))
  readings.push(reading('ref-1', bad, { pm25: 1 }, 1))
  await storage.readings.writeReadings(readings)

  await addTestUsers(storage, USERS, NOW - DAY_MS)
  api = await startApi({ log: silentLogger(), storage, clock, host: '127.0.0.1', port: 0 })
  callers.set('anonymous', ANONYMOUS_CALLER)
  for (const [who, caller] of await logInTestUsers(api, USERS)) callers.set(who, caller)
  const tokens = [
    ['researcherToken', { name: 'study', role: 'researcher' }],
    ['staffToken', { name: 'staff, default scopes', role: 'staff' }],
    ['staffWriter', { name: 'calibration desk', role: 'staff', scopes: ['export', 'calibrations:write'] }],
  ] as const
  for (const [who, body] of tokens) callers.set(who, (await createToken(api, callerOf('admin'), body)).caller)
})

afterAll(async () => {
  await api?.close()
  await storage?.close()
  await dir?.cleanup()
})

const MANUAL = {
  kind: 'manual',
  deviceId: 'dev-n',
  metric: 'no2',
  slope: 1.25,
  intercept: -3,
  validFrom: '2026-11-01T00:00:00Z',
  note: 'lab sheet 2026-10',
}

describe('permissions', () => {
  // who → [GET /calibrations, POST /calibrations (manual), POST /calibrations/{id}/retire]
  const TABLE: Readonly<Record<string, readonly [number, number]>> = {
    anonymous: [401, 401],
    caretaker: [403, 403],
    researcher: [200, 403],
    researcherToken: [200, 403],
    // A staff token gets calibrations:write only when asked for by name.
    staffToken: [200, 403],
    staff: [200, 201],
    staffWriter: [200, 201],
    admin: [200, 201],
  }
  it.each(Object.entries(TABLE))('%s: GET, POST → %j', async (who, [get, post]) => {
    expect((await call(api, callerOf(who), 'GET', '/calibrations')).status).toBe(get)
    const created = await call(api, callerOf(who), 'POST', '/calibrations', { body: MANUAL })
    expect(created.status, JSON.stringify(created.body)).toBe(post)
    const retireOf = (await storage.calibrations.list({ deviceId: 'dev-n' })).at(-1)?.id ?? 'cal-1'
    const retire = await call(api, callerOf(who), 'POST', `/calibrations/${retireOf}/retire`, {
      body: { at: '2027-01-01T00:00:00Z' },
    })
    // Allowed callers get 200 the first time and 409 after; everyone else is refused before the id is looked at.
    if (post === 201) expect([200, 409]).toContain(retire.status)
    else expect(retire.status).toBe(post)
  })

  it('refuses a session change without the CSRF token', async () => {
    const res = await call(api, callerOf('staff'), 'POST', '/calibrations', { body: MANUAL, csrf: false })
    expect(res.status).toBe(403)
  })
})

describe('POST /calibrations (colocation)', () => {
  it('fits the humidity-corrected device on the reference over the valid hours, and says so', async () => {
    const res = await call(api, callerOf('staff'), 'POST', '/calibrations', { body: COLOCATION })
    expect(res.status, JSON.stringify(res.body)).toBe(201)
    const c = CalibrationJson.parse(res.body)
    expect(c.slope).toBeCloseTo(2, 9)
    expect(c.intercept).toBeCloseTo(1, 8)
    expect(c).toMatchObject({
      device: 'dev-a',
      metric: 'pm25',
      version: 1,
      ref: `${c.id}@1`,
      applied_after: 'rh-hackair@1',
      valid_from: COLOCATION.from,
      valid_to: null,
      created_at: new Date(NOW).toISOString(),
    })
    expect(c.created_by).toMatch(/^user:/)
    expect(c.basis).toMatchObject({
      kind: 'colocation',
      reference: 'ref-1',
      period: { from: COLOCATION.from, to: COLOCATION.to },
      // The 33 %-coverage hour is not a pair.
      n: HOURS,
    })
    expect(z.number().parse(c.basis.r2)).toBeCloseTo(1, 9)
    expect(z.number().parse(c.basis.rmse)).toBeCloseTo(0, 6)
    const entries = await storage.access.listAudit({ limit: 50 })
    expect(entries.find((e) => e.action === 'calibration.create' && e.target === c.id)?.detail).toEqual({
      device: 'dev-a',
      metric: 'pm25',
      version: 1,
      kind: 'colocation',
    })

    // The next one of (dev-a, pm25) is version 2; a manual line is applied after the same humidity correction.
    const manual = await call(api, callerOf('admin'), 'POST', '/calibrations', {
      body: { ...MANUAL, deviceId: 'dev-a', metric: 'pm25', note: undefined },
    })
    expect(manual.status, JSON.stringify(manual.body)).toBe(201)
    expect(CalibrationJson.parse(manual.body)).toMatchObject({
      version: 2,
      applied_after: 'rh-hackair@1',
      basis: { kind: 'manual', note: null },
    })
    const list = List.parse((await call(api, callerOf('researcherToken'), 'GET', '/calibrations?device=dev-a')).body)
    expect(list.calibrations.map((x) => [x.metric, x.version])).toEqual([
      ['pm25', 1],
      ['pm25', 2],
    ])
  })

  it('refuses fewer than 24 valid paired hours with the count and what a pair is (422)', async () => {
    const res = await call(api, callerOf('staff'), 'POST', '/calibrations', {
      body: { ...COLOCATION, to: new Date(P0 + 23 * HOUR_MS).toISOString() },
    })
    expect(res.status).toBe(422)
    const problem = Problem.parse(res.body)
    expect(problem.code).toBe('too_few_pairs')
    expect(problem.detail).toMatch(/at least 24 hourly pairs .*found 23/)
    expect(problem.detail).toMatch(/75 %/)
  })

  it('refuses a reference that is the device, an unknown device, a metric not measured, a bad period', async () => {
    const cases = [
      [{ ...COLOCATION, reference: { deviceId: 'dev-a' } }, 400, 'invalid_reference'],
      [{ ...COLOCATION, reference: { deviceId: 'ghost' } }, 404, 'device_not_found'],
      [{ ...COLOCATION, metric: 'no2' }, 400, 'metric_not_measured'],
      [{ ...COLOCATION, to: COLOCATION.from }, 400, 'invalid_period'],
      [{ ...COLOCATION, to: '2028-01-01T00:00:00Z' }, 400, 'invalid_period'],
    ] as const
    for (const [body, status, code] of cases) {
      const res = await call(api, callerOf('staff'), 'POST', '/calibrations', { body })
      expect([res.status, Problem.parse(res.body).code], JSON.stringify(body)).toEqual([status, code])
    }
  })
})

describe('validation', () => {
  it.each([
    [{ ...MANUAL, slope: 0 }, 'slope', /at least 0.1/],
    [{ ...MANUAL, slope: 'steep' }, 'slope', /must be a number/],
    [{ ...MANUAL, validFrom: 'yesterday' }, 'validFrom', /ISO 8601/],
    [{ ...MANUAL, kind: 'magic' }, 'kind', /manual.*colocation/],
    [{ ...MANUAL, extra: 1 }, '', /extra/],
    [{ ...MANUAL, metric: 'co2' }, 'metric', /pm25/],
    [{ ...COLOCATION, from: '2026-11-01T00:30:00Z' }, 'from', /whole hour/],
    [{ ...COLOCATION, reference: 'ref-1' }, 'reference', /object/],
  ])('%j → 400 at %s', async (body, path, message) => {
    const res = await call(api, callerOf('staff'), 'POST', '/calibrations', { body })
    expect(res.status).toBe(400)
    const problem = Problem.parse(res.body)
    expect(problem.code).toBe('invalid_request')
    const issue = problem.errors?.find((e) => e.path === path)
    expect(issue, JSON.stringify(problem.errors)).toBeDefined()
    expect(issue?.message).toMatch(message)
  })

  it('refuses unknown query parameters and metrics on the list', async () => {
    const res = await call(api, callerOf('researcher'), 'GET', '/calibrations?site=x')
    expect([res.status, Problem.parse(res.body).detail]).toEqual([
      400,
      expect.stringMatching(/unknown query parameter: site/),
    ])
    expect((await call(api, callerOf('researcher'), 'GET', '/calibrations?metric=co2')).status).toBe(400)
  })
})

describe('GET /calibrations/{id} and retirement', () => {
  it('retires once, not before validFrom; 404 for unknown ids', async () => {
    const created = CalibrationJson.parse(
      (await call(api, callerOf('admin'), 'POST', '/calibrations', { body: { ...MANUAL, slope: 0.9 } })).body,
    )
    const path = `/calibrations/${created.id}`
    expect(CalibrationJson.parse((await call(api, callerOf('researcher'), 'GET', path)).body)).toEqual(created)

    const early = await call(api, callerOf('staff'), 'POST', `${path}/retire`, { body: { at: '2026-10-01T00:00:00Z' } })
    expect([early.status, Problem.parse(early.body).code]).toEqual([400, 'invalid_retirement'])
    // Without `at`: now.
    const retired = await call(api, callerOf('staff'), 'POST', `${path}/retire`, { body: {} })
    expect(retired.status).toBe(200)
    expect(CalibrationJson.parse(retired.body)).toEqual({ ...created, valid_to: new Date(NOW).toISOString() })
    const again = await call(api, callerOf('staff'), 'POST', `${path}/retire`, { body: {} })
    expect([again.status, Problem.parse(again.body).code]).toEqual([409, 'already_retired'])

    for (const id of ['cal-999999', 'nonsense']) {
      const missing = await call(api, callerOf('researcher'), 'GET', `/calibrations/${id}`)
      expect([missing.status, Problem.parse(missing.body).code]).toEqual([404, 'calibration_not_found'])
    }
    const gone = await call(api, callerOf('staff'), 'POST', '/calibrations/cal-999999/retire', { body: {} })
    expect(gone.status).toBe(404)
  })
})
