import { randomUUID } from 'node:crypto'
import type Database from 'better-sqlite3'
import { z } from 'zod'
import { StorageError } from '../errors.ts'
import {
  AlertEventRecord,
  type AlertStore,
  AttemptOutcome,
  DeliveryAttempt,
  type EvaluationCommit,
  IncidentId,
  MAX_ALERT_DATA_CHARS,
  MAX_ATTEMPT_ERROR_CHARS,
  MAX_HEALTH_STATE_CHARS,
  MAX_MARK_READ_IDS,
  MAX_MESSAGE_CHARS,
  NewAlertEvent,
  NewOutboxMessage,
  NewSubscription,
  OUTBOX_STATUSES,
  OutboxRecord,
  SubscriptionRecord,
} from '../types.ts'
import { createIncidentWriter, invalid } from './incident-writer.ts'

interface EventRow {
  id: number
  key: string
  kind: string
  topic: string
  site_id: string | null
  device_id: string | null
  incident_id: string | null
  severity: string
  urgent: number
  live: number
  at: number
  data: string
  created_at: number
  fanned_out_at: number | null
}

type NewEventRow = Omit<EventRow, 'id' | 'fanned_out_at'>

interface SubscriptionRow {
  id: string
  user_id: string
  topic: string
  channel: string
  target: string | null
  all_sites: number
  min_severity: string
  language: string
  quiet_hours: string | null
  unsubscribe_hash: string
  created_at: number
  disabled_at: number | null
}

interface OutboxRow {
  id: number
  message_id: string
  event_id: number | null
  subscription_id: string
  user_id: string
  channel: string
  target: string | null
  language: string
  site_id: string | null
  status: string
  deliver_after: number
  next_attempt_at: number
  lease_until: number | null
  attempts: number
  subject: string
  text: string
  html: string
  payload: string
  created_at: number
  sent_at: number | null
  last_error: string | null
  digest_id: number | null
  read_at: number | null
}

type NewOutboxRow = Omit<OutboxRow, 'id'>

interface AttemptRow {
  outbox_id: number
  at: number
  ok: number
  error: string | null
  duration_ms: number
}

/** A validated outbox message with its payload as JSON text. */
interface PreparedMessage {
  readonly message: z.output<typeof NewOutboxMessage>
  readonly payload: string
}

const EpochMs = z.number().int().min(0)
const RowId = z.number().int().positive()
const Limit = z.number().int()
const Withdrawals = z.array(z.object({ id: IncidentId, at: EpochMs }))

const EventQuery = z.object({
  incidentId: z.string().optional(),
  siteId: z.string().optional(),
  limit: Limit,
  beforeId: z.number().int().optional(),
})
const SubscriptionQuery = z.object({
  userId: z.string().optional(),
  topic: z.string().optional(),
  siteId: z.string().optional(),
  includeDisabled: z.boolean().optional(),
})
const OutboxQuery = z.object({
  userId: z.string().optional(),
  status: z.enum(OUTBOX_STATUSES).optional(),
  limit: Limit,
  beforeId: z.number().int().optional(),
})
const NotificationQuery = z.object({
  limit: Limit,
  unreadOnly: z.boolean().optional(),
  beforeId: z.number().int().optional(),
})
const Attempt = DeliveryAttempt.omit({ outboxId: true })
/** Bounded by the dispatcher's batch (`dueDeferred` limit); a guard against a runaway call, not a policy. */
const MAX_DIGEST_MEMBERS = 10_000
const DigestMembers = z.array(RowId).min(1, 'a digest needs members').max(MAX_DIGEST_MEMBERS)
const HealthState = z.object({ state: z.string().min(1).max(MAX_HEALTH_STATE_CHARS), since: EpochMs })

