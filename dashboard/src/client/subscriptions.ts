import type { Severity } from './breaches.ts'
import type { MessageKey } from './messages.ts'
import type { ProblemIssue, QuietHoursData, SubscriptionData } from './schemas.ts'

/**
 * Alert subscriptions and the delivery log as the page uses them (issue 4), free of the DOM so they can be
 * tested in Node: who may subscribe to what, the request body of the "My alerts" form, where the API's 400
 * errors belong in the form, and short descriptions of a subscription. Core's subscriptions.ts, alert-policy.ts
 * and access.ts and storage's OUTBOX_STATUSES hold the truth but build zod schemas at load, which would pull the
 * full zod into the bundle; the few facts needed here are repeated and subscriptions.test.ts checks them.
 */

/** Core SUBSCRIPTION_TOPICS (subscriptions.ts). */
export const SUBSCRIPTION_TOPICS = ['breaches', 'device-health'] as const
export type SubscriptionTopic = (typeof SUBSCRIPTION_TOPICS)[number]

/** Core ALERT_CHANNELS (subscriptions.ts), in the order the form offers them. */
export const ALERT_CHANNELS = ['email', 'webhook', 'in_app'] as const
export type AlertChannel = (typeof ALERT_CHANNELS)[number]

/** Core ALERT_LANGUAGES (alert-messages.ts): the languages alert messages are written in. */
export const ALERT_LANGUAGES = ['sv', 'en'] as const
export type AlertLanguage = (typeof ALERT_LANGUAGES)[number]

/**
 * The topics each role may subscribe to (core subscriptions.ts mayUseTopic): a principal acts on the air at
 * their school, a caretaker on broken sensors, staff and admins on both; researchers get no alerts.
 */
const TOPICS_BY_ROLE: Readonly<Record<string, readonly SubscriptionTopic[]>> = {
  admin: SUBSCRIPTION_TOPICS,
  staff: SUBSCRIPTION_TOPICS,
  principal: ['breaches'],
  caretaker: ['device-health'],
  researcher: [],
}

/** Roles holding deliveries:read (core access.ts ROLE_PERMISSIONS). */
export const DELIVERY_READER_ROLES: readonly string[] = ['admin', 'staff']

/** Roles whose subscriptions cover only their own sites (core access.ts SITE_BOUND_ROLES). */
export const SITE_BOUND_ROLES: readonly string[] = ['principal']

/** Core DEFAULT_QUIET_HOURS (alert-policy.ts, reference §5.2): evenings and nights, weekends and holidays. */
export const DEFAULT_QUIET_HOURS = {
  windows: [{ from: '18:00', to: '07:00' }],
  weekends: true,
  holidays: true,
  extraDays: [],
} as const

/** Core alert-policy.ts ALERT_TIME_ZONE: quiet hours are Swedish local time, wherever the browser is. */
export const ALERT_TIME_ZONE = 'Europe/Stockholm'

/** Storage OUTBOX_STATUSES (types.ts): the states of an outbox row, the filter of the deliveries view. */
export const OUTBOX_STATUSES = ['pending', 'sending', 'sent', 'failed', 'deferred', 'digested', 'cancelled'] as const
export type OutboxStatus = (typeof OUTBOX_STATUSES)[number]

/** Outbox rows per page of the deliveries view (the API's default page, api/src/routes/alerts.ts). */
export const DELIVERIES_LIMIT = 100

export const SUBSCRIPTIONS_PATH = '/api/v1/subscriptions'
export const DELIVERIES_PATH = '/api/v1/deliveries'

/** Sites named in a subscription's summary before "and N more". */
export const SUMMARY_SITES_MAX = 3

/** The topics `role` may subscribe to, in core's order; none for an unknown role or nobody. */
export function topicsFor(role: string | null | undefined): readonly SubscriptionTopic[] {
  if (role === null || role === undefined) return []
  return TOPICS_BY_ROLE[role] ?? []
}

/** Whether the role holds alerts:subscribe (every role with a topic). */
export function maySubscribe(role: string | null | undefined): boolean {
  return topicsFor(role).length > 0
}

export function mayReadDeliveries(role: string | null | undefined): boolean {
  return role !== null && role !== undefined && DELIVERY_READER_ROLES.includes(role)
}

export function isSiteBound(role: string | null | undefined): boolean {
  return role !== null && role !== undefined && SITE_BOUND_ROLES.includes(role)
}

export function isTopic(value: string): value is SubscriptionTopic {
  return (SUBSCRIPTION_TOPICS as readonly string[]).includes(value)
}

export function isChannel(value: string): value is AlertChannel {
  return (ALERT_CHANNELS as readonly string[]).includes(value)
}

export function isOutboxStatus(value: string): value is OutboxStatus {
  return (OUTBOX_STATUSES as readonly string[]).includes(value)
}

/** What the "new subscription" form holds. */
export interface SubscriptionFormValues {
  readonly topic: SubscriptionTopic
  readonly channel: AlertChannel
  /** The e-mail address or webhook URL as typed; ignored for in_app. */
  readonly target: string
  readonly sites: 'all' | readonly string[]
  readonly minSeverity: Severity
  readonly language: AlertLanguage
  /** null: send at any time. One window (the form's from/to) and the two whole-day switches. */
  readonly quiet: {
    readonly from: string
    readonly to: string
    readonly weekends: boolean
    readonly holidays: boolean
  } | null
}

