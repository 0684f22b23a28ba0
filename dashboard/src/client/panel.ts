/// <reference lib="dom" />
import {
  type EaqiPollutant,
  eaqiLevel,
  type GuidelineLine,
  isEaqiPollutant,
  METRIC_INFO,
  METRICS,
  type Metric,
} from '@skolluft/core'
import { type Api, ApiError } from './api.ts'
import { type Chart, renderChart } from './chart.ts'
import { chartData, groupLines, lineStyle, yMax } from './chart-data.ts'
import {
  CHART_RANGES,
  type ChartEvery,
  type ChartRange,
  chartLines,
  lineLabel,
  seriesRequest,
  seriesUrl,
} from './chart-lines.ts'
import { h, replaceChildren, uid } from './dom.ts'
import { formatAge, formatDateTime, formatNumber, formatPercent, formatTick, kindName } from './format.ts'
import type { Translate } from './i18n.ts'
import { bandChip, bandLabel } from './list-view.ts'
import type { Lang } from './messages.ts'
import { INDEX_MAX_AGE_MS, latestFrom, type SiteState } from './model.ts'
import { type BreachAccess, createPanelBreaches } from './panel-breaches.ts'
import { type DeviceData, SeriesSchema, SiteFeatureSchema } from './schemas.ts'

/**
 * The side panel of one site (a bottom sheet on a phone): latest values with their age, the devices
 * with their health when the caller may see them, and charts over 24 h, 7 d, 30 d and a year with
 * guideline lines. Opening it subscribes the site's live readings (app.ts), which refresh the values.
 */

export interface PanelDeps {
  readonly api: Api
  readonly t: Translate
  readonly lang: () => Lang
  /** Server-adjusted now, epoch ms. */
  readonly now: () => number
  readonly loggedIn: () => boolean
  /** Who may do what with breach incidents (acknowledge, comment), and the CSRF token for it. */
  readonly breachAccess: () => BreachAccess
  /** An incident was acknowledged in the panel. */
  readonly onBreachesChanged: () => void
  readonly onClose: () => void
  /** Called when GET /sites/:id brought newer details for the site (devices, latest). */
  readonly onDetails: (site: SiteState) => void
}

export interface Panel {
  readonly element: HTMLElement
  open(site: SiteState, pollutant: EaqiPollutant): void
  /** New live values for the open site. */
  refresh(site: SiteState): void
  close(): void
  currentId(): string | null
  relabel(): void
  focus(): void
}

const HEALTH_KEYS = {
  ok: 'health_ok',
  offline: 'health_offline',
  suspect: 'health_suspect',
  never: 'health_never',
} as const

function isHealthKey(value: string): value is keyof typeof HEALTH_KEYS {
  return value in HEALTH_KEYS
}

