import { join } from 'node:path'
import { ALL_TELEMETRY_FILTER, deviceTopic } from '@skolluft/core'
import { hashSecret, silentLogger } from '@skolluft/runtime'
import { openSqliteSpool, openSqliteStorage, type Storage, type TelemetrySpool } from '@skolluft/storage'
import { tempDir, waitFor } from '@skolluft/testkit'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { type Gateway, type GatewayOptions, startGateway } from './gateway.ts'

/**
 * Integration: the gateway with a real spool file. A message is kept from before its PUBACK until the
 * ingest acknowledges it; what the ingest never acknowledged is published again at the next start.
 */
const DEVICE = 'dev-spool'
const DEVICE_SECRET = 'secret-of-dev-spool-0123456789abcdef'
const INGEST_SECRET = 'secret-of-svc.ingest-0123456789'
const API_SECRET = 'secret-of-svc.api-0123456789'
const INGEST_CLIENT_ID = 'svc.ingest'
const TOPIC = deviceTopic(DEVICE, 'telemetry')

describe('gateway telemetry spool', () => {
  let dir: { path: string; cleanup: () => Promise<void> }
  let storage: Storage
  let spool: TelemetrySpool
  const gateways: Gateway[] = []
  const clients: MqttClient[] = []

  beforeEach(async () => {
    dir = await tempDir('skolluft-spool-')
    storage = openSqliteStorage({ path: join(dir.path, 'skolluft.db') })
    spool = openSqliteSpool({ path: join(dir.path, 'gateway-spool.db') })
    const { registry } = storage
    await registry.upsertSites([
      { id: 'school-1', name: 'Testskolan', kind: 'school', municipality: 'Lund', lat: 55.7, lon: 13.19 },
    ])
    await registry.addDevice(
      {
        id: DEVICE,
        model: 'test-sensor',
        sensors: ['pm25'],
        intervalS: 60,
        secretHash: await hashSecret(DEVICE_SECRET),
        placement: { siteId: 'school-1', from: 0, indoor: false, heightM: 2 },
      },
      0,
    )
    await registry.upsertServiceAccount({
      username: 'svc.ingest',
      role: 'ingest',
      secretHash: await hashSecret(INGEST_SECRET),
    })
    await registry.upsertServiceAccount({ username: 'svc.api', role: 'api', secretHash: await hashSecret(API_SECRET) })
  })

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.endAsync(true)))
    for (const g of gateways.splice(0)) await g.close()
    await spool.close()
    await storage.close()
    await dir.cleanup()
  })

  async function start(extra: Partial<GatewayOptions> = {}): Promise<Gateway> {
    const gateway = await startGateway({
      log: silentLogger(),
      registry: storage.registry,
      host: '127.0.0.1',
      port: 0,
      durableSubscribers: [{ clientId: INGEST_CLIENT_ID, filter: ALL_TELEMETRY_FILTER }],
      spool,
      ...extra,
    })
    gateways.push(gateway)
    return gateway
  }

  async function connect(gateway: Gateway, options: IClientOptions): Promise<MqttClient> {
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${gateway.port}`, {
      reconnectPeriod: 0,
      connectTimeout: 5000,
      ...options,
    })
    client.on('error', () => {})
    clients.push(client)
    return client
  }

  /** A subscriber that acknowledges what it receives (MQTT.js acks after the message handler). */
  async function subscriber(gateway: Gateway, role: 'ingest' | 'api'): Promise<{ got: string[] }> {
    const options =
      role === 'ingest'
        ? { clientId: INGEST_CLIENT_ID, username: 'svc.ingest', password: INGEST_SECRET, clean: false }
        : { clientId: 'svc.api-live', username: 'svc.api', password: API_SECRET }
    const client = await connect(gateway, options)
    const got: string[] = []
    client.on('message', (_topic, payload) => got.push(payload.toString('utf8')))
    await client.subscribeAsync(ALL_TELEMETRY_FILTER, { qos: 1 })
    return { got }
  }

  const device = (gateway: Gateway) => connect(gateway, { clientId: DEVICE, username: DEVICE, password: DEVICE_SECRET })
  const reading = (seq: number) => JSON.stringify({ ts: new Date(Date.UTC(2026, 10, 30, 8, seq)).toISOString(), seq })

  it('keeps telemetry before the PUBACK and deletes it once the ingest acknowledges it', async () => {
    const gateway = await start()
    const live = await subscriber(gateway, 'api')
    const dev = await device(gateway)
    for (let seq = 0; seq < 5; seq += 1) await dev.publishAsync(TOPIC, reading(seq), { qos: 1 })
    // Acknowledged to the device, seen (and acknowledged) by the api subscriber: still kept for the ingest.
    await waitFor(() => live.got.length === 5, 'the api subscriber to receive everything')
    expect(gateway.stats().spoolEntries).toBe(5)
    expect((await spool.pending({ limit: 10 })).map((e) => e.payload.toString('utf8'))).toEqual(
      [0, 1, 2, 3, 4].map(reading),
    )
    // Status is not spooled, and neither is QoS 0 telemetry (no PUBACK, no promise to keep).
    await dev.publishAsync(deviceTopic(DEVICE, 'status'), JSON.stringify({ online: true }), { qos: 1 })
    await dev.publishAsync(TOPIC, reading(9), { qos: 0 })
    expect(gateway.stats().spoolEntries).toBe(5)

    const ingest = await subscriber(gateway, 'ingest')
    await waitFor(() => ingest.got.length >= 5, 'the ingest to receive the queued telemetry')
    await waitFor(() => gateway.stats().spoolEntries === 0, 'the acknowledged entries to be deleted')
    await dev.publishAsync(TOPIC, reading(5), { qos: 1 })
    await waitFor(() => gateway.stats().spoolEntries === 0 && ingest.got.length >= 6, 'the next one to go too')
  })

  it('publishes what the ingest never acknowledged again at the next start, before accepting devices', async () => {
    const first = await start()
    const dev = await device(first)
    for (let seq = 0; seq < 3; seq += 1) await dev.publishAsync(TOPIC, reading(seq), { qos: 1 })
    await dev.endAsync(true)
    // The broker's in-memory queue for the ingest goes with this gateway; the spool does not.
    await first.close()

    const second = await start()
    expect(second.stats().spoolEntries).toBe(3)
    const ingest = await subscriber(second, 'ingest')
    await waitFor(() => ingest.got.length === 3, 'the ingest to receive the replayed telemetry')
    expect(ingest.got).toEqual([0, 1, 2].map(reading))
    await waitFor(() => second.stats().spoolEntries === 0, 'the replayed entries to be deleted once acknowledged')
  })

  it('refuses telemetry when the spool is full: no PUBACK, the device keeps the reading', async () => {
    const gateway = await start({ limits: { maxSpoolEntries: 2 } })
    const dev = await device(gateway)
    await dev.publishAsync(TOPIC, reading(0), { qos: 1 })
    await dev.publishAsync(TOPIC, reading(1), { qos: 1 })
    const third = dev.publishAsync(TOPIC, reading(2), { qos: 1 })
    await waitFor(() => !dev.connected, 'the gateway to close the connection')
    expect(gateway.stats().spoolRefusals).toBe(1)
    expect(gateway.stats().spoolEntries).toBe(2)
    // MQTT.js keeps the unacknowledged message in its outgoing store; the promise never resolves here.
    const settled = await Promise.race([
      third.then(() => 'acked'),
      new Promise((r) => setTimeout(() => r('pending'), 200)),
    ])
    expect(settled).not.toBe('acked')
  })
})
