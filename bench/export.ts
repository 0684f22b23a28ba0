/**
 * Export benchmark (issue 5: "export of 10 million raw readings streams at 200,000 rows per second or more and
 * stays under 150 MB of resident memory").
 *
 *   npm run bench:export [-- --readings 10000000 --devices 100 --format csv|ndjson|parquet --schema 2]
 *
 * Seeds a SQLite store with `--readings` raw readings of one metric (PM2.5) spread over `--devices` devices at as
 * many sites (one export row per reading: the export is one row per value; schema 2 adds the quality and
 * correction columns, which the bench's readings leave unchecked and uncorrected), then runs `skolluft api`
 * as a separate process and downloads GET /api/v1/export?resolution=raw with a researcher token, counting rows and
 * bytes as they arrive and discarding them. Figures: rows per second from the request to the last byte, and the
 * API process's peak resident memory (VmHWM, read from /proc when the download ends).
 * Baseline, same run: SQLite alone reading the same rows (`storage.readings.streamReadings` in this process,
 * no formatting, no HTTP), so the ratio says what the HTTP path costs on top of the read.
 *
 * The API is started as `npx skolluft api` starts it: the bin script executed directly, so the memory settings of
 * its first line (glibc arenas and trimming, V8 young generation and heap growth) apply; the bench prints them.
 * Where the memory went (2 million rows, `skolluft api`, /proc/<pid>/smaps and process.memoryUsage(), 2026-11-30):
 * - at rest, 142 MB without the settings: node itself 43 MB (36 MB of it the mapped binary); tsx ~35 MB (its
 *   loader thread is a second V8 isolate; the same API bundled and run without tsx sat at 108 MB); the V8 heap
 *   51 MB, 32 MB of it an almost empty young generation grown at start-up; glibc thread arenas 21-30 MB and start-up
 *   garbage glibc kept; the in-memory dashboard bundle < 3 MB (an API without the dashboard: 142 vs 152 MB in one
 *   pair of runs, 104 vs 103 MB with the settings: noise).
 * - while exporting, peak 275 MB: old-generation garbage (rows promoted out of a young generation that a
 *   5 000-row storage batch does not fit, and 350 KB strings per batch in the large-object space) up to 80 MB
 *   before a full collection, and glibc arenas +35 MB.
 * With the settings (then a 2 MB young generation, now 4 MB: cli/bin/skolluft.js), 10 million rows: 118 MB at rest,
 * 140 MB peak, but the 2 MB young generation halves the rate
 * while a storage batch is 5 000 rows (129 570 rows/s); with 1 000-row batches (EXPORT_BATCH_ROWS) 102 MB at rest,
 * 130 MB peak, 262 562 rows/s.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { request } from 'node:http'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { HOUR_MS, METRICS } from '@skolluft/core'
import { openSqliteStorage, type StoredReading } from '@skolluft/storage'
import { tempDir, waitFor } from '@skolluft/testkit'
import { parquetMetadata } from 'hyparquet'

const { values: args } = parseArgs({
  options: {
    readings: { type: 'string', default: '10000000' },
    devices: { type: 'string', default: '100' },
    format: { type: 'string', default: 'csv' },
    schema: { type: 'string', default: '2' },
    // Every reading carries all six metrics (six export rows per reading) instead of PM2.5 alone.
    'all-metrics': { type: 'boolean', default: false },
    // Keep the seeded data in this directory and reuse it next time (seeding 10 million readings takes minutes).
    keep: { type: 'string' },
  },
})
const READINGS = Number(args.readings)
const DEVICES = Number(args.devices)
const FORMAT = args.format === 'ndjson' || args.format === 'parquet' ? args.format : 'csv'
const SCHEMA = args.schema === '1' ? '1' : '2'
const TARGET_ROWS_PER_S = 200_000
const TARGET_RSS_MB = 150
const CLI_BIN = fileURLToPath(new URL('../cli/bin/skolluft.js', import.meta.url))
/** One reading a minute per device, ending an hour before the bench starts. */
const INTERVAL_MS = 60_000
const WRITE_BATCH = 20_000

const ALL_METRICS = args['all-metrics'] === true

function valuesOf(k: number, i: number): StoredReading['values'] {
  const pm25 = Math.round((5 + ((k * 7 + i * 13) % 400) / 10) * 10) / 10
  if (!ALL_METRICS) return { pm25 }
  return { pm1: Math.round(pm25 * 6) / 10, pm25, pm10: Math.round(pm25 * 15) / 10, no2: 12.4, temp: 4.5, rh: 81.2 }
}

