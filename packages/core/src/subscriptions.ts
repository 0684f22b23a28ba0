import { z } from 'zod'
import type { Role } from './access.ts'
import { ALERT_LANGUAGES } from './alert-messages.ts'
import { DEFAULT_QUIET_HOURS, QuietHours } from './alert-policy.ts'
import { SiteId } from './ids.ts'
import { SEVERITIES } from './thresholds.ts'

/**
 * Alert subscriptions (issue 4, "Subscriptions"): a principal to their own sites' breaches, staff to all, a
 * caretaker to device health; principals are never alerted about a broken sensor. The schema refuses input
 * that cannot work with a clear message (an e-mail address that cannot be valid, a webhook that is not https
 * in production, overlapping quiet hours, an unknown site when the caller knows the sites).
 */
export const SUBSCRIPTION_TOPICS = ['breaches', 'device-health'] as const
export type SubscriptionTopic = (typeof SUBSCRIPTION_TOPICS)[number]

export const ALERT_CHANNELS = ['email', 'webhook', 'in_app'] as const
export type AlertChannel = (typeof ALERT_CHANNELS)[number]

/** RFC 5321 §4.5.3.1.3: a forward path is at most 256 octets including the angle brackets, so 254 for the address. */
export const MAX_EMAIL_LENGTH = 254
/** Far above any real webhook URL (Teams incoming webhooks are ~400 characters); keeps rows and logs small. */
export const MAX_WEBHOOK_URL_LENGTH = 2048
/** Site ids per subscription; more than a municipality's schools, and 'all' covers the rest. */
export const MAX_SUBSCRIPTION_SITES = 500

/** Hosts a webhook may reach over plain http outside production (a receiver on the developer's machine). */
const LOOPBACK_HOSTS: ReadonlySet<string> = new Set(['localhost', '127.0.0.1', '[::1]'])

const Email = z.email({ message: 'not a valid e-mail address' }).max(MAX_EMAIL_LENGTH, {
  message: `an e-mail address has at most ${MAX_EMAIL_LENGTH} characters`,
})

/** The webhook URL's problem, or null when it is acceptable. */
function webhookProblem(target: string, production: boolean): string | null {
  if (target.length > MAX_WEBHOOK_URL_LENGTH) return `a webhook URL has at most ${MAX_WEBHOOK_URL_LENGTH} characters`
  let url: URL
  try {
    url = new URL(target)
  } catch {
    return 'not a valid URL'
  }
  if (url.username !== '' || url.password !== '') {
    return 'a webhook URL must not contain a user name or password; the request is signed instead'
  }
  if (url.protocol === 'https:') return null
  if (url.protocol !== 'http:') return `a webhook URL must be https, not ${url.protocol.replace(/:$/, '')}`
  if (production) return 'a webhook URL must be https in production'
  if (!LOOPBACK_HOSTS.has(url.hostname)) return 'plain http is allowed only to localhost or 127.0.0.1; use https'
  return null
}

function unknown(field: string, input: unknown, known: readonly string[]): string {
  const list = `(known: ${known.join(', ')})`
  return input === undefined ? `${field} is required ${list}` : `unknown ${field} ${JSON.stringify(input)} ${list}`
}

export interface SubscriptionSchemaOptions {
  /** Production refuses plain-http webhooks, even to localhost. */
  readonly production: boolean
  /** When given, site ids outside it are refused as unknown. */
  readonly knownSites?: ReadonlySet<string>
}

/**
 * The input of a new subscription. `target` is the e-mail address (email), the URL (webhook), and absent for
 * in_app; it comes out as `string | null` (e-mail domains lower-cased). `quietHours` defaults to the
 * reference §5.2 evenings-and-weekends schedule; null means "send at any time".
 */
