import { join } from 'node:path'
import { CreateTokenBody, createToken, type RunningApi, startApi } from '@skolluft/api'
import { deviceTopic, HOUR_MS } from '@skolluft/core'
import { type Ingest, startIngest } from '@skolluft/ingest'
import { silentLogger } from '@skolluft/runtime'
import {
  createHttpRegistry,
  createHttpRejectLog,
  openSqliteStorage,
  type RejectRecord,
  type Storage,
  StorageError,
} from '@skolluft/storage'
import { tempDir, waitFor } from '@skolluft/testkit'
import mqtt, { type MqttClient } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import {
  addTestDevice,
  spawnCli,
  startTestPlatform,
  TEST_SITES,
  type TestPlatform,
  waitForExit,
} from '../support/platform.ts'
import {
  startVictoriaMetrics,
  type TestVictoriaMetrics,
  victoriaMetricsAvailable,
} from '../support/victoria-metrics.ts'

/**
 * An ingest on another machine than the SQLite file (issue 6): its registry and reject log are the API's, over real
 * HTTP with a token of role service (REGISTRY_URL), and only its readings are its own (a SQLite file here, standing
 * in for InfluxDB: the point is the metadata over HTTP). Telemetry comes through the real skolluft gateway.
 *
 * The gateway and the API keep separate registries on purpose. In a deployment they share one file, and the gateway
 * would refuse an unknown or revoked device at its door before the ingest ever saw a message; here the gateway lets
 * such a device in (it is registered in the gateway's copy), so what is tested is the ingest's own check against the
 * registry it reads over HTTP.
 */
const POLL_MS = 200
/** Two hours ago, on the hour: readings within the telemetry window, and in the past (VictoriaMetrics exports to now). */
const START = Math.floor(Date.now() / HOUR_MS) * HOUR_MS - 2 * HOUR_MS

const RejectsResponse = z.object({
  rejects: z.array(z.object({ device: z.string().nullable(), code: z.string(), message: z.string() })),
})

let platform: TestPlatform
let apiDir: Awaited<ReturnType<typeof tempDir>>
let apiStorage: Storage
let api: RunningApi
let ingestDir: Awaited<ReturnType<typeof tempDir>>
/** The ingest machine's own store: only its readings are used. */
let ingestStorage: Storage
let ingest: Ingest
let serviceToken: string
let caretakerToken: string
const devices: Record<'a' | 'b' | 'ghost', { deviceId: string; password: string }> = {
  a: { deviceId: '', password: '' },
  b: { deviceId: '', password: '' },
  ghost: { deviceId: '', password: '' },
}
const clients: MqttClient[] = []

async function connect(device: { deviceId: string; password: string }): Promise<MqttClient> {
  const client = await mqtt.connectAsync(platform.mqttUrl, {
    clientId: device.deviceId,
    username: device.deviceId,
    password: device.password,
    reconnectPeriod: 0,
  })
  clients.push(client)
  return client
}

function publish(client: MqttClient, deviceId: string, i: number): Promise<unknown> {
  const ts = new Date(START + i * 60_000).toISOString()
  return client.publishAsync(deviceTopic(deviceId, 'telemetry'), JSON.stringify({ ts, seq: i, pm25: 5 + i }), {
    qos: 1,
  })
}

async function apiRejects(): Promise<z.infer<typeof RejectsResponse>['rejects']> {
  const res = await fetch(`http://127.0.0.1:${api.port}/api/v1/rejects?limit=1000`, {
    headers: { authorization: `Bearer ${caretakerToken}` },
  })
  expect(res.status).toBe(200)
  return RejectsResponse.parse(await res.json()).rejects
}

beforeAll(async () => {
  platform = await startTestPlatform()
  devices.a = await addTestDevice(platform.storage, 'dev-remote-a', 'site-a')
  devices.b = await addTestDevice(platform.storage, 'dev-remote-b', 'site-b')
  devices.ghost = await addTestDevice(platform.storage, 'dev-remote-ghost', 'site-a')

  apiDir = await tempDir('skolluft-remote-api-')
  apiStorage = openSqliteStorage({ path: join(apiDir.path, 'skolluft.db') })
  await apiStorage.registry.upsertSites(TEST_SITES.map((s) => ({ ...s })))
  // The API's registry knows a and b, not the ghost.
  await addTestDevice(apiStorage, 'dev-remote-a', 'site-a')
  await addTestDevice(apiStorage, 'dev-remote-b', 'site-b')
  api = await startApi({ log: silentLogger(), storage: apiStorage, host: '127.0.0.1', port: 0 })
  const ctx = { storage: apiStorage, clock: Date.now }
  serviceToken = (await createToken(ctx, CreateTokenBody.parse({ name: 'ingest, host b', role: 'service' }), null))
    .token
  caretakerToken = (await createToken(ctx, CreateTokenBody.parse({ name: 'caretaker', role: 'caretaker' }), null)).token

  ingestDir = await tempDir('skolluft-remote-ingest-')
  ingestStorage = openSqliteStorage({ path: join(ingestDir.path, 'readings.db') })
  const remote = { url: `http://127.0.0.1:${api.port}`, token: serviceToken }
  ingest = await startIngest({
    log: silentLogger(),
    storage: {
      readings: ingestStorage.readings,
      registry: createHttpRegistry({ ...remote, log: silentLogger(), maxAgeMs: POLL_MS }),
      rejects: createHttpRejectLog(remote),
    },
    mqtt: { url: platform.mqttUrl, ...platform.ingestCredential },
    registryPollMs: POLL_MS,
  })
})

