import { createHash } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  ALL_TELEMETRY_FILTER,
  eventTopic,
  expectedSamplesPerHour,
  hourStart,
  parseDeviceTopic,
  parseTelemetry,
  placementAt,
  type RejectCode,
  readingsCommittedEvents,
} from '@skolluft/core'
import type { Logger } from '@skolluft/runtime'
import type { ReadingStore, RegistryStore, RejectLog, RejectRecord, StoredReading } from '@skolluft/storage'
import mqtt, { type MqttClient } from 'mqtt'
import { installAckGate } from './ack-after-commit.ts'
import { createDeviceCache } from './device-cache.ts'

/**
 * The ingest service: subscribes to every device's telemetry with a persistent session and a stable
 * client id, validates each message, writes the good readings and records the rejected ones.
 *
 * Delivery guarantee: a QoS 1 PUBLISH is acknowledged only after its readings are committed
 * (see `handleMessage` below). If the process dies between
 * receipt and commit, the broker still holds the message for our session and delivers it again;
 * storage is idempotent on (device, ts), so the redelivery is stored once. Many messages may be in
 * flight at once (up to MAX_IN_FLIGHT), which lets storage commit them in groups.
 */
/** How often the device registry is checked for changes made by other processes (CLI, API). */
export const REGISTRY_POLL_MS = 2_000
/** A failed storage write is retried with this back-off (doubling, capped); the PUBACK waits meanwhile. */
const WRITE_RETRY_INITIAL_MS = 100
const WRITE_RETRY_MAX_MS = 5_000
/**
 * Messages handled but not yet committed before the ingest stops reading from the broker. Bounds
 * memory when storage is slow (500 × a 128 KiB worst-case payload is 64 MB; a
 * typical single reading is ~150 B) and still lets storage commit hundreds of messages at once.
 */
export const MAX_IN_FLIGHT = 500
/** At most one warning per device per this period for rejected telemetry; the rest are counted. */
const REJECT_LOG_INTERVAL_MS = 10_000
/** Devices tracked for log throttling; beyond this the map is cleared (bounded memory under id floods). */
const MAX_THROTTLED_DEVICES = 10_000
/**
 * Commits are announced on `aq/v1/events/readings-committed` at most this often: a fleet's commits within
 * the window share one event. Small against the 5 s from reading to queued alert (issue 4).
 */
export const COMMITTED_EVENT_DELAY_MS = 200
/**
 * After reconnecting to a session the broker kept, messages arriving this soon count as possible redeliveries
 * (their rejections are not logged twice). The MQTT DUP flag would say so [MQTT-3.3.1-1], but aedes 1.2 resends
 * the unacknowledged messages of a persistent session without it (aedes-packet copies `dup` from the original,
 * which is false): `test/e2e/ingest-crash.test.ts` counted a rejection twice after a kill. The broker resends them
 * first, right after CONNACK; a device that really sends the same bytes twice within the window is counted once.
 */
export const REDELIVERY_WINDOW_MS = 10_000

/**
 * What the ingest needs from storage: the readings, two registry reads and the reject log's `record`. So its
 * registry and rejects can be the local SQLite store or the API's over HTTP (REGISTRY_URL, @skolluft/storage http/).
 */
export interface IngestStorage {
  readonly readings: ReadingStore
  readonly registry: Pick<RegistryStore, 'revision' | 'getDevice'>
  readonly rejects: Pick<RejectLog, 'record'>
}

export interface IngestOptions {
  readonly log: Logger
  readonly storage: IngestStorage
  readonly mqtt: {
    readonly url: string
    readonly username: string
    readonly password: string
    /** Default: the username. Each worker of a shared group needs its own, stable across restarts. */
    readonly clientId?: string
    /** Share the telemetry with the other workers of this group (`$share/<group>/…`); see `telemetryFilter`. */
    readonly sharedGroup?: string
  }
  readonly clock?: () => number
  readonly registryPollMs?: number
}

