/**
 * Ingest throughput of a split deployment (issue 6): Mosquitto 2 and N `skolluft ingest` workers sharing the stream.
 *
 *   npm run bench:ingest-split [-- --workers 2 --store sqlite|influxdb --devices 200 --readings 100000]
 *                              [-- --inflight 20 --max-inflight <mosquitto max_inflight_messages>] [-- --as-installed]
 *
 * The same load as bench/ingest.ts (devices as MQTT.js clients on a worker thread, QoS 1, one reading per message,
 * 20 in flight per device), but the broker is Debian's Mosquitto 2 started as the container starts it
 * (test/support/mosquitto.ts: the shipped mosquitto.conf and entry point, dynamic-security logins and ACLs), because
 * the skolluft gateway (aedes) has no shared subscriptions. The workers are real `skolluft ingest` processes
 * (cli/bin/skolluft.js) with INGEST_SHARED_GROUP and their own INGEST_CLIENT_ID, sharing one DATA_DIR (registry in
 * SQLite) and either the SQLite store or STORE=influxdb against Debian's VictoriaMetrics (line protocol).
 * Three phases in one run, on the same machine, each with its own readings (distinct timestamps):
 *   1. baseline: Mosquitto's pass-through rate to a plain QoS 1 subscriber;
 *   2. one worker in the shared group;
 *   3. N workers in the shared group (fresh processes; worker 1 reuses its client id, so its session).
 * A phase's rate is stored readings per second, from the first publish until the last reading is stored (counted in
 * SQLite, or in VictoriaMetrics with a MetricsQL count after a forced flush). Per worker it prints the peak resident
 * memory (VmHWM), its CPU time in the phase, and its share of the stream: the bytes its MQTT socket received
 * (`ss -ti`, bytes_received), as a fraction of all the workers' bytes. Per-worker counts are not in the store
 * (a reading does not say which worker wrote it) and the ingest logs no counts, hence the socket bytes.
 * Workers run as `node cli/bin/skolluft.js` (as bench/ingest.ts runs its ingest); `--as-installed` runs the script
 * itself, so its first line's memory settings apply as with `npx skolluft ingest` (smaller heap, more collection).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { readdir, readFile } from 'node:fs/promises'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs, promisify } from 'node:util'
import { ALL_TELEMETRY_FILTER } from '@skolluft/core'
import { openSqliteStorage } from '@skolluft/storage'
import { tempDir, waitFor } from '@skolluft/testkit'
import mqtt from 'mqtt'
import { z } from 'zod'
import { mosquittoAvailable, startMosquitto } from '../test/support/mosquitto.ts'
import {
  startVictoriaMetrics,
  type TestVictoriaMetrics,
  victoriaMetricsAvailable,
} from '../test/support/victoria-metrics.ts'
import { registerBenchDevices, startPublishers } from './fleet.ts'

const { values: args } = parseArgs({
  options: {
    workers: { type: 'string', default: '2' },
    store: { type: 'string', default: 'sqlite' },
    devices: { type: 'string', default: '200' },
    readings: { type: 'string', default: '100000' },
    inflight: { type: 'string', default: '20' },
    'max-inflight': { type: 'string' },
    'as-installed': { type: 'boolean', default: false },
  },
})
const Store = z.enum(['sqlite', 'influxdb'])
const STORE = Store.parse(args.store)
const WORKERS = z.coerce.number().int().min(1).parse(args.workers)
const DEVICES = z.coerce.number().int().min(1).parse(args.devices)
const TOTAL = z.coerce.number().int().min(1).parse(args.readings)
/** QoS 1 messages each device keeps in flight (as bench/ingest.ts). */
const INFLIGHT_PER_DEVICE = z.coerce.number().int().min(1).parse(args.inflight)
const PER_DEVICE = Math.ceil(TOTAL / DEVICES)
/** Overrides the shipped mosquitto.conf max_inflight_messages (200), to see whether it limits the workers. */
const MAX_INFLIGHT =
  args['max-inflight'] === undefined ? undefined : z.coerce.number().int().min(0).parse(args['max-inflight'])
