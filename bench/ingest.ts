/**
 * Ingest throughput benchmark (issue: the data path).
 *
 *   npm run bench:ingest [-- --devices 200 --readings 100000] [-- --no-spool]
 *
 * Many devices (MQTT.js clients on a worker thread) publish QoS 1 readings, one reading per
 * message, through the skolluft gateway (authenticated, ACL-checked) on the main thread.
 * Two phases, measured in the same run on the same machine:
 *   1. baseline: the broker's pass-through rate to a plain MQTT.js subscriber (QoS 1, acks at once);
 *   2. end to end: `skolluft ingest` as a separate process stores every reading in SQLite and
 *      acknowledges after the commit; the rate is stored readings per second, from the first publish
 *      until the last reading is committed (counted in the database).
 * It prints both rates, their ratio, and the ingest process's peak resident memory (VmHWM).
 * The gateway's per-device rate limit is raised for the run: here each device streams as fast as
 * the broker takes it, far above the 1 reading/min a real device sends. The gateway keeps its telemetry
 * spool (a second SQLite file, as `skolluft gateway` does) in both phases; `--no-spool` runs without it.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { ALL_TELEMETRY_FILTER } from '@skolluft/core'
import { startGateway } from '@skolluft/gateway'
import { generateSecret, hashSecret, silentLogger } from '@skolluft/runtime'
import { openSqliteSpool, openSqliteStorage } from '@skolluft/storage'
import { tempDir, waitFor } from '@skolluft/testkit'
import mqtt from 'mqtt'
import { registerBenchDevices, startPublishers } from './fleet.ts'

const { values: args } = parseArgs({
  options: {
    devices: { type: 'string', default: '200' },
    readings: { type: 'string', default: '100000' },
    inflight: { type: 'string', default: '20' },
    'no-spool': { type: 'boolean', default: false },
  },
})
const DEVICES = Number(args.devices)
const TOTAL = Number(args.readings)
/** QoS 1 messages each device keeps in flight: a device with a buffer sends without waiting per message. */
const INFLIGHT_PER_DEVICE = Number(args.inflight)
const PER_DEVICE = Math.ceil(TOTAL / DEVICES)
const TIME_LIMIT_MS = 10 * 60_000
/** Measurement times of the two phases' readings (distinct, so phase 2 never meets phase 1's rows). */
const PHASE_1_BASE = Date.UTC(2026, 9, 1)
const PHASE_2_BASE = Date.UTC(2026, 9, 10)
const CLI_BIN = fileURLToPath(new URL('../cli/bin/skolluft.js', import.meta.url))

/** CPU time (user + system) of this process's main thread, where the gateway runs; Linux /proc. */
async function mainThreadCpuMs(): Promise<number> {
  const stat = await readFile(`/proc/self/task/${process.pid}/stat`, 'utf8')
  // Fields after the parenthesised command name; utime and stime are fields 14 and 15, in clock ticks.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const ticks = Number(fields[11]) + Number(fields[12])
  return ticks * CLOCK_TICK_MS
}

/** USER_HZ is 100 on Linux (x86 and arm), so one clock tick is 10 ms. */
const CLOCK_TICK_MS = 10

async function peakRssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const match = /VmHWM:\s+(\d+) kB/.exec(status)
  return match ? Number(match[1]) / 1024 : Number.NaN
}

