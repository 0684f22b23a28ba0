import { once } from 'node:events'
import { type AddressInfo, createServer, type Server } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { deviceTopic, MAX_BATCH_READINGS, parseTelemetry } from '@skolluft/core'
import { silentLogger } from '@skolluft/runtime'
import { waitFor } from '@skolluft/testkit'
import { Aedes, type Client } from 'aedes'
import { connect, type MqttClient } from 'mqtt'
import { afterEach, describe, expect, it } from 'vitest'
import { type FaultRates, faultProfile, NO_FAULTS, outagesBetween } from './faults.ts'
import { createFleet, type Fleet, type SimDevice } from './fleet.ts'

/**
 * These tests run the simulator against a PLAIN aedes broker (no auth, no skolluft gateway): they are
 * about what the simulated devices do on the wire, not about the gateway, which has its own tests.
 */

interface Broker {
  readonly url: string
  /** Broker-side client objects by client id, to cut a device's connection. */
  readonly clients: Map<string, Client>
  close(): Promise<void>
}

async function startBroker(): Promise<Broker> {
  const broker = new Aedes()
  await broker.listen()
  const clients = new Map<string, Client>()
  broker.on('client', (client) => clients.set(client.id, client))
  const server: Server = createServer(broker.handle)
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  return {
    url: `mqtt://127.0.0.1:${port}`,
    clients,
    close: async () => {
      await new Promise<void>((resolve) => broker.close(() => resolve()))
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

interface Received {
  readonly topic: string
  readonly qos: number
  readonly retain: boolean
  readonly json: unknown
}

interface Reading {
  readonly deviceId: string
  readonly ts: number
  readonly seq: number | null
  readonly batch: boolean
}

/** A real MQTT.js subscriber on every device topic. */
async function subscriber(
  url: string,
): Promise<{ client: MqttClient; messages: Received[]; readings: () => Reading[] }> {
  const client = connect(url, { clientId: `test-sub-${Math.random().toString(16).slice(2)}`, reconnectPeriod: 0 })
  const messages: Received[] = []
  await new Promise<void>((resolve) => client.once('connect', () => resolve()))
  client.on('message', (topic, payload, packet) => {
    messages.push({
      topic,
      qos: packet.qos,
      retain: packet.retain,
      json: JSON.parse(payload.toString('utf8')) as unknown,
    })
  })
  await client.subscribeAsync(['aq/v1/devices/+/telemetry', 'aq/v1/devices/+/status'], { qos: 1 })
  const readings = () =>
    messages.flatMap((m) => {
      const [, , , deviceId = '', kind] = m.topic.split('/')
      if (kind !== 'telemetry') return []
      // Far-future "now": with timeScale > 1 the simulated clock runs ahead of the wall clock.
      const parsed = parseTelemetry(JSON.stringify(m.json), Date.now() + 365 * 86_400_000)
      if (!parsed.ok) throw new Error(`subscriber got an invalid payload: ${parsed.code} ${parsed.message}`)
      expect(parsed.rejected).toEqual([])
      return parsed.readings.map((r) => ({ deviceId, ts: r.ts, seq: r.seq, batch: parsed.batch }))
    })
  return { client, messages, readings }
}

function device(n: number): SimDevice {
  return {
    deviceId: `sim-demo-${n}`,
    password: 'not-checked-by-plain-aedes',
    siteId: `demo-lund-f-00${n}`,
    lat: 55.7,
    lon: 13.19,
    kind: 'preschool',
  }
}

/** Seqs of one device, sorted; asserting they are 0..n-1 proves nothing lost and nothing doubled. */
function seqsOf(readings: readonly Reading[], deviceId: string): number[] {
  return readings
    .filter((r) => r.deviceId === deviceId)
    .map((r) => r.seq ?? -1)
    .sort((a, b) => a - b)
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i)

let cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup()
  cleanups = []
})

async function setup(
  devices: SimDevice[],
  options: { timeScale: number; faults?: FaultRates; clock?: () => number; seed?: number },
) {
  const broker = await startBroker()
  cleanups.push(() => broker.close())
  const sub = await subscriber(broker.url)
  cleanups.push(() => sub.client.endAsync())
  const fleet: Fleet = createFleet({
    log: silentLogger(),
    mqttUrl: broker.url,
    devices,
    intervalS: 60,
    faults: options.faults ?? NO_FAULTS,
    timeScale: options.timeScale,
    reconnectPeriodMs: 300,
    stopFlushTimeoutMs: 3000,
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.seed === undefined ? {} : { seed: options.seed }),
  })
  cleanups.push(() => fleet.stop())
  return { broker, sub, fleet }
}