/** The whole run is bounded: the machine is shared, a stuck phase must not hold it. */
const TIME_LIMIT_MS = 4 * 60_000
/** How long one phase may take to store everything before the run fails. */
const PHASE_TIMEOUT_MS = 120_000
/** Measurement times of the three phases' readings: days apart, so no phase meets another's points. */
const PHASE_BASES = [Date.UTC(2026, 9, 1), Date.UTC(2026, 9, 10), Date.UTC(2026, 9, 20)] as const
/** Readings of one device are a second apart (bench/publishers.ts). */
const READING_STEP_MS = 1_000
const SHARED_GROUP = 'bench'
const CLI_BIN = fileURLToPath(new URL('../cli/bin/skolluft.js', import.meta.url))
/** USER_HZ is 100 on Linux (x86 and arm), so one clock tick of /proc/<pid>/stat is 10 ms. */
const CLOCK_TICK_MS = 10
/**
 * How often the store is counted while a phase runs. VictoriaMetrics is flushed (/internal/force_flush) before each
 * count, so this is also the end time's resolution there; SQLite is counted every 20 ms as bench/ingest.ts does.
 */
const POLL_MS = STORE === 'sqlite' ? 20 : 100

const execFileAsync = promisify(execFile)
const CORES = availableParallelism()

async function procStatus(pid: number, field: string): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const match = new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)
  return match ? Number(match[1]) / 1024 : Number.NaN
}

/** CPU time (user + system, all threads) of a process so far, in ms. */
async function cpuMs(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
  // Fields after the parenthesised command name; utime and stime are fields 14 and 15, in clock ticks.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) * CLOCK_TICK_MS
}

/** Busy and total CPU time of the whole machine so far (all cores; /proc/stat), in ms. */
async function machineCpuMs(): Promise<{ busy: number; total: number; softirq: number; steal: number }> {
  const first = (await readFile('/proc/stat', 'utf8')).split('\n')[0] ?? ''
  // cpu  user nice system idle iowait irq softirq steal …
  const ticks = first.trim().split(/\s+/).slice(1, 9).map(Number)
  const total = ticks.reduce((a, b) => a + b, 0)
  const idle = (ticks[3] ?? 0) + (ticks[4] ?? 0)
  return {
    busy: (total - idle) * CLOCK_TICK_MS,
    total: total * CLOCK_TICK_MS,
    softirq: (ticks[6] ?? 0) * CLOCK_TICK_MS,
    steal: (ticks[7] ?? 0) * CLOCK_TICK_MS,
  }
}

/** Where the machine's CPU went during a phase, in seconds. */
interface CpuAccount {
  readonly broker: number
  readonly workers: number
  /** This process: the publishers' thread, the counting, the baseline subscriber. */
  readonly bench: number
  readonly victoriaMetrics: number
  /**
   * Interrupt work not charged to any process: mostly the loopback TCP traffic between our processes (Linux
   * accounts softirq time apart from the task it interrupts).
   */
  readonly softirq: number
  /** Time the hypervisor gave this VM's virtual CPUs to someone else. */
  readonly steal: number
  /** Every other process on the machine (other people's tests): large values mean a disturbed run. */
  readonly others: number
  readonly idle: number
}

/** Snapshots CPU times of the machine and of our processes; `account()` gives the difference since. */
async function cpuAccount(pids: { broker: number; workers: readonly number[]; vm: number | undefined }) {
  const read = async () => ({
    machine: await machineCpuMs(),
    broker: await cpuMs(pids.broker),
    workers: (await Promise.all(pids.workers.map(cpuMs))).reduce((a, b) => a + b, 0),
    bench: await cpuMs(process.pid),
    vm: pids.vm === undefined ? 0 : await cpuMs(pids.vm),
  })
  const before = await read()
  return {
    async account(): Promise<CpuAccount> {
      const after = await read()
      const d = (f: (x: typeof after) => number) => (f(after) - f(before)) / 1000
      const ours = d((x) => x.broker + x.workers + x.bench + x.vm)
      return {
        broker: d((x) => x.broker),
        workers: d((x) => x.workers),
        bench: d((x) => x.bench),
        victoriaMetrics: d((x) => x.vm),
        softirq: d((x) => x.machine.softirq),
        steal: d((x) => x.machine.steal),
        others: Math.max(0, d((x) => x.machine.busy - x.machine.softirq - x.machine.steal) - ours),
        idle: d((x) => x.machine.total - x.machine.busy),
      }
    },
  }
}

