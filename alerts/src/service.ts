import {
  eventTopic,
  HOUR_MS,
  PROFILES,
  type ProfileSelection,
  ReadingsCommitted,
  type ThresholdProfile,
} from '@skolluft/core'
import type { Logger } from '@skolluft/runtime'
import type { Storage } from '@skolluft/storage'
import mqtt, { type MqttClient } from 'mqtt'
import type { Channel } from './channels/types.ts'
import { createDeviceHealthMonitor } from './device-health.ts'
import { createDispatcher } from './dispatcher.ts'
import { activeRules, createEvaluator } from './evaluator.ts'
import { createFanOut } from './fan-out.ts'
import type { Links } from './links.ts'
import { createReminders } from './reminders.ts'

/**
 * The alerts service. Wiring only:
 *   readings-committed (MQTT, from ingest) → evaluator (incidents + events, one transaction)
 *   → fan-out (outbox rows per subscription) → dispatcher (channels, attempts, digests).
 * Timers catch what events cannot: hours that become final by time (the last samples never came), reminders
 * for long incidents, device health, digests at the end of quiet hours, retries. On start every site is
 * re-evaluated over the last day, so events missed while the service was down are caught up.
 */
export interface AlertsServiceOptions {
  readonly log: Logger
  readonly storage: Storage
  readonly mqtt: { readonly url: string; readonly username: string; readonly password: string }
  readonly selection: ProfileSelection
  readonly profiles?: readonly ThresholdProfile[]
  readonly channels: Partial<Record<'email' | 'webhook', Channel>>
  readonly links: Links
  readonly masterKey: Buffer
  readonly clock?: () => number
  /** Outbox lease (ms); longer than any channel timeout. */
  readonly leaseMs?: number
  readonly reminderIntervalMs?: number
  /** Timer period for finality, reminders, device health, digests and retries. */
  readonly sweepMs?: number
  /** How often the outbox is polled for due rows (retries, digests); new rows are sent at once regardless. */
  readonly dispatchPollMs?: number
  readonly rateLimit?: { readonly max: number; readonly windowMs: number }
}

export interface AlertsStats {
  eventsReceived: number
  eventsRejected: number
  evaluations: number
  alertEvents: number
  outboxCreated: number
  sent: number
  errors: number
  connected: boolean
}

export interface AlertsService {
  stats(): AlertsStats
  /** Resolves when no evaluation, fan-out or delivery is running or queued (tests, benches). */
  idle(): Promise<void>
  close(): Promise<void>
}

export const DEFAULT_LEASE_MS = 120_000
export const DEFAULT_SWEEP_MS = 60_000
export const DEFAULT_DISPATCH_POLL_MS = 5_000
/** Re-evaluated on start: the last day, which covers every hourly rule's persistence and a day rule's day. */
const CATCH_UP_MS = 26 * HOUR_MS
/** Hours kept for a re-check once they are final by time (their last samples may never come). */
const MAX_AWAITING_FINAL = 100_000