export function createSqliteAlertStore(db: Database.Database): AlertStore {
  const incidents = createIncidentWriter(db)
  const siteExists = db.prepare<[string], { id: string }>('SELECT id FROM sites WHERE id = ?')
  const deviceExists = db.prepare<[string], { id: string }>('SELECT id FROM devices WHERE id = ?')
  const incidentExists = db.prepare<[string], { id: string }>('SELECT id FROM incidents WHERE id = ?')
  const userExists = db.prepare<[string], { id: string }>('SELECT id FROM users WHERE id = ?')

  // Events.
  const insertEvent = db.prepare<NewEventRow, never>(
    `INSERT INTO alert_events (key, kind, topic, site_id, device_id, incident_id, severity, urgent, live, at, data,
       created_at)
     VALUES (@key, @kind, @topic, @site_id, @device_id, @incident_id, @severity, @urgent, @live, @at, @data,
       @created_at)
     ON CONFLICT (key) DO NOTHING`,
  )
  const selectEvent = db.prepare<[number], EventRow>('SELECT * FROM alert_events WHERE id = ?')
  // Matches the WHERE of the partial index alert_events_pending.
  const selectPendingFanOut = db.prepare<[number], EventRow>(
    'SELECT * FROM alert_events WHERE live = 1 AND fanned_out_at IS NULL ORDER BY id LIMIT ?',
  )
  const markFannedOut = db.prepare<[number, number], never>(
    'UPDATE alert_events SET fanned_out_at = ? WHERE id = ? AND fanned_out_at IS NULL',
  )
  const eventStatements = new Map<string, Database.Statement<unknown[], EventRow>>()

  // Subscriptions.
  const insertSubscription = db.prepare<SubscriptionRow, never>(
    `INSERT INTO subscriptions (id, user_id, topic, channel, target, all_sites, min_severity, language, quiet_hours,
       unsubscribe_hash, created_at, disabled_at)
     VALUES (@id, @user_id, @topic, @channel, @target, @all_sites, @min_severity, @language, @quiet_hours,
       @unsubscribe_hash, @created_at, @disabled_at)`,
  )
  const insertSubscriptionSite = db.prepare<[string, string], never>(
    'INSERT INTO subscription_sites (subscription_id, site_id) VALUES (?, ?)',
  )
  const selectSubscription = db.prepare<[string], SubscriptionRow>('SELECT * FROM subscriptions WHERE id = ?')
  const selectSubscriptionSites = db.prepare<[string], { site_id: string }>(
    'SELECT site_id FROM subscription_sites WHERE subscription_id = ? ORDER BY site_id',
  )
  const disableSubscription = db.prepare<[number, string], never>(
    'UPDATE subscriptions SET disabled_at = ? WHERE id = ? AND disabled_at IS NULL',
  )
  const cancelQueued = db.prepare<[string], never>(
    `UPDATE outbox SET status = 'cancelled' WHERE subscription_id = ? AND status IN ('pending', 'deferred')`,
  )
  const subscriptionStatements = new Map<string, Database.Statement<unknown[], SubscriptionRow>>()

  // Outbox.
  const insertOutbox = db.prepare<NewOutboxRow, never>(
    `INSERT INTO outbox (message_id, event_id, subscription_id, user_id, channel, target, language, site_id, status,
       deliver_after, next_attempt_at, lease_until, attempts, subject, text, html, payload, created_at, sent_at,
       last_error, digest_id, read_at)
     VALUES (@message_id, @event_id, @subscription_id, @user_id, @channel, @target, @language, @site_id, @status,
       @deliver_after, @next_attempt_at, @lease_until, @attempts, @subject, @text, @html, @payload, @created_at,
       @sent_at, @last_error, @digest_id, @read_at)
     ON CONFLICT (event_id, subscription_id) DO NOTHING`,
  )
  const setMessageId = db.prepare<[string, number], never>('UPDATE outbox SET message_id = ? WHERE id = ?')
  const selectOutbox = db.prepare<[number], OutboxRow>('SELECT * FROM outbox WHERE id = ?')
  /*
   * The work queues read their partial indexes, which hold only the rows waiting in them. INDEXED BY because the
   * planner (no ANALYZE statistics) otherwise picks outbox_by_status (status, id), which walks every row of the
   * status and sorts them; INDEXED BY also makes prepare fail if the index is ever missing.
   */
  const selectExpiredLeases = db.prepare<[number, number], OutboxRow>(
    `SELECT * FROM outbox INDEXED BY outbox_leased WHERE status = 'sending' AND lease_until <= ?
     ORDER BY lease_until, id LIMIT ?`,
  )
  const selectDue = db.prepare<[number, number, number], OutboxRow>(
    `SELECT * FROM outbox INDEXED BY outbox_pending WHERE status = 'pending' AND next_attempt_at <= ?
       AND deliver_after <= ?
       AND channel <> 'in_app'
     ORDER BY next_attempt_at, id LIMIT ?`,
  )
  const lease = db.prepare<[number, number], never>(
    `UPDATE outbox SET status = 'sending', lease_until = ? WHERE id = ?`,
  )
  const insertAttempt = db.prepare<AttemptRow, never>(
    `INSERT INTO delivery_attempts (outbox_id, at, ok, error, duration_ms)
     VALUES (@outbox_id, @at, @ok, @error, @duration_ms)`,
  )
  const countAttempt = db.prepare<[number], never>('UPDATE outbox SET attempts = attempts + 1 WHERE id = ?')
  const finish = db.prepare<
    {
      id: number
      status: string
      sent_at: number | null
      next_attempt_at: number
      last_error: string | null
    },
    never
  >(
    `UPDATE outbox SET attempts = attempts + 1, status = @status, sent_at = @sent_at,
       next_attempt_at = @next_attempt_at, lease_until = NULL, last_error = @last_error
     WHERE id = @id`,
  )
  const selectDeferred = db.prepare<[number, number], OutboxRow>(
    `SELECT * FROM outbox INDEXED BY outbox_deferred WHERE status = 'deferred' AND deliver_after <= ?
     ORDER BY deliver_after, id LIMIT ?`,
  )
  const markDigested = db.prepare<[number, number], never>(
    `UPDATE outbox SET status = 'digested', digest_id = ? WHERE id = ?`,
  )
  const recent = db.prepare<[string, number], { count: number; oldest: number | null }>(
    `SELECT count(*) AS count, min(created_at) AS oldest FROM outbox
     WHERE user_id = ? AND created_at >= ? AND status IN ('pending', 'sending', 'sent')`,
  )
  const recentOfChannel = db.prepare<[string, number, string], { count: number; oldest: number | null }>(
    `SELECT count(*) AS count, min(created_at) AS oldest FROM outbox
     WHERE user_id = ? AND created_at >= ? AND status IN ('pending', 'sending', 'sent') AND channel = ?`,
  )
  const outboxStatements = new Map<string, Database.Statement<unknown[], OutboxRow>>()
  const selectAttempts = db.prepare<[number], AttemptRow>(
    'SELECT outbox_id, at, ok, error, duration_ms FROM delivery_attempts WHERE outbox_id = ? ORDER BY id',
  )

  // In-app notifications: in_app rows that were delivered (partial index outbox_notifications).
  const notificationStatements = new Map<string, Database.Statement<unknown[], OutboxRow>>()
  const unread = db.prepare<[string], { count: number }>(
    `SELECT count(*) AS count FROM outbox
     WHERE user_id = ? AND channel = 'in_app' AND status = 'sent' AND read_at IS NULL`,
  )
  const markRead = db.prepare<[number, number, string], never>(
    `UPDATE outbox SET read_at = ?
     WHERE id = ? AND user_id = ? AND channel = 'in_app' AND status = 'sent' AND read_at IS NULL`,
  )

  // Device health.
  const selectHealth = db.prepare<[], { device_id: string; state: string; since: number }>(
    'SELECT device_id, state, since FROM device_health ORDER BY device_id',
  )
  const upsertHealth = db.prepare<[string, string, number], never>(
    `INSERT INTO device_health (device_id, state, since) VALUES (?, ?, ?)
     ON CONFLICT (device_id) DO UPDATE SET state = excluded.state, since = excluded.since`,
  )

  function cached<Row>(
    cache: Map<string, Database.Statement<unknown[], Row>>,
    sql: string,
  ): Database.Statement<unknown[], Row> {
    let statement = cache.get(sql)
    if (statement === undefined) {
      statement = db.prepare<unknown[], Row>(sql)
      cache.set(sql, statement)
    }
    return statement
  }

  /** Inserts the events whose key is new; references are checked so the error names what is missing. */
  function insertEvents(rows: readonly NewEventRow[]): number {
    let inserted = 0
    for (const row of rows) {
      if (row.site_id !== null && siteExists.get(row.site_id) === undefined) {
        throw new StorageError(
          'UNKNOWN_SITE',
          `alert event ${row.key}: site ${JSON.stringify(row.site_id)} does not exist`,
        )
      }
      if (row.device_id !== null && deviceExists.get(row.device_id) === undefined) {
        throw new StorageError(
          'UNKNOWN_DEVICE',
          `alert event ${row.key}: device ${JSON.stringify(row.device_id)} does not exist`,
        )
      }
      if (row.incident_id !== null && incidentExists.get(row.incident_id) === undefined) {
        throw new StorageError(
          'UNKNOWN_INCIDENT',
          `alert event ${row.key}: incident ${JSON.stringify(row.incident_id)} does not exist (give a new incident its id)`,
        )
      }
      inserted += insertEvent.run(row).changes
    }
    return inserted
  }

  const appendEvents = db.transaction(insertEvents)

  const commit = db.transaction(
    (list: EvaluationCommit['incidents'], withdrawals: z.output<typeof Withdrawals>, rows: readonly NewEventRow[]) => {
      const saved = list.map((incident) => incidents.save(incident))
      for (const w of withdrawals) {
        if (!incidents.withdraw(w.id, w.at)) {
          throw new StorageError('UNKNOWN_INCIDENT', `incident ${JSON.stringify(w.id)} to withdraw does not exist`)
        }
      }
      return { incidents: saved, eventsInserted: insertEvents(rows) }
    },
  )

  /**
   * Inserts one outbox row; null when (event, subscription) has one already. in_app rows that would wait for the
   * dispatcher are delivered by being stored (status sent): the notification list reads them.
   */
  function insertMessage(
    prepared: PreparedMessage,
    eventId: number | null,
    siteId: string | null,
    now: number,
  ): number | null {
    const m = prepared.message
    const delivered = m.channel === 'in_app' && m.status === 'pending'
    // Unique until the row id is known; then the final Message-ID includes the id (same transaction).
    const token = randomUUID()
    const result = insertOutbox.run({
      message_id: token,
      event_id: eventId,
      subscription_id: m.subscriptionId,
      user_id: m.userId,
      channel: m.channel,
      target: m.target,
      language: m.language,
      site_id: siteId,
      status: delivered ? 'sent' : m.status,
      deliver_after: m.deliverAfter,
      next_attempt_at: m.deliverAfter,
      lease_until: null,
      attempts: 0,
      subject: m.subject,
      text: m.text,
      html: m.html,
      payload: prepared.payload,
      created_at: now,
      sent_at: delivered ? now : null,
      last_error: null,
      digest_id: null,
      read_at: null,
    })
    if (result.changes === 0) return null
    const id = Number(result.lastInsertRowid)
    setMessageId.run(`<o${id}.${token}@skolluft>`, id)
    return id
  }

  /** The subscription a message is for; it must exist and name the same user and channel. */
  function subscriptionOf(m: PreparedMessage['message']): SubscriptionRow {
    const sub = selectSubscription.get(m.subscriptionId)
    if (sub === undefined) {
      throw new StorageError('UNKNOWN_SUBSCRIPTION', `subscription ${JSON.stringify(m.subscriptionId)} does not exist`)
    }
    if (sub.user_id !== m.userId || sub.channel !== m.channel) {
      throw new StorageError(
        'INVALID_ALERT',
        `outbox message for subscription ${sub.id} names user ${m.userId} and channel ${m.channel}; the subscription has ${sub.user_id} and ${sub.channel}`,
      )
    }
    return sub
  }

  const fanOut = db.transaction((eventId: number, messages: readonly PreparedMessage[], now: number): number => {
    const event = selectEvent.get(eventId)
    if (event === undefined) throw new StorageError('UNKNOWN_ALERT_EVENT', `alert event ${eventId} does not exist`)
    if (event.live !== 1) {
      throw new StorageError('INVALID_ALERT', `alert event ${eventId} is retrospective; it is never fanned out`)
    }
    let inserted = 0
    for (const prepared of messages) {
      // Unsubscribed since the caller listed it: nothing more goes to that subscription.
      if (subscriptionOf(prepared.message).disabled_at !== null) continue
      if (insertMessage(prepared, eventId, event.site_id, now) !== null) inserted++
    }
    markFannedOut.run(now, eventId)
    return inserted
  })

  const claim = db.transaction((now: number, limit: number, leaseMs: number): OutboxRow[] => {
    const rows = selectExpiredLeases.all(now, limit)
    if (rows.length < limit) rows.push(...selectDue.all(now, now, limit - rows.length))
    const leaseUntil = now + leaseMs
    return rows.map((row) => {
      lease.run(leaseUntil, row.id)
      return { ...row, status: 'sending', lease_until: leaseUntil }
    })
  })

  const finishAttempt = db.transaction(
    (id: number, attempt: z.output<typeof Attempt>, next: AttemptOutcome): boolean => {
      const row = selectOutbox.get(id)
      if (row === undefined) throw new StorageError('UNKNOWN_OUTBOX', `outbox message ${id} does not exist`)
      const error = attempt.error === null ? null : attempt.error.slice(0, MAX_ATTEMPT_ERROR_CHARS)
      insertAttempt.run({
        outbox_id: id,
        at: attempt.at,
        ok: attempt.ok ? 1 : 0,
        error,
        duration_ms: Math.round(attempt.durationMs),
      })
      if (row.status !== 'sending') {
        countAttempt.run(id)
        return false
      }
      finish.run({
        id,
        status: next.status,
        sent_at: next.status === 'sent' ? attempt.at : null,
        next_attempt_at: next.status === 'pending' ? next.nextAttemptAt : row.next_attempt_at,
        last_error: error ?? row.last_error,
      })
      return true
    },
  )

  const createDigest = db.transaction((members: readonly number[], digest: PreparedMessage, now: number): number => {
    const sub = subscriptionOf(digest.message)
    const siteIds = new Set<string | null>()
    for (const memberId of members) {
      const member = selectOutbox.get(memberId)
      if (member === undefined) throw new StorageError('UNKNOWN_OUTBOX', `outbox message ${memberId} does not exist`)
      if (member.subscription_id !== sub.id) {
        throw new StorageError(
          'INVALID_ALERT',
          `outbox message ${memberId} belongs to subscription ${member.subscription_id}, not ${sub.id}`,
        )
      }
      if (member.status !== 'deferred') {
        throw new StorageError(
          'CONFLICT',
          `outbox message ${memberId} is ${member.status}, not deferred${member.digest_id === null ? '' : ` (digest ${member.digest_id})`}`,
        )
      }
      siteIds.add(member.site_id)
    }
    if (sub.disabled_at !== null) throw new StorageError('CONFLICT', `subscription ${sub.id} is disabled`)
    const [onlySite] = siteIds
    const id = insertMessage(digest, null, siteIds.size === 1 ? (onlySite ?? null) : null, now)
    // A digest has no event, so the (event, subscription) key never makes it a duplicate.
    if (id === null) throw new StorageError('CONFLICT', `digest for subscription ${sub.id} was not inserted`)
    for (const memberId of members) markDigested.run(id, memberId)
    return id
  })

  const addSubscription = db.transaction((row: SubscriptionRow, sites: readonly string[] | 'all') => {
    if (userExists.get(row.user_id) === undefined) {
      throw new StorageError('UNKNOWN_USER', `user ${JSON.stringify(row.user_id)} does not exist`)
    }
    if (sites !== 'all') {
      for (const site of sites) {
        if (siteExists.get(site) === undefined) {
          throw new StorageError('UNKNOWN_SITE', `site ${JSON.stringify(site)} does not exist`)
        }
      }
    }
    if (selectSubscription.get(row.id) !== undefined) {
      throw new StorageError('CONFLICT', `subscription ${row.id} exists already`)
    }
    insertSubscription.run(row)
    if (sites !== 'all') for (const site of sites) insertSubscriptionSite.run(row.id, site)
  })

  const disable = db.transaction((id: string, at: number): boolean => {
    const changed = disableSubscription.run(at, id).changes > 0
    if (!changed && selectSubscription.get(id) === undefined) return false
    cancelQueued.run(id)
    return true
  })

  const markReadAll = db.transaction((userId: string, ids: readonly number[], at: number): number => {
    let changed = 0
    for (const id of ids) changed += markRead.run(at, id, userId).changes
    return changed
  })

  function subscriptionFromRow(row: SubscriptionRow): SubscriptionRecord {
    const record = SubscriptionRecord.safeParse({
      id: row.id,
      userId: row.user_id,
      topic: row.topic,
      channel: row.channel,
      target: row.target,
      sites: row.all_sites === 1 ? 'all' : selectSubscriptionSites.all(row.id).map((s) => s.site_id),
      minSeverity: row.min_severity,
      language: row.language,
      quietHours: row.quiet_hours === null ? null : readJson(row.quiet_hours, `subscription ${row.id} quiet hours`),
      createdAt: row.created_at,
      disabledAt: row.disabled_at,
    })
    if (!record.success) throw invalid('CORRUPT_ROW', `stored subscription ${row.id}`, record.error)
    return record.data
  }

  return {
    async commitEvaluation(change) {
      const withdrawals = Withdrawals.safeParse(change.withdrawals)
      if (!withdrawals.success) throw invalid('INVALID_INCIDENT', 'withdrawals', withdrawals.error)
      const now = checkTime(change.now, 'commitEvaluation now')
      return commit.immediate(change.incidents, withdrawals.data, eventRows(change.events, now))
    },

    async appendEvents(events, now) {
      const rows = eventRows(events, checkTime(now, 'appendEvents now'))
      return appendEvents.immediate(rows)
    },

    async getEvent(id) {
      const row = selectEvent.get(id)
      return row === undefined ? undefined : eventFromRow(row)
    },

    async listEvents(query) {
      const parsed = EventQuery.safeParse(query)
      if (!parsed.success) throw invalid('INVALID_QUERY', 'alert event query', parsed.error)
      const q = parsed.data
      if (q.limit <= 0) return []
      const { where, params } = conditions([
        ['incident_id = ?', q.incidentId],
        ['site_id = ?', q.siteId],
        ['id < ?', q.beforeId],
      ])
      const sql = `SELECT * FROM alert_events ${whereClause(where)} ORDER BY id DESC LIMIT ?`
      return cached(eventStatements, sql)
        .all(...params, q.limit)
        .map(eventFromRow)
    },

    async pendingFanOut(limit) {
      if (!Number.isInteger(limit) || limit <= 0) return []
      return selectPendingFanOut.all(limit).map(eventFromRow)
    },

    async fanOut(eventId, messages, now) {
      const at = checkTime(now, 'fanOut now')
      const prepared = messages.map((m, i) => prepareMessage(m, `outbox message ${i} of event ${eventId}`))
      return fanOut.immediate(eventId, prepared, at)
    },

    async addSubscription(subscription) {
      const parsed = NewSubscription.safeParse(subscription)
      if (!parsed.success) {
        throw invalid('INVALID_SUBSCRIPTION', `subscription ${subscription.id ?? '(new)'}`, parsed.error)
      }
      const s = parsed.data
      const id = s.id ?? `sub_${randomUUID()}`
      const sites = s.sites === 'all' ? 'all' : [...new Set(s.sites)].sort()
      addSubscription.immediate(
        {
          id,
          user_id: s.userId,
          topic: s.topic,
          channel: s.channel,
          target: s.target,
          all_sites: sites === 'all' ? 1 : 0,
          min_severity: s.minSeverity,
          language: s.language,
          quiet_hours: s.quietHours === null ? null : JSON.stringify(s.quietHours),
          unsubscribe_hash: s.unsubscribeHash,
          created_at: s.createdAt,
          disabled_at: null,
        },
        sites,
      )
      const row = selectSubscription.get(id)
      if (row === undefined) throw new StorageError('UNKNOWN_SUBSCRIPTION', `subscription ${id} vanished while adding`)
      return subscriptionFromRow(row)
    },

    async getSubscription(id) {
      const row = selectSubscription.get(id)
      return row === undefined ? undefined : subscriptionFromRow(row)
    },

    async listSubscriptions(query = {}) {
      const parsed = SubscriptionQuery.safeParse(query)
      if (!parsed.success) throw invalid('INVALID_QUERY', 'subscription query', parsed.error)
      const q = parsed.data
      const where: string[] = []
      const params: unknown[] = []
      if (q.userId !== undefined) {
        where.push('user_id = ?')
        params.push(q.userId)
      }
      if (q.topic !== undefined) {
        where.push('topic = ?')
        params.push(q.topic)
      }
      if (q.siteId !== undefined) {
        where.push(
          `(all_sites = 1 OR EXISTS (SELECT 1 FROM subscription_sites
             WHERE subscription_id = subscriptions.id AND site_id = ?))`,
        )
        params.push(q.siteId)
      }
      if (q.includeDisabled !== true) where.push('disabled_at IS NULL')
      const sql = `SELECT * FROM subscriptions ${whereClause(where)} ORDER BY created_at, id`
      return cached(subscriptionStatements, sql)
        .all(...params)
        .map(subscriptionFromRow)
    },

    async disableSubscription(id, at) {
      return disable.immediate(id, checkTime(at, 'disableSubscription at'))
    },

    async getUnsubscribeHash(id) {
      return selectSubscription.get(id)?.unsubscribe_hash
    },

    async claimDue(now, limit, leaseMs) {
      const at = checkTime(now, 'claimDue now')
      if (!Number.isInteger(leaseMs) || leaseMs <= 0) {
        throw new StorageError('INVALID_QUERY', `claimDue leaseMs must be a positive integer, not ${leaseMs}`)
      }
      if (!Number.isInteger(limit) || limit <= 0) return []
      return claim.immediate(at, limit, leaseMs).map(outboxFromRow)
    },

    async finishAttempt(id, attempt, next) {
      const a = Attempt.safeParse(attempt)
      if (!a.success) throw invalid('INVALID_ALERT', `delivery attempt of outbox message ${id}`, a.error)
      const n = AttemptOutcome.safeParse(next)
      if (!n.success) throw invalid('INVALID_ALERT', `outcome of outbox message ${id}`, n.error)
      if (a.data.ok !== (n.data.status === 'sent')) {
        throw new StorageError(
          'INVALID_ALERT',
          `outbox message ${id}: an attempt that ${a.data.ok ? 'succeeded' : 'failed'} cannot move it to ${n.data.status}`,
        )
      }
      return finishAttempt.immediate(id, a.data, n.data)
    },

    async dueDeferred(now, limit) {
      const groups = new Map<string, OutboxRecord[]>()
      if (!Number.isInteger(limit) || limit <= 0) return groups
      for (const row of selectDeferred.all(checkTime(now, 'dueDeferred now'), limit)) {
        const record = outboxFromRow(row)
        const group = groups.get(record.subscriptionId)
        if (group === undefined) groups.set(record.subscriptionId, [record])
        else group.push(record)
      }
      for (const group of groups.values()) group.sort((a, b) => a.id - b.id)
      return groups
    },

    async createDigest(members, digest, now) {
      const m = DigestMembers.safeParse(members)
      if (!m.success) throw invalid('INVALID_ALERT', 'digest members', m.error)
      const prepared = prepareMessage(digest, `digest for subscription ${digest.subscriptionId}`)
      const id = createDigest.immediate([...new Set(m.data)], prepared, checkTime(now, 'createDigest now'))
      const row = selectOutbox.get(id)
      if (row === undefined) throw new StorageError('UNKNOWN_OUTBOX', `digest ${id} vanished while creating`)
      return outboxFromRow(row)
    },

    async recentDeliveries(userId, since, channel) {
      const row = channel === undefined ? recent.get(userId, since) : recentOfChannel.get(userId, since, channel)
      return { count: row?.count ?? 0, oldest: row?.oldest ?? null }
    },

    async listOutbox(query) {
      const parsed = OutboxQuery.safeParse(query)
      if (!parsed.success) throw invalid('INVALID_QUERY', 'outbox query', parsed.error)
      const q = parsed.data
      if (q.limit <= 0) return []
      const { where, params } = conditions([
        ['user_id = ?', q.userId],
        ['status = ?', q.status],
        ['id < ?', q.beforeId],
      ])
      const sql = `SELECT * FROM outbox ${whereClause(where)} ORDER BY id DESC LIMIT ?`
      return cached(outboxStatements, sql)
        .all(...params, q.limit)
        .map(outboxFromRow)
    },

    async listAttempts(outboxId) {
      return selectAttempts.all(outboxId).map((row) => {
        const attempt = DeliveryAttempt.safeParse({
          outboxId: row.outbox_id,
          at: row.at,
          ok: row.ok !== 0,
          error: row.error,
          durationMs: row.duration_ms,
        })
        if (!attempt.success)
          throw invalid('CORRUPT_ROW', `stored attempt of outbox message ${outboxId}`, attempt.error)
        return attempt.data
      })
    },

    async listNotifications(userId, query) {
      const parsed = NotificationQuery.safeParse(query)
      if (!parsed.success) throw invalid('INVALID_QUERY', 'notification query', parsed.error)
      const q = parsed.data
      if (q.limit <= 0) return []
      const where = ['user_id = ?', "channel = 'in_app'", "status = 'sent'"]
      const params: unknown[] = [userId]
      if (q.unreadOnly === true) where.push('read_at IS NULL')
      if (q.beforeId !== undefined) {
        where.push('id < ?')
        params.push(q.beforeId)
      }
      const sql = `SELECT * FROM outbox ${whereClause(where)} ORDER BY id DESC LIMIT ?`
      return cached(notificationStatements, sql)
        .all(...params, q.limit)
        .map(outboxFromRow)
    },

    async unreadCount(userId) {
      return unread.get(userId)?.count ?? 0
    },

    async markRead(userId, ids, at) {
      const parsed = z.array(RowId).max(MAX_MARK_READ_IDS).safeParse(ids)
      if (!parsed.success) throw invalid('INVALID_QUERY', 'notification ids', parsed.error)
      return markReadAll.immediate(userId, parsed.data, checkTime(at, 'markRead at'))
    },

    async deviceHealthStates() {
      return new Map(selectHealth.all().map((row) => [row.device_id, { state: row.state, since: row.since }]))
    },

    async setDeviceHealthState(deviceId, state, since) {
      const parsed = HealthState.safeParse({ state, since })
      if (!parsed.success) throw invalid('INVALID_ALERT', `health state of device ${deviceId}`, parsed.error)
      if (deviceExists.get(deviceId) === undefined) {
        throw new StorageError('UNKNOWN_DEVICE', `device ${JSON.stringify(deviceId)} does not exist`)
      }
      upsertHealth.run(deviceId, parsed.data.state, parsed.data.since)
    },
  }
}

