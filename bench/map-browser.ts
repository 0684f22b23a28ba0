/**
 * Dashboard load benchmark (issue 3: the live map).
 *
 *   npm run bench:map-browser [-- --sites 10000 --loads 5]
 *
 * Seeds `--sites` sites (bench/map-fixture.ts), serves the real dashboard bundle from the API in this
 * process (public map on, tiles off: no network here) and opens it in headless Chromium (Debian's
 * package via playwright-core, the flags of the test suite), `--loads` times, each in a fresh browser
 * context (empty cache). A load ends at the page's `skolluft-ready` performance mark: sites fetched and
 * parsed, every marker drawn on the canvas, filters, list and click handlers attached, i.e. usable.
 * Baseline in the same run: the same page with the 150-site demo size.
 * Prints the median and worst time from navigation start, and the ratio of the medians.
 */
import { parseArgs } from 'node:util'
import { startApi } from '@skolluft/api'
import { buildDashboard } from '@skolluft/dashboard'
import { silentLogger } from '@skolluft/runtime'
import { openSqliteStorage } from '@skolluft/storage'
import { tempDir } from '@skolluft/testkit'
import { launchChromium } from '../test/support/browser.ts'
import { seedMap } from './map-fixture.ts'

const { values: args } = parseArgs({
  options: {
    sites: { type: 'string', default: '10000' },
    loads: { type: 'string', default: '5' },
  },
})
const SITES = Number(args.sites)
const LOADS = Number(args.loads)
const BASELINE_SITES = 150
const TIME_LIMIT_MS = 5 * 60_000
const READY_TIMEOUT_MS = 30_000

async function measure(sites: number): Promise<number[]> {
  const dir = await tempDir('skolluft-bench-browser-')
  const storage = await openSqliteStorage({ path: `${dir.path}/skolluft.db` })
  await seedMap(storage, sites, Date.now())
  const bundle = await buildDashboard({ minify: true })
  const api = await startApi({
    log: silentLogger(),
    storage,
    host: '127.0.0.1',
    port: 0,
    options: { publicMap: true, tileUrl: null },
    dashboard: bundle.files,
  })
  const browser = await launchChromium()
  const times: number[] = []
  try {
    // Warm the server's map snapshot, so every load measures the browser, not the first snapshot build.
    await fetch(`http://127.0.0.1:${api.port}/api/v1/sites`).then((r) => r.arrayBuffer())
    for (let i = 0; i < LOADS; i += 1) {
      const context = await browser.newContext({ viewport: { width: 1280, height: 800 } })
      const page = await context.newPage()
      await page.goto(`http://127.0.0.1:${api.port}/`)
      await page.waitForFunction(() => performance.getEntriesByName('skolluft-ready').length > 0, null, {
        timeout: READY_TIMEOUT_MS,
        polling: 50,
      })
      const ms = await page.evaluate(() => performance.getEntriesByName('skolluft-ready')[0]?.startTime ?? Number.NaN)
      const shown = await page.evaluate(
        () => (window as unknown as { __skolluft: { sites(): unknown[] } }).__skolluft.sites().length,
      )
      if (shown !== sites + 1) throw new Error(`the page shows ${shown} sites, expected ${sites + 1}`)
      times.push(ms)
      await context.close()
    }
  } finally {
    await browser.close()
    await api.close()
    await storage.close()
    await dir.cleanup()
  }
  return times.sort((a, b) => a - b)
}

const median = (sorted: readonly number[]) => sorted[Math.floor(sorted.length / 2)] ?? Number.NaN

async function main(): Promise<void> {
  const limit = setTimeout(() => {
    console.error(`bench exceeded ${TIME_LIMIT_MS / 1000} s; aborting`)
    process.exit(1)
  }, TIME_LIMIT_MS)
  limit.unref()
  const baseline = await measure(BASELINE_SITES)
  const large = await measure(SITES)
  console.log(`\n${LOADS} loads each, fresh context, navigation start → skolluft-ready mark, Node ${process.version}`)
  for (const [label, times] of [
    [`baseline ${BASELINE_SITES} sites`, baseline],
    [`${SITES} sites`, large],
  ] as const) {
    console.log(
      `${label.padEnd(20)} median ${median(times).toFixed(0).padStart(5)} ms   worst ${(times[times.length - 1] ?? Number.NaN).toFixed(0).padStart(5)} ms   all ${times.map((t) => t.toFixed(0)).join(', ')}`,
    )
  }
  console.log(`ratio of medians (${SITES} / ${BASELINE_SITES}): ${(median(large) / median(baseline)).toFixed(2)}`)
}

await main()
