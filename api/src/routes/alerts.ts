import { createHash, randomUUID } from 'node:crypto'
import {
  ALERT_CHANNELS,
  ALERT_LANGUAGES,
  mayUseTopic,
  type Principal,
  QuietHours,
  QuietWindow,
  SEVERITIES,
  SUBSCRIPTION_TOPICS,
  sitesFor,
  subscriptionInputSchema,
} from '@skolluft/core'
import { deriveSecret, verifyDerivedSecret, webhookSecret } from '@skolluft/runtime'
import {
  type DeliveryAttempt,
  OUTBOX_STATUSES,
  type OutboxRecord,
  StorageError,
  SubscriptionId,
  type SubscriptionRecord,
  type UserRecord,
} from '@skolluft/storage'
import express, { type Request, type Response, Router } from 'express'
import { z } from 'zod'
import { actorOf, audit } from '../auth/audit.ts'
import { authOf, requirePermission } from '../auth/authenticate.ts'
import { cacheNever } from '../http-headers.ts'
import type { ApiContext } from '../options.ts'
import { HttpProblem, methodNotAllowed, notFoundProblem, validationProblem } from '../problem.ts'
import { confirmPage, donePage, invalidLinkPage, UNSUBSCRIBE_PAGE_CSP } from './unsubscribe-page.ts'

/**
 * Active subscriptions per user. A person needs a handful (topic × channel); the cap keeps one account from
 * making the fan-out walk thousands of rows per event.
 */
export const MAX_SUBSCRIPTIONS_PER_USER = 50
/** Notifications per page; the dashboard's bell asks for 50 (dashboard notifications.ts). */
export const MAX_NOTIFICATIONS_LIMIT = 100
export const DEFAULT_NOTIFICATIONS_LIMIT = 50
/** Ids per mark-read call: one page of notifications. */
export const MAX_MARK_READ_IDS = 100
/** Outbox rows per page (the same cap as the reject log and the breaches list). */
export const MAX_DELIVERIES_LIMIT = 1_000
export const DEFAULT_DELIVERIES_LIMIT = 100
/** A derived secret is 43 base64url characters (HMAC-SHA256); anything much longer is not one. */
const MAX_LINK_TOKEN_CHARS = 256
/** The one-click body is `List-Unsubscribe=One-Click` (RFC 8058 §3.1); nothing bigger is needed. */
const UNSUBSCRIBE_BODY_LIMIT = '1kb'

const unknownQueryKey = {
  error: (issue: z.core.$ZodRawIssue) =>
    issue.code === 'unrecognized_keys' ? `unknown query parameter: ${issue.keys.join(', ')}` : undefined,
}

const limitParam = (max: number, fallback: number) =>
  z.coerce
    .number({ error: 'limit must be a whole number' })
    .int('limit must be a whole number')
    .min(1, 'limit must be at least 1')
    .max(max, `limit must be at most ${max}`)
    .default(fallback)

const beforeParam = z.coerce
  .number({ error: 'before must be a row id (a whole number)' })
  .int('before must be a row id (a whole number)')
  .positive('before must be a row id (a whole number)')
  .optional()

/** The body of `POST /subscriptions` as documented (core subscriptionInputSchema validates it, with its rules). */
export const SubscriptionBody = z.strictObject(subscriptionInputSchema({ production: true }).in.shape)

/** `GET /notifications` query. */
export const NotificationsQuery = z.strictObject(
  {
    unread: z
      .enum(['true', 'false'], { error: 'unread must be true or false' })
      .default('false')
      .transform((v) => v === 'true'),
    limit: limitParam(MAX_NOTIFICATIONS_LIMIT, DEFAULT_NOTIFICATIONS_LIMIT),
    before: beforeParam,
  },
  unknownQueryKey,
)

/** `POST /notifications/read` body. */
export const MarkReadBody = z.strictObject({
  ids: z
    .array(z.number().int().positive(), { error: 'ids must be a list of notification ids' })
    .min(1, 'name at least one notification id')
    .max(MAX_MARK_READ_IDS, `at most ${MAX_MARK_READ_IDS} ids per call`),
})

