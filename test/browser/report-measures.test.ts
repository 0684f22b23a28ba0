import { join } from 'node:path'
import { type RunningApi, startApi } from '@skolluft/api'
import { DEFAULT_MEASURES, HOUR_MS, type SiteInput } from '@skolluft/core'
import { buildDashboard } from '@skolluft/dashboard'
import { hashSecret, silentLogger } from '@skolluft/runtime'
import { openSqliteStorage, type Storage, type StoredReading } from '@skolluft/storage'
import { tempDir } from '@skolluft/testkit'
import type { Browser, BrowserContext, BrowserContextOptions, Page } from 'playwright-core'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { browserAvailable, launchChromium, watchedPage } from '../support/browser.ts'
import { addTestDevice } from '../support/platform.ts'

/**
 * Measures taken and the catalogue of measures in headless Chromium (issue 7): the real API over real HTTP with
 * the dashboard bundle and a real SQLite file. Staff records a measure on a site report and reads its follow-up,
 * sees the API's reason for a date it refuses, deletes the measure; an anonymous visitor of the public map gets
 * no controls. On the catalogue page staff edits the catalogue as JSON (the site report's suggestion then shows
 * the new name), and sees a refused text and a save by someone else in between.
 */

/** The API's clock: long after the data, so every follow-up window of it is over. */
const NOW = Date.parse('2026-11-30T12:00:00Z')
/** Monday 5 January 2026 00:00 UTC+1. */
const START = Date.parse('2026-01-04T23:00:00Z')
/** 7 whole weeks: Monday 5 January – Sunday 22 February 2026. */
const DAYS = 49
const FROM = '2026-01-05'
const TO = '2026-02-22'

const SCHOOL = 'site-a'
const BACKGROUND = 'site-bg'
const SITES: SiteInput[] = [
  { id: SCHOOL, name: 'Testskolan A (demo)', kind: 'school', municipality: 'Lund', lat: 55.7, lon: 13.19, demo: true },
  {
    id: BACKGROUND,
    name: 'Bakgrund Lund (demo)',
    kind: 'background',
    municipality: 'Lund',
    lat: 55.705,
    lon: 13.195,
    demo: true,
  },
]
const STAFF = { email: 'miljo@example.org', name: 'Test Nämnd', password: 'correct horse battery staple' }
/** Recorded before the test starts: the one measure an anonymous visitor sees. */
const SEEDED_TITLE = 'Bilfri skolgata vid lämning'

const isWeekday = (day: number) => day % 7 < 5
const dropOff = (day: number, hour: number) => isWeekday(day) && (hour === 7 || hour === 8)

/**
 * The school: NO2 20 µg/m³, 60 at 07–09 on weekdays (the drop-off pattern, which suggests traffic measures) until
 * 1 February, then 30 at drop-off (so before and after differ); PM2.5 8, 12 at drop-off. The background: flat.
 */
function values(site: string, day: number, hour: number): StoredReading['values'] {
  if (site === BACKGROUND) return { pm1: 4, pm25: 6, pm10: 12, no2: 12, temp: 1, rh: 80 }
  const peak = dropOff(day, hour)
  const pm25 = peak ? 12 : 8
  const no2 = peak ? (day < 27 ? 60 : 30) : 20
  return { pm1: 0.7 * pm25, pm25, pm10: 2 * pm25 + 2, no2, temp: 1, rh: 80 }
}

function readings(siteId: string): StoredReading[] {
  const out: StoredReading[] = []
  for (let day = 0; day < DAYS; day++) {
    for (let hour = 0; hour < 24; hour++) {
      const ts = START + (day * 24 + hour) * HOUR_MS + 30 * 60_000
      const v = values(siteId, day, hour)
      out.push({ deviceId: `dev-${siteId}`, siteId, ts, seq: null, values: v, receivedAt: ts, expectedPerHour: 1 })
    }
  }
  return out
}

