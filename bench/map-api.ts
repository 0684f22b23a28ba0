/**
 * Map API latency benchmark (issue 3: the live map).
 *
 *   npm run bench:map-api [-- --sites 10000 --requests 300]
 *
 * Seeds a SQLite store with `--sites` sites (one hourly device each, a day of readings) and one site
 * with a year of 10-minute readings (bench/map-fixture.ts), starts the API in this process (public map
 * on, the default snapshot age) and times, from a client on the same machine, whole requests (until
 * the last body byte is read), one at a time:
 *   - baseline: GET /api/v1/guidelines (a small constant JSON through the same middleware);
 *   - GET /api/v1/sites (gzip accepted, as a browser sends it), for at least `--seconds` (default 15) so
 *     the run spans several rebuilds of the map snapshot (every 5 s, api/src/map-snapshot.ts);
 *   - GET /api/v1/sites/<year site>/series?metric=pm25&every=1h over 365 days (8 760 hourly points),
 *     without and with gzip.
 * Prints p50/p95/max per endpoint, the bytes on the wire and the p95 ratio to the baseline. The first /sites request, which
 * builds the map snapshot, is reported on its own line ("cold"), then excluded from the percentiles.
 */
import { get } from 'node:http'
import { parseArgs } from 'node:util'
import { startApi } from '@skolluft/api'
import { DAY_MS } from '@skolluft/core'
import { silentLogger } from '@skolluft/runtime'
import { openSqliteStorage } from '@skolluft/storage'
import { tempDir } from '@skolluft/testkit'
import { seedMap, YEAR_SITE } from './map-fixture.ts'

const { values: args } = parseArgs({
  options: {
    sites: { type: 'string', default: '10000' },
    requests: { type: 'string', default: '300' },
    seconds: { type: 'string', default: '15' },
  },
})
const SITES = Number(args.sites)
const REQUESTS = Number(args.requests)
/** /sites is also asked for this long, so the run spans several snapshot rebuilds (every 5 s). */
const SITES_SECONDS = Number(args.seconds)
/** Bound on the whole run, whatever happens. */
const TIME_LIMIT_MS = 5 * 60_000

function percentile(sorted: readonly number[], p: number): number {
  const index = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)
  return sorted[Math.max(0, index)] ?? Number.NaN
}

/** One GET over a fresh connection; the body is read to its last byte as sent (not decompressed). */
function timed(url: string, headers: Record<string, string> = {}): Promise<{ ms: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    const started = performance.now()
    get(url, { headers, agent: false }, (response) => {
      let bytes = 0
      response.on('data', (chunk: Buffer) => {
        bytes += chunk.byteLength
      })
      response.on('end', () => {
        if (response.statusCode !== 200) reject(new Error(`${url} answered ${response.statusCode}`))
        else resolve({ ms: performance.now() - started, bytes })
      })
      response.on('error', reject)
    }).on('error', reject)
  })
}

async function series(label: string, url: string, headers?: Record<string, string>, seconds = 0) {
  const times: number[] = []
  let bytes = 0
  const until = performance.now() + seconds * 1000
  for (let i = 0; i < REQUESTS || performance.now() < until; i += 1) {
    const r = await timed(url, headers)
    times.push(r.ms)
    bytes = r.bytes
  }
  times.sort((a, b) => a - b)
  return {
    label,
    count: times.length,
    p50: percentile(times, 50),
    p95: percentile(times, 95),
    max: times[times.length - 1] ?? 0,
    bytes,
  }
}

async function main(): Promise<void> {
  const limit = setTimeout(() => {
    console.error(`bench exceeded ${TIME_LIMIT_MS / 1000} s; aborting`)
    process.exit(1)
  }, TIME_LIMIT_MS)
  limit.unref()
  const dir = await tempDir('skolluft-bench-map-')
  const storage = await openSqliteStorage({ path: `${dir.path}/skolluft.db` })
  const now = Date.now()
  const seedStarted = performance.now()
  await seedMap(storage, SITES, now)
  console.log(`seeded ${SITES} sites + 1 year site in ${((performance.now() - seedStarted) / 1000).toFixed(1)} s`)
  const api = await startApi({
    log: silentLogger(),
    storage,
    host: '127.0.0.1',
    port: 0,
    options: {
      publicMap: true,
      // One client sends every request here; a real client meets the default per-address limit long before.
      rateLimit: { ratePerS: 1e6, burst: 1e6 },
    },
  })
  const base = `http://127.0.0.1:${api.port}/api/v1`
  try {
    const cold = await timed(`${base}/sites`, { 'accept-encoding': 'gzip' })
    console.log(
      `cold /sites (builds the snapshot): ${cold.ms.toFixed(1)} ms, ${(cold.bytes / 1e6).toFixed(2)} MB sent (gzip)`,
    )
    const from = new Date(now - 365 * DAY_MS).toISOString()
    const to = new Date(now).toISOString()
    const yearUrl = `${base}/sites/${YEAR_SITE}/series?metric=pm25&every=1h&from=${from}&to=${to}`
    const results = [
      await series('baseline GET /guidelines', `${base}/guidelines`),
      await series(`GET /sites (${SITES} sites, gzip)`, `${base}/sites`, { 'accept-encoding': 'gzip' }, SITES_SECONDS),
      await series('GET series 1 year hourly', yearUrl),
      await series('GET series 1 year hourly, gzip', yearUrl, { 'accept-encoding': 'gzip' }),
    ]
    const baseline = results[0]?.p95 ?? Number.NaN
    console.log(`\nsequential requests, Node ${process.version}`)
    console.log(
      'endpoint                                 requests   p50 ms   p95 ms   max ms   bytes sent   p95/baseline',
    )
    for (const r of results) {
      console.log(
        `${r.label.padEnd(40)} ${String(r.count).padStart(8)} ${r.p50.toFixed(1).padStart(8)} ${r.p95.toFixed(1).padStart(8)} ${r.max.toFixed(1).padStart(8)} ${String(r.bytes).padStart(12)}   ${(r.p95 / baseline).toFixed(1)}`,
      )
    }
  } finally {
    await api.close()
    await storage.close()
    await dir.cleanup()
  }
}

await main()