/** `GET /deliveries` query. */
export const DeliveriesQuery = z.strictObject(
  {
    status: z.enum(OUTBOX_STATUSES, { error: `status must be one of ${OUTBOX_STATUSES.join(', ')}` }).optional(),
    user: z.string().min(1).max(256).optional(),
    limit: limitParam(MAX_DELIVERIES_LIMIT, DEFAULT_DELIVERIES_LIMIT),
    before: beforeParam,
  },
  unknownQueryKey,
)

/** The unsubscribe link's query; other parameters (a mail client's tracking additions) are ignored. */
export const UnsubscribeQuery = z.object({ token: z.string().min(1).max(MAX_LINK_TOKEN_CHARS) })

const IsoTime = z.iso.datetime()
const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString())

/** One subscription as its owner sees it. `quiet_hours` has the shape of the `quietHours` input. */
export const SubscriptionResponse = z.object({
  id: z.string(),
  topic: z.enum(SUBSCRIPTION_TOPICS),
  channel: z.enum(ALERT_CHANNELS),
  target: z.string().nullable(),
  sites: z.union([z.literal('all'), z.array(z.string())]),
  min_severity: z.enum(SEVERITIES),
  language: z.enum(ALERT_LANGUAGES),
  quiet_hours: QuietHours.nullable(),
  created_at: IsoTime,
  disabled_at: IsoTime.nullable(),
})
export const SubscriptionListResponse = z.object({ subscriptions: z.array(SubscriptionResponse) })
export const CreatedSubscriptionResponse = SubscriptionResponse.extend({
  /** Webhooks only, in this answer only: the key of X-Skolluft-Signature (HMAC-SHA256). */
  signing_secret: z.string().optional(),
})

export const NotificationResponse = z.object({
  id: z.number().int(),
  at: IsoTime,
  subject: z.string(),
  text: z.string(),
  siteId: z.string().nullable(),
  read: z.boolean(),
})
export const NotificationListResponse = z.object({
  items: z.array(NotificationResponse),
  /** All unread notifications of the user, not only this page's. */
  unread: z.number().int(),
})
export const MarkReadResponse = z.object({ updated: z.number().int() })

export const DeliveryResponse = z.object({
  id: z.number().int(),
  created_at: IsoTime,
  channel: z.enum(ALERT_CHANNELS),
  /** The e-mail address in full (staff fix bounces); a webhook URL as its origin only (its path is often a secret). */
  target: z.string().nullable(),
  status: z.enum(OUTBOX_STATUSES),
  subject: z.string(),
  attempts: z.number().int(),
  last_error: z.string().nullable(),
  deliver_after: IsoTime,
  next_attempt_at: IsoTime,
  sent_at: IsoTime.nullable(),
  subscription: z.string(),
  user: z.string(),
  site: z.string().nullable(),
  /** The alert event; null for a digest. */
  event: z.number().int().nullable(),
  /** Set on rows that went out inside this digest row. */
  digest: z.number().int().nullable(),
  message_id: z.string(),
})
export const DeliveryListResponse = z.object({ deliveries: z.array(DeliveryResponse) })
export const AttemptResponse = z.object({
  at: IsoTime,
  ok: z.boolean(),
  error: z.string().nullable(),
  duration_ms: z.number(),
})
export const DeliveryAttemptsResponse = z.object({ delivery: DeliveryResponse, attempts: z.array(AttemptResponse) })

function publicSubscription(s: SubscriptionRecord): z.infer<typeof SubscriptionResponse> {
  return {
    id: s.id,
    topic: s.topic,
    channel: s.channel,
    target: s.target,
    sites: s.sites === 'all' ? 'all' : [...s.sites],
    min_severity: s.minSeverity,
    language: s.language,
    quiet_hours: s.quietHours === null ? null : structuredClone(s.quietHours),
    created_at: new Date(s.createdAt).toISOString(),
    disabled_at: iso(s.disabledAt),
  }
}

function publicNotification(r: OutboxRecord): z.infer<typeof NotificationResponse> {
  return {
    id: r.id,
    at: new Date(r.sentAt ?? r.createdAt).toISOString(),
    subject: r.subject,
    text: r.text,
    siteId: r.siteId,
    read: r.readAt !== null,
  }
}