afterAll(async () => {
  for (const client of clients) await client.endAsync(true)
  await ingest?.close()
  await api?.close()
  await ingestStorage?.close()
  await apiStorage?.close()
  await platform?.close()
  await ingestDir?.cleanup()
  await apiDir?.cleanup()
})

describe('an ingest whose registry and rejects are the API’s, over HTTP', () => {
  it('stores a registered device’s readings at the site the API’s registry places it', async () => {
    const client = await connect(devices.a)
    for (let i = 0; i < 5; i += 1) await publish(client, devices.a.deviceId, i)
    await waitFor(
      async () => (await ingestStorage.readings.countReadings({ deviceId: devices.a.deviceId })) === 5,
      'five readings of dev-remote-a',
    )
    expect(await ingestStorage.readings.countReadings({ siteId: 'site-a' })).toBe(5)
    // Nothing was written to the API's machine, and nothing was rejected.
    expect(await apiStorage.readings.countReadings()).toBe(0)
    expect(ingest.stats().rejected).toBe(0)
  })

  it('rejects a device the API does not know, and the reject is in the API’s GET /api/v1/rejects', async () => {
    const client = await connect(devices.ghost)
    await publish(client, devices.ghost.deviceId, 0)
    const found = await waitFor(
      async () => (await apiRejects()).find((r) => r.device === devices.ghost.deviceId),
      'the ghost device in the API reject log',
    )
    expect(found.code).toBe('unknown_device')
    expect(await ingestStorage.readings.countReadings({ deviceId: devices.ghost.deviceId })).toBe(0)
    // The ingest machine's own reject log is untouched: the rejects went to the API.
    expect(await ingestStorage.rejects.list({ limit: 10 })).toEqual([])
  })

  it('refuses a device revoked in the API’s registry within the poll interval', async () => {
    const client = await connect(devices.b)
    await publish(client, devices.b.deviceId, 0)
    await waitFor(
      async () => (await ingestStorage.readings.countReadings({ deviceId: devices.b.deviceId })) === 1,
      'the first reading of dev-remote-b',
    )
    const revokedAt = Date.now()
    expect(await apiStorage.registry.revokeDevice(devices.b.deviceId, revokedAt)).toBe(true)
    // Readings keep coming, one every 50 ms, until the API's reject log shows the revocation.
    let i = 1
    const refused = await waitFor(
      async () => {
        await publish(client, devices.b.deviceId, i)
        i += 1
        return (await apiRejects()).find((r) => r.device === devices.b.deviceId && r.code === 'revoked_device')
      },
      'a revoked_device reject of dev-remote-b',
      { intervalMs: 50 },
    )
    expect(refused).toBeDefined()
    const took = Date.now() - revokedAt
    // The HTTP registry's age bound plus the ingest's own poll, with room for a loaded machine.
    expect(took).toBeLessThan(2 * POLL_MS + 1_500)
    const stored = await ingestStorage.readings.countReadings({ deviceId: devices.b.deviceId })
    await publish(client, devices.b.deviceId, i)
    await waitFor(
      async () => (await apiRejects()).filter((r) => r.device === devices.b.deviceId).length >= 2,
      'a second revoked_device reject',
    )
    expect(await ingestStorage.readings.countReadings({ deviceId: devices.b.deviceId })).toBe(stored)
  })
})

