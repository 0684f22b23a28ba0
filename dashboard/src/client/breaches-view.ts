/// <reference lib="dom" />
import { isEaqiPollutant } from '@skolluft/core'
import { type Api, ApiError } from './api.ts'
import {
  actorLabel,
  type Incident,
  type IncidentSortDir,
  type IncidentSortKey,
  incidentFrom,
  OPEN_BREACHES_LIMIT,
  ruleLabel,
  severityKey,
  sortIncidents,
} from './breaches.ts'
import { h, openSiteRows, replaceChildren } from './dom.ts'
import { formatDateTime, formatNumber } from './format.ts'
import type { Translate } from './i18n.ts'
import type { Lang, MessageKey } from './messages.ts'
import { BreachListSchema, parseIncidents } from './schemas.ts'

/**
 * The "Breaches" view (issue 4): every open incident the caller may see, across sites, in a table sortable
 * by start and by severity (a button in those headers, aria-sort on the sorted one). Rows are focusable;
 * a click, Enter or Space opens the site's panel, as a row of the site list does.
 */

export interface BreachesViewDeps {
  readonly api: Api
  readonly t: Translate
  readonly lang: () => Lang
  /** The site's name as the map knows it; null for a site not on the map (then its id is shown). */
  readonly siteName: (siteId: string) => string | null
  readonly me: () => { readonly id: string; readonly name: string } | null
  readonly onOpen: (siteId: string) => void
}

export interface BreachesView {
  readonly element: HTMLElement
  /** Fetches the open incidents (what is shown stays until the answer comes). */
  load(): void
  /** Redraws in the current language (and with the sites' current names). */
  render(): void
  focusRow(siteId: string): boolean
}

type State =
  | { readonly state: 'idle' }
  | { readonly state: 'loading' }
  | { readonly state: 'error'; readonly detail: string }
  | { readonly state: 'ok'; readonly incidents: readonly Incident[] }

interface Column {
  readonly label: MessageKey
  readonly sort: IncidentSortKey | null
  readonly cls: string
}

const COLUMNS: readonly Column[] = [
  { label: 'colSite', sort: null, cls: 'col-site' },
  { label: 'colPollutant', sort: null, cls: 'col-pollutant' },
  { label: 'colRule', sort: null, cls: 'col-rule' },
  { label: 'colSeverity', sort: 'severity', cls: 'col-severity' },
  { label: 'colSince', sort: 'start', cls: 'col-since' },
  { label: 'colPeak', sort: null, cls: 'col-peak num' },
  { label: 'colAcknowledged', sort: null, cls: 'col-ack' },
]