/**
 * Incoming-webhook URLs of Teams and Slack carry their credential in the path
 * (`https://hooks.slack.com/services/T…/B…/<secret>`), so staff see where a webhook goes, not how to post to it.
 */
function shownTarget(r: OutboxRecord): string | null {
  if (r.channel !== 'webhook' || r.target === null) return r.target
  const url = URL.parse(r.target)
  if (url === null) return '(not a URL)'
  return url.pathname === '/' && url.search === '' ? url.origin : `${url.origin}/…`
}

function publicDelivery(r: OutboxRecord): z.infer<typeof DeliveryResponse> {
  return {
    id: r.id,
    created_at: new Date(r.createdAt).toISOString(),
    channel: r.channel,
    target: shownTarget(r),
    status: r.status,
    subject: r.subject,
    attempts: r.attempts,
    last_error: r.lastError,
    deliver_after: new Date(r.deliverAfter).toISOString(),
    next_attempt_at: new Date(r.nextAttemptAt).toISOString(),
    sent_at: iso(r.sentAt),
    subscription: r.subscriptionId,
    user: r.userId,
    site: r.siteId,
    event: r.eventId,
    digest: r.digestId,
    message_id: r.messageId,
  }
}

function publicAttempt(a: DeliveryAttempt): z.infer<typeof AttemptResponse> {
  return { at: new Date(a.at).toISOString(), ok: a.ok, error: a.error, duration_ms: a.durationMs }
}

/** The stored form of an unsubscribe token: its SHA-256, hex (the token itself is derived again when needed). */
export function unsubscribeHash(token: string): string {
  return createHash('sha256').update(token).digest('hex')
}

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v)

const BODY_KEYS = new Set(Object.keys(SubscriptionBody.shape))
const QUIET_KEYS = new Set(Object.keys(QuietHours.shape))
const WINDOW_KEYS = new Set(Object.keys(QuietWindow.shape))

/**
 * Fields the subscription schema does not know. Core's schema strips them silently; a misspelt `quiet_hours`
 * must not quietly become the default schedule, so they are refused.
 */
function unknownFields(body: unknown): { path: string; message: string }[] {
  if (!isPlainObject(body)) return []
  const found: string[] = Object.keys(body).filter((k) => !BODY_KEYS.has(k))
  const quiet = body.quietHours
  if (isPlainObject(quiet)) {
    found.push(
      ...Object.keys(quiet)
        .filter((k) => !QUIET_KEYS.has(k))
        .map((k) => `quietHours.${k}`),
    )
    if (Array.isArray(quiet.windows)) {
      quiet.windows.forEach((w: unknown, i) => {
        if (!isPlainObject(w)) return
        found.push(
          ...Object.keys(w)
            .filter((k) => !WINDOW_KEYS.has(k))
            .map((k) => `quietHours.windows.${i}.${k}`),
        )
      })
    }
  }
  return found.map((path) => ({ path, message: `unknown field ${path}` }))
}

function forbidden(code: string, detail: string): HttpProblem {
  return new HttpProblem({ status: 403, code, title: 'Forbidden', detail })
}

function alertsNotConfigured(what: string): HttpProblem {
  return new HttpProblem({
    status: 503,
    code: 'alerts_not_configured',
    title: 'Alerts not configured',
    detail: `${what} needs the deployment's alerts key (ALERTS_KEY or the key file in the data directory), and this API was started without it`,
  })
}

/**
 * Alert subscriptions, in-app notifications and the delivery log (issue 4). Subscriptions and notifications belong
 * to a person: they need alerts:subscribe and a user session (an API token has no user to alert). Subscription
 * changes are audited.
 *   GET    /subscriptions                       the caller's active subscriptions
 *   POST   /subscriptions                       core subscriptionInputSchema → 201 (+ signing_secret for a webhook, once)
 *   DELETE /subscriptions/:id                   own only (404 otherwise) → 204
 *   GET    /notifications?unread=&limit=&before=  → { items, unread }
 *   POST   /notifications/read {ids}            → { updated }
 *   GET    /deliveries?status=&user=&limit=&before=   outbox rows, newest first (deliveries:read)
 *   GET    /deliveries/:id/attempts             → { delivery, attempts } (deliveries:read)
 * The unsubscribe link is unsubscribeRouter (mounted before authentication).
 */
