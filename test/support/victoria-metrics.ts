import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { closedPort, tempDir, waitFor } from '@skolluft/testkit'
import { z } from 'zod'

/**
 * VictoriaMetrics for tests: Debian's `victoria-metrics` package (1.79; installed by .ci/run, not run as a
 * service), single-node, on 127.0.0.1 at a free port with its data in a temp dir. It speaks InfluxDB line
 * protocol on `/write` and `/api/v2/write` (the InfluxDB client's path), so the writer runs against it unchanged.
 * VICTORIA_METRICS_PATH points elsewhere if needed.
 *
 * What it makes of a write (checked against 1.79.5):
 * - `POST /api/v2/write?org=…&bucket=…&precision=ms` answers 204; `org`, `bucket` and the token are ignored (no
 *   `db` label is added, no authentication), `precision=ms` is honoured.
 * - Each field becomes its own series named `<measurement>_<field>` with the tags as labels:
 *   `reading,device=d,site=s pm25=1.5,seq=3i 1700000000000` → `reading_pm25{device="d",site="s"} 1.5` and
 *   `reading_seq{device="d",site="s"} 3` at 1700000000000 ms. Integers and floats both become float64.
 *   Escaped characters arrive unescaped (`dev\ ice=a\,b\=c` → label `dev ice` = `a,b=c`).
 *
 * Where it differs from InfluxDB 2 (for the README):
 * - Malformed lines are skipped and counted (`vm_rows_invalid_total{type="influx"}`), the request still gets 204;
 *   InfluxDB 2 answers 400. Some malformed values are even stored: `pm25=abc` is stored as 0. Only a broken body
 *   (e.g. bad gzip) gets 400. So the writer's refused-line path never triggers against VictoriaMetrics.
 * - A point written twice is kept twice (two samples at the same timestamp; no overwrite, no field merge), unless
 *   VictoriaMetrics runs with `-dedup.minScrapeInterval=1ms`, which keeps one sample per series and millisecond.
 *   InfluxDB overwrites the fields of a point with the same series and time.
 * - A 204 does not mean durable: VictoriaMetrics buffers ingested rows and index entries in memory, and a SIGKILL
 *   loses what it acknowledged in the seconds before (measured: 1000 rows written, SIGKILL 0, 1.5, 3 or 6 s later:
 *   all lost; 12 s later: kept). `/snapshot/create` flushes everything to disk first. InfluxDB 2 appends each write
 *   to its WAL (fsync) before answering.
 * - No Flux and no `/api/v2/query`: reads go through PromQL/MetricsQL or `/api/v1/export`.
 */
export const VICTORIA_METRICS_PATH = process.env.VICTORIA_METRICS_PATH ?? '/usr/bin/victoria-metrics'

/** How long VictoriaMetrics may take to answer /health after spawning (it starts in well under a second). */
const START_TIMEOUT_MS = 15_000
/** How long a SIGTERM may take (it flushes its buffers) before the process is killed. */
const STOP_TIMEOUT_MS = 10_000

/**
 * Whether VictoriaMetrics tests can run here. Without the binary they are skipped with the reason printed,
 * unless SKOLLUFT_REQUIRE_VICTORIA_METRICS=1 (set by .ci/run), where a missing binary fails the run instead.
 */
export function victoriaMetricsAvailable(): boolean {
  if (existsSync(VICTORIA_METRICS_PATH)) return true
  const reason = `no ${VICTORIA_METRICS_PATH} (Debian: apt-get install -y victoria-metrics, or set VICTORIA_METRICS_PATH)`
  if (process.env.SKOLLUFT_REQUIRE_VICTORIA_METRICS === '1') {
    throw new Error(`VictoriaMetrics tests required but ${reason}`)
  }
  console.warn(`SKIPPING VictoriaMetrics tests: ${reason}`)
  return false
}

/** One series of /api/v1/export: its labels (with `__name__`), values and timestamps (epoch ms), in time order. */
export const ExportedSeries = z.object({
  metric: z.record(z.string(), z.string()),
  values: z.array(z.number()),
  timestamps: z.array(z.number()),
})
export type ExportedSeries = z.infer<typeof ExportedSeries>

export interface TestVictoriaMetrics {
  /** `http://127.0.0.1:<port>` */
  readonly url: string
  readonly port: number
  readonly dataDir: string
  /** Whether the process runs now. */
  running(): boolean
  /** What the process printed, for failure messages. */
  log(): string
  /** Stops the process: SIGTERM (it flushes) by default, SIGKILL for a crash. The data dir stays. */
  stop(options?: { readonly signal?: 'SIGTERM' | 'SIGKILL' }): Promise<void>
  /** Starts it again on the same port and data dir. */
  restart(): Promise<void>
  /** Makes recent writes visible to exports (`/internal/force_flush`). */
  forceFlush(): Promise<void>
  /** Flushes everything acknowledged to disk (a snapshot, then deleted), so a SIGKILL after it loses nothing. */
  persist(): Promise<void>
  /** Every series matching the selector (default: all), after a force flush. */
  exportSeries(match?: string): Promise<ExportedSeries[]>
  /** Stops the process and removes the data dir; idempotent. */
  close(): Promise<void>
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => child.once('exit', () => resolve()))
}

