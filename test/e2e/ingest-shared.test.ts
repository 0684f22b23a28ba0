import { join } from 'node:path'
import { deviceTopic, HOUR_MS } from '@skolluft/core'
import { generateSecret } from '@skolluft/runtime'
import { openSqliteStorage, type Storage } from '@skolluft/storage'
import { tempDir, waitFor } from '@skolluft/testkit'
import mqtt, { type MqttClient } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mosquittoAvailable, startMosquitto, type TestMosquitto } from '../support/mosquitto.ts'
import {
  addTestDevice,
  expectEachStoredOnce,
  spawnCli,
  startTestPlatform,
  TEST_SITES,
  type TestPlatform,
  waitForExit,
} from '../support/platform.ts'
import { connectDevices, publishReadings, sentTo, settled } from '../support/shared-stream.ts'

/**
 * Ingest scale-out through an MQTT shared subscription on Mosquitto 2 (Debian's 2.0.11): two `skolluft ingest`
 * processes with the same INGEST_SHARED_GROUP and their own INGEST_CLIENT_ID share one stream of QoS 1
 * telemetry; every reading is stored exactly once, and each worker handles a share (counted in Mosquitto's own
 * packet log, "Sending PUBLISH to <client id>").
 *
 * Then one worker is SIGKILLed mid-stream. What Mosquitto 2.0.11 does, measured here: it keeps the dead
 * worker's unacknowledged in-flight messages in its persistent session and goes on giving that session its
 * turn in the strict round robin (src/subs.c `subs__shared_process` rotates over all members, connected or
 * not), queueing every other message for it. Neither is handed to the surviving worker: while the killed one
 * is down, readings are missing. When it comes back with the same client id (as a supervisor restarts it),
 * Mosquitto resends the in-flight messages with DUP set, then the queue, and nothing is lost.
 */
