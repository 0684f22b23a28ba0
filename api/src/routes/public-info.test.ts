import { join } from 'node:path'
import { DAY_MS, HOUR_MS, type Role } from '@skolluft/core'
import { silentLogger } from '@skolluft/runtime'
import { openSqliteStorage, type Storage, type StoredReading } from '@skolluft/storage'
import { tempDir } from '@skolluft/testkit'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { type RunningApi, startApi } from '../server.ts'
import { addTestUsers, type Caller, call, logInTestUsers } from '../test-http.ts'
import { REPLAY_CACHE_MS } from './public-info.ts'

/**
 * GET /replay over real HTTP against real SQLite files, with an injected clock. Devices are expected to send
 * 6 samples an hour (a 10-minute interval), so an hour is valid with 5 or 6 of them (≥ 75 %) and not with 4.
 * The route's storage is the real one with its replay reads counted (and, in one test, held or failed), so a
 * test can tell a cached answer from a fresh one.
 */
const NOW = Date.parse('2026-11-30T12:20:00Z')
/** Hour starts of 30 November 2026 (UTC). */
const H9 = Date.parse('2026-11-30T09:00:00Z')
const H10 = H9 + HOUR_MS
const H11 = H9 + 2 * HOUR_MS
const H12 = H9 + 3 * HOUR_MS

const A = 'site-a'
const B = 'site-b'
const C = 'site-c'
const EXPECTED_PER_HOUR = 6

const Replay = z.object({
  metric: z.string(),
  from: z.string(),
  to: z.string(),
  hours: z.array(z.string()),
  sites: z.record(z.string(), z.array(z.number().nullable())),
})
type Replay = z.infer<typeof Replay>

/** `values.length` readings of one device in the hour starting at `hour`, 10 minutes apart. */
function hourOf(siteId: string, hour: number, values: readonly number[]): StoredReading[] {
  return values.map((pm25, i) => {
    const ts = hour + i * 600_000
    return {
      deviceId: `dev-${siteId}`,
      siteId,
      ts,
      seq: null,
      values: { pm25 },
      receivedAt: ts,
      expectedPerHour: EXPECTED_PER_HOUR,
    }
  })
}

/** A: 09:00 below coverage (4 of 6), 10:00 mean 12.5, 11:00 mean 20. B: 11:00 valid with 5 of 6. C: 3 days ago. */
const BASE_READINGS: readonly StoredReading[] = [
  ...hourOf(A, H9, [30, 30, 30, 30]),
  ...hourOf(A, H10, [10, 11, 12, 13, 14, 15]),
  ...hourOf(A, H11, [20, 20, 20, 20, 20, 20]),
  ...hourOf(B, H11, [8, 8, 8, 8, 8]),
  ...hourOf(C, H10 - 3 * DAY_MS, [5, 5, 5, 5, 5, 5]),
]

const USERS: readonly { who: string; role: Role; sites: string[] }[] = [
  { who: 'staff', role: 'staff', sites: [] },
  { who: 'principal', role: 'principal', sites: [A] },
]

let dir: Awaited<ReturnType<typeof tempDir>>
let dbCount = 0
const opened: Storage[] = []
const running: RunningApi[] = []

/** A fresh SQLite file with the three sites, the two users and BASE_READINGS. */
async function openStore(): Promise<Storage> {
  dbCount += 1
  const storage = openSqliteStorage({ path: join(dir.path, `skolluft-${dbCount}.db`) })
  opened.push(storage)
  await storage.registry.upsertSites(
    [A, B, C].map((id, i) => ({
      id,
      name: `Skola ${id}`,
      kind: 'school',
      municipality: 'Lund',
      lat: 55.7 + i / 100,
      lon: 13.2,
    })),
  )
  await storage.readings.writeReadings(BASE_READINGS)
  await addTestUsers(storage, USERS, NOW - DAY_MS)
  return storage
}

