/// <reference lib="dom" />
import { type Api, ApiError } from './api.ts'
import { severityKey } from './breaches.ts'
import { h, replaceChildren, uid } from './dom.ts'
import type { Translate } from './i18n.ts'
import { LANG_NAMES, type Lang } from './messages.ts'
import {
  CreatedSubscriptionSchema,
  parseSubscriptions,
  type SubscriptionData,
  SubscriptionListSchema,
  type UserData,
} from './schemas.ts'
import {
  createSubscriptionForm,
  type FormFailure,
  type SiteChoice,
  type SubscriptionForm,
} from './subscription-form.ts'
import {
  placeIssues,
  quietSummary,
  SUBSCRIPTIONS_PATH,
  sitesSummary,
  subscriptionBody,
  subscriptionTitle,
} from './subscriptions.ts'

/**
 * "My alerts" (issue 4): a modal dialog where a logged-in person with alerts:subscribe sees their subscriptions
 * (topic, channel and target, sites, lowest level, quiet hours), deletes one, and adds one: topic (only those the
 * role may use), channel (e-mail prefilled with the user's address, webhook URL, or the in-app bell), sites (a
 * principal's own sites, preselected; others all or chosen ones), lowest level, language, and quiet hours (one
 * window, default 18:00–07:00, plus weekends and holidays). The API decides what is valid; its 400 errors are
 * shown under the field they name and the rest above the form. A webhook's signing secret, in the 201 answer
 * only, is shown once with a copy button. The form itself is subscription-form.ts. The native <dialog> keeps the focus inside and closes on Escape;
 * the focus then returns to the button that opened it.
 */

export interface AlertsDialogDeps {
  readonly api: Api
  readonly t: Translate
  readonly lang: () => Lang
  readonly user: () => UserData | null
  readonly csrf: () => string | null
  /** The sites on the map, in display order (the choices for roles not bound to sites). */
  readonly sites: () => readonly SiteChoice[]
  readonly siteName: (id: string) => string | null
}

export interface AlertsDialog {
  readonly element: HTMLDialogElement
  /** Opens the dialog with a fresh form and fetches the subscriptions; `opener` gets the focus back on close. */
  open(opener: HTMLElement | null): void
  close(): void
  /** Redraws in the current language, keeping what is typed. */
  relabel(): void
}

type ListState =
  | { readonly state: 'loading' }
  | { readonly state: 'error'; readonly detail: string }
  | { readonly state: 'ok'; readonly subscriptions: readonly SubscriptionData[] }

function errorDetail(error: unknown): string {
  if (error instanceof ApiError) return error.status === null ? error.message : `${error.status}: ${error.message}`
  return 'error'
}

/** The list's loading problem in few words: the status, or that no answer came. */
function shortDetail(error: unknown): string {
  if (error instanceof ApiError) return error.status === null ? error.message : String(error.status)
  return 'error'
}

