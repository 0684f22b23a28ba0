import { randomBytes } from 'node:crypto'
import { type RunningApi, startApi } from '@skolluft/api'
import { ALL_TELEMETRY_FILTER } from '@skolluft/core'
import { buildDashboard } from '@skolluft/dashboard'
import { hashSecret, silentLogger, webhookSecret } from '@skolluft/runtime'
import type { Browser, BrowserContext, BrowserContextOptions, Page } from 'playwright-core'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { browserAvailable, launchChromium, watchedPage } from '../support/browser.ts'
import { type LiveServices, startLiveServices } from '../support/live-platform.ts'
import { startTestPlatform, TEST_SITES, type TestPlatform } from '../support/platform.ts'

/**
 * "My alerts" and the deliveries view in headless Chromium (issue 4), against real parts: gateway, ingest, SQLite,
 * and the API with the dashboard bundle, its live feed and an alerts key (so subscriptions can be made and webhook
 * secrets derived). The page is driven as a person would; what the API stored is read back over HTTP and from
 * storage. Outbox rows and their attempts are seeded through storage.alerts as the alerts service makes them
 * (appendEvents → fanOut → claimDue → finishAttempt).
 */

const HOUR_MS = 3_600_000
/** Playwright waits at most this long for an element or condition, well inside the test timeout. */
const PAGE_TIMEOUT_MS = 10_000
/** Times as people in Lund read them. */
const DESKTOP: BrowserContextOptions = { viewport: { width: 1280, height: 800 }, timezoneId: 'Europe/Stockholm' }
/** The deployment's alerts key (runtime derived-keys.ts: at least 32 bytes). */
const KEY = randomBytes(32)

const [SITE_A, SITE_B] = TEST_SITES
const STAFF = { email: 'miljo@example.org', name: 'Test Miljö', password: 'correct horse battery staple' }
const PRINCIPAL = { email: 'rektor.b@example.org', name: 'Rektor B', password: 'another long passphrase' }
const MAIL_ERROR = '421 4.7.0 try again later'
const NOW = Date.now()

const LoginResponse = z.object({ csrfToken: z.string() })
const Subscriptions = z.object({
  subscriptions: z.array(
    z.object({
      id: z.string(),
      topic: z.string(),
      channel: z.string(),
      target: z.string().nullable(),
      sites: z.union([z.literal('all'), z.array(z.string())]),
      min_severity: z.string(),
      language: z.string(),
      quiet_hours: z.unknown(),
    }),
  ),
})

/** The dashboard's `window.__skolluft` (dashboard/src/client/app.ts TestHook), as far as used here. */
type HookWindow = { readonly __skolluft?: { readonly ready: boolean } }

