import { createHash, randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { DAY_MS, DEFAULT_QUIET_HOURS, type Role } from '@skolluft/core'
import { deriveSecret, silentLogger, webhookSecret } from '@skolluft/runtime'
import { openSqliteStorage, type Storage, type SubscriptionRecord } from '@skolluft/storage'
import { tempDir } from '@skolluft/testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { type RunningApi, startApi } from '../server.ts'
import { ANONYMOUS_CALLER, addTestUsers, type Caller, call, createToken, logInTestUsers } from '../test-http.ts'

/**
 * Alert subscriptions, in-app notifications, the delivery log and the unsubscribe link over real HTTP against a
 * real SQLite file. Outbox rows are seeded through the AlertStore as the alerts service makes them (appendEvents →
 * fanOut → claimDue → finishAttempt). The role × endpoint table in full: permissions.test.ts.
 */
const NOW = Date.parse('2026-11-30T12:00:00Z')
const clock = () => NOW
const KEY = randomBytes(32)

const A = 'site-a'
const B = 'site-b'
const C = 'site-c'

const USERS: readonly { who: string; role: Role; sites: string[] }[] = [
  { who: 'admin', role: 'admin', sites: [] },
  { who: 'staff', role: 'staff', sites: [] },
  { who: 'principal', role: 'principal', sites: [A] },
  { who: 'caretaker', role: 'caretaker', sites: [] },
  { who: 'researcher', role: 'researcher', sites: [] },
]

const ANONYMOUS = ANONYMOUS_CALLER
const Problem = z.object({
  status: z.number(),
  code: z.string(),
  title: z.string(),
  detail: z.string(),
  errors: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
})
const Subscription = z.strictObject({
  id: z.string().regex(/^sub_[0-9a-f]{32}$/),
  topic: z.string(),
  channel: z.string(),
  target: z.string().nullable(),
  sites: z.union([z.literal('all'), z.array(z.string())]),
  min_severity: z.string(),
  language: z.string(),
  quiet_hours: z.unknown(),
  created_at: z.string(),
  disabled_at: z.string().nullable(),
  signing_secret: z.string().optional(),
})
const SubscriptionList = z.object({ subscriptions: z.array(Subscription) })
const Notification = z.strictObject({
  id: z.number(),
  at: z.string(),
  subject: z.string(),
  text: z.string(),
  siteId: z.string().nullable(),
  read: z.boolean(),
})
const Notifications = z.strictObject({ items: z.array(Notification), unread: z.number() })
const Delivery = z.strictObject({
  id: z.number(),
  created_at: z.string(),
  channel: z.string(),
  target: z.string().nullable(),
  status: z.string(),
  subject: z.string(),
  attempts: z.number(),
  last_error: z.string().nullable(),
  deliver_after: z.string(),
  next_attempt_at: z.string(),
  sent_at: z.string().nullable(),
  subscription: z.string(),
  user: z.string(),
  site: z.string().nullable(),
  event: z.number().nullable(),
  digest: z.number().nullable(),
  message_id: z.string(),
})
const Deliveries = z.strictObject({ deliveries: z.array(Delivery) })
const Attempts = z.strictObject({
  delivery: Delivery,
  attempts: z.array(
    z.strictObject({ at: z.string(), ok: z.boolean(), error: z.string().nullable(), duration_ms: z.number() }),
  ),
})

let dir: Awaited<ReturnType<typeof tempDir>>
let storage: Storage
/** Outside production, with the alerts key. */
let api: RunningApi
/** NODE_ENV=production. */
let production: RunningApi
/** Started without the alerts key. */
let keyless: RunningApi
const callers = new Map<string, Caller>()
const userIds = new Map<string, string>()

function callerOf(who: string): Caller {
  const caller = callers.get(who)
  if (caller === undefined) throw new Error(`no caller ${who}`)
  return caller
}

function userOf(who: string): string {
  const id = userIds.get(who)
  if (id === undefined) throw new Error(`no user ${who}`)
  return id
}

function problemOf(res: { status: number; body: unknown }) {
  return Problem.parse(res.body)
}

async function subscribe(who: string, body: unknown, server: RunningApi = api) {
  return call(server, callerOf(who), 'POST', '/subscriptions', { body })
}

async function subscribeOk(who: string, body: unknown): Promise<z.infer<typeof Subscription>> {
  const res = await subscribe(who, body)
  expect(res.status, JSON.stringify(res.body)).toBe(201)
  return Subscription.parse(res.body)
}

/** A subscription made directly in the store, as a test fixture. */
async function storedSubscription(
  who: string,
  channel: 'email' | 'webhook' | 'in_app',
  target: string | null,
): Promise<SubscriptionRecord> {
  return storage.alerts.addSubscription({
    userId: userOf(who),
    topic: 'breaches',
    channel,
    target,
    sites: 'all',
    minSeverity: 'info',
    language: 'sv',
    quietHours: null,
    unsubscribeHash: 'not used here',
    createdAt: NOW - DAY_MS,
  })
}

/** Appends one live event and fans it out to `to` (in_app rows are delivered by being stored). */
async function notify(key: string, siteId: string, to: readonly SubscriptionRecord[]): Promise<void> {
  await storage.alerts.appendEvents(
    [
      {
        key,
        kind: 'opened',
        topic: 'breaches',
        siteId,
        deviceId: null,
        incidentId: null,
        severity: 'warning',
        urgent: false,
        live: true,
        at: NOW - DAY_MS,
        data: {},
      },
    ],
    NOW - DAY_MS,
  )
  const event = (await storage.alerts.listEvents({ limit: 100 })).find((e) => e.key === key)
  if (event === undefined) throw new Error(`event ${key} was not stored`)
  await storage.alerts.fanOut(
    event.id,
    to.map((s) => ({
      subscriptionId: s.id,
      userId: s.userId,
      channel: s.channel,
      target: s.target,
      language: 'sv',
      status: 'pending',
      deliverAfter: NOW - DAY_MS,
      subject: `${key} subject`,
      text: `${key} text`,
      html: `<p>${key}</p>`,
      payload: { key },
    })),
    NOW - DAY_MS,
  )
}

beforeAll(async () => {
  dir = await tempDir('skolluft-alerts-api-')
  storage = openSqliteStorage({ path: join(dir.path, 'skolluft.db') })
  await storage.registry.upsertSites(
    [A, B, C].map((id, i) => ({
      id,
      name: `Skola ${id}`,
      kind: 'school',
      municipality: 'Lund',
      lat: 55.7 + i / 100,
      lon: 13.2,
    })),
  )
  for (const [who, id] of await addTestUsers(storage, USERS, NOW - DAY_MS)) userIds.set(who, id)
  const base = { log: silentLogger(), storage, clock, host: '127.0.0.1', port: 0 }
  api = await startApi({ ...base, alertsKey: KEY })
  production = await startApi({ ...base, alertsKey: KEY, options: { production: true } })
  keyless = await startApi(base)

  callers.set('anonymous', ANONYMOUS)
  for (const [who, caller] of await logInTestUsers(api, USERS)) callers.set(who, caller)
  const tokens = [
    // Holds alerts:subscribe (asked for by name), but a token has no user to alert.
    ['subscriberToken', { name: 'alert robot', role: 'staff', scopes: ['alerts:subscribe'] }],
    // Default staff scopes: neither alerts:subscribe nor deliveries:read (both only by name).
    ['staffToken', { name: 'ops dashboard', role: 'staff' }],
    ['deliveriesToken', { name: 'delivery monitor', role: 'staff', scopes: ['deliveries:read'] }],
  ] as const
  for (const [who, body] of tokens) {
    const { caller, id } = await createToken(api, callerOf('admin'), body)
    callers.set(who, caller)
    userIds.set(who, id)
  }
})

afterAll(async () => {
  await api?.close()
  await production?.close()
  await keyless?.close()
  await storage?.close()
  await dir?.cleanup()
})

describe('POST /subscriptions', () => {
  it('subscribes staff by e-mail to every site, stores only a hash of the unsubscribe token, and audits', async () => {
    const created = await subscribeOk('staff', {
      topic: 'breaches',
      channel: 'email',
      target: 'Miljo.Namnden@LUND.se',
      sites: 'all',
      minSeverity: 'alert',
      language: 'en',
    })
    expect(created).toEqual({
      id: created.id,
      topic: 'breaches',
      channel: 'email',
      // The domain is lower-cased (core subscriptions.ts), the local part kept.
      target: 'Miljo.Namnden@lund.se',
      sites: 'all',
      min_severity: 'alert',
      language: 'en',
      quiet_hours: DEFAULT_QUIET_HOURS,
      created_at: '2026-11-30T12:00:00.000Z',
      disabled_at: null,
    })
    expect(created).not.toHaveProperty('signing_secret')
    expect(await storage.alerts.getSubscription(created.id)).toMatchObject({
      userId: userOf('staff'),
      target: 'Miljo.Namnden@lund.se',
      sites: 'all',
    })
    const token = deriveSecret(KEY, 'unsubscribe', created.id)
    expect(await storage.alerts.getUnsubscribeHash(created.id)).toBe(createHash('sha256').update(token).digest('hex'))
    const entry = (await storage.access.listAudit({ limit: 100 })).find((e) => e.target === created.id)
    expect(entry).toMatchObject({
      actor: `user:${userOf('staff')}`,
      action: 'subscription.create',
      detail: { topic: 'breaches', channel: 'email', sites: 'all' },
    })
    // The address is personal data; the audit log keeps that a subscription was made, not where it goes.
    expect(JSON.stringify(entry)).not.toContain('lund.se')
  })

  it('returns a webhook signing secret once, equal to the one the alerts service signs with', async () => {
    const created = await subscribeOk('staff', {
      topic: 'device-health',
      channel: 'webhook',
      target: 'https://hooks.example.org/services/T1/B2/abc',
      sites: [B, C],
      quietHours: null,
    })
    expect(created).toMatchObject({ channel: 'webhook', sites: [B, C], quiet_hours: null })
    expect(created.signing_secret).toBe(webhookSecret(KEY, created.id))
    const list = await call(api, callerOf('staff'), 'GET', '/subscriptions')
    expect(SubscriptionList.parse(list.body).subscriptions.find((s) => s.id === created.id)).toBeDefined()
    expect(JSON.stringify(list.body)).not.toContain(created.signing_secret)
    expect(JSON.stringify(await storage.alerts.getSubscription(created.id))).not.toContain(created.signing_secret)
  })

  it('fills in the defaults for an in-app subscription', async () => {
    const created = await subscribeOk('admin', { topic: 'breaches', channel: 'in_app', sites: [A] })
    expect(created).toMatchObject({
      target: null,
      sites: [A],
      min_severity: 'warning',
      language: 'sv',
      quiet_hours: DEFAULT_QUIET_HOURS,
    })
  })

  it('allows a plain-http webhook to localhost outside production only', async () => {
    const body = { topic: 'breaches', channel: 'webhook', target: 'http://127.0.0.1:9999/hook', sites: 'all' }
    expect((await subscribe('staff', body)).status).toBe(201)
    const refused = await subscribe('staff', body, production)
    expect(refused.status).toBe(400)
    expect(problemOf(refused).errors).toEqual([
      { path: 'target', message: 'a webhook URL must be https in production' },
    ])
  })

  it.each([
    [
      'unknown sites, naming each',
      { topic: 'breaches', channel: 'in_app', sites: [A, 'no-such-school', 'nor-this'] },
      [
        { path: 'sites.1', message: "unknown site 'no-such-school'" },
        { path: 'sites.2', message: "unknown site 'nor-this'" },
      ],
    ],
    [
      'an e-mail address that cannot be valid',
      { topic: 'breaches', channel: 'email', target: 'rektor@@skola', sites: 'all' },
      [{ path: 'target', message: 'not a valid e-mail address' }],
    ],
    [
      'an e-mail subscription without an address',
      { topic: 'breaches', channel: 'email', sites: 'all' },
      [{ path: 'target', message: 'an email subscription needs an e-mail address' }],
    ],
    [
      'a plain-http webhook to another host',
      { topic: 'breaches', channel: 'webhook', target: 'http://hooks.example.org/x', sites: 'all' },
      [{ path: 'target', message: 'plain http is allowed only to localhost or 127.0.0.1; use https' }],
    ],
    [
      'overlapping quiet hours',
      {
        topic: 'breaches',
        channel: 'in_app',
        sites: 'all',
        quietHours: {
          windows: [
            { from: '18:00', to: '07:00' },
            { from: '06:00', to: '08:00' },
          ],
          weekends: true,
          holidays: true,
        },
      },
      [
        {
          path: 'quietHours.windows.1',
          message: 'quiet windows 18:00–07:00 and 06:00–08:00 overlap; merge them into one window',
        },
      ],
    ],
    [
      'a target on an in-app subscription',
      { topic: 'breaches', channel: 'in_app', target: 'x@example.org', sites: 'all' },
      [{ path: 'target', message: 'in-app notifications have no target; leave target out' }],
    ],
    [
      'unknown fields, also inside the quiet hours',
      {
        topic: 'breaches',
        channel: 'in_app',
        sites: 'all',
        min_severity: 'alert',
        quietHours: { windows: [{ from: '18:00', to: '07:00', tz: 'UTC' }], weekends: true, holidays: true },
      },
      [
        { path: 'min_severity', message: 'unknown field min_severity' },
        { path: 'quietHours.windows.0.tz', message: 'unknown field quietHours.windows.0.tz' },
      ],
    ],
  ])('refuses %s with 400 and a clear message', async (_what, body, errors) => {
    const before = (await storage.alerts.listSubscriptions({ userId: userOf('staff') })).length
    const res = await subscribe('staff', body)
    expect(res.status).toBe(400)
    const problem = problemOf(res)
    expect(problem.code).toBe('invalid_request')
    expect(problem.errors).toEqual(errors)
    for (const e of errors) expect(problem.detail).toContain(e.message)
    expect(await storage.alerts.listSubscriptions({ userId: userOf('staff') })).toHaveLength(before)
  })

  it('refuses an unknown topic and channel by name', async () => {
    const res = await subscribe('staff', { topic: 'weather', channel: 'sms', sites: 'all' })
    expect(res.status).toBe(400)
    expect(problemOf(res).errors?.map((e) => e.path)).toEqual(['topic', 'channel'])
    expect(problemOf(res).detail).toContain('unknown topic "weather"')
  })

  it('keeps principals away from device health and caretakers away from breaches', async () => {
    const principal = await subscribe('principal', { topic: 'device-health', channel: 'in_app', sites: 'all' })
    expect([principal.status, problemOf(principal).code]).toEqual([403, 'topic_not_allowed'])
    expect(problemOf(principal).detail).toBe(
      'role principal may not subscribe to device-health alerts (allowed: breaches)',
    )
    const caretaker = await subscribe('caretaker', { topic: 'breaches', channel: 'in_app', sites: 'all' })
    expect([caretaker.status, problemOf(caretaker).code]).toEqual([403, 'topic_not_allowed'])
    expect(problemOf(caretaker).detail).toBe(
      'role caretaker may not subscribe to breaches alerts (allowed: device-health)',
    )
    const allowed = await subscribeOk('caretaker', { topic: 'device-health', channel: 'in_app', sites: 'all' })
    expect(allowed.sites).toBe('all')
    for (const who of ['principal', 'caretaker']) {
      const topics = (await storage.alerts.listSubscriptions({ userId: userOf(who) })).map((s) => s.topic)
      expect(topics).not.toContain(who === 'principal' ? 'device-health' : 'breaches')
    }
  })

  it("lets a principal name only their own sites, and stores 'all' as those sites", async () => {
    const other = await subscribe('principal', { topic: 'breaches', channel: 'in_app', sites: [A, B] })
    expect([other.status, problemOf(other).code]).toEqual([403, 'site_not_allowed'])
    expect(problemOf(other).detail).toBe('you may subscribe to your own sites only (site-a); not to site-b')
    const all = await subscribeOk('principal', {
      topic: 'breaches',
      channel: 'email',
      target: 'rektor@skola.lund.se',
      sites: 'all',
    })
    expect(all.sites).toEqual([A])
    expect((await storage.alerts.getSubscription(all.id))?.sites).toEqual([A])
    expect((await subscribeOk('principal', { topic: 'breaches', channel: 'in_app', sites: [A] })).sites).toEqual([A])
  })

  it.each([
    ['anonymous', 401, 'unauthorized'],
    ['researcher', 403, 'forbidden'],
    // A staff token without the alerts:subscribe scope.
    ['staffToken', 403, 'forbidden'],
    // With the scope: still refused, because a token has no user to alert.
    ['subscriberToken', 403, 'user_session_required'],
  ])('refuses %s with %i %s', async (who, status, code) => {
    const res = await subscribe(who, { topic: 'breaches', channel: 'in_app', sites: 'all' })
    expect([res.status, problemOf(res).code]).toEqual([status, code])
    if (who === 'subscriberToken') {
      expect(problemOf(res).detail).toBe(
        'subscribe to alerts needs a log-in as a person: alerts go to a user, and an API token has none',
      )
    }
  })

  it('needs the CSRF header with a session cookie', async () => {
    const res = await call(api, callerOf('staff'), 'POST', '/subscriptions', {
      body: { topic: 'breaches', channel: 'in_app', sites: 'all' },
      csrf: false,
    })
    expect([res.status, problemOf(res).code]).toEqual([403, 'csrf_failed'])
  })

  it('answers 503 when the API runs without the alerts key', async () => {
    const res = await subscribe('staff', { topic: 'breaches', channel: 'in_app', sites: 'all' }, keyless)
    expect([res.status, problemOf(res).code]).toEqual([503, 'alerts_not_configured'])
    expect(problemOf(res).detail).toContain('ALERTS_KEY')
  })
})

describe('GET and DELETE /subscriptions', () => {
  it("lists only the caller's own active subscriptions", async () => {
    const mine = await subscribeOk('caretaker', { topic: 'device-health', channel: 'in_app', sites: [C] })
    const list = SubscriptionList.parse((await call(api, callerOf('caretaker'), 'GET', '/subscriptions')).body)
    const stored = await storage.alerts.listSubscriptions({ userId: userOf('caretaker') })
    expect(list.subscriptions.map((s) => s.id)).toEqual(stored.map((s) => s.id))
    expect(list.subscriptions.map((s) => s.id)).toContain(mine.id)
    const staff = SubscriptionList.parse((await call(api, callerOf('staff'), 'GET', '/subscriptions')).body)
    expect(staff.subscriptions.map((s) => s.id)).not.toContain(mine.id)
    expect(staff.subscriptions.length).toBeGreaterThan(0)
  })

  it("deletes one's own subscription (audited) and answers someone else's like an unknown one", async () => {
    const mine = await subscribeOk('principal', { topic: 'breaches', channel: 'in_app', sites: [A] })
    const foreign = await call(api, callerOf('staff'), 'DELETE', `/subscriptions/${mine.id}`)
    const unknown = await call(api, callerOf('staff'), 'DELETE', '/subscriptions/sub_nothing')
    const malformed = await call(api, callerOf('staff'), 'DELETE', '/subscriptions/not-a-subscription')
    for (const res of [foreign, unknown, malformed]) {
      expect([res.status, problemOf(res).code]).toEqual([404, 'subscription_not_found'])
    }
    expect((await storage.alerts.getSubscription(mine.id))?.disabledAt).toBeNull()

    const deleted = await call(api, callerOf('principal'), 'DELETE', `/subscriptions/${mine.id}`)
    expect(deleted.status).toBe(204)
    expect((await storage.alerts.getSubscription(mine.id))?.disabledAt).toBe(NOW)
    const list = SubscriptionList.parse((await call(api, callerOf('principal'), 'GET', '/subscriptions')).body)
    expect(list.subscriptions.map((s) => s.id)).not.toContain(mine.id)
    const again = await call(api, callerOf('principal'), 'DELETE', `/subscriptions/${mine.id}`)
    expect(again.status).toBe(404)
    const entries = (await storage.access.listAudit({ limit: 200 })).filter((e) => e.target === mine.id)
    expect(entries.map((e) => [e.action, e.actor])).toEqual([
      ['subscription.delete', `user:${userOf('principal')}`],
      ['subscription.create', `user:${userOf('principal')}`],
    ])
  })

  it('refuses tokens and roles without alerts:subscribe', async () => {
    const token = await call(api, callerOf('subscriberToken'), 'GET', '/subscriptions')
    expect([token.status, problemOf(token).code]).toEqual([403, 'user_session_required'])
    const researcher = await call(api, callerOf('researcher'), 'GET', '/subscriptions')
    expect([researcher.status, problemOf(researcher).code]).toEqual([403, 'forbidden'])
    const anonymous = await call(api, ANONYMOUS, 'GET', '/subscriptions')
    expect(anonymous.status).toBe(401)
  })
})

describe('notifications', () => {
  let staffRows: number[] = []
  let adminRow = 0

  beforeAll(async () => {
    const staffInApp = await storedSubscription('staff', 'in_app', null)
    const adminInApp = await storedSubscription('admin', 'in_app', null)
    const staffMail = await storedSubscription('staff', 'email', 'staff@example.org')
    await notify('n1', A, [staffInApp, adminInApp, staffMail])
    await notify('n2', B, [staffInApp])
    await notify('n3', C, [staffInApp])
    const mine = await storage.alerts.listNotifications(userOf('staff'), { limit: 10 })
    staffRows = mine.map((r) => r.id)
    const theirs = await storage.alerts.listNotifications(userOf('admin'), { limit: 10 })
    adminRow = theirs[0]?.id ?? 0
    expect(staffRows).toHaveLength(3)
    expect(adminRow).toBeGreaterThan(0)
  })

  it("lists the caller's own in-app notifications, newest first, with the unread count", async () => {
    const res = await call(api, callerOf('staff'), 'GET', '/notifications?unread=true&limit=50')
    expect(res.status).toBe(200)
    const body = Notifications.parse(res.body)
    expect(body.unread).toBe(3)
    expect(body.items.map((n) => n.subject)).toEqual(['n3 subject', 'n2 subject', 'n1 subject'])
    expect(body.items[2]).toEqual({
      id: staffRows[2],
      at: new Date(NOW - DAY_MS).toISOString(),
      subject: 'n1 subject',
      text: 'n1 text',
      siteId: A,
      read: false,
    })
    // The e-mail row of the same event is not an in-app notification.
    expect(body.items).toHaveLength(3)
    const admin = Notifications.parse((await call(api, callerOf('admin'), 'GET', '/notifications')).body)
    expect(admin.items.map((n) => n.id)).toEqual([adminRow])
    const limited = Notifications.parse((await call(api, callerOf('staff'), 'GET', '/notifications?limit=1')).body)
    expect(limited).toMatchObject({ unread: 3, items: [{ subject: 'n3 subject' }] })
  })

  it('marks only the caller’s own notifications read', async () => {
    const [newest, , oldest] = staffRows
    const res = await call(api, callerOf('staff'), 'POST', '/notifications/read', {
      body: { ids: [oldest, adminRow, 999_999] },
    })
    expect(res.status).toBe(200)
    expect(res.body).toEqual({ updated: 1 })
    const unread = Notifications.parse((await call(api, callerOf('staff'), 'GET', '/notifications?unread=true')).body)
    expect(unread.unread).toBe(2)
    expect(unread.items.map((n) => n.subject)).toEqual(['n3 subject', 'n2 subject'])
    const all = Notifications.parse((await call(api, callerOf('staff'), 'GET', '/notifications?unread=false')).body)
    expect(all.items.map((n) => [n.id, n.read])).toEqual([
      [newest, false],
      [staffRows[1], false],
      [oldest, true],
    ])
    // The admin's notification is untouched.
    const admin = Notifications.parse((await call(api, callerOf('admin'), 'GET', '/notifications')).body)
    expect(admin).toMatchObject({ unread: 1, items: [{ id: adminRow, read: false }] })
    // Marking again changes nothing.
    const again = await call(api, callerOf('staff'), 'POST', '/notifications/read', { body: { ids: [oldest] } })
    expect(again.body).toEqual({ updated: 0 })
  })

  it.each([
    ['?unread=yes', 'unread'],
    ['?limit=0', 'limit'],
    ['?limit=101', 'limit'],
    ['?before=-1', 'before'],
    ['?colour=red', ''],
  ])('refuses the query %s with 400 naming %j', async (query, path) => {
    const res = await call(api, callerOf('staff'), 'GET', `/notifications${query}`)
    expect(res.status).toBe(400)
    expect(problemOf(res).errors?.map((e) => e.path)).toEqual([path])
  })

  it.each([
    ['no ids', { ids: [] }, 'ids'],
    ['too many ids', { ids: Array.from({ length: 101 }, (_, i) => i + 1) }, 'ids'],
    ['ids that are not row ids', { ids: ['1'] }, 'ids.0'],
    ['an unknown key', { ids: [1], all: true }, ''],
  ])('refuses a mark-read body with %s', async (_what, body, path) => {
    const res = await call(api, callerOf('staff'), 'POST', '/notifications/read', { body })
    expect(res.status).toBe(400)
    expect(problemOf(res).errors?.map((e) => e.path)).toEqual([path])
  })

  it('is for people with alerts:subscribe only, and mark-read needs CSRF', async () => {
    for (const [who, status, code] of [
      ['anonymous', 401, 'unauthorized'],
      ['researcher', 403, 'forbidden'],
      ['subscriberToken', 403, 'user_session_required'],
    ] as const) {
      const list = await call(api, callerOf(who), 'GET', '/notifications')
      expect([who, list.status, problemOf(list).code]).toEqual([who, status, code])
      const read = await call(api, callerOf(who), 'POST', '/notifications/read', { body: { ids: [adminRow] } })
      expect([who, read.status, problemOf(read).code]).toEqual([who, status, code])
    }
    const noCsrf = await call(api, callerOf('admin'), 'POST', '/notifications/read', {
      body: { ids: [adminRow] },
      csrf: false,
    })
    expect([noCsrf.status, problemOf(noCsrf).code]).toEqual([403, 'csrf_failed'])
    expect((await storage.alerts.unreadCount(userOf('admin'))) > 0).toBe(true)
  })
})

describe('deliveries', () => {
  const HOOK_SECRET_PATH = '/services/T0/B0/verysecretwebhookpath'
  let mailRow = 0
  let hookRow = 0

  beforeAll(async () => {
    const mail = await storedSubscription('principal', 'email', 'rektor@skola.example.se')
    const hook = await storedSubscription('staff', 'webhook', `https://hooks.example.org${HOOK_SECRET_PATH}`)
    await notify('d1', A, [mail, hook])
    const claimed = await storage.alerts.claimDue(NOW, 10, 60_000)
    for (const row of claimed) {
      if (row.channel === 'email') {
        mailRow = row.id
        await storage.alerts.finishAttempt(
          row.id,
          { at: NOW, ok: false, error: '421 4.7.0 try again later', durationMs: 35 },
          { status: 'pending', nextAttemptAt: NOW + 60_000 },
        )
      } else {
        hookRow = row.id
        await storage.alerts.finishAttempt(
          row.id,
          { at: NOW, ok: true, error: null, durationMs: 80 },
          { status: 'sent' },
        )
      }
    }
    expect(mailRow).toBeGreaterThan(0)
    expect(hookRow).toBeGreaterThan(0)
  })

  it('shows staff every outbox row with status, attempts and last error, but no webhook secret', async () => {
    const res = await call(api, callerOf('staff'), 'GET', '/deliveries')
    expect(res.status).toBe(200)
    const body = Deliveries.parse(res.body)
    const mail = body.deliveries.find((d) => d.id === mailRow)
    expect(mail).toMatchObject({
      channel: 'email',
      target: 'rektor@skola.example.se',
      status: 'pending',
      attempts: 1,
      last_error: '421 4.7.0 try again later',
      next_attempt_at: new Date(NOW + 60_000).toISOString(),
      sent_at: null,
      user: userOf('principal'),
      site: A,
      subject: 'd1 subject',
    })
    expect(body.deliveries.find((d) => d.id === hookRow)).toMatchObject({
      channel: 'webhook',
      target: 'https://hooks.example.org/…',
      status: 'sent',
      attempts: 1,
      sent_at: new Date(NOW).toISOString(),
    })
    expect(JSON.stringify(body)).not.toContain('verysecretwebhookpath')
    // Newest first.
    const ids = body.deliveries.map((d) => d.id)
    expect(ids).toEqual([...ids].sort((a, b) => b - a))
  })

  it('filters by status and user, and pages with before', async () => {
    const sent = Deliveries.parse((await call(api, callerOf('admin'), 'GET', '/deliveries?status=sent')).body)
    expect(sent.deliveries.every((d) => d.status === 'sent')).toBe(true)
    expect(sent.deliveries.map((d) => d.id)).toContain(hookRow)
    const principal = Deliveries.parse(
      (await call(api, callerOf('staff'), 'GET', `/deliveries?user=${userOf('principal')}`)).body,
    )
    expect(principal.deliveries.map((d) => d.id)).toEqual([mailRow])
    const page = Deliveries.parse(
      (await call(api, callerOf('staff'), 'GET', `/deliveries?before=${hookRow}&limit=1`)).body,
    )
    expect(page.deliveries).toHaveLength(1)
    expect(page.deliveries[0]?.id).toBeLessThan(hookRow)
  })

  it('lists the delivery attempts of one row', async () => {
    const res = await call(api, callerOf('deliveriesToken'), 'GET', `/deliveries/${mailRow}/attempts`)
    expect(res.status).toBe(200)
    const body = Attempts.parse(res.body)
    expect(body.delivery.id).toBe(mailRow)
    expect(body.attempts).toEqual([
      { at: new Date(NOW).toISOString(), ok: false, error: '421 4.7.0 try again later', duration_ms: 35 },
    ])
    for (const id of ['999999', 'abc', '0']) {
      const missing = await call(api, callerOf('staff'), 'GET', `/deliveries/${id}/attempts`)
      expect([missing.status, problemOf(missing).code]).toEqual([404, 'delivery_not_found'])
    }
  })

  it.each([
    ['anonymous', 401],
    ['principal', 403],
    ['caretaker', 403],
    ['researcher', 403],
    ['subscriberToken', 403],
    // Recipients' addresses are personal data: a staff token reads them only with the scope named.
    ['staffToken', 403],
  ])('refuses %s with %i', async (who, status) => {
    expect((await call(api, callerOf(who), 'GET', '/deliveries')).status).toBe(status)
    expect((await call(api, callerOf(who), 'GET', `/deliveries/${mailRow}/attempts`)).status).toBe(status)
  })

  it.each([['?status=lost'], ['?limit=1001'], ['?before=x'], ['?colour=red']])('refuses the query %s', async (q) => {
    const res = await call(api, callerOf('staff'), 'GET', `/deliveries${q}`)
    expect([res.status, problemOf(res).code]).toEqual([400, 'invalid_request'])
  })
})

describe('the unsubscribe link', () => {
  const HTML = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8'

  function link(server: RunningApi, id: string, token: string): string {
    // As alerts/src/links.ts builds it.
    return `http://127.0.0.1:${server.port}/api/v1/unsubscribe/${encodeURIComponent(id)}?token=${encodeURIComponent(token)}`
  }

  async function mailSubscription(who = 'staff'): Promise<string> {
    return (await subscribeOk(who, { topic: 'breaches', channel: 'email', target: `${who}@example.org`, sites: 'all' }))
      .id
  }

  it('shows a page in Swedish and English, without script, whose button posts back; GET changes nothing', async () => {
    const id = await mailSubscription()
    const res = await fetch(link(api, id, deriveSecret(KEY, 'unsubscribe', id)), { headers: { Accept: HTML } })
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/^text\/html/)
    const csp = res.headers.get('content-security-policy') ?? ''
    expect(csp).toContain("default-src 'none'")
    expect(csp).toContain("form-action 'self'")
    expect(csp).not.toContain('unsafe-inline')
    expect(res.headers.get('cache-control')).toBe('no-store')
    const html = await res.text()
    expect(html).toContain('<form method="post">')
    expect(html).not.toMatch(/<script|action=|https?:\/\//i)
    expect(html).toContain('Avsluta prenumeration')
    expect(html).toContain('Unsubscribe')
    expect(html).toContain('larm om dålig luft')
    // The inline style is the one the CSP's hash allows.
    const style = /<style>([^<]*)<\/style>/.exec(html)?.[1] ?? ''
    expect(csp).toContain(`'sha256-${createHash('sha256').update(style).digest('base64')}'`)
    expect((await storage.alerts.getSubscription(id))?.disabledAt).toBeNull()
  })

  it('unsubscribes on a one-click POST without cookies, audits it, and a second POST changes nothing', async () => {
    const id = await mailSubscription()
    const url = link(api, id, deriveSecret(KEY, 'unsubscribe', id))
    const post = () =>
      fetch(url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: 'List-Unsubscribe=One-Click',
      })
    const res = await post()
    expect(res.status).toBe(200)
    expect(await res.text()).toContain('Prenumerationen är avslutad')
    expect((await storage.alerts.getSubscription(id))?.disabledAt).toBe(NOW)
    const again = await post()
    expect(again.status).toBe(200)
    expect(await again.text()).toContain('redan avslutad')
    const entries = (await storage.access.listAudit({ limit: 500 })).filter(
      (e) => e.target === id && e.action === 'subscription.unsubscribe',
    )
    expect(entries).toHaveLength(1)
    expect(entries[0]).toMatchObject({ actor: 'unsubscribe-link', detail: { user: userOf('staff') } })
    // The page of an ended subscription says so and has no button.
    const page = await fetch(url, { headers: { Accept: HTML } })
    const html = await page.text()
    expect(html).toContain('redan avslutad')
    expect(html).not.toContain('<form')
  })

  it("works from the page's form in a browser that sends the session cookie but no CSRF header", async () => {
    const id = await mailSubscription()
    const res = await fetch(link(api, id, deriveSecret(KEY, 'unsubscribe', id)), {
      method: 'POST',
      headers: {
        ...callerOf('staff').headers,
        Accept: HTML,
        'Content-Type': 'application/x-www-form-urlencoded',
      },
      body: 'List-Unsubscribe=One-Click',
    })
    expect(res.status).toBe(200)
    expect((await storage.alerts.getSubscription(id))?.disabledAt).toBe(NOW)
  })

  it('refuses a wrong token and an unknown id with the same 404, and changes nothing', async () => {
    const id = await mailSubscription('admin')
    const good = deriveSecret(KEY, 'unsubscribe', id)
    const unknownId = 'sub_00000000000000000000000000000000'
    const cases = [
      link(api, id, `${good.slice(0, -1)}${good.endsWith('A') ? 'B' : 'A'}`),
      link(api, id, deriveSecret(KEY, 'webhook', id)),
      link(api, id, deriveSecret(randomBytes(32), 'unsubscribe', id)),
      link(api, unknownId, deriveSecret(KEY, 'unsubscribe', unknownId)),
      link(api, 'not a subscription', good),
      `http://127.0.0.1:${api.port}/api/v1/unsubscribe/${id}`,
      `${link(api, id, good)}&token=${good}`,
    ]
    const answers = new Set<string>()
    for (const url of cases) {
      for (const method of ['GET', 'POST']) {
        const res = await fetch(url, { method })
        expect([url, method, res.status]).toEqual([url, method, 404])
        const { code, title, detail } = problemOf({ status: res.status, body: await res.json() })
        answers.add(JSON.stringify({ code, title, detail }))
      }
    }
    expect([...answers]).toEqual([
      JSON.stringify({
        code: 'unsubscribe_link_invalid',
        title: 'Not found',
        detail: 'this unsubscribe link is not valid',
      }),
    ])
    // A browser gets the same answer as a page.
    const page = await fetch(cases[0] ?? '', { headers: { Accept: HTML } })
    expect(page.status).toBe(404)
    expect(page.headers.get('content-type')).toMatch(/^text\/html/)
    expect(await page.text()).toContain('This link is not valid')
    expect((await storage.alerts.getSubscription(id))?.disabledAt).toBeNull()
  })

  it('answers 503 on an API without the alerts key', async () => {
    const id = await mailSubscription('admin')
    const res = await fetch(link(keyless, id, deriveSecret(KEY, 'unsubscribe', id)), { method: 'POST' })
    expect(res.status).toBe(503)
    expect((await storage.alerts.getSubscription(id))?.disabledAt).toBeNull()
  })

  it('is rate limited like every API request', async () => {
    const limited = await startApi({
      log: silentLogger(),
      storage,
      clock,
      host: '127.0.0.1',
      port: 0,
      alertsKey: KEY,
      options: { rateLimit: { ratePerS: 0.001, burst: 2 } },
    })
    try {
      const url = link(limited, 'sub_x', 'nothing')
      expect((await fetch(url)).status).toBe(404)
      expect((await fetch(url)).status).toBe(404)
      const third = await fetch(url, { method: 'POST' })
      expect(third.status).toBe(429)
    } finally {
      await limited.close()
    }
  })
})