/** The conditions (SQL with one `?`) whose value is set, and their values in the same order. */
function conditions(filters: readonly (readonly [string, unknown])[]): { where: string[]; params: unknown[] } {
  const set = filters.filter(([, value]) => value !== undefined)
  return { where: set.map(([sql]) => sql), params: set.map(([, value]) => value) }
}

function whereClause(where: readonly string[]): string {
  return where.length === 0 ? '' : `WHERE ${where.join(' AND ')}`
}

function checkTime(value: number, what: string): number {
  const parsed = EpochMs.safeParse(value)
  if (!parsed.success) throw invalid('INVALID_ALERT', what, parsed.error)
  return parsed.data
}

/** JSON text of a value, refused when JSON cannot carry it or it is too long. */
function toJson(value: unknown, maxChars: number, what: string): string {
  let text: string | undefined
  try {
    text = JSON.stringify(value)
  } catch (error) {
    throw new StorageError('INVALID_ALERT', `${what} is not JSON-serialisable`, { cause: error })
  }
  if (text === undefined) throw new StorageError('INVALID_ALERT', `${what} is not JSON-serialisable`)
  if (text.length > maxChars) {
    throw new StorageError('INVALID_ALERT', `${what} is ${text.length} characters as JSON; at most ${maxChars}`)
  }
  return text
}

