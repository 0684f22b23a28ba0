/**
 * Municipality report benchmark (issue 7: a committee member opens the year report of every school).
 *
 *   npm run bench:municipal-report [-- --sites 150 --year 2025 --repeat 3 --keep /tmp/municipal-bench]
 *
 * Seeds a SQLite store with `--sites` sites (schools and preschools, one outdoor device each) and one reading an
 * hour of every metric for the calendar year `--year` plus a week on either side (1.3 million readings for 150
 * sites; seeding is not timed), starts the real API in this process on 127.0.0.1:0 (public map on, so anyone may
 * read every site) and times over HTTP, one request at a time, whole requests until the last body byte:
 *   - GET /api/v1/reports/municipality for the calendar year, and for one month (January), on a fresh API each
 *     time (computed), then the same request again (served from the route's few-minute cache);
 * Baseline, same run, same process: the report built site by site as each site's own report is built
 * (api/src/routes/municipal-report.ts `municipalReportPerSite`: reports.ts buildSiteReport per site, then core
 * siteReport), called directly without HTTP. It shares the storage read and the core with the route, so the
 * ratio shows what the route saves on top of them; BENCHMARKS.md has the figures from before those changes. Its numbers must equal the
 * route's (checked: the bench fails otherwise). Prints seconds (best of `--repeat`) and route/baseline ratios.
 */
import { existsSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { get } from 'node:http'
import { join } from 'node:path'
import { isDeepStrictEqual, parseArgs } from 'node:util'
import { createApi, startApi } from '@skolluft/api'
import { createRng, HOUR_MS, REGULATORY_DAY_OFFSET_MS, type SiteInput } from '@skolluft/core'
import { silentLogger } from '@skolluft/runtime'
import { openSqliteStorage, type Storage, type StoredReading } from '@skolluft/storage'
import { tempDir } from '@skolluft/testkit'
import { z } from 'zod'
import { municipalReportPerSite } from '../api/src/routes/municipal-report.ts'
import { reportPeriod, selectedProfiles } from '../api/src/routes/reports.ts'

const { values: args } = parseArgs({
  options: {
    sites: { type: 'string', default: '150' },
    year: { type: 'string', default: '2025' },
    repeat: { type: 'string', default: '3' },
    // Keep the seeded store in this directory and reuse it next time (seeding takes over a minute).
    keep: { type: 'string' },
  },
})
const SITES = Number(args.sites)
const YEAR = Number(args.year)
const REPEAT = Math.max(1, Number(args.repeat))
/** Bound on the whole run, whatever happens (seeding 150 sites takes ~1 min, the baseline year ~45 s a run). */
const TIME_LIMIT_MS = 15 * 60_000
/** Seeded on either side of the year: more than the report's quality-check margin (a day). */
const MARGIN_MS = 7 * 24 * HOUR_MS
const WRITE_BATCH = 20_000
const tenth = (value: number): number => Math.round(value * 10) / 10

async function seed(storage: Storage): Promise<number> {
  const rng = createRng(7)
  const sites: SiteInput[] = Array.from({ length: SITES }, (_, i) => ({
    id: `bench-${String(i).padStart(4, '0')}`,
    name: `Bench ${i % 2 === 0 ? 'skola' : 'förskola'} ${i}`,
    kind: i % 2 === 0 ? 'school' : 'preschool',
    municipality: 'Lund',
    lat: 55.6 + rng() * 0.2,
    lon: 13.1 + rng() * 0.4,
    demo: true,
  }))
  await storage.registry.upsertSites(sites)
  const from = Date.UTC(YEAR, 0, 1) - REGULATORY_DAY_OFFSET_MS - MARGIN_MS
  const to = Date.UTC(YEAR + 1, 0, 1) - REGULATORY_DAY_OFFSET_MS + MARGIN_MS
  for (const site of sites) {
    await storage.registry.addDevice(
      {
        id: `dev-${site.id}`,
        model: 'bench',
        sensors: ['pm1', 'pm25', 'pm10', 'no2', 'temp', 'rh'],
        intervalS: 3600,
        secretHash: 'bench',
        placement: { siteId: site.id, from: from - HOUR_MS, indoor: false, heightM: 3 },
      },
      from - HOUR_MS,
    )
  }
  let batch: StoredReading[] = []
  let written = 0
  for (const [i, site] of sites.entries()) {
    const level = 4 + (i % 17)
    for (let t = from; t < to; t += HOUR_MS) {
      // Gaps (~8 %) so coverage varies; a humid hour now and then (the PM hours then do not count).
      if (rng() < 0.08) continue
      const hourOfDay = (t / HOUR_MS) % 24
      const pm25 = tenth(level + (hourOfDay === 7 || hourOfDay === 8 ? 6 : 0) + rng() * 8)
      batch.push({
        deviceId: `dev-${site.id}`,
        siteId: site.id,
        ts: t + 17 * 60_000,
        seq: null,
        values: {
          pm1: tenth(pm25 * 0.7),
          pm25,
          pm10: tenth(pm25 * 1.6 + rng() * 4),
          no2: tenth(8 + rng() * 30),
          temp: tenth(8 + rng() * 10),
          rh: tenth(60 + rng() * 33),
        },
        receivedAt: t + 17 * 60_000,
        expectedPerHour: 1,
      })
      if (batch.length >= WRITE_BATCH) {
        await storage.readings.writeReadings(batch)
        written += batch.length
        batch = []
      }
    }
  }
  await storage.readings.writeReadings(batch)
  return written + batch.length
}

/** One GET over a fresh connection; the whole body. */
function fetchText(url: string): Promise<{ ms: number; body: string }> {
  return new Promise((resolve, reject) => {
    const started = performance.now()
    get(url, { agent: false }, (response) => {
      const chunks: Buffer[] = []
      response.on('data', (chunk: Buffer) => chunks.push(chunk))
      response.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8')
        if (response.statusCode !== 200) reject(new Error(`${url} answered ${response.statusCode}: ${body}`))
        else resolve({ ms: performance.now() - started, body })
      })
      response.on('error', reject)
    }).on('error', reject)
  })
}

