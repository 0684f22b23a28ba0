import {
  type AlertLanguage,
  DEFAULT_RATE_LIMIT,
  decideDelivery,
  mayUseTopic,
  renderAlert,
  SEVERITIES,
  type Severity,
} from '@skolluft/core'
import { deriveSecret, type Logger } from '@skolluft/runtime'
import type { AlertEventRecord, NewOutboxMessage, Storage, SubscriptionRecord, UserRecord } from '@skolluft/storage'
import { AlertEventData } from './event-data.ts'
import type { Links } from './links.ts'

/**
 * Fan-out: each live alert event becomes one outbox message per matching subscription, in ONE transaction per
 * event (storage `fanOut`, unique per event and subscription), so a crash between events repeats nothing and
 * loses nothing. Here the policy is applied: who may get what (a principal only their own sites and never
 * device health), minimum severity, quiet hours and the per-recipient rate limit (deferred into a digest, never
 * dropped), and the message is rendered in the subscriber's language.
 */
export interface FanOut {
  /** Fans out pending events; returns the number of outbox messages created. */
  run(): Promise<number>
}

/** Events fanned out per storage round trip. */
const FAN_OUT_BATCH = 100

export interface FanOutOptions {
  readonly storage: Pick<Storage, 'alerts' | 'access'>
  readonly clock: () => number
  readonly links: Links
  readonly masterKey: Buffer
  readonly rateLimit?: { readonly max: number; readonly windowMs: number }
  readonly log: Logger
}

const rank = (s: Severity): number => SEVERITIES.indexOf(s)

export function createFanOut(options: FanOutOptions): FanOut {
  const { storage, clock, links, masterKey } = options
  const log = options.log.child({ module: 'fan-out' })
  const rateLimit = options.rateLimit ?? DEFAULT_RATE_LIMIT

  function matches(sub: SubscriptionRecord, user: UserRecord, event: AlertEventRecord): boolean {
    if (sub.disabledAt !== null || sub.topic !== event.topic || user.disabledAt !== null) return false
    if (!mayUseTopic(user.role, sub.topic)) return false
    if (event.siteId !== null) {
      if (sub.sites !== 'all' && !sub.sites.includes(event.siteId)) return false
      // A principal's binding may have changed since they subscribed: the binding decides, not the subscription.
      if (user.role === 'principal' && !user.sites.includes(event.siteId)) return false
    }
    return rank(event.severity) >= rank(sub.minSeverity)
  }

  return {
    async run() {
      let created = 0
      for (;;) {
        const events = await storage.alerts.pendingFanOut(FAN_OUT_BATCH)
        if (events.length === 0) return created
        const subscriptions = await storage.alerts.listSubscriptions({})
        const users = new Map<string, UserRecord | undefined>()
        // Deliveries counted in this run, per user and channel, on top of what storage reports (rate limit). Per
        // channel: in-app notifications cost the recipient nothing and must not hold back their e-mail (an
        // incident's opened + 2 escalations + closed is 8 rows with in-app + e-mail, over the limit of 6).
        const counted = new Map<string, { count: number; oldest: number | null }>()
        for (const event of events) {
          const now = clock()
          const parsed = AlertEventData.safeParse(event.data)
          const messages: NewOutboxMessage[] = []
          if (!parsed.success) {
            // Cannot be rendered (a bug, or data from an older version): recorded as fanned out to nobody, loudly.
            log.error({ eventId: event.id, reason: parsed.error.issues[0]?.message }, 'alert event has invalid data')
            await storage.alerts.fanOut(event.id, [], now)
            continue
          }
          const data = parsed.data
          for (const sub of subscriptions) {
            if (!users.has(sub.userId)) users.set(sub.userId, await storage.access.getUser(sub.userId))
            const user = users.get(sub.userId)
            if (user === undefined || !matches(sub, user, event)) continue
            const recipient = `${sub.userId}\0${sub.channel}`
            let recent = counted.get(recipient)
            if (recent === undefined) {
              recent = await storage.alerts.recentDeliveries(sub.userId, now - rateLimit.windowMs, sub.channel)
              counted.set(recipient, recent)
            }
            const decision = decideDelivery({
              now,
              urgent: event.urgent,
              quiet: sub.quietHours,
              sentInWindow: recent.count,
              oldestSentInWindow: recent.oldest,
              rateLimit,
            })
            if (decision.action === 'send') {
              recent.count += 1
              recent.oldest ??= now
            }
            const language: AlertLanguage = sub.language
            const unsubscribe = links.unsubscribe(sub.id, deriveSecret(masterKey, 'unsubscribe', sub.id))
            const rendered = renderAlert(data, language, {
              dashboard: links.site(event.siteId),
              unsubscribe: sub.channel === 'in_app' ? null : unsubscribe,
            })
            messages.push({
              subscriptionId: sub.id,
              userId: sub.userId,
              channel: sub.channel,
              target: sub.target,
              status: decision.action === 'send' ? 'pending' : 'deferred',
              deliverAfter: decision.at,
              subject: rendered.subject,
              text: rendered.text,
              html: rendered.html,
              language,
              payload: {
                event: { id: event.id, kind: event.kind, topic: event.topic, severity: event.severity, at: event.at },
                data,
                links: { dashboard: links.site(event.siteId) },
              },
            })
          }
          created += await storage.alerts.fanOut(event.id, messages, now)
        }
      }
    },
  }
}
