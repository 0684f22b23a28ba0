import type { AddressInfo } from 'node:net'
import { createServer, type Server } from 'node:net'
import { deviceTopic, formatTelemetryReading, HOUR_MS, type RejectCode } from '@skolluft/core'
import { hashSecret, silentLogger } from '@skolluft/runtime'
import { openSqliteStorage, type Storage } from '@skolluft/storage'
import { tempDir, waitFor } from '@skolluft/testkit'
import { Aedes } from 'aedes'
import mqtt, { type MqttClient } from 'mqtt'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { type Ingest, startIngest } from './ingest.ts'

/**
 * The ingest against a real MQTT broker and a real SQLite file. The broker here is a plain aedes
 * without authentication, because these tests are about validation and storage; authentication
 * and the whole path through the skolluft gateway are tested in test/e2e.
 */
describe('ingest (plain aedes broker, real SQLite)', () => {
  let broker: Aedes
  let server: Server
  let url: string
  let storage: Storage
  let ingest: Ingest | undefined
  let device: MqttClient | undefined
  let cleanup: () => Promise<void>
  const now = Date.parse('2026-11-29T08:00:00Z')
  const clock = () => now

  beforeEach(async () => {
    const dir = await tempDir()
    cleanup = dir.cleanup
    storage = openSqliteStorage({ path: `${dir.path}/skolluft.db` })
    await storage.registry.upsertSites([
      {
        id: 'site-a',
        name: 'Site A (demo)',
        kind: 'preschool',
        municipality: 'Lund',
        lat: 55.7,
        lon: 13.19,
        demo: true,
      },
      { id: 'site-b', name: 'Site B (demo)', kind: 'school', municipality: 'Lund', lat: 55.71, lon: 13.2, demo: true },
    ])
    await storage.registry.addDevice(
      {
        id: 'dev-1',
        model: 'test',
        sensors: ['pm1', 'pm25', 'pm10', 'no2', 'temp', 'rh'],
        intervalS: 60,
        secretHash: await hashSecret('not-used-here'),
        placement: { siteId: 'site-a', from: 0, indoor: false, heightM: 2 },
      },
      0,
    )
    broker = await Aedes.createBroker()
    server = createServer(broker.handle)
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    url = `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`
    ingest = await startIngest({
      log: silentLogger(),
      storage,
      mqtt: { url, username: 'svc.ingest', password: 'x' },
      clock,
      registryPollMs: 0,
    })
    device = await mqtt.connectAsync(url, { clientId: 'dev-1', reconnectPeriod: 0 })
  })

  afterEach(async () => {
    await device?.endAsync()
    await ingest?.close()
    await new Promise<void>((resolve) => broker.close(() => resolve()))
    await new Promise<void>((resolve) => server.close(() => resolve()))
    await storage.close()
    await cleanup()
  })

  const publish = (payload: unknown, deviceId = 'dev-1') =>
    device?.publishAsync(
      deviceTopic(deviceId, 'telemetry'),
      typeof payload === 'string' ? payload : JSON.stringify(payload),
      { qos: 1 },
    )

  it('stores a valid reading with its site, and updates latest and the hourly aggregate', async () => {
    await publish({
      ts: '2026-11-29T07:45:00Z',
      seq: 1042,
      pm1: 3.1,
      pm25: 7.4,
      pm10: 12.9,
      no2: 18.2,
      temp: 4.5,
      rh: 81.2,
    })
    await waitFor(async () => (await storage.readings.countReadings()) === 1, 'the reading to be stored')
    const latest = await storage.readings.latestBySite()
    expect(latest.get('site-a')?.values).toEqual({ pm1: 3.1, pm25: 7.4, pm10: 12.9, no2: 18.2, temp: 4.5, rh: 81.2 })
    const hours = await storage.readings.aggregateSeries({
      siteId: 'site-a',
      metric: 'pm25',
      from: now - 2 * HOUR_MS,
      to: now,
      limit: 10,
      every: '1h',
    })
    expect(hours).toEqual([
      {
        t: '2026-11-29T07:00:00.000Z',
        mean: 7.4,
        min: 7.4,
        max: 7.4,
        n: 1,
        expected: 60,
        coverage: 1 / 60,
        valid: false,
      },
    ])
  })

  it('converts no2_ppb with the EU factor', async () => {
    await publish({ ts: '2026-11-29T07:45:00Z', no2_ppb: 10 })
    await waitFor(async () => (await storage.readings.countReadings()) === 1, 'the reading to be stored')
    const [point] = await storage.readings.rawSeries({
      deviceId: 'dev-1',
      metric: 'no2',
      from: 0,
      to: now,
      limit: 10,
    })
    expect(point?.value).toBeCloseTo(19.125, 9)
  })

  it('rejects each malformed message with a reason, counts it, and still stores the next good one', async () => {
    const bad: [unknown, RejectCode][] = [
      ['{"ts":', 'bad_json'],
      ['NaN', 'bad_json'],
      ['[1,2]', 'not_an_object'],
      [{ ts: '2026-11-29T07:45:00Z', pm25: '7.4' }, 'wrong_type'],
      [{ pm25: 7.4 }, 'missing_ts'],
      [{ ts: '2026-11-29 07:45', pm25: 1 }, 'bad_timestamp'],
      [{ ts: '2026-12-01T07:45:00Z', pm25: 7.4 }, 'future_timestamp'],
      [{ ts: '2026-11-29T07:45:00Z', rh: 140 }, 'out_of_range'],
      [{ ts: '2026-11-29T07:45:00Z' }, 'no_measurement'],
      [
        {
          readings: Array.from({ length: 501 }, (_, i) => ({ ts: new Date(now - i * 60_000).toISOString(), pm25: 1 })),
        },
        'batch_too_big',
      ],
      ['x'.repeat(200 * 1024), 'payload_too_large'],
    ]
    for (const [payload] of bad) await publish(payload)
    await publish({ ts: '2026-11-29T07:46:00Z', pm25: 5 })
    await waitFor(async () => (await storage.readings.countReadings()) === 1, 'the good reading after the bad ones')
    const entries = await storage.rejects.list({ limit: 100 })
    expect(entries.map((e) => e.code).reverse()).toEqual(bad.map(([, code]) => code))
    for (const e of entries) {
      expect(e.deviceId).toBe('dev-1')
      expect(e.message.length).toBeGreaterThan(5)
    }
    const counts = await storage.rejects.counts()
    expect(counts.find((c) => c.code === 'bad_json')?.count).toBe(2)
    expect(ingest?.stats().rejected).toBe(bad.length)
  })

  it('rejects telemetry from an unregistered device without storing it', async () => {
    const stranger = await mqtt.connectAsync(url, { clientId: 'ghost', reconnectPeriod: 0 })
    await stranger.publishAsync(
      deviceTopic('ghost', 'telemetry'),
      JSON.stringify({ ts: '2026-11-29T07:45:00Z', pm25: 1 }),
      {
        qos: 1,
      },
    )
    await stranger.endAsync()
    await waitFor(async () => (await storage.rejects.list({ limit: 1 })).length === 1, 'the reject to be recorded')
    expect((await storage.rejects.list({ limit: 1 }))[0]?.code).toBe('unknown_device')
    expect(await storage.readings.countReadings()).toBe(0)
  })

  it('stores a replayed batch once, keeps the good readings of a partly bad batch, and fills hourly aggregates late', async () => {
    const start = now - 6 * HOUR_MS
    const readings = Array.from({ length: 300 }, (_, i) =>
      formatTelemetryReading({ ts: start + i * 60_000, seq: i, values: { pm25: 10 + (i % 5), pm10: 20 } }),
    )
    const withBad = [...readings.slice(0, 150), { ts: 'yesterday', pm25: 1 }, ...readings.slice(150)]
    await publish({ readings: withBad.slice(0, 200) })
    await publish({ readings: withBad.slice(200) })
    await waitFor(async () => (await storage.readings.countReadings()) === 300, '300 readings')
    // The device did not get our PUBACK (say) and replays everything.
    await publish({ readings: readings.slice(0, 300) })
    await waitFor(() => (ingest?.stats().duplicates ?? 0) === 300, 'the replay to be seen as duplicates')
    expect(await storage.readings.countReadings()).toBe(300)
    const hours = await storage.readings.aggregateSeries({
      siteId: 'site-a',
      metric: 'pm25',
      from: start,
      to: now,
      limit: 100,
      every: '1h',
    })
    expect(hours.reduce((sum, h) => sum + h.n, 0)).toBe(300)
    expect(hours.filter((h) => h.valid)).toHaveLength(5)
    const rejects = await storage.rejects.list({ limit: 10 })
    expect(rejects).toHaveLength(1)
    expect(rejects[0]).toMatchObject({ code: 'bad_timestamp', index: 150 })
  })

  it('attributes readings to the site where the device stood at the reading time', async () => {
    const moveAt = now - HOUR_MS
    await storage.registry.moveDevice('dev-1', { siteId: 'site-b', from: moveAt, indoor: false, heightM: 2 })
    await publish({
      readings: [
        { ts: new Date(moveAt - 60_000).toISOString(), pm25: 1 },
        { ts: new Date(moveAt + 60_000).toISOString(), pm25: 2 },
      ],
    })
    await waitFor(async () => (await storage.readings.countReadings()) === 2, 'both readings')
    expect(await storage.readings.countReadings({ siteId: 'site-a' })).toBe(1)
    expect(await storage.readings.countReadings({ siteId: 'site-b' })).toBe(1)
  })
})