interface Harness {
  readonly api: RunningApi
  readonly as: Record<string, Caller>
  /** The injected clock's time; tests move it. */
  now: number
  /** Calls of storage.readings.hourlyBySite so far. */
  calls: number
  /** Awaited inside every hourlyBySite call before the real one runs (to hold or fail it). */
  before: () => Promise<void>
}

/** An API (public map off) over `storage` with its own clock, its replay reads counted, and both users logged in. */
async function start(storage: Storage): Promise<Harness> {
  const harness: Omit<Harness, 'api' | 'as'> = { now: NOW, calls: 0, before: async () => {} }
  const counted: Storage = {
    ...storage,
    readings: {
      ...storage.readings,
      hourlyBySite: async (query) => {
        harness.calls += 1
        await harness.before()
        return storage.readings.hourlyBySite(query)
      },
    },
  }
  const api = await startApi({
    log: silentLogger(),
    storage: counted,
    clock: () => harness.now,
    host: '127.0.0.1',
    port: 0,
    options: { publicMap: false },
  })
  running.push(api)
  const as: Record<string, Caller> = Object.fromEntries(await logInTestUsers(api, USERS))
  return Object.assign(harness, { api, as })
}

async function replay(h: Harness, who: string, hours: 24 | 168 = 24): Promise<Replay> {
  const caller = h.as[who]
  if (caller === undefined) throw new Error(`no session for ${who}`)
  const res = await call(h.api, caller, 'GET', `/replay?metric=pm25&hours=${hours}`)
  expect(res.status, JSON.stringify(res.body)).toBe(200)
  return Replay.parse(res.body)
}

/** The values of `siteId` at the hour starting at `hour`; undefined when the site is not in the replay. */
function at(body: Replay, siteId: string, hour: number): number | null | undefined {
  const slot = body.hours.indexOf(new Date(hour).toISOString())
  expect(slot, `hour ${new Date(hour).toISOString()} in the replay`).toBeGreaterThanOrEqual(0)
  return body.sites[siteId]?.[slot]
}

beforeAll(async () => {
  dir = await tempDir('skolluft-replay-')
})

afterEach(async () => {
  for (const api of running.splice(0)) await api.close()
})

afterAll(async () => {
  for (const storage of opened) await storage.close()
  await dir?.cleanup()
})

