import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { DAY_MS, defaultScopes, type Role } from '@skolluft/core'
import { hashSecret, silentLogger } from '@skolluft/runtime'
import { openSqliteStorage, type Storage } from '@skolluft/storage'
import { tempDir, waitFor } from '@skolluft/testkit'
import { io as connectSocket, type Socket } from 'socket.io-client'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { issueApiToken } from '../auth/credentials.ts'
import { type RunningApi, startApi } from '../server.ts'
import { FLUSH_DELAY_MS, MAX_SITE_SUBSCRIPTIONS, type ReadingEvent } from './hub.ts'

/**
 * The live hub over a real socket.io connection to a real server: subscriptions, who sees which site, and
 * back-pressure (a client that does not ack holds at most one event per site, merged per metric).
 */
const A = 'site-a'
const B = 'site-b'
const C = 'site-c'
const SITES = [A, B, C]
/** Comfortably more than FLUSH_DELAY_MS: long enough for a batch that was going to come. */
const QUIET_MS = 4 * FLUSH_DELAY_MS

let dir: Awaited<ReturnType<typeof tempDir>>
let storage: Storage
let publicOn: RunningApi
let publicOff: RunningApi
const tokens = new Map<string, string>()
let principalCookie: string
const sockets: Socket[] = []

const ReadingBatch = z.array(
  z.object({ site: z.string(), device: z.string(), ts: z.string(), values: z.record(z.string(), z.number()) }),
)
const StatusBatch = z.array(z.object({ site: z.string(), device: z.string(), online: z.boolean(), ts: z.string() }))

interface LiveClient {
  readonly socket: Socket
  /** Every `readings` batch received. */
  readonly batches: z.infer<typeof ReadingBatch>[]
  readonly statuses: z.infer<typeof StatusBatch>[]
  /** Acks of batches not acked yet (manual clients only). */
  readonly unacked: (() => void)[]
}

/** Connects and resolves once connected; rejects with the server's reason on connect_error. */
async function connect(
  server: RunningApi,
  headers: Record<string, string> = {},
  { autoAck = true } = {},
): Promise<LiveClient> {
  const socket = connectSocket(`http://127.0.0.1:${server.port}`, {
    path: '/socket.io',
    transports: ['websocket'],
    reconnection: false,
    forceNew: true,
    extraHeaders: headers,
  })
  sockets.push(socket)
  const client: LiveClient = { socket, batches: [], statuses: [], unacked: [] }
  socket.on('readings', (batch: unknown, ack: unknown) => {
    client.batches.push(ReadingBatch.parse(batch))
    if (typeof ack !== 'function') throw new Error('readings came without an ack callback')
    if (autoAck) ack()
    else client.unacked.push(() => ack())
  })
  socket.on('device-status', (batch: unknown) => client.statuses.push(StatusBatch.parse(batch)))
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve())
    socket.once('connect_error', (error) => reject(error))
  })
  return client
}

/**
 * Subscribes, then waits until the server has handled it: an invalid subscription sent after it is answered
 * with `live-error`, and the server handles one socket's messages in order.
 */
async function subscribe(client: LiveClient, ...subscriptions: unknown[]): Promise<void> {
  for (const s of subscriptions) client.socket.emit('subscribe', s)
  await barrier(client)
}

async function barrier(client: LiveClient): Promise<void> {
  await new Promise<void>((resolve) => {
    client.socket.once('live-error', () => resolve())
    client.socket.emit('subscribe', { barrier: true })
  })
}

function event(site: string, minute: number, values: ReadingEvent['values'], device = `dev-${site}`): ReadingEvent {
  return { site, device, ts: new Date(Date.UTC(2026, 10, 30, 12, minute)).toISOString(), values }
}

const sitesIn = (client: LiveClient) => [...new Set(client.batches.flat().map((e) => e.site))].sort()

async function addToken(role: Role, sites: string[] = []): Promise<string> {
  const issued = await issueApiToken()
  await storage.access.createToken({
    id: issued.id,
    name: `${role} live`,
    role,
    scopes: defaultScopes(role),
    sites,
    userId: null,
    secretHash: issued.secretHash,
    createdAt: Date.now() - DAY_MS,
    expiresAt: null,
  })
  return issued.value
}

function bearer(name: string): Record<string, string> {
  const token = tokens.get(name)
  if (token === undefined) throw new Error(`no token ${name}`)
  return { Authorization: `Bearer ${token}` }
}