/**
 * The subscription that brings telemetry to this worker: every device's telemetry, or with a group the MQTT
 * shared subscription `$share/<group>/<filter>` [MQTT-4.8.2], where the broker hands each message to one
 * member of the group. The group is validated by IngestConfig (one topic level, no wildcards).
 *
 * What Mosquitto 2.0.11 does with a member that dies (measured by test/e2e/ingest-shared.test.ts, and
 * src/subs.c `subs__shared_process`): members are served in strict rotation, connected or not. A member with a
 * persistent session that is gone keeps (1) its unacknowledged in-flight messages and (2) its turn in the
 * rotation, so every Nth new message is queued in its session; neither is handed to the other members (the
 * spec allows waiting for the member to reconnect, [MQTT-4.8.2] "Shared Subscriptions" notes). When a worker
 * with the same client id connects again, the broker resends the in-flight ones (with DUP set) and then the
 * queue. Zero loss therefore needs every worker restarted with its own stable client id (a supervisor does
 * that) or retired for good with `leaveSharedGroup` (leave.ts, `skolluft ingest --leave`), and a broker queue large enough for its share during the outage (Mosquitto drops QoS 1 messages
 * beyond `max_queued_messages`, default 1000).
 */
export function telemetryFilter(sharedGroup: string | undefined): string {
  return sharedGroup === undefined ? ALL_TELEMETRY_FILTER : `$share/${sharedGroup}/${ALL_TELEMETRY_FILTER}`
}

export interface IngestStats {
  messages: number
  stored: number
  duplicates: number
  rejected: number
  rejectedByCode: Partial<Record<RejectCode, number>>
  writeFailures: number
  internalErrors: number
  /** `readings-committed` events published (each names the site-hours of one or more commits). */
  eventsPublished: number
  connected: boolean
}

export interface Ingest {
  stats(): IngestStats
  close(): Promise<void>
}

export async function startIngest(options: IngestOptions): Promise<Ingest> {
  const connection = await connectIngest(options)
  const { client, log } = connection
  const clientId = connection.clientId
  const sharedGroup = options.mqtt.sharedGroup
  const filter = telemetryFilter(sharedGroup)
  // MQTT.js 5 rejects on a SUBACK failure code (0x80, [MQTT-3.9.3-2]) rather than returning it; either way
  // the client is ended here, or its reconnect loop would keep a process that cannot work alive.
  let refusal: unknown
  try {
    const granted = await client.subscribeAsync(filter, { qos: 1 })
    if (granted.some((g) => g.qos >= 0x80)) refusal = new Error('SUBACK failure code')
  } catch (error) {
    refusal = error
  }
  if (refusal !== undefined) {
    await client.endAsync(true)
    if (sharedGroup !== undefined) {
      // Refused rather than accepted and silent: the skolluft gateway (aedes 1.2, no shared subscriptions)
      // refuses every `$` filter (gateway/src/permissions.ts), so a group pointed at it fails here, loudly.
      throw new IngestError(
        'SUBSCRIBE_REFUSED',
        `broker refused the shared subscription ${filter}: INGEST_SHARED_GROUP needs a broker with MQTT shared subscriptions (Mosquitto 2, docs/scaling.md); the built-in skolluft gateway has none, so unset INGEST_SHARED_GROUP and run one ingest behind it`,
        { cause: refusal },
      )
    }
    throw new IngestError('SUBSCRIBE_REFUSED', `broker refused the subscription to ${filter}`, { cause: refusal })
  }
  if (sharedGroup !== undefined) {
    // A session that ran without a group still holds the plain subscription and would go on receiving every
    // message besides its share. Dropped after the shared one is in place, so nothing falls in between.
    await client.unsubscribeAsync(ALL_TELEMETRY_FILTER)
  }
  log.info({ url: options.mqtt.url, filter, clientId, sharedGroup }, 'ingest subscribed')
  return { stats: connection.stats, close: () => connection.close() }
}

/**
 * The ingest's MQTT connection with its message handling installed, not yet subscribed to anything: the
 * persistent session's queued messages (if the broker kept one) arrive and are stored as soon as it is open.
 * `startIngest` subscribes on it; `leaveSharedGroup` (leave.ts) unsubscribes and drains it.
 */
