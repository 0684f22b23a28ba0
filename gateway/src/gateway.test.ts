import { connect as connectTcp } from 'node:net'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { ALL_STATUS_FILTER, ALL_TELEMETRY_FILTER, deviceTopic } from '@skolluft/core'
import { hashSecret, silentLogger } from '@skolluft/runtime'
import { openSqliteStorage, type Storage } from '@skolluft/storage'
import { tempDir, waitFor } from '@skolluft/testkit'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { type Gateway, startGateway } from './gateway.ts'
import { PUBLISH_BURST } from './limits.ts'

/**
 * Integration: a real gateway on 127.0.0.1 port 0, real MQTT.js clients, a real SQLite registry.
 * The gateway's clock is frozen unless a test moves it, so token buckets do not refill and back-offs
 * do not expire behind a test's back.
 */
const POLL_MS = 100
const SITE = {
  id: 'school-1',
  name: 'Testskolan',
  kind: 'school',
  municipality: 'Lund',
  lat: 55.7,
  lon: 13.19,
} as const
const DEVICES = [
  'dev-a',
  'dev-b',
  'dev-wrong',
  'dev-backoff',
  'dev-revoked',
  'dev-live-revoke',
  'dev-rotate',
  'dev-flood',
  'dev-big',
  'dev-will',
  'dev-shadow',
] as const
type DeviceName = (typeof DEVICES)[number]

let dir: { path: string; cleanup: () => Promise<void> }
let storage: Storage
/** A second connection to the same file: stands in for another process (the CLI). */
let otherProcess: Storage
let gateway: Gateway
let now = Date.parse('2026-11-30T08:00:00Z')
const secrets = new Map<string, string>()
const clients: MqttClient[] = []
let clientSeq = 0

function secretOf(id: DeviceName | 'svc.ingest' | 'svc.api'): string {
  const secret = secrets.get(id)
  if (secret === undefined) throw new Error(`no secret for ${id}`)
  return secret
}

function url(): string {
  return `mqtt://127.0.0.1:${gateway.port}`
}

function track(client: MqttClient): MqttClient {
  clients.push(client)
  // Refused publishes end in a reset socket; keep such errors from becoming unhandled 'error' events.
  client.on('error', () => {})
  return client
}

async function connect(options: IClientOptions): Promise<MqttClient> {
  return track(await mqtt.connectAsync(url(), { reconnectPeriod: 0, connectTimeout: 5000, ...options }))
}

function connectDevice(id: DeviceName, extra: IClientOptions = {}): Promise<MqttClient> {
  return connect({ clientId: id, username: id, password: secretOf(id), ...extra })
}

/** The CONNACK return code of a refused connection (0 if it was accepted). */
async function connackCode(options: IClientOptions): Promise<number | undefined> {
  try {
    track(await mqtt.connectAsync(url(), { reconnectPeriod: 0, connectTimeout: 5000, ...options }))
    return 0
  } catch (error) {
    return (error as { code?: number }).code
  }
}

interface Received {
  readonly topic: string
  readonly payload: string
}

/** A service client subscribed to `filters`, collecting what it receives. */
async function service(
  role: 'ingest' | 'api',
  filters: readonly string[],
): Promise<{ client: MqttClient; got: Received[] }> {
  const username = `svc.${role}` as const
  clientSeq += 1
  const client = await connect({ clientId: `${username}-test-${clientSeq}`, username, password: secretOf(username) })
  const got: Received[] = []
  client.on('message', (topic, payload) => got.push({ topic, payload: payload.toString('utf8') }))
  for (const filter of filters) expect(await grantedQos(client, filter)).toBe(1)
  return { client, got }
}

async function grantedQos(client: MqttClient, filter: string): Promise<number | undefined> {
  try {
    const granted = await client.subscribeAsync(filter, { qos: 1 })
    return granted[0]?.qos
  } catch (error) {
    return (error as { packet?: { granted?: number[] } }).packet?.granted?.[0]
  }
}

function reading(seq: number): string {
  return JSON.stringify({ ts: new Date(now).toISOString(), seq, pm25: 7.4 })
}