beforeAll(async () => {
  dir = await tempDir('skolluft-hub-')
  storage = openSqliteStorage({ path: join(dir.path, 'skolluft.db') })
  await storage.registry.upsertSites(
    SITES.map((id) => ({ id, name: id, kind: 'school', municipality: 'Lund', lat: 55.7, lon: 13.2 })),
  )
  tokens.set('staff', await addToken('staff'))
  tokens.set('researcher', await addToken('researcher'))
  tokens.set('principal', await addToken('principal', [A]))
  await storage.access.addUser(
    {
      email: 'principal@example.org',
      name: null,
      role: 'principal',
      sites: [A],
      passwordHash: await hashSecret('principal password 0123'),
    },
    Date.now(),
  )
  const base = { log: silentLogger(), storage, host: '127.0.0.1', port: 0 }
  publicOn = await startApi({ ...base, options: { publicMap: true } })
  publicOff = await startApi({ ...base, options: { publicMap: false } })
  const login = await fetch(`http://127.0.0.1:${publicOff.port}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ email: 'principal@example.org', password: 'principal password 0123' }),
  })
  expect(login.status).toBe(200)
  const cookie = /^(skolluft_session=[^;]+)/.exec(login.headers.getSetCookie()[0] ?? '')?.[1]
  if (cookie === undefined) throw new Error('no session cookie')
  principalCookie = cookie
})

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.disconnect()
  // The hubs notice the disconnects before the next test counts clients.
  await waitFor(() => publicOn.hub.stats().clients === 0 && publicOff.hub.stats().clients === 0, 'sockets closed')
})

afterAll(async () => {
  await publicOn?.close()
  await publicOff?.close()
  await storage?.close()
  await dir?.cleanup()
})

describe('subscriptions', () => {
  it('sends readings to a map subscriber, and nothing before it subscribes or after it unsubscribes', async () => {
    const client = await connect(publicOn)
    publicOn.hub.publishReadings([event(A, 0, { pm25: 1 })])
    await sleep(QUIET_MS)
    expect(client.batches).toEqual([])

    await subscribe(client, { map: true })
    publicOn.hub.publishReadings([event(A, 1, { pm25: 7.5, no2: 20 }), event(B, 1, { pm10: 12 })])
    await waitFor(() => client.batches.length === 1, 'the first batch')
    expect(client.batches[0]).toEqual([event(A, 1, { pm25: 7.5, no2: 20 }), event(B, 1, { pm10: 12 })])

    client.socket.emit('unsubscribe', { map: true })
    await barrier(client)
    publicOn.hub.publishReadings([event(C, 2, { pm25: 3 })])
    await sleep(QUIET_MS)
    expect(client.batches).toHaveLength(1)
  })

  it('sends a site subscriber only its sites', async () => {
    const client = await connect(publicOn)
    await subscribe(client, { site: B })
    publicOn.hub.publishReadings([event(A, 1, { pm25: 1 }), event(B, 1, { pm25: 2 }), event(C, 1, { pm25: 3 })])
    await waitFor(() => client.batches.length === 1, 'the batch for site-b')
    await sleep(QUIET_MS)
    expect(client.batches).toEqual([[event(B, 1, { pm25: 2 })]])
  })

  it('answers a malformed subscription with live-error and caps single-site subscriptions', async () => {
    const client = await connect(publicOn)
    const errors: unknown[] = []
    client.socket.on('live-error', (e: unknown) => errors.push(e))
    client.socket.emit('subscribe', { site: '../etc' })
    client.socket.emit('subscribe', 'map')
    for (let i = 0; i <= MAX_SITE_SUBSCRIPTIONS; i++) client.socket.emit('subscribe', { site: `s-${i}` })
    await waitFor(() => errors.length === 3, 'three live errors')
    expect(errors).toEqual([
      expect.objectContaining({ code: 'invalid_subscription' }),
      expect.objectContaining({ code: 'invalid_subscription' }),
      expect.objectContaining({ code: 'too_many_sites' }),
    ])
  })
})

describe('who sees what', () => {
  it('refuses an anonymous socket when the map is not public, and a socket with a bad token', async () => {
    await expect(connect(publicOff)).rejects.toThrow(/unauthorized/)
    await expect(connect(publicOn, { Authorization: 'Bearer skl_nope' })).rejects.toThrow(/not valid/)
    // A page on another origin must not ride on a visitor's cookie.
    await expect(connect(publicOff, { Origin: 'http://evil.example', Cookie: principalCookie })).rejects.toThrow()
    await expect(connect(publicOff, { Origin: 'null', Cookie: principalCookie })).rejects.toThrow()
    expect(publicOff.hub.stats().clients).toBe(0)
    // The server is still there for everyone else.
    const staff = await connect(publicOff, bearer('staff'))
    expect(staff.socket.connected).toBe(true)
  })

  it('sends a principal only the events of their own sites, with the map off', async () => {
    const principal = await connect(publicOff, { Cookie: principalCookie })
    const byToken = await connect(publicOff, bearer('principal'))
    const staff = await connect(publicOff, bearer('staff'))
    await subscribe(principal, { map: true }, { site: B })
    await subscribe(byToken, { map: true })
    await subscribe(staff, { map: true })
    publicOff.hub.publishReadings([event(A, 1, { pm25: 1 }), event(B, 1, { pm25: 2 }), event(C, 1, { pm25: 3 })])
    await waitFor(() => staff.batches.length === 1 && principal.batches.length === 1, 'batches')
    await sleep(QUIET_MS)
    expect(sitesIn(principal)).toEqual([A])
    expect(sitesIn(byToken)).toEqual([A])
    expect(sitesIn(staff)).toEqual(SITES)
  })

  it('sends every site to anyone when the map is public, but device status only to roles that see devices', async () => {
    const anonymous = await connect(publicOn)
    const researcher = await connect(publicOn, bearer('researcher'))
    const principal = await connect(publicOn, { Cookie: principalCookie })
    const staff = await connect(publicOn, bearer('staff'))
    for (const client of [anonymous, researcher, principal, staff]) await subscribe(client, { map: true })
    publicOn.hub.publishReadings(SITES.map((site) => event(site, 1, { pm25: 1 })))
    const ts = new Date().toISOString()
    for (const site of SITES) publicOn.hub.publishStatus({ site, device: `dev-${site}`, online: false, ts })
    await waitFor(() => anonymous.batches.length === 1 && staff.statuses.length === 1, 'readings and status')
    await sleep(QUIET_MS)
    for (const client of [anonymous, researcher, principal, staff]) expect(sitesIn(client)).toEqual(SITES)
    expect(anonymous.statuses).toEqual([])
    expect(researcher.statuses).toEqual([])
    expect(principal.statuses.flat().map((s) => s.site)).toEqual([A])
    expect(staff.statuses.flat().map((s) => s.site)).toEqual(SITES)
  })
})

describe('credentials that end while a socket is open', () => {
  it('closes the socket of a revoked token and of a logged-out session within the revalidation time', async () => {
    const base = { log: silentLogger(), storage, host: '127.0.0.1', port: 0 }
    const server = await startApi({ ...base, options: { publicMap: false, liveRevalidateMs: 100 } })
    try {
      const revocable = await addToken('staff')
      const byToken = await connect(server, { Authorization: `Bearer ${revocable}` })
      // A session of its own: ending it must not end the one the other tests use.
      const login = await fetch(`http://127.0.0.1:${server.port}/api/v1/auth/login`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ email: 'principal@example.org', password: 'principal password 0123' }),
      })
      const cookie = /^(skolluft_session=[^;]+)/.exec(login.headers.getSetCookie()[0] ?? '')?.[1] ?? ''
      const bySession = await connect(server, { Cookie: cookie })
      const stays = await connect(server, bearer('staff'))
      await sleep(300)
      expect([byToken.socket.connected, bySession.socket.connected, stays.socket.connected]).toEqual([true, true, true])

      const tokenId = /^skl_([0-9a-f]+)_/.exec(revocable)?.[1] ?? ''
      expect(await storage.access.revokeToken(tokenId, Date.now())).toBe(true)
      await waitFor(() => !byToken.socket.connected, 'the revoked token socket to close', { timeoutMs: 3_000 })

      const sessionId = /^skolluft_session=([0-9a-f]+)\./.exec(cookie)?.[1] ?? ''
      expect(await storage.access.deleteSession(sessionId)).toBe(true)
      await waitFor(() => !bySession.socket.connected, 'the ended session socket to close', { timeoutMs: 3_000 })
      expect(stays.socket.connected).toBe(true)
    } finally {
      await server.close()
    }
  })
})

