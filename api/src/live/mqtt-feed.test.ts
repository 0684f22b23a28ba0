import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { DAY_MS, defaultScopes, deviceTopic } from '@skolluft/core'
import { type Gateway, startGateway } from '@skolluft/gateway'
import { createLogger, generateSecret, hashSecret, silentLogger } from '@skolluft/runtime'
import { openSqliteStorage, type Storage } from '@skolluft/storage'
import { tempDir, waitFor } from '@skolluft/testkit'
import mqtt, { type MqttClient } from 'mqtt'
import { io as connectSocket, type Socket } from 'socket.io-client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { issueApiToken } from '../auth/credentials.ts'
import { type RunningApi, startApi } from '../server.ts'
import { FLUSH_DELAY_MS } from './hub.ts'

/**
 * From a device to a browser: a real aedes gateway, a device publishing over MQTT.js, the API subscribed as
 * the `api` service, and socket.io clients. The gateway and the API each have their own SQLite file: the
 * gateway knows a device `dev-ghost` that the API's registry does not, which is how a message from a device
 * unknown to the API reaches its feed.
 */
const SITE = 'site-a'
const QUIET_MS = 4 * FLUSH_DELAY_MS

let dir: Awaited<ReturnType<typeof tempDir>>
let gatewayStorage: Storage
let apiStorage: Storage
let gateway: Gateway
let api: RunningApi
let staffToken: string
const secrets = new Map<string, string>()
const mqttClients: MqttClient[] = []
const sockets: Socket[] = []
const logLines: string[] = []

const ReadingBatch = z.array(
  z.object({ site: z.string(), device: z.string(), ts: z.string(), values: z.record(z.string(), z.number()) }),
)
const StatusBatch = z.array(z.object({ site: z.string(), device: z.string(), online: z.boolean(), ts: z.string() }))

async function addDevice(store: Storage, id: string): Promise<void> {
  let secret = secrets.get(id)
  if (secret === undefined) {
    secret = generateSecret()
    secrets.set(id, secret)
  }
  await store.registry.addDevice(
    {
      id,
      model: 'test',
      sensors: ['pm25', 'no2'],
      intervalS: 60,
      secretHash: await hashSecret(secret),
      placement: { siteId: SITE, from: Date.now() - DAY_MS, indoor: false, heightM: 2 },
    },
    Date.now() - DAY_MS,
  )
}

async function connectDevice(id: string): Promise<MqttClient> {
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${gateway.port}`, {
    clientId: id,
    username: id,
    password: secrets.get(id),
    reconnectPeriod: 0,
    connectTimeout: 5_000,
  })
  mqttClients.push(client)
  client.on('error', () => {})
  return client
}

async function liveClient(headers: Record<string, string> = {}) {
  const socket = connectSocket(`http://127.0.0.1:${api.port}`, {
    path: '/socket.io',
    transports: ['websocket'],
    reconnection: false,
    forceNew: true,
    extraHeaders: headers,
  })
  sockets.push(socket)
  const batches: z.infer<typeof ReadingBatch>[] = []
  const statuses: z.infer<typeof StatusBatch>[] = []
  socket.on('readings', (batch: unknown, ack: unknown) => {
    batches.push(ReadingBatch.parse(batch))
    if (typeof ack === 'function') ack()
  })
  socket.on('device-status', (batch: unknown) => statuses.push(StatusBatch.parse(batch)))
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve())
    socket.once('connect_error', (error) => reject(error))
  })
  // Subscribe, and wait until the server has handled it (an invalid subscription after it gets live-error).
  socket.emit('subscribe', { map: true })
  await new Promise<void>((resolve) => {
    socket.once('live-error', () => resolve())
    socket.emit('subscribe', { barrier: true })
  })
  return { socket, batches, statuses }
}

function telemetry(ts: Date, values: Record<string, number>): string {
  return JSON.stringify({ ts: ts.toISOString(), ...values })
}