export function createPanel(deps: PanelDeps): Panel {
  const { t } = deps
  const titleId = uid('panel-title')
  const title = h('h2', { id: titleId, tabindex: '-1', 'data-testid': 'panel-title' })
  const closeButton = h('button', { type: 'button', class: 'icon-button', 'data-testid': 'panel-close' }, '×')
  const body = h('div', { class: 'panel-body' })
  const element = h(
    'aside',
    { class: 'panel', 'data-testid': 'panel', 'aria-labelledby': titleId, hidden: true },
    h('header', { class: 'panel-head' }, title, closeButton),
    body,
  )
  closeButton.addEventListener('click', () => deps.onClose())
  const breaches = createPanelBreaches({
    api: deps.api,
    t,
    lang: () => deps.lang(),
    now: () => deps.now(),
    access: () => deps.breachAccess(),
    onChanged: () => deps.onBreachesChanged(),
  })

  let site: SiteState | null = null
  let metric: Metric = 'pm25'
  let range: ChartRange = '24h'
  /** Raw readings were refused (401/403) in this session; ask for hourly means straight away. */
  let rawDenied = false
  let chart: Chart | null = null
  let chartSeq = 0
  let detailsSeq = 0
  let latestBox: HTMLElement = h('section')
  let devicesBox: HTMLElement = h('section')
  let chartBox: HTMLElement = h('div')

  function lang(): Lang {
    return deps.lang()
  }

  function metricLabel(m: Metric): string {
    return t(`metric_${m}`)
  }

  function renderLatest(): void {
    if (site === null) return
    const latest = site.latest
    const heading = h('h3', {}, t('panelLatest'))
    if (latest === null || Object.keys(latest.values).length === 0) {
      replaceChildren(latestBox, heading, h('p', {}, t('panelNoData')))
      return
    }
    const now = deps.now()
    const ageText = (time: number) => {
      const stale = now - time > INDEX_MAX_AGE_MS
      return `${formatAge(lang(), now - time)}${stale ? ` (${t('stale')})` : ''}`
    }
    // Usually every value comes from one message: one age for all, and a row of its own only for a
    // value measured at another time (a metric that stopped reporting keeps its older value).
    const rows = METRICS.flatMap((m) => {
      const value = latest.values[m]
      if (value === undefined) return []
      const time = latest.times[m] ?? latest.ts
      const stale = now - time > INDEX_MAX_AGE_MS
      const band = isEaqiPollutant(m) && !stale ? eaqiLevel(m, value) : null
      return [
        h(
          'tr',
          { 'data-metric': m },
          h('th', { scope: 'row' }, metricLabel(m)),
          h(
            'td',
            { class: 'num value', 'data-testid': `panel-value-${m}` },
            `${formatNumber(lang(), value)} ${METRIC_INFO[m].unit}`,
          ),
          h('td', {}, isEaqiPollutant(m) && !stale ? bandChip(band, bandLabel(t, band)) : null),
          h(
            'td',
            { class: stale ? 'age stale' : 'age', title: formatDateTime(lang(), time) },
            time === latest.ts ? '' : ageText(time),
          ),
        ),
      ]
    })
    const staleAll = now - latest.ts > INDEX_MAX_AGE_MS
    replaceChildren(
      latestBox,
      heading,
      h(
        'p',
        {
          class: staleAll ? 'latest-age stale' : 'latest-age',
          'data-testid': 'panel-age',
          title: formatDateTime(lang(), latest.ts),
        },
        t('latestAllAt', { age: ageText(latest.ts) }),
      ),
      h('table', { class: 'latest' }, h('tbody', {}, ...rows)),
    )
  }

  function deviceItem(d: DeviceData): HTMLLIElement {
    const health = d.health ?? ''
    const now = deps.now()
    const lastSeen = d.last_seen === null || d.last_seen === undefined ? Number.NaN : Date.parse(d.last_seen)
    const placement = d.indoor === undefined ? null : d.indoor ? t('indoor') : t('outdoor')
    const fact = (label: string, value: Node | string) =>
      h('span', { class: 'fact' }, h('span', { class: 'fact-label' }, `${label}: `), value)
    return h(
      'li',
      { 'data-device-id': d.id, 'data-health': health },
      h(
        'div',
        {},
        h('strong', { class: 'device-id' }, d.id),
        ' ',
        h('span', { class: 'muted' }, [d.model, placement].filter((x) => x !== undefined && x !== null).join(' · ')),
      ),
      h(
        'div',
        { class: 'facts' },
        fact(
          t('devHealth'),
          h('span', { class: `health health-${health}` }, isHealthKey(health) ? t(HEALTH_KEYS[health]) : health || '–'),
        ),
        fact(t('devLastSeen'), Number.isNaN(lastSeen) ? t('never') : formatAge(lang(), now - lastSeen)),
        fact(
          t('devCoverage'),
          d.coverage_24h === null || d.coverage_24h === undefined ? '–' : formatPercent(lang(), d.coverage_24h),
        ),
      ),
    )
  }

  function renderDevices(): void {
    if (site === null || site.devices === null) {
      devicesBox.hidden = true
      devicesBox.replaceChildren()
      return
    }
    devicesBox.hidden = false
    replaceChildren(
      devicesBox,
      h('h3', {}, t('panelDevices')),
      h('ul', { class: 'devices' }, ...site.devices.map(deviceItem)),
    )
  }

  function renderChartControls(): HTMLElement {
    const select = h('select', { 'data-testid': 'panel-metric', id: uid('metric') })
    for (const m of METRICS) {
      select.append(h('option', { value: m, selected: m === metric }, metricLabel(m)))
    }
    select.addEventListener('change', () => {
      const value = select.value
      metric = METRICS.find((m) => m === value) ?? metric
      void loadChart()
    })
    const buttons = h('div', { class: 'segmented', role: 'group', 'aria-label': t('range') })
    for (const r of CHART_RANGES) {
      const button = h(
        'button',
        { type: 'button', 'aria-pressed': r === range ? 'true' : 'false', 'data-testid': `panel-range-${r}` },
        t(`range_${r}`),
      )
      button.addEventListener('click', () => {
        range = r
        for (const b of buttons.querySelectorAll('button')) b.setAttribute('aria-pressed', String(b === button))
        void loadChart()
      })
      buttons.append(button)
    }
    return h('div', { class: 'chart-controls' }, h('label', { for: select.id }, t('metric'), ' ', select), buttons)
  }

  function renderChartSection(): HTMLElement {
    chartBox = h('div', { class: 'chart', 'data-testid': 'panel-chart' })
    return h(
      'section',
      {},
      h('h3', {}, t('panelCharts')),
      renderChartControls(),
      h('p', { class: 'chart-status', 'data-testid': 'panel-chart-status', 'aria-live': 'polite' }),
      chartBox,
      h('ul', { class: 'chart-lines', 'data-testid': 'panel-chart-lines' }),
    )
  }

  function chartStatus(text: string): void {
    const status = element.querySelector('.chart-status')
    if (status !== null) status.textContent = text
  }

  async function fetchSeries(siteId: string, every: ChartEvery) {
    const request = { ...seriesRequest(range, deps.now(), every === 'raw'), every }
    return deps.api.get(seriesUrl(siteId, metric, request), SeriesSchema)
  }

  async function loadChart(): Promise<void> {
    if (site === null) return
    const siteId = site.id
    chartSeq += 1
    const seq = chartSeq
    chart?.destroy()
    chart = null
    chartBox.replaceChildren()
    const lineList = element.querySelector('.chart-lines')
    lineList?.replaceChildren()
    chartStatus(t('chartLoading'))
    const wantRaw = deps.loggedIn() && !rawDenied
    let every = seriesRequest(range, deps.now(), wantRaw).every
    let note = ''
    try {
      let series: Awaited<ReturnType<typeof fetchSeries>>
      try {
        series = await fetchSeries(siteId, every)
      } catch (error) {
        // Raw readings need a role (401/403), and may exceed the point cap (400): fall back to hourly means.
        const refused = error instanceof ApiError && (error.status === 401 || error.status === 403)
        const tooLarge = error instanceof ApiError && error.status === 400
        if (every !== 'raw' || !(refused || tooLarge)) throw error
        if (refused) {
          rawDenied = true
          note = t('chartRawDenied')
        }
        every = '1h'
        series = await fetchSeries(siteId, every)
      }
      if (seq !== chartSeq) return
      const data = chartData(series, t('chartMean'), (id) => t('chartDevice', { id }))
      const lines = chartLines(metric, every, range)
      const hasData = data.series.some((s) => s.values.some((v) => v !== null))
      chartStatus([t(`every_${every}`), hasData ? '' : t('chartEmpty'), note].filter((s) => s !== '').join(' · '))
      if (!hasData) return
      const label = (line: GuidelineLine) => lineLabel(t, line)
      chart = renderChart(chartBox, data, lines, {
        unit: METRIC_INFO[metric].unit,
        timeLabel: t('chartTime'),
        lineLabel: label,
        tick: (ms, span) => formatTick(lang(), ms, span),
        time: (ms) => formatDateTime(lang(), ms),
      })
      const top = yMax(data, lines)
      for (const g of groupLines(lines, label)) {
        const style = lineStyle(g.line)
        const swatch = h('span', { class: `line-swatch line-${g.line.source}`, 'aria-hidden': 'true' })
        swatch.style.borderTopColor = style.colour
        const value = formatNumber(lang(), g.value)
        lineList?.append(
          h(
            'li',
            {},
            swatch,
            g.value > top
              ? t('chartLineOffScale', { label: g.label, value })
              : t('chartLine', { label: g.label, value }),
          ),
        )
      }
    } catch (error) {
      if (seq !== chartSeq) return
      const detail = error instanceof ApiError ? (error.status === null ? error.message : `${error.status}`) : 'error'
      chartStatus(t('chartError', { detail }))
    }
  }

  async function loadDetails(current: SiteState): Promise<void> {
    detailsSeq += 1
    const seq = detailsSeq
    try {
      const feature = await deps.api.get(`/api/v1/sites/${encodeURIComponent(current.id)}`, SiteFeatureSchema)
      if (seq !== detailsSeq || site?.id !== current.id) return
      current.devices = feature.properties.devices ?? null
      const latest = latestFrom(feature.properties.latest)
      if (latest !== null && (current.latest === null || latest.ts >= current.latest.ts)) current.latest = latest
      if (feature.properties.health) {
        const hh = feature.properties.health
        current.health = {
          devices: hh.devices,
          offline: hh.offline,
          suspect: hh.suspect,
          lastSeen: hh.last_seen ? Date.parse(hh.last_seen) : null,
        }
      }
      renderLatest()
      renderDevices()
      deps.onDetails(current)
    } catch {
      // The panel already shows what the map knows; details are a bonus.
    }
  }

  function render(): void {
    if (site === null) return
    title.textContent = site.name
    closeButton.setAttribute('aria-label', t('panelClose'))
    closeButton.title = t('panelClose')
    latestBox = h('section', { 'data-testid': 'panel-latest' })
    devicesBox = h('section', { 'data-testid': 'panel-devices', hidden: true })
    const kind = kindName(t, site.kind)
    replaceChildren(
      body,
      h('p', { class: 'panel-meta' }, [kind, site.locality].filter((s) => s !== null && s !== '').join(' · ')),
      site.address === null ? null : h('p', { class: 'panel-meta' }, `${t('panelAddress')}: ${site.address}`),
      site.demo
        ? h(
            'p',
            { class: 'demo-note', 'data-testid': 'panel-demo' },
            h('span', { class: 'badge badge-demo' }, t('demo')),
            ' ',
            t('demoSiteNote'),
          )
        : null,
      h(
        'p',
        { class: 'panel-report' },
        h(
          'a',
          { href: `/?report=site&site=${encodeURIComponent(site.id)}`, 'data-testid': 'panel-report' },
          t('panelReport'),
        ),
      ),
      latestBox,
      breaches.element,
      devicesBox,
      renderChartSection(),
    )
    renderLatest()
    renderDevices()
    breaches.render()
  }

  return {
    element,
    open(next, pollutant) {
      const same = site?.id === next.id
      site = next
      if (!same) {
        metric = pollutant
        range = '24h'
      }
      element.hidden = false
      if (!same) element.scrollTop = 0
      breaches.load(next.id, next.openBreaches)
      render()
      void loadChart()
      void loadDetails(next)
    },
    refresh(next) {
      if (site === null || next.id !== site.id) return
      renderLatest()
      breaches.sync(next.id, next.openBreaches)
    },
    close() {
      site = null
      breaches.clear()
      chartSeq += 1
      detailsSeq += 1
      chart?.destroy()
      chart = null
      element.hidden = true
      body.replaceChildren()
    },
    currentId: () => site?.id ?? null,
    relabel() {
      if (site === null) return
      render()
      void loadChart()
    },
    focus() {
      title.focus()
    },
  }
}