/** A stored JSON column; text that does not parse is a corrupt row. */
function readJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text)
  } catch (error) {
    throw new StorageError('CORRUPT_ROW', `stored ${what} is not JSON`, { cause: error })
  }
}

/** Validates events before any transaction starts, so a bad one refuses the whole call. */
function eventRows(events: readonly NewAlertEvent[], now: number): NewEventRow[] {
  return events.map((event, i) => {
    const parsed = NewAlertEvent.safeParse(event)
    if (!parsed.success) throw invalid('INVALID_ALERT', `alert event ${i} (${String(event.key)})`, parsed.error)
    const e = parsed.data
    return {
      key: e.key,
      kind: e.kind,
      topic: e.topic,
      site_id: e.siteId,
      device_id: e.deviceId,
      incident_id: e.incidentId,
      severity: e.severity,
      urgent: e.urgent ? 1 : 0,
      live: e.live ? 1 : 0,
      at: e.at,
      data: toJson(e.data, MAX_ALERT_DATA_CHARS, `alert event ${e.key} data`),
      created_at: now,
    }
  })
}

function prepareMessage(message: NewOutboxMessage, what: string): PreparedMessage {
  const parsed = NewOutboxMessage.safeParse(message)
  if (!parsed.success) throw invalid('INVALID_ALERT', what, parsed.error)
  return { message: parsed.data, payload: toJson(parsed.data.payload, MAX_MESSAGE_CHARS, `${what} payload`) }
}