describe('GET /replay (real SQLite store, wrapped to count its hourlyBySite calls)', () => {
  it('gives each site its hourly means in the right slots, null below 75 % coverage', async () => {
    const h = await start(await openStore())
    const day = await replay(h, 'staff', 24)
    // The 24 complete hours before 12:00 and the current one: 12:00 on the 29th to 12:00 on the 30th.
    expect(day.from).toBe('2026-11-29T12:00:00.000Z')
    expect(day.to).toBe('2026-11-30T13:00:00.000Z')
    expect(day.hours).toHaveLength(25)
    expect(day.hours[0]).toBe(day.from)
    expect(day.hours[24]).toBe(new Date(H12).toISOString())
    // C's only hour is 3 days old: not in the last 24 hours.
    expect(Object.keys(day.sites).sort()).toEqual([A, B])
    for (const values of Object.values(day.sites)) expect(values).toHaveLength(25)

    const a = new Array<number | null>(25).fill(null)
    a[22] = 12.5 // 10:00: (10 + … + 15) / 6
    a[23] = 20 // 11:00
    expect(day.sites[A]).toEqual(a) // 09:00 (slot 21) had 4 of 6 samples: null, not 30
    expect(at(day, A, H9)).toBeNull()
    expect(at(day, A, H10)).toBe(12.5)
    expect(at(day, B, H11)).toBe(8) // 5 of 6 samples: valid

    const week = await replay(h, 'staff', 168)
    expect(week.hours).toHaveLength(169)
    expect(week.to).toBe(day.to)
    expect(Date.parse(week.to) - Date.parse(week.from)).toBe(169 * HOUR_MS)
    expect(Object.keys(week.sites).sort()).toEqual([A, B, C])
    expect(at(week, C, H10 - 3 * DAY_MS)).toBe(5)
    expect(at(week, A, H10)).toBe(12.5)
    expect(week.sites[A]?.filter((v) => v !== null)).toEqual([12.5, 20])
  })

  it('shows a principal only its own sites and staff all, also when served from the cache', async () => {
    const h = await start(await openStore())
    // Staff fills the cache; the principal's answer comes from it (no second storage call), filtered.
    expect(Object.keys((await replay(h, 'staff', 24)).sites).sort()).toEqual([A, B])
    h.now += 1_000
    const principal = await replay(h, 'principal', 24)
    expect(h.calls).toBe(1)
    expect(Object.keys(principal.sites)).toEqual([A])
    expect(at(principal, A, H10)).toBe(12.5)

    // The other way round: what the principal's request cached is not limited to the principal's sites.
    const principalWeek = await replay(h, 'principal', 168)
    expect(Object.keys(principalWeek.sites)).toEqual([A])
    const staffWeek = await replay(h, 'staff', 168)
    expect(h.calls).toBe(2)
    expect(Object.keys(staffWeek.sites).sort()).toEqual([A, B, C])
  })

  it('reuses a result for REPLAY_CACHE_MS, and the next hour is a new query', async () => {
    const storage = await openStore()
    const h = await start(storage)
    const first = await replay(h, 'staff')
    expect(at(first, B, H10)).toBeNull()
    expect(first.sites[B]).toBeDefined()

    await storage.readings.writeReadings(hourOf(B, H10, [40, 40, 40, 40, 40, 40]))
    h.now = NOW + REPLAY_CACHE_MS - 1
    const cached = await replay(h, 'staff')
    expect(h.calls).toBe(1)
    expect(cached).toEqual(first)

    h.now = NOW + REPLAY_CACHE_MS
    const fresh = await replay(h, 'staff')
    expect(h.calls).toBe(2)
    expect(at(fresh, B, H10)).toBe(40)

    // 12:59:30, then 40 s later past the hour: within REPLAY_CACHE_MS of each other, but another window.
    h.now = H12 + HOUR_MS - 30_000
    const before = await replay(h, 'staff')
    expect(h.calls).toBe(3)
    expect(at(before, B, H12)).toBeNull()
    await storage.readings.writeReadings(hourOf(B, H12, [50, 50, 50, 50, 50, 50]))
    h.now = H12 + HOUR_MS + 10_000
    const next = await replay(h, 'staff')
    expect(h.calls).toBe(4)
    expect(next.to).toBe('2026-11-30T14:00:00.000Z')
    expect(next.from).toBe('2026-11-29T13:00:00.000Z')
    expect(at(next, B, H12)).toBe(50)
    expect(next.sites[B]?.[23]).toBe(50) // 12:00 is now the last complete hour
  })

  it('shares one storage call among concurrent identical requests, and does not keep a failed one (a call failed on purpose by the wrapper)', async () => {
    const h = await start(await openStore())
    h.before = async () => {
      throw new Error('storage unavailable')
    }
    const caller = h.as.staff
    if (caller === undefined) throw new Error('no staff session')
    expect((await call(h.api, caller, 'GET', '/replay?metric=pm25')).status).toBe(500)
    expect(h.calls).toBe(1)

    // Within REPLAY_CACHE_MS, yet asked again: the failure was not kept. The call is held for 200 ms, so the
    // other two requests arrive while it runs and wait for it (one arriving later would find the result cached:
    // either way, one call).
    h.before = () => new Promise((resolve) => setTimeout(resolve, 200))
    const ok = await Promise.all([1, 2, 3].map(() => replay(h, 'staff')))
    expect(h.calls).toBe(2)
    for (const body of ok) expect(at(body, A, H10)).toBe(12.5)
  })
})