const ApiFollowUp = z.object({
  days: z.number(),
  metrics: z.array(
    z.object({
      metric: z.string(),
      before: z.object({ mean: z.number().nullable() }),
      after: z.object({ mean: z.number().nullable() }),
    }),
  ),
})
const ApiMeasures = z.object({ measures: z.array(z.object({ id: z.string(), title: z.string() })) })
const ApiCatalogue = z.object({
  revision: z.number(),
  measures: z.array(
    z.object({
      id: z.string(),
      name: z.object({ sv: z.string(), en: z.string() }),
      suggestedBy: z.array(z.object({ pattern: z.string(), evidence: z.object({ sv: z.string(), en: z.string() }) })),
    }),
  ),
})
const ApiSuggestions = z.object({ suggestions: z.array(z.object({ measureId: z.string(), pattern: z.string() })) })

const PAGE_TIMEOUT_MS = 15_000
const DESKTOP: BrowserContextOptions = { viewport: { width: 1280, height: 900 } }
/** Chromium logs every refused request; the tests provoke 400 and 412 on purpose. */
const EXPECTED_REFUSAL = /status of (400|412)/

/** Swedish numbers as the report writes them (report-format.ts num: at most one decimal, decimal comma). */
const sv1 = (value: number) => new Intl.NumberFormat('sv', { maximumFractionDigits: 1 }).format(value)

