import { join } from 'node:path'
import { aggregateWindowCount, DAY_MS, HOUR_MS, type Role } from '@skolluft/core'
import { hashSecret, silentLogger } from '@skolluft/runtime'
import { openSqliteStorage, type Storage, type StoredReading } from '@skolluft/storage'
import { tempDir } from '@skolluft/testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { type RunningApi, startApi } from './server.ts'
import { type Caller, call as httpCall, sessionCookie } from './test-http.ts'

/**
 * Who may read and do what, over real HTTP against a real SQLite file: every kind of caller (anonymous,
 * each role logged in with a session cookie, API tokens) against every protected endpoint, with the public
 * map switched off and on. The expected tables are written out by hand from the permission model
 * (core access.ts: admin everything; staff all sites, raw, devices, acknowledging and commenting on breaches;
 * principal own sites; caretaker devices and rejects; researcher series without devices; public map = map,
 * breaches and hourly values for everyone; issue 4: alert subscriptions and in-app notifications for people of
 * every role but researcher, never tokens; the delivery log for admin and staff).
 */
const NOW = Date.parse('2026-11-30T12:00:00Z')
const STARTED = Date.now()
/** Starts at NOW and runs with real time, so rate limits refill as they would. */
const clock = () => NOW + (Date.now() - STARTED)

const A = 'site-a'
const B = 'site-b'
const C = 'site-c'
const ALL = [A, B, C]
const DEVICES_AT: Readonly<Record<string, readonly string[]>> = { [A]: ['dev-a1', 'dev-a2'], [B]: ['dev-b'], [C]: [] }
/** One breach incident at A and one at B (issue 4); C has none. */
const INCIDENT_AT = { [A]: 'inc_perm-a', [B]: 'inc_perm-b' } as const
/** The deployment's alerts key (runtime derived-keys.ts), so that subscribing works. */
const ALERTS_KEY = Buffer.alloc(32, 7)

/** Columns of every table below, in this order. */
const WHO = [
  'anonymous',
  'admin',
  'staff',
  'principal',
  'caretaker',
  'researcher',
  'tokenResearcher',
  'tokenPrincipal',
  'tokenMapOnly',
] as const
type Who = (typeof WHO)[number]
type Row<T> = readonly [T, T, T, T, T, T, T, T, T]

const USERS: readonly { who: Who; role: Role; sites: string[] }[] = [
  { who: 'admin', role: 'admin', sites: [] },
  { who: 'staff', role: 'staff', sites: [] },
  { who: 'principal', role: 'principal', sites: [A] },
  { who: 'caretaker', role: 'caretaker', sites: [] },
  { who: 'researcher', role: 'researcher', sites: [] },
]

/** The last 4 hours, where the readings are (issue 5's export needs a window). */
const EXPORT_WINDOW = 'from=2026-11-30T08:00:00Z&to=2026-11-30T12:00:00Z'

interface Endpoint {
  readonly method: 'GET' | 'POST'
  readonly path: string
  readonly body?: (who: Who, mode: string) => unknown
}

