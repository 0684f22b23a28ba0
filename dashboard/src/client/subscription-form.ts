/// <reference lib="dom" />
import { SEVERITIES, type Severity } from './breaches.ts'
import { h, uid } from './dom.ts'
import type { Translate } from './i18n.ts'
import { LANG_NAMES, type Lang, type MessageKey } from './messages.ts'
import type { UserData } from './schemas.ts'
import {
  ALERT_CHANNELS,
  ALERT_LANGUAGES,
  type AlertChannel,
  type AlertLanguage,
  DEFAULT_QUIET_HOURS,
  type FormField,
  isChannel,
  isSiteBound,
  isTopic,
  type SubscriptionFormValues,
  type SubscriptionTopic,
  topicKey,
  topicsFor,
} from './subscriptions.ts'
import { createTexts, type Texts } from './texts.ts'

/**
 * The "new subscription" form of "My alerts" (issue 4): topic (only those the role may use), channel and its
 * target (e-mail prefilled with the user's address, webhook URL, nothing for the in-app bell; each channel keeps
 * what was typed for it), sites (a principal's own, preselected; others all or chosen ones), lowest level,
 * language, and quiet hours (on by default with core's 18:00–07:00, weekends and holidays; one window). It
 * checks nothing itself: the API's rules are the only ones, and show() puts its errors under the fields named.
 */

export interface SiteChoice {
  readonly id: string
  readonly name: string
}

export interface SubscriptionFormDeps {
  readonly t: Translate
  readonly lang: () => Lang
  readonly user: UserData
  /** The sites on the map, in display order (the choices for roles not bound to sites). */
  readonly sites: () => readonly SiteChoice[]
  readonly siteName: (id: string) => string | null
}

/** Why the API refused: said above the form, and the API's messages per field. */
export interface FormFailure {
  readonly summary: () => string
  readonly inline: ReadonlyMap<FormField, readonly string[]>
}

export interface SubscriptionForm {
  readonly element: HTMLFormElement
  /** Its labels; refresh() redraws them in the current language. */
  readonly texts: Texts
  values(): SubscriptionFormValues
  show(failure: FormFailure | null): void
  focusFirstInvalid(failure: FormFailure): void
  setBusy(busy: boolean): void
}

