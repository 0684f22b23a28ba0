import { ALL_TELEMETRY_FILTER, type SiteInput } from '@skolluft/core'
import { buildDashboard } from '@skolluft/dashboard'
import { hashSecret } from '@skolluft/runtime'
import { waitFor } from '@skolluft/testkit'
import type { Browser, BrowserContext, BrowserContextOptions, Page } from 'playwright-core'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { browserAvailable, launchChromium, watchedPage } from '../support/browser.ts'
import {
  type DashboardServer,
  type LiveServices,
  publishAsDevice,
  startLiveServices,
  type TestReading,
} from '../support/live-platform.ts'
import { addTestDevice, startTestPlatform, TEST_SITES, type TestPlatform } from '../support/platform.ts'

/**
 * The live map in headless Chromium against real parts: gateway (aedes over TCP), ingest, SQLite, the
 * API with the dashboard bundle and its live MQTT feed. Devices publish over MQTT with their own
 * credentials; the page is driven like a person would (mouse on the canvas markers, the list, the
 * language switch, the log-in form) and read through the DOM and the `window.__skolluft` test hook.
 */

const EXTRA_SITES: SiteInput[] = [
  {
    id: 'site-c',
    name: 'Testförskolan C (demo)',
    kind: 'preschool',
    locality: 'Lund',
    municipality: 'Lund',
    lat: 55.725,
    lon: 13.15,
    demo: true,
  },
  {
    id: 'site-d',
    name: 'Testskolan D (demo)',
    kind: 'school',
    locality: 'Lund',
    municipality: 'Lund',
    lat: 55.685,
    lon: 13.235,
    demo: true,
  },
  {
    id: 'site-e',
    name: 'Testförskolan E (demo)',
    kind: 'preschool',
    locality: 'Dalby',
    municipality: 'Lund',
    lat: 55.675,
    lon: 13.3,
    demo: true,
  },
  {
    id: 'site-f',
    name: 'Testskolan F (demo)',
    kind: 'school',
    locality: 'Dalby',
    municipality: 'Lund',
    lat: 55.64,
    lon: 13.27,
    demo: true,
  },
]
const SITES = [...TEST_SITES, ...EXTRA_SITES]
const SITE_IDS = SITES.map((s) => s.id).sort()
const PRESCHOOL_IDS = SITES.filter((s) => s.kind === 'preschool')
  .map((s) => s.id)
  .sort()

/**
 * The newest PM2.5 per site and its EAQI band (core aqi.ts: ≤5 good, ≤15 fair, ≤50 moderate, ≤90 poor);
 * site-f has a device that never sent anything.
 */
const LATEST_PM25: Record<string, { value: number; band: number }> = {
  'site-a': { value: 4.2, band: 1 },
  'site-b': { value: 12.4, band: 2 },
  'site-c': { value: 27.5, band: 3 },
  'site-d': { value: 3, band: 1 },
  'site-e': { value: 62, band: 4 },
}
/** Seeded history: one reading every 10 min over the last 3 h, so the 24 h chart has hourly means. */
const HISTORY_STEP_MS = 10 * 60_000
const HISTORY_READINGS = 18
/** A live reading must reach the page this fast (the plan's "within a few seconds"). */
const LIVE_DEADLINE_MS = 5_000
/** Leaflet's pan animation takes 0.25 s. */
const PAN_DEADLINE_MS = 3_000
/** Playwright waits at most this long for an element or condition, well inside the test timeout. */
const PAGE_TIMEOUT_MS = 10_000
const DESKTOP: BrowserContextOptions = { viewport: { width: 1280, height: 800 } }
/** iPhone 12–15 CSS viewport. */
const PHONE: BrowserContextOptions = {
  viewport: { width: 390, height: 844 },
  deviceScaleFactor: 2,
  isMobile: true,
  hasTouch: true,
}
const STAFF = { email: 'staff@example.org', name: 'Test Personal', password: 'correct horse battery staple' }

interface HookSite {
  readonly id: string
  readonly band: number | null
  readonly value: number | null
}

/** The dashboard's `window.__skolluft` (dashboard/src/client/app.ts TestHook), as the page sees it. */
interface Hook {
  readonly ready: boolean
  sites(): HookSite[]
  readonly mode: 'live' | 'replay'
  readonly pollutant: string
  markerPoint(id: string): { x: number; y: number } | null
}

/**
 * Functions passed to page.evaluate run in the page, serialised from their source: they cannot call
 * helpers of this file, so each reads the hook itself through this type.
 */
type HookWindow = { readonly __skolluft?: Hook }

function byId(a: { id: string }, b: { id: string }): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0
}