async function closedByBroker(client: MqttClient, what: string): Promise<void> {
  await waitFor(() => !client.connected, what, { timeoutMs: 5000 })
}

beforeAll(async () => {
  dir = await tempDir('skolluft-gateway-')
  const path = join(dir.path, 'skolluft.db')
  storage = openSqliteStorage({ path })
  otherProcess = openSqliteStorage({ path })
  const { registry } = storage
  await registry.upsertSites([SITE])
  // Hashes in parallel: scrypt runs on the thread pool (~40 ms each).
  await Promise.all(
    DEVICES.map(async (id) => {
      const secret = `secret-of-${id}-0123456789abcdef`
      secrets.set(id, secret)
      await registry.addDevice(
        {
          id,
          model: 'test-sensor',
          sensors: ['pm25'],
          intervalS: 60,
          secretHash: await hashSecret(secret),
          placement: { siteId: SITE.id, from: now - 86_400_000, indoor: false, heightM: 2 },
        },
        now - 86_400_000,
      )
    }),
  )
  await registry.revokeDevice('dev-revoked', now - 3_600_000)
  for (const role of ['ingest', 'api'] as const) {
    const username = `svc.${role}` as const
    const secret = `secret-of-${username}-0123456789`
    secrets.set(username, secret)
    await registry.upsertServiceAccount({ username, role, secretHash: await hashSecret(secret) })
  }
  gateway = await startGateway({
    log: silentLogger(),
    registry,
    host: '127.0.0.1',
    port: 0,
    clock: () => now,
    registryPollMs: POLL_MS,
  })
})

afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.endAsync(true)))
})

afterAll(async () => {
  await gateway?.close()
  await otherProcess?.close()
  await storage?.close()
  await dir?.cleanup()
})

