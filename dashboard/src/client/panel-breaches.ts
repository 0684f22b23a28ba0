/// <reference lib="dom" />
import { isEaqiPollutant } from '@skolluft/core'
import { type Api, ApiError } from './api.ts'
import {
  actorLabel,
  COMMENT_MAX_CHARS,
  commentProblem,
  type Incident,
  incidentFrom,
  PANEL_BREACHES_LIMIT,
  RECENT_DAYS,
  ruleLabel,
  severityKey,
  splitIncidents,
} from './breaches.ts'
import { h, replaceChildren, uid } from './dom.ts'
import { formatDateTime, formatNumber } from './format.ts'
import type { Translate } from './i18n.ts'
import type { Lang } from './messages.ts'
import {
  type BreachCommentData,
  BreachCommentSchema,
  BreachDetailSchema,
  BreachListSchema,
  BreachSchema,
  parseIncidents,
} from './schemas.ts'

/**
 * The breaches section of the site panel (issue 4): the site's open incidents and those that ended in the
 * last RECENT_DAYS days, each with pollutant, rule, severity, since when (local time), peak and its time,
 * the retrospective mark and who acknowledged it when. A logged-in caller can open the comments; one who may
 * manage breaches (admin, staff) gets "Acknowledge" and a comment box. Changes are announced in a polite
 * live region; after an acknowledgement the focus moves to the incident's heading, since the button is gone.
 */

export interface BreachAccess {
  readonly loggedIn: boolean
  /** Holds breaches:manage (acknowledge and comment). */
  readonly manage: boolean
  readonly csrf: string | null
  /** The logged-in user, so that their own acknowledgements and comments show their name. */
  readonly me: { readonly id: string; readonly name: string } | null
}

export interface PanelBreachesDeps {
  readonly api: Api
  readonly t: Translate
  readonly lang: () => Lang
  /** Server-adjusted now, epoch ms. */
  readonly now: () => number
  readonly access: () => BreachAccess
  /** An incident was acknowledged: lists elsewhere (the breaches view) are out of date. */
  readonly onChanged: () => void
}

export interface PanelBreaches {
  readonly element: HTMLElement
  /** Fetches and shows the site's incidents. */
  load(siteId: string, openCount: number): void
  /** Refetches when the map's open count for the site changed since the last load. */
  sync(siteId: string, openCount: number): void
  /** Redraws in the current language, from what was fetched. */
  render(): void
  clear(): void
}

type Comments =
  | { readonly state: 'loading' }
  | { readonly state: 'error'; readonly detail: string }
  | { readonly state: 'ok'; readonly comments: readonly BreachCommentData[] }

type Load =
  | { readonly state: 'loading' }
  | { readonly state: 'error'; readonly detail: string }
  | { readonly state: 'ok'; readonly incidents: readonly Incident[] }

const DAY_MS = 86_400_000

function errorDetail(error: unknown): string {
  if (error instanceof ApiError) return error.status === null ? error.message : String(error.status)
  return 'error'
}

