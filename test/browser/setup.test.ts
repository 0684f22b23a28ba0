import { join } from 'node:path'
import { type RunningApi, startApi } from '@skolluft/api'
import { buildDashboard } from '@skolluft/dashboard'
import { hashSecret, silentLogger } from '@skolluft/runtime'
import { openSqliteStorage, type Storage } from '@skolluft/storage'
import { tempDir } from '@skolluft/testkit'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { browserAvailable, launchChromium, watchedPage } from '../support/browser.ts'
import { TEST_SITES } from '../support/platform.ts'

/**
 * The first administrator, created from the dashboard in headless Chromium: a real API (no admin yet,
 * the hash of a one-time setup value as `skolluft start` passes it), the real dashboard bundle and a
 * real SQLite file. No gateway: the setup needs none.
 */

/** What `skolluft start` would print to the terminal (any string does; only its scrypt hash reaches the API). */
const SETUP_VALUE = 'Xq7-one-time_setup-value-from-the-terminal'
const ADMIN = { email: 'first.admin@example.org', name: 'Ada Admin', password: 'a long enough passphrase' }
/** Playwright waits at most this long for an element or condition, well inside the test timeout. */
const PAGE_TIMEOUT_MS = 10_000
/** Chromium logs every refused request as a console error; these are the ones the tests provoke. */
const EXPECTED_REFUSAL = /status of (400|401|409)/

/** The dashboard's `window.__skolluft` (dashboard/src/client/app.ts TestHook), as far as used here. */
type HookWindow = { readonly __skolluft?: { readonly ready: boolean } }

