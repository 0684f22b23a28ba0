import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { FLUSH_DELAY_MS, issueApiToken, type ReadingEvent, type RunningApi, startApi } from '@skolluft/api'
import { DAY_MS, defaultScopes } from '@skolluft/core'
import { createLogger, generateSecret, hashSecret } from '@skolluft/runtime'
import { openSqliteStorage, type Storage } from '@skolluft/storage'
import { closedPort, waitFor } from '@skolluft/testkit'
import { io as connectSocket, type Socket } from 'socket.io-client'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { API_SERVICE_USERNAME, publishAsDevice } from '../support/live-platform.ts'
import { addTestDevice, startTestPlatform, type TestPlatform } from '../support/platform.ts'
import { redisAvailable, startRedis, type TestRedis } from '../support/redis.ts'

/**
 * Two real API instances (real HTTP, real socket.io) on one SQLite file, joined through a real redis-server
 * (REDIS_URL), each with its own live feed from the real gateway. A browser connects to one instance only,
 * as behind a load balancer with sticky sessions. Every live event must reach every entitled client once,
 * whichever instance it is connected to: broker events through each instance's own feed (not through Redis
 * as well), events that start in one instance through Redis.
 */
const QUIET_MS = 4 * FLUSH_DELAY_MS
const SITE = 'site-a'

const ReadingBatch = z.array(
  z.object({ site: z.string(), device: z.string(), ts: z.string(), values: z.record(z.string(), z.number()) }),
)
const StatusBatch = z.array(z.object({ site: z.string(), device: z.string(), online: z.boolean(), ts: z.string() }))

interface LiveClient {
  readonly socket: Socket
  readonly readings: z.infer<typeof ReadingBatch>
  readonly statuses: z.infer<typeof StatusBatch>
}

interface Instance {
  readonly api: RunningApi
  readonly storage: Storage
  readonly logs: string[]
}

const run = redisAvailable()
let platform: TestPlatform
let redis: TestRedis
let a: Instance
let b: Instance
let apiCredential: { username: string; password: string }
let device: { deviceId: string; password: string }
let staffToken: string
const sockets: Socket[] = []
const extraInstances: Instance[] = []

async function startInstance(storage: Storage, redisUrl: string, redisConnectTimeoutMs?: number): Promise<Instance> {
  const logs: string[] = []
  const api = await startApi({
    log: createLogger({ level: 'debug', destination: { write: (line: string) => void logs.push(line) } }),
    storage,
    host: '127.0.0.1',
    port: 0,
    options: { publicMap: true },
    live: { url: platform.mqttUrl, ...apiCredential },
    redisUrl,
    ...(redisConnectTimeoutMs === undefined ? {} : { redisConnectTimeoutMs }),
  })
  const instance = { api, storage, logs }
  await waitFor(() => logged(instance, 'live feed subscribed'), 'the live feed to subscribe')
  return instance
}

function logged(instance: Instance, msg: string): boolean {
  return instance.logs.some((line) => line.includes(`"msg":"${msg}`))
}

async function liveClient(instance: Instance, headers: Record<string, string> = {}): Promise<LiveClient> {
  const socket = connectSocket(`http://127.0.0.1:${instance.api.port}`, {
    path: '/socket.io',
    transports: ['websocket'],
    reconnection: false,
    forceNew: true,
    extraHeaders: headers,
  })
  sockets.push(socket)
  const client: LiveClient = { socket, readings: [], statuses: [] }
  socket.on('readings', (batch: unknown, ack: unknown) => {
    client.readings.push(...ReadingBatch.parse(batch))
    if (typeof ack === 'function') ack()
  })
  socket.on('device-status', (batch: unknown) => client.statuses.push(...StatusBatch.parse(batch)))
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve())
    socket.once('connect_error', (error) => reject(error))
  })
  // Subscribe, then wait until the server handled it (an invalid subscription after it gets live-error).
  socket.emit('subscribe', { map: true })
  await new Promise<void>((resolve) => {
    socket.once('live-error', () => resolve())
    socket.emit('subscribe', { barrier: true })
  })
  return client
}

