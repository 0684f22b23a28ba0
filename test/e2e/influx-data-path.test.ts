import { join } from 'node:path'
import { deviceTopic, expectedSamplesPerHour, HOUR_MS, type Metric } from '@skolluft/core'
import { generateSecret, hashSecret } from '@skolluft/runtime'
import { openSpoolFile } from '@skolluft/storage/influx'
import { waitFor } from '@skolluft/testkit'
import mqtt, { type MqttClient } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { addTestDevice, spawnCli, startTestPlatform, type TestPlatform, waitForExit } from '../support/platform.ts'
import {
  type ExportedSeries,
  type InfluxFront,
  startInfluxFront,
  startVictoriaMetrics,
  type TestVictoriaMetrics,
  victoriaMetricsAvailable,
} from '../support/victoria-metrics.ts'

/**
 * The data path with STORE=influxdb, from the outside: devices publish QoS 1 telemetry with real MQTT.js clients
 * to the real gateway (in-process, with its durable telemetry spool), `skolluft ingest` runs as a child process
 * and writes line protocol through an HTTP front (test/support/victoria-metrics.ts) to VictoriaMetrics, which
 * stands in for InfluxDB 2 on the write path. What is stored is read back with VictoriaMetrics' export API.
 *
 * Against VictoriaMetrics the ingest's Flux duplicate lookup and the quality worker's Flux queries fail (there is
 * no Flux); the ingest logs that and writes on. VictoriaMetrics also keeps a point written twice as two samples,
 * where InfluxDB would overwrite it: the outage test therefore asserts that all samples of a key are identical.
 */

/** The ingest's writer is named after its client id, `ingest` by default (cli/src/data-dir.ts). */
const INGEST_SPOOL_FILE = 'influx-spool-ingest.db'
const INTERVAL_MS = 60_000
/** Readings are dated two days back, on a whole hour: accepted by the ingest and inside VictoriaMetrics' range. */
const BASE_TS = Math.floor((Date.now() - 2 * 24 * HOUR_MS) / HOUR_MS) * HOUR_MS
const tsOf = (i: number) => BASE_TS + i * INTERVAL_MS

/** Metric values of reading `i` of device number `k`: distinct per key, exact in decimal and in float64. */
function valuesOf(k: number, i: number): Record<Metric, number> {
  return {
    pm1: (i % 40) / 4,
    pm25: (i % 97) / 10 + k,
    pm10: (i % 131) / 5,
    no2: 10 + k + (i % 13) / 2,
    temp: -5 + (i % 30) / 2,
    rh: 30 + (i % 60),
  }
}

/** One stored reading as exported: its site label and the samples of each field. */
interface StoredKey {
  readonly sites: Set<string | undefined>
  readonly fields: Map<string, number[]>
}

/** `reading_<field>` series regrouped by `<device>@<ts>`. */
function readingsByKey(series: readonly ExportedSeries[]): Map<string, StoredKey> {
  const out = new Map<string, StoredKey>()
  for (const s of series) {
    const name = s.metric.__name__ ?? ''
    if (!name.startsWith('reading_')) continue
    const field = name.slice('reading_'.length)
    s.timestamps.forEach((ts, n) => {
      const key = `${s.metric.device}@${ts}`
      let entry = out.get(key)
      if (entry === undefined) {
        entry = { sites: new Set(), fields: new Map() }
        out.set(key, entry)
      }
      entry.sites.add(s.metric.site)
      const samples = entry.fields.get(field) ?? []
      samples.push(s.values[n] ?? Number.NaN)
      entry.fields.set(field, samples)
    })
  }
  return out
}

async function storedReadings(vm: TestVictoriaMetrics, devicePrefix: string): Promise<Map<string, StoredKey>> {
  return readingsByKey(await vm.exportSeries(`{__name__=~"reading_.+",device=~"${devicePrefix}.+"}`))
}

