import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import { DEFAULT_QUIET_HOURS } from '@skolluft/core'
import { webhookSecret } from '@skolluft/runtime'
import { type OutboxRecord, openSqliteStorage, type Storage, type SubscriptionRecord } from '@skolluft/storage'
import { startSmtpServer, type TestSmtpServer } from '@skolluft/testkit'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { RETRY_BASE_DELAY_MS } from './channels/backoff.ts'
import { createEmailChannel, type EmailChannel } from './channels/email.ts'
import type { Channel } from './channels/types.ts'
import { createWebhookChannel, verifyWebhookSignature } from './channels/webhook.ts'
import { createDispatcher, type Dispatcher } from './dispatcher.ts'
import { createFanOut, type FanOut } from './fan-out.ts'
import {
  addUser,
  breachEvent,
  type Fixture,
  LINKS,
  log,
  MASTER_KEY,
  MINUTE_MS,
  openFixture,
  subscribe,
} from './test-support.ts'

/** Tuesday 10 March 2026, 10:00 in Stockholm. */
const MORNING = Date.UTC(2026, 2, 10, 9, 0)
/** The same day at 20:00 in Stockholm (quiet), and 07:00 the next morning (the end of the quiet night). */
const EVENING = Date.UTC(2026, 2, 10, 19, 0)
const NEXT_MORNING = Date.UTC(2026, 2, 11, 6, 0)
const LEASE_MS = 120_000
/** Generous: a busy test machine must not turn a send into a timeout. */
const CHANNEL_TIMEOUT_MS = 10_000

interface WebhookRequest {
  readonly headers: IncomingHttpHeaders
  readonly body: string
}

/** A real HTTP receiver for webhooks; answers `status` (200 unless changed). */
async function startReceiver(): Promise<{ url: string; requests: WebhookRequest[]; close(): Promise<void> }> {
  const requests: WebhookRequest[] = []
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      requests.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') })
      res.writeHead(200).end('ok')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('webhook receiver has no TCP address')
  return {
    url: `http://127.0.0.1:${address.port}/hook`,
    requests,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections()
        server.close((error) => (error ? reject(error) : resolve()))
      }),
  }
}