describe('gateway', () => {
  it('listens on the port it reports', () => {
    expect(gateway.port).toBeGreaterThan(0)
  })

  it('delivers a device’s telemetry to a subscribed ingest service', async () => {
    const ingest = await service('ingest', [ALL_TELEMETRY_FILTER])
    const device = await connectDevice('dev-a')
    await device.publishAsync(deviceTopic('dev-a', 'telemetry'), reading(1), { qos: 1 })
    await waitFor(() => ingest.got.length === 1, 'the ingest to receive the reading')
    expect(ingest.got[0]).toEqual({ topic: deviceTopic('dev-a', 'telemetry'), payload: reading(1) })
    expect(gateway.stats()).toMatchObject({ connectedDevices: 1, connectedServices: 1 })
  })

  it('refuses bad credentials, unknown and revoked devices, and anonymous clients', async () => {
    const authFailuresBefore = gateway.stats().authFailures
    expect(await connackCode({ clientId: 'dev-wrong', username: 'dev-wrong', password: 'not-the-secret' })).toBe(4)
    expect(await connackCode({ clientId: 'dev-nobody', username: 'dev-nobody', password: 'whatever' })).toBe(4)
    expect(
      await connackCode({ clientId: 'dev-revoked', username: 'dev-revoked', password: secretOf('dev-revoked') }),
    ).toBe(5)
    expect(await connackCode({ clientId: 'anon' })).toBe(5)
    expect(await connackCode({ clientId: 'dev-a', username: 'dev-a' })).toBe(4)
    const stats = gateway.stats()
    expect(stats.authFailures - authFailuresBefore).toBe(5)
    expect(stats.devices['dev-wrong']?.authFailures).toBe(1)
    expect(stats.devices['dev-revoked']).toMatchObject({ authFailures: 1, lastReason: 'revoked' })
  })

  it('requires a device’s client id to be its device id', async () => {
    expect(await connackCode({ clientId: 'dev-b', username: 'dev-a', password: secretOf('dev-a') })).toBe(2)
    expect(await connackCode({ clientId: 'something-else', username: 'dev-a', password: secretOf('dev-a') })).toBe(2)
    // An empty client id would give the device a broker-made id; also refused.
    expect(await connackCode({ clientId: '', clean: true, username: 'dev-a', password: secretOf('dev-a') })).toBe(2)
  })

  it('answers a repeated login from memory, without scrypt', async () => {
    const first = await connectDevice('dev-b')
    await first.endAsync()
    const hitsBefore = gateway.stats().authCacheHits
    await connectDevice('dev-b')
    expect(gateway.stats().authCacheHits).toBe(hitsBefore + 1)
  })

  it('backs off after a failed login, then lets the right password in', async () => {
    expect(await connackCode({ clientId: 'dev-backoff', username: 'dev-backoff', password: 'wrong' })).toBe(4)
    // Still backing off: even the right password is refused without being checked.
    const right = { clientId: 'dev-backoff', username: 'dev-backoff', password: secretOf('dev-backoff') }
    expect(await connackCode(right)).toBe(4)
    expect(gateway.stats().devices['dev-backoff']?.lastReason).toBe('backing_off_after_failures')
    now += 1000
    expect(await connackCode(right)).toBe(0)
  })

  it('refuses a device publishing outside its own telemetry and status; subscribers never see it', async () => {
    const ingest = await service('ingest', [ALL_TELEMETRY_FILTER, ALL_STATUS_FILTER])
    const attempts = [
      deviceTopic('dev-b', 'telemetry'),
      deviceTopic('dev-b', 'status'),
      deviceTopic('dev-a', 'config'),
      '$SYS/broker/heartbeat',
      'aq/v1/devices/dev-a/telemetry/deeper',
      'some/other/topic',
    ]
    const before = gateway.stats()
    for (const topic of attempts) {
      const device = await connectDevice('dev-a')
      device.publish(topic, reading(666), { qos: 0 })
      await closedByBroker(device, `the gateway to close dev-a after publishing to ${topic}`)
    }
    // A legitimate message afterwards: once it arrives, anything forged would have arrived before it.
    const other = await connectDevice('dev-b')
    await other.publishAsync(deviceTopic('dev-b', 'telemetry'), reading(2), { qos: 1 })
    await waitFor(() => ingest.got.length > 0, 'the legitimate reading')
    expect(ingest.got).toEqual([{ topic: deviceTopic('dev-b', 'telemetry'), payload: reading(2) }])
    const after = gateway.stats()
    expect(after.deniedPublishes - before.deniedPublishes).toBe(5)
    expect(after.topicTooDeep - before.topicTooDeep).toBe(1)
    expect(after.devices['dev-a']?.deniedPublishes).toBeGreaterThanOrEqual(5)
  })

  it('answers 0x80 to a device subscribing beyond its own config, and keeps it connected', async () => {
    const device = await connectDevice('dev-a')
    expect(await grantedQos(device, deviceTopic('dev-b', 'config'))).toBe(128)
    expect(await grantedQos(device, 'aq/v1/devices/+/config')).toBe(128)
    expect(await grantedQos(device, ALL_TELEMETRY_FILTER)).toBe(128)
    expect(await grantedQos(device, '#')).toBe(128)
    expect(await grantedQos(device, '$SYS/#')).toBe(128)
    expect(await grantedQos(device, deviceTopic('dev-a', 'config'))).toBe(1)
    expect(device.connected).toBe(true)
    expect(gateway.stats().devices['dev-a']?.deniedSubscribes).toBeGreaterThanOrEqual(5)
  })

  it('delivers config published by the ingest to that device only', async () => {
    const ingest = await service('ingest', [])
    await ingest.client.publishAsync(deviceTopic('dev-b', 'config'), '{"interval_s":120}', { qos: 1, retain: true })
    const target = await connectDevice('dev-b')
    const got: Received[] = []
    target.on('message', (topic, payload) => got.push({ topic, payload: payload.toString() }))
    expect(await grantedQos(target, deviceTopic('dev-b', 'config'))).toBe(1)
    await waitFor(() => got.length === 1, 'the retained config')
    expect(got[0]).toEqual({ topic: deviceTopic('dev-b', 'config'), payload: '{"interval_s":120}' })
  })

  it('lets the api role subscribe for live updates but not publish config', async () => {
    const api = await service('api', [ALL_TELEMETRY_FILTER, ALL_STATUS_FILTER])
    expect(await grantedQos(api.client, 'aq/v1/devices/+/config')).toBe(128)
    api.client.publish(deviceTopic('dev-a', 'config'), '{"interval_s":10}', { qos: 0 })
    await closedByBroker(api.client, 'the gateway to close the api after a config publish')
  })

  it('refuses oversized payloads, whether within the frame headroom or far beyond it', async () => {
    const ingest = await service('ingest', [ALL_TELEMETRY_FILTER])
    const before = gateway.stats().oversized
    // Just over the contract limit (core MAX_PAYLOAD_BYTES = 128 KiB): refused by authorizePublish.
    const justOver = await connectDevice('dev-big')
    justOver.publish(deviceTopic('dev-big', 'telemetry'), Buffer.alloc(128 * 1024 + 1, 0x20), { qos: 0 })
    await closedByBroker(justOver, 'the gateway to close dev-big after 128 KiB + 1')
    // 4 MiB: cut off by the frame guard as soon as the packet header arrives.
    const huge = await connectDevice('dev-big')
    huge.publish(deviceTopic('dev-big', 'telemetry'), Buffer.alloc(4 * 1024 * 1024, 0x20), { qos: 0 })
    await closedByBroker(huge, 'the gateway to close dev-big after 4 MiB')
    expect(gateway.stats().devices['dev-big']?.lastReason).toBe('packet_too_large')
    expect(gateway.stats().oversized - before).toBe(2)
    expect(gateway.stats().devices['dev-big']?.oversized).toBe(2)
    // The largest allowed payload still goes through.
    const atLimit = await connectDevice('dev-big')
    await atLimit.publishAsync(deviceTopic('dev-big', 'telemetry'), Buffer.alloc(128 * 1024, 0x20), { qos: 1 })
    await waitFor(() => ingest.got.length === 1, 'the payload at the limit')
    expect(ingest.got[0]?.payload.length).toBe(128 * 1024)
  })

  it('refuses a flood beyond the token bucket while the next device still works', async () => {
    const ingest = await service('ingest', [ALL_TELEMETRY_FILTER])
    const flooder = await connectDevice('dev-flood')
    const topic = deviceTopic('dev-flood', 'telemetry')
    for (let i = 0; i < PUBLISH_BURST + 50; i++) flooder.publish(topic, reading(i), { qos: 0 })
    await closedByBroker(flooder, 'the gateway to close the flooding device')
    await waitFor(() => ingest.got.length >= PUBLISH_BURST, 'the burst to be delivered')
    const stats = gateway.stats()
    expect(stats.rateLimited).toBeGreaterThanOrEqual(1)
    expect(stats.devices['dev-flood']?.rateLimited).toBeGreaterThanOrEqual(1)
    // Reconnecting does not refill the bucket (the clock is frozen).
    const again = await connectDevice('dev-flood')
    again.publish(topic, reading(9999), { qos: 0 })
    await closedByBroker(again, 'the gateway to close the flooding device again')
    // Another device is unaffected.
    const next = await connectDevice('dev-b')
    await next.publishAsync(deviceTopic('dev-b', 'telemetry'), reading(3), { qos: 1 })
    await waitFor(() => ingest.got.some((m) => m.topic === deviceTopic('dev-b', 'telemetry')), 'dev-b’s reading')
    expect(ingest.got.filter((m) => m.topic === topic)).toHaveLength(PUBLISH_BURST)
  })

  it('disconnects a device revoked by another process within the poll interval', async () => {
    const device = await connectDevice('dev-live-revoke')
    const started = Date.now()
    await otherProcess.registry.revokeDevice('dev-live-revoke', now)
    await closedByBroker(device, 'the revoked device to be disconnected')
    const elapsed = Date.now() - started
    expect(elapsed).toBeLessThan(POLL_MS * 10)
    expect(gateway.stats().registryDisconnects).toBeGreaterThanOrEqual(1)
    // And it cannot come back, not even from the verification cache.
    expect(
      await connackCode({
        clientId: 'dev-live-revoke',
        username: 'dev-live-revoke',
        password: secretOf('dev-live-revoke'),
      }),
    ).toBe(5)
  })

  it('disconnects a device whose secret was rotated, and refuses the old secret', async () => {
    const device = await connectDevice('dev-rotate')
    const newSecret = 'rotated-secret-0123456789abcdef'
    await otherProcess.registry.setDeviceSecret('dev-rotate', await hashSecret(newSecret))
    await closedByBroker(device, 'the device with a rotated secret to be disconnected')
    expect(
      await connackCode({ clientId: 'dev-rotate', username: 'dev-rotate', password: secretOf('dev-rotate') }),
    ).toBe(4)
    now += 60_000 // past the back-off the failed attempt started
    expect(await connackCode({ clientId: 'dev-rotate', username: 'dev-rotate', password: newSecret })).toBe(0)
  })

  it('accepts a will only on the device’s own status topic, and publishes it when the device vanishes', async () => {
    const willOn = (topic: string) => ({
      topic,
      payload: Buffer.from('{"state":"offline"}'),
      qos: 1 as const,
      retain: true,
    })
    const base = { clientId: 'dev-will', username: 'dev-will', password: secretOf('dev-will') }
    expect(await connackCode({ ...base, will: willOn(deviceTopic('dev-a', 'status')) })).toBe(5)
    expect(await connackCode({ ...base, will: willOn(deviceTopic('dev-will', 'telemetry')) })).toBe(5)
    expect(await connackCode({ ...base, will: willOn(deviceTopic('dev-will', 'config')) })).toBe(5)
    expect(gateway.stats().devices['dev-will']?.lastReason).toBe('will_not_permitted')

    const watcher = await service('api', [ALL_STATUS_FILTER])
    const device = await connectDevice('dev-will', { will: willOn(deviceTopic('dev-will', 'status')) })
    await device.publishAsync(deviceTopic('dev-will', 'status'), '{"state":"online"}', { qos: 1, retain: true })
    device.stream.destroy() // vanish without DISCONNECT
    await waitFor(() => watcher.got.length === 2, 'the online status and then the will')
    expect(watcher.got.map((m) => m.payload)).toEqual(['{"state":"online"}', '{"state":"offline"}'])
  })

  it('refuses a will from a service', async () => {
    const code = await connackCode({
      clientId: 'svc.ingest-with-will',
      username: 'svc.ingest',
      password: secretOf('svc.ingest'),
      will: {
        topic: deviceTopic('dev-a', 'status'),
        payload: Buffer.from('{"state":"offline"}'),
        qos: 1,
        retain: true,
      },
    })
    expect(code).toBe(5)
  })

  it('does not let a device pass itself off as a service, or a service take a device’s session', async () => {
    // A device's secret under a service's username.
    expect(await connackCode({ clientId: 'svc.ingest', username: 'svc.ingest', password: secretOf('dev-a') })).toBe(4)
    // A device's own login with a service-looking client id.
    expect(await connackCode({ clientId: 'svc.ingest', username: 'dev-a', password: secretOf('dev-a') })).toBe(2)
    // A service account named like a registered device: the device wins, the account's secret opens nothing
    // and the device's login carries no service role.
    const serviceSecret = 'shadowed-service-secret-0123456789'
    await storage.registry.upsertServiceAccount({
      username: 'dev-shadow',
      role: 'ingest',
      secretHash: await hashSecret(serviceSecret),
    })
    const shadow = await connectDevice('dev-shadow')
    expect(await grantedQos(shadow, ALL_TELEMETRY_FILTER)).toBe(128)
    expect(await connackCode({ clientId: 'shadow-service', username: 'dev-shadow', password: serviceSecret })).toBe(2)
    expect(await connackCode({ clientId: 'dev-shadow', username: 'dev-shadow', password: serviceSecret })).toBe(4)
    // A service may not use a device's id as its client id (that would end the device's session).
    const device = await connectDevice('dev-a')
    expect(await connackCode({ clientId: 'dev-a', username: 'svc.api', password: secretOf('svc.api') })).toBe(2)
    expect(device.connected).toBe(true)
  })

  it('keeps each service on client ids of its own, so no service can take over the ingest session', async () => {
    // The ingest keeps a persistent session with telemetry queued while it is away.
    const ingest = await connect({
      clientId: 'svc.ingest',
      clean: false,
      username: 'svc.ingest',
      password: secretOf('svc.ingest'),
    })
    expect(await grantedQos(ingest, ALL_TELEMETRY_FILTER)).toBe(1)
    await ingest.endAsync()
    const sender = await connectDevice('dev-b')
    await sender.publishAsync(deviceTopic('dev-b', 'telemetry'), reading(42), { qos: 1 })
    // Another service trying the ingest's client id (clean or not) is refused, and so is any id
    // that is not its own username or username-suffix.
    for (const clean of [true, false]) {
      expect(
        await connackCode({ clientId: 'svc.ingest', clean, username: 'svc.api', password: secretOf('svc.api') }),
      ).toBe(2)
    }
    expect(await connackCode({ clientId: 'legacy-client', username: 'svc.api', password: secretOf('svc.api') })).toBe(2)
    expect(await connackCode({ clientId: 'svc.api-2', username: 'svc.api', password: secretOf('svc.api') })).toBe(0)
    // The queued reading is still there for the ingest.
    const got: string[] = []
    const back = track(
      mqtt.connect(url(), {
        reconnectPeriod: 0,
        clientId: 'svc.ingest',
        clean: false,
        username: 'svc.ingest',
        password: secretOf('svc.ingest'),
      }),
    )
    back.on('message', (topic) => got.push(topic))
    await waitFor(() => got.length === 1, 'the queued reading to reach the returning ingest')
    expect(got).toEqual([deviceTopic('dev-b', 'telemetry')])
  })

  it('gives an unauthenticated connection nothing: SUBSCRIBE before CONNECT closes it unanswered', async () => {
    const socket = connectTcp(gateway.port, '127.0.0.1')
    const received: Buffer[] = []
    socket.on('data', (chunk: Buffer) => received.push(chunk))
    socket.on('error', () => {})
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()))
    const topic = Buffer.from(ALL_TELEMETRY_FILTER)
    // SUBSCRIBE, packet id 1, one filter at QoS 1 [MQTT-3.8].
    const body = Buffer.concat([Buffer.from([0, 1, 0, topic.length]), topic, Buffer.from([1])])
    socket.write(Buffer.concat([Buffer.from([0x82, body.length]), body]))
    await new Promise<void>((resolve) => socket.once('close', () => resolve()))
    expect(Buffer.concat(received).length).toBe(0)
  })

  it('closes a connection that declares a huge CONNECT, before authenticating it', async () => {
    const before = gateway.stats().oversized
    const socket = connectTcp(gateway.port, '127.0.0.1')
    socket.on('error', () => {})
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()))
    // CONNECT declaring 200 MiB of remaining length; only the header is sent.
    socket.write(Buffer.from([0x10, 0x80, 0x80, 0x80, 0x64]))
    await new Promise<void>((resolve) => socket.once('close', () => resolve()))
    expect(gateway.stats().oversized - before).toBe(1)
  })

  it('fails to start on a port in use, leaving nothing running', async () => {
    await expect(
      startGateway({ log: silentLogger(), registry: storage.registry, host: '127.0.0.1', port: gateway.port }),
    ).rejects.toMatchObject({ code: 'LISTEN_FAILED' })
  })

  it('closes cleanly, ending every connection', async () => {
    const extra = await startGateway({ log: silentLogger(), registry: storage.registry, host: '127.0.0.1', port: 0 })
    const client = track(
      await mqtt.connectAsync(`mqtt://127.0.0.1:${extra.port}`, {
        reconnectPeriod: 0,
        clientId: 'dev-a',
        username: 'dev-a',
        password: secretOf('dev-a'),
      }),
    )
    const idle = connectTcp(extra.port, '127.0.0.1')
    idle.on('error', () => {})
    const idleClosed = new Promise<void>((resolve) => idle.once('close', () => resolve()))
    await sleep(20)
    await extra.close()
    await idleClosed
    await waitFor(() => !client.connected, 'the client to see the gateway close')
  })
})