function eventFromRow(row: EventRow): AlertEventRecord {
  const record = AlertEventRecord.safeParse({
    id: row.id,
    key: row.key,
    kind: row.kind,
    topic: row.topic,
    siteId: row.site_id,
    deviceId: row.device_id,
    incidentId: row.incident_id,
    severity: row.severity,
    urgent: row.urgent !== 0,
    live: row.live !== 0,
    at: row.at,
    data: readJson(row.data, `alert event ${row.id} data`),
    createdAt: row.created_at,
    fannedOutAt: row.fanned_out_at,
  })
  if (!record.success) throw invalid('CORRUPT_ROW', `stored alert event ${row.id}`, record.error)
  return record.data
}

function outboxFromRow(row: OutboxRow): OutboxRecord {
  const record = OutboxRecord.safeParse({
    id: row.id,
    messageId: row.message_id,
    eventId: row.event_id,
    subscriptionId: row.subscription_id,
    userId: row.user_id,
    channel: row.channel,
    target: row.target,
    language: row.language,
    siteId: row.site_id,
    status: row.status,
    deliverAfter: row.deliver_after,
    nextAttemptAt: row.next_attempt_at,
    leaseUntil: row.lease_until,
    attempts: row.attempts,
    subject: row.subject,
    text: row.text,
    html: row.html,
    payload: readJson(row.payload, `outbox message ${row.id} payload`),
    createdAt: row.created_at,
    sentAt: row.sent_at,
    lastError: row.last_error,
    digestId: row.digest_id,
    readAt: row.read_at,
  })
  if (!record.success) throw invalid('CORRUPT_ROW', `stored outbox message ${row.id}`, record.error)
  return record.data
}