/** The pid of a process named `…name` with an argument containing `needle`. */
async function pidByArgument(name: string, needle: string): Promise<number> {
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')
    const argv = cmdline.split('\0')
    if (argv[0]?.endsWith(name) === true && argv.some((a) => a.includes(needle))) return Number(entry)
  }
  throw new Error(`no ${name} process runs with ${needle}`)
}

/** The pid of the mosquitto started with `<dir>/mosquitto.conf` (the entry point execs it, so it is the child's). */
async function mosquittoPid(dir: string): Promise<number> {
  return pidByArgument('mosquitto', join(dir, 'mosquitto.conf'))
}

/** Bytes received so far by each process's TCP connections to `port` (`ss -ti`, tcp_info bytes_received). */
async function bytesReceivedByPid(port: number): Promise<Map<number, number>> {
  const { stdout } = await execFileAsync('ss', ['-tinpH', 'state', 'established', `( dport = :${port} )`])
  const out = new Map<number, number>()
  // Each socket is a line with `users:(("node",pid=…,fd=…))`, then an indented line of tcp_info.
  let pid: number | undefined
  for (const line of stdout.split('\n')) {
    const owner = /pid=(\d+)/.exec(line)
    if (owner) {
      pid = Number(owner[1])
      continue
    }
    const bytes = /bytes_received:(\d+)/.exec(line)
    if (pid !== undefined && bytes) out.set(pid, (out.get(pid) ?? 0) + Number(bytes[1]))
  }
  return out
}

const VmQueryResult = z.object({
  status: z.literal('success'),
  data: z.object({ result: z.array(z.object({ value: z.tuple([z.number(), z.string()]) })) }),
})

/** Readings of a phase stored in VictoriaMetrics: samples of `reading_pm25` in the phase's time range. */
async function countInVictoriaMetrics(vm: TestVictoriaMetrics, base: number): Promise<number> {
  await vm.forceFlush()
  const end = base + PER_DEVICE * READING_STEP_MS
  const query = `sum(count_over_time(reading_pm25{device=~"bench-.*"}[${PER_DEVICE * READING_STEP_MS + 1_000}ms]))`
  const response = await fetch(`${vm.url}/api/v1/query?${new URLSearchParams({ query, time: String(end / 1000) })}`)
  const parsed = VmQueryResult.safeParse(await response.json())
  if (!parsed.success) throw new Error(`VictoriaMetrics answered ${response.status} with an unexpected body`)
  return Number(parsed.data.data.result[0]?.value[1] ?? 0)
}

interface IngestWorker {
  readonly clientId: string
  readonly child: ChildProcess
  readonly pid: number
  /** Log lines (pino JSON) the worker printed so far. */
  output(): string
  subscribed(): boolean
  stop(): Promise<void>
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => child.once('exit', () => resolve()))
}

const LogLine = z.object({ level: z.number(), msg: z.string() })
/** pino's level numbers for warn and above. */
const PINO_WARN = 40

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

/** Warnings and errors a worker logged, counted by message. */
function warnings(output: string): Map<string, number> {
  const counts = new Map<string, number>()
  for (const line of output.split('\n')) {
    if (line.trim() === '') continue
    const parsed = LogLine.safeParse(parseJson(line))
    // A line that is not pino's JSON (a crash's stack trace) counts as a warning, by its first 120 characters.
    const { level, msg } = parsed.success ? parsed.data : { level: PINO_WARN, msg: line.slice(0, 120) }
    if (level >= PINO_WARN) counts.set(msg, (counts.get(msg) ?? 0) + 1)
  }
  return counts
}

interface PhaseResult {
  readonly name: string
  readonly workers: number
  readonly rate: number
  readonly seconds: number
  readonly publishSeconds: number
  readonly brokerCpuUsPerMessage: number
  readonly cpu: CpuAccount
  readonly perWorker: readonly {
    readonly clientId: string
    readonly rssMb: number
    readonly cpuS: number
    readonly share: number
  }[]
}