export function alertsRouter(ctx: ApiContext): Router {
  const { storage, clock, options } = ctx
  const router = Router()

  /** alerts:subscribe, held by a logged-in person. */
  function requireUser(req: Request, what: string): { principal: Principal; user: UserRecord } {
    const principal = requirePermission(req, ctx, 'alerts:subscribe', what)
    const { user } = authOf(req)
    if (principal.kind !== 'user' || user === null) {
      throw forbidden(
        'user_session_required',
        `${what} needs a log-in as a person: alerts go to a user, and an API token has none`,
      )
    }
    return { principal, user }
  }

  function notFound(id: unknown): HttpProblem {
    return notFoundProblem(`you have no active subscription with id ${JSON.stringify(id)}`, 'subscription_not_found')
  }

  /** The sites a new subscription covers after the caller's own limits, or a refusal. */
  function coveredSites(
    principal: Principal,
    requested: 'all' | readonly string[],
    known: ReadonlySet<string>,
  ): 'all' | string[] {
    const allowed = sitesFor(principal, 'alerts:subscribe', options)
    if (allowed === 'all') return requested === 'all' ? 'all' : [...requested]
    if (requested === 'all') {
      // A principal's 'all' is their own sites, fixed now: a site bound to them later needs a new subscription.
      const own = [...allowed].filter((id) => known.has(id)).sort()
      if (own.length === 0) throw forbidden('site_not_allowed', 'you are not bound to any site to subscribe to')
      return own
    }
    const outside = requested.filter((id) => !allowed.has(id))
    if (outside.length > 0) {
      throw forbidden(
        'site_not_allowed',
        `you may subscribe to your own sites only (${[...allowed].sort().join(', ')}); not to ${outside.join(', ')}`,
      )
    }
    return [...requested]
  }

  router
    .route('/subscriptions')
    .get(async (req, res) => {
      const { user } = requireUser(req, 'read alert subscriptions')
      const subscriptions = await storage.alerts.listSubscriptions({ userId: user.id })
      cacheNever(res)
      res.json({ subscriptions: subscriptions.map(publicSubscription) })
    })
    .post(async (req, res) => {
      const { principal, user } = requireUser(req, 'subscribe to alerts')
      const key = ctx.alertsKey
      if (key === null) throw alertsNotConfigured('subscribing to alerts')
      const extra = unknownFields(req.body)
      if (extra.length > 0) {
        throw new HttpProblem({
          status: 400,
          code: 'invalid_request',
          title: 'Invalid subscription',
          detail: `invalid subscription: ${extra.map((e) => e.message).join('; ')}`,
          errors: extra,
        })
      }
      const known = new Set((await storage.registry.listSites()).map((s) => s.id))
      const parsed = subscriptionInputSchema({ production: options.production, knownSites: known }).safeParse(req.body)
      if (!parsed.success) throw validationProblem(parsed.error, 'subscription')
      const input = parsed.data
      if (!mayUseTopic(user.role, input.topic)) {
        const allowed = SUBSCRIPTION_TOPICS.filter((t) => mayUseTopic(user.role, t))
        throw forbidden(
          'topic_not_allowed',
          `role ${user.role} may not subscribe to ${input.topic} alerts (allowed: ${allowed.length > 0 ? allowed.join(', ') : 'none'})`,
        )
      }
      const sites = coveredSites(principal, input.sites, known)
      const active = await storage.alerts.listSubscriptions({ userId: user.id })
      if (active.length >= MAX_SUBSCRIPTIONS_PER_USER) {
        throw new HttpProblem({
          status: 409,
          code: 'too_many_subscriptions',
          title: 'Conflict',
          detail: `you have ${active.length} active subscriptions, the most allowed; delete one first`,
        })
      }
      const id = `sub_${randomUUID().replaceAll('-', '')}`
      let record: SubscriptionRecord
      try {
        record = await storage.alerts.addSubscription({
          id,
          userId: user.id,
          topic: input.topic,
          channel: input.channel,
          target: input.target,
          sites,
          minSeverity: input.minSeverity,
          language: input.language,
          quietHours: input.quietHours,
          unsubscribeHash: unsubscribeHash(deriveSecret(key, 'unsubscribe', id)),
          createdAt: clock(),
        })
      } catch (error) {
        // A site removed from the registry between the check above and the insert.
        if (error instanceof StorageError && error.code === 'UNKNOWN_SITE') {
          throw new HttpProblem({
            status: 400,
            code: 'site_not_found',
            title: 'Unknown site',
            detail: error.message,
            cause: error,
          })
        }
        throw error
      }
      // The target (an address, a URL that may hold a credential) stays out of the audit log.
      await audit(ctx, actorOf(principal), 'subscription.create', id, {
        topic: record.topic,
        channel: record.channel,
        sites: record.sites === 'all' ? 'all' : record.sites.length,
      })
      cacheNever(res)
      res.status(201).json({
        ...publicSubscription(record),
        // The secret the alerts service signs with (runtime webhookSecret, used by its webhook channel).
        ...(record.channel === 'webhook' ? { signing_secret: webhookSecret(key, id) } : {}),
      })
    })
    .all(methodNotAllowed(['GET', 'HEAD', 'POST']))

  router
    .route('/subscriptions/:id')
    .delete(async (req, res) => {
      const { principal, user } = requireUser(req, 'delete alert subscriptions')
      const parsed = SubscriptionId.safeParse(req.params.id)
      const subscription = parsed.success ? await storage.alerts.getSubscription(parsed.data) : undefined
      // Someone else's subscription answers like an unknown one.
      if (subscription === undefined || subscription.userId !== user.id || subscription.disabledAt !== null) {
        throw notFound(req.params.id)
      }
      await storage.alerts.disableSubscription(subscription.id, clock())
      await audit(ctx, actorOf(principal), 'subscription.delete', subscription.id, {
        topic: subscription.topic,
        channel: subscription.channel,
      })
      res.status(204).end()
    })
    .all(methodNotAllowed(['DELETE']))

  router
    .route('/notifications')
    .get(async (req, res) => {
      const { user } = requireUser(req, 'read notifications')
      const parsed = NotificationsQuery.safeParse(req.query)
      if (!parsed.success) throw validationProblem(parsed.error, 'notifications query')
      const { unread, limit, before } = parsed.data
      const [rows, unreadCount] = await Promise.all([
        storage.alerts.listNotifications(user.id, {
          limit,
          unreadOnly: unread,
          ...(before === undefined ? {} : { beforeId: before }),
        }),
        storage.alerts.unreadCount(user.id),
      ])
      cacheNever(res)
      res.json({ items: rows.map(publicNotification), unread: unreadCount })
    })
    .all(methodNotAllowed(['GET', 'HEAD']))

  router
    .route('/notifications/read')
    .post(async (req, res) => {
      const { user } = requireUser(req, 'mark notifications read')
      const parsed = MarkReadBody.safeParse(req.body)
      if (!parsed.success) throw validationProblem(parsed.error, 'mark-read request')
      // Other users' ids change nothing (the store matches the user): the count says how many were this user's.
      const updated = await storage.alerts.markRead(user.id, [...new Set(parsed.data.ids)], clock())
      cacheNever(res)
      res.json({ updated })
    })
    .all(methodNotAllowed(['POST']))

  router
    .route('/deliveries')
    .get(async (req, res) => {
      requirePermission(req, ctx, 'deliveries:read', 'read alert deliveries')
      const parsed = DeliveriesQuery.safeParse(req.query)
      if (!parsed.success) throw validationProblem(parsed.error, 'deliveries query')
      const { status, user, limit, before } = parsed.data
      const rows = await storage.alerts.listOutbox({
        limit,
        ...(status === undefined ? {} : { status }),
        ...(user === undefined ? {} : { userId: user }),
        ...(before === undefined ? {} : { beforeId: before }),
      })
      cacheNever(res)
      res.json({ deliveries: rows.map(publicDelivery) })
    })
    .all(methodNotAllowed(['GET', 'HEAD']))

  router
    .route('/deliveries/:id/attempts')
    .get(async (req, res) => {
      requirePermission(req, ctx, 'deliveries:read', 'read alert deliveries')
      const id = /^[1-9]\d{0,15}$/.test(req.params.id) ? Number(req.params.id) : null
      // The store has no lookup by id; the newest row below id + 1 is the row itself when it exists.
      const row = id === null ? undefined : (await storage.alerts.listOutbox({ beforeId: id + 1, limit: 1 }))[0]
      if (id === null || row === undefined || row.id !== id) {
        throw notFoundProblem(`no delivery with id ${JSON.stringify(req.params.id)}`, 'delivery_not_found')
      }
      const attempts = await storage.alerts.listAttempts(id)
      cacheNever(res)
      res.json({ delivery: publicDelivery(row), attempts: attempts.map(publicAttempt) })
    })
    .all(methodNotAllowed(['GET', 'HEAD']))

  return router
}

