/// <reference lib="dom" />
import { type Api, ApiError } from './api.ts'
import { h, replaceChildren, uid } from './dom.ts'
import { formatDateTime, formatNumber } from './format.ts'
import type { Translate } from './i18n.ts'
import type { Lang, MessageKey } from './messages.ts'
import {
  type AttemptData,
  DeliveryAttemptsSchema,
  type DeliveryData,
  DeliveryListSchema,
  parseDeliveries,
} from './schemas.ts'
import {
  channelKey,
  DELIVERIES_LIMIT,
  DELIVERIES_PATH,
  isOutboxStatus,
  OUTBOX_STATUSES,
  type OutboxStatus,
  statusKey,
} from './subscriptions.ts'

/**
 * The "Deliveries" view for staff and admins (issue 4): the alert outbox, newest first, with time, channel,
 * recipient, subject, status, attempts and the last error, filtered by status and paged with "show older". A
 * button in each row (aria-expanded) opens a row beneath it with that delivery's attempts, fetched when opened.
 * The recipient is as the API shows it: an e-mail address in full, a webhook as its origin only.
 */

export interface DeliveriesViewDeps {
  readonly api: Api
  readonly t: Translate
  readonly lang: () => Lang
}

export interface DeliveriesView {
  readonly element: HTMLElement
  /** Fetches the first page for the current filter (what is shown stays until the answer comes). */
  load(): void
  /** Redraws in the current language. */
  render(): void
  /** Forgets what was fetched (log-out: the addresses are personal data). */
  clear(): void
}

type State =
  | { readonly state: 'idle' }
  | { readonly state: 'loading' }
  | { readonly state: 'error'; readonly detail: string }
  | { readonly state: 'ok'; readonly rows: readonly DeliveryData[]; readonly more: boolean }

type Attempts =
  | { readonly state: 'loading' }
  | { readonly state: 'error'; readonly detail: string }
  | { readonly state: 'ok'; readonly attempts: readonly AttemptData[] }

interface Column {
  readonly label: MessageKey
  readonly cls: string
}

const COLUMNS: readonly Column[] = [
  { label: 'colTime', cls: 'col-time' },
  { label: 'colChannel', cls: 'col-channel' },
  { label: 'colRecipient', cls: 'col-recipient' },
  { label: 'colSubject', cls: 'col-subject' },
  { label: 'colStatus', cls: 'col-status' },
  { label: 'colAttempts', cls: 'col-attempts num' },
  { label: 'colLastError', cls: 'col-error' },
]

/** "e-post" → "E-post": the channel names are written to sit inside a sentence. */
function capitalized(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1)
}

function detailOf(error: unknown): string {
  if (error instanceof ApiError) return error.status === null ? error.message : String(error.status)
  return 'error'
}

/** The URL of one page: newest first, below `before` (a row id) when paging. */
export function deliveriesUrl(status: OutboxStatus | null, before: number | null): string {
  const params = new URLSearchParams({ limit: String(DELIVERIES_LIMIT) })
  if (status !== null) params.set('status', status)
  if (before !== null) params.set('before', String(before))
  return `${DELIVERIES_PATH}?${params.toString()}`
}