export function createPanelBreaches(deps: PanelBreachesDeps): PanelBreaches {
  const { t } = deps
  const live = h('p', { class: 'visually-hidden', 'aria-live': 'polite', 'data-testid': 'panel-breaches-live' })
  const content = h('div')
  const element = h('section', { class: 'panel-breaches', 'data-testid': 'panel-breaches' }, content, live)

  let siteId: string | null = null
  let loadedOpenCount = 0
  let load: Load = { state: 'loading' }
  let seq = 0
  const comments = new Map<string, Comments>()
  const openComments = new Set<string>()
  const drafts = new Map<string, string>()
  const ackErrors = new Map<string, () => string>()
  const commentErrors = new Map<string, () => string>()
  const busy = new Set<string>()

  const lang = () => deps.lang()
  const time = (ms: number) => formatDateTime(lang(), ms)
  const value = (v: number) => formatNumber(lang(), v)
  const pollutantLabel = (p: string) => (isEaqiPollutant(p) ? t(`metric_${p}`) : p)
  const what = (i: Incident) => `${pollutantLabel(i.pollutant)}, ${ruleLabel(t, i, value)}`

  function announce(text: string): void {
    // A change of text is what a screen reader announces; clear first so the same message twice is read twice.
    live.textContent = ''
    requestAnimationFrame(() => {
      live.textContent = text
    })
  }

  function ackText(i: Incident): string {
    if (i.acknowledged === null) return t('breachNotAck')
    const at = time(i.acknowledged.at)
    const by = i.acknowledged.by
    return by === null
      ? t('breachAckAt', { time: at })
      : t('breachAckBy', { who: actorLabel(by, deps.access().me), time: at })
  }

  function fact(text: string, testId: string, cls = 'fact'): HTMLElement {
    return h('li', { class: cls, 'data-testid': testId }, text)
  }

  function severityBadge(severity: string): HTMLElement {
    const key = severityKey(severity)
    return h(
      'span',
      { class: `badge severity severity-${key === null ? 'unknown' : severity}` },
      key === null ? severity : t(key),
    )
  }

  function incidentItem(i: Incident): HTMLLIElement {
    const access = deps.access()
    const titleId = uid('incident')
    const open = i.end === null
    const title = h(
      'h5',
      { id: titleId, class: 'incident-title', tabindex: '-1' },
      severityBadge(i.severity),
      ' ',
      pollutantLabel(i.pollutant),
      i.retrospective
        ? h('span', { class: 'badge badge-retro', 'data-testid': 'incident-retrospective' }, t('breachRetrospective'))
        : null,
    )
    const facts = h(
      'ul',
      { class: 'incident-facts' },
      h(
        'li',
        { class: 'fact', 'data-testid': 'incident-rule' },
        ruleLabel(t, i, value),
        ' ',
        h('code', { class: 'rule-id' }, i.ruleId),
      ),
      fact(
        open
          ? t('breachSince', { time: time(i.start) })
          : t('breachPeriod', { start: time(i.start), end: time(i.end ?? i.start) }),
        'incident-since',
      ),
      fact(t('breachPeak', { value: value(i.peak), time: time(i.peakAt) }), 'incident-peak'),
      i.retrospective ? fact(t('breachRetrospectiveHint'), 'incident-retrospective-hint', 'fact muted') : null,
      fact(ackText(i), 'incident-ack-status', i.acknowledged === null ? 'fact not-acknowledged' : 'fact'),
    )
    const item = h(
      'li',
      {
        class: `incident incident-${open ? 'open' : 'closed'}`,
        'data-testid': 'incident',
        'data-incident-id': i.id,
        'data-state': open ? 'open' : 'closed',
        'data-severity': i.severity,
        'data-acknowledged': String(i.acknowledged !== null),
        'aria-labelledby': titleId,
      },
      title,
      facts,
    )
    if (access.manage && i.acknowledged === null) {
      const button = h(
        'button',
        {
          type: 'button',
          class: 'primary',
          'data-testid': 'incident-acknowledge',
          'aria-label': t('breachAcknowledgeLabel', { what: what(i) }),
          disabled: busy.has(`ack:${i.id}`),
        },
        t('breachAcknowledge'),
      )
      button.addEventListener('click', () => void acknowledge(i))
      item.append(h('div', { class: 'incident-actions' }, button))
    }
    const ackError = ackErrors.get(i.id)
    if (ackError !== undefined) {
      item.append(h('p', { class: 'form-error', role: 'alert', 'data-testid': 'incident-ack-error' }, ackError()))
    }
    if (access.loggedIn) item.append(commentsBlock(i, access))
    return item
  }

  function commentsBlock(i: Incident, access: BreachAccess): HTMLDetailsElement {
    const body = h('div', { class: 'comments-body' })
    const details = h(
      'details',
      { class: 'incident-comments', 'data-testid': 'incident-comments', open: openComments.has(i.id) },
      h('summary', {}, t('breachComments')),
      body,
    )
    details.addEventListener('toggle', () => {
      if (details.open) {
        openComments.add(i.id)
        // Also fired for a redrawn block that starts open: fetch only what is not known (a failure offers a retry).
        if (!comments.has(i.id)) void loadComments(i.id)
      } else {
        openComments.delete(i.id)
      }
    })
    fillComments(body, i, access)
    return details
  }

  /** The comments and the form, refilled in place so that the summary keeps the focus while they load. */
  function fillComments(body: HTMLElement, i: Incident, access: BreachAccess): void {
    body.replaceChildren()
    const state = comments.get(i.id)
    if (state === undefined || state.state === 'loading') {
      body.append(h('p', { class: 'muted' }, t('breachCommentsLoading')))
    } else if (state.state === 'error') {
      const retry = h('button', { type: 'button' }, t('retry'))
      retry.addEventListener('click', () => void loadComments(i.id))
      body.append(h('p', { class: 'form-error' }, t('breachCommentsError', { detail: state.detail }), ' ', retry))
    } else if (state.comments.length === 0) {
      body.append(h('p', { class: 'muted', 'data-testid': 'incident-comments-none' }, t('breachCommentsNone')))
    } else {
      body.append(
        h(
          'ol',
          { class: 'comments' },
          ...state.comments.map((c) =>
            h(
              'li',
              { 'data-testid': 'incident-comment' },
              h(
                'p',
                { class: 'comment-meta' },
                t('breachCommentBy', { who: actorLabel(c.actor, access.me), time: time(Date.parse(c.at)) }),
              ),
              h('p', { class: 'comment-text' }, c.text),
            ),
          ),
        ),
      )
    }
    if (access.manage) body.append(commentForm(i))
  }

  /** Refills one incident's comments; false when it is not shown. */
  function redrawComments(id: string): boolean {
    if (load.state !== 'ok') return false
    const incident = load.incidents.find((i) => i.id === id)
    const body = itemOf(id)?.querySelector<HTMLElement>('.comments-body')
    if (incident === undefined || body === null || body === undefined) return false
    fillComments(body, incident, deps.access())
    return true
  }

  function itemOf(id: string): HTMLLIElement | null {
    return content.querySelector<HTMLLIElement>(`li[data-incident-id="${CSS.escape(id)}"]`)
  }

  function commentForm(i: Incident): HTMLFormElement {
    const inputId = uid('comment')
    const hintId = uid('comment-hint')
    const errorId = uid('comment-error')
    const input = h('textarea', {
      id: inputId,
      rows: 3,
      'data-testid': 'incident-comment-input',
      'aria-describedby': `${hintId} ${errorId}`,
    })
    input.value = drafts.get(i.id) ?? ''
    input.addEventListener('input', () => drafts.set(i.id, input.value))
    const error = commentErrors.get(i.id)
    const errorEl = h(
      'p',
      {
        id: errorId,
        class: 'form-error',
        role: 'alert',
        'data-testid': 'incident-comment-error',
        hidden: error === undefined,
      },
      error?.() ?? '',
    )
    if (error !== undefined) input.setAttribute('aria-invalid', 'true')
    const submit = h(
      'button',
      { type: 'submit', 'data-testid': 'incident-comment-submit', disabled: busy.has(`comment:${i.id}`) },
      t('breachCommentSubmit'),
    )
    const form = h(
      'form',
      { class: 'comment-form', novalidate: true },
      h('label', { for: inputId }, t('breachCommentNew')),
      input,
      h('p', { id: hintId, class: 'field-hint' }, t('breachCommentHint', { max: COMMENT_MAX_CHARS })),
      errorEl,
      submit,
    )
    form.addEventListener('submit', (e) => {
      e.preventDefault()
      void addComment(i, input.value)
    })
    return form
  }

  function render(): void {
    if (siteId === null) {
      content.replaceChildren()
      return
    }
    const heading = h('h3', {}, t('panelBreaches'))
    if (load.state === 'loading') {
      replaceChildren(content, heading, h('p', { class: 'muted' }, t('breachesLoading')))
      return
    }
    if (load.state === 'error') {
      const retry = h('button', { type: 'button', 'data-testid': 'panel-breaches-retry' }, t('retry'))
      const id = siteId
      retry.addEventListener('click', () => fetchIncidents(id))
      replaceChildren(
        content,
        heading,
        h('p', { class: 'form-error' }, t('breachesError', { detail: load.detail }), ' ', retry),
      )
      return
    }
    const { open, recent } = splitIncidents(load.incidents, deps.now() - RECENT_DAYS * DAY_MS)
    if (open.length === 0 && recent.length === 0) {
      replaceChildren(
        content,
        heading,
        h('p', { class: 'muted', 'data-testid': 'panel-breaches-none' }, t('panelBreachesNone', { days: RECENT_DAYS })),
      )
      return
    }
    replaceChildren(
      content,
      heading,
      open.length === 0
        ? null
        : h(
            'div',
            {},
            h('h4', {}, t('panelBreachesOpen')),
            h('ul', { class: 'incidents', 'data-testid': 'panel-breaches-open' }, ...open.map(incidentItem)),
          ),
      recent.length === 0
        ? null
        : h(
            'div',
            {},
            h('h4', {}, t('panelBreachesRecent', { days: RECENT_DAYS })),
            h('ul', { class: 'incidents', 'data-testid': 'panel-breaches-recent' }, ...recent.map(incidentItem)),
          ),
    )
  }

  /** Redraws one incident in place (the rest keep their focus and open comments). */
  function redraw(id: string): HTMLLIElement | null {
    if (load.state !== 'ok') return null
    const incident = load.incidents.find((i) => i.id === id)
    const old = itemOf(id)
    if (incident === undefined || old === null) {
      render()
      return itemOf(id)
    }
    const next = incidentItem(incident)
    old.replaceWith(next)
    return next
  }

  function fetchIncidents(id: string): void {
    seq += 1
    const mine = seq
    load = { state: 'loading' }
    render()
    const from = new Date(deps.now() - RECENT_DAYS * DAY_MS).toISOString()
    const query = `site=${encodeURIComponent(id)}&state=all&from=${encodeURIComponent(from)}&limit=${PANEL_BREACHES_LIMIT}`
    deps.api
      .get(`/api/v1/breaches?${query}`, BreachListSchema)
      .then((list) => {
        if (mine !== seq || siteId !== id) return
        const { incidents, invalid } = parseIncidents(list.incidents)
        if (invalid > 0) console.warn(`skolluft: ${invalid} breach incident(s) left out: unexpected shape`)
        load = { state: 'ok', incidents: incidents.map(incidentFrom) }
        render()
      })
      .catch((error: unknown) => {
        if (mine !== seq || siteId !== id) return
        load = { state: 'error', detail: errorDetail(error) }
        render()
      })
  }

  async function loadComments(id: string): Promise<void> {
    const forSite = siteId
    comments.set(id, { state: 'loading' })
    redrawComments(id)
    try {
      const detail = await deps.api.get(`/api/v1/breaches/${encodeURIComponent(id)}`, BreachDetailSchema)
      if (siteId !== forSite) return
      comments.set(id, { state: 'ok', comments: detail.comments ?? [] })
    } catch (error) {
      if (siteId !== forSite) return
      comments.set(id, { state: 'error', detail: errorDetail(error) })
    }
    redrawComments(id)
  }

  function replaceIncident(next: Incident): void {
    if (load.state !== 'ok') return
    load = { state: 'ok', incidents: load.incidents.map((i) => (i.id === next.id ? next : i)) }
  }

  async function acknowledge(i: Incident): Promise<void> {
    const key = `ack:${i.id}`
    if (busy.has(key)) return
    const forSite = siteId
    busy.add(key)
    ackErrors.delete(i.id)
    // Disabled in place: redrawing now would take the focus off the button.
    const button = itemOf(i.id)?.querySelector<HTMLButtonElement>('[data-testid="incident-acknowledge"]')
    if (button) button.disabled = true
    itemOf(i.id)?.querySelector('[data-testid="incident-ack-error"]')?.remove()
    try {
      const res = await deps.api.post(
        `/api/v1/breaches/${encodeURIComponent(i.id)}/acknowledge`,
        {},
        BreachSchema,
        deps.access().csrf,
      )
      busy.delete(key)
      if (siteId !== forSite) return
      if (res === null) throw new ApiError('invalid', 'empty acknowledgement response', 204, null)
      replaceIncident(incidentFrom(res))
      const item = redraw(i.id)
      item?.querySelector<HTMLElement>('.incident-title')?.focus()
      announce(t('breachAcknowledged'))
      deps.onChanged()
    } catch (error) {
      busy.delete(key)
      if (siteId !== forSite) return
      const detail = errorDetail(error)
      ackErrors.set(i.id, () => t('breachAckFailed', { detail }))
      const item = redraw(i.id)
      item?.querySelector<HTMLButtonElement>('[data-testid="incident-acknowledge"]')?.focus()
    }
  }

  function focusCommentInput(id: string): void {
    itemOf(id)?.querySelector<HTMLTextAreaElement>('[data-testid="incident-comment-input"]')?.focus()
  }

  async function addComment(i: Incident, text: string): Promise<void> {
    const key = `comment:${i.id}`
    if (busy.has(key)) return
    drafts.set(i.id, text)
    const problem = commentProblem(text)
    if (problem !== null) {
      commentErrors.set(i.id, () =>
        problem === 'empty' ? t('breachCommentEmpty') : t('breachCommentLong', { max: COMMENT_MAX_CHARS }),
      )
      redrawComments(i.id)
      focusCommentInput(i.id)
      return
    }
    const forSite = siteId
    busy.add(key)
    const submit = itemOf(i.id)?.querySelector<HTMLButtonElement>('[data-testid="incident-comment-submit"]')
    if (submit) submit.disabled = true
    try {
      const comment = await deps.api.post(
        `/api/v1/breaches/${encodeURIComponent(i.id)}/comments`,
        { text },
        BreachCommentSchema,
        deps.access().csrf,
      )
      busy.delete(key)
      if (siteId !== forSite) return
      if (comment === null) throw new ApiError('invalid', 'empty comment response', 204, null)
      const known = comments.get(i.id)
      comments.set(i.id, {
        state: 'ok',
        comments: known?.state === 'ok' ? [...known.comments, comment] : [comment],
      })
      drafts.delete(i.id)
      commentErrors.delete(i.id)
      redrawComments(i.id)
      focusCommentInput(i.id)
      announce(t('breachCommentAdded'))
    } catch (error) {
      busy.delete(key)
      if (siteId !== forSite) return
      const detail = errorDetail(error)
      commentErrors.set(i.id, () => t('breachCommentFailed', { detail }))
      redrawComments(i.id)
      focusCommentInput(i.id)
    }
  }

  function reset(): void {
    seq += 1
    comments.clear()
    openComments.clear()
    drafts.clear()
    ackErrors.clear()
    commentErrors.clear()
    busy.clear()
  }

  return {
    element,
    load(id, openCount) {
      if (id !== siteId) reset()
      else {
        // The same site again (log-in, log-out): comments depend on who asks.
        comments.clear()
        ackErrors.clear()
      }
      siteId = id
      loadedOpenCount = openCount
      fetchIncidents(id)
    },
    sync(id, openCount) {
      if (id !== siteId || openCount === loadedOpenCount) return
      loadedOpenCount = openCount
      fetchIncidents(id)
    },
    render,
    clear() {
      reset()
      siteId = null
      load = { state: 'loading' }
      content.replaceChildren()
      live.textContent = ''
    },
  }
}