const ENDPOINTS = {
  'GET /sites': { method: 'GET', path: '/sites' },
  'GET /sites/A': { method: 'GET', path: `/sites/${A}` },
  'GET /sites/B': { method: 'GET', path: `/sites/${B}` },
  'GET /sites/A/series raw': { method: 'GET', path: `/sites/${A}/series?metric=pm25&every=raw` },
  'GET /sites/A/series 1h': { method: 'GET', path: `/sites/${A}/series?metric=pm25&every=1h` },
  'GET /sites/B/series raw': { method: 'GET', path: `/sites/${B}/series?metric=pm25&every=raw` },
  'GET /sites/A/exceedances': { method: 'GET', path: `/sites/${A}/exceedances?year=2026` },
  'GET /sites/B/exceedances': { method: 'GET', path: `/sites/${B}/exceedances?year=2026` },
  'GET /sites/A/report': { method: 'GET', path: `/sites/${A}/report?from=2026-11-01&to=2026-11-30` },
  'GET /sites/B/report': { method: 'GET', path: `/sites/${B}/report?from=2026-11-01&to=2026-11-30&format=csv` },
  'GET /replay': { method: 'GET', path: '/replay?metric=pm25&hours=24' },
  'GET /export raw': { method: 'GET', path: `/export?resolution=raw&${EXPORT_WINDOW}` },
  'GET /export 1h A': { method: 'GET', path: `/export?resolution=hourly&sites=${A}&${EXPORT_WINDOW}` },
  'GET /export 1h B': { method: 'GET', path: `/export?resolution=hourly&sites=${B}&${EXPORT_WINDOW}` },
  'GET /users': { method: 'GET', path: '/users' },
  'POST /users': {
    method: 'POST',
    path: '/users',
    body: (who, mode) => ({ email: `made-by-${who}-${mode}@example.org`, role: 'researcher' }),
  },
  'GET /tokens': { method: 'GET', path: '/tokens' },
  'POST /tokens': { method: 'POST', path: '/tokens', body: (who, mode) => ({ name: `by ${who} (${mode})` }) },
  'GET /audit': { method: 'GET', path: '/audit' },
  'GET /rejects': { method: 'GET', path: '/rejects' },
  'GET /rejects/counts': { method: 'GET', path: '/rejects/counts' },
  'GET /me': { method: 'GET', path: '/me' },
  'GET /breaches': { method: 'GET', path: '/breaches' },
  'GET /breaches/B': { method: 'GET', path: `/breaches/${INCIDENT_AT[B]}` },
  'POST /breaches/A/ack': { method: 'POST', path: `/breaches/${INCIDENT_AT[A]}/acknowledge` },
  'POST /breaches/A/comments': {
    method: 'POST',
    path: `/breaches/${INCIDENT_AT[A]}/comments`,
    body: (who, mode) => ({ text: `seen by ${who} (${mode})` }),
  },
  'GET /subscriptions': { method: 'GET', path: '/subscriptions' },
  'POST /subscriptions': {
    method: 'POST',
    path: '/subscriptions',
    // Each role's own topic (core subscriptions.ts mayUseTopic); a principal's 'all' is their own sites.
    body: (who) => ({ topic: who === 'caretaker' ? 'device-health' : 'breaches', channel: 'in_app', sites: 'all' }),
  },
  'GET /notifications': { method: 'GET', path: '/notifications' },
  'POST /notifications/read': { method: 'POST', path: '/notifications/read', body: () => ({ ids: [1] }) },
  'GET /deliveries': { method: 'GET', path: '/deliveries' },
} as const satisfies Record<string, Endpoint>
type EndpointName = keyof typeof ENDPOINTS