/** Browsers ask for HTML first; mail clients' one-click POSTs and scripts get the usual problem document. */
function prefersHtml(req: Request): boolean {
  return req.accepts(['application/problem+json', 'application/json', 'text/html']) === 'text/html'
}

function sendPage(res: Response, status: number, html: string): void {
  res.status(status)
  res.set('Content-Security-Policy', UNSUBSCRIBE_PAGE_CSP)
  cacheNever(res)
  res.type('html').send(html)
}

/**
 * The unsubscribe link of every alert (issue 4; RFC 8058 one-click):
 *   GET  /unsubscribe/:id?token=   a page that asks (a GET never changes anything: mail scanners follow links)
 *   POST /unsubscribe/:id?token=   unsubscribes; the page's button and a mail client's one-click POST
 *                                  (`List-Unsubscribe=One-Click`, form-encoded) both land here
 * The token is the credential (HMAC of the id under the alerts key, compared in constant time), so no session
 * and no CSRF token are needed: this router is mounted before authentication. RFC 8058 §3.2 forbids the mail
 * client to send cookies; a browser posting the page's form sends the SameSite session cookie, which must not
 * make the CSRF check refuse it. A wrong token and an unknown id get the same 404.
 */
export function unsubscribeRouter(ctx: ApiContext): Router {
  const { storage, clock } = ctx
  const router = Router()

  async function linkedSubscription(req: Request, res: Response): Promise<SubscriptionRecord | null> {
    const key = ctx.alertsKey
    if (key === null) throw alertsNotConfigured('an unsubscribe link')
    const id = SubscriptionId.safeParse(req.params.id)
    const query = UnsubscribeQuery.safeParse(req.query)
    // The token is checked before the database is asked, so timing does not tell a known id from an unknown one.
    const valid = id.success && query.success && verifyDerivedSecret(key, 'unsubscribe', id.data, query.data.token)
    const subscription = valid && id.success ? await storage.alerts.getSubscription(id.data) : undefined
    if (subscription !== undefined) return subscription
    if (prefersHtml(req)) {
      sendPage(res, 404, invalidLinkPage())
      return null
    }
    throw notFoundProblem('this unsubscribe link is not valid', 'unsubscribe_link_invalid')
  }

  router
    .route('/unsubscribe/:id')
    .get(async (req, res) => {
      const subscription = await linkedSubscription(req, res)
      if (subscription === null) return
      sendPage(res, 200, subscription.disabledAt === null ? confirmPage(subscription) : donePage(subscription, true))
    })
    .post(express.urlencoded({ extended: false, limit: UNSUBSCRIBE_BODY_LIMIT }), async (req, res) => {
      const subscription = await linkedSubscription(req, res)
      if (subscription === null) return
      const already = subscription.disabledAt !== null
      if (!already) {
        await storage.alerts.disableSubscription(subscription.id, clock())
        await audit(ctx, 'unsubscribe-link', 'subscription.unsubscribe', subscription.id, {
          user: subscription.userId,
          topic: subscription.topic,
          channel: subscription.channel,
        })
      }
      sendPage(res, 200, donePage(subscription, already))
    })
    .all(methodNotAllowed(['GET', 'HEAD', 'POST']))

  return router
}