async function hookSites(page: Page): Promise<HookSite[]> {
  const sites = await page.evaluate(() => {
    const hook = (window as unknown as HookWindow).__skolluft
    return hook === undefined ? [] : hook.sites()
  })
  return sites.sort(byId)
}

function history(latestPm25: number, now: number): TestReading[] {
  return Array.from({ length: HISTORY_READINGS }, (_, i) => {
    const k = HISTORY_READINGS - 1 - i
    // Older readings wander around the newest one, so the chart has a line and not a flat bar.
    const pm25 = k === 0 ? latestPm25 : Math.max(0, Math.round(latestPm25 * (1 + 0.3 * Math.sin(k)) * 10) / 10)
    return {
      ts: now - k * HISTORY_STEP_MS,
      values: { pm1: pm25 * 0.7, pm25, pm10: pm25 * 1.4, no2: 8, temp: 6, rh: 80 },
    }
  })
}

describe.runIf(browserAvailable())('the live map in a browser', () => {
  let platform: TestPlatform
  let live: LiveServices
  let publicMap: DashboardServer
  let privateMap: DashboardServer
  let browser: Browser
  let context: BrowserContext | undefined
  const devices = new Map<string, { deviceId: string; password: string }>()

  beforeAll(async () => {
    // Side by side (the bundle takes about a second); whatever started is closed in afterAll.
    const [bundle, started, chromium] = await Promise.allSettled([
      buildDashboard({ minify: true }),
      startTestPlatform({}, [{ clientId: 'svc.ingest', filter: ALL_TELEMETRY_FILTER }]),
      launchChromium(),
    ])
    if (started.status === 'fulfilled') platform = started.value
    if (chromium.status === 'fulfilled') browser = chromium.value
    if (bundle.status === 'rejected') throw bundle.reason
    if (started.status === 'rejected') throw started.reason
    if (chromium.status === 'rejected') throw chromium.reason
    await platform.storage.registry.upsertSites(EXTRA_SITES)
    live = await startLiveServices({
      storage: platform.storage,
      mqttUrl: platform.mqttUrl,
      ingestCredential: platform.ingestCredential,
      dashboard: bundle.value.files,
    })
    const base = { tileUrl: null, mapSnapshotMaxAgeMs: 0 }
    publicMap = await live.startDashboardApi({ ...base, publicMap: true })
    privateMap = await live.startDashboardApi({ ...base, publicMap: false })
    await platform.storage.access.addUser(
      {
        email: STAFF.email,
        name: STAFF.name,
        role: 'staff',
        sites: [],
        passwordHash: await hashSecret(STAFF.password),
      },
      Date.now(),
    )
    for (const site of SITES) {
      devices.set(site.id, await addTestDevice(platform.storage, `dev-${site.id}`, site.id))
    }
    const now = Date.now() - 60_000
    await Promise.all(
      Object.entries(LATEST_PM25).map(([siteId, { value }]) => {
        const device = devices.get(siteId)
        if (device === undefined) throw new Error(`no device at ${siteId}`)
        return publishAsDevice(platform.mqttUrl, device, history(value, now))
      }),
    )
    await waitFor(
      async () =>
        (await platform.storage.readings.countReadings()) === Object.keys(LATEST_PM25).length * HISTORY_READINGS,
      'the ingest to store the seeded readings',
    )
  })

  afterEach(async () => {
    await context?.close()
    context = undefined
  })

  afterAll(async () => {
    await browser?.close()
    await live?.close()
    await platform?.close()
  })

  /**
   * A new context and page; `problems` collects console errors and warnings, uncaught page errors
   * and content-security-policy violations (reported by the page itself, so none hides in a warning).
   */
  async function openPage(options: BrowserContextOptions = DESKTOP): Promise<{ page: Page; problems: string[] }> {
    context = await browser.newContext(options)
    context.setDefaultTimeout(PAGE_TIMEOUT_MS)
    const { page, problems } = await watchedPage(context)
    return { page, problems }
  }

  async function gotoMap(page: Page, url: string): Promise<void> {
    await page.goto(url)
    await page.waitForFunction(
      () => (window as unknown as HookWindow).__skolluft?.ready === true && document.body.dataset.ready === 'true',
    )
  }

  /** Clicks (or taps) a site's marker on the canvas, where the map view drew it. */
  async function clickMarker(page: Page, siteId: string, tap = false): Promise<void> {
    const handle = await page.waitForFunction(
      (id) => (window as unknown as HookWindow).__skolluft?.markerPoint(id) ?? null,
      siteId,
    )
    const point = await handle.jsonValue()
    if (point === null) throw new Error(`no marker drawn for ${siteId}`)
    if (tap) await page.touchscreen.tap(point.x, point.y)
    else await page.mouse.click(point.x, point.y)
  }

  it('loads the map with a marker for each site, without console errors or CSP violations', async () => {
    const { page, problems } = await openPage()
    const response = await page.goto(publicMap.url)
    expect(response?.headers()['content-security-policy']).toContain("script-src 'self'")
    await page.waitForFunction(
      () => (window as unknown as HookWindow).__skolluft?.ready === true && document.body.dataset.ready === 'true',
    )
    const sites = await hookSites(page)
    expect(sites.map((s) => s.id)).toEqual(SITE_IDS)
    for (const site of sites) {
      expect(site.band, site.id).toBe(LATEST_PM25[site.id]?.band ?? null)
      expect(site.value, site.id).toBe(LATEST_PM25[site.id]?.value ?? null)
    }
    // Every site was drawn on the canvas, inside the map.
    const box = await page.getByTestId('map').boundingBox()
    expect(box).not.toBeNull()
    for (const id of SITE_IDS) {
      const point = await page.evaluate(
        (siteId) => (window as unknown as HookWindow).__skolluft?.markerPoint(siteId) ?? null,
        id,
      )
      expect(point, id).not.toBeNull()
      if (box === null || point === null) continue
      expect(point.x).toBeGreaterThanOrEqual(box.x)
      expect(point.x).toBeLessThanOrEqual(box.x + box.width)
      expect(point.y).toBeGreaterThanOrEqual(box.y)
      expect(point.y).toBeLessThanOrEqual(box.y + box.height)
    }
    expect(await page.evaluate(() => document.documentElement.lang)).toBe('sv')
    expect(problems).toEqual([])
  })

  it('opens the panel of the site whose marker is clicked, with a chart and the latest values', async () => {
    const { page, problems } = await openPage()
    await gotoMap(page, publicMap.url)
    await clickMarker(page, 'site-c')
    const panel = page.getByTestId('panel')
    await panel.waitFor({ state: 'visible' })
    expect(await page.getByTestId('panel-title').textContent()).toBe('Testförskolan C (demo)')
    // Swedish decimal comma; the seeded newest reading.
    expect(await page.getByTestId('panel-value-pm25').textContent()).toBe('27,5 µg/m³')
    expect(await page.getByTestId('panel-value-no2').textContent()).toBe('8 µg/m³')
    // uPlot draws into a canvas; the guideline lines are listed under it.
    await page.locator('[data-testid="panel-chart"] .uplot canvas').waitFor({ state: 'attached' })
    const chart = await page.locator('[data-testid="panel-chart"] canvas').first().boundingBox()
    expect(chart?.width).toBeGreaterThan(100)
    expect(chart?.height).toBeGreaterThan(50)
    expect(await page.getByTestId('panel-chart-lines').locator('li').count()).toBeGreaterThan(0)
    expect(problems).toEqual([])
  })

  it('moves a site to another band when its device publishes, without a reload, and updates the open panel', async () => {
    const { page, problems } = await openPage()
    await gotoMap(page, publicMap.url)
    await clickMarker(page, 'site-d')
    await page.getByTestId('panel').waitFor({ state: 'visible' })
    expect(await page.getByTestId('panel-value-pm25').textContent()).toBe('3 µg/m³')
    expect((await hookSites(page)).find((s) => s.id === 'site-d')?.band).toBe(1)
    // A reload would lose this mark.
    await page.evaluate(() => document.body.setAttribute('data-test-mark', 'before'))

    const device = devices.get('site-d')
    if (device === undefined) throw new Error('no device at site-d')
    const started = Date.now()
    await publishAsDevice(platform.mqttUrl, device, [
      { ts: Date.now(), values: { pm1: 60, pm25: 95, pm10: 120, no2: 9, temp: 6, rh: 80 } },
    ])
    await page.waitForFunction(
      () => (window as unknown as HookWindow).__skolluft?.sites().find((s) => s.id === 'site-d')?.band === 5,
      null,
      {
        timeout: LIVE_DEADLINE_MS,
      },
    )
    await expect
      .poll(() => page.getByTestId('panel-value-pm25').textContent(), { timeout: LIVE_DEADLINE_MS })
      .toBe('95 µg/m³')
    expect(Date.now() - started).toBeLessThan(LIVE_DEADLINE_MS)
    expect(await page.evaluate(() => document.body.getAttribute('data-test-mark'))).toBe('before')
    expect(problems).toEqual([])
  })

  it('switches the visible texts from Swedish to English and back', async () => {
    const { page, problems } = await openPage()
    await gotoMap(page, publicMap.url)
    const lang = () => page.evaluate(() => document.documentElement.lang)
    const listButton = page.getByTestId('view-list')
    const mapButton = page.getByTestId('view-map')
    expect(await lang()).toBe('sv')
    expect(await listButton.textContent()).toBe('Lista')
    expect(await mapButton.textContent()).toBe('Karta')
    expect(await page.getByTestId('legend').textContent()).toContain('Bra')

    await page.getByTestId('language-switch').selectOption('en')
    expect(await lang()).toBe('en')
    expect(await listButton.textContent()).toBe('List')
    expect(await mapButton.textContent()).toBe('Map')
    expect(await page.getByTestId('legend').textContent()).toContain('Good')

    await page.getByTestId('language-switch').selectOption('sv')
    expect(await lang()).toBe('sv')
    expect(await listButton.textContent()).toBe('Lista')
    expect(problems).toEqual([])
  })

  it('asks for a log-in when the map is not public, refuses a wrong password and lets the right one in', async () => {
    const { page, problems } = await openPage()
    await page.goto(privateMap.url)
    const form = page.getByTestId('login-form')
    await form.waitFor({ state: 'visible' })
    expect(await page.getByTestId('map').count()).toBe(0)

    await page.getByTestId('login-email').fill(STAFF.email)
    await page.getByTestId('login-password').fill('not the password')
    await page.getByTestId('login-submit').click()
    const error = page.getByTestId('login-error')
    await error.waitFor({ state: 'visible' })
    expect(await error.textContent()).toBe('Fel e-postadress eller lösenord')
    expect(await page.getByTestId('user-name').count()).toBe(0)

    await page.getByTestId('login-password').fill(STAFF.password)
    await page.getByTestId('login-submit').click()
    await page.waitForFunction(() => (window as unknown as HookWindow).__skolluft?.ready === true)
    await page.getByTestId('map').waitFor({ state: 'visible' })
    expect(await page.getByTestId('user-name').textContent()).toContain(STAFF.name)
    expect((await hookSites(page)).map((s) => s.id)).toEqual(SITE_IDS)
    // The refused log-in is the only complaint: Chromium logs the 401 response as a console error.
    expect(problems.filter((p) => !/status of 401/.test(p))).toEqual([])
  })

  it('lists the same sites and bands as the map, also when filtered', async () => {
    const { page, problems } = await openPage()
    await gotoMap(page, publicMap.url)
    await page.getByTestId('view-list').click()
    await page.getByTestId('list-view').waitFor({ state: 'visible' })
    expect(await page.getByTestId('map').isVisible()).toBe(false)

    const rows = () =>
      page
        .getByTestId('site-row')
        .evaluateAll((els) =>
          els.map((el) => ({ id: el.getAttribute('data-site-id') ?? '', band: el.getAttribute('data-band') ?? '' })),
        )
    const asRows = (sites: HookSite[]) => sites.map((s) => ({ id: s.id, band: s.band === null ? '' : String(s.band) }))

    const all = await hookSites(page)
    expect(all.map((s) => s.id)).toEqual(SITE_IDS)
    expect((await rows()).sort(byId)).toEqual(asRows(all))

    await page.getByTestId('filter-kind').selectOption('preschool')
    await page.waitForFunction(
      (n) => (window as unknown as HookWindow).__skolluft?.sites().length === n,
      PRESCHOOL_IDS.length,
    )
    const preschools = await hookSites(page)
    expect(preschools.map((s) => s.id)).toEqual(PRESCHOOL_IDS)
    expect((await rows()).sort(byId)).toEqual(asRows(preschools))
    expect(problems).toEqual([])
  })

  it('works at phone width: map visible, the panel opens as a bottom sheet below the selected marker', async () => {
    const { page, problems } = await openPage(PHONE)
    await gotoMap(page, publicMap.url)
    const map = await page.getByTestId('map').boundingBox()
    expect(map?.width).toBe(390)
    expect(map?.height).toBeGreaterThan(300)

    await clickMarker(page, 'site-a', true)
    const panel = page.getByTestId('panel')
    await panel.waitFor({ state: 'visible' })
    expect(await page.getByTestId('panel-title').textContent()).toBe(TEST_SITES[0].name)
    const sheet = await panel.boundingBox()
    if (sheet === null) throw new Error('the panel has no box')
    // Full width, anchored to the bottom, leaving the upper part of the map visible.
    expect(sheet.x).toBe(0)
    expect(sheet.width).toBe(390)
    expect(sheet.y + sheet.height).toBeCloseTo(844, 0)
    expect(sheet.y).toBeGreaterThan(844 * 0.3)
    // The map pans the selected marker into the strip the sheet leaves visible.
    await page.waitForFunction(
      ({ top, bottom }) => {
        const point = (window as unknown as HookWindow).__skolluft?.markerPoint('site-a')
        return point != null && point.y > top && point.y < bottom
      },
      { top: map?.y ?? 0, bottom: sheet.y },
      { timeout: PAN_DEADLINE_MS },
    )
    expect(problems).toEqual([])
  })
})
