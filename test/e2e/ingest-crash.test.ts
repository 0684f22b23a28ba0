import { deviceTopic, HOUR_MS } from '@skolluft/core'
import { waitFor } from '@skolluft/testkit'
import mqtt, { type MqttClient } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  addTestDevice,
  expectEachStoredOnce,
  spawnCli,
  startTestPlatform,
  type TestPlatform,
  waitForExit,
} from '../support/platform.ts'

/**
 * Nothing lost, nothing doubled: the ingest runs as a real child process (`skolluft ingest`) and is
 * killed with SIGKILL while devices stream QoS 1 readings through the gateway. After a restart
 * every published reading is stored exactly once: the raw count matches, and the hourly
 * aggregates (which would double-count a reading stored twice) add up to the same number.
 */
const DEVICES = 5
const READINGS_PER_DEVICE = 600
const TOTAL = DEVICES * READINGS_PER_DEVICE
const BAD_EVERY = 20

describe('ingest crash (SIGKILL) in the middle of a stream', () => {
  let platform: TestPlatform
  const clients: MqttClient[] = []
  const children: ReturnType<typeof spawnCli>[] = []

  beforeAll(async () => {
    // The stream is faster than a real device's pace, so the per-device rate limit is raised for this test.
    platform = await startTestPlatform({ publishRatePerS: 10_000, publishBurst: 10_000 })
  })

  afterAll(async () => {
    for (const c of clients) await c.endAsync(true)
    for (const child of children) {
      child.kill('SIGKILL')
      await waitForExit(child)
    }
    await platform?.close()
  })

  const startIngestProcess = () => {
    const child = spawnCli(['ingest'], {
      DATA_DIR: platform.dataDir,
      MQTT_URL: platform.mqttUrl,
      MQTT_USERNAME: platform.ingestCredential.username,
      MQTT_PASSWORD: platform.ingestCredential.password,
    })
    children.push(child)
    return child
  }

  it('stores every reading exactly once across a kill and restart', { timeout: 120_000 }, async () => {
    const devices: { deviceId: string; password: string }[] = []
    for (let i = 0; i < DEVICES; i += 1) devices.push(await addTestDevice(platform.storage, `dev-crash-${i}`, 'site-a'))

    let ingest = startIngestProcess()
    await waitFor(() => ingest.output().includes('ingest subscribed'), 'the ingest child to subscribe', {
      timeoutMs: 20_000,
    })

    for (const d of devices) {
      clients.push(
        await mqtt.connectAsync(platform.mqttUrl, {
          clientId: d.deviceId,
          username: d.deviceId,
          password: d.password,
          reconnectPeriod: 0,
        }),
      )
    }
    const start = Date.now() - 2 * 24 * HOUR_MS
    const publishAll = async (from: number, to: number) => {
      for (let i = from; i < to; i += 1) {
        const ts = new Date(start + i * 60_000).toISOString()
        await Promise.all(
          clients.map((c, k) =>
            c.publishAsync(
              deviceTopic(devices[k]?.deviceId ?? '', 'telemetry'),
              JSON.stringify({ ts, seq: i, pm25: i % 50, no2: 10 + k }),
              { qos: 1 },
            ),
          ),
        )
        if (i % BAD_EVERY === 0) {
          // A malformed message now and then: its rejection must be counted once, even if redelivered.
          await clients[0]?.publishAsync(
            deviceTopic(devices[0]?.deviceId ?? '', 'telemetry'),
            JSON.stringify({ ts: 'not-a-date', seq: i }),
            { qos: 1 },
          )
        }
      }
    }

    // First part of the stream, then kill the ingest while the rest keeps coming.
    const streaming = publishAll(0, READINGS_PER_DEVICE)
    await waitFor(async () => (await platform.storage.readings.countReadings()) >= TOTAL / 5, 'a fifth to be stored', {
      timeoutMs: 30_000,
    })
    ingest.kill('SIGKILL')
    await waitForExit(ingest)
    const atKill = await platform.storage.readings.countReadings()
    expect(atKill).toBeLessThan(TOTAL) // the kill really happened mid-stream
    await streaming // the gateway accepted everything; the ingest's session holds what it missed

    ingest = startIngestProcess()
    await waitFor(
      async () => (await platform.storage.readings.countReadings()) === TOTAL,
      'every reading after restart',
      {
        timeoutMs: 60_000,
      },
    )
    // Give any stray redelivery time to land, then check nothing was doubled.
    await new Promise((resolve) => setTimeout(resolve, 500))
    expect(await platform.storage.readings.countReadings()).toBe(TOTAL)
    await expectEachStoredOnce(
      platform.storage,
      devices.map((d) => d.deviceId),
      READINGS_PER_DEVICE,
      start,
    )
    const bad = (await platform.storage.rejects.counts()).find((c) => c.code === 'bad_timestamp')
    expect(bad?.count).toBe(READINGS_PER_DEVICE / BAD_EVERY)
    ingest.kill('SIGTERM')
    expect(await waitForExit(ingest)).toBe(0)
  })
})