async function main(): Promise<void> {
  if (!mosquittoAvailable()) throw new Error('this benchmark needs Mosquitto 2 (apt-get install -y mosquitto)')
  if (STORE === 'influxdb' && !victoriaMetricsAvailable()) {
    throw new Error('--store influxdb needs VictoriaMetrics (apt-get install -y victoria-metrics)')
  }
  const dir = await tempDir('skolluft-bench-split-')
  const storage = openSqliteStorage({ path: join(dir.path, 'skolluft.db') })
  const workers: IngestWorker[] = []
  const cleanups: (() => Promise<void>)[] = []
  const deadline = setTimeout(() => {
    console.error(`bench: gave up after ${TIME_LIMIT_MS / 60_000} min`)
    for (const w of workers) w.child.kill('SIGKILL')
    process.exitCode = 1
    Promise.allSettled(cleanups.map((c) => c())).then(
      () => process.exit(1),
      () => process.exit(1),
    )
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
    const { ids, password: devicePassword } = await registerBenchDevices(storage.registry, DEVICES, 'bench-site')
    const broker = await startMosquitto({
      devices: ids.map((id) => ({ username: id, password: devicePassword })),
      ...(MAX_INFLIGHT === undefined ? {} : { maxInflightMessages: MAX_INFLIGHT }),
    })
    cleanups.push(() => broker.close())
    const brokerPid = await mosquittoPid(broker.dir)
    const vm = STORE === 'influxdb' ? await startVictoriaMetrics() : undefined
    if (vm !== undefined) cleanups.push(() => vm.close())
    const vmPid = vm === undefined ? undefined : await pidByArgument('victoria-metrics', vm.dataDir)
    const { stdout: version } = await execFileAsync('/usr/sbin/mosquitto', ['-h']).catch((e: { stdout?: string }) => ({
      stdout: e.stdout ?? '',
    }))
    const publishers = await startPublishers({
      url: broker.url,
      ids,
      password: devicePassword,
      perDevice: PER_DEVICE,
      inflight: INFLIGHT_PER_DEVICE,
    })
    cleanups.push(() => publishers.stop())
    const total = PER_DEVICE * DEVICES
    console.log(
      `bench: ${DEVICES} devices × ${PER_DEVICE} readings = ${total} QoS 1 messages per phase, ${INFLIGHT_PER_DEVICE} in flight per device; broker ${version.split('\n')[0]?.trim() ?? 'mosquitto'} (dynamic security, shipped mosquitto.conf${MAX_INFLIGHT === undefined ? '' : ` but max_inflight_messages ${MAX_INFLIGHT}`}); store ${STORE === 'sqlite' ? 'SQLite (one file in the shared DATA_DIR)' : `InfluxDB line protocol to VictoriaMetrics ${vm?.url ?? ''}`}`,
    )
    if (STORE === 'influxdb') {
      console.log(
        "note: VictoriaMetrics has no Flux, so the ingest's duplicate lookup (one Flux query per batch) fails once and is skipped (paused 60 s at a time): InfluxDB 2 would answer that query on every batch, so these rates leave out its cost",
      )
    }
    const results: PhaseResult[] = []

    // Phase 1: pass-through baseline (svc.api may subscribe to every device's telemetry).
    const subscriber = await mqtt.connectAsync(broker.url, {
      clientId: 'svc.bench-baseline',
      username: broker.services.api.username,
      password: broker.services.api.password,
      reconnectPeriod: 0,
    })
    let received = 0
    subscriber.on('message', () => {
      received += 1
    })
    await subscriber.subscribeAsync(ALL_TELEMETRY_FILTER, { qos: 1 })
    await publishers.prepare(PHASE_BASES[0])
    const cpu = await cpuAccount({ broker: brokerPid, workers: [], vm: vmPid })
    const t0 = performance.now()
    const published0 = await publishers.go(PHASE_BASES[0])
    await waitFor(() => received >= total, 'the subscriber to receive everything', {
      timeoutMs: PHASE_TIMEOUT_MS,
      intervalMs: 5,
    })
    const baselineMs = performance.now() - t0
    const baselineCpu = await cpu.account()
    await subscriber.endAsync()
    results.push({
      name: 'baseline: Mosquitto pass-through',
      workers: 0,
      rate: total / (baselineMs / 1000),
      seconds: baselineMs / 1000,
      publishSeconds: published0 / 1000,
      brokerCpuUsPerMessage: (baselineCpu.broker * 1_000_000) / total,
      cpu: baselineCpu,
      perWorker: [],
    })
    printPhase(results, total)

    function spawnWorker(index: number): IngestWorker {
      const clientId = `svc.ingest-${index}`
      // The same node invocation as bench/ingest.ts (`node cli/bin/skolluft.js`, without the shebang's memory flags).
      const child = spawn(
        args['as-installed'] ? CLI_BIN : process.execPath,
        args['as-installed'] ? ['ingest'] : [CLI_BIN, 'ingest'],
        {
          env: {
            PATH: process.env.PATH ?? '',
            DATA_DIR: dir.path,
            MQTT_URL: broker.url,
            MQTT_USERNAME: broker.services.ingest.username,
            MQTT_PASSWORD: broker.services.ingest.password,
            INGEST_SHARED_GROUP: SHARED_GROUP,
            INGEST_CLIENT_ID: clientId,
            // info: its 'ingest subscribed' line says when it is ready; nothing is logged per message at info.
            LOG_LEVEL: 'info',
            ...(vm === undefined
              ? {}
              : {
                  STORE: 'influxdb',
                  INFLUX_URL: vm.url,
                  // VictoriaMetrics ignores token, org and bucket (test/support/victoria-metrics.ts).
                  INFLUX_TOKEN: 'bench',
                  INFLUX_ORG: 'skolluft',
                  INFLUX_BUCKET: 'skolluft',
                }),
          },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      )
      let output = ''
      child.stdout?.on('data', (chunk: Buffer) => {
        output += chunk.toString()
      })
      child.stderr?.on('data', (chunk: Buffer) => {
        output += chunk.toString()
      })
      const pid = child.pid
      if (pid === undefined) throw new Error('the ingest worker did not start')
      const worker: IngestWorker = {
        clientId,
        child,
        pid,
        output: () => output,
        subscribed: () => output.includes('"msg":"ingest subscribed"'),
        async stop() {
          child.kill('SIGTERM')
          await exited(child)
        },
      }
      workers.push(worker)
      return worker
    }

    /** Readings of the phase with this base stored so far (SQLite: every row, less those there before the phase). */
    async function phaseCounter(base: number): Promise<() => Promise<number>> {
      if (vm !== undefined) return () => countInVictoriaMetrics(vm, base)
      const before = await storage.readings.countReadings()
      return async () => (await storage.readings.countReadings()) - before
    }

    async function workerPhase(name: string, count: number, base: number): Promise<void> {
      const phase = Array.from({ length: count }, (_, k) => spawnWorker(k + 1))
      await waitFor(
        () => {
          for (const w of phase) {
            if (w.child.exitCode !== null) throw new Error(`${w.clientId} exited: ${w.output().slice(-2000)}`)
          }
          return phase.every((w) => w.subscribed())
        },
        'every worker to subscribe',
        { timeoutMs: 60_000, intervalMs: 50 },
      )
      await publishers.prepare(base)
      const counter = await phaseCounter(base)
      const bytes0 = await bytesReceivedByPid(broker.port)
      const cpu0 = await Promise.all(phase.map((w) => cpuMs(w.pid)))
      const phaseCpu = await cpuAccount({ broker: brokerPid, workers: phase.map((w) => w.pid), vm: vmPid })
      const start = performance.now()
      const publishedMs = await publishers.go(base)
      await waitFor(async () => (await counter()) >= total, `every reading of "${name}" to be stored`, {
        timeoutMs: PHASE_TIMEOUT_MS,
        intervalMs: POLL_MS,
      })
      const ms = performance.now() - start
      const cpu = await phaseCpu.account()
      const bytes1 = await bytesReceivedByPid(broker.port)
      const cpu1 = await Promise.all(phase.map((w) => cpuMs(w.pid)))
      const rss = await Promise.all(phase.map((w) => procStatus(w.pid, 'VmHWM')))
      const got = phase.map((w) => (bytes1.get(w.pid) ?? 0) - (bytes0.get(w.pid) ?? 0))
      const allBytes = got.reduce((a, b) => a + b, 0)
      const stored = await counter()
      if (stored !== total) console.warn(`warning: "${name}" stored ${stored}, expected exactly ${total}`)
      results.push({
        name,
        workers: count,
        rate: total / (ms / 1000),
        seconds: ms / 1000,
        publishSeconds: publishedMs / 1000,
        brokerCpuUsPerMessage: (cpu.broker * 1_000_000) / total,
        cpu,
        perWorker: phase.map((w, k) => ({
          clientId: w.clientId,
          rssMb: rss[k] ?? Number.NaN,
          cpuS: ((cpu1[k] ?? 0) - (cpu0[k] ?? 0)) / 1000,
          share: allBytes === 0 ? Number.NaN : (got[k] ?? 0) / allBytes,
        })),
      })
      printPhase(results, total)
      for (const w of phase) {
        const logged = warnings(w.output())
        for (const [msg, n] of logged) console.log(`  ${w.clientId} logged ${n}× "${msg}"`)
      }
      await Promise.all(phase.map((w) => w.stop()))
    }

    await workerPhase('1 worker', 1, PHASE_BASES[1])
    await workerPhase(`${WORKERS} workers`, WORKERS, PHASE_BASES[2])

    printMarkdown(results, total)
  } finally {
    clearTimeout(deadline)
    for (const w of workers) if (w.child.exitCode === null) w.child.kill('SIGKILL')
    for (const cleanup of cleanups.reverse()) await cleanup().catch((e: unknown) => console.error(String(e)))
    await storage.close()
    await dir.cleanup()
  }
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US').replaceAll(',', ' ')

function printPhase(results: readonly PhaseResult[], total: number): void {
  const r = results.at(-1)
  const baseline = results[0]
  if (r === undefined || baseline === undefined) return
  const unit = r.workers === 0 ? 'msg/s' : 'readings/s stored'
  const ratio = r.workers === 0 ? '' : `, ratio to baseline ${(r.rate / baseline.rate).toFixed(2)}`
  console.log(
    `${r.name}: ${fmt(r.rate)} ${unit} (${total} in ${r.seconds.toFixed(2)} s; publishing took ${r.publishSeconds.toFixed(2)} s${ratio}); mosquitto CPU ${r.brokerCpuUsPerMessage.toFixed(1)} µs/message`,
  )
  const c = r.cpu
  console.log(
    `  CPU s in the phase: mosquitto ${c.broker.toFixed(1)}, ingest workers ${c.workers.toFixed(1)}, bench (publishers) ${c.bench.toFixed(1)}${STORE === 'influxdb' ? `, VictoriaMetrics ${c.victoriaMetrics.toFixed(1)}` : ''}, softirq ${c.softirq.toFixed(1)}, steal ${c.steal.toFixed(1)}, other processes ${c.others.toFixed(1)}, idle ${c.idle.toFixed(1)} (of ${(r.seconds * CORES).toFixed(1)} on ${CORES} cores)`,
  )
  for (const w of r.perWorker) {
    console.log(
      `  ${w.clientId}: peak RSS (VmHWM) ${w.rssMb.toFixed(1)} MB, CPU ${w.cpuS.toFixed(2)} s (${fmt((w.share * total) / w.cpuS || 0)} readings per CPU-second), share ${(w.share * 100).toFixed(1)} % of the stream (≈ ${fmt(w.share * total)} readings)`,
    )
  }
}

/** The figures as a BENCHMARKS.md table. */
function printMarkdown(results: readonly PhaseResult[], total: number): void {
  const baseline = results[0]
  if (baseline === undefined) return
  console.log(
    '\n| phase | stored readings/s | ratio to pass-through | per worker: peak RSS, CPU s, share of the stream | Mosquitto CPU µs/msg | CPU s of other processes / steal / idle |',
  )
  console.log('| --- | --- | --- | --- | --- | --- |')
  for (const r of results) {
    const rate = r.workers === 0 ? `${fmt(r.rate)} msg/s (pass-through)` : fmt(r.rate)
    const ratio = r.workers === 0 ? '1' : (r.rate / baseline.rate).toFixed(2)
    const perWorker =
      r.perWorker.length === 0
        ? '–'
        : r.perWorker
            .map(
              (w) =>
                `${w.rssMb.toFixed(0)} MB, ${w.cpuS.toFixed(1)} s, ${(w.share * 100).toFixed(0)} % (≈ ${fmt(w.share * total)})`,
            )
            .join('; ')
    console.log(
      `| ${r.name} | ${rate} | ${ratio} | ${perWorker} | ${r.brokerCpuUsPerMessage.toFixed(1)} | ${r.cpu.others.toFixed(1)} / ${r.cpu.steal.toFixed(1)} / ${r.cpu.idle.toFixed(1)} |`,
    )
  }
}

await main()