// biome-ignore format: the tables are read as tables
const STATUS_PUBLIC_MAP_OFF: Record<EndpointName, Row<number>> = {
  //                           anon admin staff princ care  resea tokR  tokP  tokMap
  'GET /sites':              [ 401, 200,  200,  200,  200,  200,  200,  200,  200 ],
  'GET /sites/A':            [ 401, 200,  200,  200,  200,  200,  200,  200,  200 ],
  'GET /sites/B':            [ 401, 200,  200,  403,  200,  200,  200,  403,  200 ],
  'GET /sites/A/series raw': [ 401, 200,  200,  200,  200,  200,  200,  200,  403 ],
  'GET /sites/A/series 1h':  [ 401, 200,  200,  200,  200,  200,  200,  200,  403 ],
  'GET /sites/B/series raw': [ 401, 200,  200,  403,  200,  200,  200,  403,  403 ],
  'GET /sites/A/exceedances':[ 401, 200,  200,  200,  200,  200,  200,  200,  403 ],
  'GET /sites/B/exceedances':[ 401, 200,  200,  403,  200,  200,  200,  403,  403 ],
  'GET /sites/A/report':     [ 401, 200,  200,  200,  200,  200,  200,  200,  403 ],
  'GET /sites/B/report':     [ 401, 200,  200,  403,  200,  200,  200,  403,  403 ],
  'GET /replay':             [ 401, 200,  200,  200,  200,  200,  200,  200,  403 ],
  'GET /export raw':        [ 401, 200,  200,  403,  403,  200,  200,  403,  403 ],
  'GET /export 1h A':        [ 401, 200,  200,  200,  200,  200,  200,  200,  403 ],
  'GET /export 1h B':        [ 401, 200,  200,  403,  200,  200,  200,  403,  403 ],
  'GET /users':              [ 401, 200,  403,  403,  403,  403,  403,  403,  403 ],
  'POST /users':             [ 401, 201,  403,  403,  403,  403,  403,  403,  403 ],
  'GET /tokens':             [ 401, 200,  403,  403,  403,  403,  403,  403,  403 ],
  'POST /tokens':            [ 401, 201,  403,  403,  403,  403,  403,  403,  403 ],
  'GET /audit':              [ 401, 200,  403,  403,  403,  403,  403,  403,  403 ],
  'GET /rejects':            [ 401, 200,  403,  403,  200,  403,  403,  403,  403 ],
  'GET /rejects/counts':     [ 401, 200,  403,  403,  200,  403,  403,  403,  403 ],
  'GET /me':                 [ 401, 200,  200,  200,  200,  200,  200,  200,  200 ],
  'GET /breaches':            [ 401, 200,  200,  200,  200,  200,  200,  200,  200 ],
  'GET /breaches/B':          [ 401, 200,  200,  404,  200,  200,  200,  404,  200 ],
  'POST /breaches/A/ack':     [ 401, 200,  200,  403,  403,  403,  403,  403,  403 ],
  'POST /breaches/A/comments':[ 401, 201,  201,  403,  403,  403,  403,  403,  403 ],
  'GET /subscriptions':       [ 401, 200,  200,  200,  200,  403,  403,  403,  403 ],
  'POST /subscriptions':      [ 401, 201,  201,  201,  201,  403,  403,  403,  403 ],
  'GET /notifications':       [ 401, 200,  200,  200,  200,  403,  403,  403,  403 ],
  'POST /notifications/read': [ 401, 200,  200,  200,  200,  403,  403,  403,  403 ],
  'GET /deliveries':          [ 401, 200,  200,  403,  403,  403,  403,  403,  403 ],
}

// biome-ignore format: the tables are read as tables
const STATUS_PUBLIC_MAP_ON: Record<EndpointName, Row<number>> = {
  //                           anon admin staff princ care  resea tokR  tokP  tokMap
  'GET /sites':              [ 200, 200,  200,  200,  200,  200,  200,  200,  200 ],
  'GET /sites/A':            [ 200, 200,  200,  200,  200,  200,  200,  200,  200 ],
  'GET /sites/B':            [ 200, 200,  200,  200,  200,  200,  200,  200,  200 ],
  'GET /sites/A/series raw': [ 401, 200,  200,  200,  200,  200,  200,  200,  403 ],
  'GET /sites/A/series 1h':  [ 200, 200,  200,  200,  200,  200,  200,  200,  200 ],
  'GET /sites/B/series raw': [ 401, 200,  200,  403,  200,  200,  200,  403,  403 ],
  'GET /sites/A/exceedances':[ 200, 200,  200,  200,  200,  200,  200,  200,  200 ],
  'GET /sites/B/exceedances':[ 200, 200,  200,  200,  200,  200,  200,  200,  200 ],
  'GET /sites/A/report':     [ 200, 200,  200,  200,  200,  200,  200,  200,  200 ],
  'GET /sites/B/report':     [ 200, 200,  200,  200,  200,  200,  200,  200,  200 ],
  'GET /replay':             [ 200, 200,  200,  200,  200,  200,  200,  200,  200 ],
  'GET /export raw':        [ 401, 200,  200,  403,  403,  200,  200,  403,  403 ],
  'GET /export 1h A':        [ 200, 200,  200,  200,  200,  200,  200,  200,  200 ],
  'GET /export 1h B':        [ 200, 200,  200,  200,  200,  200,  200,  200,  200 ],
  'GET /users':              [ 401, 200,  403,  403,  403,  403,  403,  403,  403 ],
  'POST /users':             [ 401, 201,  403,  403,  403,  403,  403,  403,  403 ],
  'GET /tokens':             [ 401, 200,  403,  403,  403,  403,  403,  403,  403 ],
  'POST /tokens':            [ 401, 201,  403,  403,  403,  403,  403,  403,  403 ],
  'GET /audit':              [ 401, 200,  403,  403,  403,  403,  403,  403,  403 ],
  'GET /rejects':            [ 401, 200,  403,  403,  200,  403,  403,  403,  403 ],
  'GET /rejects/counts':     [ 401, 200,  403,  403,  200,  403,  403,  403,  403 ],
  'GET /me':                 [ 200, 200,  200,  200,  200,  200,  200,  200,  200 ],
  'GET /breaches':            [ 200, 200,  200,  200,  200,  200,  200,  200,  200 ],
  'GET /breaches/B':          [ 200, 200,  200,  200,  200,  200,  200,  200,  200 ],
  'POST /breaches/A/ack':     [ 401, 200,  200,  403,  403,  403,  403,  403,  403 ],
  'POST /breaches/A/comments':[ 401, 201,  201,  403,  403,  403,  403,  403,  403 ],
  'GET /subscriptions':       [ 401, 200,  200,  200,  200,  403,  403,  403,  403 ],
  'POST /subscriptions':      [ 401, 201,  201,  201,  201,  403,  403,  403,  403 ],
  'GET /notifications':       [ 401, 200,  200,  200,  200,  403,  403,  403,  403 ],
  'POST /notifications/read': [ 401, 200,  200,  200,  200,  403,  403,  403,  403 ],
  'GET /deliveries':          [ 401, 200,  200,  403,  403,  403,  403,  403,  403 ],
}

