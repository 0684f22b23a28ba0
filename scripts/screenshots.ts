/**
 * Screenshots of the live map for the documentation: docs/screenshots/{map,panel,list,phone}.png.
 *
 *   npx tsx scripts/screenshots.ts [--days 2] [--out docs/screenshots]
 *
 * Runs the real platform in this process, as `skolluft start` does (cli/src/commands/services.ts):
 * gateway, ingest, SQLite in a temporary directory, the API with the dashboard, and the simulated fleet
 * on the demo registry (invented sites), with `--days` of history backfilled so the charts have
 * something to show. Map tiles are off (no internet needed; the map has its plain background), and
 * headless Chromium takes the pictures (test/support/browser.ts: Debian's chromium, or CHROMIUM_PATH).
 * Everything is removed again at the end.
 */
import { mkdir, readFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { ALL_TELEMETRY_FILTER, METRICS, parseSitesFile } from '@skolluft/core'
import { buildDashboard } from '@skolluft/dashboard'
import { createFleet, type Fleet, type SimDevice } from '@skolluft/firmware-sim'
import { startGateway } from '@skolluft/gateway'
import { createLogger, generateSecret, hashSecret } from '@skolluft/runtime'
import { openSqliteStorage } from '@skolluft/storage'
import { tempDir, waitFor } from '@skolluft/testkit'
import type { Browser, Page } from 'playwright-core'
import { launchChromium } from '../test/support/browser.ts'
import { startLiveServices } from '../test/support/live-platform.ts'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const DEMO_SITES_FILE = join(ROOT, 'infra/demo/lund-demo-sites.geojson')
const DEFAULT_OUT = join(ROOT, 'docs/screenshots')
const DESKTOP = { width: 1280, height: 800 }
/** iPhone 12–15 CSS viewport. */
const PHONE = { width: 390, height: 844 }
/** Device contract: one reading a minute. */
const SIM_INTERVAL_S = 60
/** Backfilling two days for 150 devices (~430 000 readings) took ~40 s here; leave plenty of room. */
const STORE_TIMEOUT_MS = 10 * 60_000
const PAGE_TIMEOUT_MS = 30_000
/** Top of the EAQI "moderate" band for PM2.5 (core aqi.ts); higher simulated values are mostly fault spikes. */
const SHOWCASE_MAX_PM25 = 50

/** Longer than Leaflet's 0.25 s pan animation. */
const PAN_SETTLE_MS = 500

type Closer = () => Promise<void>

interface HookSite {
  readonly id: string
  readonly band: number | null
  readonly value: number | null
}
/** The dashboard's test hook (dashboard/src/client/app.ts TestHook), as the page sees it. */
type HookWindow = {
  readonly __skolluft?: {
    readonly ready: boolean
    sites(): HookSite[]
    markerPoint(id: string): { x: number; y: number } | null
  }
}

function log(message: string): void {
  console.log(`screenshots: ${message}`)
}

async function openMap(browser: Browser, url: string, phone: boolean): Promise<Page> {
  const context = await browser.newContext(
    phone
      ? { viewport: PHONE, deviceScaleFactor: 2, isMobile: true, hasTouch: true }
      : { viewport: DESKTOP, deviceScaleFactor: 1 },
  )
  const page = await context.newPage()
  page.setDefaultTimeout(PAGE_TIMEOUT_MS)
  page.on('pageerror', (error) => log(`page error: ${error.message}`))
  await page.goto(url)
  await page.waitForFunction(() => (window as unknown as HookWindow).__skolluft?.ready === true)
  return page
}

/**
 * The site to show in the panel: among those drawn near the middle of the map, the one with the
 * highest PM2.5 now up to SHOWCASE_MAX_PM25 (a chart that rises towards the guideline lines says more
 * than a flat one; a simulated sensor fault's spike says less).
 */
async function pickSite(page: Page): Promise<{ id: string; x: number; y: number }> {
  const picked = await page.evaluate((maxValue) => {
    const hook = (window as unknown as HookWindow).__skolluft
    if (hook === undefined) return null
    const box = document.querySelector('[data-testid="map"]')?.getBoundingClientRect()
    if (box === undefined) return null
    let best: { id: string; x: number; y: number; value: number } | null = null
    for (const site of hook.sites()) {
      const point = hook.markerPoint(site.id)
      if (point === null || site.value === null || site.value > maxValue) continue
      const inner =
        point.x > box.left + box.width * 0.2 &&
        point.x < box.right - box.width * 0.2 &&
        point.y > box.top + box.height * 0.2 &&
        point.y < box.bottom - box.height * 0.2
      if (inner && (best === null || site.value > best.value)) best = { ...site, ...point, value: site.value }
    }
    return best
  }, SHOWCASE_MAX_PM25)
  if (picked === null) throw new Error('no site with a value near the middle of the map')
  return picked
}

async function openPanel(page: Page, tap: boolean): Promise<string> {
  const site = await pickSite(page)
  if (tap) await page.touchscreen.tap(site.x, site.y)
  else await page.mouse.click(site.x, site.y)
  await page.getByTestId('panel').waitFor({ state: 'visible' })
  await page.locator('[data-testid="panel-chart"] canvas').first().waitFor({ state: 'attached' })
  // The pointer rests elsewhere, so no marker tooltip sits in the picture; and the panel title loses
  // the focus ring it gets on opening (for screen readers and keyboards, not for this picture).
  if (!tap) await page.mouse.move(1, DESKTOP.height - 1)
  await page.evaluate(() => {
    if (document.activeElement instanceof HTMLElement) document.activeElement.blur()
  })
  // Leaflet's pan animation (0.25 s) that brings the selected marker into view.
  await page.waitForTimeout(PAN_SETTLE_MS)
  return site.id
}

async function takeScreenshots(url: string, out: string): Promise<void> {
  const browser = await launchChromium()
  try {
    const map = await openMap(browser, url, false)
    await map.screenshot({ path: join(out, 'map.png') })
    log('map.png')

    const id = await openPanel(map, false)
    await map.getByTestId('panel-chart-lines').scrollIntoViewIfNeeded()
    await map.screenshot({ path: join(out, 'panel.png') })
    log(`panel.png (${id})`)

    const list = await openMap(browser, url, false)
    await list.getByTestId('view-list').click()
    // Worst first: the first click sorts by value ascending, the second descending.
    await list.getByTestId('sort-value').click()
    await list.getByTestId('sort-value').click()
    await list.mouse.move(1, 1)
    await list.screenshot({ path: join(out, 'list.png') })
    log('list.png')

    const phone = await openMap(browser, url, true)
    await openPanel(phone, true)
    await phone.screenshot({ path: join(out, 'phone.png') })
    log('phone.png')
  } finally {
    await browser.close()
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { days: { type: 'string', default: '2' }, out: { type: 'string', default: DEFAULT_OUT } },
  })
  const days = Number(values.days)
  if (!Number.isFinite(days) || days <= 0) throw new Error(`--days must be a number > 0, got ${values.days}`)
  const out = resolve(values.out)
  await mkdir(out, { recursive: true })

  // Errors only: 150 devices logging in at once make the gateway refuse many logins for a moment
  // (too_many_logins_in_progress, then the devices retry), a wall of warnings that means nothing here.
  const logger = createLogger({ level: 'error', name: 'screenshots' })
  const closers: Closer[] = []
  try {
    const dir = await tempDir('skolluft-screenshots-')
    closers.push(dir.cleanup)
    const storage = openSqliteStorage({ path: join(dir.path, 'skolluft.db') })
    closers.push(() => storage.close())

    const { sites, errors } = parseSitesFile(await readFile(DEMO_SITES_FILE, 'utf8'), 'geojson')
    if (errors.length > 0) throw new Error(`${DEMO_SITES_FILE} is invalid: ${errors[0]?.message}`)
    await storage.registry.upsertSites(sites)
    const ingestCredential = { username: 'svc.ingest', password: generateSecret() }
    await storage.registry.upsertServiceAccount({
      username: ingestCredential.username,
      secretHash: await hashSecret(ingestCredential.password),
      role: 'ingest',
    })

    const [bundle, gateway] = await Promise.all([
      buildDashboard({ minify: true }),
      startGateway({
        log: logger,
        registry: storage.registry,
        host: '127.0.0.1',
        port: 0,
        // The ingest's session exists before the first device connects, as in `skolluft start`.
        durableSubscribers: [{ clientId: ingestCredential.username, filter: ALL_TELEMETRY_FILTER }],
      }),
    ])
    closers.push(() => gateway.close())
    const mqttUrl = `mqtt://127.0.0.1:${gateway.port}`
    const live = await startLiveServices({
      storage,
      mqttUrl,
      ingestCredential,
      dashboard: bundle.files,
      log: logger,
    })
    closers.push(() => live.close())
    const server = await live.startDashboardApi({ publicMap: true, tileUrl: null })

    // One simulated device per site, registered like real hardware (cli/src/sim-devices.ts).
    const devices: SimDevice[] = []
    for (const site of sites) {
      const password = generateSecret()
      const deviceId = `sim-${site.id}`.slice(0, 64).replace(/-+$/, '')
      await storage.registry.addDevice(
        {
          id: deviceId,
          model: 'skolluft-sim',
          sensors: [...METRICS],
          intervalS: SIM_INTERVAL_S,
          secretHash: await hashSecret(password),
          placement: { siteId: site.id, from: 0, indoor: false, heightM: 2 },
        },
        Date.now(),
      )
      devices.push({ deviceId, password, siteId: site.id, lat: site.lat, lon: site.lon, kind: site.kind })
    }
    const fleet: Fleet = createFleet({ log: logger, mqttUrl, devices, intervalS: SIM_INTERVAL_S, seed: 1 })
    closers.push(() => fleet.stop())
    await fleet.start()
    log(`${sites.length} sites, fleet started; backfilling ${days} days`)
    const started = performance.now()
    const { readings } = await fleet.backfill({ days })
    await waitFor(
      async () => (await storage.readings.countReadings()) >= readings,
      `the ingest to store ${readings} backfilled readings`,
      { timeoutMs: STORE_TIMEOUT_MS, intervalMs: 500 },
    )
    log(`${readings} readings stored in ${Math.round((performance.now() - started) / 1000)} s`)
    // The first live reading of every device (spread over FIRST_READING_SPREAD_MS after start).
    await waitFor(() => fleet.stats().readings >= devices.length, 'a live reading from every device', {
      timeoutMs: 30_000,
      intervalMs: 200,
    })

    await takeScreenshots(server.url, out)
    log(`written to ${out}`)
  } finally {
    for (const close of closers.reverse()) await close()
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error('screenshots failed:', error)
    process.exit(1)
  },
)