/** How often `client` got the reading of `device` at `ts`, once it came and nothing more followed. */
async function timesReceived(client: LiveClient, deviceId: string, ts: string): Promise<number> {
  const count = () => client.readings.filter((r) => r.device === deviceId && r.ts === ts).length
  await waitFor(() => count() > 0, `the reading of ${deviceId} at ${ts}`)
  await sleep(QUIET_MS)
  return count()
}

let minute = 0
/** A reading event with a timestamp no other test uses. */
function nextEvent(deviceId: string, values: ReadingEvent['values']): ReadingEvent {
  minute += 1
  return { site: SITE, device: deviceId, ts: new Date(Date.UTC(2026, 0, 15, 8, minute)).toISOString(), values }
}

beforeAll(async () => {
  if (!run) return
  redis = await startRedis()
  platform = await startTestPlatform()
  const password = generateSecret()
  await platform.storage.registry.upsertServiceAccount({
    username: API_SERVICE_USERNAME,
    secretHash: await hashSecret(password),
    role: 'api',
  })
  apiCredential = { username: API_SERVICE_USERNAME, password }
  device = await addTestDevice(platform.storage, 'dev-redis-1', SITE)
  const issued = await issueApiToken()
  await platform.storage.access.createToken({
    id: issued.id,
    name: 'staff',
    role: 'staff',
    scopes: defaultScopes('staff'),
    sites: [],
    userId: null,
    secretHash: issued.secretHash,
    createdAt: Date.now() - DAY_MS,
    expiresAt: null,
  })
  staffToken = issued.value
  // Two processes would each open the file; two connections to it in one process are the same to SQLite.
  const dbFile = join(platform.dataDir, 'skolluft.db')
  a = await startInstance(openSqliteStorage({ path: dbFile }), redis.url)
  b = await startInstance(openSqliteStorage({ path: dbFile }), redis.url)
}, 30_000)

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.disconnect()
  for (const instance of extraInstances.splice(0)) {
    await instance.api.close()
    await instance.storage.close()
  }
})

afterAll(async () => {
  for (const instance of [a, b]) {
    await instance?.api.close()
    await instance?.storage.close()
  }
  await platform?.close()
  await redis?.stop()
})