/** '-': no 200, nothing to see. */
type Seen = readonly string[] | '-'
/** 'absent': a 200 without the `devices` key. */
type DevicesSeen = readonly string[] | 'absent' | '-'

interface Visibility {
  /** Site ids in GET /sites. */
  readonly sites: Row<Seen>
  /** Site ids with hourly values in GET /replay. */
  readonly replay: Row<Seen>
  /** `properties.devices` of GET /sites/A and /sites/B. */
  readonly devicesA: Row<DevicesSeen>
  readonly devicesB: Row<DevicesSeen>
  /** GET /me: `kind` and role. */
  readonly me: Row<string>
  /** Site ids of the incidents in GET /breaches. */
  readonly breaches: Row<Seen>
}

const DA = DEVICES_AT[A] ?? []
const DB = DEVICES_AT[B] ?? []
const AB = [A, B]

// biome-ignore format: the tables are read as tables
const SEEN_PUBLIC_MAP_OFF: Visibility = {
  //          anon      admin     staff     princ     care      resea     tokR      tokP      tokMap
  sites:    [ '-',      ALL,      ALL,      [A],      ALL,      ALL,      ALL,      [A],      ALL      ],
  replay:   [ '-',      ALL,      ALL,      [A],      ALL,      ALL,      ALL,      [A],      '-'      ],
  devicesA: [ '-',      DA,       DA,       DA,       DA,       'absent', 'absent', DA,       'absent' ],
  devicesB: [ '-',      DB,       DB,       '-',      DB,       'absent', 'absent', '-',      'absent' ],
  me:       [ '-', 'user:admin', 'user:staff', 'user:principal', 'user:caretaker', 'user:researcher',
              'token:researcher', 'token:principal', 'token:staff' ],
  breaches: [ '-',      AB,       AB,       [A],      AB,       AB,       AB,       [A],      AB       ],
}

// biome-ignore format: the tables are read as tables
const SEEN_PUBLIC_MAP_ON: Visibility = {
  //          anon      admin     staff     princ     care      resea     tokR      tokP      tokMap
  sites:    [ ALL,      ALL,      ALL,      ALL,      ALL,      ALL,      ALL,      ALL,      ALL      ],
  replay:   [ ALL,      ALL,      ALL,      ALL,      ALL,      ALL,      ALL,      ALL,      ALL      ],
  devicesA: [ 'absent', DA,       DA,       DA,       DA,       'absent', 'absent', DA,       'absent' ],
  devicesB: [ 'absent', DB,       DB,       'absent', DB,       'absent', 'absent', 'absent', 'absent' ],
  me:       [ 'anonymous', 'user:admin', 'user:staff', 'user:principal', 'user:caretaker', 'user:researcher',
              'token:researcher', 'token:principal', 'token:staff' ],
  breaches: [ AB,       AB,       AB,       AB,       AB,       AB,       AB,       AB,       AB       ],
}

