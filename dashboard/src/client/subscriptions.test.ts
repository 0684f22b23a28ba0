import {
  ALERT_CHANNELS as CORE_CHANNELS,
  ALERT_LANGUAGES as CORE_LANGUAGES,
  DEFAULT_QUIET_HOURS as CORE_QUIET,
  ALERT_TIME_ZONE as CORE_TIME_ZONE,
  SUBSCRIPTION_TOPICS as CORE_TOPICS,
  isSiteBound as coreSiteBound,
  mayUseTopic,
  ROLES,
  rolePermissions,
  subscriptionInputSchema,
} from '@skolluft/core'
import { OUTBOX_STATUSES as STORAGE_STATUSES } from '@skolluft/storage'
import { describe, expect, it } from 'vitest'
import { deliveriesUrl } from './deliveries-view.ts'
import { translate } from './i18n.ts'
import { LANGS, type Lang, type MessageKey } from './messages.ts'
import {
  ALERT_CHANNELS,
  ALERT_LANGUAGES,
  ALERT_TIME_ZONE,
  channelKey,
  DEFAULT_QUIET_HOURS,
  isSiteBound,
  issueField,
  mayReadDeliveries,
  maySubscribe,
  OUTBOX_STATUSES,
  placeIssues,
  quietSummary,
  SUBSCRIPTION_TOPICS,
  type SubscriptionFormValues,
  sitesSummary,
  statusKey,
  subscriptionBody,
  subscriptionTitle,
  topicKey,
  topicsFor,
} from './subscriptions.ts'

const tr = (lang: Lang) => (key: MessageKey, params?: Readonly<Record<string, string | number>>) =>
  translate(lang, key, params)

const FORM: SubscriptionFormValues = {
  topic: 'breaches',
  channel: 'email',
  target: '  rektor@skola.lund.se ',
  sites: ['site-b'],
  minSeverity: 'warning',
  language: 'sv',
  quiet: { from: '18:00', to: '07:00', weekends: true, holidays: true },
}

describe('subscription facts repeated from core and storage', () => {
  it('has the topics, channels, languages and time zone of core', () => {
    expect(SUBSCRIPTION_TOPICS).toEqual(CORE_TOPICS)
    expect(ALERT_CHANNELS).toEqual(CORE_CHANNELS)
    expect(ALERT_LANGUAGES).toEqual(CORE_LANGUAGES)
    expect(ALERT_TIME_ZONE).toBe(CORE_TIME_ZONE)
    // Every alert language is a page language, so the form can offer it by name.
    for (const lang of ALERT_LANGUAGES) expect(LANGS).toContain(lang)
  })

  it('offers each role exactly the topics core lets it use', () => {
    for (const role of ROLES) {
      expect(topicsFor(role), role).toEqual(CORE_TOPICS.filter((topic) => mayUseTopic(role, topic)))
      expect(maySubscribe(role), role).toBe(rolePermissions(role).includes('alerts:subscribe'))
      expect(mayReadDeliveries(role), role).toBe(rolePermissions(role).includes('deliveries:read'))
      expect(isSiteBound(role), role).toBe(coreSiteBound(role))
    }
    expect(topicsFor('principal')).toEqual(['breaches'])
    expect(topicsFor('caretaker')).toEqual(['device-health'])
    expect(topicsFor(null)).toEqual([])
    expect(topicsFor('someone new')).toEqual([])
    expect(mayReadDeliveries(undefined)).toBe(false)
  })

  it('has the default quiet hours of core', () => {
    expect(DEFAULT_QUIET_HOURS).toEqual(CORE_QUIET)
  })

  it('has the outbox statuses of storage, each with a label', () => {
    expect(OUTBOX_STATUSES).toEqual(STORAGE_STATUSES)
    for (const status of OUTBOX_STATUSES) expect(statusKey(status)).not.toBeNull()
    expect(statusKey('bounced')).toBeNull()
  })
})

describe('the new-subscription request', () => {
  it('is what core accepts, with the target trimmed and one quiet window', () => {
    const body = subscriptionBody(FORM)
    expect(body).toEqual({
      topic: 'breaches',
      channel: 'email',
      target: 'rektor@skola.lund.se',
      sites: ['site-b'],
      minSeverity: 'warning',
      language: 'sv',
      quietHours: { windows: [{ from: '18:00', to: '07:00' }], weekends: true, holidays: true },
    })
    const parsed = subscriptionInputSchema({ production: true }).safeParse(body)
    expect(parsed.success).toBe(true)
    // The form's defaults are core's: nothing changes when the API fills them in.
    expect(parsed.data?.quietHours).toEqual(CORE_QUIET)
  })

  it('leaves the target out of an in-app subscription and sends null quiet hours when they are off', () => {
    const body = subscriptionBody({ ...FORM, channel: 'in_app', target: 'left over', sites: 'all', quiet: null })
    expect(body).not.toHaveProperty('target')
    expect(body).toMatchObject({ sites: 'all', quietHours: null })
    expect(subscriptionInputSchema({ production: true }).safeParse(body).success).toBe(true)
  })

  it('sends an empty address as none, so the API says that one is needed', () => {
    const body = subscriptionBody({ ...FORM, target: '   ' })
    expect(body).not.toHaveProperty('target')
    const parsed = subscriptionInputSchema({ production: true }).safeParse(body)
    expect(parsed.error?.issues.map((i) => [i.path.join('.'), i.message])).toEqual([
      ['target', 'an email subscription needs an e-mail address'],
    ])
  })
})