describe('simulated fleet against a plain aedes broker (the test is about the simulator)', () => {
  it('publishes QoS 1 readings on each device topic, retains online status, and the will fires on a socket kill', async () => {
    const devices = [device(1), device(2)]
    // 60 s interval at 600× = a reading every 100 ms.
    const { broker, sub, fleet } = await setup(devices, { timeScale: 600 })
    await fleet.start()
    await waitFor(
      () => devices.every((d) => sub.readings().filter((r) => r.deviceId === d.deviceId).length >= 5),
      'five readings per device',
    )

    for (const d of devices) {
      const telemetry = sub.messages.filter((m) => m.topic === deviceTopic(d.deviceId, 'telemetry'))
      expect(telemetry.every((m) => m.qos === 1 && !m.retain)).toBe(true)
      const times = sub
        .readings()
        .filter((r) => r.deviceId === d.deviceId)
        .map((r) => r.ts)
      // A first reading at boot (within the interval), then on the device's own grid: exactly one
      // interval apart, in whole seconds.
      const gaps = times.slice(1).map((t, i) => t - (times[i] ?? 0))
      expect(gaps[0]).toBeGreaterThan(0)
      expect(gaps[0]).toBeLessThanOrEqual(60_000)
      expect(gaps.slice(1)).toEqual(gaps.slice(1).map(() => 60_000))
      expect((times[0] ?? 1) % 1000).toBe(0)
    }

    // A subscriber arriving later gets the retained online status.
    const late = connect(broker.url, { reconnectPeriod: 0 })
    cleanups.push(() => late.endAsync())
    const retained: Received[] = []
    late.on('message', (topic, payload, packet) =>
      retained.push({
        topic,
        qos: packet.qos,
        retain: packet.retain,
        json: JSON.parse(payload.toString('utf8')) as unknown,
      }),
    )
    await late.subscribeAsync(deviceTopic('sim-demo-1', 'status'), { qos: 1 })
    const status = await waitFor(() => retained.find((m) => m.retain), 'retained status')
    expect(status.json).toMatchObject({ state: 'online' })

    // Kill device 1's socket from the broker side, between two readings (so no PUBACK is lost in flight).
    const before = sub.readings().filter((r) => r.deviceId === 'sim-demo-1').length
    await waitFor(() => sub.readings().filter((r) => r.deviceId === 'sim-demo-1').length > before, 'a fresh reading')
    await sleep(30)
    const killedAt = sub.messages.length
    broker.clients.get('sim-demo-1')?.conn.destroy()
    const will = await waitFor(
      () => sub.messages.slice(killedAt).find((m) => m.topic === deviceTopic('sim-demo-1', 'status')),
      'the last will on the status topic',
    )
    expect(will.json).toEqual({ state: 'offline' })
    expect(will.qos).toBe(1)
    // It reconnects by itself, says online again and replays what it measured meanwhile as a batch.
    await waitFor(
      () =>
        sub.messages
          .slice(killedAt)
          .some(
            (m) => m.topic === deviceTopic('sim-demo-1', 'status') && (m.json as { state?: string }).state === 'online',
          ),
      'online again',
    )
    await waitFor(() => sub.readings().some((r) => r.deviceId === 'sim-demo-1' && r.batch), 'a replayed batch')
    expect(fleet.stats().batches).toBeGreaterThanOrEqual(1)

    await fleet.stop()
    const stats = fleet.stats()
    expect(stats.connected).toBe(0)
    expect(stats.buffered).toBe(0)
    await waitFor(() => sub.readings().length >= stats.readings, 'every acknowledged reading at the subscriber')
    await waitFor(
      () =>
        devices.every(
          (d) =>
            (
              sub.messages.filter((m) => m.topic === deviceTopic(d.deviceId, 'status')).at(-1)?.json as {
                state?: string
              }
            )?.state === 'offline',
        ),
      'offline status of every device',
    )
    const readings = sub.readings()
    expect(readings.length).toBe(stats.readings)
    expect(stats.acked).toBe(stats.readings)
    for (const d of devices) {
      const count = readings.filter((r) => r.deviceId === d.deviceId).length
      expect(seqsOf(readings, d.deviceId)).toEqual(range(count))
      // stop() says offline itself (a clean disconnect suppresses the will).
      const last = sub.messages.filter((m) => m.topic === deviceTopic(d.deviceId, 'status')).at(-1)
      expect(last?.json).toEqual({ state: 'offline' })
    }
  })

  it('buffers readings through a simulated outage and replays them as batches: nothing lost, nothing doubled', async () => {
    const d = device(3)
    const seed = 5
    const faults: FaultRates = { ...NO_FAULTS, outage: 4 }
    // Find an outage of this device 10–25 simulated minutes long and start the clock 5 minutes before it.
    const profile = faultProfile(d.deviceId, faults, seed)
    const from = Date.now()
    const outage = outagesBetween(profile, from, from + 20 * 86_400_000).find(
      (w, i, all) =>
        w.end - w.start >= 10 * 60_000 &&
        w.end - w.start <= 25 * 60_000 &&
        (all[i + 1]?.start ?? Infinity) > w.end + 3_600_000,
    )
    expect(outage).toBeDefined()
    if (!outage) return
    const offset = outage.start - 5 * 60_000 - Date.now()
    const { sub, fleet } = await setup([d], { timeScale: 600, faults, seed, clock: () => Date.now() + offset })
    await fleet.start()

    await waitFor(() => fleet.stats().outages === 1, 'the outage to begin')
    const offline = await waitFor(
      () =>
        sub.messages.find(
          (m) => m.topic === deviceTopic(d.deviceId, 'status') && (m.json as { state?: string }).state === 'offline',
        ),
      'the will when the line is cut',
    )
    expect(offline.json).toEqual({ state: 'offline' })
    await waitFor(() => fleet.stats().buffered >= 5, 'readings piling up in the buffer')
    const receivedDuringOutage = sub.readings().length
    await sleep(300)
    expect(sub.readings().length).toBe(receivedDuringOutage)

    await waitFor(() => fleet.stats().batches >= 1 && fleet.stats().buffered <= 1, 'the replay after the outage', {
      timeoutMs: 20_000,
    })
    await fleet.stop()
    const stats = fleet.stats()
    await waitFor(() => sub.readings().length >= stats.readings, 'every acknowledged reading at the subscriber')
    const readings = sub.readings()
    expect(stats.outages).toBe(1)
    expect(stats.readings).toBe(readings.length)
    expect(seqsOf(readings, d.deviceId)).toEqual(range(stats.readings))
    const batched = readings.filter((r) => r.batch)
    expect(batched.length).toBeGreaterThanOrEqual(10)
    // What went out as a batch was measured during the outage.
    for (const r of batched) {
      expect(r.ts).toBeGreaterThanOrEqual(outage.start - 60_000)
      expect(r.ts).toBeLessThan(outage.end + 120_000)
    }
  })

  it('applies interval_s from its retained config topic', async () => {
    const d = device(4)
    const broker = await startBroker()
    cleanups.push(() => broker.close())
    const admin = connect(broker.url, { reconnectPeriod: 0 })
    cleanups.push(() => admin.endAsync())
    await new Promise<void>((resolve) => admin.once('connect', () => resolve()))
    await admin.publishAsync(deviceTopic(d.deviceId, 'config'), JSON.stringify({ interval_s: 120 }), {
      qos: 1,
      retain: true,
    })
    const sub = await subscriber(broker.url)
    cleanups.push(() => sub.client.endAsync())
    const fleet = createFleet({
      log: silentLogger(),
      mqttUrl: broker.url,
      devices: [d],
      faults: NO_FAULTS,
      timeScale: 600,
    })
    cleanups.push(() => fleet.stop())
    await fleet.start()
    // The boot reading and a few on the default 60 s grid may come before the retained config
    // arrives (how many depends on scheduling at 600× speed); from then on the gap is 120 s.
    const lastGaps = () => {
      const times = sub.readings().map((r) => r.ts)
      return times
        .slice(1)
        .map((t, i) => t - (times[i] ?? 0))
        .slice(-3)
    }
    await waitFor(() => sub.readings().length >= 6 && lastGaps().every((g) => g === 120_000), 'three 120 s gaps', {
      timeoutMs: 15_000,
    })
    expect(lastGaps()).toEqual([120_000, 120_000, 120_000])
    expect(sub.readings().length).toBeLessThan(40) // it switched to 120 s, not just produced many readings
  })

  it('backfills exactly days × 86400 / interval readings per device, as batches ending before the first live reading', async () => {
    const devices = [device(5), device(6), device(7)]
    const { sub, fleet } = await setup(devices, { timeScale: 1, faults: { ...NO_FAULTS, noise: 0.05, humidity: 1 } })
    await fleet.start()
    await waitFor(() => fleet.stats().connected === 3, 'three devices connected')
    const started = Date.now()
    const result = await fleet.backfill({ days: 1 })
    const ms = Date.now() - started
    expect(result.readings).toBe(3 * 1440)
    await waitFor(() => sub.readings().filter((r) => r.batch).length >= 3 * 1440, 'every backfilled reading')
    const batchMessages = sub.messages.filter(
      (m) => m.topic.endsWith('/telemetry') && typeof m.json === 'object' && m.json !== null && 'readings' in m.json,
    )
    expect(batchMessages.length).toBe(3 * Math.ceil(1440 / MAX_BATCH_READINGS))
    const now = Date.now()
    for (const d of devices) {
      const history = sub.readings().filter((r) => r.deviceId === d.deviceId && r.batch)
      const times = history.map((r) => r.ts).sort((a, b) => a - b)
      expect(times.length).toBe(1440)
      expect(new Set(times).size).toBe(1440)
      expect(times.slice(1).every((t, i) => t - (times[i] ?? 0) === 60_000)).toBe(true)
      // Ends one interval before the first live reading, a day long, and is plausible to a real ingest.
      expect(times.at(-1)).toBeLessThanOrEqual(now + 60_000)
      expect(now - (times[0] ?? 0)).toBeLessThanOrEqual(86_400_000 + 120_000)
      expect(history.every((r) => r.seq === null)).toBe(true)
    }
    expect(fleet.stats().backfilled).toBe(3 * 1440)
    expect(ms).toBeLessThan(10_000)
  })
})
