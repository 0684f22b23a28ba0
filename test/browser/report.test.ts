import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type RunningApi, startApi } from '@skolluft/api'
import { HOUR_MS, PROFILES, type SiteInput } from '@skolluft/core'
import { buildDashboard } from '@skolluft/dashboard'
import { silentLogger } from '@skolluft/runtime'
import { openSqliteStorage, type Storage, type StoredReading } from '@skolluft/storage'
import { tempDir } from '@skolluft/testkit'
import type { Browser, BrowserContext, BrowserContextOptions, Page } from 'playwright-core'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { browserAvailable, launchChromium, watchedPage } from '../support/browser.ts'
import { addTestDevice } from '../support/platform.ts'

/**
 * The committee's reports in headless Chromium (issue 7): the real API over real HTTP with the dashboard bundle,
 * a real SQLite file with hourly readings of known shape, the page driven like a person would. Checks the numbers
 * shown against the API's JSON, the charts' black-and-white cues, the language switch, the period picker, the CSV
 * link, "Print" (window.print), print media (no controls) and a PDF from page.pdf().
 *
 * SKOLLUFT_WRITE_DOCS_IMAGES=1 also writes docs/screenshots/report-site.png and report-municipality.png (the first
 * A4 page as printed) and report-chart-bw.png (the hour-of-day chart in grey scale); without it the test leaves the
 * tree alone.
 */

/** The API's clock: long after the period, so every hour of it is final. */
const NOW = Date.parse('2026-11-30T12:00:00Z')
/** Monday 5 January 2026 00:00 UTC+1 (Swedish normal time all period: local hour = UTC+1 hour). */
const START = Date.parse('2026-01-04T23:00:00Z')
/** 7 whole weeks: Monday 5 January – Sunday 22 February 2026. */
const DAYS = 49
const FROM = '2026-01-05'
const TO = '2026-02-22'