describe('the API errors in the form', () => {
  it('places each error path of core at a form control', () => {
    const schema = subscriptionInputSchema({ production: true, knownSites: new Set(['site-a']) })
    // Shape errors (zod stops there), then the rules checked on a well-formed input.
    const shape = schema.safeParse({
      topic: 'weather',
      channel: 'email',
      sites: ['site-a'],
      minSeverity: 'panic',
      language: 'de',
      quietHours: { windows: [{ from: '25:00', to: '07:00' }], weekends: 'yes', holidays: true },
    })
    const rules = schema.safeParse({
      topic: 'breaches',
      channel: 'email',
      target: 'rektor@@skola',
      sites: ['site-a', 'nowhere'],
      quietHours: {
        windows: [
          { from: '18:00', to: '07:00' },
          { from: '06:00', to: '08:00' },
        ],
        weekends: true,
        holidays: true,
      },
    })
    const paths = [...(shape.error?.issues ?? []), ...(rules.error?.issues ?? [])].map((i) => i.path.join('.'))
    expect(paths).toEqual([
      'topic',
      'minSeverity',
      'language',
      'quietHours.windows.0.from',
      'quietHours.weekends',
      'quietHours.windows.1',
      'target',
      'sites.1',
    ])
    for (const path of paths) expect(issueField(path), path).not.toBeNull()
    expect(issueField('target')).toBe('target')
    expect(issueField('sites.1')).toBe('sites')
    expect(issueField('quietHours.windows.0.from')).toBe('quietFrom')
    expect(issueField('quietHours.windows.0.to')).toBe('quietTo')
    expect(issueField('quietHours.windows.1')).toBe('quiet')
    expect(issueField('quietHours.weekends')).toBe('quiet')
    expect(issueField('quietHours')).toBe('quiet')
    expect(issueField('min_severity')).toBeNull()
    expect(issueField('')).toBeNull()
  })

  it('groups the messages per control in order and keeps the rest apart', () => {
    const placed = placeIssues([
      { path: 'sites.1', message: "unknown site 'a'" },
      { path: 'target', message: 'not a valid e-mail address' },
      { path: 'sites.2', message: "unknown site 'b'" },
      { path: 'min_severity', message: 'unknown field min_severity' },
    ])
    expect([...placed.inline]).toEqual([
      ['sites', ["unknown site 'a'", "unknown site 'b'"]],
      ['target', ['not a valid e-mail address']],
    ])
    expect(placed.other).toEqual([{ path: 'min_severity', message: 'unknown field min_severity' }])
  })
})

describe('subscriptions in words', () => {
  const names = new Map([
    ['site-a', 'Testförskolan A'],
    ['site-b', 'Testskolan B'],
  ])
  const name = (id: string) => names.get(id) ?? null

  it('names topic, channel and target in both languages', () => {
    const mail = { topic: 'breaches', channel: 'email', target: 'rektor@skola.lund.se' }
    expect(subscriptionTitle(tr('sv'), mail)).toBe('Överskridanden via e-post till rektor@skola.lund.se')
    expect(subscriptionTitle(tr('en'), mail)).toBe('Breaches by e-mail to rektor@skola.lund.se')
    const app = { topic: 'device-health', channel: 'in_app', target: null }
    expect(subscriptionTitle(tr('sv'), app)).toBe('Sensorernas status via klockan i appen')
    expect(subscriptionTitle(tr('en'), { topic: 'weather', channel: 'sms', target: null })).toBe('weather by sms')
    for (const topic of SUBSCRIPTION_TOPICS) expect(topicKey(topic)).not.toBeNull()
    for (const channel of ALERT_CHANNELS) expect(channelKey(channel)).not.toBeNull()
  })

  it('names the sites, at most three, and all of them', () => {
    expect(sitesSummary(tr('sv'), 'all', name)).toBe('Alla platser')
    expect(sitesSummary(tr('sv'), ['site-b', 'site-a'], name)).toBe('Testskolan B, Testförskolan A')
    expect(sitesSummary(tr('en'), ['site-a', 'site-b', 'x', 'y', 'z'], name)).toBe(
      'Testförskolan A, Testskolan B, x and 2 more',
    )
  })

  it('says the quiet hours', () => {
    expect(quietSummary(tr('sv'), CORE_QUIET)).toBe('Tysta timmar: 18:00–07:00, helger, helgdagar')
    expect(quietSummary(tr('en'), { ...CORE_QUIET, weekends: false, extraDays: ['2026-12-23'] })).toBe(
      'Quiet hours: 18:00–07:00, public holidays, 1 extra day',
    )
    expect(quietSummary(tr('sv'), null)).toBe('Skickas när som helst')
    expect(quietSummary(tr('en'), { windows: [], weekends: false, holidays: false })).toBe('Sent at any time')
  })
})

describe('the deliveries URL', () => {
  it('asks for one page, filtered and below a row id when paging', () => {
    expect(deliveriesUrl(null, null)).toBe('/api/v1/deliveries?limit=100')
    expect(deliveriesUrl('failed', 42)).toBe('/api/v1/deliveries?limit=100&status=failed&before=42')
  })
})