describe('the HTTP registry and reject log', () => {
  it('keep using the last registry while the API is down, and fail as STORAGE_UNAVAILABLE when it is too old', async () => {
    const dir = await tempDir('skolluft-remote-down-')
    const storage = openSqliteStorage({ path: join(dir.path, 'skolluft.db') })
    await storage.registry.upsertSites(TEST_SITES.map((s) => ({ ...s })))
    await addTestDevice(storage, 'dev-down', 'site-a')
    const down = await startApi({ log: silentLogger(), storage, host: '127.0.0.1', port: 0 })
    const ctx = { storage, clock: Date.now }
    const token = (await createToken(ctx, CreateTokenBody.parse({ name: 's', role: 'service' }), null)).token
    let now = 0
    const registry = createHttpRegistry({
      url: `http://127.0.0.1:${down.port}`,
      token,
      log: silentLogger(),
      clock: () => now,
      maxAgeMs: 1_000,
      maxStaleMs: 60_000,
    })
    try {
      expect((await registry.getDevice('dev-down'))?.intervalS).toBe(60)
      expect((await registry.getDevice('dev-down'))?.secretHash).toBe('')
      await down.close()
      now = 30_000
      // Down, but the registry read 30 s ago is recent enough.
      expect((await registry.getDevice('dev-down'))?.id).toBe('dev-down')
      now = 61_001
      const error = await registry.revision().then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(error).toBeInstanceOf(StorageError)
      expect(error).toMatchObject({ code: 'STORAGE_UNAVAILABLE' })
    } finally {
      await down.close().catch(() => undefined)
      await storage.close()
      await dir.cleanup()
    }
  })

  it('map a token without the permission to STORAGE_UNAVAILABLE (held, not dropped) with a hint', async () => {
    const ctx = { storage: apiStorage, clock: Date.now }
    const researcher = (await createToken(ctx, CreateTokenBody.parse({ name: 'r', role: 'researcher' }), null)).token
    const url = `http://127.0.0.1:${api.port}`
    const registry = createHttpRegistry({ url, token: researcher, log: silentLogger() })
    await expect(registry.revision()).rejects.toMatchObject({
      code: 'STORAGE_UNAVAILABLE',
      message: expect.stringMatching(/403 forbidden.*--role service/),
    })
    const rejects = createHttpRejectLog({ url, token: researcher })
    await expect(
      rejects.record([{ at: 0, deviceId: null, topic: 't', code: 'bad_topic', message: 'm', index: null }]),
    ).rejects.toMatchObject({ code: 'STORAGE_UNAVAILABLE' })
  })

  it('send a call again as a redelivery after a failed attempt, so a commit whose answer was lost counts once', async () => {
    const url = `http://127.0.0.1:${api.port}`
    let failNext = true
    // A proxy that passes the request on and then loses the answer, once.
    const lossy: typeof fetch = async (input, init) => {
      const response = await fetch(input, init)
      if (failNext) {
        failNext = false
        throw new TypeError('connection reset after the request was sent')
      }
      return response
    }
    const rejects = createHttpRejectLog({ url, token: serviceToken, fetch: lossy })
    const records: RejectRecord[] = [
      {
        at: 1,
        deviceId: 'dev-lossy',
        topic: 'aq/v1/devices/dev-lossy/telemetry',
        code: 'bad_json',
        message: 'x',
        index: null,
        messageKey: 'lossy-1',
      },
    ]
    await expect(rejects.record(records)).rejects.toMatchObject({ code: 'STORAGE_UNAVAILABLE' })
    await rejects.record(records)
    const logged = (await apiStorage.rejects.list({ limit: 1000 })).filter((r) => r.deviceId === 'dev-lossy')
    expect(logged).toHaveLength(1)
    const counts = (await apiStorage.rejects.counts()).filter((c) => c.deviceId === 'dev-lossy')
    expect(counts).toEqual([expect.objectContaining({ code: 'bad_json', count: 1 })])
  })

  it('batch the calls made while a request is out into one request', async () => {
    const url = `http://127.0.0.1:${api.port}`
    let requests = 0
    const counting: typeof fetch = (input, init) => {
      requests += 1
      return fetch(input, init)
    }
    const rejects = createHttpRejectLog({ url, token: serviceToken, fetch: counting })
    const calls = Array.from({ length: 50 }, (_, i) =>
      rejects.record([
        {
          at: 2,
          deviceId: 'dev-batch',
          topic: 'aq/v1/devices/dev-batch/telemetry',
          code: 'bad_json',
          message: 'x',
          index: null,
          messageKey: `batch-${i}`,
        },
      ]),
    )
    await Promise.all(calls)
    // The first call goes alone; the 49 made meanwhile share the next request.
    expect(requests).toBe(2)
    expect((await apiStorage.rejects.list({ limit: 1000 })).filter((r) => r.deviceId === 'dev-batch')).toHaveLength(50)
  })
})

describe('skolluft ingest with REGISTRY_URL', () => {
  it('refuses REGISTRY_URL without STORE=influxdb, and without a token, naming the settings', async () => {
    const dir = await tempDir('skolluft-remote-cli-')
    try {
      const child = spawnCli(['ingest'], {
        DATA_DIR: dir.path,
        MQTT_URL: platform.mqttUrl,
        MQTT_USERNAME: platform.ingestCredential.username,
        MQTT_PASSWORD: platform.ingestCredential.password,
        REGISTRY_URL: `http://127.0.0.1:${api.port}`,
      })
      expect(await waitForExit(child)).not.toBe(0)
      expect(child.output()).toContain('REGISTRY_TOKEN: required with REGISTRY_URL')
      expect(child.output()).toContain('STORE: must be influxdb with REGISTRY_URL')
    } finally {
      await dir.cleanup()
    }
  })
})