describe.runIf(browserAvailable())('my alerts and deliveries in a browser', () => {
  let platform: TestPlatform
  let live: LiveServices
  let api: RunningApi | undefined
  let url: string
  let browser: Browser
  let context: BrowserContext | undefined
  let principalId: string
  let mailRow = 0
  let hookRow = 0

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
    // As startDashboardApi does, plus the alerts key that subscriptions need.
    api = await startApi({
      log: silentLogger(),
      storage: platform.storage,
      host: '127.0.0.1',
      port: 0,
      options: { tileUrl: null, mapSnapshotMaxAgeMs: 0, publicMap: false },
      dashboard: bundle.value.files,
      live: { url: platform.mqttUrl, ...live.apiCredential },
      alertsKey: KEY,
    })
    url = `http://127.0.0.1:${api.port}`
    const staff = await platform.storage.access.addUser(
      {
        email: STAFF.email,
        name: STAFF.name,
        role: 'staff',
        sites: [],
        passwordHash: await hashSecret(STAFF.password),
      },
      NOW,
    )
    const principal = await platform.storage.access.addUser(
      {
        email: PRINCIPAL.email,
        name: PRINCIPAL.name,
        role: 'principal',
        sites: [SITE_B.id],
        passwordHash: await hashSecret(PRINCIPAL.password),
      },
      NOW,
    )
    principalId = principal.id
    await seedDeliveries(staff.id)
  })

  afterEach(async () => {
    await context?.close()
    context = undefined
  })

  afterAll(async () => {
    await browser?.close()
    await api?.close()
    await live?.close()
    await platform?.close()
  })

  /**
   * Two outbox rows of one breach event, as the alerts service leaves them: an e-mail whose first attempt failed
   * (pending, retried later) and a webhook that went out.
   */
  async function seedDeliveries(staffId: string): Promise<void> {
    const alerts = platform.storage.alerts
    const base = {
      topic: 'breaches',
      sites: 'all',
      minSeverity: 'info',
      language: 'sv',
      quietHours: null,
      unsubscribeHash: 'not used here',
      createdAt: NOW - 2 * HOUR_MS,
    } as const
    const mail = await alerts.addSubscription({ ...base, userId: staffId, channel: 'email', target: STAFF.email })
    const hook = await alerts.addSubscription({
      ...base,
      userId: staffId,
      channel: 'webhook',
      target: 'https://hooks.example.org/services/T0/B0/secretpath',
    })
    await alerts.appendEvents(
      [
        {
          key: 'browser-test-event',
          kind: 'opened',
          topic: 'breaches',
          siteId: SITE_A.id,
          deviceId: null,
          incidentId: null,
          severity: 'warning',
          urgent: false,
          live: true,
          at: NOW - HOUR_MS,
          data: {},
        },
      ],
      NOW - HOUR_MS,
    )
    const event = (await alerts.listEvents({ limit: 10 })).find((e) => e.key === 'browser-test-event')
    if (event === undefined) throw new Error('the seeded event was not stored')
    await alerts.fanOut(
      event.id,
      [mail, hook].map((s) => ({
        subscriptionId: s.id,
        userId: s.userId,
        channel: s.channel,
        target: s.target,
        language: 'sv' as const,
        status: 'pending' as const,
        deliverAfter: NOW - HOUR_MS,
        subject: `PM2.5 över riktvärdet vid ${SITE_A.name} (${s.channel})`,
        text: 'text',
        html: '<p>text</p>',
        payload: {},
      })),
      NOW - HOUR_MS,
    )
    for (const row of await alerts.claimDue(Date.now(), 10, 60_000)) {
      if (row.channel === 'email') {
        mailRow = row.id
        await alerts.finishAttempt(
          row.id,
          { at: NOW - 30 * 60_000, ok: false, error: MAIL_ERROR, durationMs: 35 },
          { status: 'pending', nextAttemptAt: NOW + HOUR_MS },
        )
      } else {
        hookRow = row.id
        await alerts.finishAttempt(
          row.id,
          { at: NOW - 30 * 60_000, ok: true, error: null, durationMs: 80 },
          { status: 'sent' },
        )
      }
    }
    expect(mailRow).toBeGreaterThan(0)
    expect(hookRow).toBeGreaterThan(0)
  }

  /**
   * A new page; `problems` collects console errors and warnings, page errors and CSP violations, except Chromium's
   * log lines for the refusals this test provokes on purpose (400 from POST /subscriptions).
   */
  async function openPage(): Promise<{ page: Page; problems: () => string[] }> {
    context = await browser.newContext(DESKTOP)
    context.setDefaultTimeout(PAGE_TIMEOUT_MS)
    const { page, problems } = await watchedPage(context)
    const allowed: string[] = []
    page.on('console', (message) => {
      if (/status of 400/.test(message.text()) && message.location().url.endsWith('/api/v1/subscriptions')) {
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

  async function logIn(page: Page, user: { email: string; password: string }): Promise<void> {
    await page.goto(url)
    await page.getByTestId('login-email').fill(user.email)
    await page.getByTestId('login-password').fill(user.password)
    await page.getByTestId('login-submit').click()
    await page.waitForFunction(
      () => (window as unknown as HookWindow).__skolluft?.ready === true && document.body.dataset.ready === 'true',
    )
  }

  /** The subscriptions of `user` as the API lists them. */
  async function subscriptionsOf(user: { email: string; password: string }) {
    const login = await fetch(`${url}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ email: user.email, password: user.password }),
    })
    expect(login.status).toBe(200)
    LoginResponse.parse(await login.json())
    const cookie = login.headers
      .getSetCookie()
      .map((c) => c.split(';')[0] ?? '')
      .join('; ')
    const res = await fetch(`${url}/api/v1/subscriptions`, { headers: { Cookie: cookie } })
    expect(res.status).toBe(200)
    return Subscriptions.parse(await res.json()).subscriptions
  }

  const focusedTestId = (page: Page) => page.evaluate(() => document.activeElement?.getAttribute('data-testid'))

  /** A time as the page shows it: the browser's own formatter, in the zone the context runs in. */
  function localTime(page: Page, epochMs: number): Promise<string> {
    return page.evaluate(
      (ms) => new Intl.DateTimeFormat('sv', { dateStyle: 'medium', timeStyle: 'short' }).format(ms),
      epochMs,
    )
  }

  it('lets a principal subscribe by e-mail to their site, shows the API refusal, and deletes', async () => {
    const { page, problems } = await openPage()
    await logIn(page, PRINCIPAL)
    // Deliveries are for staff: a principal has no such view.
    expect(await page.getByTestId('view-deliveries').isHidden()).toBe(true)

    const opener = page.getByTestId('alerts-open')
    await opener.click()
    const dialog = page.getByRole('dialog', { name: 'Mina aviseringar' })
    await dialog.waitFor({ state: 'visible' })
    expect(await focusedTestId(page)).toBeNull()
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Mina aviseringar')
    await dialog.getByTestId('subscriptions-status').getByText('Du har inga prenumerationer ännu.').waitFor()

    // Only breaches: a principal is never offered sensor health.
    const topic = dialog.getByLabel('Avisera om')
    expect(await topic.locator('option').evaluateAll((os) => os.map((o) => o.getAttribute('value')))).toEqual([
      'breaches',
    ])
    // E-mail, prefilled with their address; their own site preselected and no other offered; default quiet hours.
    expect(await dialog.getByLabel('Skicka via').inputValue()).toBe('email')
    const address = dialog.getByLabel('E-postadress')
    expect(await address.inputValue()).toBe(PRINCIPAL.email)
    const sites = dialog.getByTestId('subscription-site')
    expect(await sites.evaluateAll((els) => els.map((e) => e.getAttribute('data-site-id')))).toEqual([SITE_B.id])
    expect(await dialog.getByRole('checkbox', { name: SITE_B.name }).isChecked()).toBe(true)
    expect(await dialog.getByLabel('Tyst från').inputValue()).toBe('18:00')
    expect(await dialog.getByLabel('Tyst till').inputValue()).toBe('07:00')
    expect(await dialog.getByTestId('quiet-weekends').isChecked()).toBe(true)
    expect(await dialog.getByTestId('quiet-holidays').isChecked()).toBe(true)

    // An address that cannot be valid: the API's message under the field, the field marked and focused.
    await address.fill('rektor@@skola')
    await dialog.getByTestId('subscription-submit').click()
    const targetError = dialog.getByTestId('subscription-error-target')
    await targetError.waitFor({ state: 'visible' })
    expect(await targetError.textContent()).toBe('not a valid e-mail address')
    expect(await dialog.getByTestId('subscription-error').textContent()).toBe(
      'Prenumerationen sparades inte: rätta de markerade fälten.',
    )
    expect(await address.getAttribute('aria-invalid')).toBe('true')
    expect(await focusedTestId(page)).toBe('subscription-target')
    expect(await subscriptionsOf(PRINCIPAL)).toEqual([])

    // A real address, the lowest level, quiet until half past seven and not on weekends.
    await address.fill(' Rektor.B@Skola.Lund.SE ')
    await dialog.getByLabel('Lägsta nivå').selectOption('info')
    await dialog.getByLabel('Tyst till').fill('07:30')
    await dialog.getByTestId('quiet-weekends').uncheck()
    await dialog.getByTestId('subscription-submit').click()
    const item = dialog.getByTestId('subscription')
    await item.waitFor()
    expect(await targetError.isHidden()).toBe(true)
    expect(await dialog.getByTestId('subscription-error').isHidden()).toBe(true)
    expect(await address.getAttribute('aria-invalid')).toBe('false')
    const title = 'Överskridanden via e-post till Rektor.B@skola.lund.se'
    expect(await item.getByTestId('subscription-title').textContent()).toBe(title)
    expect(await item.getByTestId('subscription-fact-sites').textContent()).toBe(`Platser: ${SITE_B.name}`)
    expect(await item.getByTestId('subscription-fact-severity').textContent()).toBe('Från nivå: Information')
    expect(await item.getByTestId('subscription-fact-quiet').textContent()).toBe('Tysta timmar: 18:00–07:30, helgdagar')
    expect(await focusedTestId(page)).toBe('subscription-title')
    await expect.poll(() => dialog.getByTestId('alerts-live').textContent()).toBe('Prenumerationen är sparad.')
    const stored = await subscriptionsOf(PRINCIPAL)
    expect(stored).toEqual([
      {
        id: expect.stringMatching(/^sub_/),
        topic: 'breaches',
        channel: 'email',
        target: 'Rektor.B@skola.lund.se',
        sites: [SITE_B.id],
        min_severity: 'info',
        language: 'sv',
        quiet_hours: { windows: [{ from: '18:00', to: '07:30' }], weekends: false, holidays: true, extraDays: [] },
      },
    ])

    // An in-app one as well: no address asked for.
    await dialog.getByLabel('Skicka via').selectOption('in_app')
    expect(await address.isHidden()).toBe(true)
    expect(await dialog.getByTestId('subscription-in-app-hint').textContent()).toBe(
      'Aviseringarna visas under klockan i sidhuvudet.',
    )
    await dialog.getByTestId('subscription-quiet').uncheck()
    await dialog.getByTestId('subscription-submit').click()
    await expect.poll(() => item.count()).toBe(2)
    const inApp = item.nth(1)
    expect(await inApp.getByTestId('subscription-title').textContent()).toBe('Överskridanden via klockan i appen')
    expect(await inApp.getByTestId('subscription-fact-quiet').textContent()).toBe('Skickas när som helst')

    // Delete the e-mail one by its accessible name; the focus moves to the next delete button.
    await dialog.getByRole('button', { name: `Ta bort prenumerationen: ${title}` }).click()
    await expect.poll(() => item.count()).toBe(1)
    await expect.poll(() => dialog.getByTestId('alerts-live').textContent()).toBe('Prenumerationen är borttagen.')
    expect(await page.evaluate(() => document.activeElement?.getAttribute('aria-label'))).toBe(
      'Ta bort prenumerationen: Överskridanden via klockan i appen',
    )
    const left = await subscriptionsOf(PRINCIPAL)
    expect(left.map((s) => s.channel)).toEqual(['in_app'])
    const deleted = stored[0]?.id ?? ''
    expect((await platform.storage.alerts.getSubscription(deleted))?.disabledAt).not.toBeNull()
    expect((await platform.storage.alerts.listSubscriptions({ userId: principalId })).map((s) => s.id)).toEqual(
      left.map((s) => s.id),
    )

    // Escape closes the dialog (and nothing behind it); the focus returns to the button that opened it.
    await page.keyboard.press('Escape')
    await dialog.waitFor({ state: 'hidden' })
    await expect.poll(() => focusedTestId(page)).toBe('alerts-open')

    // English.
    await page.getByTestId('language-switch').selectOption('en')
    await opener.click()
    const english = page.getByRole('dialog', { name: 'My alerts' })
    await english.getByTestId('subscription').waitFor()
    expect(await english.getByTestId('subscription-title').textContent()).toBe('Breaches by the bell in the app')
    expect(await english.getByLabel('Alert me about').locator('option').allTextContents()).toEqual(['Breaches'])
    await english.getByTestId('alerts-close').click()
    await english.waitFor({ state: 'hidden' })
    expect(problems()).toEqual([])
  })

  it('shows staff both topics and all sites, refuses a plain-http webhook, and shows a signing secret once', async () => {
    const { page, problems } = await openPage()
    await logIn(page, STAFF)
    await page.getByTestId('alerts-open').click()
    const dialog = page.getByRole('dialog', { name: 'Mina aviseringar' })
    await dialog.waitFor({ state: 'visible' })
    expect(await dialog.getByLabel('Avisera om').locator('option').allTextContents()).toEqual([
      'Överskridanden',
      'Sensorernas status',
    ])
    // All sites by default; "chosen sites" offers every site on the map.
    expect(await dialog.getByTestId('subscription-sites-all').isChecked()).toBe(true)
    expect(await dialog.getByTestId('subscription-site-list').isHidden()).toBe(true)
    await dialog.getByTestId('subscription-sites-chosen').check()
    expect(
      await dialog
        .getByTestId('subscription-site')
        .evaluateAll((els) => els.map((e) => e.getAttribute('data-site-id'))),
    ).toEqual([SITE_A.id, SITE_B.id])
    await dialog.getByRole('checkbox', { name: SITE_A.name }).check()

    await dialog.getByLabel('Avisera om').selectOption('device-health')
    await dialog.getByLabel('Skicka via').selectOption('webhook')
    const hookUrl = dialog.getByLabel('Webhook-adress (https)')
    expect(await hookUrl.inputValue()).toBe('')
    await hookUrl.fill('http://hooks.example.org/skolluft')
    await dialog.getByTestId('subscription-submit').click()
    const targetError = dialog.getByTestId('subscription-error-target')
    await targetError.waitFor({ state: 'visible' })
    expect(await targetError.textContent()).toBe('plain http is allowed only to localhost or 127.0.0.1; use https')

    await hookUrl.fill('https://hooks.example.org/skolluft')
    await dialog.getByTestId('subscription-submit').click()
    const secretBox = dialog.getByTestId('signing-secret')
    await secretBox.waitFor({ state: 'visible' })
    expect(await focusedTestId(page)).toBe('signing-secret-title')
    const [created] = (await subscriptionsOf(STAFF)).filter((s) => s.channel === 'webhook' && s.sites !== 'all')
    expect(created).toMatchObject({ topic: 'device-health', target: 'https://hooks.example.org/skolluft' })
    expect(created?.sites).toEqual([SITE_A.id])
    expect(await secretBox.getByTestId('signing-secret-value').inputValue()).toBe(webhookSecret(KEY, created?.id ?? ''))
    expect(
      await dialog.locator(`[data-subscription-id="${created?.id}"]`).getByTestId('subscription-title').textContent(),
    ).toBe('Sensorernas status via webhook till https://hooks.example.org/skolluft')

    // Copying from a page on http://127.0.0.1 (a secure context) goes through the clipboard.
    await context?.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: url })
    await secretBox.getByTestId('signing-secret-copy').click()
    await expect.poll(() => secretBox.getByTestId('signing-secret-copied').textContent()).toBe('Nyckeln är kopierad.')
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(webhookSecret(KEY, created?.id ?? ''))

    // Shown once: closed and opened again, the secret is gone from the page.
    await dialog.getByTestId('alerts-close').click()
    await dialog.waitFor({ state: 'hidden' })
    expect(await page.getByTestId('signing-secret-value').count()).toBe(0)
    await page.getByTestId('alerts-open').click()
    await dialog.getByTestId('subscription').first().waitFor()
    expect(await dialog.getByTestId('signing-secret').isHidden()).toBe(true)
    expect(problems()).toEqual([])
  })

  it('shows staff the deliveries with status filter, and a row opens its attempts', async () => {
    const { page, problems } = await openPage()
    await logIn(page, STAFF)
    const viewButton = page.getByTestId('view-deliveries')
    expect(await viewButton.textContent()).toBe('Utskick')
    await viewButton.click()
    expect(await viewButton.getAttribute('aria-pressed')).toBe('true')
    await page.getByTestId('deliveries-view').waitFor({ state: 'visible' })
    expect(await page.getByTestId('map').isVisible()).toBe(false)
    const rows = page.getByTestId('delivery-row')
    await rows.first().waitFor()
    const ids = () => rows.evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-delivery-id'))))
    // Newest first.
    expect(await ids()).toEqual([Math.max(mailRow, hookRow), Math.min(mailRow, hookRow)])

    const mail = page.locator(`[data-testid="delivery-row"][data-delivery-id="${mailRow}"]`)
    expect(await mail.locator('th, td').allTextContents()).toEqual([
      await localTime(page, NOW - HOUR_MS),
      'E-post',
      STAFF.email,
      `PM2.5 över riktvärdet vid ${SITE_A.name} (email)`,
      'Väntar',
      '1',
      MAIL_ERROR,
      'Visa försök',
    ])
    const hook = page.locator(`[data-testid="delivery-row"][data-delivery-id="${hookRow}"]`)
    // A webhook's path often holds its credential: the API shows the origin only, and so does the page.
    expect(await hook.getByTestId('delivery-recipient').textContent()).toBe('https://hooks.example.org/…')
    expect(await hook.getByTestId('delivery-status').textContent()).toBe('Skickad')
    expect(await hook.getByTestId('delivery-last-error').textContent()).toBe('–')

    // Filter by status.
    await page.getByLabel('Status', { exact: true }).selectOption('sent')
    await expect.poll(ids).toEqual([hookRow])
    await page.getByLabel('Status', { exact: true }).selectOption('failed')
    await page.getByTestId('deliveries-status').getByText('Inga utskick.').waitFor()
    await page.getByLabel('Status', { exact: true }).selectOption('')
    await expect.poll(() => ids().then((x) => x.length)).toBe(2)

    // The keyboard opens a row's attempts and closes them again.
    const toggle = mail.getByTestId('delivery-toggle')
    expect(await toggle.getAttribute('aria-expanded')).toBe('false')
    await toggle.focus()
    await page.keyboard.press('Enter')
    await expect.poll(() => mail.getByTestId('delivery-toggle').getAttribute('aria-expanded')).toBe('true')
    const attempts = page.locator(`#delivery-attempts-${mailRow}`)
    const attempt = attempts.getByTestId('attempt')
    await attempt.first().waitFor()
    expect(await attempt.count()).toBe(1)
    expect(await attempt.first().textContent()).toBe(
      `${await localTime(page, NOW - 30 * 60_000)} Misslyckades 35 ms${MAIL_ERROR}`,
    )
    expect(await focusedTestId(page)).toBe('delivery-toggle')
    expect(await page.evaluate(() => document.activeElement?.getAttribute('aria-label'))).toBe(
      `Dölj försök: Försök för PM2.5 över riktvärdet vid ${SITE_A.name} (email)`,
    )
    await page.keyboard.press('Space')
    await expect.poll(() => mail.getByTestId('delivery-toggle').getAttribute('aria-expanded')).toBe('false')
    expect(await attempts.isHidden()).toBe(true)

    const hookToggle = hook.getByTestId('delivery-toggle')
    await hookToggle.click()
    await page.locator(`#delivery-attempts-${hookRow}`).getByTestId('attempt').first().waitFor()
    expect(await page.locator(`#delivery-attempts-${hookRow}`).getByTestId('attempt').getAttribute('data-ok')).toBe(
      'true',
    )

    // English.
    await page.getByTestId('language-switch').selectOption('en')
    expect(await viewButton.textContent()).toBe('Deliveries')
    expect(await hook.getByTestId('delivery-status').textContent()).toBe('Sent')

    // Log out: the view and its button go, and the addresses leave the page.
    await page.getByTestId('logout').click()
    await page.getByTestId('login-email').waitFor()
    expect(await page.getByTestId('delivery-row').count()).toBe(0)
    expect(problems()).toEqual([])
  })
})