export function createBreachesView(deps: BreachesViewDeps): BreachesView {
  const { t } = deps
  const caption = h('caption')
  const headRow = h('tr')
  const tbody = h('tbody')
  const table = h(
    'table',
    { class: 'site-table breach-table', 'data-testid': 'breach-table' },
    caption,
    h('thead', {}, headRow),
    tbody,
  )
  const status = h('p', { class: 'breaches-status', 'aria-live': 'polite', 'data-testid': 'breaches-status' })
  const element = h(
    'div',
    { class: 'list-scroll', 'data-testid': 'breaches-view', id: 'breaches-view', tabindex: '-1' },
    status,
    table,
  )
  let state: State = { state: 'idle' }
  let shown: readonly Incident[] = []
  let sort: { key: IncidentSortKey; dir: IncidentSortDir } = { key: 'start', dir: 'descending' }
  let seq = 0

  const lang = () => deps.lang()
  const value = (v: number) => formatNumber(lang(), v)
  const time = (ms: number) => formatDateTime(lang(), ms)

  function renderHead(): void {
    headRow.replaceChildren(
      ...COLUMNS.map((col) => {
        const label = t(col.label)
        if (col.sort === null) return h('th', { scope: 'col', class: `${col.cls} plain` }, label)
        const key = col.sort
        const button = h(
          'button',
          { type: 'button', class: 'sort', 'data-testid': `breach-sort-${key}`, title: t('sortBy', { column: label }) },
          label,
        )
        button.addEventListener('click', () => {
          sort = {
            key,
            dir: sort.key === key && sort.dir === 'descending' ? 'ascending' : 'descending',
          }
          renderRows()
          headRow.querySelector<HTMLButtonElement>(`[data-testid="breach-sort-${key}"]`)?.focus()
        })
        return h('th', { scope: 'col', class: col.cls, 'aria-sort': key === sort.key ? sort.dir : null }, button)
      }),
    )
  }

  function row(i: Incident): HTMLTableRowElement {
    const severity = severityKey(i.severity)
    const ack = i.acknowledged
    return h(
      'tr',
      {
        'data-testid': 'breach-row',
        'data-incident-id': i.id,
        'data-site-id': i.siteId,
        'data-severity': i.severity,
        tabindex: '0',
      },
      h('th', { scope: 'row' }, deps.siteName(i.siteId) ?? i.siteId),
      h('td', {}, isEaqiPollutant(i.pollutant) ? t(`metric_${i.pollutant}`) : i.pollutant),
      h('td', {}, ruleLabel(t, i, value), h('br'), h('code', { class: 'rule-id' }, i.ruleId)),
      h(
        'td',
        {},
        h(
          'span',
          { class: `badge severity severity-${severity === null ? 'unknown' : i.severity}` },
          severity === null ? i.severity : t(severity),
        ),
        i.retrospective ? h('span', { class: 'badge badge-retro' }, t('breachRetrospective')) : null,
      ),
      h('td', {}, time(i.start)),
      h(
        'td',
        { class: 'num' },
        t('breachPeakValue', { value: value(i.peak) }),
        h('br'),
        h('span', { class: 'muted' }, time(i.peakAt)),
      ),
      h(
        'td',
        { 'data-testid': 'breach-ack' },
        ack === null ? '–' : ack.by === null ? time(ack.at) : `${actorLabel(ack.by, deps.me())}, ${time(ack.at)}`,
      ),
    )
  }

  function renderRows(): void {
    renderHead()
    if (state.state !== 'ok') {
      shown = []
      tbody.replaceChildren()
      table.hidden = true
      return
    }
    shown = sortIncidents(state.incidents, sort.key, sort.dir)
    caption.textContent = t('breachesCaption', { n: shown.length })
    table.hidden = shown.length === 0
    tbody.replaceChildren(...shown.map(row))
  }

  function render(): void {
    switch (state.state) {
      case 'idle':
        status.textContent = ''
        break
      case 'loading':
        status.textContent = t('breachesLoading')
        break
      case 'error': {
        const retry = h('button', { type: 'button', 'data-testid': 'breaches-retry' }, t('retry'))
        retry.addEventListener('click', () => load())
        replaceChildren(status, t('breachesError', { detail: state.detail }), ' ', retry)
        break
      }
      case 'ok':
        status.textContent = state.incidents.length === 0 ? t('breachesEmpty') : ''
        break
    }
    renderRows()
  }

  function load(): void {
    seq += 1
    const mine = seq
    if (state.state !== 'ok') {
      state = { state: 'loading' }
      render()
    }
    deps.api
      .get(`/api/v1/breaches?state=open&limit=${OPEN_BREACHES_LIMIT}`, BreachListSchema)
      .then((list) => {
        if (mine !== seq) return
        const { incidents, invalid } = parseIncidents(list.incidents)
        if (invalid > 0) console.warn(`skolluft: ${invalid} breach incident(s) left out: unexpected shape`)
        const focusedId = focusedIncident()
        state = { state: 'ok', incidents: incidents.map(incidentFrom) }
        render()
        if (focusedId !== null) {
          tbody.querySelector<HTMLElement>(`tr[data-incident-id="${CSS.escape(focusedId)}"]`)?.focus()
        }
      })
      .catch((error: unknown) => {
        if (mine !== seq) return
        const detail =
          error instanceof ApiError ? (error.status === null ? error.message : String(error.status)) : 'error'
        state = { state: 'error', detail }
        render()
      })
  }

  /** The incident whose row has the focus, so that a refresh does not drop it. */
  function focusedIncident(): string | null {
    const active = document.activeElement
    return active instanceof HTMLTableRowElement && tbody.contains(active) ? (active.dataset.incidentId ?? null) : null
  }

  openSiteRows(tbody, deps.onOpen, (e, row) => {
    const step = { ArrowDown: 1, ArrowUp: -1 }[e.key]
    if (step === undefined) return
    const rows = [...tbody.querySelectorAll<HTMLTableRowElement>('tr[data-incident-id]')]
    const next = rows[rows.indexOf(row) + step]
    if (next !== undefined) {
      e.preventDefault()
      next.focus()
    }
  })

  render()
  return {
    element,
    load,
    render,
    focusRow(siteId) {
      const target = tbody.querySelector<HTMLElement>(`tr[data-site-id="${CSS.escape(siteId)}"]`)
      target?.focus()
      return target !== null
    },
  }
}