beforeAll(async () => {
  dir = await tempDir('skolluft-live-feed-')
  gatewayStorage = openSqliteStorage({ path: join(dir.path, 'gateway.db') })
  apiStorage = openSqliteStorage({ path: join(dir.path, 'api.db') })
  const site = { id: SITE, name: 'Skola A', kind: 'school' as const, municipality: 'Lund', lat: 55.7, lon: 13.2 }
  const apiPassword = generateSecret()
  for (const store of [gatewayStorage, apiStorage]) {
    await store.registry.upsertSites([site])
    await addDevice(store, 'dev-a')
  }
  await addDevice(gatewayStorage, 'dev-ghost')
  await gatewayStorage.registry.upsertServiceAccount({
    username: 'svc.api',
    role: 'api',
    secretHash: await hashSecret(apiPassword),
  })
  const issued = await issueApiToken()
  await apiStorage.access.createToken({
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

  gateway = await startGateway({
    log: silentLogger(),
    registry: gatewayStorage.registry,
    host: '127.0.0.1',
    port: 0,
    registryPollMs: 200,
  })
  api = await startApi({
    log: createLogger({ level: 'debug', destination: { write: (line: string) => void logLines.push(line) } }),
    storage: apiStorage,
    host: '127.0.0.1',
    port: 0,
    options: { publicMap: true },
    live: { url: `mqtt://127.0.0.1:${gateway.port}`, username: 'svc.api', password: apiPassword },
  })
  await waitFor(() => logLines.some((l) => l.includes('"msg":"live feed subscribed"')), 'the live feed to subscribe')
})

afterAll(async () => {
  for (const socket of sockets) socket.disconnect()
  for (const client of mqttClients) await client.endAsync()
  await api?.close()
  await gateway?.close()
  await gatewayStorage?.close()
  await apiStorage?.close()
  await dir?.cleanup()
})

describe('the live feed', () => {
  it('delivers a reading a device publishes over MQTT to a socket.io client within seconds', async () => {
    const browser = await liveClient()
    const device = await connectDevice('dev-a')
    const ts = new Date(Date.now() - 1_000)
    await device.publishAsync(deviceTopic('dev-a', 'telemetry'), telemetry(ts, { pm25: 7.5, no2: 20 }), { qos: 1 })
    // Typically ~FLUSH_DELAY_MS; a few seconds leave room for a loaded test machine.
    await waitFor(() => browser.batches.length > 0, 'a readings event within 5 s', { timeoutMs: 5_000 })
    expect(browser.batches).toEqual([
      [{ site: SITE, device: 'dev-a', ts: ts.toISOString(), values: { pm25: 7.5, no2: 20 } }],
    ])

    // A buffered batch passes on its newest reading only.
    const older = new Date(ts.getTime() + 1_000)
    const newer = new Date(ts.getTime() + 2_000)
    const batch = JSON.stringify({
      readings: [
        { ts: newer.toISOString(), pm25: 9 },
        { ts: older.toISOString(), pm25: 8 },
      ],
    })
    await device.publishAsync(deviceTopic('dev-a', 'telemetry'), batch, { qos: 1 })
    await waitFor(() => browser.batches.length === 2, 'the batch event')
    expect(browser.batches[1]).toEqual([{ site: SITE, device: 'dev-a', ts: newer.toISOString(), values: { pm25: 9 } }])
  })

  it('passes on no event for an invalid payload or a device the API does not know', async () => {
    const browser = await liveClient()
    const device = await connectDevice('dev-a')
    const ghost = await connectDevice('dev-ghost')
    const topic = deviceTopic('dev-a', 'telemetry')
    const now = Date.now()
    await device.publishAsync(topic, 'not json', { qos: 1 })
    await device.publishAsync(topic, telemetry(new Date(now), { pm25: 5_000 }), { qos: 1 })
    await device.publishAsync(topic, telemetry(new Date(now + 3_600_000), { pm25: 3 }), { qos: 1 })
    await device.publishAsync(topic, JSON.stringify({ readings: [{ ts: 'yesterday', pm25: 3 }] }), { qos: 1 })
    await ghost.publishAsync(deviceTopic('dev-ghost', 'telemetry'), telemetry(new Date(now), { pm25: 99 }), {
      qos: 1,
    })
    // The ingest would record the rejects; the live feed only drops them. A valid reading after them all:
    const sentinel = new Date(now - 500)
    await device.publishAsync(topic, telemetry(sentinel, { pm25: 4.2 }), { qos: 1 })
    await waitFor(() => browser.batches.length > 0, 'the valid reading')
    await sleep(QUIET_MS)
    expect(browser.batches).toEqual([
      [{ site: SITE, device: 'dev-a', ts: sentinel.toISOString(), values: { pm25: 4.2 } }],
    ])
  })

  it('passes device status on to clients that may see device health', async () => {
    const anonymous = await liveClient()
    const staff = await liveClient({ Authorization: `Bearer ${staffToken}` })
    const device = await connectDevice('dev-a')
    const ts = new Date().toISOString()
    await device.publishAsync(deviceTopic('dev-a', 'status'), JSON.stringify({ state: 'offline', ts }), {
      qos: 1,
      retain: true,
    })
    await waitFor(() => staff.statuses.flat().some((s) => s.ts === ts), 'the status event')
    expect(staff.statuses.flat().filter((s) => s.ts === ts)).toEqual([
      { site: SITE, device: 'dev-a', online: false, ts },
    ])
    await sleep(QUIET_MS)
    expect(anonymous.statuses).toEqual([])
  })
})