/**
 * The whole command on "another machine": `skolluft ingest` as a child process with an empty DATA_DIR of its own,
 * STORE=influxdb against Debian's VictoriaMetrics (it takes the InfluxDB line protocol; test/support explains how it
 * differs), and REGISTRY_URL/REGISTRY_TOKEN pointing at the API. The in-process ingest above is closed first, so every
 * reject in the API's log here comes from the child.
 */
describe.runIf(victoriaMetricsAvailable())(
  'skolluft ingest with REGISTRY_URL and STORE=influxdb (VictoriaMetrics)',
  () => {
    let vm: TestVictoriaMetrics
    let dataDir: Awaited<ReturnType<typeof tempDir>>
    const children: ReturnType<typeof spawnCli>[] = []

    function remoteIngest(token: string): ReturnType<typeof spawnCli> {
      const child = spawnCli(['ingest'], {
        DATA_DIR: dataDir.path,
        MQTT_URL: platform.mqttUrl,
        MQTT_USERNAME: platform.ingestCredential.username,
        MQTT_PASSWORD: platform.ingestCredential.password,
        INGEST_CLIENT_ID: `${platform.ingestCredential.username}-host-b`,
        STORE: 'influxdb',
        INFLUX_URL: vm.url,
        INFLUX_TOKEN: 'test-token',
        INFLUX_ORG: 'skolluft',
        INFLUX_BUCKET: 'readings',
        REGISTRY_URL: `http://127.0.0.1:${api.port}`,
        REGISTRY_TOKEN: token,
      })
      children.push(child)
      return child
    }

    beforeAll(async () => {
      await ingest.close()
      vm = await startVictoriaMetrics()
      dataDir = await tempDir('skolluft-host-b-')
    })

    afterAll(async () => {
      for (const child of children) {
        child.kill('SIGTERM')
        await waitForExit(child)
      }
      await vm?.close()
      await dataDir?.cleanup()
    })

    it('stops at start, naming the settings, when the API refuses the token', async () => {
      const ctx = { storage: apiStorage, clock: Date.now }
      const researcher = (await createToken(ctx, CreateTokenBody.parse({ name: 'r2', role: 'researcher' }), null)).token
      const child = remoteIngest(researcher)
      expect(await waitForExit(child)).not.toBe(0)
      expect(child.output()).toMatch(/REGISTRY_URL, REGISTRY_TOKEN: the registry could not be read: .*403/)
    })

    it('writes a registered device’s readings to InfluxDB at its site and records an unknown device’s reject in the API', async () => {
      const child = remoteIngest(serviceToken)
      await waitFor(() => child.output().includes('ingest subscribed'), 'the remote ingest to subscribe', {
        timeoutMs: 20_000,
      })
      expect(child.output()).toContain('reading the registry and recording rejects through the API')
      const client = clients.find((c) => c.options.clientId === devices.a.deviceId) ?? (await connect(devices.a))
      // Minutes 10–12 after START: in the past (VictoriaMetrics' export ends at now), and not sent before.
      for (let i = 10; i < 13; i += 1) await publish(client, devices.a.deviceId, i)
      const series = await waitFor(
        async () => {
          const found = await vm.exportSeries(`{__name__="reading_pm25",device="${devices.a.deviceId}"}`)
          return found.reduce((n, s) => n + s.values.length, 0) >= 3 ? found : undefined
        },
        'three pm25 points of dev-remote-a in VictoriaMetrics',
        { timeoutMs: 15_000, intervalMs: 200 },
      ).catch(async (error: unknown) => {
        throw new Error(`${String(error)}\n${child.output().slice(-3000)}`)
      })
      expect(series.map((s) => s.metric.site)).toEqual(['site-a'])
      const before = (await apiRejects()).filter((r) => r.device === devices.ghost.deviceId).length
      const ghost = clients.find((c) => c.options.clientId === devices.ghost.deviceId) ?? (await connect(devices.ghost))
      await publish(ghost, devices.ghost.deviceId, 10)
      await waitFor(
        async () => (await apiRejects()).filter((r) => r.device === devices.ghost.deviceId).length > before,
        'the remote ingest’s reject of the ghost device in the API',
      )
      // The other machine's data directory holds no registry of its own: no device was ever registered there.
      const local = openSqliteStorage({ path: join(dataDir.path, 'skolluft.db') })
      try {
        expect(await local.registry.listDevices()).toEqual([])
        expect(await local.rejects.list({ limit: 10 })).toEqual([])
      } finally {
        await local.close()
      }
    })
  },
)
