/// <reference lib="dom" />
import { type Api, ApiError } from './api.ts'
import { h, replaceChildren, uid } from './dom.ts'
import type { I18n } from './i18n.ts'
import { CATALOGUE_URL, startCataloguePage } from './report-catalogue.ts'
import { dateText } from './report-format.ts'
import { mayWriteMeasures } from './report-measure-data.ts'
import { createMeasuresPanel, type MeasuresPanel } from './report-measures.ts'
import { renderMunicipalReport } from './report-municipal.ts'
import {
  checkPeriod,
  defaultPeriod,
  monthPeriod,
  PERIOD_KINDS,
  type Period,
  type PeriodKind,
  periodKindOf,
  SCHOOL_TERM_DATES,
  TERMS,
  termOf,
  termPeriod,
  todayOf,
  yearPeriod,
} from './report-period.ts'
import { REPORT_PROFILES } from './report-profiles.ts'
import type { PeriodReportRequest, ReportRequest } from './report-request.ts'
import { MunicipalReportSchema, SiteHeadingSchema, SiteReportSchema } from './report-schemas.ts'
import { renderSiteReport } from './report-site.ts'
import { SessionSchema } from './schemas.ts'
import type { Texts } from './texts.ts'

/**
 * The report page (issue 7): `/?report=site&site=<id>[&from=YYYY-MM-DD&to=YYYY-MM-DD]` for one site and
 * `/?report=municipality[&from&to]` for the municipality. A page of its own (no map), so it prints as a document:
 * a period picker (month, school term, calendar year, custom), "Print" (the browser's print dialog; styles.css has
 * the A4 layout) and a CSV download, then the report. The URL always names the period shown, so a link or a
 * bookmark opens the same report.
 */

/** The threshold profiles a report evaluates: null = all (the API's default), else ids in PROFILES order. */
export type ProfileChoice = readonly string[] | null

export const PROFILE_IDS: readonly string[] = REPORT_PROFILES.map((p) => p.id)

/** `profiles=a,b` of a page URL: known ids only, in PROFILES order; null when absent, empty or naming all. */
export function profileChoiceOf(search: string): ProfileChoice {
  const raw = new URLSearchParams(search).get('profiles')
  if (raw === null) return null
  const ids = new Set(raw.split(',').map((id) => id.trim()))
  const chosen = PROFILE_IDS.filter((id) => ids.has(id))
  return chosen.length === 0 || chosen.length === PROFILE_IDS.length ? null : chosen
}

export function reportUrl(request: PeriodReportRequest, period: Period, profiles: ProfileChoice = null): string {
  const params = new URLSearchParams({ report: request.kind })
  if (request.kind === 'site') params.set('site', request.site)
  params.set('from', period.from)
  params.set('to', period.to)
  if (profiles !== null) params.set('profiles', profiles.join(','))
  return `/?${params.toString().replaceAll('%2C', ',')}`
}

export function reportApiPath(
  request: PeriodReportRequest,
  period: Period,
  csv: boolean,
  profiles: ProfileChoice = null,
): string {
  const query = `from=${period.from}&to=${period.to}${profiles === null ? '' : `&profiles=${profiles.join(',')}`}${csv ? '&format=csv' : ''}`
  return request.kind === 'site'
    ? `/api/v1/sites/${encodeURIComponent(request.site)}/report?${query}`
    : `/api/v1/reports/municipality?${query}`
}

export interface ReportPageDeps {
  readonly root: HTMLElement
  readonly api: Api
  readonly i18n: I18n
  readonly texts: Texts
  readonly request: ReportRequest
  /** The app's brand block and language switch, shared with the map page. */
  readonly brand: HTMLElement
  readonly languageSwitch: HTMLElement
  /** Epoch ms. */
  readonly now: () => number
}

type Loaded =
  | { readonly kind: 'site'; readonly render: () => HTMLElement }
  | { readonly kind: 'municipality'; readonly render: () => HTMLElement }