export interface IngestConnection {
  readonly client: MqttClient
  readonly clientId: string
  readonly log: Logger
  /** Whether the broker still held a session for this client id at the first CONNACK. */
  readonly sessionPresent: boolean
  stats(): IngestStats
  /** Messages received whose PUBACK has not gone out yet (nor been dropped). */
  inFlight(): number
  /** When (clock ms) the last message arrived; the connection's open time before any did. */
  lastMessageAt(): number
  /**
   * Stops handling. Default (for shutdowns): at once, anything unacknowledged is redelivered to the next session.
   * `graceful`: publishes the pending readings-committed events and sends DISCONNECT after them.
   */
  close(how?: { readonly graceful: boolean }): Promise<void>
}

export interface ConnectOptions {
  /** Reconnect after a lost connection (default). Off: a lost connection ends the client, see `onLost`. */
  readonly reconnect?: boolean
  /** Called when the connection is lost after it was established (without `reconnect`: for good). */
  readonly onLost?: () => void
}

export async function connectIngest(options: IngestOptions, how: ConnectOptions = {}): Promise<IngestConnection> {
  const reconnect = how.reconnect ?? true
  const log = options.log.child({ module: 'ingest' })
  const clock = options.clock ?? Date.now
  const { readings, registry, rejects } = options.storage
  const devices = createDeviceCache(registry, clock, options.registryPollMs ?? REGISTRY_POLL_MS)
  const stats: IngestStats = {
    messages: 0,
    stored: 0,
    duplicates: 0,
    rejected: 0,
    rejectedByCode: {},
    writeFailures: 0,
    internalErrors: 0,
    eventsPublished: 0,
    connected: false,
  }
  const lastRejectLog = new Map<string, { at: number; suppressed: number }>()
  let closing = false

  function noteRejects(deviceId: string | null, topic: string, records: RejectRecord[]): void {
    for (const r of records) {
      stats.rejected += 1
      stats.rejectedByCode[r.code] = (stats.rejectedByCode[r.code] ?? 0) + 1
    }
    const key = deviceId ?? topic
    const now = clock()
    const last = lastRejectLog.get(key)
    if (last && now - last.at < REJECT_LOG_INTERVAL_MS) {
      last.suppressed += records.length
      return
    }
    if (lastRejectLog.size >= MAX_THROTTLED_DEVICES) lastRejectLog.clear()
    const first = records[0]
    log.warn(
      {
        deviceId,
        topic,
        code: first?.code,
        reason: first?.message,
        count: records.length,
        suppressed: last?.suppressed ?? 0,
      },
      'telemetry rejected',
    )
    lastRejectLog.set(key, { at: now, suppressed: 0 })
  }

  /** Validates one message and commits what it carries. Resolves only once everything is durable. */
  async function handle(topic: string, payload: Buffer, redelivery: boolean): Promise<void> {
    stats.messages += 1
    const now = clock()
    let messageKey: string | undefined
    const reject = (deviceId: string | null, code: RejectCode, message: string, index: number | null = null) => {
      // Computed only for messages with rejections: lets storage skip them when the broker redelivers.
      messageKey ??= createHash('sha256').update(topic).update('\0').update(payload).digest('base64url')
      return { at: now, deviceId, topic, code, message, index, messageKey } satisfies RejectRecord
    }
    const commitRejects = (deviceId: string | null, records: RejectRecord[]) =>
      recordRejects(deviceId, topic, records, redelivery)

    const parsedTopic = parseDeviceTopic(topic)
    if (parsedTopic?.kind !== 'telemetry') {
      return commitRejects(null, [reject(null, 'bad_topic', `not a telemetry topic: ${topic.slice(0, 200)}`)])
    }
    const { deviceId } = parsedTopic
    const device = await withRetry(() => devices.get(deviceId))
    if (!device) {
      return commitRejects(deviceId, [reject(deviceId, 'unknown_device', `device ${deviceId} is not registered`)])
    }
    if (device.revokedAt !== null) {
      return commitRejects(deviceId, [reject(deviceId, 'revoked_device', `device ${deviceId} is revoked`)])
    }
    const parsed = parseTelemetry(payload, now)
    if (!parsed.ok) return commitRejects(deviceId, [reject(deviceId, parsed.code, parsed.message)])

    const expectedPerHour = expectedSamplesPerHour(device.intervalS)
    const batch: StoredReading[] = parsed.readings.map((r) => ({
      deviceId,
      siteId: placementAt(device.placements, r.ts)?.siteId ?? null,
      ts: r.ts,
      seq: r.seq,
      values: r.values,
      receivedAt: now,
      expectedPerHour,
    }))
    const result = await withRetry(() => readings.writeReadings(batch))
    if (result.inserted > 0) announceCommitted(batch)
    stats.stored += result.inserted
    stats.duplicates += result.duplicates
    if (parsed.ignoredFields.length > 0) {
      log.debug({ deviceId, fields: parsed.ignoredFields }, 'ignored unknown telemetry fields')
    }
    if (parsed.rejected.length > 0) {
      await commitRejects(
        deviceId,
        parsed.rejected.map((r) => reject(deviceId, r.code, r.message, r.index)),
      )
    }
  }

  /**
   * Site-hours with new readings, announced after the commit so that the alerts service re-evaluates them.
   * At most once (QoS 1 to the broker, not held for the PUBACK): a lost event only delays evaluation until the
   * alerts service's own sweep.
   */
  const touched = new Map<string, Set<number>>()
  let announceTimer: NodeJS.Timeout | undefined
  function announceCommitted(batch: readonly StoredReading[]): void {
    for (const r of batch) {
      if (r.siteId === null) continue
      let hours = touched.get(r.siteId)
      if (hours === undefined) {
        hours = new Set()
        touched.set(r.siteId, hours)
      }
      hours.add(hourStart(r.ts))
    }
    if (touched.size > 0) announceTimer ??= setTimeout(publishCommitted, COMMITTED_EVENT_DELAY_MS)
  }
  function publishCommitted(): void {
    announceTimer = undefined
    const events = readingsCommittedEvents(touched, clock())
    touched.clear()
    for (const event of events) {
      client.publish(eventTopic('readings-committed'), JSON.stringify(event), { qos: 1 }, (error) => {
        if (error) log.warn({ err: error }, 'readings-committed event not published; the alerts sweep will catch up')
      })
      stats.eventsPublished += 1
    }
  }

  async function recordRejects(
    deviceId: string | null,
    topic: string,
    records: RejectRecord[],
    redelivery: boolean,
  ): Promise<void> {
    noteRejects(deviceId, topic, records)
    await withRetry(() => rejects.record(records, { redelivery }))
  }

  /**
   * Retries a storage call while it fails for a passing reason (database busy, disk full, I/O
   * error) until it succeeds or the service closes; the PUBACK waits meanwhile. Any other error
   * is not retried.
   */
  async function withRetry<T>(operation: () => Promise<T>): Promise<T> {
    let delay = WRITE_RETRY_INITIAL_MS
    for (;;) {
      try {
        return await operation()
      } catch (error) {
        stats.writeFailures += 1
        if (closing || !isTransient(error)) throw error
        log.error({ err: error, retryInMs: delay }, 'storage write failed; holding the acknowledgement and retrying')
        await sleep(delay)
        delay = Math.min(delay * 2, WRITE_RETRY_MAX_MS)
      }
    }
  }

  // Stable across restarts, so the broker keeps our session; the gateway requires service client
  // ids to be the service's username (or start with it).
  const clientId = options.mqtt.clientId ?? options.mqtt.username
  const client: MqttClient = mqtt.connect(options.mqtt.url, {
    clientId,
    username: options.mqtt.username,
    password: options.mqtt.password,
    protocolVersion: 4,
    // Persistent session: while we are away the broker queues QoS 1 telemetry for us.
    clean: false,
    // 0: MQTT.js does not reconnect.
    reconnectPeriod: reconnect ? 1_000 : 0,
    reconnectOnConnackError: true,
    connectTimeout: 10_000,
    resubscribe: true,
  })
  // Acknowledge after commit, with many messages in flight (see ack-after-commit.ts).
  const gate = installAckGate(client)
  let redeliveryUntil = 0
  client.on('connect', (connack) => {
    if (connack.sessionPresent) redeliveryUntil = clock() + REDELIVERY_WINDOW_MS
  })
  let inFlight = 0
  let lastMessageAt = clock()
  client.handleMessage = (packet, callback) => {
    lastMessageAt = clock()
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload)
    // DUP: the broker sent it before (to a session that may have handled it before a crash).
    const redelivery = packet.dup === true || clock() < redeliveryUntil
    const outcome = handle(packet.topic, payload, redelivery).then(
      () => true,
      (error: unknown) => {
        if (closing) {
          // Not acknowledged; the broker redelivers it to our next session.
          log.warn({ err: error, topic: packet.topic }, 'message left unacknowledged at shutdown')
          return false
        }
        // Transient storage failures are retried inside `handle`; anything else is a bug or a
        // permanent fault. Acknowledge rather than stall every device behind one poison message,
        // and make it loud.
        stats.internalErrors += 1
        log.error({ err: error, topic: packet.topic }, 'internal error while handling telemetry; message dropped')
        return true
      },
    )
    // A message counts as in flight until its PUBACK has gone out (or been dropped), so the bound
    // also covers acknowledgements waiting behind a slow commit.
    inFlight += 1
    const done =
      packet.qos === 1 && packet.messageId !== undefined
        ? gate.hold(packet.messageId, outcome)
        : outcome.then(() => undefined)
    void done.finally(() => {
      inFlight -= 1
    })
    // Back-pressure: beyond MAX_IN_FLIGHT unacknowledged messages, stop reading until this one is
    // committed. (Not until its PUBACK is out: the PUBACK is only produced after this callback.)
    if (inFlight > MAX_IN_FLIGHT) {
      void outcome.then(() => callback())
    } else {
      callback()
    }
  }

  let sessionPresent = false
  // Installed above in the same tick as connect(), before any packet can arrive: a persistent
  // session may deliver queued messages right after CONNACK, and the default handler would ack them.
  await new Promise<void>((resolve, reject) => {
    const onError = (error: Error) => {
      client.end(true)
      reject(
        new IngestError('CONNECT_FAILED', `could not connect to ${options.mqtt.url}: ${error.message}`, {
          cause: error,
        }),
      )
    }
    client.once('error', onError)
    client.once('connect', (connack) => {
      sessionPresent = connack.sessionPresent
      client.off('error', onError)
      resolve()
    })
  })
  stats.connected = true
  client.on('connect', () => {
    stats.connected = true
    log.info('connected to broker')
  })
  client.on('close', () => {
    const lost = stats.connected && !closing
    stats.connected = false
    if (!lost) return
    if (reconnect) log.warn('disconnected from broker; reconnecting')
    how.onLost?.()
  })
  client.on('error', (error) => log.error({ err: error }, 'mqtt client error'))

  return {
    client,
    clientId,
    log,
    sessionPresent,
    stats: () => ({ ...stats, rejectedByCode: { ...stats.rejectedByCode } }),
    inFlight: () => inFlight,
    lastMessageAt: () => lastMessageAt,
    async close(mode = { graceful: false }) {
      closing = true
      clearTimeout(announceTimer)
      if (mode.graceful) {
        if (announceTimer !== undefined) publishCommitted()
        await client.endAsync(false)
        return
      }
      // force: do not wait for in-flight acks; anything unacknowledged is redelivered to the next session.
      await client.endAsync(true)
    },
  }
}

/**
 * Failures a later attempt can get past: SQLite result codes (better-sqlite3 puts them in `code`),
 * and STORAGE_UNAVAILABLE, which a networked backend uses for an unreachable server.
 */
const TRANSIENT_CODES = /^(SQLITE_(BUSY|LOCKED|FULL|IOERR|CANTOPEN|PROTOCOL)|STORAGE_UNAVAILABLE$)/

function isTransient(error: unknown): boolean {
  const code = typeof error === 'object' && error !== null && 'code' in error ? error.code : undefined
  return typeof code === 'string' && TRANSIENT_CODES.test(code)
}

export class IngestError extends Error {
  readonly code: string
  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'IngestError'
    this.code = code
  }
}