const SCHOOL = 'site-a'
const PRESCHOOL = 'site-b'
const BACKGROUND = 'site-bg'
const SITES: SiteInput[] = [
  { id: SCHOOL, name: 'Testskolan A (demo)', kind: 'school', municipality: 'Lund', lat: 55.7, lon: 13.19, demo: true },
  {
    id: PRESCHOOL,
    name: 'Testförskolan B (demo)',
    kind: 'preschool',
    municipality: 'Lund',
    lat: 55.71,
    lon: 13.2,
    demo: true,
  },
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

const isWeekday = (day: number) => day % 7 < 5
const dropOff = (day: number, hour: number) => isWeekday(day) && (hour === 7 || hour === 8)

/**
 * The school: NO2 20 µg/m³, 60 at 07–09 on weekdays (the drop-off pattern, which suggests a measure); PM2.5 8, 12
 * at drop-off; PM10 twice PM2.5 plus 2; PM1 0.7 × PM2.5. Day 10 has no data from 12:00. The preschool: the same
 * levels on even days only (about half the hours: indicative). The background: flat PM2.5 6, NO2 12.
 */
function values(site: string, day: number, hour: number): StoredReading['values'] | null {
  if (site === SCHOOL && day === 10 && hour >= 12) return null
  if (site === PRESCHOOL && day % 2 === 1) return null
  if (site === BACKGROUND) return { pm1: 4, pm25: 6, pm10: 12, no2: 12, temp: 1, rh: 80 }
  const pm25 = dropOff(day, hour) ? 12 : 8
  return { pm1: 0.7 * pm25, pm25, pm10: 2 * pm25 + 2, no2: dropOff(day, hour) ? 60 : 20, temp: 1, rh: 80 }
}

function readings(siteId: string): StoredReading[] {
  const out: StoredReading[] = []
  for (let day = 0; day < DAYS; day++) {
    for (let hour = 0; hour < 24; hour++) {
      const v = values(siteId, day, hour)
      if (v === null) continue
      const ts = START + (day * 24 + hour) * HOUR_MS + 30 * 60_000
      out.push({ deviceId: `dev-${siteId}`, siteId, ts, seq: null, values: v, receivedAt: ts, expectedPerHour: 1 })
    }
  }
  return out
}

/** What the test reads from the API's JSON to compare with the page (the API's own schema is tested in api/). */
const ApiSiteReport = z.object({
  report: z.object({
    metrics: z.array(
      z.object({
        metric: z.string(),
        mean: z.number().nullable(),
        coverage: z.number(),
        sufficientCoverage: z.boolean(),
      }),
    ),
  }),
  suggestions: z.array(
    z.object({
      measureId: z.string(),
      pattern: z.string(),
      metric: z.string(),
      evidence: z.object({ sv: z.string() }),
    }),
  ),
  background: z.object({ site: z.string() }).nullable(),
})
const ApiMunicipalReport = z.object({
  report: z.object({
    ranking: z.object({
      formula: z.object({ sv: z.string(), en: z.string() }),
      ranked: z.array(z.object({ siteId: z.string(), score: z.number() })),
    }),
  }),
})

const DOCS_SCREENSHOTS = fileURLToPath(new URL('../../docs/screenshots/', import.meta.url))
const WRITE_DOCS_IMAGES = process.env.SKOLLUFT_WRITE_DOCS_IMAGES === '1'
const PAGE_TIMEOUT_MS = 15_000
const DESKTOP: BrowserContextOptions = { viewport: { width: 1280, height: 900 } }
/** A4 at 96 CSS px per inch: 210 × 297 mm. */
const A4_PX = { width: 794, height: 1123 }

/** Swedish numbers as the page writes them (format.ts: at most one decimal, decimal comma). */
const sv1 = (value: number) => new Intl.NumberFormat('sv', { maximumFractionDigits: 1 }).format(value)

describe.runIf(browserAvailable())('the committee report in a browser', () => {
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
    dir = await tempDir('skolluft-report-browser-')
    storage = openSqliteStorage({ path: join(dir.path, 'skolluft.db') })
    await storage.registry.upsertSites(SITES)
    for (const site of SITES) await addTestDevice(storage, `dev-${site.id}`, site.id)
    await storage.readings.writeReadings(SITES.flatMap((s) => readings(s.id)))
    await storage.measures.add({
      siteId: SCHOOL,
      measureId: null,
      title: 'Bilfri skolgata vid lämning',
      takenOn: '2026-01-26',
      note: null,
      recordedBy: 'test',
      recordedAt: NOW,
    })
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

  async function openPage(options: BrowserContextOptions = DESKTOP): Promise<{ page: Page; problems: string[] }> {
    context = await browser.newContext(options)
    context.setDefaultTimeout(PAGE_TIMEOUT_MS)
    // "Print" opens the browser's dialog; headless, it is counted instead.
    await context.addInitScript(() => {
      const w = window as unknown as { __printed: number; print: () => void }
      w.__printed = 0
      w.print = () => {
        w.__printed += 1
      }
    })
    return watchedPage(context)
  }

  async function openReport(page: Page, query: string, problems: readonly string[]): Promise<void> {
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

  it('shows a site report whose numbers are the API’s, with coverage beside them, in Swedish', async () => {
    const { page, problems } = await openPage()
    await openReport(page, `report=site&site=${SCHOOL}&from=${FROM}&to=${TO}`, problems)
    const data = ApiSiteReport.parse(await apiJson(`/api/v1/sites/${SCHOOL}/report?from=${FROM}&to=${TO}`))

    expect(await page.getAttribute('html', 'lang')).toBe('sv')
    await expect.poll(() => page.textContent('[data-testid="report-title"]')).toContain('Testskolan A (demo)')
    expect(await page.textContent('[data-testid="report-period"]')).toContain('2026')
    for (const m of data.report.metrics) {
      const mean = page.locator(`[data-testid="report-mean-${m.metric}"]`)
      expect(await mean.getAttribute('data-value'), m.metric).toBe(m.mean === null ? '' : String(m.mean))
      if (m.mean !== null) expect(await mean.textContent(), m.metric).toContain(sv1(m.mean))
      const coverage = page.locator(`[data-testid="report-coverage-${m.metric}"]`)
      expect(await coverage.getAttribute('data-value'), m.metric).toBe(String(m.coverage))
    }
    // Known from the data: the school misses 12 of 49 × 24 hours (coverage 98.98 %, shown "99 %"), and its NO2
    // mean is 20 except 60 in 2 hours of each of the 35 weekdays.
    const hours = DAYS * 24
    const no2 = data.report.metrics.find((m) => m.metric === 'no2')
    expect(no2?.coverage).toBeCloseTo((hours - 12) / hours, 3)
    expect(no2?.sufficientCoverage).toBe(true)
    expect(no2?.mean).toBeCloseTo((20 * (hours - 12 - 70) + 60 * 70) / (hours - 12), 3)
    expect(await page.textContent('[data-testid="report-coverage-no2"]')).toBe(
      new Intl.NumberFormat('sv', { style: 'percent' }).format((hours - 12) / hours),
    )

    // The drop-off pattern is there, shown as a suggestion with its evidence and caveat.
    expect(data.suggestions.length).toBeGreaterThan(0)
    for (const s of data.suggestions) {
      const card = (await page.textContent(`[data-testid="report-suggestion-${s.measureId}-${s.pattern}"]`)) ?? ''
      expect(card).toContain('Förslag:')
      expect(card).toContain('Förbehåll')
      const evidence = page.locator(`[data-testid="report-suggestion-${s.measureId}-${s.pattern}-${s.metric}"]`)
      expect(await evidence.textContent()).toContain(s.evidence.sv)
    }

    // Three profile charts; each line has its own dash pattern and marker shape and a written name.
    for (const kind of ['hourOfDay', 'dayOfWeek', 'season']) {
      const chart = page.locator(`[data-testid="report-chart-${kind}"]`)
      expect(await chart.getAttribute('aria-label'), kind).not.toBeNull()
      const series = await chart.evaluate((svg) =>
        [...svg.querySelectorAll('g[data-series]')].map((g) => ({
          id: g.getAttribute('data-series'),
          dash: g.querySelector('polyline, line')?.getAttribute('stroke-dasharray') ?? null,
          marker: g.querySelector('circle, rect, polygon')?.tagName ?? null,
          label: g.querySelector('text')?.textContent ?? null,
        })),
      )
      expect(series.map((s) => s.id)).toEqual(['pm1', 'pm25', 'pm10', 'no2'])
      expect(new Set(series.map((s) => s.dash)).size, kind).toBe(4)
      expect(
        series.every((s) => s.label !== null && s.label !== ''),
        kind,
      ).toBe(true)
      const texts = await chart.locator('text').allTextContents()
      expect(
        texts.some((t) => t.includes('µg/m³')),
        kind,
      ).toBe(true)
    }

    // The background comparison and the measure taken, with its follow-up and caveats.
    expect(data.background?.site).toBe(BACKGROUND)
    expect(await page.textContent('[data-testid="report-background"]')).toContain('Bakgrund Lund (demo)')
    const measures = (await page.textContent('[data-testid="report-measures"]')) ?? ''
    expect(measures).toContain('Bilfri skolgata vid lämning')
    expect(measures).toContain('Förbehåll')
    // The school has no indoor device: the indoor patterns are not evaluated, and the page says why in Swedish.
    const suggestions = (await page.textContent('[data-testid="report-suggestions"]')) ?? ''
    expect(suggestions).toContain('här fanns ingen inomhusgivare')
    expect(suggestions).not.toContain('no indoor device')

    // CSV: the link is the API's CSV of the same period.
    const csv = await page.getAttribute('[data-testid="report-csv"]', 'href')
    expect(csv).toBe(`/api/v1/sites/${SCHOOL}/report?from=${FROM}&to=${TO}&format=csv`)
    const res = await fetch(`${base}${csv}`)
    expect(res.headers.get('content-type')).toContain('text/csv')
    expect((await res.text()).split('\r\n')[0]).toContain('coverage')

    expect(problems).toEqual([])
  })

  it('switches to English, changes the period with the picker, and keeps the URL in step', async () => {
    const { page, problems } = await openPage()
    await openReport(page, `report=site&site=${SCHOOL}&from=${FROM}&to=${TO}`, problems)
    await page.selectOption('[data-testid="language-switch"]', 'en')
    await expect.poll(() => page.textContent('[data-testid="report-title"]')).toContain('Air quality report')
    expect(await page.textContent('[data-testid="report-print"]')).toBe('Print')
    expect(await page.getAttribute('html', 'lang')).toBe('en')

    // February 2026 as a month: the page asks the API for 1–28 February and says so in the URL.
    expect(await page.inputValue('[data-testid="report-period-kind"]')).toBe('custom')
    await page.selectOption('[data-testid="report-period-kind"]', 'month')
    await page.fill('[data-testid="report-month"]', '2026-02')
    await page.click('[data-testid="report-show"]')
    await page.waitForFunction(
      () => document.body.dataset.reportReady === 'true' && location.search.includes('2026-02-28'),
    )
    expect(new URL(page.url()).searchParams.get('from')).toBe('2026-02-01')
    const data = ApiSiteReport.parse(await apiJson(`/api/v1/sites/${SCHOOL}/report?from=2026-02-01&to=2026-02-28`))
    const pm25 = data.report.metrics.find((m) => m.metric === 'pm25')
    expect(await page.getAttribute('[data-testid="report-mean-pm25"]', 'data-value')).toBe(String(pm25?.mean))

    // Only the Swedish environmental quality standards: the page, the URL and the CSV link name them alone.
    await page.click('[data-testid="report-profiles-summary"]')
    for (const p of PROFILES) {
      if (p.id !== 'se-mkn') await page.uncheck(`[data-testid="report-profile-${p.id}"]`)
    }
    expect(await page.textContent('[data-testid="report-profiles-summary"]')).toBe(`Rules: 1 of ${PROFILES.length}`)
    await page.click('[data-testid="report-show"]')
    await page.waitForFunction(
      () => document.body.dataset.reportReady === 'true' && location.search.includes('profiles=se-mkn'),
    )
    const shownProfiles = await page
      .locator('[data-testid="report-exceedances"] [data-profile]')
      .evaluateAll((els) => els.map((el) => el.getAttribute('data-profile')))
    expect(shownProfiles).toEqual(['se-mkn'])
    expect(await page.getAttribute('[data-testid="report-csv"]', 'href')).toContain('profiles=se-mkn')

    // A reversed custom period is refused on the page, without asking the API.
    await page.selectOption('[data-testid="report-period-kind"]', 'custom')
    await page.fill('[data-testid="report-from"]', '2026-02-10')
    await page.fill('[data-testid="report-to"]', '2026-02-01')
    await page.click('[data-testid="report-show"]')
    await expect.poll(() => page.isVisible('[data-testid="report-period-error"]')).toBe(true)
    expect(problems).toEqual([])
  })

  it('prints: the Print button calls window.print, print media hides the controls, page.pdf() gives A4 pages', async () => {
    const { page, problems } = await openPage()
    await openReport(page, `report=site&site=${SCHOOL}&from=${FROM}&to=${TO}`, problems)
    await page.click('[data-testid="report-print"]')
    expect(await page.evaluate(() => (window as unknown as { __printed: number }).__printed)).toBe(1)

    expect(await page.isVisible('[data-testid="report-toolbar"]')).toBe(true)
    await page.emulateMedia({ media: 'print' })
    expect(await page.isVisible('[data-testid="report-toolbar"]')).toBe(false)
    expect(await page.isVisible('[data-testid="language-switch"]')).toBe(false)
    expect(await page.isVisible('[data-testid="report"]')).toBe(true)
    expect(await page.locator('.map, .leaflet-container').count()).toBe(0)
    // Sections start on a new sheet; table rows do not split.
    const breaks = await page.evaluate(() => ({
      section: getComputedStyle(document.querySelectorAll('.report-section')[1] ?? document.body).breakBefore,
      row: getComputedStyle(document.querySelector('.report-table tbody tr') ?? document.body).breakInside,
    }))
    expect(breaks).toEqual({ section: 'page', row: 'avoid' })

    if (WRITE_DOCS_IMAGES) {
      await mkdir(DOCS_SCREENSHOTS, { recursive: true })
      await page.setViewportSize(A4_PX)
      await page.evaluate(() => document.body.classList.add('report-preview'))
      await page.screenshot({ path: join(DOCS_SCREENSHOTS, 'report-site.png'), clip: { x: 0, y: 0, ...A4_PX } })
      // The hour-of-day chart as a black-and-white printer renders it (issue 7: charts readable in black and white).
      await page.evaluate(() => {
        document.body.style.filter = 'grayscale(1)'
      })
      await page
        .locator('[data-testid="report-profile-hourOfDay"]')
        .screenshot({ path: join(DOCS_SCREENSHOTS, 'report-chart-bw.png') })
      await page.evaluate(() => {
        document.body.style.filter = ''
        document.body.classList.remove('report-preview')
      })
    }

    const pdf = await page.pdf({ format: 'A4', printBackground: true })
    expect(pdf.subarray(0, 5).toString('latin1')).toBe('%PDF-')
    const text = pdf.toString('latin1')
    const pages = [...text.matchAll(/\/Type\s*\/Page(?![s\w])/g)].length
    // Head and means on the first sheet, then one sheet at least per section.
    expect(pages).toBeGreaterThanOrEqual(5)
    // A4: 595 × 842 points.
    expect(text).toMatch(
      /\/MediaBox\s*\[\s*0\s+0\s+595(\.\d+)?\s+841(\.\d+)?|\/MediaBox\s*\[\s*0\s+0\s+595(\.\d+)?\s+842/,
    )
    expect(problems).toEqual([])
  })

  it('opens from the site panel on the map, and shows the municipality report with its ranking formula', async () => {
    const { page, problems } = await openPage()
    await page.goto(`${base}/?site=${SCHOOL}`)
    const link = page.locator('[data-testid="panel-report"]')
    expect(await link.getAttribute('href')).toBe(`/?report=site&site=${SCHOOL}`)
    expect(await page.getAttribute('[data-testid="municipal-report-link"]', 'href')).toBe('/?report=municipality')

    await openReport(page, `report=municipality&from=${FROM}&to=${TO}`, problems)
    const data = ApiMunicipalReport.parse(await apiJson(`/api/v1/reports/municipality?from=${FROM}&to=${TO}`))
    expect(await page.textContent('[data-testid="report-formula"]')).toContain(data.report.ranking.formula.sv)
    const ranked = data.report.ranking.ranked
    expect(ranked.length).toBeGreaterThan(0)
    for (const r of ranked) {
      expect(await page.getAttribute(`[data-testid="report-score-${r.siteId}"]`, 'data-value')).toBe(String(r.score))
    }
    // The background site is reference only: never ranked.
    expect(ranked.map((r) => r.siteId)).not.toContain(BACKGROUND)
    expect(await page.getAttribute('[data-testid="report-csv"]', 'href')).toBe(
      `/api/v1/reports/municipality?from=${FROM}&to=${TO}&format=csv`,
    )
    if (WRITE_DOCS_IMAGES) {
      await page.emulateMedia({ media: 'print' })
      await page.setViewportSize(A4_PX)
      await page.evaluate(() => document.body.classList.add('report-preview'))
      await page.screenshot({
        path: join(DOCS_SCREENSHOTS, 'report-municipality.png'),
        clip: { x: 0, y: 0, ...A4_PX },
      })
    }
    expect(problems).toEqual([])
  })
})