describe('a slow client', () => {
  it('holds at most one event per site while it does not ack, then gets the newest values merged per metric', async () => {
    const slow = await connect(publicOn, {}, { autoAck: false })
    const fast = await connect(publicOn)
    await subscribe(slow, { map: true })
    await subscribe(fast, { map: true })

    publicOn.hub.publishReadings([event(A, 0, { pm25: 1 })])
    await waitFor(() => slow.batches.length === 1 && fast.batches.length === 1, 'the first batch')
    // The fast client's ack reaches the server; the slow client's batch stays in flight.
    await waitFor(() => publicOn.hub.stats().inFlight === 1, 'only the slow client in flight')

    // 1 000 events for 3 sites while the slow client sits on its first batch. Per site, pm25 and no2 come in
    // separate messages (one device each), so only a merge per metric keeps both.
    const burst: ReadingEvent[] = []
    for (let i = 1; i <= 1000; i++) {
      const site = SITES[i % 3] ?? A
      const values = i % 2 === 0 ? { pm25: i } : { no2: i }
      // Minutes from 1 to 1000: ISO times that sort like the numbers.
      burst.push(event(site, i, values, i % 2 === 0 ? `pm-${site}` : `no2-${site}`))
    }
    for (let i = 0; i < burst.length; i += 50) {
      publicOn.hub.publishReadings(burst.slice(i, i + 50))
      // Only the slow client's events wait; the fast one's go out and are acked.
      expect(publicOn.hub.stats().pending).toBeLessThanOrEqual(2 * SITES.length)
    }
    await waitFor(() => fast.batches.length >= 2, "the fast client's batch")
    // Once the fast client has acked, only the slow client's batch is in flight and its merged events wait.
    await waitFor(() => publicOn.hub.stats().inFlight === 1, "the fast client's ack")
    await sleep(QUIET_MS)
    // The slow client got nothing more, and waits with one merged event per site.
    expect(slow.batches).toHaveLength(1)
    expect(publicOn.hub.stats()).toEqual({
      clients: 2,
      pending: SITES.length,
      inFlight: 1,
      fromPeers: 0,
      accessFromPeers: 0,
    })

    // Newest per site: the last pm25 and the last no2 of each site, with the newest time and device.
    const newest = (site: string): ReadingEvent => {
      const ofSite = burst.filter((e) => e.site === site)
      const last = ofSite.at(-1)
      const pm = ofSite.filter((e) => e.values.pm25 !== undefined).at(-1)
      const no2 = ofSite.filter((e) => e.values.no2 !== undefined).at(-1)
      if (last === undefined || pm === undefined || no2 === undefined) throw new Error('test data')
      return { site, device: last.device, ts: last.ts, values: { ...pm.values, ...no2.values } }
    }
    const expected = SITES.map(newest)
    // The fast client's view ends in the same state.
    const fastLatest = new Map(fast.batches.flat().map((e) => [e.site, e]))
    expect(SITES.map((s) => fastLatest.get(s))).toEqual(expected)

    slow.unacked.shift()?.()
    await waitFor(() => slow.batches.length === 2, 'the batch after the ack')
    const second = slow.batches[1] ?? []
    expect([...second].sort((a, b) => a.site.localeCompare(b.site))).toEqual(expected)
    expect(second).toHaveLength(SITES.length)
    await sleep(QUIET_MS)
    expect(slow.batches).toHaveLength(2)
    expect(publicOn.hub.stats()).toMatchObject({ pending: 0, inFlight: 1 })
  })

  it('merges an older event under a newer one without moving the time back', async () => {
    const slow = await connect(publicOn, {}, { autoAck: false })
    await subscribe(slow, { map: true })
    publicOn.hub.publishReadings([event(A, 0, { pm25: 1 })])
    await waitFor(() => slow.batches.length === 1, 'the first batch')
    publicOn.hub.publishReadings([event(A, 10, { pm25: 10 }, 'new')])
    // A late event (a replayed buffer): its pm25 is older, its no2 is the only one.
    publicOn.hub.publishReadings([event(A, 5, { pm25: 5, no2: 50 }, 'late')])
    await sleep(QUIET_MS)
    slow.unacked.shift()?.()
    await waitFor(() => slow.batches.length === 2, 'the merged batch')
    expect(slow.batches[1]).toEqual([event(A, 10, { pm25: 10, no2: 50 }, 'new')])
  })
})