export function subscriptionInputSchema(opts: SubscriptionSchemaOptions) {
  const known = opts.knownSites
  return z
    .object({
      topic: z.enum(SUBSCRIPTION_TOPICS, {
        error: (issue) => unknown('topic', issue.input, SUBSCRIPTION_TOPICS),
      }),
      channel: z.enum(ALERT_CHANNELS, {
        error: (issue) => unknown('channel', issue.input, ALERT_CHANNELS),
      }),
      target: z.string().trim().min(1).optional(),
      // Length and duplicates are checked below: inside a union, zod would report them as a bare "Invalid input".
      sites: z.union([z.literal('all'), z.array(SiteId)], {
        error: () => "sites is 'all' or a list of site ids",
      }),
      minSeverity: z.enum(SEVERITIES).default('warning'),
      language: z.enum(ALERT_LANGUAGES).default('sv'),
      quietHours: QuietHours.nullable().default(() => structuredClone(DEFAULT_QUIET_HOURS)),
    })
    .superRefine((s, ctx) => {
      const target = s.target
      if (s.channel === 'in_app') {
        if (target !== undefined) {
          ctx.addIssue({
            code: 'custom',
            path: ['target'],
            message: 'in-app notifications have no target; leave target out',
          })
        }
      } else if (target === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['target'],
          message: s.channel === 'email' ? 'an email subscription needs an e-mail address' : 'a webhook needs a URL',
        })
      } else if (s.channel === 'email') {
        const email = Email.safeParse(target)
        if (!email.success) {
          for (const issue of email.error.issues)
            ctx.addIssue({ code: 'custom', path: ['target'], message: issue.message })
        }
      } else {
        const problem = webhookProblem(target, opts.production)
        if (problem !== null) ctx.addIssue({ code: 'custom', path: ['target'], message: problem })
      }
      if (s.sites !== 'all') {
        if (s.sites.length === 0) {
          ctx.addIssue({ code: 'custom', path: ['sites'], message: "name at least one site, or 'all'" })
        }
        if (s.sites.length > MAX_SUBSCRIPTION_SITES) {
          ctx.addIssue({
            code: 'custom',
            path: ['sites'],
            message: `at most ${MAX_SUBSCRIPTION_SITES} sites; use 'all'`,
          })
        }
        if (new Set(s.sites).size !== s.sites.length) {
          ctx.addIssue({ code: 'custom', path: ['sites'], message: 'a site is listed twice' })
        }
      }
      if (known !== undefined && s.sites !== 'all') {
        s.sites.forEach((id, i) => {
          if (!known.has(id)) ctx.addIssue({ code: 'custom', path: ['sites', i], message: `unknown site '${id}'` })
        })
      }
    })
    .transform(({ target, ...rest }) => ({ ...rest, target: normaliseTarget(rest.channel, target) }))
}

export type SubscriptionInput = z.output<ReturnType<typeof subscriptionInputSchema>>

function normaliseTarget(channel: AlertChannel, target: string | undefined): string | null {
  if (target === undefined) return null
  if (channel !== 'email') return target
  // The domain is case-insensitive (RFC 5321 §2.4); the local part is left as given.
  const at = target.lastIndexOf('@')
  return `${target.slice(0, at)}@${target.slice(at + 1).toLowerCase()}`
}

const TOPICS_BY_ROLE: Readonly<Record<Role, readonly SubscriptionTopic[]>> = {
  admin: SUBSCRIPTION_TOPICS,
  staff: SUBSCRIPTION_TOPICS,
  // Principals act on the air at their school; a broken sensor is the caretaker's (issue 4).
  principal: ['breaches'],
  caretaker: ['device-health'],
  // Researchers read and export series; they get no alerts.
  researcher: [],
  // The platform's own services (API tokens only) read the registry; they take no alerts.
  service: [],
}

/** Whether a role may subscribe to a topic (which sites it may cover is access.ts sitesFor's business). */
export function mayUseTopic(role: Role, topic: SubscriptionTopic): boolean {
  return TOPICS_BY_ROLE[role].includes(topic)
}