export async function startAlerts(options: AlertsServiceOptions): Promise<AlertsService> {
  const log = options.log.child({ module: 'alerts' })
  const clock = options.clock ?? Date.now
  const { storage } = options
  const stats: AlertsStats = {
    eventsReceived: 0,
    eventsRejected: 0,
    evaluations: 0,
    alertEvents: 0,
    outboxCreated: 0,
    sent: 0,
    errors: 0,
    connected: false,
  }
  const today = () => new Date(clock()).toISOString().slice(0, 10)
  let rulesDay = today()
  let rules = activeRules(options.selection, rulesDay, options.profiles ?? PROFILES)
  let evaluator = createEvaluator({ storage, rules, log, clock })
  const fanOut = createFanOut({
    storage,
    log,
    clock,
    links: options.links,
    masterKey: options.masterKey,
    ...(options.rateLimit ? { rateLimit: options.rateLimit } : {}),
  })
  const dispatcher = createDispatcher({
    storage,
    channels: options.channels,
    clock,
    log,
    links: options.links,
    masterKey: options.masterKey,
    leaseMs: options.leaseMs ?? DEFAULT_LEASE_MS,
  })
  const health = createDeviceHealthMonitor({ storage, clock })
  const reminders = createReminders({
    storage,
    clock,
    ...(options.reminderIntervalMs ? { intervalMs: options.reminderIntervalMs } : {}),
    evaluatedRules: () => new Set(rules.map((r) => r.rule.id)),
  })

  // Site → hours to evaluate; hours not yet final are remembered until they are final by time.
  const dirty = new Map<string, Set<number>>()
  const awaitingFinal = new Map<string, Set<number>>()
  let closing = false
  let running: Promise<void> | null = null
  let again = false

  const mark = (target: Map<string, Set<number>>, siteId: string, hours: Iterable<number>) => {
    let set = target.get(siteId)
    if (set === undefined) {
      set = new Set()
      target.set(siteId, set)
    }
    for (const h of hours) set.add(h)
  }

  /** One pass: evaluate dirty sites, fan out, deliver. Passes never overlap; a request during one runs another. */
  function schedule(): Promise<void> {
    if (closing) return Promise.resolve()
    if (running !== null) {
      again = true
      return running
    }
    running = (async () => {
      do {
        again = false
        await pass().catch((error: unknown) => {
          stats.errors += 1
          log.error({ err: error }, 'alerts pass failed; retrying on the next trigger')
        })
      } while (again && !closing)
    })().finally(() => {
      running = null
    })
    return running
  }

  async function pass(): Promise<void> {
    if (today() !== rulesDay) {
      // Profiles have validity dates (EU 2024/2881 from 2030): the rule set is re-derived each day.
      rulesDay = today()
      rules = activeRules(options.selection, rulesDay, options.profiles ?? PROFILES)
      evaluator = createEvaluator({ storage, rules, log, clock })
    }
    const work = [...dirty]
    dirty.clear()
    for (const [siteId, hours] of work) {
      let result: Awaited<ReturnType<typeof evaluator.evaluateSite>>
      try {
        result = await evaluator.evaluateSite(siteId, [...hours])
      } catch (error) {
        // One site's failure (a storage error, a conflict with another instance) must not drop the others'
        // work: this site is tried again at the next sweep.
        stats.errors += 1
        log.error({ err: error, siteId }, 'breach evaluation failed; retrying at the next sweep')
        if (awaitingFinal.size < MAX_AWAITING_FINAL) mark(awaitingFinal, siteId, hours)
        continue
      }
      stats.evaluations += 1
      stats.alertEvents += result.events
      const now = clock()
      // Hours that are not final yet get another look once they are (their last samples may never come).
      const pending = [...hours].filter((h) => h + HOUR_MS > now - 10 * 60_000)
      if (pending.length > 0 && awaitingFinal.size < MAX_AWAITING_FINAL) mark(awaitingFinal, siteId, pending)
    }
    stats.outboxCreated += await fanOut.run()
    stats.sent += await dispatcher.run()
  }

  async function sweep(): Promise<void> {
    const now = clock()
    for (const [siteId, hours] of awaitingFinal) {
      const final = [...hours].filter((h) => h + HOUR_MS + 6 * 60_000 <= now)
      if (final.length === 0) continue
      mark(dirty, siteId, final)
      for (const h of final) hours.delete(h)
      if (hours.size === 0) awaitingFinal.delete(siteId)
    }
    stats.alertEvents += await reminders.check()
    stats.alertEvents += await health.check()
    await schedule()
  }

  async function catchUp(): Promise<void> {
    const now = clock()
    const from = Math.floor((now - CATCH_UP_MS) / HOUR_MS) * HOUR_MS
    const hours: number[] = []
    for (let t = from; t <= now; t += HOUR_MS) hours.push(t)
    for (const site of await storage.registry.listSites()) mark(dirty, site.id, hours)
    await sweep()
  }

  const client: MqttClient = mqtt.connect(options.mqtt.url, {
    clientId: options.mqtt.username,
    username: options.mqtt.username,
    password: options.mqtt.password,
    protocolVersion: 4,
    // Persistent session: events published while we reconnect are kept for us by the broker.
    clean: false,
    reconnectPeriod: 1_000,
    reconnectOnConnackError: true,
    connectTimeout: 10_000,
    resubscribe: true,
  })
  client.on('message', (_topic, payload) => {
    stats.eventsReceived += 1
    let json: unknown
    try {
      json = JSON.parse(payload.toString('utf8'))
    } catch {
      json = undefined
    }
    const parsed = ReadingsCommitted.safeParse(json)
    if (!parsed.success) {
      stats.eventsRejected += 1
      log.warn({ reason: parsed.error.issues[0]?.message }, 'readings-committed event rejected')
      return
    }
    for (const { siteId, hours } of parsed.data.sites) mark(dirty, siteId, hours)
    void schedule()
  })
  client.on('connect', () => {
    stats.connected = true
  })
  client.on('close', () => {
    stats.connected = false
  })
  client.on('error', (error) => log.error({ err: error }, 'mqtt client error'))
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve())
    client.once('error', (error) => {
      client.end(true)
      reject(error)
    })
  })
  const granted = await client.subscribeAsync(eventTopic('readings-committed'), { qos: 1 })
  if (granted.some((g) => g.qos === 128)) {
    await client.endAsync(true)
    throw new Error(`broker refused the subscription to ${eventTopic('readings-committed')}`)
  }
  log.info({ rules: rules.length }, 'alerts service started')

  const guarded = (task: () => Promise<void>) => () => {
    void task().catch((error: unknown) => {
      stats.errors += 1
      log.error({ err: error }, 'alerts timer task failed')
    })
  }
  const sweepTimer = setInterval(guarded(sweep), options.sweepMs ?? DEFAULT_SWEEP_MS)
  const dispatchTimer = setInterval(guarded(schedule), options.dispatchPollMs ?? DEFAULT_DISPATCH_POLL_MS)
  await catchUp()

  return {
    stats: () => ({ ...stats }),
    async idle() {
      while (running !== null) await running
    },
    async close() {
      closing = true
      clearInterval(sweepTimer)
      clearInterval(dispatchTimer)
      await client.endAsync(true)
      while (running !== null) await running
    },
  }
}
