import { ALL_TELEMETRY_FILTER } from '@skolluft/core'
import { buildDashboard } from '@skolluft/dashboard'
import { hashSecret } from '@skolluft/runtime'
import type { IncidentInput } from '@skolluft/storage'
import type { Browser, BrowserContext, BrowserContextOptions, Page, Route } from 'playwright-core'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { browserAvailable, launchChromium, watchedPage } from '../support/browser.ts'
import { type DashboardServer, type LiveServices, startLiveServices } from '../support/live-platform.ts'
import { startTestPlatform, TEST_SITES, type TestPlatform } from '../support/platform.ts'

/**
 * Breach incidents and in-app notifications in headless Chromium (issue 4), against real parts: gateway,
 * ingest, SQLite, the API with the dashboard bundle and its live feed. Incidents are seeded through the
 * storage API (BreachStore.saveIncident), as the alerts service writes them; the page is driven like a
 * person would (the breaches view, the site panel, the log-in form) and what the API recorded is read
 * back over HTTP.
 *
 * The notifications endpoints (GET /notifications, POST /notifications/read) are being written alongside
 * this test. The bell's behaviour is checked against their agreed shape by answering those two paths in
 * the page (everything else is the real API), and against the real API for what it answers today.
 */

const HOUR_MS = 3_600_000
const DAY_MS = 24 * HOUR_MS
/** Playwright waits at most this long for an element or condition, well inside the test timeout. */
const PAGE_TIMEOUT_MS = 10_000
/** The poll interval of the bell (dashboard/src/client/notifications.ts NOTIFICATIONS_POLL_MS, the brief's 60 s). */
const POLL_MS = 60_000
/** Fake-clock step of `advance`: a third of the dashboard's fetch time-out. */
const CLOCK_STEP_MS = 5_000
/** Local time of the incidents as people in Lund read them. */
const DESKTOP: BrowserContextOptions = { viewport: { width: 1280, height: 800 }, timezoneId: 'Europe/Stockholm' }

const [SITE_A, SITE_B] = TEST_SITES
const STAFF = { email: 'staff@example.org', name: 'Test Personal', password: 'correct horse battery staple' }
const PRINCIPAL = { email: 'rektor.b@example.org', name: 'Rektor B', password: 'another long passphrase' }
const COMMENT = 'Vädrat i alla klassrum 08:10; ventilationen kontrolleras i eftermiddag.'

const NOW = Date.now()
const BASE = {
  profileVersion: '2026-11-30',
  escalations: [],
  retrospective: false,
  updatedAt: NOW - HOUR_MS,
} as const

/** Open at A for two days: the one staff acknowledges and comments on. */
const A_OPEN: IncidentInput = {
  ...BASE,
  id: 'inc_a-open',
  siteId: SITE_A.id,
  pollutant: 'pm25',
  ruleId: 'who2021-aqg-pm25-day',
  profileId: 'who2021-aqg',
  severity: 'info',
  threshold: 15,
  start: NOW - 2 * DAY_MS,
  end: null,
  openedAt: NOW - 2 * DAY_MS,
  closedAt: null,
  peak: 31.5,
  peakAt: NOW - DAY_MS,
}
/** Open at A for five days, the most severe. */
const A_ALERT: IncidentInput = {
  ...BASE,
  id: 'inc_a-alert',
  siteId: SITE_A.id,
  pollutant: 'no2',
  ruleId: 'eu2008-no2-alert',
  profileId: 'eu2008-50',
  severity: 'alert',
  threshold: 400,
  start: NOW - 5 * DAY_MS,
  end: null,
  openedAt: NOW - 5 * DAY_MS + 3 * HOUR_MS,
  closedAt: null,
  peak: 455,
  peakAt: NOW - 5 * DAY_MS + 2 * HOUR_MS,
}
/** Closed at A ten to eight days ago, found afterwards, acknowledged from the CLI. */
const A_CLOSED: IncidentInput = {
  ...BASE,
  id: 'inc_a-closed',
  siteId: SITE_A.id,
  pollutant: 'pm10',
  ruleId: 'eu2008-pm10-day',
  profileId: 'eu2008-50',
  severity: 'warning',
  threshold: 50,
  start: NOW - 10 * DAY_MS,
  end: NOW - 8 * DAY_MS,
  openedAt: NOW - 10 * DAY_MS,
  closedAt: NOW - 7 * DAY_MS,
  peak: 80,
  peakAt: NOW - 9 * DAY_MS,
  retrospective: true,
}
/** Open at B for three hours. */
const B_OPEN: IncidentInput = {
  ...BASE,
  id: 'inc_b-open',
  siteId: SITE_B.id,
  pollutant: 'no2',
  ruleId: 'eu2008-no2-hour',
  profileId: 'eu2008-50',
  severity: 'warning',
  threshold: 200,
  start: NOW - 3 * HOUR_MS,
  end: null,
  openedAt: NOW - 3 * HOUR_MS,
  closedAt: null,
  peak: 240,
  peakAt: NOW - 2 * HOUR_MS,
}