export function createAlertsDialog(deps: AlertsDialogDeps): AlertsDialog {
  const { t } = deps
  const titleId = uid('alerts-title')
  const listHeadingId = uid('subscriptions-title')
  const title = h('h2', { id: titleId, tabindex: '-1', class: 'dialog-title' })
  const closeButton = h('button', { type: 'button', 'data-testid': 'alerts-close' })
  const intro = h('p', { class: 'form-intro' })
  const live = h('p', { class: 'visually-hidden', 'aria-live': 'polite', 'data-testid': 'alerts-live' })
  const listHeading = h('h3', { id: listHeadingId, tabindex: '-1' })
  const listStatus = h('p', { class: 'muted', 'data-testid': 'subscriptions-status' })
  const listError = h('p', { class: 'form-error', role: 'alert', 'data-testid': 'subscriptions-error', hidden: true })
  const list = h('ul', { class: 'subscriptions', 'data-testid': 'subscriptions-list' })
  const secretBox = h('section', { class: 'secret-box', 'data-testid': 'signing-secret', hidden: true })
  const formSlot = h('div', {})
  const element = h(
    'dialog',
    { class: 'alerts-dialog', 'aria-labelledby': titleId, 'data-testid': 'alerts-dialog' },
    h('div', { class: 'dialog-head' }, title, closeButton),
    intro,
    live,
    h('section', { 'aria-labelledby': listHeadingId }, listHeading, listStatus, listError, list),
    secretBox,
    formSlot,
  )

  let listState: ListState = { state: 'loading' }
  let listSeq = 0
  let deleteError: (() => string) | null = null
  let liveText: (() => string) | null = null
  let secret: { readonly value: string; readonly what: string; copied: (() => string) | null } | null = null
  let form: SubscriptionForm | null = null
  let opener: HTMLElement | null = null
  const deleting = new Set<string>()

  function say(text: (() => string) | null): void {
    liveText = text
    live.textContent = text?.() ?? ''
  }

  function renderHead(): void {
    title.textContent = t('alertsTitle')
    closeButton.textContent = t('alertsClose')
    intro.textContent = t('alertsIntro')
    listHeading.textContent = t('subscriptionsHeading')
    live.textContent = liveText?.() ?? ''
  }

  function languageName(lang: string): string {
    return lang === 'sv' || lang === 'en' ? LANG_NAMES[lang] : lang
  }

  function item(s: SubscriptionData): HTMLLIElement {
    const what = subscriptionTitle(t, s)
    const severity = severityKey(s.min_severity)
    const remove = h(
      'button',
      {
        type: 'button',
        'data-testid': 'subscription-delete',
        'aria-label': t('subscriptionDeleteLabel', { what }),
        disabled: deleting.has(s.id),
      },
      t('subscriptionDelete'),
    )
    remove.addEventListener('click', () => void removeSubscription(s))
    return h(
      'li',
      { class: 'subscription', 'data-testid': 'subscription', 'data-subscription-id': s.id },
      h('p', { class: 'subscription-title', tabindex: '-1', 'data-testid': 'subscription-title' }, what),
      h(
        'ul',
        { class: 'subscription-facts' },
        h(
          'li',
          { 'data-testid': 'subscription-fact-sites' },
          t('subscriptionSites', { sites: sitesSummary(t, s.sites, deps.siteName) }),
        ),
        h(
          'li',
          { 'data-testid': 'subscription-fact-severity' },
          t('subscriptionSeverity', { severity: severity === null ? s.min_severity : t(severity) }),
        ),
        h('li', { 'data-testid': 'subscription-fact-quiet' }, quietSummary(t, s.quiet_hours)),
        h(
          'li',
          { 'data-testid': 'subscription-fact-language' },
          t('subscriptionLanguage', { language: languageName(s.language) }),
        ),
      ),
      h('div', { class: 'subscription-actions' }, remove),
    )
  }

  function renderList(): void {
    listError.textContent = deleteError?.() ?? ''
    listError.hidden = deleteError === null
    switch (listState.state) {
      case 'loading':
        listStatus.textContent = t('subscriptionsLoading')
        listStatus.hidden = false
        list.replaceChildren()
        return
      case 'error': {
        const retry = h('button', { type: 'button', 'data-testid': 'subscriptions-retry' }, t('retry'))
        retry.addEventListener('click', () => loadList())
        replaceChildren(listStatus, t('subscriptionsError', { detail: listState.detail }), ' ', retry)
        listStatus.hidden = false
        list.replaceChildren()
        return
      }
      case 'ok': {
        listStatus.textContent = t('subscriptionsEmpty')
        listStatus.hidden = listState.subscriptions.length > 0
        // Keep the focus on the same control of the same subscription when the list is rebuilt.
        const active = document.activeElement
        const focused = active instanceof HTMLElement && list.contains(active) ? active : null
        const focusedId = focused?.closest('li.subscription')?.getAttribute('data-subscription-id') ?? null
        const focusedRole = focused?.getAttribute('data-testid') ?? null
        list.replaceChildren(...listState.subscriptions.map(item))
        if (focusedId !== null && focusedRole !== null) focusIn(focusedId, focusedRole)
      }
    }
  }

  function focusIn(id: string, testId: string): boolean {
    const target = list.querySelector<HTMLElement>(
      `li[data-subscription-id="${CSS.escape(id)}"] [data-testid="${CSS.escape(testId)}"]`,
    )
    target?.focus()
    return target !== null
  }

  function loadList(): void {
    listSeq += 1
    const mine = listSeq
    if (listState.state !== 'ok') {
      listState = { state: 'loading' }
      renderList()
    }
    deps.api
      .get(SUBSCRIPTIONS_PATH, SubscriptionListSchema)
      .then((body) => {
        if (mine !== listSeq) return
        const { subscriptions, invalid } = parseSubscriptions(body.subscriptions)
        if (invalid > 0) console.warn(`skolluft: ${invalid} subscription(s) left out: unexpected shape`)
        listState = { state: 'ok', subscriptions }
        renderList()
      })
      .catch((error: unknown) => {
        if (mine !== listSeq) return
        listState = { state: 'error', detail: shortDetail(error) }
        renderList()
      })
  }

  async function removeSubscription(s: SubscriptionData): Promise<void> {
    if (deleting.has(s.id)) return
    const shown = listState.state === 'ok' ? listState.subscriptions : []
    const index = shown.findIndex((x) => x.id === s.id)
    const after = shown[index + 1] ?? shown[index - 1] ?? null
    deleting.add(s.id)
    deleteError = null
    renderList()
    try {
      await deps.api.delete(`${SUBSCRIPTIONS_PATH}/${encodeURIComponent(s.id)}`, deps.csrf())
    } catch (error) {
      deleting.delete(s.id)
      // Gone already (deleted in another tab, or by its unsubscribe link): the list is out of date.
      if (error instanceof ApiError && error.status === 404) {
        loadList()
      } else {
        const detail = errorDetail(error)
        deleteError = () => t('subscriptionDeleteFailed', { detail })
      }
      renderList()
      focusIn(s.id, 'subscription-delete')
      return
    }
    deleting.delete(s.id)
    if (listState.state === 'ok') {
      listState = { state: 'ok', subscriptions: listState.subscriptions.filter((x) => x.id !== s.id) }
    }
    renderList()
    say(() => t('subscriptionDeleted'))
    // The button is gone: the next subscription's delete button, else the previous one, else the heading.
    if (after === null || !focusIn(after.id, 'subscription-delete')) listHeading.focus()
  }

  // ---- the signing secret ----------------------------------------------------------------------
  function renderSecret(): void {
    if (secret === null) {
      secretBox.hidden = true
      secretBox.replaceChildren()
      return
    }
    const current = secret
    const headingId = uid('secret-title')
    const inputId = uid('secret-value')
    const hintId = uid('secret-hint')
    const value = h('input', {
      id: inputId,
      type: 'text',
      class: 'secret-value',
      readonly: true,
      spellcheck: 'false',
      autocomplete: 'off',
      value: current.value,
      'data-testid': 'signing-secret-value',
      'aria-describedby': hintId,
    })
    value.addEventListener('focus', () => value.select())
    const copy = h('button', { type: 'button', 'data-testid': 'signing-secret-copy' }, t('secretCopy'))
    const copied = h(
      'p',
      { class: 'field-hint', role: 'status', 'data-testid': 'signing-secret-copied' },
      current.copied?.() ?? '',
    )
    copy.addEventListener('click', () => {
      const done = (text: () => string) => {
        current.copied = text
        copied.textContent = text()
      }
      const manual = () => {
        value.focus()
        value.select()
        done(() => t('secretCopyManual'))
      }
      // The Clipboard API needs a secure context (https, or localhost); elsewhere the key is selected instead.
      if (navigator.clipboard === undefined) {
        manual()
        return
      }
      navigator.clipboard.writeText(current.value).then(() => done(() => t('secretCopied')), manual)
    })
    secretBox.setAttribute('aria-labelledby', headingId)
    secretBox.hidden = false
    replaceChildren(
      secretBox,
      h('h3', { id: headingId, tabindex: '-1', 'data-testid': 'signing-secret-title' }, t('secretTitle')),
      h('p', { class: 'muted' }, current.what),
      h('p', { id: hintId, class: 'field-hint' }, t('secretHint')),
      h('label', { for: inputId, class: 'visually-hidden' }, t('secretTitle')),
      h('div', { class: 'secret-row' }, value, copy),
      copied,
    )
  }

  function failureOf(error: unknown): FormFailure {
    if (error instanceof ApiError && error.status === 400 && error.errors.length > 0) {
      const { inline, other } = placeIssues(error.errors)
      const rest = other.map((issue) => (issue.path === '' ? issue.message : `${issue.path}: ${issue.message}`))
      return {
        summary: () => [t('subscriptionInvalid'), ...rest].join(' '),
        inline,
      }
    }
    // 403 (topic or site not allowed), 409 (too many), 503 (no alerts key), a network failure: the API's words.
    const detail = error instanceof ApiError ? error.message : 'error'
    return { summary: () => t('subscriptionFailed', { detail }), inline: new Map() }
  }

  let busy = false
  function submitForm(current: SubscriptionForm): void {
    if (busy) return
    const values = current.values()
    busy = true
    current.setBusy(true)
    deps.api
      .post(SUBSCRIPTIONS_PATH, subscriptionBody(values), CreatedSubscriptionSchema, deps.csrf())
      .then((created) => {
        busy = false
        current.setBusy(false)
        if (created === null) throw new ApiError('invalid', 'empty answer to a new subscription', 204, null)
        current.show(null)
        const { signing_secret: signingSecret, ...subscription } = created
        if (listState.state === 'ok') {
          listState = {
            state: 'ok',
            subscriptions: [...listState.subscriptions.filter((s) => s.id !== subscription.id), subscription],
          }
        } else {
          loadList()
        }
        renderList()
        say(() => t('subscriptionCreated'))
        if (signingSecret !== undefined) {
          secret = { value: signingSecret, what: subscriptionTitle(t, subscription), copied: null }
          renderSecret()
          secretBox.querySelector<HTMLElement>('[data-testid="signing-secret-title"]')?.focus()
        } else if (!focusIn(subscription.id, 'subscription-title')) {
          listHeading.focus()
        }
      })
      .catch((error: unknown) => {
        busy = false
        current.setBusy(false)
        const failure = failureOf(error)
        current.show(failure)
        current.focusFirstInvalid(failure)
      })
  }

  function open(from: HTMLElement | null): void {
    const user = deps.user()
    if (user === null) return
    opener = from
    deleteError = null
    secret = null
    deleting.clear()
    say(null)
    renderHead()
    renderSecret()
    const next = createSubscriptionForm({
      t,
      lang: deps.lang,
      user,
      sites: deps.sites,
      siteName: deps.siteName,
    })
    next.element.addEventListener('submit', (e) => {
      e.preventDefault()
      submitForm(next)
    })
    form = next
    formSlot.replaceChildren(next.element)
    listState = { state: 'loading' }
    renderList()
    loadList()
    if (!element.open) element.showModal()
    title.focus()
  }

  function close(): void {
    if (!element.open) return
    element.close()
    // The close event comes later (a queued task); the secret leaves the page now.
    cleanUp()
  }

  /** After closing (by the button, by Escape, on log-out): nothing of the secret stays in the page. */
  function cleanUp(): void {
    secret = null
    renderSecret()
    listSeq += 1
    const target = opener
    opener = null
    if (target?.isConnected) target.focus()
  }

  closeButton.addEventListener('click', () => close())
  element.addEventListener('keydown', (e) => {
    // The dialog closes itself on Escape (its cancel event); the page's own Escape (closing the panel behind) must
    // not run as well.
    if (e.key === 'Escape') e.stopPropagation()
  })
  element.addEventListener('close', () => {
    if (!element.open) cleanUp()
  })

  renderHead()
  return {
    element,
    open,
    close,
    relabel() {
      renderHead()
      renderList()
      renderSecret()
      form?.texts.refresh()
    },
  }
}