/** The keys of the `reading` lines in a line protocol text (`reading,device=<d>[,site=…] … <ts>`). */
function readingLineKeys(lines: readonly string[]): Set<string> {
  const keys = new Set<string>()
  for (const line of lines) {
    const m = /^reading,device=([a-z0-9-]+)[, ].* (\d+)$/.exec(line)
    if (m !== null) keys.add(`${m[1]}@${m[2]}`)
  }
  return keys
}

const LogLine = z.looseObject({ msg: z.string(), spoolDepth: z.number().optional() })
type LogLine = z.infer<typeof LogLine>

/** The JSON log lines of a child's output (pino), skipping anything else. */
function logLines(output: string): LogLine[] {
  const out: LogLine[] = []
  for (const text of output.split('\n')) {
    if (!text.startsWith('{')) continue
    try {
      const parsed = LogLine.safeParse(JSON.parse(text))
      if (parsed.success) out.push(parsed.data)
    } catch {
      // not JSON: a stack trace line or similar
    }
  }
  return out
}

describe.runIf(victoriaMetricsAvailable())('data path with STORE=influxdb (VictoriaMetrics)', () => {
  let vm: TestVictoriaMetrics
  let front: InfluxFront
  let platform: TestPlatform
  let ingest: ReturnType<typeof spawnCli>
  const children: ReturnType<typeof spawnCli>[] = []
  const clients: MqttClient[] = []

  function startIngest(): ReturnType<typeof spawnCli> {
    const child = spawnCli(['ingest'], {
      DATA_DIR: platform.dataDir,
      MQTT_URL: platform.mqttUrl,
      MQTT_USERNAME: platform.ingestCredential.username,
      MQTT_PASSWORD: platform.ingestCredential.password,
      STORE: 'influxdb',
      INFLUX_URL: front.url,
      INFLUX_TOKEN: 'test-token',
      INFLUX_ORG: 'skolluft',
      INFLUX_BUCKET: 'readings',
    })
    children.push(child)
    return child
  }

  async function connect(deviceId: string, password: string): Promise<MqttClient> {
    const client = await mqtt.connectAsync(platform.mqttUrl, {
      clientId: deviceId,
      username: deviceId,
      password,
      reconnectPeriod: 0,
    })
    clients.push(client)
    return client
  }

  /** Devices of the first test: one that stays, one moved to another site, one placed only after a while. */
  const ONE = { stays: 'dev-one-a', moved: 'dev-one-b', late: 'dev-one-c' } as const
  const MOVED_AT = tsOf(30)
  const PLACED_AT = tsOf(20)
  const ONE_READINGS = 60
  const credentials = new Map<string, string>()
  /** Devices of the outage test, at site-a and site-b in turn. */
  const OUTAGE_DEVICES = 4
  const outageId = (k: number) => `dev-out-${k}`
  const outageSite = (k: number) => (k % 2 === 0 ? 'site-a' : 'site-b')

  beforeAll(async () => {
    vm = await startVictoriaMetrics()
    front = await startInfluxFront(vm.url)
    // The streams are faster than a real device's pace: the per-device rate limit is raised.
    platform = await startTestPlatform({ publishRatePerS: 10_000, publishBurst: 10_000 }, [], { spool: true })
    const { registry } = platform.storage
    for (const deviceId of [ONE.stays, ONE.moved]) {
      credentials.set(deviceId, (await addTestDevice(platform.storage, deviceId, 'site-a')).password)
    }
    await registry.moveDevice(ONE.moved, { siteId: 'site-b', from: MOVED_AT, indoor: true, heightM: 1 })
    const latePassword = generateSecret()
    await registry.addDevice(
      {
        id: ONE.late,
        model: 'test',
        sensors: ['pm25', 'rh'],
        intervalS: 60,
        secretHash: await hashSecret(latePassword),
        placement: { siteId: 'site-b', from: PLACED_AT, indoor: false, heightM: 2 },
      },
      Date.now(),
    )
    credentials.set(ONE.late, latePassword)
    for (let k = 0; k < OUTAGE_DEVICES; k += 1) {
      credentials.set(outageId(k), (await addTestDevice(platform.storage, outageId(k), outageSite(k))).password)
    }
    ingest = startIngest()
    await waitFor(() => ingest.output().includes('ingest subscribed'), 'the ingest child to subscribe', {
      timeoutMs: 25_000,
    })
  })

  afterAll(async () => {
    for (const c of clients) await c.endAsync(true)
    for (const child of children) {
      child.kill('SIGKILL')
      await waitForExit(child)
    }
    await front?.close()
    await vm?.close()
    await platform?.close()
  })

  it('stores each QoS 1 reading once, with its device and site tags and its values', { timeout: 60_000 }, async () => {
    const stays = await connect(ONE.stays, credentials.get(ONE.stays) ?? '')
    const moved = await connect(ONE.moved, credentials.get(ONE.moved) ?? '')
    const late = await connect(ONE.late, credentials.get(ONE.late) ?? '')
    const publishedFrom = Date.now()
    for (let i = 0; i < ONE_READINGS; i += 1) {
      const ts = new Date(tsOf(i)).toISOString()
      await Promise.all([
        stays.publishAsync(deviceTopic(ONE.stays, 'telemetry'), JSON.stringify({ ts, seq: i, ...valuesOf(0, i) }), {
          qos: 1,
        }),
        moved.publishAsync(deviceTopic(ONE.moved, 'telemetry'), JSON.stringify({ ts, seq: i, ...valuesOf(1, i) }), {
          qos: 1,
        }),
      ])
    }
    // The third device sends buffered batches of 20 readings, with two metrics only.
    for (let from = 0; from < ONE_READINGS; from += 20) {
      const readings = Array.from({ length: 20 }, (_, n) => {
        const i = from + n
        const { pm25, rh } = valuesOf(2, i)
        return { ts: new Date(tsOf(i)).toISOString(), seq: i, pm25, rh }
      })
      await late.publishAsync(deviceTopic(ONE.late, 'telemetry'), JSON.stringify({ readings }), { qos: 1 })
    }

    const total = 3 * ONE_READINGS
    await waitFor(
      async () => (await storedReadings(vm, 'dev-one-')).size === total && platform.gateway.stats().spoolEntries === 0,
      `${total} readings in VictoriaMetrics and acknowledged by the ingest`,
      { timeoutMs: 30_000, intervalMs: 200 },
    )
    // Room for a stray second write (a redelivery, a replay) to show up before counting.
    await new Promise((resolve) => setTimeout(resolve, 500))
    const publishedTo = Date.now()
    const stored = await storedReadings(vm, 'dev-one-')
    expect(stored.size).toBe(total)

    const expectedPerHour = expectedSamplesPerHour(60)
    const devices = [
      { id: ONE.stays, k: 0, site: () => 'site-a', metrics: ['pm1', 'pm25', 'pm10', 'no2', 'temp', 'rh'] },
      {
        id: ONE.moved,
        k: 1,
        site: (ts: number) => (ts < MOVED_AT ? 'site-a' : 'site-b'),
        metrics: ['pm1', 'pm25', 'pm10', 'no2', 'temp', 'rh'],
      },
      // No placement before PLACED_AT: those readings belong to no site and carry no site tag.
      { id: ONE.late, k: 2, site: (ts: number) => (ts < PLACED_AT ? undefined : 'site-b'), metrics: ['pm25', 'rh'] },
    ] as const
    for (const device of devices) {
      for (let i = 0; i < ONE_READINGS; i += 1) {
        const ts = tsOf(i)
        const key = `${device.id}@${ts}`
        const entry = stored.get(key)
        expect(entry, key).toBeDefined()
        if (entry === undefined) continue
        expect([...entry.sites], key).toEqual([device.site(ts)])
        const values = valuesOf(device.k, i)
        const expected: Record<string, number[]> = {
          seq: [i],
          expected_per_hour: [expectedPerHour],
        }
        for (const metric of device.metrics) expected[metric] = [values[metric]]
        const { received_at: receivedAt, ...rest } = Object.fromEntries(entry.fields)
        // Exactly once: one sample per field, and only the fields the device sent.
        expect(rest, key).toEqual(expected)
        expect(receivedAt, key).toHaveLength(1)
        expect(receivedAt?.[0], key).toBeGreaterThanOrEqual(publishedFrom)
        expect(receivedAt?.[0], key).toBeLessThanOrEqual(publishedTo)
      }
    }
    // Each device-hour that received readings is marked for the quality check (the hour of BASE_TS).
    const hours = await vm.exportSeries('{__name__="device_hour_dirty",device=~"dev-one-.+"}')
    expect(hours.map((s) => s.metric.device).sort()).toEqual([ONE.stays, ONE.moved, ONE.late])
    for (const s of hours) expect(new Set(s.timestamps)).toEqual(new Set([BASE_TS]))
  })

  it('loses no acknowledged reading when InfluxDB stops answering and the ingest is killed meanwhile', {
    timeout: 60_000,
  }, async () => {
    const PER_DEVICE = 750
    const OUTAGE_FROM = 250
    const KILL_PHASE_FROM = 500
    /** The ingest is killed once this many readings of the last phase are out, while publishing goes on. */
    const KILL_AFTER = 60
    const outageClients: MqttClient[] = []
    for (let k = 0; k < OUTAGE_DEVICES; k += 1) {
      outageClients.push(await connect(outageId(k), credentials.get(outageId(k)) ?? ''))
    }
    let published = 0
    const publishRange = async (from: number, to: number) => {
      for (let i = from; i < to; i += 1) {
        const ts = new Date(tsOf(i)).toISOString()
        // Resolves on the gateway's PUBACK: a rejected or dropped PUBLISH fails the test here.
        await Promise.all(
          outageClients.map((c, k) =>
            c.publishAsync(deviceTopic(outageId(k), 'telemetry'), JSON.stringify({ ts, seq: i, ...valuesOf(k, i) }), {
              qos: 1,
            }),
          ),
        )
        published = i + 1
      }
    }
    const keysOf = (from: number, to: number) =>
      Array.from({ length: OUTAGE_DEVICES }, (_, k) =>
        Array.from({ length: to - from }, (_, n) => `${outageId(k)}@${tsOf(from + n)}`),
      ).flat()
    const firstIngest = ingest

    // Phase 1, server up: written directly.
    await publishRange(0, OUTAGE_FROM)
    await waitFor(
      async () => (await storedReadings(vm, 'dev-out-')).size === OUTAGE_DEVICES * OUTAGE_FROM,
      'the first phase in VictoriaMetrics',
      { timeoutMs: 20_000, intervalMs: 200 },
    )

    // The outage: the server stops answering (writes hang, as behind a dead machine or a dropped network
    // path), then dies. VictoriaMetrics acknowledges before its data is on disk, so what it acknowledged is
    // persisted before the SIGKILL: what is tested is the platform, not VictoriaMetrics.
    const outageStart = Date.now()
    await front.stall()
    await vm.persist()
    await vm.stop({ signal: 'SIGKILL' })

    // Phase 2, server away: every PUBLISH is acknowledged by the gateway, and the ingest acknowledges each
    // delivery (the gateway's spool empties) only once its readings are durable: here, in the ingest's spool.
    await publishRange(OUTAGE_FROM, KILL_PHASE_FROM)
    await waitFor(
      () => platform.gateway.stats().spoolEntries === 0,
      'the ingest to acknowledge every delivery while the server is away',
      { timeoutMs: 30_000, intervalMs: 50 },
    )
    const acknowledgedAfterMs = Date.now() - outageStart

    // Phase 3: SIGKILL the ingest in the middle of the stream, the server still away.
    const streaming = publishRange(KILL_PHASE_FROM, PER_DEVICE)
    await waitFor(() => published >= KILL_PHASE_FROM + KILL_AFTER, 'the last phase to be under way')
    firstIngest.kill('SIGKILL')
    await waitForExit(firstIngest)
    const killedAt = published
    await streaming
    expect(killedAt).toBeLessThan(PER_DEVICE) // the kill really happened mid-stream
    // What the killed ingest had not acknowledged waits in the gateway for its session.
    expect(platform.gateway.stats().spoolEntries).toBeGreaterThan(0)

    // The ingest's spool holds every reading of phase 2: acknowledged, and nowhere else.
    await front.cut()
    const spool = openSpoolFile(join(platform.dataDir, INGEST_SPOOL_FILE))
    const spoolDepth = spool.depth()
    const spooledKeys = readingLineKeys(spool.oldest(spoolDepth).map((row) => row.line))
    spool.close()
    const notSpooled = keysOf(OUTAGE_FROM, KILL_PHASE_FROM).filter((key) => !spooledKeys.has(key))
    expect(notSpooled).toEqual([])
    expect(logLines(firstIngest.output()).some((l) => l.msg === 'InfluxDB write failed: spooling')).toBe(true)

    // The server comes back with phase 1 only; then the ingest.
    await vm.restart()
    expect((await storedReadings(vm, 'dev-out-')).size).toBe(OUTAGE_DEVICES * OUTAGE_FROM)
    await front.restore()
    const restartedAt = Date.now()
    ingest = startIngest()
    const total = OUTAGE_DEVICES * PER_DEVICE
    // On a timeout the checks below say which readings are missing.
    const recovered = await waitFor(
      async () => (await storedReadings(vm, 'dev-out-')).size === total && platform.gateway.stats().spoolEntries === 0,
      'every reading in VictoriaMetrics after the restart',
      { timeoutMs: 30_000, intervalMs: 250 },
    ).then(
      () => true,
      () => false,
    )
    const recoveredMs = Date.now() - restartedAt
    await new Promise((resolve) => setTimeout(resolve, 500))

    const stored = await storedReadings(vm, 'dev-out-')
    const missing: string[] = []
    let twice = 0
    for (let k = 0; k < OUTAGE_DEVICES; k += 1) {
      for (let i = 0; i < PER_DEVICE; i += 1) {
        const key = `${outageId(k)}@${tsOf(i)}`
        const entry = stored.get(key)
        if (entry === undefined) {
          missing.push(key)
          continue
        }
        expect([...entry.sites], key).toEqual([outageSite(k)])
        const values = valuesOf(k, i)
        const samples = entry.fields.get('seq') ?? []
        if (samples.length > 1) twice += 1
        // A key written again (a redelivery, a replayed request) repeats the same values; received_at may differ
        // (a redelivered message is received again), as InfluxDB would keep only the last.
        expect(new Set(samples), key).toEqual(new Set([i]))
        for (const metric of ['pm1', 'pm25', 'pm10', 'no2', 'temp', 'rh'] as const) {
          const got = entry.fields.get(metric) ?? []
          expect(got, `${key} ${metric}`).toHaveLength(samples.length)
          expect(new Set(got), `${key} ${metric}`).toEqual(new Set([values[metric]]))
        }
      }
    }
    expect(missing).toEqual([])
    expect(stored.size).toBe(total)
    expect(recovered).toBe(true)
    const resumed = logLines(ingest.output()).find(
      (l) => l.msg === 'influx spool holds lines from an earlier run: replaying',
    )
    expect(resumed?.spoolDepth).toBe(spoolDepth)
    console.info(
      `influx outage: ${total} readings from ${OUTAGE_DEVICES} devices; every delivery acknowledged ` +
        `${acknowledgedAfterMs} ms after the server stopped answering; ingest killed after ${killedAt} of ` +
        `${PER_DEVICE} readings per device with ${spoolDepth} lines in its spool; all stored ${recoveredMs} ms ` +
        `after the restart; ${twice} keys stored twice (replayed or redelivered)`,
    )

    ingest.kill('SIGTERM')
    expect(await waitForExit(ingest)).toBe(0)
  })
})