async function get(url: string): Promise<string> {
  const response = await fetch(url)
  const text = await response.text()
  if (!response.ok) throw new Error(`GET ${url}: ${response.status} ${text}`)
  return text
}

const SnapshotCreated = z.object({ status: z.literal('ok'), snapshot: z.string() })

/** Starts VictoriaMetrics (call victoriaMetricsAvailable() first). */
export async function startVictoriaMetrics(): Promise<TestVictoriaMetrics> {
  const dir = await tempDir('skolluft-vm-')
  const dataDir = join(dir.path, 'data')
  const port = await closedPort()
  const url = `http://127.0.0.1:${port}`
  const args = [
    `-storageDataPath=${dataDir}`,
    `-httpListenAddr=127.0.0.1:${port}`,
    // Test data is dated in the past; the default retention (1 month) would drop it.
    '-retentionPeriod=100y',
    // Queries see samples at once (default: the last 30 s are hidden).
    '-search.latencyOffset=0s',
    '-search.disableCache',
    '-loggerLevel=ERROR',
  ]
  let child: ChildProcess | null = null
  let output = ''

  async function launch(): Promise<void> {
    const started = spawn(VICTORIA_METRICS_PATH, args, { cwd: dir.path, stdio: ['ignore', 'pipe', 'pipe'] })
    child = started
    const collect = (chunk: Buffer) => {
      output += chunk.toString()
    }
    started.stdout?.on('data', collect)
    started.stderr?.on('data', collect)
    await waitFor(
      async () => {
        if (started.exitCode !== null) throw new Error(`victoria-metrics exited with ${started.exitCode}: ${output}`)
        return (await fetch(`${url}/health`)).ok
      },
      `victoria-metrics to answer on ${url}/health`,
      { timeoutMs: START_TIMEOUT_MS },
    )
  }

  async function stop(options: { readonly signal?: 'SIGTERM' | 'SIGKILL' } = {}): Promise<void> {
    const running = child
    child = null
    if (running === null) return
    const timer = setTimeout(() => running.kill('SIGKILL'), STOP_TIMEOUT_MS)
    running.kill(options.signal ?? 'SIGTERM')
    await exited(running)
    clearTimeout(timer)
  }

  async function forceFlush(): Promise<void> {
    await get(`${url}/internal/force_flush`)
  }

  try {
    await launch()
  } catch (error) {
    await stop({ signal: 'SIGKILL' })
    await dir.cleanup()
    throw error
  }

  let closing: Promise<void> | undefined
  return {
    url,
    port,
    dataDir,
    running: () => child !== null,
    log: () => output,
    stop,
    async restart() {
      await stop()
      await launch()
    },
    forceFlush,
    async persist() {
      const created = SnapshotCreated.parse(JSON.parse(await get(`${url}/snapshot/create`)))
      await get(`${url}/snapshot/delete?snapshot=${encodeURIComponent(created.snapshot)}`)
    },
    async exportSeries(match = '{__name__=~".+"}') {
      await forceFlush()
      const body = await get(`${url}/api/v1/export?${new URLSearchParams({ 'match[]': match })}`)
      return body
        .split('\n')
        .filter((line) => line.trim() !== '')
        .map((line) => ExportedSeries.parse(JSON.parse(line)))
    },
    close() {
      closing ??= (async () => {
        await stop({ signal: 'SIGKILL' })
        await dir.cleanup()
      })()
      return closing
    },
  }
}

/**
 * An HTTP front for the write path, between the writer and VictoriaMetrics, that behaves as InfluxDB 2 where
 * VictoriaMetrics does not, and lets a test cut the network:
 * - `refuse(line)` returning a reason makes it answer a request holding that line as InfluxDB OSS 2 does: 400,
 *   `{"code":"invalid","message":"unable to parse '<line>': <reason>"}`, nothing of the batch written; with
 *   `refuseStatus: 422` as InfluxDB answers points it drops (beyond the retention, a field type clash): the other
 *   lines are written and the answer is 422 `{"code":"unprocessable entity","message":"… dropped=<n>"}`;
 * - `maxLines` answers 413 to a request with more lines;
 * - `cut()` destroys every open connection (a request in flight gets no answer) and stops listening (new ones are
 *   refused); `restore()` listens again on the same port.
 * - `stall()` makes it a server that stopped answering (a frozen process, or a network that drops packets): write
 *   requests are held, neither forwarded nor answered, until the client gives up or `cut()` drops them. It
 *   resolves once the target has answered every request forwarded before, so a test can then persist and kill the
 *   target without losing a write it acknowledged. Other requests (queries) are still forwarded. `restore()`
 *   ends the stall.
 * Everything else is forwarded to `targetUrl` (gzip bodies unpacked), and `accepted` records, in order, the lines
 * of each request the target answered with 2xx (even when the answer could no longer reach the client).
 */