async function seed(path: string): Promise<{ from: number; to: number }> {
  const storage = openSqliteStorage({ path })
  try {
    await storage.registry.upsertSites(
      Array.from({ length: DEVICES }, (_, i) => ({
        id: `bench-site-${i}`,
        name: `Benchskolan ${i}`,
        kind: 'school' as const,
        municipality: 'Lund',
        lat: 55.6 + i * 0.001,
        lon: 13.1,
        demo: true,
      })),
    )
    for (let i = 0; i < DEVICES; i++) {
      await storage.registry.addDevice(
        {
          id: `bench-dev-${i}`,
          model: 'bench',
          sensors: [...METRICS],
          intervalS: INTERVAL_MS / 1000,
          secretHash: 'bench',
          placement: { siteId: `bench-site-${i}`, from: 0, indoor: false, heightM: 2 },
        },
        Date.now(),
      )
    }
    const perDevice = Math.ceil(READINGS / DEVICES)
    const to = Math.floor(Date.now() / HOUR_MS) * HOUR_MS - HOUR_MS
    const from = to - perDevice * INTERVAL_MS
    const started = performance.now()
    let batch: StoredReading[] = []
    let written = 0
    for (let k = 0; k < perDevice && written < READINGS; k++) {
      for (let i = 0; i < DEVICES && written < READINGS; i++) {
        batch.push({
          deviceId: `bench-dev-${i}`,
          siteId: `bench-site-${i}`,
          ts: from + k * INTERVAL_MS,
          seq: null,
          // One decimal, as sensors send it.
          values: valuesOf(k, i),
          receivedAt: from + k * INTERVAL_MS,
          expectedPerHour: 60,
        })
        written += 1
        if (batch.length >= WRITE_BATCH) {
          await storage.readings.writeReadings(batch)
          batch = []
        }
      }
    }
    if (batch.length > 0) await storage.readings.writeReadings(batch)
    console.log(`seeded ${written} readings in ${((performance.now() - started) / 1000).toFixed(1)} s (not timed)`)
    return { from, to: to + 1 }
  } finally {
    await storage.close()
  }
}

async function baseline(path: string, range: { from: number; to: number }): Promise<number> {
  const storage = openSqliteStorage({ path })
  try {
    const started = performance.now()
    let rows = 0
    for await (const batch of storage.readings.streamReadings({ metrics: ['pm25'], ...range })) rows += batch.length
    const rate = rows / ((performance.now() - started) / 1000)
    console.log(`baseline, storage stream alone: ${rows} rows, ${Math.round(rate).toLocaleString('en')} rows/s`)
    return rate
  } finally {
    await storage.close()
  }
}

function runCli(args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI_BIN, ...args], { env, stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString('utf8')
    })
    child.once('error', reject)
    child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`skolluft ${args[0]} exited ${code}`))))
  })
}

async function memoryMb(pid: number, field: 'VmHWM' | 'VmRSS'): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const kb = Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? Number.NaN)
  return kb / 1024
}

/** The node options and malloc settings the API process runs with, from /proc (what its bin script applied). */
async function launchSettings(pid: number): Promise<string> {
  const split = async (file: string) => (await readFile(`/proc/${pid}/${file}`, 'utf8')).split('\0')
  const argv = await split('cmdline')
  const options = argv.slice(1).filter((arg) => arg.startsWith('--'))
  const malloc = (await split('environ')).filter((entry) => entry.startsWith('MALLOC_'))
  return `node ${[...options, ...malloc].join(' ') || '(no memory settings)'}`
}

/** The seeded range of a kept data directory, or a fresh seed (remembered there when --keep is given). */
async function seeded(dir: string): Promise<{ from: number; to: number }> {
  const rangeFile = join(dir, 'bench-range.json')
  if (args.keep !== undefined) {
    const kept: unknown = await readFile(rangeFile, 'utf8').then(JSON.parse, () => undefined)
    if (typeof kept === 'object' && kept !== null && 'from' in kept && 'to' in kept && 'readings' in kept) {
      if (
        kept.readings === READINGS &&
        'allMetrics' in kept &&
        kept.allMetrics === ALL_METRICS &&
        typeof kept.from === 'number' &&
        typeof kept.to === 'number'
      ) {
        console.log(`reusing the ${READINGS} readings seeded in ${dir}`)
        return { from: kept.from, to: kept.to }
      }
    }
  }
  const range = await seed(join(dir, 'skolluft.db'))
  if (args.keep !== undefined)
    await writeFile(rangeFile, JSON.stringify({ ...range, readings: READINGS, allMetrics: ALL_METRICS }))
  return range
}