describe.runIf(browserAvailable())('the first administrator, created in the browser', () => {
  let dir: { path: string; cleanup: () => Promise<void> } | undefined
  let storage: Storage | undefined
  let api: RunningApi | undefined
  let privateApi: RunningApi | undefined
  let url: string
  let privateUrl: string
  let browser: Browser | undefined
  const contexts: BrowserContext[] = []

  beforeAll(async () => {
    // Side by side (the bundle takes about a second); whatever started is closed in afterAll.
    const [bundle, chromium, folder] = await Promise.allSettled([
      buildDashboard({ minify: true }),
      launchChromium(),
      tempDir(),
    ])
    if (chromium.status === 'fulfilled') browser = chromium.value
    if (folder.status === 'fulfilled') dir = folder.value
    if (bundle.status === 'rejected') throw bundle.reason
    if (chromium.status === 'rejected') throw chromium.reason
    if (folder.status === 'rejected') throw folder.reason
    const store = openSqliteStorage({ path: join(folder.value.path, 'skolluft.db') })
    storage = store
    await store.registry.upsertSites(TEST_SITES.map((s) => ({ ...s })))
    const setupTokenHash = await hashSecret(SETUP_VALUE)
    const serve = (publicMap: boolean) =>
      startApi({
        log: silentLogger(),
        storage: store,
        host: '127.0.0.1',
        port: 0,
        options: { publicMap, tileUrl: null, setupTokenHash },
        dashboard: bundle.value.files,
      })
    api = await serve(true)
    url = `http://127.0.0.1:${api.port}`
    // The same data behind a private map: only the log-in form (and the setup) until someone logs in.
    privateApi = await serve(false)
    privateUrl = `http://127.0.0.1:${privateApi.port}`
  })

  afterEach(async () => {
    for (const context of contexts.splice(0)) await context.close()
  })

  afterAll(async () => {
    await browser?.close()
    await api?.close()
    await privateApi?.close()
    await storage?.close()
    await dir?.cleanup()
  })

  /**
   * A new context and page at `at`; `problems` collects console errors and warnings, uncaught page
   * errors and content-security-policy violations (reported by the page itself).
   */
  async function openPage(at: string): Promise<{ page: Page; problems: string[] }> {
    if (browser === undefined) throw new Error('no browser')
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } })
    contexts.push(context)
    context.setDefaultTimeout(PAGE_TIMEOUT_MS)
    const { page, problems } = await watchedPage(context)
    const response = await page.goto(at)
    expect(response?.headers()['content-security-policy']).toContain("script-src 'self'")
    return { page, problems }
  }

  /** A new page on the public map, ready. */
  async function openMap(): Promise<{ page: Page; problems: string[] }> {
    const { page, problems } = await openPage(url)
    await page.waitForFunction(
      () => (window as unknown as HookWindow).__skolluft?.ready === true && document.body.dataset.ready === 'true',
    )
    return { page, problems }
  }

  /** The test id of the focused element. */
  function focused(page: Page): Promise<string | null> {
    return page.evaluate(() => document.activeElement?.getAttribute('data-testid') ?? null)
  }

  async function fillSetup(
    page: Page,
    values: { setupToken: string; email: string; name?: string; password: string },
  ): Promise<void> {
    await page.getByTestId('setup-setupToken').fill(values.setupToken)
    await page.getByTestId('setup-email').fill(values.email)
    await page.getByTestId('setup-name').fill(values.name ?? '')
    await page.getByTestId('setup-password').fill(values.password)
  }

  it('offers the setup next to "log in" while no admin exists, by keyboard too, in both languages', async () => {
    const { page, problems } = await openMap()
    const entry = page.getByTestId('setup-open')
    await entry.waitFor({ state: 'visible' })
    expect(await entry.textContent()).toBe('Skapa den första administratören')
    expect(await page.getByTestId('login-open').isVisible()).toBe(true)

    await entry.focus()
    await page.keyboard.press('Enter')
    const form = page.getByTestId('setup-form')
    await form.waitFor({ state: 'visible' })
    expect(await focused(page)).toBe('setup-setupToken')
    // Every field has a label, and the password's minimum is stated where it is typed.
    await page.getByLabel('Engångsvärde från terminalen').waitFor()
    await page.getByLabel('E-postadress').waitFor()
    await page.getByLabel('Namn (valfritt)').waitFor()
    await page.getByLabel('Lösenord').waitFor()
    expect(await page.getByTestId('setup-password-hint').textContent()).toBe('Minst 12 tecken.')
    expect(await page.getByTestId('setup-password').getAttribute('aria-describedby')).toContain(
      await page.getByTestId('setup-password-hint').getAttribute('id'),
    )
    // Tab walks the fields in order.
    await page.keyboard.press('Tab')
    expect(await focused(page)).toBe('setup-email')

    // Escape closes the form and gives the focus back to the button that opened it.
    await page.keyboard.press('Escape')
    await form.waitFor({ state: 'hidden' })
    expect(await focused(page)).toBe('setup-open')

    await page.getByTestId('language-switch').selectOption('en')
    expect(await entry.textContent()).toBe('Create the first administrator')
    await entry.click()
    expect(await page.getByTestId('setup-password-hint').textContent()).toBe('At least 12 characters.')
    expect(await storage?.access.countUsers('admin')).toBe(0)
    expect(problems).toEqual([])
  })

  it('refuses a wrong value, a short password and an address the API rejects, saying why', async () => {
    const { page, problems } = await openMap()
    await page.getByTestId('setup-open').click()
    const summary = page.getByTestId('setup-error')

    // Wrong value: the API answers 401 setup_failed.
    await fillSetup(page, { ...ADMIN, setupToken: 'not-the-value' })
    await page.getByTestId('setup-submit').click()
    await summary.waitFor({ state: 'visible' })
    expect(await summary.textContent()).toBe(
      'Fel engångsvärde. Kopiera värdet som skolluft skrev i terminalen vid senaste starten.',
    )
    expect(await page.getByTestId('setup-setupToken').getAttribute('aria-invalid')).toBe('true')
    expect(await focused(page)).toBe('setup-setupToken')
    // The same error in English, without sending again.
    await page.getByTestId('language-switch').selectOption('en')
    expect(await summary.textContent()).toBe(
      'Wrong one-time value. Copy the value skolluft printed in the terminal at its latest start.',
    )
    await page.getByTestId('language-switch').selectOption('sv')

    // Too short a password: said before sending.
    await fillSetup(page, { ...ADMIN, setupToken: SETUP_VALUE, password: 'elevenchars' })
    await page.getByTestId('setup-submit').click()
    const passwordError = page.getByTestId('setup-error-password')
    await passwordError.waitFor({ state: 'visible' })
    expect(await passwordError.textContent()).toBe('Lösenordet måste ha minst 12 och högst 256 tecken.')
    expect(await summary.textContent()).toBe('Rätta de markerade fälten.')
    expect(await page.getByTestId('setup-setupToken').getAttribute('aria-invalid')).toBe('false')
    expect(await focused(page)).toBe('setup-password')

    // An address the browser lets through but the API's check refuses: 400 with `errors`.
    await fillSetup(page, { ...ADMIN, setupToken: SETUP_VALUE, email: 'admin@localhost' })
    await page.getByTestId('setup-submit').click()
    const emailError = page.getByTestId('setup-error-email')
    await emailError.waitFor({ state: 'visible' })
    expect(await emailError.textContent()).toBe('Ange en giltig e-postadress.')
    expect(await passwordError.isHidden()).toBe(true)
    expect(await focused(page)).toBe('setup-email')
    await page.getByTestId('language-switch').selectOption('en')
    expect(await emailError.textContent()).toBe('Enter a valid email address.')
    expect(await summary.textContent()).toBe('Correct the marked fields.')

    expect(await page.getByTestId('user-name').count()).toBe(0)
    expect(await storage?.access.countUsers('admin')).toBe(0)
    expect(problems.filter((p) => !EXPECTED_REFUSAL.test(p))).toEqual([])
  })

  it('offers the setup beside the log-in form of a private map, and goes back to it', async () => {
    const { page, problems } = await openPage(privateUrl)
    await page.getByTestId('login-form').waitFor({ state: 'visible' })
    expect(await page.getByTestId('map').count()).toBe(0)
    const entry = page.getByTestId('setup-open')
    expect(await entry.textContent()).toBe('Skapa den första administratören')

    await entry.click()
    await page.getByTestId('setup-form').waitFor({ state: 'visible' })
    expect(await page.getByTestId('login-form').count()).toBe(0)
    expect(await focused(page)).toBe('setup-setupToken')
    await fillSetup(page, { ...ADMIN, setupToken: 'not-the-value' })
    await page.getByTestId('setup-submit').click()
    await page.getByTestId('setup-error').waitFor({ state: 'visible' })

    await page.getByTestId('setup-cancel').click()
    await page.getByTestId('login-form').waitFor({ state: 'visible' })
    expect(await page.getByTestId('setup-form').count()).toBe(0)
    expect(await focused(page)).toBe('setup-open')
    // Opened again, the form starts empty: no value or password left behind.
    await entry.click()
    expect(await page.getByTestId('setup-password').inputValue()).toBe('')
    expect(await page.getByTestId('setup-error').isHidden()).toBe(true)
    expect(await storage?.access.countUsers('admin')).toBe(0)
    expect(problems.filter((p) => !EXPECTED_REFUSAL.test(p))).toEqual([])
  })

  it('creates the admin with the right value and logs in; a page still offering the setup hears it is closed', async () => {
    const late = await openMap()
    const { page, problems } = await openMap()
    await page.getByTestId('setup-open').click()
    await fillSetup(page, { ...ADMIN, setupToken: ` ${SETUP_VALUE} ` })
    await page.getByTestId('setup-password').press('Enter')

    const user = page.getByTestId('user-name')
    await user.waitFor({ state: 'visible' })
    expect(await user.textContent()).toBe(`Inloggad som ${ADMIN.name} (administratör)`)
    expect(await page.getByTestId('setup-form').isHidden()).toBe(true)
    expect(await page.getByTestId('setup-open').count()).toBe(0)
    expect(await page.getByTestId('login-open').count()).toBe(0)
    expect(await focused(page)).toBe('logout')
    expect(await storage?.access.countUsers('admin')).toBe(1)
    const admin = await storage?.access.getUserByEmail(ADMIN.email)
    expect(admin?.role).toBe('admin')
    expect(admin?.name).toBe(ADMIN.name)

    // The session cookie holds: after a reload the admin is still logged in and no setup is offered.
    await page.reload()
    await user.waitFor({ state: 'visible' })
    expect(await user.textContent()).toContain(ADMIN.name)
    expect(await page.getByTestId('setup-open').count()).toBe(0)
    expect(problems).toEqual([])

    // A page opened before the admin existed still offers the setup; the API says it is over.
    await late.page.getByTestId('setup-open').click()
    await fillSetup(late.page, { email: 'second@example.org', setupToken: SETUP_VALUE, password: ADMIN.password })
    await late.page.getByTestId('setup-submit').click()
    const summary = late.page.getByTestId('setup-error')
    await summary.waitFor({ state: 'visible' })
    expect(await summary.textContent()).toBe(
      'Det finns redan en administratör. Logga in, eller be en administratör om ett konto.',
    )
    expect(await late.page.getByTestId('setup-open').count()).toBe(0)
    expect(await late.page.getByTestId('user-name').count()).toBe(0)
    expect(await storage?.access.countUsers('admin')).toBe(1)
    expect(late.problems.filter((p) => !EXPECTED_REFUSAL.test(p))).toEqual([])

    // A new visitor is not offered the setup any more.
    const fresh = await openMap()
    expect(await fresh.page.getByTestId('login-open').isVisible()).toBe(true)
    expect(await fresh.page.getByTestId('setup-open').count()).toBe(0)
    expect(fresh.problems).toEqual([])
  })
})
