import { join } from 'node:path'
import { HOUR_MS } from '@skolluft/core'
import { generateSecret } from '@skolluft/runtime'
import { openSqliteStorage, type Storage } from '@skolluft/storage'
import { tempDir, waitFor } from '@skolluft/testkit'
import mqtt, { type IConnackPacket, type MqttClient } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mosquittoAvailable, startMosquitto, type TestMosquitto } from '../support/mosquitto.ts'
import { addTestDevice, expectEachStoredOnce, spawnCli, TEST_SITES, waitForExit } from '../support/platform.ts'
import { connectDevices, publishReadings, settled } from '../support/shared-stream.ts'

/**
 * Retiring an ingest worker of a shared group for good with `skolluft ingest --leave` (Mosquitto 2.0.11). Worker B
 * of two is stopped; a stream is published and B's turns queue in its persistent session (see ingest-shared.test.ts).
 * `--leave` with B's client id stores that queue and ends the session. A second stream, published while the leave
 * drains, must not reach B's session (it unsubscribed first), and a third, after it, goes to A alone.
 */
const GROUP = 'ingest'
const WORKER_A = 'svc.ingest-a'
const WORKER_B = 'svc.ingest-b'
const INGEST_USER = 'svc.ingest'
const DEVICES = 4
/** Readings per device of each of the three streams. */
const PER_STREAM = 150

describe.runIf(mosquittoAvailable())('skolluft ingest --leave', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>
  let storage: Storage
  let broker: TestMosquitto
  const ingestPassword = generateSecret()
  const devices: { deviceId: string; password: string }[] = []
  const clients: MqttClient[] = []
  const children: ReturnType<typeof spawnCli>[] = []

  const ingestEnv = (clientId: string, group: string | null = GROUP) => ({
    DATA_DIR: dir.path,
    MQTT_URL: broker.url,
    MQTT_USERNAME: INGEST_USER,
    MQTT_PASSWORD: ingestPassword,
    INGEST_CLIENT_ID: clientId,
    ...(group === null ? {} : { INGEST_SHARED_GROUP: group }),
  })
  const spawnIngest = (clientId: string, args: string[] = []) => {
    const child = spawnCli(['ingest', ...args], ingestEnv(clientId))
    children.push(child)
    return child
  }
  const startWorker = async (clientId: string) => {
    const child = spawnIngest(clientId)
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
    for (let i = 0; i < DEVICES; i += 1) devices.push(await addTestDevice(storage, `dev-leave-${i}`, 'site-a'))
    broker = await startMosquitto({
      devices: devices.map((d) => ({ username: d.deviceId, password: d.password })),
      passwords: { ingest: ingestPassword },
    })
  }, 30_000)

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

  it('refuses without INGEST_SHARED_GROUP', async () => {
    const child = spawnCli(['ingest', '--leave'], ingestEnv(WORKER_B, null))
    children.push(child)
    expect(await waitForExit(child)).not.toBe(0)
    expect(child.output()).toContain('INGEST_SHARED_GROUP: required with --leave')
  })

  it('stores the stopped worker’s queued share, ends its session, and new readings go to the other worker', {
    timeout: 60_000,
  }, async () => {
    const [workerA, workerB] = await Promise.all([startWorker(WORKER_A), startWorker(WORKER_B)])
    clients.push(...(await connectDevices(broker.url, devices)))
    const start = Date.now() - 2 * 24 * HOUR_MS
    const perStream = DEVICES * PER_STREAM
    const count = () => storage.readings.countReadings({ siteId: 'site-a' })

    // B stops (as for a scale-down); its session keeps its turns: about half of stream 1 waits there.
    workerB.kill('SIGTERM')
    expect(await waitForExit(workerB)).toBe(0)
    await publishReadings(clients, devices, start, 0, PER_STREAM)
    const storedByA = await settled(count, 20_000)
    const queuedForB = perStream - storedByA
    expect(queuedForB).toBeGreaterThan(perStream / 4)

    // Retire B. Stream 2 is published while the leave drains B's session: none of it may go there.
    const leaving = spawnIngest(WORKER_B, ['--leave'])
    await waitFor(() => leaving.output().includes('draining the session'), 'the leave to unsubscribe', {
      timeoutMs: 20_000,
    }).catch((error: unknown) => {
      throw new Error(`${String(error)}; its output: ${leaving.output().slice(-2000)}`)
    })
    await publishReadings(clients, devices, start, PER_STREAM, 2 * PER_STREAM)
    expect(await waitForExit(leaving), leaving.output().slice(-2000)).toBe(0)
    // It stored exactly B's queue: what stream 1 left unstored, nothing of stream 2.
    expect(leaving.output()).toContain(`stored ${queuedForB} messages from its session (${queuedForB} new readings`)

    // Stream 3, after the leave: the group is A alone, so all of it gets stored (a turn left to B would be missing).
    // Mosquitto's packet log is no use here: its stdout is block-buffered in a pipe, so lines arrive late.
    await publishReadings(clients, devices, start, 2 * PER_STREAM, 3 * PER_STREAM)
    await waitFor(async () => (await count()) === 3 * perStream, 'every reading of the three streams', {
      timeoutMs: 20_000,
    })
    expect(await settled(count, 10_000)).toBe(3 * perStream)
    await expectEachStoredOnce(
      storage,
      devices.map((d) => d.deviceId),
      3 * PER_STREAM,
      start,
    )

    // B's session is gone: a persistent connection with its id finds none.
    const probe = mqtt.connect(broker.url, {
      clientId: WORKER_B,
      username: INGEST_USER,
      password: ingestPassword,
      clean: false,
      reconnectPeriod: 0,
    })
    clients.push(probe)
    const connack = await new Promise<IConnackPacket>((resolve, reject) => {
      probe.once('connect', resolve)
      probe.once('error', reject)
    })
    expect(connack.sessionPresent).toBe(false)

    workerA.kill('SIGTERM')
    expect(await waitForExit(workerA)).toBe(0)
  })
})