export interface InfluxFront {
  readonly url: string
  readonly accepted: string[][]
  cut(): Promise<void>
  stall(): Promise<void>
  restore(): Promise<void>
  close(): Promise<void>
}

export interface InfluxFrontOptions {
  readonly refuse?: (line: string) => string | null
  /** How a refused line is answered: 400 (default, nothing written) or 422 (the other lines written). */
  readonly refuseStatus?: 400 | 422
  readonly maxLines?: number
}

export async function startInfluxFront(targetUrl: string, options: InfluxFrontOptions = {}): Promise<InfluxFront> {
  const port = await closedPort()
  const accepted: string[][] = []
  let server: Server | null = null
  let stalled = false
  /** Requests forwarded to the target and not answered yet, and who waits for none to be left. */
  let forwarding = 0
  const forwardedAll: (() => void)[] = []

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const chunks: Buffer[] = []
    for await (const chunk of request) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)))
    const raw = Buffer.concat(chunks)
    const body = (request.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw).toString('utf8')
    const lines = body.split('\n').filter((line) => line !== '')
    if (options.maxLines !== undefined && lines.length > options.maxLines) {
      response.writeHead(413, { 'content-type': 'application/json' })
      response.end(JSON.stringify({ code: 'request too large', message: `${lines.length} lines` }))
      return
    }
    const refused = lines.flatMap((line) => {
      const reason = options.refuse?.(line) ?? null
      return reason === null ? [] : [{ line, reason }]
    })
    const [first] = refused
    if (first !== undefined && options.refuseStatus !== 422) {
      response.writeHead(400, { 'content-type': 'application/json' })
      response.end(JSON.stringify({ code: 'invalid', message: `unable to parse '${first.line}': ${first.reason}` }))
      return
    }
    if (first !== undefined) {
      // A partial write: the good lines are stored, the answer says how many points were dropped and why.
      const good = lines.filter((line) => !refused.some((r) => r.line === line))
      if (good.length > 0) await forward(request, good)
      response.writeHead(422, { 'content-type': 'application/json' })
      response.end(
        JSON.stringify({
          code: 'unprocessable entity',
          message: `failure writing points to database: partial write: ${first.reason} dropped=${refused.length}`,
        }),
      )
      return
    }
    // Held: no answer and nothing forwarded; the connection stays open until the client or cut() ends it.
    if (stalled && /\/write\b/.test(request.url ?? '')) return
    const upstream = await forward(request, lines, body)
    response.writeHead(upstream.status, { 'content-type': upstream.contentType })
    response.end(upstream.text)
  }

  /** Sends `lines` (or `body` as it came) to the target; records them in `accepted` when it answers 2xx. */
  async function forward(
    request: IncomingMessage,
    lines: string[],
    body: string = lines.join('\n'),
  ): Promise<{ status: number; contentType: string; text: string }> {
    forwarding += 1
    try {
      const upstream = await fetch(`${targetUrl}${request.url ?? '/'}`, {
        method: request.method ?? 'POST',
        headers: { 'content-type': 'text/plain; charset=utf-8' },
        body,
      })
      const text = await upstream.text()
      if (upstream.ok) accepted.push(lines)
      return { status: upstream.status, contentType: upstream.headers.get('content-type') ?? 'text/plain', text }
    } finally {
      forwarding -= 1
      if (forwarding === 0) for (const wake of forwardedAll.splice(0)) wake()
    }
  }

  function listen(): Promise<void> {
    const created = createHttpServer((request, response) => {
      handle(request, response).catch((error: unknown) => {
        if (!response.headersSent) response.writeHead(502, { 'content-type': 'text/plain' })
        response.end(String(error))
      })
    })
    server = created
    return new Promise((resolve, reject) => {
      created.once('error', reject)
      created.listen(port, '127.0.0.1', () => resolve())
    })
  }

  async function cut(): Promise<void> {
    const running = server
    server = null
    if (running === null) return
    const closed = new Promise<void>((resolve) => running.close(() => resolve()))
    running.closeAllConnections()
    await closed
  }

  await listen()
  return {
    url: `http://127.0.0.1:${port}`,
    accepted,
    cut,
    stall() {
      stalled = true
      if (forwarding === 0) return Promise.resolve()
      return new Promise((resolve) => forwardedAll.push(resolve))
    },
    async restore() {
      stalled = false
      if (server === null) await listen()
    },
    close: cut,
  }
}