const GROUP = 'ingest'
const WORKER_A = 'svc.ingest-a'
const WORKER_B = 'svc.ingest-b'
const INGEST_USER = 'svc.ingest'
const DEVICES = 4
const SHARE_READINGS_PER_DEVICE = 400
const KILL_READINGS_PER_DEVICE = 600
describe.runIf(mosquittoAvailable())('ingest workers sharing a Mosquitto shared subscription', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>
  let storage: Storage
  let broker: TestMosquitto
  const ingestPassword = generateSecret()
  const shareDevices: { deviceId: string; password: string }[] = []
  const killDevices: { deviceId: string; password: string }[] = []
  const clients: MqttClient[] = []
  const children: ReturnType<typeof spawnCli>[] = []
  const workers = new Map<string, ReturnType<typeof spawnCli>>()

  const startWorker = async (clientId: string) => {
    const child = spawnCli(['ingest'], {
      DATA_DIR: dir.path,
      MQTT_URL: broker.url,
      MQTT_USERNAME: INGEST_USER,
      MQTT_PASSWORD: ingestPassword,
      INGEST_SHARED_GROUP: GROUP,
      INGEST_CLIENT_ID: clientId,
    })
    children.push(child)
    workers.set(clientId, child)
    await waitFor(() => child.output().includes('ingest subscribed'), `ingest worker ${clientId} to subscribe`, {
      timeoutMs: 20_000,
    }).catch((error: unknown) => {
      throw new Error(`${String(error)}; its output: ${child.output().slice(-2000)}`)
    })
    return child
  }

  beforeAll(async () => {
    dir = await tempDir()
    storage = openSqliteStorage({ path: join(dir.path, 'skolluft.db') })
    await storage.registry.upsertSites(TEST_SITES.map((s) => ({ ...s })))
    for (let i = 0; i < DEVICES; i += 1) {
      shareDevices.push(await addTestDevice(storage, `dev-share-${i}`, 'site-a'))
      killDevices.push(await addTestDevice(storage, `dev-kill-${i}`, 'site-b'))
    }
    broker = await startMosquitto({
      devices: [...shareDevices, ...killDevices].map((d) => ({ username: d.deviceId, password: d.password })),
      passwords: { ingest: ingestPassword },
      logPackets: true,
    })
    await Promise.all([startWorker(WORKER_A), startWorker(WORKER_B)])
  }, 45_000)

  afterAll(async () => {
    for (const c of clients) await c.endAsync(true)
    for (const child of children) {
      child.kill('SIGKILL')
      await waitForExit(child)
    }
    await broker?.close()
    await storage?.close()
    await dir?.cleanup()
  })

  it('stores each reading exactly once, both workers handle a share, and a device cannot join the group', {
    timeout: 40_000,
  }, async () => {
    const devices = await connectDevices(broker.url, shareDevices)
    clients.push(...devices)
    // A device (or a stolen device credential) tries to join the ingest's group, over MQTT 5 and 3.1.1, and to read
    // the fleet's telemetry. With the acl_file configuration Mosquitto 2.0.11 granted all of it and these two
    // members took two turns in three, each refused at delivery: a third of the stream reached the ingest
    // (measured). The dynamic-security rules refuse the SUBSCRIBE ([MQTT-3.9.3]: 0x87 in v5, 0x80 in 3.1.1).
    const rogue = shareDevices[0] ?? { deviceId: '', password: '' }
    const rogueIds = [`${rogue.deviceId}-rogue-5`, `${rogue.deviceId}-rogue-4`]
    for (const [clientId, protocolVersion, failure] of [
      [rogueIds[0], 5, 0x87],
      [rogueIds[1], 4, 0x80],
    ] as const) {
      const client = await mqtt.connectAsync(broker.url, {
        clientId,
        username: rogue.deviceId,
        password: rogue.password,
        protocolVersion,
        reconnectPeriod: 0,
      })
      clients.push(client)
      for (const filter of [
        `$share/${GROUP}/aq/v1/devices/+/telemetry`,
        `$share/${GROUP}/#`,
        'aq/v1/devices/+/telemetry',
        deviceTopic(shareDevices[1]?.deviceId ?? '', 'telemetry'),
        '#',
      ]) {
        await expect(client.subscribeAsync(filter, { qos: 1 }), filter).rejects.toMatchObject({
          packet: { granted: [failure] },
        })
      }
    }
    const start = Date.now() - 3 * 24 * HOUR_MS
    const total = DEVICES * SHARE_READINGS_PER_DEVICE
    await publishReadings(devices, shareDevices, start, 0, SHARE_READINGS_PER_DEVICE)
    const count = () => storage.readings.countReadings({ siteId: 'site-a' })
    await waitFor(async () => (await count()) === total, 'every reading of the stream', { timeoutMs: 30_000 })
    expect(await settled(count, 10_000)).toBe(total)
    await expectEachStoredOnce(
      storage,
      shareDevices.map((d) => d.deviceId),
      SHARE_READINGS_PER_DEVICE,
      start,
    )
    // Strict rotation over two members: each is sent half of the stream, none of it twice. (Mosquitto's stdout
    // is block-buffered in a pipe, so the last lines may not be here yet: hence "more than a quarter".)
    const log = broker.log()
    expect(sentTo(log, WORKER_A, false)).toBeGreaterThan(total / 4)
    expect(sentTo(log, WORKER_B, false)).toBeGreaterThan(total / 4)
    expect(sentTo(log, WORKER_A, true) + sentTo(log, WORKER_B, true)).toBe(0)
    expect(rogueIds.map((id) => sentTo(log, id, false))).toEqual([0, 0])
  })

  it('loses nothing when a worker is SIGKILLed mid-stream and restarted with its client id', {
    timeout: 50_000,
  }, async () => {
    const devices = await connectDevices(broker.url, killDevices)
    clients.push(...devices)
    const start = Date.now() - 2 * 24 * HOUR_MS
    const total = DEVICES * KILL_READINGS_PER_DEVICE
    const count = () => storage.readings.countReadings({ siteId: 'site-b' })

    const streaming = publishReadings(devices, killDevices, start, 0, KILL_READINGS_PER_DEVICE)
    await waitFor(async () => (await count()) >= total / 4, 'a quarter to be stored', { timeoutMs: 20_000 })
    const killed = workers.get(WORKER_A)
    killed?.kill('SIGKILL')
    if (killed !== undefined) await waitForExit(killed)
    const atKill = await count()
    await streaming // Mosquitto acknowledged every publish
    const beforeKillLog = broker.log().length

    // Worker B alone: its own share gets stored, the killed worker's share waits in the killed worker's session.
    // Were it handed to B, nothing would be missing; in the rotation about half of what came after the kill is.
    const whileDown = await settled(count, 20_000)
    expect(total - whileDown).toBeGreaterThan((total - atKill) / 4)
    expect(sentTo(broker.log(), WORKER_B, true)).toBe(0) // nothing of A's was resent to B

    // A supervisor restarts the worker with the same client id: the session hands over what it kept.
    await startWorker(WORKER_A)
    await waitFor(async () => (await count()) === total, 'every reading after the restart', { timeoutMs: 20_000 })
    expect(await settled(count, 10_000)).toBe(total)
    await expectEachStoredOnce(
      storage,
      killDevices.map((d) => d.deviceId),
      KILL_READINGS_PER_DEVICE,
      start,
    )
    const afterRestart = broker.log().slice(beforeKillLog)
    // The in-flight messages come back with DUP set, the queued ones as first sends.
    expect(sentTo(afterRestart, WORKER_A, true)).toBeGreaterThan(0)
    expect(sentTo(afterRestart, WORKER_A, false)).toBeGreaterThan(0)

    for (const clientId of [WORKER_A, WORKER_B]) {
      const child = workers.get(clientId)
      child?.kill('SIGTERM')
      if (child !== undefined) expect(await waitForExit(child)).toBe(0)
    }
  })
})

describe('a shared group against the built-in gateway (aedes, no shared subscriptions)', () => {
  let platform: TestPlatform

  beforeAll(async () => {
    platform = await startTestPlatform()
  })

  afterAll(async () => {
    await platform?.close()
  })

  it('stops the ingest with an explanation instead of subscribing to nothing', async () => {
    const child = spawnCli(['ingest'], {
      DATA_DIR: platform.dataDir,
      MQTT_URL: platform.mqttUrl,
      MQTT_USERNAME: platform.ingestCredential.username,
      MQTT_PASSWORD: platform.ingestCredential.password,
      INGEST_SHARED_GROUP: GROUP,
      INGEST_CLIENT_ID: `${platform.ingestCredential.username}-a`,
    })
    const code = await waitForExit(child)
    expect(code).not.toBe(0)
    expect(child.output()).toContain('INGEST_SHARED_GROUP needs a broker with MQTT shared subscriptions')
    expect(platform.gateway.stats().deniedSubscribes).toBe(1)
  })

  it('refuses an invalid group name before connecting', async () => {
    const child = spawnCli(['ingest'], {
      DATA_DIR: platform.dataDir,
      MQTT_URL: platform.mqttUrl,
      MQTT_USERNAME: platform.ingestCredential.username,
      MQTT_PASSWORD: platform.ingestCredential.password,
      INGEST_SHARED_GROUP: 'a/b',
    })
    expect(await waitForExit(child)).not.toBe(0)
    expect(child.output()).toContain('INGEST_SHARED_GROUP must be one MQTT topic level')
  })
})