describe.runIf(run)('live events across API instances joined through Redis', () => {
  it('delivers a reading a device publishes to clients on both instances, once each', async () => {
    const onA = await liveClient(a)
    const onB = await liveClient(b)
    const before = { a: a.api.hub.stats().fromPeers, b: b.api.hub.stats().fromPeers }
    const ts = Date.UTC(2026, 0, 15, 7, 0)
    await publishAsDevice(platform.mqttUrl, device, [{ ts, values: { pm25: 8.5 } }])
    const iso = new Date(ts).toISOString()
    expect(await timesReceived(onA, device.deviceId, iso)).toBe(1)
    expect(await timesReceived(onB, device.deviceId, iso)).toBe(1)
    expect(onB.readings.find((r) => r.ts === iso)?.values).toEqual({ pm25: 8.5 })
    // Each instance had it from its own feed; none was relayed through Redis as well.
    expect(a.api.hub.stats().fromPeers).toBe(before.a)
    expect(b.api.hub.stats().fromPeers).toBe(before.b)
  })

  it('delivers a reading that starts in instance A to a client on B once, and to a client on A once', async () => {
    const onA = await liveClient(a)
    const onB = await liveClient(b)
    const before = { a: a.api.hub.stats().fromPeers, b: b.api.hub.stats().fromPeers }
    const event = nextEvent('dev-origin-a', { no2: 21 })
    a.api.hub.broadcastReadings([event])
    expect(await timesReceived(onB, event.device, event.ts)).toBe(1)
    expect(await timesReceived(onA, event.device, event.ts)).toBe(1)
    expect(b.api.hub.stats().fromPeers).toBe(before.b + 1)
    // The sender does not get its own message back through Redis.
    expect(a.api.hub.stats().fromPeers).toBe(before.a)

    // The other way round as well.
    const back = nextEvent('dev-origin-b', { pm10: 14 })
    b.api.hub.broadcastReadings([back])
    expect(await timesReceived(onA, back.device, back.ts)).toBe(1)
    expect(await timesReceived(onB, back.device, back.ts)).toBe(1)
  })

  it("applies each client's own rights on the instance it is connected to", async () => {
    const anonymousOnB = await liveClient(b)
    const staffOnB = await liveClient(b, { Authorization: `Bearer ${staffToken}` })
    const ts = new Date(Date.UTC(2026, 0, 15, 9, 0)).toISOString()
    a.api.hub.broadcastStatus({ site: SITE, device: 'dev-status-a', online: false, ts })
    await waitFor(() => staffOnB.statuses.some((s) => s.device === 'dev-status-a'), 'the status on B')
    await sleep(QUIET_MS)
    expect(staffOnB.statuses.filter((s) => s.device === 'dev-status-a')).toEqual([
      { site: SITE, device: 'dev-status-a', online: false, ts },
    ])
    // Device health is for staff: the anonymous map on the same instance does not get it.
    expect(anonymousOnB.statuses).toEqual([])
  })

  it('keeps serving without Redis, and crosses instances again once Redis is back', async () => {
    const onA = await liveClient(a)
    const onB = await liveClient(b)
    await redis.stop()
    await waitFor(() => logged(a, 'redis unavailable') && logged(b, 'redis unavailable'), 'the outage to be logged')

    // HTTP and broker events go on; an event that starts in A reaches A's clients only, and nothing breaks.
    const health = await fetch(`http://127.0.0.1:${b.api.port}/api/v1/sites`)
    expect(health.status).toBe(200)
    const ts = Date.UTC(2026, 0, 15, 7, 30)
    await publishAsDevice(platform.mqttUrl, device, [{ ts, values: { pm25: 9.5 } }])
    expect(await timesReceived(onB, device.deviceId, new Date(ts).toISOString())).toBe(1)
    const lost = nextEvent('dev-during-outage', { pm25: 1 })
    a.api.hub.broadcastReadings([lost])
    expect(await timesReceived(onA, lost.device, lost.ts)).toBe(1)
    expect(onB.readings.some((r) => r.device === lost.device)).toBe(false)

    redis = await startRedis({ port: redis.port })
    await waitFor(() => logged(a, 'redis back') && logged(b, 'redis back'), 'both instances to reconnect', {
      timeoutMs: 15_000,
    })
    const after = nextEvent('dev-after-outage', { pm25: 2 })
    a.api.hub.broadcastReadings([after])
    expect(await timesReceived(onB, after.device, after.ts)).toBe(1)
    expect(await timesReceived(onA, after.device, after.ts)).toBe(1)
    // What was sent during the outage was dropped, not replayed late.
    expect(onB.readings.some((r) => r.device === lost.device)).toBe(false)
  }, 30_000)

  it('starts, serves and closes when Redis cannot be reached', async () => {
    const started = Date.now()
    const lonely = await startInstance(
      openSqliteStorage({ path: join(platform.dataDir, 'skolluft.db') }),
      `redis://127.0.0.1:${await closedPort()}`,
      300,
    )
    extraInstances.push(lonely)
    expect(Date.now() - started).toBeLessThan(5_000)
    expect(logged(lonely, 'redis unreachable at start')).toBe(true)
    const client = await liveClient(lonely)
    const event = nextEvent('dev-lonely', { rh: 40 })
    lonely.api.hub.broadcastReadings([event])
    expect(await timesReceived(client, event.device, event.ts)).toBe(1)
  })
})