export function createSubscriptionForm(deps: SubscriptionFormDeps): SubscriptionForm {
  const { t, user } = deps
  const texts = createTexts()
  const bind = texts.bind
  const headingId = uid('subscription-new')
  const summaryId = uid('subscription-error')
  const summary = h('p', {
    id: summaryId,
    class: 'form-error',
    role: 'alert',
    'data-testid': 'subscription-error',
    hidden: true,
  })
  let failure: FormFailure | null = null
  bind(summary, () => failure?.summary() ?? '')

  const errors = new Map<FormField, HTMLElement>()
  const controls = new Map<FormField, HTMLElement>()
  /** The error line of a field, and its id for aria-describedby. */
  function errorLine(field: FormField): { el: HTMLElement; id: string } {
    const id = uid(`subscription-${field}-error`)
    const el = h('p', { id, class: 'field-error', 'data-testid': `subscription-error-${field}`, hidden: true })
    errors.set(field, el)
    return { el, id }
  }
  function labelled(
    field: FormField,
    label: MessageKey | (() => string),
    control: HTMLInputElement | HTMLSelectElement,
    hint: HTMLElement | null = null,
  ): HTMLElement {
    const error = errorLine(field)
    controls.set(field, control)
    const describedBy = [hint?.id, error.id, summaryId].filter((x) => x !== undefined && x !== '').join(' ')
    control.setAttribute('aria-describedby', describedBy)
    const text = typeof label === 'function' ? label : () => t(label)
    return h('div', { class: 'field' }, bind(h('label', { for: control.id }), text), control, hint, error.el)
  }
  function select(field: FormField, testId: string): HTMLSelectElement {
    return h('select', { id: uid(`subscription-${field}`), name: field, 'data-testid': testId })
  }

  // Topic: only what the role may use.
  const topics = topicsFor(user.role)
  const topic = select('topic', 'subscription-topic')
  for (const value of topics) topic.append(bind(h('option', { value }), () => t(topicKey(value) ?? 'unknown')))

  // Channel, and its target: an address or a URL typed per channel, so switching back keeps each.
  const channel = select('channel', 'subscription-channel')
  for (const value of ALERT_CHANNELS) {
    channel.append(bind(h('option', { value }), () => t(`channelOption_${value}`)))
  }
  const drafts: Record<AlertChannel, string> = { email: user.email, webhook: '', in_app: '' }
  let shownChannel: AlertChannel = 'email'
  const target = h('input', {
    id: uid('subscription-target'),
    name: 'target',
    type: 'email',
    autocomplete: 'email',
    spellcheck: 'false',
    autocapitalize: 'none',
    'data-testid': 'subscription-target',
    value: user.email,
  })
  const targetHint = h('p', { id: uid('subscription-target-hint'), class: 'field-hint' })
  const targetField = labelled(
    'target',
    () => t(shownChannel === 'webhook' ? 'fieldWebhook' : 'fieldEmail'),
    target,
    targetHint,
  )
  const inAppHint = bind(h('p', { class: 'field-hint', 'data-testid': 'subscription-in-app-hint' }), () =>
    t('inAppHint'),
  )
  bind(targetHint, () => (shownChannel === 'webhook' ? t('webhookHint') : ''))
  function showChannel(): void {
    drafts[shownChannel] = target.value
    shownChannel = isChannel(channel.value) ? channel.value : 'email'
    target.value = drafts[shownChannel]
    target.type = shownChannel === 'webhook' ? 'url' : 'email'
    target.autocomplete = shownChannel === 'webhook' ? 'off' : 'email'
    targetField.hidden = shownChannel === 'in_app'
    inAppHint.hidden = shownChannel !== 'in_app'
    targetHint.hidden = shownChannel !== 'webhook'
    texts.refresh()
  }
  channel.addEventListener('change', showChannel)

  // Sites: a principal's own, preselected; others 'all' or a choice among the map's sites.
  const bound = isSiteBound(user.role)
  const own = user.sites ?? []
  const choices: readonly SiteChoice[] = bound ? own.map((id) => ({ id, name: deps.siteName(id) ?? id })) : deps.sites()
  const sitesError = errorLine('sites')
  const sitesHint = h('p', { id: uid('subscription-sites-hint'), class: 'field-hint' })
  const radioName = uid('subscription-sites-mode')
  const allRadio = h('input', {
    type: 'radio',
    name: radioName,
    value: 'all',
    checked: true,
    'data-testid': 'subscription-sites-all',
  })
  const chosenRadio = h('input', {
    type: 'radio',
    name: radioName,
    value: 'chosen',
    'data-testid': 'subscription-sites-chosen',
  })
  const boxes = choices.map((site) => ({
    id: site.id,
    box: h('input', {
      type: 'checkbox',
      value: site.id,
      checked: bound,
      'data-testid': 'subscription-site',
      'data-site-id': site.id,
    }),
    name: site.name,
  }))
  const siteList = h(
    'div',
    { class: 'site-choices', 'data-testid': 'subscription-site-list' },
    ...boxes.map(({ box, name }) => h('label', { class: 'check' }, box, h('span', {}, name))),
  )
  const noSites = bind(h('p', { class: 'muted' }), () => t('sitesNone'))
  noSites.hidden = boxes.length > 0
  const sitesFieldset = h(
    'fieldset',
    {
      class: 'sites-fieldset',
      'data-testid': 'subscription-sites',
      'aria-describedby': `${sitesHint.id} ${sitesError.id} ${summaryId}`,
    },
    bind(h('legend', {}), () => t('fieldSites')),
    bound
      ? null
      : h(
          'div',
          { class: 'site-mode' },
          h(
            'label',
            { class: 'check' },
            allRadio,
            bind(h('span'), () => t('sitesAll')),
          ),
          h(
            'label',
            { class: 'check' },
            chosenRadio,
            bind(h('span'), () => t('sitesChosen')),
          ),
        ),
    siteList,
    noSites,
    sitesHint,
    sitesError.el,
  )
  bind(sitesHint, () => (bound ? t('sitesOwnHint') : ''))
  sitesHint.hidden = !bound
  controls.set('sites', bound ? (boxes[0]?.box ?? sitesFieldset) : allRadio)
  function showSiteMode(): void {
    siteList.hidden = !bound && !chosenRadio.checked
  }
  allRadio.addEventListener('change', showSiteMode)
  chosenRadio.addEventListener('change', showSiteMode)
  showSiteMode()

  // Lowest level and language.
  const severity = select('minSeverity', 'subscription-severity')
  for (const value of SEVERITIES) {
    severity.append(bind(h('option', { value, selected: value === 'warning' }), () => t(`severity_${value}`)))
  }
  const language = select('language', 'subscription-language')
  for (const value of ALERT_LANGUAGES) {
    language.append(h('option', { value, lang: value, selected: value === deps.lang() }, LANG_NAMES[value]))
  }

  // Quiet hours: on with the default schedule; one window and the two whole-day switches.
  const [defaultWindow] = DEFAULT_QUIET_HOURS.windows
  const quietOn = h('input', { type: 'checkbox', checked: true, 'data-testid': 'subscription-quiet' })
  const quietError = errorLine('quiet')
  controls.set('quiet', quietOn)
  const quietFrom = h('input', {
    id: uid('quiet-from'),
    type: 'time',
    step: 60,
    value: defaultWindow.from,
    'data-testid': 'quiet-from',
  })
  const quietTo = h('input', {
    id: uid('quiet-to'),
    type: 'time',
    step: 60,
    value: defaultWindow.to,
    'data-testid': 'quiet-to',
  })
  const weekends = h('input', {
    type: 'checkbox',
    checked: DEFAULT_QUIET_HOURS.weekends,
    'data-testid': 'quiet-weekends',
  })
  const holidays = h('input', {
    type: 'checkbox',
    checked: DEFAULT_QUIET_HOURS.holidays,
    'data-testid': 'quiet-holidays',
  })
  const quietHint = bind(h('p', { id: uid('quiet-hint'), class: 'field-hint' }), () => t('quietHint'))
  const quietDetails = h(
    'div',
    { class: 'quiet-details', 'data-testid': 'quiet-details' },
    h(
      'div',
      { class: 'quiet-times' },
      labelled('quietFrom', 'quietFrom', quietFrom),
      labelled('quietTo', 'quietTo', quietTo),
    ),
    h(
      'label',
      { class: 'check' },
      weekends,
      bind(h('span'), () => t('quietWeekends')),
    ),
    h(
      'label',
      { class: 'check' },
      holidays,
      bind(h('span'), () => t('quietHolidays')),
    ),
  )
  const quietFieldset = h(
    'fieldset',
    {
      class: 'quiet-fieldset',
      'data-testid': 'subscription-quiet-hours',
      'aria-describedby': `${quietHint.id} ${quietError.id} ${summaryId}`,
    },
    bind(h('legend', {}), () => t('quietToggle')),
    h(
      'label',
      { class: 'check' },
      quietOn,
      bind(h('span'), () => t('quietToggle')),
    ),
    quietDetails,
    quietHint,
    quietError.el,
  )
  quietOn.addEventListener('change', () => {
    quietDetails.hidden = !quietOn.checked
  })

  const submit = bind(h('button', { type: 'submit', class: 'primary', 'data-testid': 'subscription-submit' }), () =>
    t('subscriptionSubmit'),
  )
  const element = h(
    'form',
    {
      class: 'subscription-form',
      'data-testid': 'subscription-form',
      novalidate: true,
      'aria-labelledby': headingId,
    },
    bind(h('h3', { id: headingId }), () => t('subscriptionNew')),
    summary,
    labelled('topic', 'fieldTopic', topic),
    labelled('channel', 'fieldChannel', channel),
    targetField,
    inAppHint,
    sitesFieldset,
    labelled('minSeverity', 'fieldSeverity', severity),
    labelled('language', 'fieldLanguage', language),
    quietFieldset,
    h('div', { class: 'form-actions' }, submit),
  )
  showChannel()

  function show(next: FormFailure | null): void {
    failure = next
    summary.textContent = next?.summary() ?? ''
    summary.hidden = next === null
    for (const [field, el] of errors) {
      const messages = next?.inline.get(field)
      el.textContent = messages?.join(' ') ?? ''
      el.hidden = messages === undefined
      const control = controls.get(field)
      if (control instanceof HTMLInputElement || control instanceof HTMLSelectElement) {
        control.setAttribute('aria-invalid', String(messages !== undefined))
      }
    }
    sitesFieldset.classList.toggle('invalid', next?.inline.has('sites') ?? false)
    quietFieldset.classList.toggle('invalid', next?.inline.has('quiet') ?? false)
  }

  return {
    element,
    texts,
    values() {
      const chosen = boxes.filter((b) => b.box.checked).map((b) => b.id)
      const topicValue: SubscriptionTopic = isTopic(topic.value) ? topic.value : (topics[0] ?? 'breaches')
      const severityValue: Severity = SEVERITIES.find((s) => s === severity.value) ?? 'warning'
      const languageValue: AlertLanguage = ALERT_LANGUAGES.find((l) => l === language.value) ?? 'sv'
      return {
        topic: topicValue,
        channel: shownChannel,
        target: target.value,
        sites: bound || chosenRadio.checked ? chosen : 'all',
        minSeverity: severityValue,
        language: languageValue,
        quiet: quietOn.checked
          ? { from: quietFrom.value, to: quietTo.value, weekends: weekends.checked, holidays: holidays.checked }
          : null,
      }
    },
    show,
    focusFirstInvalid(next) {
      const order: readonly FormField[] = [
        'topic',
        'channel',
        'target',
        'sites',
        'minSeverity',
        'language',
        'quiet',
        'quietFrom',
        'quietTo',
      ]
      const first = order.find((field) => next.inline.has(field))
      const control = first === undefined ? undefined : controls.get(first)
      if (control !== undefined && !control.closest('[hidden]')) control.focus()
      else submit.focus()
    },
    setBusy(busy) {
      submit.disabled = busy
    },
  }
}