describe.runIf(browserAvailable())('measures taken and the catalogue in a browser', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>
  let storage: Storage
  let api: RunningApi
  let base: string
  let browser: Browser
  let context: BrowserContext | undefined

  beforeAll(async () => {
    const [bundle, chromium] = await Promise.allSettled([buildDashboard({ minify: true }), launchChromium()])
    if (chromium.status === 'fulfilled') browser = chromium.value
    if (bundle.status === 'rejected') throw bundle.reason
    if (chromium.status === 'rejected') throw chromium.reason
    dir = await tempDir('skolluft-report-measures-')
    storage = openSqliteStorage({ path: join(dir.path, 'skolluft.db') })
    await storage.registry.upsertSites(SITES)
    for (const site of SITES) await addTestDevice(storage, `dev-${site.id}`, site.id)
    await storage.readings.writeReadings(SITES.flatMap((s) => readings(s.id)))
    await storage.measures.add({
      siteId: SCHOOL,
      measureId: null,
      title: SEEDED_TITLE,
      takenOn: '2026-01-26',
      note: null,
      recordedBy: 'test',
      recordedAt: NOW,
    })
    await storage.access.addUser(
      {
        email: STAFF.email,
        name: STAFF.name,
        role: 'staff',
        sites: [],
        passwordHash: await hashSecret(STAFF.password),
      },
      NOW,
    )
    api = await startApi({
      log: silentLogger(),
      storage,
      clock: () => NOW,
      host: '127.0.0.1',
      port: 0,
      options: { publicMap: true, tileUrl: null, mapSnapshotMaxAgeMs: 0 },
      dashboard: bundle.value.files,
    })
    base = `http://127.0.0.1:${api.port}`
  })

  afterEach(async () => {
    await context?.close()
    context = undefined
  })

  afterAll(async () => {
    await browser?.close()
    await api?.close()
    await storage?.close()
    await dir?.cleanup()
  })

  async function openPage(): Promise<{ page: Page; problems: string[] }> {
    context = await browser.newContext(DESKTOP)
    context.setDefaultTimeout(PAGE_TIMEOUT_MS)
    return watchedPage(context)
  }

  /** Logs staff in through the API; the session cookie is the context's, as after the map's log-in form. */
  async function logInStaff(): Promise<void> {
    if (context === undefined) throw new Error('no browser context')
    const res = await context.request.post(`${base}/api/v1/auth/login`, {
      data: { email: STAFF.email, password: STAFF.password },
    })
    expect(res.status()).toBe(200)
  }

  async function open(page: Page, query: string, problems: readonly string[]): Promise<void> {
    await page.goto(`${base}/?${query}`)
    await page.waitForFunction(() => ['true', 'error'].includes(document.body.dataset.reportReady ?? ''))
    const state = await page.evaluate(() => ({
      ready: document.body.dataset.reportReady,
      status: document.querySelector('[data-testid="report-status"]')?.textContent ?? '',
    }))
    expect(state, problems.join('\n')).toEqual({ ready: 'true', status: '' })
  }

  async function apiJson(path: string): Promise<unknown> {
    const res = await fetch(`${base}${path}`)
    expect(res.status, path).toBe(200)
    return res.json()
  }

  const measureIds = (page: Page) =>
    page
      .locator('[data-testid="report-measures"] article[data-measure]')
      .evaluateAll((els) => els.map((el) => el.getAttribute('data-measure') ?? ''))

  it('shows an anonymous visitor of the public map the measures taken, without any control to change them', async () => {
    const { page, problems } = await openPage()
    await open(page, `report=site&site=${SCHOOL}&from=${FROM}&to=${TO}`, problems)
    expect(await page.textContent('[data-testid="report-measures"]')).toContain(SEEDED_TITLE)
    expect(await page.locator('[data-testid="report-measure-form"]').count()).toBe(0)
    expect(await page.locator('[data-testid^="report-measure-delete-"]').count()).toBe(0)
    // The catalogue is linked, and shown without "Edit as JSON".
    expect(await page.getAttribute('[data-testid="report-catalogue-link"]', 'href')).toBe('/?report=measures')
    await page.click('[data-testid="report-catalogue-link"]')
    await page.waitForFunction(() => document.body.dataset.reportReady === 'true')
    expect(await page.locator('[data-testid^="catalogue-measure-"]').count()).toBe(DEFAULT_MEASURES.length)
    expect(await page.isVisible('[data-testid="catalogue-edit"]')).toBe(false)
    expect(problems).toEqual([])
  })

  it('lets staff record a measure and read its follow-up, shows the API’s reason for a bad date, and deletes it', async () => {
    const { page, problems } = await openPage()
    await logInStaff()
    await open(page, `report=site&site=${SCHOOL}&from=${FROM}&to=${TO}`, problems)
    const before = await measureIds(page)

    // A date the API refuses (after its today): its reason appears next to the date field.
    const catalogueMeasure = DEFAULT_MEASURES[0]
    if (catalogueMeasure === undefined) throw new Error('empty default catalogue')
    await page.selectOption('[data-testid="report-measure-select"]', catalogueMeasure.id)
    await page.fill('[data-testid="report-measure-date"]', '2027-01-15')
    await page.click('[data-testid="report-measure-submit"]')
    const dateError = page.locator('[data-testid="report-measure-error-takenOn"]')
    await expect.poll(() => dateError.isVisible()).toBe(true)
    expect(await dateError.textContent()).toContain('a measure taken lies in the past or today, not 2027-01-15')
    expect(await page.getAttribute('[data-testid="report-measure-date"]', 'aria-invalid')).toBe('true')
    expect(await measureIds(page)).toEqual(before)

    // A catalogue measure taken on 2 February, with a note: the section reloads with it and its follow-up.
    await page.fill('[data-testid="report-measure-date"]', '2026-02-02')
    await page.fill('[data-testid="report-measure-note"]', 'Avstängd gata måndag–fredag 7–9')
    await page.click('[data-testid="report-measure-submit"]')
    await expect.poll(() => measureIds(page).then((ids) => ids.length)).toBe(before.length + 1)
    expect(await dateError.isVisible()).toBe(false)
    const listed = ApiMeasures.parse(await apiJson(`/api/v1/sites/${SCHOOL}/measures`)).measures
    const created = listed.find((m) => !before.includes(m.id))
    expect(created?.title).toBe(catalogueMeasure.name.sv)
    const id = created?.id ?? ''
    const card = page.locator(`[data-testid="report-measure-${id}"]`)
    const text = (await card.textContent()) ?? ''
    expect(text).toContain(catalogueMeasure.name.sv)
    expect(text).toContain('Avstängd gata måndag–fredag 7–9')
    expect(await page.textContent('[data-testid="report-measure-message"]')).toContain(catalogueMeasure.name.sv)

    // Its follow-up, 28 days by default, is the API's: NO2 60 → 30 at drop-off shows in the before and after means.
    expect(await card.getAttribute('data-days')).toBe('28')
    const fu28 = ApiFollowUp.parse(await apiJson(`/api/v1/sites/${SCHOOL}/measures/${id}/follow-up?days=28`))
    const no2 = fu28.metrics.find((m) => m.metric === 'no2')
    expect(no2?.before.mean).not.toBeNull()
    expect(no2?.before.mean).not.toBe(no2?.after.mean)
    expect(text).toContain(sv1(no2?.before.mean ?? Number.NaN))
    expect(text).toContain(sv1(no2?.after.mean ?? Number.NaN))

    // A week instead: the page asks for 7 days and shows that follow-up.
    await page.selectOption(`[data-testid="report-measure-window-${id}"]`, '7')
    await expect.poll(() => card.getAttribute('data-days')).toBe('7')
    const fu7 = ApiFollowUp.parse(await apiJson(`/api/v1/sites/${SCHOOL}/measures/${id}/follow-up?days=7`))
    const no2week = fu7.metrics.find((m) => m.metric === 'no2')
    expect(await card.textContent()).toContain(sv1(no2week?.before.mean ?? Number.NaN))
    expect(await page.inputValue(`[data-testid="report-measure-window-${id}"]`)).toBe('7')

    // Print leaves the controls out, the measures in.
    await page.emulateMedia({ media: 'print' })
    expect(await page.isVisible('[data-testid="report-measure-form"]')).toBe(false)
    expect(await page.isVisible(`[data-testid="report-measure-window-${id}"]`)).toBe(false)
    expect(await card.isVisible()).toBe(true)
    await page.emulateMedia({ media: 'screen' })

    // Delete asks first; "Cancel" keeps it, "Yes, delete" removes it from the page and the API.
    await page.click(`[data-testid="report-measure-delete-${id}"]`)
    await page.click(`[data-testid="report-measure-cancel-${id}"]`)
    expect(await measureIds(page)).toContain(id)
    await page.click(`[data-testid="report-measure-delete-${id}"]`)
    expect(await card.textContent()).toContain(catalogueMeasure.name.sv)
    await page.click(`[data-testid="report-measure-confirm-${id}"]`)
    await expect.poll(() => measureIds(page)).toEqual(before)
    const after = ApiMeasures.parse(await apiJson(`/api/v1/sites/${SCHOOL}/measures`)).measures
    expect(after.map((m) => m.id)).not.toContain(id)
    expect(problems.filter((p) => !EXPECTED_REFUSAL.test(p))).toEqual([])
  })

  it('lists the catalogue, and lets staff edit it as JSON: a new name reaches the site report’s suggestion', async () => {
    const { page, problems } = await openPage()
    await logInStaff()
    await open(page, 'report=measures', problems)
    const catalogue = ApiCatalogue.parse(await apiJson('/api/v1/measures'))
    expect(catalogue.revision).toBe(0)
    for (const m of catalogue.measures) {
      expect(await page.textContent(`[data-testid="catalogue-name-${m.id}"]`)).toBe(m.name.sv)
      for (const s of m.suggestedBy) {
        expect(await page.textContent(`[data-testid="catalogue-trigger-${m.id}-${s.pattern}"]`)).toContain(
          s.evidence.sv,
        )
      }
    }
    await page.selectOption('[data-testid="language-switch"]', 'en')
    const first = catalogue.measures[0]
    await expect.poll(() => page.textContent(`[data-testid="catalogue-name-${first?.id}"]`)).toBe(first?.name.en)
    await page.selectOption('[data-testid="language-switch"]', 'sv')

    // The measure the school's report suggests gets a new Swedish name.
    const report = ApiSuggestions.parse(await apiJson(`/api/v1/sites/${SCHOOL}/report?from=${FROM}&to=${TO}`))
    const suggested = report.suggestions[0]
    if (suggested === undefined) throw new Error('the school report suggests nothing')
    const newName = 'Lugnare trafik vid skolan när barnen lämnas (redigerad)'
    await page.click('[data-testid="catalogue-edit"]')
    const json: unknown = JSON.parse(await page.inputValue('[data-testid="catalogue-json"]'))
    const edited = ApiCatalogue.shape.measures.parse(json)
    expect(edited.map((m) => m.id)).toEqual(catalogue.measures.map((m) => m.id))
    const raw = z.array(z.record(z.string(), z.unknown())).parse(json)
    const index = edited.findIndex((m) => m.id === suggested.measureId)
    const target = edited[index]
    if (target === undefined) throw new Error('suggested measure not in the catalogue')
    raw[index] = { ...raw[index], name: { ...target.name, sv: newName } }
    await page.fill('[data-testid="catalogue-json"]', JSON.stringify(raw, null, 2))
    await page.click('[data-testid="catalogue-save"]')
    await expect.poll(() => page.getAttribute('[data-testid="catalogue-notice"]', 'data-kind')).toBe('saved')
    expect(await page.textContent(`[data-testid="catalogue-name-${suggested.measureId}"]`)).toBe(newName)
    expect(await page.getAttribute('[data-testid="catalogue-revision"]', 'data-revision')).toBe('1')
    expect(ApiCatalogue.parse(await apiJson('/api/v1/measures')).revision).toBe(1)

    await open(page, `report=site&site=${SCHOOL}&from=${FROM}&to=${TO}`, problems)
    const card = page.locator(`[data-testid="report-suggestion-${suggested.measureId}-${suggested.pattern}"]`)
    expect(await card.textContent()).toContain(newName)
    expect(problems).toEqual([])
  })

  it('shows a refused text with its path, and a save by someone else in between as a conflict to reload', async () => {
    const { page, problems } = await openPage()
    await logInStaff()
    await open(page, 'report=measures', problems)
    const loaded = ApiCatalogue.parse(await apiJson('/api/v1/measures'))
    await page.click('[data-testid="catalogue-edit"]')
    const raw = z
      .array(z.record(z.string(), z.unknown()))
      .parse(JSON.parse(await page.inputValue('[data-testid="catalogue-json"]')))
    const first = loaded.measures[0]
    if (first === undefined) throw new Error('empty catalogue')

    // A conclusion ("bevisar") is refused: the path in the JSON and the API's message are shown; nothing is saved.
    raw[0] = { ...raw[0], name: { ...first.name, sv: 'Bilfri gata bevisar att luften blir bättre' } }
    await page.fill('[data-testid="catalogue-json"]', JSON.stringify(raw))
    await page.click('[data-testid="catalogue-save"]')
    await expect.poll(() => page.getAttribute('[data-testid="catalogue-notice"]', 'data-kind')).toBe('invalid')
    const items = await page.locator('[data-testid="catalogue-error-item"]').allTextContents()
    expect(items.some((i) => i.startsWith('0.name.sv:') && i.includes('states a conclusion'))).toBe(true)
    expect(ApiCatalogue.parse(await apiJson('/api/v1/measures')).revision).toBe(loaded.revision)
    // Text that is not JSON at all is caught on the page.
    await page.fill('[data-testid="catalogue-json"]', '[{"id": ')
    await page.click('[data-testid="catalogue-save"]')
    await expect.poll(() => page.getAttribute('[data-testid="catalogue-notice"]', 'data-kind')).toBe('invalid-json')

    // Someone else saves meanwhile; this page's save (from the older revision) is refused as a conflict.
    await storage.measures.saveCatalogue(DEFAULT_MEASURES, {
      expectedRevision: loaded.revision,
      by: 'user:someone-else',
      at: NOW,
    })
    raw[0] = { ...raw[0], name: { ...first.name, sv: 'Ett annat namn' } }
    await page.fill('[data-testid="catalogue-json"]', JSON.stringify(raw))
    await page.click('[data-testid="catalogue-save"]')
    await expect.poll(() => page.getAttribute('[data-testid="catalogue-notice"]', 'data-kind')).toBe('conflict')
    const conflict = (await page.textContent('[data-testid="catalogue-conflict"]')) ?? ''
    expect(conflict).toContain(`version ${loaded.revision}`)
    expect(conflict).toContain(`version ${loaded.revision + 1}`)
    // The edit stays in the textarea until the user reloads.
    expect(await page.inputValue('[data-testid="catalogue-json"]')).toContain('Ett annat namn')
    await page.click('[data-testid="catalogue-reload"]')
    await expect
      .poll(() => page.getAttribute('[data-testid="catalogue-revision"]', 'data-revision'))
      .toBe(String(loaded.revision + 1))
    expect(await page.inputValue('[data-testid="catalogue-json"]')).not.toContain('Ett annat namn')
    expect(await page.textContent(`[data-testid="catalogue-name-${first.id}"]`)).toBe(DEFAULT_MEASURES[0]?.name.sv)
    expect(problems.filter((p) => !EXPECTED_REFUSAL.test(p))).toEqual([])
  })
})
