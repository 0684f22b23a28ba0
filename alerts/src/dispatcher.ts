import { renderDigest } from '@skolluft/core'
import type { Logger } from '@skolluft/runtime'
import { deriveSecret } from '@skolluft/runtime'
import { type OutboxRecord, type Storage, StorageError } from '@skolluft/storage'
import { z } from 'zod'
import { planRetry } from './channels/backoff.ts'
import { type Channel, DeliveryError } from './channels/types.ts'
import { AlertEventData } from './event-data.ts'
import type { Links } from './links.ts'

/**
 * Delivery from the durable outbox. Each due row is claimed with a lease (storage `claimDue`), sent through its
 * channel, and finished with its attempt in one transaction (`finishAttempt`). A process that dies while
 * sending leaves the row claimed; when the lease runs out another pass (this process after a restart, or
 * another instance) sends it again with the SAME Message-ID / X-Skolluft-Delivery, so a receiver can tell a
 * repeat. That window (between the server's acceptance and our commit) is the only way a message can arrive
 * twice; a message that was queued but not being sent is delivered exactly once after a crash.
 *
 * Deferred rows (quiet hours, rate limit) whose time has come are folded into one digest per subscription.
 */
export interface Dispatcher {
  /** One pass: digests, then due rows. Returns the rows sent. */
  run(): Promise<number>
}

/** Rows claimed per pass, and sent at once (bounded so one slow SMTP server does not hold a thousand leases). */
const CLAIM_BATCH = 20
/** Deferred rows folded into digests per pass; the rest wait for the next pass. */
const DIGEST_ROWS_PER_PASS = 1_000
/** Messages sent in parallel within a pass. */
const SEND_CONCURRENCY = 4

export interface DispatcherOptions {
  readonly storage: Pick<Storage, 'alerts'>
  readonly channels: Partial<Record<'email' | 'webhook', Channel>>
  readonly clock: () => number
  readonly log: Logger
  readonly links: Links
  readonly masterKey: Buffer
  /** How long a claimed row stays reserved; longer than any channel timeout. */
  readonly leaseMs: number
}

const DigestPayload = z.object({ data: AlertEventData })

export function createDispatcher(options: DispatcherOptions): Dispatcher {
  const { storage, channels, clock, links, masterKey, leaseMs } = options
  const log = options.log.child({ module: 'dispatcher' })

  async function digests(): Promise<void> {
    const now = clock()
    const due = await storage.alerts.dueDeferred(now, DIGEST_ROWS_PER_PASS)
    for (const [subscriptionId, rows] of due) {
      const first = rows[0]
      if (first === undefined) continue
      const items = rows.flatMap((row) => {
        const parsed = DigestPayload.safeParse(row.payload)
        return parsed.success ? [parsed.data.data] : []
      })
      const unsubscribe =
        first.channel === 'in_app'
          ? null
          : links.unsubscribe(subscriptionId, deriveSecret(masterKey, 'unsubscribe', subscriptionId))
      const rendered =
        rows.length === 1 ? first : renderDigest(items, first.language, { dashboard: links.site(null), unsubscribe })
      await createDigestOnce(
        rows.map((r) => r.id),
        {
          subscriptionId,
          userId: first.userId,
          channel: first.channel,
          target: first.target,
          status: 'pending',
          deliverAfter: now,
          subject: rendered.subject,
          text: rendered.text,
          html: rendered.html,
          language: first.language,
          payload: { digest: rows.map((r) => r.payload) },
        },
        now,
      )
      log.info({ subscriptionId, items: rows.length }, 'digest queued')
    }
  }

  /** Another instance may have made this digest first (CONFLICT): then there is nothing left to do. */
  async function createDigestOnce(...args: Parameters<typeof storage.alerts.createDigest>): Promise<void> {
    try {
      await storage.alerts.createDigest(...args)
    } catch (error) {
      if (error instanceof StorageError && error.code === 'CONFLICT') return
      throw error
    }
  }

  async function deliver(row: OutboxRecord): Promise<boolean> {
    const started = clock()
    const kind = row.channel
    const channel = kind === 'in_app' ? undefined : channels[kind]
    const attempt = (ok: boolean, error: string | null) => ({ at: started, ok, error, durationMs: clock() - started })
    if (kind === 'in_app' || channel === undefined || row.target === null) {
      const error = `no ${row.channel} channel is configured`
      await storage.alerts.finishAttempt(row.id, attempt(false, error), { status: 'failed' })
      log.error({ outboxId: row.id, channel: row.channel }, error)
      return false
    }
    try {
      await channel.send({
        id: row.id,
        messageId: row.messageId,
        channel: kind,
        target: row.target,
        subscriptionId: row.subscriptionId,
        subject: row.subject,
        text: row.text,
        html: row.html,
        payload: row.payload,
        language: row.language,
        unsubscribeUrl: links.unsubscribe(
          row.subscriptionId,
          deriveSecret(masterKey, 'unsubscribe', row.subscriptionId),
        ),
      })
      await storage.alerts.finishAttempt(row.id, attempt(true, null), { status: 'sent' })
      return true
    } catch (error) {
      const failure =
        error instanceof DeliveryError ? error : new DeliveryError('INTERNAL', String(error), { permanent: false })
      const attempts = row.attempts + 1
      const next = planRetry({ attempts, now: clock(), error: failure })
      await storage.alerts.finishAttempt(row.id, attempt(false, `${failure.code}: ${failure.message}`), next)
      log.warn(
        { outboxId: row.id, channel: row.channel, code: failure.code, attempts, gaveUp: next.status === 'failed' },
        'alert delivery failed',
      )
      return false
    }
  }

  return {
    async run() {
      await digests()
      let sent = 0
      for (;;) {
        const rows = await storage.alerts.claimDue(clock(), CLAIM_BATCH, leaseMs)
        if (rows.length === 0) return sent
        for (let i = 0; i < rows.length; i += SEND_CONCURRENCY) {
          const results = await Promise.all(rows.slice(i, i + SEND_CONCURRENCY).map(deliver))
          sent += results.filter(Boolean).length
        }
        if (rows.length < CLAIM_BATCH) return sent
      }
    },
  }
}