const Body = z.object({ generated_at: z.string(), report: z.unknown(), outdoor_only_sites: z.array(z.string()) })

async function main(): Promise<void> {
  const limit = setTimeout(() => {
    console.error(`bench exceeded ${TIME_LIMIT_MS / 1000} s; aborting`)
    process.exit(1)
  }, TIME_LIMIT_MS)
  limit.unref()
  const dir = args.keep === undefined ? await tempDir('skolluft-bench-municipal-') : undefined
  const path = dir === undefined ? join(args.keep ?? '.', 'skolluft.db') : join(dir.path, 'skolluft.db')
  const marker = `${path}.seeded-${SITES}-${YEAR}`
  if (dir === undefined) await mkdir(args.keep ?? '.', { recursive: true })
  const reuse = dir === undefined && existsSync(marker)
  const storage = openSqliteStorage({ path })
  if (reuse) console.log(`reusing the store seeded in ${path}`)
  else {
    const seedStarted = performance.now()
    const readings = await seed(storage)
    if (dir === undefined) await writeFile(marker, '')
    console.log(
      `seeded ${SITES} sites, ${readings} readings (one an hour, ${YEAR} ± 7 days) in ${((performance.now() - seedStarted) / 1000).toFixed(1)} s (not timed)`,
    )
  }
  const options = { publicMap: true, rateLimit: { ratePerS: 1e6, burst: 1e6 } }
  // The baseline's context: the same storage and options, without a server.
  const { ctx } = createApi({ log: silentLogger(), storage, options })
  try {
    const periods = [
      { label: `year ${YEAR}`, from: `${YEAR}-01-01`, to: `${YEAR}-12-31` },
      { label: `month ${YEAR}-01`, from: `${YEAR}-01-01`, to: `${YEAR}-01-31` },
    ]
    const rows: { label: string; route: number; cached: number; baseline: number }[] = []
    for (const period of periods) {
      const window = reportPeriod(period)
      const profiles = selectedProfiles(undefined)
      const registry = { sites: await storage.registry.listSites(), devices: await storage.registry.listDevices() }
      let baseline = Number.POSITIVE_INFINITY
      let reference: unknown
      for (let i = 0; i < REPEAT; i += 1) {
        const started = performance.now()
        const numbers = await municipalReportPerSite(ctx, window, profiles, registry, Date.now())
        baseline = Math.min(baseline, performance.now() - started)
        reference = JSON.parse(JSON.stringify({ report: numbers.report, outdoor_only_sites: numbers.outdoorOnly }))
      }
      let route = Number.POSITIVE_INFINITY
      let cached = Number.POSITIVE_INFINITY
      for (let i = 0; i < REPEAT; i += 1) {
        // A fresh API each time: its first request computes the report, the second is served from its cache.
        const api = await startApi({ log: silentLogger(), storage, host: '127.0.0.1', port: 0, options })
        try {
          const url = `http://127.0.0.1:${api.port}/api/v1/reports/municipality?from=${period.from}&to=${period.to}`
          for (const [k, { ms, body }] of [await fetchText(url), await fetchText(url)].entries()) {
            if (k === 0) route = Math.min(route, ms)
            else cached = Math.min(cached, ms)
            const parsed = Body.parse(JSON.parse(body))
            const got = { report: parsed.report, outdoor_only_sites: parsed.outdoor_only_sites }
            if (!isDeepStrictEqual(got, reference)) {
              throw new Error(`${period.label}: the route's numbers differ from the per-site baseline`)
            }
          }
        } finally {
          await api.close()
        }
      }
      rows.push({ label: period.label, route, cached, baseline })
    }
    console.log(`\n${SITES} sites, best of ${REPEAT}, Node ${process.version}; numbers identical to the baseline`)
    console.log(
      'period          route (HTTP) s   baseline (per site, no HTTP) s   route/baseline   repeat within 5 min (cached) s',
    )
    for (const r of rows) {
      console.log(
        `${r.label.padEnd(15)} ${(r.route / 1000).toFixed(2).padStart(14)} ${(r.baseline / 1000).toFixed(2).padStart(32)} ${(r.route / r.baseline).toFixed(3).padStart(16)} ${(r.cached / 1000).toFixed(3).padStart(32)}`,
      )
    }
  } finally {
    await storage.close()
    await dir?.cleanup()
  }
}

await main()