describe('dispatcher', () => {
  let fixture: Fixture
  let storage: Storage
  let now: number
  let smtp: TestSmtpServer
  let email: EmailChannel
  let receiver: Awaited<ReturnType<typeof startReceiver>>
  let webhook: Channel
  let fanOut: FanOut
  let dispatcher: Dispatcher
  let bo: string

  const dispatcherWith = (channels: Partial<Record<'email' | 'webhook', Channel>>, on: Storage = storage) =>
    createDispatcher({
      storage: on,
      channels,
      clock: () => now,
      log,
      links: LINKS,
      masterKey: MASTER_KEY,
      leaseMs: LEASE_MS,
    })

  /** One row by id, as stored now. */
  async function row(id: number | undefined): Promise<OutboxRecord | undefined> {
    return (await storage.alerts.listOutbox({ limit: 100 })).find((r) => r.id === id)
  }
  const rowsOf = async (subscription: SubscriptionRecord): Promise<OutboxRecord[]> =>
    (await storage.alerts.listOutbox({ limit: 100 })).filter((r) => r.subscriptionId === subscription.id).reverse()

  /** Appends events at `now` and fans them out; returns the new rows of `subscription`. */
  async function queue(subscription: SubscriptionRecord, siteIds: readonly string[]): Promise<OutboxRecord[]> {
    const before = new Set((await rowsOf(subscription)).map((r) => r.id))
    await storage.alerts.appendEvents(
      siteIds.map((siteId) => breachEvent(siteId, now)),
      now,
    )
    await fanOut.run()
    return (await rowsOf(subscription)).filter((r) => !before.has(r.id))
  }

  beforeEach(async () => {
    fixture = await openFixture()
    storage = fixture.storage
    now = MORNING
    smtp = await startSmtpServer()
    email = createEmailChannel({
      host: smtp.host,
      port: smtp.port,
      secure: false,
      from: '"Skolluft" <larm@skolluft.test>',
      timeoutMs: CHANNEL_TIMEOUT_MS,
    })
    receiver = await startReceiver()
    webhook = createWebhookChannel({
      masterKey: MASTER_KEY,
      production: false,
      timeoutMs: CHANNEL_TIMEOUT_MS,
      clock: () => now,
    })
    fanOut = createFanOut({ storage, clock: () => now, links: LINKS, masterKey: MASTER_KEY, log })
    dispatcher = dispatcherWith({ email, webhook })
    bo = await addUser(storage, 'bo@lund.test', 'staff')
  })

  afterEach(async () => {
    email.close()
    await smtp.close()
    await receiver.close()
    await fixture.close()
  })

  it('sends a pending row by e-mail with its Message-ID and logs the attempt', async () => {
    const sub = await subscribe(storage, bo, { target: 'bo@lund.test' })
    const [queued] = await queue(sub, ['school-a'])
    expect(queued?.status).toBe('pending')

    expect(await dispatcher.run()).toBe(1)
    expect(smtp.messages).toHaveLength(1)
    const [mail] = smtp.messages
    expect(mail?.to).toEqual(['bo@lund.test'])
    expect(mail?.headers['message-id']).toBe(queued?.messageId)
    expect(mail?.subject).toBe(queued?.subject)
    expect(mail?.headers['list-unsubscribe']).toContain(`/api/v1/unsubscribe/${sub.id}?token=`)
    expect(await row(queued?.id)).toMatchObject({ status: 'sent', sentAt: now, attempts: 1, leaseUntil: null })
    expect(await storage.alerts.listAttempts(queued?.id ?? 0)).toMatchObject([{ ok: true, error: null, at: now }])

    // Sent once: another pass finds nothing.
    expect(await dispatcher.run()).toBe(0)
    expect(smtp.messages).toHaveLength(1)
  })

  it('posts a signed webhook that the receiver can verify', async () => {
    const sub = await subscribe(storage, bo, { channel: 'webhook', target: receiver.url })
    const [queued] = await queue(sub, ['preschool-b'])
    expect(await dispatcher.run()).toBe(1)
    const [request] = receiver.requests
    expect(request?.headers['x-skolluft-delivery']).toBe(queued?.messageId)
    const verified = verifyWebhookSignature(
      webhookSecret(MASTER_KEY, sub.id),
      String(request?.headers['x-skolluft-timestamp']),
      request?.body ?? '',
      String(request?.headers['x-skolluft-signature']),
      now,
    )
    expect(verified).toBe(true)
    expect(JSON.parse(request?.body ?? '{}')).toMatchObject({
      subject: queued?.subject,
      payload: { data: { kind: 'opened', siteId: 'preschool-b' } },
    })
    expect(await row(queued?.id)).toMatchObject({ status: 'sent', attempts: 1 })
  })

  it('retries a temporary failure (451) later, logging each attempt', async () => {
    const sub = await subscribe(storage, bo, { target: 'bo@lund.test' })
    const [queued] = await queue(sub, ['school-a'])
    smtp.failNext(451)
    expect(await dispatcher.run()).toBe(0)
    const failed = await row(queued?.id)
    expect(failed).toMatchObject({
      status: 'pending',
      attempts: 1,
      nextAttemptAt: now + RETRY_BASE_DELAY_MS,
      lastError: expect.stringMatching(/^TEMPORARY_FAILURE: /),
    })
    expect(await storage.alerts.listAttempts(queued?.id ?? 0)).toMatchObject([{ ok: false, at: now }])

    // Not before its time.
    now += RETRY_BASE_DELAY_MS - 1
    expect(await dispatcher.run()).toBe(0)
    expect(smtp.messages).toHaveLength(0)

    now += 1
    expect(await dispatcher.run()).toBe(1)
    expect(smtp.messages.map((m) => m.headers['message-id'])).toEqual([queued?.messageId])
    expect(await row(queued?.id)).toMatchObject({ status: 'sent', attempts: 2 })
    expect((await storage.alerts.listAttempts(queued?.id ?? 0)).map((a) => a.ok)).toEqual([false, true])
  })

  it('gives up at once on a permanent refusal (550)', async () => {
    const sub = await subscribe(storage, bo, { target: 'nobody@skola.test' })
    const [queued] = await queue(sub, ['school-a'])
    smtp.failNext(550)
    expect(await dispatcher.run()).toBe(0)
    expect(await row(queued?.id)).toMatchObject({
      status: 'failed',
      attempts: 1,
      lastError: expect.stringMatching(/^REJECTED: .*550/),
    })
    now += 24 * 60 * MINUTE_MS
    expect(await dispatcher.run()).toBe(0)
    expect(smtp.messages).toHaveLength(0)
  })

  it('fails a row whose channel is not configured, with a clear error', async () => {
    const sub = await subscribe(storage, bo, { channel: 'webhook', target: receiver.url })
    const [queued] = await queue(sub, ['school-a'])
    const emailOnly = dispatcherWith({ email })
    expect(await emailOnly.run()).toBe(0)
    expect(await row(queued?.id)).toMatchObject({
      status: 'failed',
      attempts: 1,
      lastError: 'no webhook channel is configured',
    })
    expect(await storage.alerts.listAttempts(queued?.id ?? 0)).toMatchObject([
      { ok: false, error: 'no webhook channel is configured' },
    ])
    expect(receiver.requests).toHaveLength(0)
  })

  it('folds the rows deferred by quiet hours into ONE digest per subscription at the end of the quiet time', async () => {
    const mail = await subscribe(storage, bo, { target: 'bo@lund.test', quietHours: DEFAULT_QUIET_HOURS })
    const hook = await subscribe(storage, bo, {
      channel: 'webhook',
      target: receiver.url,
      sites: ['school-a', 'preschool-b'],
      quietHours: DEFAULT_QUIET_HOURS,
    })
    now = EVENING
    await queue(mail, ['school-a', 'preschool-b', 'school-c'])
    const deferred = [...(await rowsOf(mail)), ...(await rowsOf(hook))]
    expect(deferred.map((r) => [r.status, r.deliverAfter])).toEqual(Array(5).fill(['deferred', NEXT_MORNING]))

    expect(await dispatcher.run()).toBe(0)
    now = NEXT_MORNING - 1
    expect(await dispatcher.run()).toBe(0)
    expect(smtp.messages).toHaveLength(0)
    expect(receiver.requests).toHaveLength(0)

    now = NEXT_MORNING
    expect(await dispatcher.run()).toBe(2)
    expect(smtp.messages).toHaveLength(1)
    const [digestMail] = smtp.messages
    expect(digestMail?.subject).toBe('Sammanfattning: 3 meddelanden – 3 platser')
    for (const site of ['Skola A', 'Förskola B', 'Skola C']) expect(digestMail?.text).toContain(site)

    expect(receiver.requests).toHaveLength(1)
    expect(JSON.parse(receiver.requests[0]?.body ?? '{}')).toMatchObject({
      payload: { digest: [{ data: { siteId: 'school-a' } }, { data: { siteId: 'preschool-b' } }] },
    })

    for (const sub of [mail, hook]) {
      const rows = await rowsOf(sub)
      const digest = rows.find((r) => r.eventId === null)
      expect(digest).toMatchObject({ status: 'sent', attempts: 1 })
      const members = rows.filter((r) => r.eventId !== null)
      expect(members.every((r) => r.status === 'digested' && r.digestId === digest?.id)).toBe(true)
    }
    expect(digestMail?.headers['message-id']).toBe((await rowsOf(mail)).find((r) => r.eventId === null)?.messageId)

    // Nothing is sent twice.
    now += MINUTE_MS
    expect(await dispatcher.run()).toBe(0)
    expect(smtp.messages).toHaveLength(1)
    expect(receiver.requests).toHaveLength(1)
  })

  it('never claims in-app rows: they are delivered by being stored, deferred ones as an in-app digest', async () => {
    const instantSub = await subscribe(storage, bo, { channel: 'in_app', target: null })
    const [instant] = await queue(instantSub, ['school-a'])
    expect(instant).toMatchObject({ status: 'sent', attempts: 0 })
    expect(await dispatcher.run()).toBe(0)
    expect(await row(instant?.id)).toMatchObject({ status: 'sent', attempts: 0, lastError: null })
    expect(await storage.alerts.listAttempts(instant?.id ?? 0)).toEqual([])

    const eve = await addUser(storage, 'eve@lund.test', 'staff')
    const quiet = await subscribe(storage, eve, { channel: 'in_app', target: null, quietHours: DEFAULT_QUIET_HOURS })
    now = EVENING
    await queue(quiet, ['school-a', 'school-c'])
    now = NEXT_MORNING
    expect(await dispatcher.run()).toBe(0)
    const rows = await rowsOf(quiet)
    const digest = rows.find((r) => r.eventId === null)
    expect(digest).toMatchObject({ status: 'sent', attempts: 0, channel: 'in_app' })
    expect(rows.filter((r) => r.eventId !== null).map((r) => r.status)).toEqual(['digested', 'digested'])
    expect((await storage.alerts.listNotifications(eve, { limit: 10 })).map((n) => n.id)).toEqual([digest?.id])
    expect(await storage.alerts.listOutbox({ status: 'failed', limit: 10 })).toEqual([])
  })

  it('sends a row claimed by a dispatcher that crashed, once its lease has run out, with the same Message-ID', async () => {
    const sub = await subscribe(storage, bo, { target: 'bo@lund.test' })
    const [queued] = await queue(sub, ['school-a'])

    // Another process claims the row and dies before sending it.
    const crashed = openSqliteStorage({ path: fixture.path })
    const claimed = await crashed.alerts.claimDue(now, 10, LEASE_MS)
    await crashed.close()
    expect(claimed.map((r) => r.id)).toEqual([queued?.id])
    expect(await row(queued?.id)).toMatchObject({ status: 'sending', leaseUntil: now + LEASE_MS })

    expect(await dispatcher.run()).toBe(0)
    now += LEASE_MS - 1
    expect(await dispatcher.run()).toBe(0)
    expect(smtp.messages).toHaveLength(0)

    now += 2
    expect(await dispatcher.run()).toBe(1)
    expect(smtp.messages.map((m) => m.headers['message-id'])).toEqual([claimed[0]?.messageId])
    expect(await row(queued?.id)).toMatchObject({ status: 'sent', attempts: 1 })
  })
})