const LoginResponse = z.object({ csrfToken: z.string(), user: z.object({ id: z.string(), role: z.string() }) })
const TokenResponse = z.object({ token: z.string().startsWith('skl_'), id: z.string() })
const FeatureCollection = z.object({ features: z.array(z.object({ id: z.string() })) })
const Feature = z.object({ id: z.string(), properties: z.record(z.string(), z.unknown()) })
const DeviceList = z.array(z.object({ id: z.string(), health: z.string() }))
const Series = z.object({
  site: z.string(),
  every: z.string(),
  from: z.string(),
  to: z.string(),
  points: z.array(z.record(z.string(), z.unknown())),
})
const Breaches = z.object({ incidents: z.array(z.object({ site: z.string() })) })
const Replay = z.object({ sites: z.record(z.string(), z.array(z.number().nullable())) })
const Me = z.union([
  z.object({ kind: z.literal('user'), user: z.object({ role: z.string() }) }),
  z.object({ kind: z.literal('token'), token: z.object({ role: z.string() }) }),
  z.object({ kind: z.literal('anonymous') }),
])

let dir: Awaited<ReturnType<typeof tempDir>>
let storage: Storage
let publicOff: RunningApi
let publicOn: RunningApi
const callers = new Map<Who, Caller>()

function callerOf(who: Who): Caller {
  const caller = callers.get(who)
  if (caller === undefined) throw new Error(`no caller ${who}`)
  return caller
}

/** The shared test call, with the body as the last argument (as every row of the tables passes it). */
function call(server: RunningApi, caller: Caller, method: 'GET' | 'POST', path: string, body?: unknown) {
  return httpCall(server, caller, method, path, body === undefined ? {} : { body })
}

function reading(deviceId: string, siteId: string, ts: number, pm25: number): StoredReading {
  // Every 10 minutes: 6 expected per hour.
  return { deviceId, siteId, ts, seq: null, values: { pm25 }, receivedAt: ts, expectedPerHour: 6 }
}

async function seed(store: Storage): Promise<void> {
  await store.registry.upsertSites(
    ALL.map((id, i) => ({
      id,
      name: `Skola ${id}`,
      kind: 'school',
      municipality: 'Lund',
      lat: 55.7 + i / 100,
      lon: 13.2,
    })),
  )
  const secretHash = await hashSecret('device-secret')
  for (const [siteId, devices] of Object.entries(DEVICES_AT)) {
    for (const id of devices) {
      await store.registry.addDevice(
        {
          id,
          model: 'test',
          sensors: ['pm25'],
          intervalS: 600,
          secretHash,
          placement: { siteId, from: NOW - 30 * DAY_MS, indoor: false, heightM: 3 },
        },
        NOW - 30 * DAY_MS,
      )
    }
  }
  // Four full hours (08:00–11:50Z) of every device; site-c has no device but old readings of a device
  // that stood there before, so that it too has hourly values in the replay.
  const start = NOW - 4 * HOUR_MS
  const readings: StoredReading[] = []
  for (let k = 0; k < 24; k++) {
    const ts = start + k * 600_000
    for (const [siteId, devices] of Object.entries(DEVICES_AT)) {
      for (const id of devices) readings.push(reading(id, siteId, ts, 5 + k))
    }
    readings.push(reading('dev-gone', C, ts, 7))
  }
  await store.readings.writeReadings(readings)
  await store.rejects.record([
    {
      at: NOW - 60_000,
      deviceId: 'dev-a1',
      topic: 'aq/v1/devices/dev-a1/telemetry',
      code: 'bad_json',
      message: 'x',
      index: null,
    },
  ])
  for (const [siteId, id] of Object.entries(INCIDENT_AT)) {
    await store.breaches.saveIncident({
      id,
      siteId,
      pollutant: 'pm25',
      ruleId: 'who2021-pm25-day',
      profileId: 'who2021',
      profileVersion: '2026-11-30',
      severity: 'info',
      threshold: 15,
      start: NOW - 2 * DAY_MS,
      end: null,
      openedAt: NOW - 2 * DAY_MS,
      closedAt: null,
      peak: 31,
      peakAt: NOW - DAY_MS,
      escalations: [],
      retrospective: false,
      updatedAt: NOW - DAY_MS,
    })
  }
}

