import { describe, expect, it } from 'vitest'
import { ROLES } from './access.ts'
import { DEFAULT_QUIET_HOURS } from './alert-policy.ts'
import { ALERT_CHANNELS, mayUseTopic, SUBSCRIPTION_TOPICS, subscriptionInputSchema } from './subscriptions.ts'

const production = subscriptionInputSchema({ production: true })
const development = subscriptionInputSchema({ production: false })

function problems(schema: ReturnType<typeof subscriptionInputSchema>, input: unknown): string[] {
  const result = schema.safeParse(input)
  return result.success ? [] : result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`)
}

const EMAIL = { topic: 'breaches', channel: 'email', target: 'rektor@Skola.Lund.SE', sites: ['faladen'] }

describe('subscriptionInputSchema', () => {
  it('fills the defaults: warning and up, Swedish, the reference §5.2 quiet hours', () => {
    const parsed = production.parse(EMAIL)
    expect(parsed).toEqual({
      topic: 'breaches',
      channel: 'email',
      target: 'rektor@skola.lund.se',
      sites: ['faladen'],
      minSeverity: 'warning',
      language: 'sv',
      quietHours: DEFAULT_QUIET_HOURS,
    })
    // The default is a copy: changing one subscription's quiet hours does not change the default.
    expect(parsed.quietHours).not.toBe(DEFAULT_QUIET_HOURS)
  })

  it('accepts all sites, no quiet hours, English and a chosen severity', () => {
    const parsed = production.parse({ ...EMAIL, sites: 'all', quietHours: null, language: 'en', minSeverity: 'alert' })
    expect(parsed.sites).toBe('all')
    expect(parsed.quietHours).toBeNull()
    expect(parsed.language).toBe('en')
    expect(parsed.minSeverity).toBe('alert')
  })

  it('keeps the local part of an address as given and lower-cases only the domain', () => {
    expect(production.parse({ ...EMAIL, target: ' Anna.Berg@LUND.se ' }).target).toBe('Anna.Berg@lund.se')
  })

  it.each([
    ['no at sign', 'rektor.lund.se'],
    ['no domain', 'rektor@'],
    ['spaces', 'rek tor@lund.se'],
    ['two at signs', 'a@b@lund.se'],
  ])('refuses an e-mail address that cannot be valid (%s)', (_, target) => {
    expect(problems(production, { ...EMAIL, target })).toEqual(['target: not a valid e-mail address'])
  })

  it('refuses an e-mail address longer than 254 characters', () => {
    const target = `${'a'.repeat(64)}@${'b'.repeat(60)}.${'c'.repeat(60)}.${'d'.repeat(60)}.lund.se`
    expect(target.length).toBeGreaterThan(254)
    expect(problems(production, { ...EMAIL, target })).toContain('target: an e-mail address has at most 254 characters')
  })

  it('needs a target for email and webhook, and refuses one on in_app', () => {
    expect(problems(production, { ...EMAIL, target: undefined })).toEqual([
      'target: an email subscription needs an e-mail address',
    ])
    expect(problems(production, { ...EMAIL, channel: 'webhook', target: undefined })).toEqual([
      'target: a webhook needs a URL',
    ])
    expect(problems(production, { ...EMAIL, channel: 'in_app' })).toEqual([
      'target: in-app notifications have no target; leave target out',
    ])
    expect(production.parse({ ...EMAIL, channel: 'in_app', target: undefined }).target).toBeNull()
  })

  it('accepts an https webhook and refuses plain http in production, even to localhost', () => {
    const hook = { ...EMAIL, channel: 'webhook' }
    const url = 'https://hooks.lund.se/skolluft?token=abc'
    expect(production.parse({ ...hook, target: url }).target).toBe(url)
    expect(problems(production, { ...hook, target: 'http://hooks.lund.se/x' })).toEqual([
      'target: a webhook URL must be https in production',
    ])
    expect(problems(production, { ...hook, target: 'http://localhost:8080/hook' })).toEqual([
      'target: a webhook URL must be https in production',
    ])
  })

  it('allows plain http to localhost outside production, and only there', () => {
    const hook = { ...EMAIL, channel: 'webhook' }
    for (const target of ['http://localhost:8080/hook', 'http://127.0.0.1:3000/x', 'http://[::1]:9/x']) {
      expect(development.parse({ ...hook, target }).target).toBe(target)
    }
    expect(problems(development, { ...hook, target: 'http://hooks.lund.se/x' })).toEqual([
      'target: plain http is allowed only to localhost or 127.0.0.1; use https',
    ])
  })

  it('refuses webhook URLs with credentials, other schemes or no URL at all', () => {
    const hook = { ...EMAIL, channel: 'webhook' }
    expect(problems(production, { ...hook, target: 'https://user:pw@hooks.lund.se/x' })).toEqual([
      'target: a webhook URL must not contain a user name or password; the request is signed instead',
    ])
    expect(problems(development, { ...hook, target: 'ftp://hooks.lund.se/x' })).toEqual([
      'target: a webhook URL must be https, not ftp',
    ])
    expect(problems(production, { ...hook, target: 'hooks.lund.se/x' })).toEqual(['target: not a valid URL'])
    expect(problems(production, { ...hook, target: `https://h.se/${'x'.repeat(2100)}` })).toEqual([
      'target: a webhook URL has at most 2048 characters',
    ])
  })

  it('refuses an unknown channel or topic by name', () => {
    expect(problems(production, { ...EMAIL, channel: 'sms' })).toEqual([
      'channel: unknown channel "sms" (known: email, webhook, in_app)',
    ])
    expect(problems(production, { ...EMAIL, topic: 'weather' })).toEqual([
      'topic: unknown topic "weather" (known: breaches, device-health)',
    ])
    expect(problems(production, { ...EMAIL, channel: undefined })).toEqual([
      'channel: channel is required (known: email, webhook, in_app)',
    ])
  })

  it('refuses bad site lists, and unknown sites when the caller knows the sites', () => {
    expect(problems(production, { ...EMAIL, sites: [] })).toEqual(["sites: name at least one site, or 'all'"])
    expect(problems(production, { ...EMAIL, sites: ['faladen', 'faladen'] })).toEqual(['sites: a site is listed twice'])
    expect(problems(production, { ...EMAIL, sites: ['Fäladen'] })).toEqual([
      'sites.0: a site id is 1–64 lowercase letters, digits or inner hyphens',
    ])
    expect(problems(production, { ...EMAIL, sites: 'some' })).toEqual(["sites: sites is 'all' or a list of site ids"])
    expect(problems(production, { ...EMAIL, sites: Array.from({ length: 501 }, (_, i) => `s${i}`) })).toEqual([
      "sites: at most 500 sites; use 'all'",
    ])
    const known = subscriptionInputSchema({ production: true, knownSites: new Set(['faladen', 'vipan']) })
    expect(problems(known, { ...EMAIL, sites: ['vipan', 'nowhere'] })).toEqual(["sites.1: unknown site 'nowhere'"])
    expect(known.parse({ ...EMAIL, sites: 'all' }).sites).toBe('all')
  })

  it('refuses overlapping quiet hours with the QuietHours message', () => {
    const quietHours = {
      windows: [
        { from: '18:00', to: '07:00' },
        { from: '06:00', to: '08:00' },
      ],
      weekends: true,
      holidays: true,
    }
    expect(problems(production, { ...EMAIL, quietHours })).toEqual([
      'quietHours.windows.1: quiet windows 18:00–07:00 and 06:00–08:00 overlap; merge them into one window',
    ])
  })

  it('knows the channels and topics', () => {
    expect(ALERT_CHANNELS).toEqual(['email', 'webhook', 'in_app'])
    expect(SUBSCRIPTION_TOPICS).toEqual(['breaches', 'device-health'])
  })
})

describe('mayUseTopic', () => {
  it('gives principals breaches only, caretakers device health only, staff and admins both, researchers and services none', () => {
    const table = Object.fromEntries(
      ROLES.map((role) => [role, SUBSCRIPTION_TOPICS.filter((t) => mayUseTopic(role, t))]),
    )
    expect(table).toEqual({
      admin: ['breaches', 'device-health'],
      staff: ['breaches', 'device-health'],
      principal: ['breaches'],
      caretaker: ['device-health'],
      researcher: [],
      service: [],
    })
  })
})