export function startReportPage(deps: ReportPageDeps): void {
  const { request } = deps
  if (request.kind === 'measures') startCataloguePage(deps)
  else startPeriodReport(deps, request)
}

function startPeriodReport(deps: ReportPageDeps, request: PeriodReportRequest): void {
  const { i18n, texts, api } = deps
  const { t } = i18n
  const today = todayOf(deps.now())
  let period: Period = request.period ?? defaultPeriod(today)
  let profiles: ProfileChoice = profileChoiceOf(window.location.search)
  let loaded: Loaded | null = null
  let seq = 0

  // ---- period picker -------------------------------------------------------------------------------------------
  const kindId = uid('period-kind')
  const kindSelect = h('select', { id: kindId, 'data-testid': 'report-period-kind' })
  for (const kind of PERIOD_KINDS) {
    kindSelect.append(texts.bind(h('option', { value: kind }), () => t(`reportPeriod_${kind}`)))
  }
  const monthInput = h('input', { type: 'month', 'data-testid': 'report-month', required: true })
  const termSelect = h('select', { 'data-testid': 'report-term' })
  for (const term of TERMS) {
    termSelect.append(
      texts.bind(h('option', { value: term }), () =>
        t(`reportTerm_${term}`, {
          from: SCHOOL_TERM_DATES[term].from,
          to: SCHOOL_TERM_DATES[term].to,
        }),
      ),
    )
  }
  const yearInput = h('input', { type: 'number', min: 2000, max: 2100, step: 1, 'data-testid': 'report-year' })
  const fromInput = h('input', { type: 'date', 'data-testid': 'report-from' })
  const toInput = h('input', { type: 'date', 'data-testid': 'report-to' })
  const field = (key: Parameters<typeof t>[0], input: HTMLElement, testId: string) => {
    const id = uid('report-field')
    input.id = id
    return h(
      'div',
      { class: 'field', 'data-testid': testId },
      texts.bind(h('label', { for: id }), () => t(key)),
      input,
    )
  }
  const monthField = field('reportMonth', monthInput, 'report-field-month')
  const termField = h(
    'div',
    { class: 'report-term-fields' },
    field('reportTerm', termSelect, 'report-field-term'),
    texts.bind(h('p', { class: 'report-small' }), () => t('reportTermNote')),
  )
  const yearField = field('reportYear', yearInput, 'report-field-year')
  const customFields = h(
    'div',
    { class: 'report-custom-fields' },
    field('reportFrom', fromInput, 'report-field-from'),
    field('reportTo', toInput, 'report-field-to'),
  )
  // Threshold profiles: a disclosure of checkboxes (eleven would crowd the toolbar), all checked by default.
  const profileBoxes = REPORT_PROFILES.map((p) => ({
    id: p.id,
    box: h('input', { type: 'checkbox', value: p.id, 'data-testid': `report-profile-${p.id}` }),
    name: p.name,
  }))
  const profileSummary = h('summary', { 'data-testid': 'report-profiles-summary' })
  const profilesField = h(
    'details',
    { class: 'report-profiles' },
    profileSummary,
    h(
      'div',
      { class: 'report-profile-list' },
      ...profileBoxes.map((p) => h('label', { class: 'check' }, p.box, h('span', {}, p.name))),
    ),
  )
  function chosenProfiles(): ProfileChoice | 'none' {
    const chosen = profileBoxes.filter((p) => p.box.checked).map((p) => p.id)
    if (chosen.length === 0) return 'none'
    return chosen.length === PROFILE_IDS.length ? null : chosen
  }
  function summarizeProfiles(): void {
    const n = profileBoxes.filter((p) => p.box.checked).length
    profileSummary.textContent = t('reportProfilesChosen', { n, of: profileBoxes.length })
  }
  for (const p of profileBoxes) p.box.addEventListener('change', () => summarizeProfiles())
  const showButton = texts.bind(h('button', { type: 'submit', class: 'primary', 'data-testid': 'report-show' }), () =>
    t('reportShow'),
  )
  const pickerError = h('p', {
    class: 'report-error',
    role: 'alert',
    'data-testid': 'report-period-error',
    hidden: true,
  })
  const form = h(
    'form',
    { class: 'report-picker', 'data-testid': 'report-picker', novalidate: true },
    h(
      'div',
      { class: 'field' },
      texts.bind(h('label', { for: kindId }), () => t('reportPeriodKind')),
      kindSelect,
    ),
    monthField,
    termField,
    yearField,
    customFields,
    profilesField,
    showButton,
    pickerError,
  )

  function setInputs(p: Period): void {
    const kind = periodKindOf(p, today)
    kindSelect.value = kind
    monthInput.value = p.from.slice(0, 7)
    const term = termOf(p.from)
    termSelect.value = term.term
    yearInput.value = String(term.year)
    fromInput.value = p.from
    toInput.value = p.to
    for (const box of profileBoxes) box.box.checked = profiles === null || profiles.includes(box.id)
    summarizeProfiles()
    showFields()
  }

  function showFields(): void {
    const kind = kindSelect.value
    monthField.hidden = kind !== 'month'
    termField.hidden = kind !== 'term'
    yearField.hidden = kind !== 'year' && kind !== 'term'
    customFields.hidden = kind !== 'custom'
  }

  function chosenPeriod(): Period | null {
    const kind = PERIOD_KINDS.find((k) => k === kindSelect.value) ?? 'month'
    const year = Number(yearInput.value)
    const validYear = Number.isInteger(year) && year >= 2000 && year <= 2100
    const choose: Record<PeriodKind, () => Period | null> = {
      month: () => monthPeriod(monthInput.value, today),
      term: () => {
        const term = TERMS.find((x) => x === termSelect.value)
        return term === undefined || !validYear ? null : termPeriod(term, year, today)
      },
      year: () => (validYear ? yearPeriod(year, today) : null),
      custom: () => ({ from: fromInput.value, to: toInput.value }),
    }
    return choose[kind]()
  }

  kindSelect.addEventListener('change', () => showFields())
  form.addEventListener('submit', (e) => {
    e.preventDefault()
    const next = chosenPeriod()
    const problem = next === null ? 'invalid' : checkPeriod(next)
    const nextProfiles = chosenProfiles()
    if (next === null || problem !== null || nextProfiles === 'none') {
      pickerError.hidden = false
      pickerError.textContent =
        nextProfiles === 'none' && problem === null
          ? t('reportNoProfiles')
          : t(`reportPeriodProblem_${problem ?? 'invalid'}`)
      return
    }
    pickerError.hidden = true
    period = next
    profiles = nextProfiles
    history.replaceState(null, '', reportUrl(request, period, profiles))
    void load()
  })

  // ---- actions -------------------------------------------------------------------------------------------------
  const printButton = texts.bind(h('button', { type: 'button', 'data-testid': 'report-print' }), () => t('reportPrint'))
  printButton.addEventListener('click', () => window.print())
  const csvLink = texts.bind(h('a', { class: 'button-link', 'data-testid': 'report-csv', download: '' }), () =>
    t('reportCsv'),
  )
  const backLink = texts.bind(h('a', { href: '/', class: 'button-link', 'data-testid': 'report-back' }), () =>
    t('reportBack'),
  )
  const otherLink =
    request.kind === 'site'
      ? texts.bind(h('a', { class: 'button-link', 'data-testid': 'report-municipality-link' }), () =>
          t('reportMunicipalLink'),
        )
      : null
  const catalogueLink = texts.bind(
    h('a', { href: CATALOGUE_URL, class: 'button-link', 'data-testid': 'report-catalogue-link' }),
    () => t('catalogueLink'),
  )
  // Who is logged in decides whether the measures section offers its form (report-measures.ts).
  const session = api.get('/api/v1/auth/session', SessionSchema).catch((error: unknown) => {
    if (!(error instanceof ApiError)) throw error
    return null
  })
  let measuresPanel: MeasuresPanel | null = null

  const status = h('p', { class: 'report-status', 'data-testid': 'report-status', 'aria-live': 'polite' })
  const body = h('div', { class: 'report-body', 'data-testid': 'report-body' })

  document.body.classList.add('report-page')
  deps.root.replaceChildren(
    h(
      'header',
      { class: 'topbar report-controls' },
      deps.brand,
      h('div', { class: 'top-controls' }, backLink, otherLink, catalogueLink, deps.languageSwitch),
    ),
    h(
      'div',
      { class: 'report-toolbar report-controls', 'data-testid': 'report-toolbar' },
      form,
      h('div', { class: 'report-actions' }, printButton, csvLink),
    ),
    h('main', { class: 'report-main', id: 'main' }, status, body),
  )

  function setLinks(): void {
    csvLink.setAttribute('href', reportApiPath(request, period, true, profiles))
    if (otherLink !== null) {
      otherLink.setAttribute('href', reportUrl({ kind: 'municipality', period }, period, profiles))
    }
  }

  function render(): void {
    if (loaded === null) return
    replaceChildren(body, loaded.render())
    document.title = `${t('reportDocTitle', { from: dateText(i18n.lang(), period.from), to: dateText(i18n.lang(), period.to) })} · Skolluft`
  }

  async function loadMeasures(siteId: string): Promise<MeasuresPanel | null> {
    if (measuresPanel === null) {
      const current = await session
      measuresPanel = createMeasuresPanel({
        api,
        i18n,
        texts,
        siteId,
        writer: current !== null && mayWriteMeasures(current.user?.role) ? { csrf: current.csrfToken } : null,
        today,
      })
    }
    return (await measuresPanel.load()) ? measuresPanel : null
  }

  async function load(): Promise<void> {
    seq += 1
    const mine = seq
    const shown = period
    setLinks()
    document.body.dataset.reportReady = 'false'
    status.textContent = t('reportLoading')
    status.className = 'report-status'
    try {
      if (request.kind === 'site') {
        const [site, data, measures] = await Promise.all([
          api.get(`/api/v1/sites/${encodeURIComponent(request.site)}`, SiteHeadingSchema).catch((error: unknown) => {
            if (error instanceof ApiError && error.status !== 404) return null
            throw error
          }),
          api.get(reportApiPath(request, shown, false, profiles), SiteReportSchema),
          loadMeasures(request.site),
        ])
        if (mine !== seq) return
        loaded = {
          kind: 'site',
          render: () =>
            renderSiteReport(
              { t, lang: i18n.lang() },
              { period: shown, site, data, measures: null, measuresSection: measures?.element() ?? null },
            ),
        }
      } else {
        const data = await api.get(reportApiPath(request, shown, false, profiles), MunicipalReportSchema)
        if (mine !== seq) return
        loaded = { kind: 'municipality', render: () => renderMunicipalReport({ t, lang: i18n.lang() }, shown, data) }
      }
      status.textContent = ''
      render()
      document.body.dataset.reportReady = 'true'
    } catch (error) {
      if (mine !== seq) return
      loaded = null
      body.replaceChildren()
      status.className = 'report-status report-error'
      status.textContent = errorText(error)
      document.body.dataset.reportReady = 'error'
    }
  }

  function errorText(error: unknown): string {
    if (!(error instanceof ApiError)) return t('reportLoadError', { detail: String(error) })
    if (error.status === 401 || error.status === 403) return t('reportDenied')
    if (error.status === 404 && request.kind === 'municipality') return t('reportMunicipalMissing')
    if (error.status === 404) return t('reportSiteMissing')
    return t('reportLoadError', { detail: error.status === null ? error.message : `${error.status}: ${error.message}` })
  }

  i18n.onChange(() => {
    summarizeProfiles()
    render()
    if (!pickerError.hidden) pickerError.hidden = true
  })

  setInputs(period)
  history.replaceState(null, '', reportUrl(request, period, profiles))
  void load()
}
