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
 * A gateway crash loses nothing a device had acknowledged: the GATEWAY runs as a real child process
 * (`skolluft gateway`, with its telemetry spool in DATA_DIR) and is killed with SIGKILL while devices
 * stream QoS 1 readings and `skolluft ingest` stores them. aedes acknowledges a publish before queueing
 * it in memory, so without the spool the readings acknowledged but not yet committed by the ingest are
 * gone with the process. After a restart (on a new port) the devices send again what was never
 * acknowledged, as a device's buffer does; then every reading is stored exactly once: the raw count
 * matches, and the hourly aggregates (which would double-count a reading stored twice) add up to it.
 *
 * The test platform's own in-process gateway is not used; its storage is, to register devices and count.
 */
const DEVICES = 20
/** Below the gateway's default token bucket (PUBLISH_BURST 200), which the child process keeps. */
const READINGS_PER_DEVICE = 150
const TOTAL = DEVICES * READINGS_PER_DEVICE
/** QoS 1 messages each device keeps in flight, as a device replaying its buffer does. */
const IN_FLIGHT = 20
const START = Date.now() - 2 * 24 * HOUR_MS

/** Reads `field` from the gateway's JSON log line 'gateway listening'. */
function listeningPort(output: string): number | undefined {
  for (const line of output.split('\n')) {
    if (!line.startsWith('{')) continue
    const entry: unknown = JSON.parse(line)
    if (typeof entry === 'object' && entry !== null && 'msg' in entry && entry.msg === 'gateway listening') {
      return 'port' in entry && typeof entry.port === 'number' ? entry.port : undefined
    }
  }
  return undefined
}

describe('gateway crash (SIGKILL) in the middle of a stream', () => {
  let platform: TestPlatform
  const clients: MqttClient[] = []
  const children: ReturnType<typeof spawnCli>[] = []

  beforeAll(async () => {
    platform = await startTestPlatform()
  })

  afterAll(async () => {
    for (const c of clients) await c.endAsync(true)
    for (const child of children) {
      if (child.exitCode === null) child.kill('SIGKILL')
      await waitForExit(child)
    }
    await platform?.close()
  })

  async function startGatewayProcess(): Promise<{ child: ReturnType<typeof spawnCli>; url: string }> {
    const child = spawnCli(['gateway'], { DATA_DIR: platform.dataDir, MQTT_PORT: '0', MQTT_HOST: '127.0.0.1' })
    children.push(child)
    const port = await waitFor(() => listeningPort(child.output()), 'the gateway child to listen', {
      timeoutMs: 20_000,
    })
    return { child, url: `mqtt://127.0.0.1:${port}` }
  }

  async function startIngestProcess(url: string): Promise<ReturnType<typeof spawnCli>> {
    // No MQTT_USERNAME: the ingest reads the credentials the gateway created in DATA_DIR.
    const child = spawnCli(['ingest'], { DATA_DIR: platform.dataDir, MQTT_URL: url })
    children.push(child)
    await waitFor(() => child.output().includes('ingest subscribed'), 'the ingest child to subscribe', {
      timeoutMs: 20_000,
    })
    return child
  }

  const payload = (k: number, seq: number) =>
    JSON.stringify({ ts: new Date(START + seq * 60_000).toISOString(), seq, pm25: seq % 50, no2: 10 + k })

  it('stores every acknowledged reading exactly once across a gateway kill and restart', {
    timeout: 120_000,
  }, async () => {
    const devices: { deviceId: string; password: string }[] = []
    for (let i = 0; i < DEVICES; i += 1)
      devices.push(await addTestDevice(platform.storage, `dev-gwcrash-${i}`, 'site-a'))

    let gateway = await startGatewayProcess()
    let ingest = await startIngestProcess(gateway.url)
    const connectAll = (url: string) =>
      Promise.all(
        devices.map(async (d) => {
          const client = await mqtt.connectAsync(url, {
            clientId: d.deviceId,
            username: d.deviceId,
            password: d.password,
            reconnectPeriod: 0,
          })
          client.on('error', () => {})
          clients.push(client)
          return client
        }),
      )

    // What each device has had acknowledged (PUBACK from the gateway): these it has deleted from its buffer.
    const acked = devices.map(() => new Set<number>())
    let ackedTotal = 0
    let killed = false
    /** Publishes `seqs` from device k with IN_FLIGHT at a time; stops at the first failure (connection gone). */
    const stream = async (client: MqttClient, k: number, seqs: number[], onAck: () => void) => {
      let next = 0
      const lane = async () => {
        for (;;) {
          const seq = seqs[next]
          next += 1
          if (seq === undefined) return
          try {
            await client.publishAsync(deviceTopic(devices[k]?.deviceId ?? '', 'telemetry'), payload(k, seq), { qos: 1 })
          } catch {
            return
          }
          acked[k]?.add(seq)
          onAck()
        }
      }
      await Promise.all(Array.from({ length: IN_FLIGHT }, lane))
    }

    // Kill the gateway once a third of the stream has been acknowledged, in the same turn as that PUBACK.
    const all = Array.from({ length: READINGS_PER_DEVICE }, (_, seq) => seq)
    const first = await connectAll(gateway.url)
    const streaming = Promise.all(
      first.map((client, k) =>
        stream(client, k, all, () => {
          ackedTotal += 1
          if (!killed && ackedTotal >= TOTAL / 3) {
            killed = true
            gateway.child.kill('SIGKILL')
          }
        }),
      ),
    )
    await waitFor(() => killed, 'a third of the stream to be acknowledged', { timeoutMs: 30_000 })
    await waitForExit(gateway.child)
    // The devices see their connection drop; ending the clients fails what is still in flight.
    await Promise.all(first.map((c) => c.endAsync(true)))
    await streaming
    ingest.kill('SIGTERM')
    await waitForExit(ingest)
    const ackedAtKill = acked.reduce((sum, s) => sum + s.size, 0)
    expect(ackedAtKill).toBeLessThan(TOTAL) // the kill really happened mid-stream

    gateway = await startGatewayProcess()
    ingest = await startIngestProcess(gateway.url)
    // Back online, each device sends what it never had acknowledged (its buffer), on a new connection.
    const second = await connectAll(gateway.url)
    await Promise.all(
      second.map((client, k) =>
        stream(
          client,
          k,
          all.filter((seq) => !acked[k]?.has(seq)),
          () => undefined,
        ),
      ),
    )
    expect(acked.every((s) => s.size === READINGS_PER_DEVICE)).toBe(true)

    const stored = () => platform.storage.readings.countReadings()
    await waitFor(async () => (await stored()) === TOTAL, 'every reading to be stored', { timeoutMs: 20_000 }).catch(
      () => undefined,
    )
    // Give any stray redelivery time to land, then check nothing was lost or doubled.
    await new Promise((resolve) => setTimeout(resolve, 500))
    expect(await stored(), `acknowledged before the kill: ${ackedAtKill}`).toBe(TOTAL)
    await expectEachStoredOnce(
      platform.storage,
      devices.map((d) => d.deviceId),
      READINGS_PER_DEVICE,
      START,
    )
    for (const child of [ingest, gateway.child]) {
      child.kill('SIGTERM')
      expect(await waitForExit(child)).toBe(0)
    }
  })
})