beforeAll(async () => {
  dir = await tempDir('skolluft-permissions-')
  storage = openSqliteStorage({ path: join(dir.path, 'skolluft.db') })
  await seed(storage)
  for (const user of USERS) {
    await storage.access.addUser(
      {
        email: `${user.who}@example.org`,
        name: user.who,
        role: user.role,
        sites: user.sites,
        passwordHash: await hashSecret(`password of ${user.who}`),
      },
      NOW - DAY_MS,
    )
  }
  const base = { log: silentLogger(), storage, clock, host: '127.0.0.1', port: 0 }
  publicOff = await startApi({ ...base, alertsKey: ALERTS_KEY, options: { publicMap: false, mapSnapshotMaxAgeMs: 0 } })
  publicOn = await startApi({ ...base, alertsKey: ALERTS_KEY, options: { publicMap: true, mapSnapshotMaxAgeMs: 0 } })

  callers.set('anonymous', { headers: {}, csrf: null })
  for (const user of USERS) {
    const res = await fetch(`http://127.0.0.1:${publicOff.port}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ email: `${user.who}@example.org`, password: `password of ${user.who}` }),
    })
    expect(res.status).toBe(200)
    const login = LoginResponse.parse(await res.json())
    expect(login.user.role).toBe(user.role)
    callers.set(user.who, { headers: { Cookie: sessionCookie(res) }, csrf: login.csrfToken })
  }
  const tokens: readonly [Who, unknown][] = [
    ['tokenResearcher', { name: 'research group', role: 'researcher' }],
    ['tokenPrincipal', { name: 'principal of A', role: 'principal', sites: [A] }],
    ['tokenMapOnly', { name: 'map only', role: 'staff', scopes: ['map:read'] }],
  ]
  for (const [who, body] of tokens) {
    const created = await call(publicOff, callerOf('admin'), 'POST', '/tokens', body)
    expect(created.status).toBe(201)
    const { token } = TokenResponse.parse(created.body)
    callers.set(who, { headers: { Authorization: `Bearer ${token}` }, csrf: null })
  }
})

afterAll(async () => {
  await publicOff?.close()
  await publicOn?.close()
  await storage?.close()
  await dir?.cleanup()
})

function devicesOf(body: unknown): DevicesSeen {
  const feature = Feature.parse(body)
  if (!('devices' in feature.properties)) return 'absent'
  return DeviceList.parse(feature.properties.devices)
    .map((d) => d.id)
    .sort()
}

function meOf(body: unknown): string {
  const me = Me.parse(body)
  if (me.kind === 'user') return `user:${me.user.role}`
  if (me.kind === 'token') return `token:${me.token.role}`
  return 'anonymous'
}

const MODES = [
  { mode: 'off', server: () => publicOff, status: STATUS_PUBLIC_MAP_OFF, seen: SEEN_PUBLIC_MAP_OFF },
  { mode: 'on', server: () => publicOn, status: STATUS_PUBLIC_MAP_ON, seen: SEEN_PUBLIC_MAP_ON },
] as const

describe.each(MODES)('with the public map $mode', ({ mode, server, status, seen }) => {
  it.each(Object.keys(ENDPOINTS).map((name) => [name]))('%s answers each caller as the table says', async (name) => {
    const endpoint: Endpoint = ENDPOINTS[name as EndpointName]
    const statuses: number[] = []
    const problems: string[] = []
    const visible: Record<string, unknown[]> = {}
    const note = (key: string, value: unknown) => {
      visible[key] ??= []
      visible[key].push(value)
    }
    for (const who of WHO) {
      const res = await call(server(), callerOf(who), endpoint.method, endpoint.path, endpoint.body?.(who, mode))
      statuses.push(res.status)
      if (res.status >= 400) {
        // Refusals are problem documents with the code that says which.
        const code = z.object({ code: z.string() }).parse(res.body).code
        if (res.status === 401 && code !== 'unauthorized') problems.push(`${who}: 401 ${code}`)
        if (res.status === 403 && code !== 'forbidden') problems.push(`${who}: 403 ${code}`)
      }
      const ok = res.status < 300
      switch (name) {
        case 'GET /sites':
          note(
            'sites',
            ok
              ? FeatureCollection.parse(res.body)
                  .features.map((f) => f.id)
                  .sort()
              : '-',
          )
          break
        case 'GET /sites/A':
          note('devicesA', ok ? devicesOf(res.body) : '-')
          break
        case 'GET /sites/B':
          note('devicesB', ok ? devicesOf(res.body) : '-')
          break
        case 'GET /replay':
          note('replay', ok ? Object.keys(Replay.parse(res.body).sites).sort() : '-')
          break
        case 'GET /me':
          note('me', ok ? meOf(res.body) : '-')
          break
        case 'GET /breaches':
          note(
            'breaches',
            ok
              ? Breaches.parse(res.body)
                  .incidents.map((i) => i.site)
                  .sort()
              : '-',
          )
          break
        default:
          if (ok && name.startsWith('GET /export')) {
            // CSV rows of the named site only (raw: every site with readings), never an empty file.
            const rows = z.string().parse(res.body).trimEnd().split('\r\n').slice(1)
            const sites = new Set(rows.map((r) => r.split(',')[1]))
            if (rows.length === 0) problems.push(`${who}: empty export`)
            const want = name.endsWith(' A') ? [A] : name.endsWith(' B') ? [B] : ALL
            if ([...sites].sort().join() !== want.join()) problems.push(`${who}: export of ${[...sites].join()}`)
          }
          if (ok && name.includes('/series')) {
            const series = Series.parse(res.body)
            // 24 raw readings per device over the last 4 h, or 4 valid hourly means among the default 24 h
            // window's hours (25 with the running clock past the hour: empty hours are kept).
            const raw = name.endsWith('raw')
            const expected = raw ? 24 * (DEVICES_AT[series.site]?.length ?? 0) : 4
            const withData = raw ? series.points.length : series.points.filter((p) => p.n !== 0).length
            if (withData !== expected) problems.push(`${who}: ${withData} points with data`)
            const windows = aggregateWindowCount('1h', Date.parse(series.from), Date.parse(series.to))
            if (!raw && series.points.length !== windows)
              problems.push(`${who}: ${series.points.length} of ${windows} hours`)
          }
      }
    }
    expect({ name, statuses }).toEqual({ name, statuses: [...status[name as EndpointName]] })
    expect(problems).toEqual([])
    for (const [key, row] of Object.entries(visible)) {
      expect({ name, [key]: row }).toEqual({ name, [key]: [...seen[key as keyof Visibility]] })
    }
  })
})

describe('what admins see of people and tokens', () => {
  it('lists users and tokens without password hashes or token secrets', async () => {
    const users = await call(publicOff, callerOf('admin'), 'GET', '/users')
    const text = JSON.stringify(users.body)
    expect(text).not.toMatch(/scrypt\$/)
    expect(text).not.toMatch(/password/i)
    const list = z.object({ users: z.array(z.object({ email: z.string(), role: z.string() })) }).parse(users.body)
    expect(list.users.filter((u) => u.email.endsWith('@example.org') && !u.email.startsWith('made-by'))).toEqual(
      // Sorted by email.
      [...USERS]
        .sort((a, b) => a.who.localeCompare(b.who))
        .map((u) => expect.objectContaining({ email: `${u.who}@example.org`, role: u.role })),
    )
    const tokens = await call(publicOff, callerOf('admin'), 'GET', '/tokens')
    const tokenText = JSON.stringify(tokens.body)
    expect(tokenText).not.toMatch(/scrypt\$/)
    expect(tokenText).not.toContain('skl_')
    const parsed = z
      .object({
        tokens: z.array(
          z.object({ name: z.string(), role: z.string(), scopes: z.array(z.string()), sites: z.array(z.string()) }),
        ),
      })
      .parse(tokens.body)
    expect(parsed.tokens.find((t) => t.name === 'map only')).toMatchObject({ role: 'staff', scopes: ['map:read'] })
    expect(parsed.tokens.find((t) => t.name === 'principal of A')).toMatchObject({
      role: 'principal',
      scopes: ['map:read', 'series:hourly', 'series:raw', 'devices:read'],
      sites: [A],
    })
  })
})