async function main(): Promise<void> {
  const kept = args.keep
  if (kept !== undefined) await mkdir(kept, { recursive: true })
  const dir = kept === undefined ? await tempDir('skolluft-bench-export-') : { path: kept, cleanup: async () => {} }
  let api: ChildProcess | undefined
  try {
    const env = { ...process.env, DATA_DIR: dir.path, LOG_LEVEL: 'info', HOST: '127.0.0.1', PORT: '0' }
    const range = await seeded(dir.path)
    const baseRate = await baseline(join(dir.path, 'skolluft.db'), range)
    const token = JSON.parse(await runCli(['token', 'create', '--role', 'researcher', '--json'], env)).token as string

    // The API alone, in its own process: its memory is what is measured. The bin script is executed as `npx skolluft`
    // executes it (through its first line, which sets the process's memory options), not as `node <script>`.
    const child = spawn(CLI_BIN, ['api'], { env, stdio: ['ignore', 'pipe', 'pipe'] })
    api = child
    let log = ''
    child.stdout?.on('data', (d: Buffer) => {
      log += d.toString('utf8')
    })
    child.stderr?.on('data', () => undefined)
    const port = await waitFor(
      () => Number(/"port":(\d+)/.exec(log)?.[1] ?? /127\.0\.0\.1:(\d+)/.exec(log)?.[1] ?? 0),
      'the API to listen',
      { timeoutMs: 60_000, intervalMs: 50 },
    )
    const pid = child.pid ?? 0
    const query = new URLSearchParams({
      resolution: 'raw',
      format: FORMAT,
      schema: SCHEMA,
      ...(ALL_METRICS ? {} : { metrics: 'pm25' }),
      from: new Date(range.from).toISOString(),
      to: new Date(range.to).toISOString(),
    })
    console.log(`API process: ${await launchSettings(pid)}`)
    const idleRss = await memoryMb(pid, 'VmRSS')
    const startupPeak = await memoryMb(pid, 'VmHWM')
    // Resident memory sampled during the download: VmHWM alone would include the start-up peak (tsx compiling the
    // sources, esbuild bundling the dashboard).
    let exportPeak = idleRss
    const sampler = setInterval(() => {
      memoryMb(pid, 'VmRSS').then(
        (mb) => {
          exportPeak = Math.max(exportPeak, mb)
        },
        () => undefined,
      )
    }, 50)
    const started = performance.now()
    const { rows, bytes } = await new Promise<{ rows: number; bytes: number }>((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port, path: `/api/v1/export?${query}`, headers: { authorization: `Bearer ${token}` } },
        (res) => {
          if (res.statusCode !== 200) {
            reject(new Error(`export answered ${res.statusCode}`))
            res.resume()
            return
          }
          let lines = 0
          let size = 0
          // Parquet has no lines: its footer says how many rows it holds (the file is ~2.5 bytes a row).
          const parts: Buffer[] = []
          res.on('data', (chunk: Buffer) => {
            size += chunk.length
            if (FORMAT === 'parquet') parts.push(chunk)
            else for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines += 1
          })
          res.on('end', () => {
            if (FORMAT === 'parquet') {
              const file = Buffer.concat(parts)
              const metadata = parquetMetadata(file.buffer.slice(file.byteOffset, file.byteOffset + file.byteLength))
              resolve({ rows: Number(metadata.num_rows), bytes: size })
            } else resolve({ rows: FORMAT === 'csv' ? lines - 1 : lines, bytes: size })
          })
          res.on('error', reject)
        },
      )
      req.on('error', reject)
      req.end()
    })
    const seconds = (performance.now() - started) / 1000
    clearInterval(sampler)
    const rss = Math.max(exportPeak, await memoryMb(pid, 'VmRSS'))
    const rate = rows / seconds
    console.log(
      `export ${FORMAT} (schema ${SCHEMA}) over HTTP: ${rows} rows, ${(bytes / 1e6).toFixed(0)} MB in ${seconds.toFixed(1)} s: ` +
        `${Math.round(rate).toLocaleString('en')} rows/s (target ${TARGET_ROWS_PER_S.toLocaleString('en')}); ` +
        `ratio to the storage stream ${(rate / baseRate).toFixed(2)}`,
    )
    console.log(
      `API process resident memory: ${idleRss.toFixed(0)} MB before the export (start-up peak ${startupPeak.toFixed(0)} MB), ` +
        `peak during the export ${rss.toFixed(0)} MB (target < ${TARGET_RSS_MB} MB)`,
    )
    console.log(
      `${rate >= TARGET_ROWS_PER_S && rss < TARGET_RSS_MB ? 'PASS' : 'FAIL'}: ${rows === READINGS * (ALL_METRICS ? 6 : 1) ? 'all' : 'NOT all'} rows exported`,
    )
  } finally {
    api?.kill('SIGTERM')
    await dir.cleanup()
  }
}

await main()
