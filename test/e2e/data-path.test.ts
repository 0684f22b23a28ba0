import { createToken, startApi } from '@skolluft/api'
import { ALL_TELEMETRY_FILTER, deviceTopic, SiteFeatureCollection } from '@skolluft/core'
import { startIngest } from '@skolluft/ingest'
import { silentLogger } from '@skolluft/runtime'
import { waitFor } from '@skolluft/testkit'
import mqtt, { type MqttClient } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { addTestDevice, startTestPlatform, type TestPlatform } from '../support/platform.ts'

/**
 * The whole data path with every real part: a device logs in to the skolluft gateway over TCP,
 * publishes QoS 1 telemetry, the ingest (a service account) stores it in SQLite, and the API serves
 * it over HTTP.
 */
describe('data path: device → gateway → ingest → SQLite → API', () => {
  let platform: TestPlatform
  let ingestClose: () => Promise<void>
  let api: { port: number; close(): Promise<void> }
  let device: MqttClient
  let staffToken: string
  let creds: { deviceId: string; password: string }

  beforeAll(async () => {
    platform = await startTestPlatform()
    creds = await addTestDevice(platform.storage, 'dev-e2e-1', 'site-a')
    const ingest = await startIngest({
      log: silentLogger(),
      storage: platform.storage,
      mqtt: { url: platform.mqttUrl, ...platform.ingestCredential },
    })
    ingestClose = () => ingest.close()
    api = await startApi({
      log: silentLogger(),
      storage: platform.storage,
      host: '127.0.0.1',
      port: 0,
      // The map is public here; raw readings still need a role (a staff token below).
      options: { publicMap: true, mapSnapshotMaxAgeMs: 0 },
    })
    staffToken = (
      await createToken(
        { storage: platform.storage, clock: Date.now },
        { name: 'e2e', role: 'staff', sites: [], expiresInDays: 1 },
        null,
      )
    ).token
    device = await mqtt.connectAsync(platform.mqttUrl, {
      clientId: creds.deviceId,
      username: creds.deviceId,
      password: creds.password,
      reconnectPeriod: 0,
      clean: false,
    })
  })

  afterAll(async () => {
    await device?.endAsync()
    await ingestClose?.()
    await api?.close()
    await platform?.close()
  })

  it('serves a published reading as the site latest value and in its series', async () => {
    const ts = new Date(Math.floor(Date.now() / 60_000) * 60_000 - 60_000).toISOString()
    await device.publishAsync(
      deviceTopic(creds.deviceId, 'telemetry'),
      JSON.stringify({ ts, seq: 1, pm1: 3.1, pm25: 7.4, pm10: 12.9, no2: 18.2, temp: 4.5, rh: 81.2 }),
      { qos: 1 },
    )
    const base = `http://127.0.0.1:${api.port}`
    const collection = await waitFor(async () => {
      const res = await fetch(`${base}/api/v1/sites`)
      const body = SiteFeatureCollection.parse(await res.json())
      const site = body.features.find((f) => f.id === 'site-a')
      return site?.properties.latest ? body : undefined
    }, 'site-a to show the reading')
    expect(collection.features.map((f) => f.id).sort()).toEqual(['site-a', 'site-b'])
    const siteA = collection.features.find((f) => f.id === 'site-a')
    expect(siteA?.properties.demo).toBe(true)
    expect(siteA?.properties.latest?.values).toMatchObject({ pm25: 7.4, no2: 18.2, rh: 81.2 })
    expect(collection.features.find((f) => f.id === 'site-b')?.properties.latest).toBeNull()

    const from = new Date(Date.parse(ts) - 3_600_000).toISOString()
    const to = new Date(Date.parse(ts) + 60_000).toISOString()
    const rawUrl = `${base}/api/v1/sites/site-a/series?metric=pm25&every=raw&from=${from}&to=${to}`
    expect((await fetch(rawUrl)).status).toBe(401)
    const raw = await fetch(rawUrl, { headers: { authorization: `Bearer ${staffToken}` } })
    expect(raw.status).toBe(200)
    const rawBody = (await raw.json()) as { points: { t: string; value: number }[] }
    expect(rawBody.points).toEqual([expect.objectContaining({ t: new Date(ts).toISOString(), value: 7.4 })])
  })

  it('keeps a device out of another device topic, and the ingest never sees the forged reading', async () => {
    const other = await addTestDevice(platform.storage, 'dev-e2e-2', 'site-b')
    const before = await platform.storage.readings.countReadings({ deviceId: other.deviceId })
    // dev-e2e-1 pretends to be dev-e2e-2; the gateway refuses (and disconnects it, MQTT 3.1.1 has no negative PUBACK).
    const forger = await mqtt.connectAsync(platform.mqttUrl, {
      clientId: creds.deviceId,
      username: creds.deviceId,
      password: creds.password,
      reconnectPeriod: 0,
    })
    forger.publish(
      deviceTopic(other.deviceId, 'telemetry'),
      JSON.stringify({ ts: new Date().toISOString(), pm25: 99 }),
      {
        qos: 1,
      },
    )
    await waitFor(() => platform.gateway.stats().deniedPublishes >= 1, 'the gateway to refuse the forged publish')
    await forger.endAsync(true)
    expect(await platform.storage.readings.countReadings({ deviceId: other.deviceId })).toBe(before)
  })
})

describe('a gateway that (re)starts before the ingest', () => {
  it('queues telemetry for the ingest session it recreated at start, and the ingest stores it on connecting', async () => {
    const platform = await startTestPlatform({}, [{ clientId: 'svc.ingest', filter: ALL_TELEMETRY_FILTER }])
    try {
      const creds = await addTestDevice(platform.storage, 'dev-early', 'site-b')
      const device = await mqtt.connectAsync(platform.mqttUrl, {
        clientId: creds.deviceId,
        username: creds.deviceId,
        password: creds.password,
        reconnectPeriod: 0,
      })
      // The device replays its buffer before any ingest has connected to this gateway.
      const start = Date.now() - 3_600_000
      const readings = Array.from({ length: 30 }, (_, i) => ({
        ts: new Date(start + i * 60_000).toISOString(),
        pm25: i,
      }))
      await device.publishAsync(deviceTopic(creds.deviceId, 'telemetry'), JSON.stringify({ readings }), { qos: 1 })
      await device.endAsync()
      const ingest = await startIngest({
        log: silentLogger(),
        storage: platform.storage,
        mqtt: { url: platform.mqttUrl, ...platform.ingestCredential },
      })
      try {
        await waitFor(
          async () => (await platform.storage.readings.countReadings({ deviceId: creds.deviceId })) === 30,
          'the readings published before the ingest connected',
        )
      } finally {
        await ingest.close()
      }
    } finally {
      await platform.close()
    }
  })
})