/**
 * The body of `POST /subscriptions` (core subscriptionInputSchema). The target is trimmed (a paste brings
 * spaces) and left out for in-app notifications, which have none; everything else goes as chosen, so the
 * API's rules (address, https, overlapping or empty windows) are the only ones and its messages are shown.
 */
export function subscriptionBody(values: SubscriptionFormValues): Record<string, unknown> {
  const target = values.target.trim()
  return {
    topic: values.topic,
    channel: values.channel,
    ...(values.channel === 'in_app' || target === '' ? {} : { target }),
    sites: values.sites === 'all' ? 'all' : [...values.sites],
    minSeverity: values.minSeverity,
    language: values.language,
    quietHours:
      values.quiet === null
        ? null
        : {
            windows: [{ from: values.quiet.from, to: values.quiet.to }],
            weekends: values.quiet.weekends,
            holidays: values.quiet.holidays,
          },
  }
}

/** The form's controls that an API error can point at. */
export const FORM_FIELDS = [
  'topic',
  'channel',
  'target',
  'sites',
  'minSeverity',
  'language',
  'quietFrom',
  'quietTo',
  'quiet',
] as const
export type FormField = (typeof FORM_FIELDS)[number]

/**
 * The control an error path of the API's 400 belongs to (api/src/problem.ts: zod paths joined with dots), or
 * null for one the form has no control for (it is then said above the form).
 */
export function issueField(path: string): FormField | null {
  const parts = path.split('.')
  const [head] = parts
  switch (head) {
    case 'topic':
    case 'channel':
    case 'target':
    case 'sites':
    case 'minSeverity':
    case 'language':
      return head
    case 'quietHours': {
      // quietHours.windows.0.from / .to: the form's one window; anything else about the quiet hours as a whole.
      const last = parts.at(-1)
      if (parts[1] === 'windows' && parts.length === 4 && parts[2] === '0') {
        if (last === 'from') return 'quietFrom'
        if (last === 'to') return 'quietTo'
      }
      return 'quiet'
    }
    default:
      return null
  }
}

/** A 400's errors by form control (the API's words, in order), and those the form has no control for. */
export function placeIssues(issues: readonly ProblemIssue[]): {
  readonly inline: ReadonlyMap<FormField, readonly string[]>
  readonly other: readonly ProblemIssue[]
} {
  const inline = new Map<FormField, string[]>()
  const other: ProblemIssue[] = []
  for (const issue of issues) {
    const field = issueField(issue.path)
    if (field === null) {
      other.push(issue)
      continue
    }
    const list = inline.get(field) ?? []
    list.push(issue.message)
    inline.set(field, list)
  }
  return { inline, other }
}

export function topicKey(topic: string): MessageKey | null {
  return isTopic(topic) ? `topic_${topic}` : null
}

export function channelKey(channel: string): MessageKey | null {
  return isChannel(channel) ? `channel_${channel}` : null
}

export function statusKey(status: string): MessageKey | null {
  return isOutboxStatus(status) ? `outbox_${status}` : null
}

type T = (key: MessageKey, params?: Readonly<Record<string, string | number>>) => string

/** "Testskolan B, Testförskolan A och 2 till": the sites by name (or id), at most SUMMARY_SITES_MAX. */
export function sitesSummary(t: T, sites: 'all' | readonly string[], name: (id: string) => string | null): string {
  if (sites === 'all') return t('subscriptionSitesAll')
  const names = sites.slice(0, SUMMARY_SITES_MAX).map((id) => name(id) ?? id)
  const more = sites.length - names.length
  return more > 0 ? t('subscriptionSitesMore', { sites: names.join(', '), n: more }) : names.join(', ')
}

/** "Tysta timmar 18:00–07:00, helger och helgdagar", or that alerts come at any time. */
export function quietSummary(t: T, quiet: QuietHoursData | null): string {
  if (quiet === null) return t('quietNone')
  const parts = quiet.windows.map((w) => `${w.from}–${w.to}`)
  if (quiet.weekends) parts.push(t('quietWeekendsShort'))
  if (quiet.holidays) parts.push(t('quietHolidaysShort'))
  const extra = quiet.extraDays?.length ?? 0
  if (extra > 0) parts.push(t(extra === 1 ? 'quietExtraDayOne' : 'quietExtraDays', { n: extra }))
  return parts.length === 0 ? t('quietNone') : t('quietSummary', { parts: parts.join(', ') })
}

/** The subscription in words for its list item and its delete button: topic and channel with target. */
export function subscriptionTitle(t: T, s: Pick<SubscriptionData, 'topic' | 'channel' | 'target'>): string {
  const topic = topicKey(s.topic)
  const channel = channelKey(s.channel)
  const params = {
    topic: topic === null ? s.topic : t(topic),
    channel: channel === null ? s.channel : t(channel),
  }
  return s.target === null
    ? t('subscriptionTitle', params)
    : t('subscriptionTitleTarget', { ...params, target: s.target })
}