async function main(): Promise<void> {
  const dir = await tempDir('skolluft-bench-')
  const storage = openSqliteStorage({ path: join(dir.path, 'skolluft.db') })
  const spool = args['no-spool'] ? undefined : openSqliteSpool({ path: join(dir.path, 'gateway-spool.db') })
  const children: ChildProcess[] = []
  const deadline = setTimeout(() => {
    console.error(`bench: gave up after ${TIME_LIMIT_MS / 60_000} min`)
    for (const c of children) c.kill('SIGKILL')
    process.exit(1)
  }, TIME_LIMIT_MS)
  try {
    await storage.registry.upsertSites([
      {
        id: 'bench-site',
        name: 'Bench (demo)',
        kind: 'school',
        municipality: 'Lund',
        lat: 55.7,
        lon: 13.2,
        demo: true,
      },
    ])
    const servicePassword = generateSecret()
    await storage.registry.upsertServiceAccount({
      username: 'svc.ingest',
      secretHash: await hashSecret(servicePassword),
      role: 'ingest',
    })
    const { ids, password: devicePassword } = await registerBenchDevices(storage.registry, DEVICES, 'bench-site')
    const gateway = await startGateway({
      log: silentLogger(),
      registry: storage.registry,
      host: '127.0.0.1',
      port: 0,
      limits: { publishRatePerS: 1_000_000, publishBurst: 1_000_000, maxPendingVerifications: 1_000 },
      ...(spool === undefined ? {} : { spool }),
    })
    const url = `mqtt://127.0.0.1:${gateway.port}`
    const publishers = await startPublishers({
      url: url,
      ids,
      password: devicePassword,
      perDevice: PER_DEVICE,
      inflight: INFLIGHT_PER_DEVICE,
    })
    const total = PER_DEVICE * DEVICES
    console.log(
      `bench: ${DEVICES} devices × ${PER_DEVICE} readings = ${total} QoS 1 messages, ${INFLIGHT_PER_DEVICE} in flight per device, gateway spool ${spool === undefined ? 'off' : 'on'}`,
    )

    // Phase 1: pass-through baseline to a plain subscriber (the API's service role may subscribe to telemetry).
    const apiPassword = generateSecret()
    await storage.registry.upsertServiceAccount({
      username: 'svc.bench',
      secretHash: await hashSecret(apiPassword),
      role: 'api',
    })
    const subscriber = await mqtt.connectAsync(url, {
      clientId: 'svc.bench',
      username: 'svc.bench',
      password: apiPassword,
      reconnectPeriod: 0,
    })
    let received = 0
    subscriber.on('message', () => {
      received += 1
    })
    await subscriber.subscribeAsync(ALL_TELEMETRY_FILTER, { qos: 1 })
    await publishers.prepare(PHASE_1_BASE)
    const t0 = performance.now()
    await publishers.go(PHASE_1_BASE)
    await waitFor(() => received >= total, 'the subscriber to receive everything', {
      timeoutMs: 120_000,
      intervalMs: 5,
    })
    const baselineMs = performance.now() - t0
    await subscriber.endAsync()
    const baselineRate = total / (baselineMs / 1000)
    console.log(
      `baseline   broker pass-through: ${Math.round(baselineRate)} msg/s (${total} in ${(baselineMs / 1000).toFixed(2)} s)`,
    )

    // Phase 2: end to end through the ingest process into SQLite.
    // BENCH_INGEST_NODE_ARGS (e.g. "--cpu-prof") goes to the ingest's node, for profiling.
    const nodeArgs = (process.env.BENCH_INGEST_NODE_ARGS ?? '').split(' ').filter(Boolean)
    const ingest = spawn(process.execPath, [...nodeArgs, CLI_BIN, 'ingest'], {
      env: {
        PATH: process.env.PATH ?? '',
        DATA_DIR: dir.path,
        MQTT_URL: url,
        MQTT_USERNAME: 'svc.ingest',
        MQTT_PASSWORD: servicePassword,
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'inherit', 'inherit'],
    })
    children.push(ingest)
    const pid = ingest.pid ?? 0
    await waitFor(() => gateway.stats().connectedClients > DEVICES, 'the ingest to connect', { timeoutMs: 30_000 })
    await new Promise((resolve) => setTimeout(resolve, 500)) // let its SUBSCRIBE land
    await publishers.prepare(PHASE_2_BASE)
    const t1 = performance.now()
    const cpu0 = await mainThreadCpuMs()
    const publishedMs = await publishers.go(PHASE_2_BASE)
    await waitFor(async () => (await storage.readings.countReadings()) >= total, 'every reading to be stored', {
      timeoutMs: 300_000,
      intervalMs: 20,
    })
    const e2eMs = performance.now() - t1
    const gatewayCpuMs = (await mainThreadCpuMs()) - cpu0
    const rss = await peakRssMb(pid)
    const stored = await storage.readings.countReadings()
    const e2eRate = total / (e2eMs / 1000)
    console.log(
      `end to end stored in SQLite:   ${Math.round(e2eRate)} readings/s (${stored} in ${(e2eMs / 1000).toFixed(2)} s; publishing took ${(publishedMs / 1000).toFixed(2)} s)`,
    )
    console.log(`ratio end-to-end / pass-through: ${(e2eRate / baselineRate).toFixed(2)}`)
    // CPU time of the gateway's thread (this one) per message in phase 2: its cost, less noisy than rates
    // on a shared machine (10 ms clock ticks, so ±0.1 µs per message here).
    console.log(`gateway thread CPU in phase 2: ${((gatewayCpuMs * 1000) / total).toFixed(1)} µs per message`)
    console.log(`ingest process peak RSS (VmHWM): ${rss.toFixed(1)} MB`)
    if (spool !== undefined) {
      // Phase 1's subscriber is not the ingest, so its 100 000 entries stay (until the retention period).
      await waitFor(() => gateway.stats().spoolEntries <= total, 'the ingest-acknowledged entries to be deleted')
      console.log(`gateway spool after the run: ${gateway.stats().spoolEntries} entries (phase 1's, never ingested)`)
    }
    console.log(`targets: ≥ 10000 readings/s, ratio ≥ 0.50, RSS < 250 MB`)
    if (stored !== total) throw new Error(`stored ${stored}, expected exactly ${total}`)
    ingest.kill('SIGTERM')
    await new Promise((resolve) => ingest.once('exit', resolve))
    await publishers.stop()
    await gateway.close()
  } finally {
    clearTimeout(deadline)
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL')
    await spool?.close()
    await storage.close()
    await dir.cleanup()
  }
}

await main()