const LoginResponse = z.object({ csrfToken: z.string(), user: z.object({ id: z.string() }) })
const Detail = z.object({
  id: z.string(),
  acknowledged: z.object({ at: z.string(), by: z.string().nullable() }).nullable(),
  comments: z.array(z.object({ at: z.string(), actor: z.string(), text: z.string() })).optional(),
})

/** The dashboard's `window.__skolluft` (dashboard/src/client/app.ts TestHook), as far as used here. */
type HookWindow = {
  readonly __skolluft?: { readonly ready: boolean; sites(): { id: string }[] }
}

interface Notification {
  readonly id: number
  readonly at: string
  readonly subject: string
  readonly text: string
  readonly siteId: string | null
  readonly read: boolean
}

/** Answers GET /api/v1/notifications and POST /api/v1/notifications/read in the page, to the agreed shape. */
interface NotificationsStub {
  items: Notification[]
  gets: number
  /** Answer every request with this status instead (404: an API without notifications). */
  status: 200 | 404
  readonly posts: { ids: unknown; csrf: string | null }[]
}

describe.runIf(browserAvailable())('breaches and notifications in a browser', () => {
  let platform: TestPlatform
  let live: LiveServices
  let publicMap: DashboardServer
  let privateMap: DashboardServer
  let browser: Browser
  let context: BrowserContext | undefined
  let staffId: string

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
    live = await startLiveServices({
      storage: platform.storage,
      mqttUrl: platform.mqttUrl,
      ingestCredential: platform.ingestCredential,
      dashboard: bundle.value.files,
    })
    const base = { tileUrl: null, mapSnapshotMaxAgeMs: 0 }
    publicMap = await live.startDashboardApi({ ...base, publicMap: true })
    privateMap = await live.startDashboardApi({ ...base, publicMap: false })
    const staff = await platform.storage.access.addUser(
      { ...userOf(STAFF), role: 'staff', sites: [], passwordHash: await hashSecret(STAFF.password) },
      Date.now(),
    )
    staffId = staff.id
    await platform.storage.access.addUser(
      {
        ...userOf(PRINCIPAL),
        role: 'principal',
        sites: [SITE_B.id],
        passwordHash: await hashSecret(PRINCIPAL.password),
      },
      Date.now(),
    )
    for (const incident of [A_OPEN, A_ALERT, A_CLOSED, B_OPEN]) await platform.storage.breaches.saveIncident(incident)
    await platform.storage.breaches.acknowledge(A_CLOSED.id ?? '', 'cli', NOW - 7 * DAY_MS)
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

  function userOf(u: { email: string; name: string }) {
    return { email: u.email, name: u.name }
  }

  /**
   * A new page; `problems` collects console errors and warnings, page errors and CSP violations, except the
   * 404 of GET /notifications that Chromium logs while the API has no notifications endpoint yet.
   */
  async function openPage(): Promise<{ page: Page; problems: () => string[] }> {
    context = await browser.newContext(DESKTOP)
    context.setDefaultTimeout(PAGE_TIMEOUT_MS)
    const { page, problems } = await watchedPage(context)
    const allowed: string[] = []
    page.on('console', (message) => {
      // 404s the tests stub on purpose: notifications (an API without them) and socket.io (no live socket).
      const url = message.location().url
      if (
        /status of 404/.test(message.text()) &&
        (url.includes('/api/v1/notifications') || url.includes('/socket.io/'))
      ) {
        allowed.push(`console ${message.type()}: ${message.text()}`)
      }
    })
    return {
      page,
      problems: () => {
        const left = [...allowed]
        return problems.filter((p) => {
          const i = left.indexOf(p)
          if (i < 0) return true
          left.splice(i, 1)
          return false
        })
      },
    }
  }

  async function waitReady(page: Page): Promise<void> {
    await page.waitForFunction(
      () => (window as unknown as HookWindow).__skolluft?.ready === true && document.body.dataset.ready === 'true',
    )
  }

  async function logInOnPrivateMap(page: Page, user: { email: string; password: string }): Promise<void> {
    await page.goto(privateMap.url)
    await page.getByTestId('login-email').fill(user.email)
    await page.getByTestId('login-password').fill(user.password)
    await page.getByTestId('login-submit').click()
    await waitReady(page)
  }

  /** A session over HTTP, as a script would use the API. */
  async function httpSession(user: { email: string; password: string }) {
    const res = await fetch(`${privateMap.url}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ email: user.email, password: user.password }),
    })
    expect(res.status).toBe(200)
    const cookie = res.headers
      .getSetCookie()
      .map((c) => c.split(';')[0] ?? '')
      .join('; ')
    const login = LoginResponse.parse(await res.json())
    return {
      userId: login.user.id,
      get: (path: string) => fetch(`${privateMap.url}/api/v1${path}`, { headers: { Cookie: cookie } }),
    }
  }

  const rowIds = (page: Page) =>
    page.getByTestId('breach-row').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-incident-id')))

  /** A time as the page shows it: the browser's own formatter, in the zone the context runs in. */
  function localTime(page: Page, epochMs: number): Promise<string> {
    return page.evaluate(
      (ms) =>
        new Intl.DateTimeFormat('sv', {
          dateStyle: 'medium',
          timeStyle: 'short',
          timeZone: 'Europe/Stockholm',
        }).format(ms),
      epochMs,
    )
  }

  it('lists the open breaches of all sites, sorts them by start and by severity, and a row opens the site', async () => {
    const { page, problems } = await openPage()
    await logInOnPrivateMap(page, STAFF)
    const viewButton = page.getByTestId('view-breaches')
    expect(await viewButton.textContent()).toBe('Överskridanden (3)')
    await viewButton.click()
    await page.getByTestId('breaches-view').waitFor({ state: 'visible' })
    expect(await viewButton.getAttribute('aria-pressed')).toBe('true')
    expect(await page.getByTestId('map').isVisible()).toBe(false)
    await page.getByTestId('breach-row').first().waitFor()

    // Newest start first; the closed incident is not listed.
    expect(await rowIds(page)).toEqual([B_OPEN.id, A_OPEN.id, A_ALERT.id])
    const first = page.getByTestId('breach-row').first()
    const cells = await first.locator('th, td').allTextContents()
    expect(cells[0]).toBe(SITE_B.name)
    expect(cells[1]).toBe('NO₂')
    expect(cells[2]).toBe('EU 2008/50, timmedel över 200 µg/m³eu2008-no2-hour')
    expect(cells[3]).toBe('Varning')
    expect(cells[4]).toBe(await localTime(page, B_OPEN.start))
    expect(cells[5]).toBe(`240 µg/m³${await localTime(page, B_OPEN.peakAt)}`)
    expect(cells[6]).toBe('–')

    const severityHeader = page.locator('th', { has: page.getByTestId('breach-sort-severity') })
    await page.getByTestId('breach-sort-severity').click()
    expect(await rowIds(page)).toEqual([A_ALERT.id, B_OPEN.id, A_OPEN.id])
    expect(await severityHeader.getAttribute('aria-sort')).toBe('descending')
    await page.getByTestId('breach-sort-severity').click()
    expect(await rowIds(page)).toEqual([A_OPEN.id, B_OPEN.id, A_ALERT.id])
    expect(await severityHeader.getAttribute('aria-sort')).toBe('ascending')
    await page.getByTestId('breach-sort-start').click()
    expect(await rowIds(page)).toEqual([B_OPEN.id, A_OPEN.id, A_ALERT.id])

    // The keyboard opens a site as the mouse does; closing the panel returns to the row.
    const row = page.locator(`[data-testid="breach-row"][data-incident-id="${A_ALERT.id}"]`)
    await row.focus()
    await page.keyboard.press('Enter')
    await page.getByTestId('panel').waitFor({ state: 'visible' })
    expect(await page.getByTestId('panel-title').textContent()).toBe(SITE_A.name)
    await page.keyboard.press('Escape')
    await page.getByTestId('panel').waitFor({ state: 'hidden' })
    expect(await page.evaluate(() => document.activeElement?.getAttribute('data-incident-id'))).toBe(A_ALERT.id)
    expect(problems()).toEqual([])
  })

  it("shows a site's incidents in its panel; staff acknowledges one and comments, and the API recorded both", async () => {
    const { page, problems } = await openPage()
    await logInOnPrivateMap(page, STAFF)
    await page.getByTestId('view-breaches').click()
    await page.locator(`[data-testid="breach-row"][data-incident-id="${A_OPEN.id}"]`).click()
    const section = page.getByTestId('panel-breaches')
    await section.getByTestId('incident').first().waitFor()

    const open = page.getByTestId('panel-breaches-open').getByTestId('incident')
    expect(await open.evaluateAll((els) => els.map((e) => e.getAttribute('data-incident-id')))).toEqual([
      A_OPEN.id,
      A_ALERT.id,
    ])
    const recent = page.getByTestId('panel-breaches-recent').getByTestId('incident')
    expect(await recent.evaluateAll((els) => els.map((e) => e.getAttribute('data-incident-id')))).toEqual([A_CLOSED.id])

    const item = section.locator(`[data-incident-id="${A_OPEN.id}"]`)
    expect(await item.locator('.incident-title').textContent()).toBe('Information PM2.5')
    expect(await item.getByTestId('incident-rule').textContent()).toBe(
      'WHO 2021 AQG, dygnsmedel över 15 µg/m³ who2021-aqg-pm25-day',
    )
    expect(await item.getByTestId('incident-since').textContent()).toBe(`Sedan ${await localTime(page, A_OPEN.start)}`)
    expect(await item.getByTestId('incident-peak').textContent()).toBe(
      `Toppvärde 31,5 µg/m³ (${await localTime(page, A_OPEN.peakAt)})`,
    )
    expect(await item.getByTestId('incident-ack-status').textContent()).toBe('Inte kvitterad')
    expect(await item.getByTestId('incident-retrospective').count()).toBe(0)

    const closed = section.locator(`[data-incident-id="${A_CLOSED.id}"]`)
    expect(await closed.getByTestId('incident-retrospective').textContent()).toBe('I efterhand')
    expect(await closed.getByTestId('incident-since').textContent()).toBe(
      `${await localTime(page, A_CLOSED.start)} – ${await localTime(page, A_CLOSED.end ?? 0)}`,
    )
    expect(await closed.getByTestId('incident-ack-status').textContent()).toBe(
      `Kvitterad av cli ${await localTime(page, NOW - 7 * DAY_MS)}`,
    )
    expect(await closed.getByTestId('incident-acknowledge').count()).toBe(0)

    // Acknowledge: by its accessible name, as a screen reader user would find it.
    const acknowledge = item.getByRole('button', {
      name: 'Kvittera överskridandet: PM2.5, WHO 2021 AQG, dygnsmedel över 15 µg/m³',
    })
    await acknowledge.click()
    const ackStatus = item.getByTestId('incident-ack-status')
    await expect.poll(() => ackStatus.textContent()).toMatch(/^Kvitterad av Test Personal /)
    expect(await item.getByTestId('incident-acknowledge').count()).toBe(0)
    expect(await page.evaluate(() => document.activeElement?.className)).toBe('incident-title')
    await expect.poll(() => page.getByTestId('panel-breaches-live').textContent()).toBe('Överskridandet är kvitterat.')

    // Comments: a blank one is refused in the page, a real one is saved and listed.
    await item.getByTestId('incident-comments').locator('summary').click()
    await item.getByTestId('incident-comments-none').waitFor()
    await item.getByTestId('incident-comment-submit').click()
    expect(await item.getByTestId('incident-comment-error').textContent()).toBe('Skriv en kommentar först.')
    await item.getByLabel('Ny kommentar').fill(COMMENT)
    await item.getByTestId('incident-comment-submit').click()
    const comment = item.getByTestId('incident-comment')
    await comment.waitFor()
    expect(await comment.locator('.comment-text').textContent()).toBe(COMMENT)
    expect(await comment.locator('.comment-meta').textContent()).toMatch(/^Test Personal, /)
    expect(await item.getByTestId('incident-comment-input').inputValue()).toBe('')
    await expect.poll(() => page.getByTestId('panel-breaches-live').textContent()).toBe('Kommentaren är sparad.')

    // The API recorded both, under the staff user.
    const http = await httpSession(STAFF)
    const res = await http.get(`/breaches/${A_OPEN.id}`)
    expect(res.status).toBe(200)
    const detail = Detail.parse(await res.json())
    expect(detail.acknowledged?.by).toBe(`user:${staffId}`)
    expect(detail.comments).toEqual([{ at: expect.any(String), actor: `user:${staffId}`, text: COMMENT }])
    expect(Math.abs(Date.parse(detail.acknowledged?.at ?? '') - Date.now())).toBeLessThan(60_000)

    // The breaches view shows who acknowledged (it refetches after the change).
    await page.keyboard.press('Escape')
    const ackCell = page.locator(
      `[data-testid="breach-row"][data-incident-id="${A_OPEN.id}"] [data-testid="breach-ack"]`,
    )
    await expect.poll(() => ackCell.textContent()).toMatch(/^Test Personal, /)
    expect(problems()).toEqual([])
  })

  it('shows the incidents to anonymous visitors of a public map without who acknowledged, comments or actions', async () => {
    const { page, problems } = await openPage()
    let asked = 0
    page.on('request', (request) => {
      if (new URL(request.url()).pathname.startsWith('/api/v1/notifications')) asked += 1
    })
    await page.goto(publicMap.url)
    await waitReady(page)
    await page.getByTestId('view-breaches').click()
    await page.locator(`[data-testid="breach-row"][data-incident-id="${A_ALERT.id}"]`).click()
    const section = page.getByTestId('panel-breaches')
    await section.getByTestId('incident').first().waitFor()
    expect(await section.getByTestId('incident-acknowledge').count()).toBe(0)
    expect(await section.getByTestId('incident-comments').count()).toBe(0)
    const closed = section.locator(`[data-incident-id="${A_CLOSED.id}"]`)
    expect(await closed.getByTestId('incident-ack-status').textContent()).toBe(
      `Kvitterad ${await localTime(page, NOW - 7 * DAY_MS)}`,
    )
    // Logged out: the bell is not there and nothing asks for notifications.
    expect(await page.getByTestId('notifications').isHidden()).toBe(true)
    expect(asked).toBe(0)
    expect(problems()).toEqual([])
  })

  it('shows a principal only the breaches of their own site, without acknowledge or comment box', async () => {
    const { page, problems } = await openPage()
    await logInOnPrivateMap(page, PRINCIPAL)
    const ids = await page.evaluate(() => (window as unknown as HookWindow).__skolluft?.sites().map((s) => s.id))
    expect(ids).toEqual([SITE_B.id])
    expect(await page.getByTestId('view-breaches').textContent()).toBe('Överskridanden (1)')
    await page.getByTestId('view-breaches').click()
    await page.getByTestId('breach-row').first().waitFor()
    expect(await rowIds(page)).toEqual([B_OPEN.id])

    await page.getByTestId('breach-row').first().click()
    const item = page.getByTestId('panel-breaches').locator(`[data-incident-id="${B_OPEN.id}"]`)
    await item.waitFor()
    expect(await item.getByTestId('incident-acknowledge').count()).toBe(0)
    await item.getByTestId('incident-comments').locator('summary').click()
    await item.getByTestId('incident-comments-none').waitFor()
    expect(await item.getByTestId('incident-comment-input').count()).toBe(0)

    // Over HTTP the other site's incident does not exist for them.
    const http = await httpSession(PRINCIPAL)
    expect((await http.get(`/breaches/${A_OPEN.id}`)).status).toBe(404)
    expect(problems()).toEqual([])
  })

  /**
   * Moves the page's fake clock on by `ms`, in steps well inside the dashboard's fetch time-out (15 s) with real time
   * between them: one jump of minutes would fire a request's time-out timer before the server could answer it.
   */
  async function advance(page: Page, ms: number): Promise<void> {
    for (let done = 0; done < ms; done += CLOCK_STEP_MS) {
      await page.clock.fastForward(Math.min(CLOCK_STEP_MS, ms - done))
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }

  /** Answers the two notification paths in `page` from `stub`; everything else goes to the real API. */
  async function stubNotifications(page: Page, stub: NotificationsStub): Promise<void> {
    await page.route('**/api/v1/notifications**', async (route: Route) => {
      const request = route.request()
      const url = new URL(request.url())
      if (stub.status === 404) {
        await route.fulfill({ status: 404, contentType: 'application/problem+json', body: '{"status":404}' })
        return
      }
      if (request.method() === 'GET' && url.pathname === '/api/v1/notifications') {
        stub.gets += 1
        expect(url.searchParams.get('unread')).toBe('true')
        expect(url.searchParams.get('limit')).toBe('50')
        await route.fulfill({ json: { items: stub.items } })
        return
      }
      if (request.method() === 'POST' && url.pathname === '/api/v1/notifications/read') {
        const body = z.object({ ids: z.array(z.number()) }).parse(request.postDataJSON())
        stub.posts.push({ ids: body.ids, csrf: (await request.headerValue('x-csrf-token')) ?? null })
        stub.items = stub.items.map((n) => (body.ids.includes(n.id) ? { ...n, read: true } : n))
        await route.fulfill({ status: 204 })
        return
      }
      await route.fulfill({ status: 405 })
    })
  }

  function notification(id: number, minutesAgo: number, siteId: string | null): Notification {
    return {
      id,
      at: new Date(Date.now() - minutesAgo * 60_000).toISOString(),
      subject: `Överskridande ${id}`,
      text: `PM2.5 över riktvärdet (${id}).`,
      siteId,
      read: false,
    }
  }

  it('has a bell for logged-in users: unread count, new ones announced, mark read, show the site (API shape)', async () => {
    const { page, problems } = await openPage()
    await page.clock.install()
    const stub: NotificationsStub = {
      items: [notification(1, 30, SITE_A.id), notification(2, 10, null)],
      gets: 0,
      status: 200,
      posts: [],
    }
    await stubNotifications(page, stub)
    // No live socket: the fake clock's jumps would time out socket.io's heartbeat (see the next test).
    await page.route('**/socket.io/**', (route) => route.fulfill({ status: 404, body: '' }))
    await page.goto(publicMap.url)
    await waitReady(page)
    // Logged out: no bell and no polling, however long the page stays open.
    await advance(page, 3 * POLL_MS)
    expect(await page.getByTestId('notifications').isHidden()).toBe(true)
    expect(stub.gets).toBe(0)

    await page.getByTestId('login-open').click()
    await page.getByTestId('login-email').fill(STAFF.email)
    await page.getByTestId('login-password').fill(STAFF.password)
    await page.getByTestId('login-submit').click()
    const button = page.getByTestId('notifications-button')
    await button.waitFor({ state: 'visible' })
    await expect.poll(() => button.getAttribute('aria-label')).toBe('Aviseringar, 2 olästa')
    expect(await page.getByTestId('notifications-count').textContent()).toBe('2')
    expect(await page.getByTestId('notifications-live').textContent()).toBe('')

    // A new one arrives: the next poll (every minute) shows and announces it.
    stub.items = [...stub.items, notification(3, 0, SITE_B.id)]
    const polled = stub.gets
    await advance(page, POLL_MS)
    await expect.poll(() => stub.gets).toBeGreaterThan(polled)
    await expect.poll(() => button.getAttribute('aria-label')).toBe('Aviseringar, 3 olästa')
    expect(await page.getByTestId('notifications-live').textContent()).toBe('Ny avisering: Överskridande 3')

    await button.click()
    expect(await button.getAttribute('aria-expanded')).toBe('true')
    const menu = page.getByTestId('notifications-menu')
    await menu.waitFor({ state: 'visible' })
    const listed = () =>
      menu.getByTestId('notification').evaluateAll((els) => els.map((e) => e.getAttribute('data-notification-id')))
    expect(await listed()).toEqual(['3', '2', '1'])
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Aviseringar')

    // Mark one read: posted with the session's CSRF token; the focus moves to the next notification.
    const csrf = await page.evaluate(async () => {
      const res = await fetch('/api/v1/auth/session')
      const body: unknown = await res.json()
      return typeof body === 'object' && body !== null && 'csrfToken' in body ? String(body.csrfToken) : null
    })
    await menu.getByRole('button', { name: 'Markera som läst: Överskridande 3' }).click()
    await expect.poll(() => listed()).toEqual(['2', '1'])
    expect(stub.posts).toEqual([{ ids: [3], csrf }])
    expect(await page.evaluate(() => document.activeElement?.getAttribute('aria-label'))).toBe(
      'Markera som läst: Överskridande 2',
    )
    expect(await button.getAttribute('aria-label')).toBe('Aviseringar, 2 olästa')

    // Escape closes the list (not the page's panel), the focus goes back to the bell.
    await page.keyboard.press('Escape')
    expect(await menu.isHidden()).toBe(true)
    expect(await page.evaluate(() => document.activeElement?.getAttribute('data-testid'))).toBe('notifications-button')

    // "Show the site" opens the site's panel.
    await button.click()
    await menu.getByRole('button', { name: 'Visa platsen: Överskridande 1' }).click()
    await page.getByTestId('panel').waitFor({ state: 'visible' })
    expect(await page.getByTestId('panel-title').textContent()).toBe(SITE_A.name)
    expect(await menu.isHidden()).toBe(true)

    // Mark all read.
    await button.click()
    await menu.getByTestId('notifications-mark-all').click()
    await expect.poll(() => button.getAttribute('aria-label')).toBe('Aviseringar, inga olästa')
    expect(stub.posts.at(-1)).toEqual({ ids: [2, 1], csrf })
    expect(await menu.getByTestId('notifications-empty').textContent()).toBe('Inga olästa aviseringar.')
    expect(await page.getByTestId('notifications-count').isHidden()).toBe(true)

    // English.
    await page.getByTestId('language-switch').selectOption('en')
    expect(await button.getAttribute('aria-label')).toBe('Notifications, none unread')

    // Log out: the bell goes, and polling stops. The map reloads its sites for the anonymous view; that request
    // must be answered before the fake clock jumps, or its time-out fires at once.
    const sitesReloaded = page.waitForResponse((r) => new URL(r.url()).pathname === '/api/v1/sites')
    await page.getByTestId('logout').click()
    await page.getByTestId('login-open').waitFor()
    await sitesReloaded
    expect(await page.getByTestId('notifications').isHidden()).toBe(true)
    const afterLogout = stub.gets
    await advance(page, 3 * POLL_MS)
    expect(stub.gets).toBe(afterLogout)
    expect(problems()).toEqual([])
  })

  it('hides the bell quietly when the API has no notifications (404) and does not ask every minute', async () => {
    const { page, problems } = await openPage()
    await page.clock.install()
    const stub: NotificationsStub = { items: [], gets: 0, status: 404, posts: [] }
    let requests = 0
    page.on('request', (request) => {
      if (new URL(request.url()).pathname === '/api/v1/notifications') requests += 1
    })
    await stubNotifications(page, stub)
    // No live socket in this test: jumping the fake clock five minutes times out socket.io's heartbeat, and the
    // reconnect rightly refreshes the notifications (and Chromium warns about the socket it closed), which would
    // blur what is measured here, the per-minute polling. The stubbed 404s are filtered below like the others.
    await page.route('**/socket.io/**', (route) => route.fulfill({ status: 404, body: '' }))
    await logInOnPrivateMap(page, STAFF)
    await expect.poll(() => requests).toBe(1)
    await page.clock.fastForward(5 * POLL_MS)
    expect(requests).toBe(1)
    expect(await page.getByTestId('notifications').isHidden()).toBe(true)
    expect(await page.getByTestId('user-name').isVisible()).toBe(true)
    // Chromium logs the stubbed 404 as a console error; nothing else may appear.
    expect(problems().filter((p) => !/status of 404/.test(p))).toEqual([])
  })

  it('shows the bell as the real API answers GET /notifications for staff', async () => {
    const http = await httpSession(STAFF)
    const res = await http.get('/notifications?unread=true&limit=50')
    const { page, problems } = await openPage()
    const answered = page.waitForResponse((r) => new URL(r.url()).pathname === '/api/v1/notifications')
    await logInOnPrivateMap(page, STAFF)
    expect((await answered).status()).toBe(res.status)
    const bell = page.getByTestId('notifications')
    if (res.status === 404) {
      // The endpoint is not there yet: the bell stays hidden, and the page works on.
      expect(await bell.isHidden()).toBe(true)
    } else {
      expect(res.status).toBe(200)
      const unread = z.object({ items: z.array(z.object({ read: z.boolean() })) }).parse(await res.json())
      const n = unread.items.filter((i) => !i.read).length
      await bell.waitFor({ state: 'visible' })
      await expect
        .poll(() => page.getByTestId('notifications-button').getAttribute('aria-label'))
        .toBe(n === 0 ? 'Aviseringar, inga olästa' : `Aviseringar, ${n} olästa`)
    }
    expect(problems()).toEqual([])
  })
})