export function createDeliveriesView(deps: DeliveriesViewDeps): DeliveriesView {
  const { t } = deps
  const filterId = uid('deliveries-filter')
  const filter = h('select', { id: filterId, 'data-testid': 'deliveries-filter' })
  const filterLabel = h('label', { for: filterId })
  const refresh = h('button', { type: 'button', 'data-testid': 'deliveries-refresh' })
  const heading = h('h2', { class: 'visually-hidden' })
  const status = h('p', { class: 'breaches-status', 'aria-live': 'polite', 'data-testid': 'deliveries-status' })
  const caption = h('caption')
  const headRow = h('tr')
  const tbody = h('tbody')
  const table = h(
    'table',
    { class: 'site-table delivery-table', 'data-testid': 'delivery-table' },
    caption,
    h('thead', {}, headRow),
    tbody,
  )
  const more = h('button', { type: 'button', class: 'more-button', 'data-testid': 'deliveries-more', hidden: true })
  const element = h(
    'div',
    { class: 'list-scroll deliveries-view', 'data-testid': 'deliveries-view', id: 'deliveries-view', tabindex: '-1' },
    heading,
    h('div', { class: 'deliveries-toolbar' }, h('div', { class: 'field inline' }, filterLabel, filter), refresh),
    status,
    table,
    more,
  )

  let state: State = { state: 'idle' }
  let selected: OutboxStatus | null = null
  let seq = 0
  let loadingMore = false
  const expanded = new Set<number>()
  const attempts = new Map<number, Attempts>()
  let attemptSeq = 0
  const attemptSeqs = new Map<number, number>()

  const lang = () => deps.lang()
  const time = (iso: string) => formatDateTime(lang(), Date.parse(iso))

  function renderControls(): void {
    heading.textContent = t('viewDeliveries')
    filterLabel.textContent = t('deliveriesFilter')
    refresh.textContent = t('deliveriesRefresh')
    more.textContent = t('deliveriesMore')
    filter.replaceChildren(
      h('option', { value: '', selected: selected === null }, t('deliveriesFilterAll')),
      ...OUTBOX_STATUSES.map((s) => h('option', { value: s, selected: s === selected }, t(`outbox_${s}`))),
    )
    headRow.replaceChildren(
      ...COLUMNS.map((col) => h('th', { scope: 'col', class: `${col.cls} plain` }, t(col.label))),
      h('th', { scope: 'col', class: 'col-toggle plain' }, h('span', { class: 'visually-hidden' }, t('colAttempts'))),
    )
  }

  function attemptsContent(id: number): HTMLElement {
    const a = attempts.get(id) ?? { state: 'loading' }
    if (a.state === 'loading') return h('p', { class: 'muted' }, t('attemptsLoading'))
    if (a.state === 'error') {
      const retry = h('button', { type: 'button', 'data-testid': 'attempts-retry' }, t('retry'))
      retry.addEventListener('click', () => fetchAttempts(id))
      return h('p', { class: 'form-error' }, t('attemptsError', { detail: a.detail }), ' ', retry)
    }
    if (a.attempts.length === 0) return h('p', { class: 'muted', 'data-testid': 'attempts-none' }, t('attemptsNone'))
    return h(
      'ol',
      { class: 'attempts', 'aria-label': t('attemptsCaption', { id }) },
      ...a.attempts.map((attempt) =>
        h(
          'li',
          { 'data-testid': 'attempt', 'data-ok': String(attempt.ok) },
          h('span', { class: 'attempt-time' }, time(attempt.at)),
          ' ',
          h(
            'span',
            { class: `badge ${attempt.ok ? 'attempt-ok' : 'attempt-failed'}` },
            t(attempt.ok ? 'attemptOk' : 'attemptFailed'),
          ),
          ' ',
          h(
            'span',
            { class: 'muted' },
            t('attemptDuration', { ms: formatNumber(lang(), Math.round(attempt.duration_ms), 0) }),
          ),
          attempt.error === null ? null : h('span', { class: 'attempt-error' }, attempt.error),
        ),
      ),
    )
  }

  function rows(d: DeliveryData): HTMLTableRowElement[] {
    const open = expanded.has(d.id)
    const detailId = `delivery-attempts-${d.id}`
    const channel = channelKey(d.channel)
    const statusLabel = statusKey(d.status)
    const toggle = h(
      'button',
      {
        type: 'button',
        'data-testid': 'delivery-toggle',
        'aria-expanded': String(open),
        'aria-controls': detailId,
        'aria-label': `${t(open ? 'attemptsHide' : 'attemptsShow')}: ${t('attemptsToggleLabel', { subject: d.subject })}`,
      },
      t(open ? 'attemptsHide' : 'attemptsShow'),
    )
    const main = h(
      'tr',
      { 'data-testid': 'delivery-row', 'data-delivery-id': String(d.id), 'data-status': d.status },
      h('th', { scope: 'row', class: 'col-time' }, time(d.created_at)),
      h('td', {}, channel === null ? d.channel : capitalized(t(channel))),
      h(
        'td',
        { class: 'col-recipient', 'data-testid': 'delivery-recipient' },
        d.target ?? (d.user === undefined ? '–' : t('deliveryInApp', { user: d.user })),
      ),
      h('td', { class: 'col-subject' }, d.subject),
      h(
        'td',
        { 'data-testid': 'delivery-status' },
        h(
          'span',
          { class: `badge outbox-status status-${d.status}` },
          statusLabel === null ? d.status : t(statusLabel),
        ),
      ),
      h('td', { class: 'num', 'data-testid': 'delivery-attempts-count' }, String(d.attempts)),
      h('td', { class: 'col-error', 'data-testid': 'delivery-last-error' }, d.last_error ?? '–'),
      h('td', { class: 'col-toggle' }, toggle),
    )
    const detail = h(
      'tr',
      { id: detailId, class: 'attempts-row', 'data-testid': 'delivery-attempts', hidden: !open },
      h('td', { colspan: COLUMNS.length + 1 }, open ? attemptsContent(d.id) : null),
    )
    return [main, detail]
  }

  function renderRows(): void {
    if (state.state !== 'ok') {
      tbody.replaceChildren()
      table.hidden = true
      more.hidden = true
      return
    }
    const focused = focusedToggle()
    caption.textContent = t('deliveriesCaption', { n: state.rows.length })
    table.hidden = state.rows.length === 0
    tbody.replaceChildren(...state.rows.flatMap(rows))
    more.hidden = !state.more
    more.disabled = loadingMore
    if (focused !== null) toggleOf(focused)?.focus()
  }

  function render(): void {
    renderControls()
    switch (state.state) {
      case 'idle':
        status.textContent = ''
        break
      case 'loading':
        status.textContent = t('deliveriesLoading')
        break
      case 'error': {
        const retry = h('button', { type: 'button', 'data-testid': 'deliveries-retry' }, t('retry'))
        retry.addEventListener('click', () => load())
        replaceChildren(status, t('deliveriesError', { detail: state.detail }), ' ', retry)
        break
      }
      case 'ok':
        status.textContent = state.rows.length === 0 ? t('deliveriesEmpty') : ''
        break
    }
    renderRows()
  }

  /** The row id whose toggle has the focus, so a redraw does not drop it. */
  function focusedToggle(): number | null {
    const active = document.activeElement
    if (!(active instanceof HTMLButtonElement) || !tbody.contains(active)) return null
    const id = active.closest('tr')?.dataset.deliveryId
    return id === undefined ? null : Number(id)
  }

  function toggleOf(id: number): HTMLButtonElement | null {
    return tbody.querySelector<HTMLButtonElement>(`tr[data-delivery-id="${id}"] [data-testid="delivery-toggle"]`)
  }

  function load(): void {
    seq += 1
    const mine = seq
    loadingMore = false
    if (state.state !== 'ok') {
      state = { state: 'loading' }
      render()
    }
    deps.api
      .get(deliveriesUrl(selected, null), DeliveryListSchema)
      .then((body) => {
        if (mine !== seq) return
        const { deliveries, invalid } = parseDeliveries(body.deliveries)
        if (invalid > 0) console.warn(`skolluft: ${invalid} deliveries left out: unexpected shape`)
        state = { state: 'ok', rows: deliveries, more: body.deliveries.length >= DELIVERIES_LIMIT }
        // Open rows stay open, with their attempts fetched again (a retry may have added one).
        for (const id of [...expanded]) {
          if (deliveries.some((d) => d.id === id)) fetchAttempts(id)
          else expanded.delete(id)
        }
        render()
      })
      .catch((error: unknown) => {
        if (mine !== seq) return
        state = { state: 'error', detail: detailOf(error) }
        render()
      })
  }

  function loadMore(): void {
    if (state.state !== 'ok' || loadingMore) return
    const oldest = state.rows.reduce((min, d) => Math.min(min, d.id), Number.POSITIVE_INFINITY)
    if (!Number.isFinite(oldest)) return
    const mine = seq
    loadingMore = true
    renderRows()
    deps.api
      .get(deliveriesUrl(selected, oldest), DeliveryListSchema)
      .then((body) => {
        if (mine !== seq || state.state !== 'ok') return
        const { deliveries } = parseDeliveries(body.deliveries)
        const known = new Set(state.rows.map((d) => d.id))
        loadingMore = false
        state = {
          state: 'ok',
          rows: [...state.rows, ...deliveries.filter((d) => !known.has(d.id))],
          more: body.deliveries.length >= DELIVERIES_LIMIT,
        }
        render()
        // The first new row's toggle, so the keyboard continues where the list grew.
        const first = deliveries[0]
        if (first !== undefined) toggleOf(first.id)?.focus()
      })
      .catch((error: unknown) => {
        if (mine !== seq) return
        loadingMore = false
        state = { state: 'error', detail: detailOf(error) }
        render()
      })
  }

  function fetchAttempts(id: number): void {
    attemptSeq += 1
    const mine = attemptSeq
    attemptSeqs.set(id, mine)
    if (attempts.get(id)?.state !== 'ok') attempts.set(id, { state: 'loading' })
    deps.api
      .get(`${DELIVERIES_PATH}/${id}/attempts`, DeliveryAttemptsSchema)
      .then((body) => {
        if (attemptSeqs.get(id) !== mine) return
        attempts.set(id, { state: 'ok', attempts: body.attempts })
        renderRows()
      })
      .catch((error: unknown) => {
        if (attemptSeqs.get(id) !== mine) return
        attempts.set(id, { state: 'error', detail: detailOf(error) })
        renderRows()
      })
  }

  filter.addEventListener('change', () => {
    selected = isOutboxStatus(filter.value) ? filter.value : null
    expanded.clear()
    state = { state: 'loading' }
    load()
  })
  refresh.addEventListener('click', () => load())
  more.addEventListener('click', () => loadMore())
  tbody.addEventListener('click', (e) => {
    if (!(e.target instanceof Element)) return
    const button = e.target.closest('[data-testid="delivery-toggle"]')
    const id = button?.closest('tr')?.dataset.deliveryId
    if (id === undefined) return
    const n = Number(id)
    if (expanded.has(n)) {
      expanded.delete(n)
    } else {
      expanded.add(n)
      fetchAttempts(n)
    }
    renderRows()
    toggleOf(n)?.focus()
  })

  render()
  return {
    element,
    load,
    render,
    clear() {
      seq += 1
      state = { state: 'idle' }
      expanded.clear()
      attempts.clear()
      attemptSeqs.clear()
      render()
    },
  }
}
