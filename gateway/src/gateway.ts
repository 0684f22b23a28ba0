import { createServer, type Socket } from 'node:net'
import { createRateLimiter, deviceTopic, isValidId } from '@skolluft/core'
import type { Logger } from '@skolluft/runtime'
import type { RegistryStore, TelemetrySpool } from '@skolluft/storage'
import { Aedes, type AuthenticateError, type Client, type ConnectPacket, type PublishPacket } from 'aedes'
import { createCredentialChecker, type Identity, resolveIdentity, secretHashOf } from './credentials.ts'
import { createFrameGuard } from './frame-guard.ts'
import {
  type GatewayLimits,
  REGISTRY_POLL_MS,
  resolveLimits,
  SPOOL_PRUNE_INTERVAL_MS,
  SPOOL_RETENTION_MS,
} from './limits.ts'
import { checkPublish, checkSubscribe, checkWill, mayReceive, type Principal, principalName } from './permissions.ts'
import { createSpoolKeeper, type SpoolKeeper, SpoolRefusal } from './spool-keeper.ts'
import { createStatsRecorder, type GatewayStats, type RefusalKind } from './stats.ts'

/**
 * The MQTT gateway: an aedes broker on a plain TCP listener, with the platform's rules in aedes' hooks.
 *
 * - authenticate: username = device id (or service account), password = its secret, checked against the
 *   registry's scrypt hash (credentials.ts); a device's client id must be its device id, so one device has
 *   one session; a device's will must be on its own status topic. CONNACK codes: 2 client id refused,
 *   3 too many logins being verified (retry), 4 bad or unknown credentials, 5 anonymous, revoked device,
 *   or will not permitted.
 * - authorizePublish / authorizeSubscribe / authorizeForward: the permission table in permissions.ts,
 *   plus payload size and a per-device token bucket on PUBLISH.
 * - A frame guard caps every packet's size before aedes buffers it (frame-guard.ts).
 * - The registry is read at every CONNECT (new devices just work) and its revision is polled, so a device
 *   revoked by another process (the CLI) is disconnected within `registryPollMs`.
 *
 * What a refused client sees. MQTT 3.1.1 has no negative PUBACK: aedes closes the connection when
 * authorizePublish fails [MQTT-3.3.5-2], so a device that publishes to a topic it may not use, sends an
 * oversized payload or exceeds its rate finds its TCP connection closed, without a PUBACK. A QoS 1 message
 * therefore stays in the device's buffer and is sent again after it reconnects; the token bucket is kept
 * across reconnects, so reconnecting does not buy a fresh burst. A refused SUBSCRIBE is answered with
 * return code 0x80 in the SUBACK and the connection stays up [MQTT-3.9.3].
 *
 * Persistence: aedes' default in-memory persistence, plus a durable telemetry spool (`spool`). aedes 1.2
 * writes the PUBACK to a QoS 1 publisher before it queues the message for subscribers (handlers/publish.js),
 * and queues it in memory, so without the spool a gateway crash loses telemetry devices had already had
 * acknowledged. With it, authorizePublish (which runs before that PUBACK) appends each QoS ≥ 1 telemetry
 * message to the spool and lets aedes go on only once the append is committed; the entry is deleted when
 * the ingest acknowledges its delivery (spool-keeper.ts explains the matching), and whatever is left is
 * re-published at the next start, after `durableSubscribers` are in place and before the listener opens.
 * So a reading a device had acknowledged is stored, queued for the ingest, or in the spool; a crash can
 * deliver it twice, which storage absorbs (idempotent on device and time). `durableSubscribers` recreates
 * the ingest's subscription before the first device can connect, so a restarted gateway queues telemetry
 * (replayed or new) for the ingest at once. Retained status and config are not spooled: they are lost with a
 * gateway restart and come back as devices reconnect (status) and the platform republishes (config).
 */
export interface GatewayOptions {
  readonly log: Logger
  readonly registry: RegistryStore
  readonly host: string
  /** 0 picks a free port; `Gateway.port` is the real one. */
  readonly port: number
  readonly limits?: Partial<GatewayLimits>
  readonly clock?: () => number
  /** How often the registry revision is polled for revocations made elsewhere; default REGISTRY_POLL_MS. */
  readonly registryPollMs?: number
  /**
   * Persistent sessions created before the gateway accepts connections: QoS 1 messages matching
   * `filter` are queued for `clientId` from the first moment, even before that client (the ingest)
   * has connected after a gateway restart. Without it, devices that reconnect first and replay their
   * buffers would get PUBACKs for readings that no subscriber receives.
   */
  readonly durableSubscribers?: readonly { readonly clientId: string; readonly filter: string }[]
  /**
   * Durable spool of accepted telemetry (see Persistence above). The caller opens and closes it; the
   * gateway must be closed first. Without it, a gateway crash loses acknowledged telemetry in flight.
   */
  readonly spool?: TelemetrySpool
}

/**
 * aedes keeps the subscriptions of persistent sessions in its persistence and queues QoS 1 messages
 * for them while the client is away (aedes.js `enqueueOffline`); registering one there is what a
 * client's own SUBSCRIBE with clean=false does. The persistence is untyped in aedes' declarations.
 */
async function addDurableSubscription(broker: object, clientId: string, filter: string): Promise<void> {
  const persistence = 'persistence' in broker ? broker.persistence : undefined
  if (
    typeof persistence !== 'object' ||
    persistence === null ||
    !('addSubscriptions' in persistence) ||
    typeof persistence.addSubscriptions !== 'function'
  ) {
    throw new GatewayError('PERSISTENCE_UNSUPPORTED', 'aedes persistence has no addSubscriptions')
  }
  await persistence.addSubscriptions({ id: clientId }, [{ topic: filter, qos: 1 }])
}

export interface Gateway {
  readonly port: number
  stats(): GatewayStats
  close(): Promise<void>
}

/**
 * An error of the gateway; `code` says which: `CONNECT_<REASON>` and `PUBLISH_<REASON>` for refusals
 * (passed to aedes, which closes the connection), `LISTEN_FAILED` at start.
 */
export class GatewayError extends Error {
  readonly code: string
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'GatewayError'
    this.code = code
  }
}

/** CONNACK return codes, MQTT 3.1.1 table 3.1. */
const CONNACK_IDENTIFIER_REJECTED = 2
const CONNACK_SERVER_UNAVAILABLE = 3
const CONNACK_BAD_CREDENTIALS = 4
const CONNACK_NOT_AUTHORIZED = 5
type RefusalCode =
  | typeof CONNACK_IDENTIFIER_REJECTED
  | typeof CONNACK_SERVER_UNAVAILABLE
  | typeof CONNACK_BAD_CREDENTIALS
  | typeof CONNACK_NOT_AUTHORIZED

/**
 * Packets larger than the payload limit plus this are cut off at their fixed header. The headroom holds
 * the topic (our longest is 88 bytes), packet id and CONNECT fields; payloads between the payload limit
 * and this one are refused with a logged reason by authorizePublish instead.
 */
const FRAME_HEADROOM_BYTES = 4 * 1024
/** Devices with a token bucket kept; only authenticated devices get one, so the registry bounds it first. */
const MAX_RATE_BUCKETS = 100_000
/** Repeated refusals of one kind for one client are logged once per this period, the rest counted. */
const LOG_THROTTLE_MS = 10_000
const MAX_LOG_THROTTLE_KEYS = 10_000
/** Client-chosen strings (usernames, client ids, topics) are cut to this length in logs. */
const MAX_LOGGED_CHARS = 200

interface Session {
  readonly principal: Principal
  readonly username: string
  readonly secretHash: string
  /** Registry revision current when the login began; the poll re-checks sessions older than the registry. */
  revision: number
}

interface Connection {
  readonly socket: Socket
  readonly client: Client
  readonly remoteAddress: string
  /** The will from CONNECT (same object aedes later publishes), captured in preConnect. */
  will: ConnectPacket['will'] | null
  /** Set once authenticated; kept after the socket closes so the will can still be authorized. */
  session: Session | null
  closed: boolean
}

type LoginResult =
  | { readonly ok: true; readonly session: Session; readonly cached: boolean }
  | { readonly ok: false; readonly returnCode: RefusalCode; readonly reason: string; readonly deviceId: string | null }

function clip(value: string): string {
  return value.length > MAX_LOGGED_CHARS ? `${value.slice(0, MAX_LOGGED_CHARS)}…` : value
}

function authError(returnCode: RefusalCode, reason: string): AuthenticateError {
  return Object.assign(new GatewayError(`CONNECT_${reason.toUpperCase()}`, `connection refused: ${reason}`), {
    returnCode,
  })
}

function payloadBytes(payload: PublishPacket['payload']): number {
  return typeof payload === 'string' ? Buffer.byteLength(payload) : payload.byteLength
}

function createLogThrottle(clock: () => number): (key: string) => { log: boolean; suppressed: number } {
  const last = new Map<string, { at: number; suppressed: number }>()
  return (key) => {
    const now = clock()
    const entry = last.get(key)
    if (entry !== undefined && now - entry.at < LOG_THROTTLE_MS) {
      entry.suppressed += 1
      return { log: false, suppressed: 0 }
    }
    if (last.size >= MAX_LOG_THROTTLE_KEYS) last.clear()
    last.set(key, { at: now, suppressed: 0 })
    return { log: true, suppressed: entry?.suppressed ?? 0 }
  }
}

export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const log = options.log.child({ module: 'gateway' })
  const { registry } = options
  const clock = options.clock ?? Date.now
  const limits = resolveLimits(options.limits)
  const pollMs = options.registryPollMs ?? REGISTRY_POLL_MS
  const maxFrameBytes = limits.maxPayloadBytes + FRAME_HEADROOM_BYTES

  const stats = createStatsRecorder(clock)
  const credentials = createCredentialChecker({
    clock,
    backoffBaseMs: limits.authBackoffBaseMs,
    backoffMaxMs: limits.authBackoffMaxMs,
    maxPendingVerifications: limits.maxPendingVerifications,
  })
  const rate = createRateLimiter({
    ratePerS: limits.publishRatePerS,
    burst: limits.publishBurst,
    clock,
    maxKeys: MAX_RATE_BUCKETS,
  })
  const throttle = createLogThrottle(clock)

  // Created before the broker so its hooks can use it; it runs timers only once started (after listening).
  const keeper: SpoolKeeper | undefined =
    options.spool === undefined
      ? undefined
      : createSpoolKeeper({
          spool: options.spool,
          log,
          clock,
          maxEntries: limits.maxSpoolEntries,
          retentionMs: SPOOL_RETENTION_MS,
          pruneIntervalMs: SPOOL_PRUNE_INTERVAL_MS,
        })

  const connections = new Set<Connection>()
  const byClient = new WeakMap<Client, Connection>()
  let lastRevision = await registry.revision()
  let closing = false

  function refuse(
    kind: RefusalKind,
    fields: {
      clientId: string | null
      deviceId: string | null
      reason: string
      topic?: string
      /** Whose refusals are throttled together; defaults to the device id, else the client id. */
      throttleKey?: string
      /** More fields for the log line; never a password or a payload. */
      extra?: Record<string, unknown>
    },
    message: string,
  ): void {
    stats.refuse(kind, fields.deviceId, fields.reason)
    const who = fields.throttleKey ?? fields.deviceId ?? fields.clientId ?? 'anonymous'
    const { log: shouldLog, suppressed } = throttle(`${who}\0${kind}\0${fields.reason}`)
    if (!shouldLog) return
    log.warn(
      {
        clientId: fields.clientId === null ? null : clip(fields.clientId),
        deviceId: fields.deviceId,
        reason: fields.reason,
        ...(fields.topic === undefined ? {} : { topic: clip(fields.topic) }),
        ...fields.extra,
        ...(suppressed > 0 ? { suppressed } : {}),
      },
      message,
    )
  }

  function liveServiceWithClientId(clientId: string): boolean {
    for (const conn of connections) {
      if (!conn.closed && conn.client.id === clientId && conn.session?.principal.kind === 'service') return true
    }
    return false
  }

  async function login(
    conn: Connection,
    clientId: string,
    username: string | undefined,
    password: Buffer | undefined,
  ): Promise<LoginResult> {
    const fail = (returnCode: RefusalCode, reason: string, deviceId: string | null = null): LoginResult => ({
      ok: false,
      returnCode,
      reason,
      deviceId,
    })
    const revision = lastRevision
    if (username === undefined || username === '') return fail(CONNACK_NOT_AUTHORIZED, 'anonymous')
    if (clientId.length > limits.maxClientIdLength) return fail(CONNACK_IDENTIFIER_REJECTED, 'client_id_too_long')
    const identity: Identity | null = await resolveIdentity(registry, username)
    if (identity === null) return fail(CONNACK_BAD_CREDENTIALS, 'unknown_username')
    let principal: Principal
    if (identity.kind === 'device') {
      const { device } = identity
      principal = { kind: 'device', id: device.id }
      // Refused without running scrypt: a revoked device's reconnect loop costs nothing.
      if (device.revokedAt !== null) return fail(CONNACK_NOT_AUTHORIZED, 'revoked', device.id)
      // One device, one session: with any other client id a device could hold several sessions, or take
      // over another client's session [MQTT-3.1.4-2].
      if (clientId !== device.id) return fail(CONNACK_IDENTIFIER_REJECTED, 'client_id_mismatch', device.id)
      // A service that happens to use this id as its client id keeps its session.
      if (liveServiceWithClientId(clientId)) return fail(CONNACK_IDENTIFIER_REJECTED, 'client_id_in_use', device.id)
    } else {
      const { account } = identity
      principal = { kind: 'service', username: account.username, role: account.role }
      // A service's client id is its username, or its username and a `-suffix`: it can neither take
      // over a device's session (device ids have no dot, service usernames do) nor another service's
      // (one service could otherwise wipe the ingest's queued telemetry by connecting as it).
      if (clientId !== account.username && !clientId.startsWith(`${account.username}-`)) {
        return fail(CONNACK_IDENTIFIER_REJECTED, 'client_id_not_own')
      }
      if (isValidId(clientId) && (await registry.getDevice(clientId)) !== undefined) {
        return fail(CONNACK_IDENTIFIER_REJECTED, 'client_id_is_a_device')
      }
    }
    const deviceId = principal.kind === 'device' ? principal.id : null
    if (password === undefined || password.length === 0) return fail(CONNACK_BAD_CREDENTIALS, 'no_password', deviceId)
    if (conn.will) {
      const denial = checkWill(principal, conn.will.topic)
      if (denial !== null) return fail(CONNACK_NOT_AUTHORIZED, denial, deviceId)
      if (payloadBytes(conn.will.payload) > limits.maxPayloadBytes) {
        return fail(CONNACK_NOT_AUTHORIZED, 'will_too_large', deviceId)
      }
    }
    const secretHash = secretHashOf(identity)
    const verdict = await credentials.verify(username, password, secretHash, conn.remoteAddress)
    switch (verdict) {
      case 'cached':
      case 'verified':
        return { ok: true, session: { principal, username, secretHash, revision }, cached: verdict === 'cached' }
      case 'wrong':
        return fail(CONNACK_BAD_CREDENTIALS, 'wrong_password', deviceId)
      case 'backoff':
        return fail(CONNACK_BAD_CREDENTIALS, 'backing_off_after_failures', deviceId)
      case 'busy':
        return fail(CONNACK_SERVER_UNAVAILABLE, 'too_many_logins_in_progress', deviceId)
    }
  }

  function refusePublish(
    kind: RefusalKind,
    client: Client,
    principal: Principal | null,
    reason: string,
    topic: string,
  ): GatewayError {
    const deviceId = principal?.kind === 'device' ? principal.id : null
    refuse(kind, { clientId: client.id, deviceId, reason, topic }, 'publish refused; closing connection')
    return new GatewayError(`PUBLISH_${reason.toUpperCase()}`, `publish to ${clip(topic)} refused: ${reason}`)
  }

  // Left at aedes' defaults: `concurrency` (100 in-flight deliveries; drainTimeout is what keeps a frozen
  // subscriber from exhausting them), `heartbeatInterval` (60 s $SYS heartbeat, only used between brokers
  // in a cluster), `queueLimit` (42 packets queued during CONNECT), `maxInflightInbound` (1000 QoS 2) and
  // `maxTopicLevels` (100, the qlobber ceiling; our own, stricter level check runs in the hooks).
  const broker = await Aedes.createBroker({
    connectTimeout: limits.connectTimeoutMs,
    drainTimeout: limits.drainTimeoutMs,
    maxClientsIdLength: limits.maxClientIdLength,

    preConnect(client, packet, callback) {
      const conn = byClient.get(client)
      if (conn !== undefined) conn.will = packet.will ?? null
      callback(null, conn !== undefined && !closing)
    },

    authenticate(client, username, password, done) {
      const conn = byClient.get(client)
      if (conn === undefined) {
        done(authError(CONNACK_SERVER_UNAVAILABLE, 'unknown_connection'), null)
        return
      }
      login(conn, client.id, username, password).then(
        (result) => {
          if (!result.ok) {
            refuse(
              'authFailures',
              {
                clientId: client.id,
                deviceId: result.deviceId,
                reason: result.reason,
                // Strangers pick any client id they like; throttle them by address instead.
                throttleKey: result.deviceId ?? conn.remoteAddress,
                extra: {
                  username: username === undefined ? null : clip(username),
                  remoteAddress: conn.remoteAddress,
                  returnCode: result.returnCode,
                },
              },
              'connection refused',
            )
            done(authError(result.returnCode, result.reason), null)
            return
          }
          if (conn.closed) {
            done(authError(CONNACK_SERVER_UNAVAILABLE, 'connection_closed'), null)
            return
          }
          conn.session = result.session
          stats.totals.authSuccesses += 1
          if (result.cached) stats.totals.authCacheHits += 1
          log.info(
            {
              clientId: client.id,
              principal: principalName(result.session.principal),
              kind: result.session.principal.kind,
              ...(result.session.principal.kind === 'service' ? { role: result.session.principal.role } : {}),
              remoteAddress: conn.remoteAddress,
              cached: result.cached,
            },
            'client authenticated',
          )
          done(null, true)
        },
        (error: unknown) => {
          log.error({ err: error, clientId: client.id }, 'login check failed; answering server unavailable')
          done(authError(CONNACK_SERVER_UNAVAILABLE, 'registry_error'), null)
        },
      )
    },

    authorizePublish(client, packet, callback) {
      const conn = client === null ? undefined : byClient.get(client)
      const session = conn?.session ?? null
      if (client === null || conn === undefined || session === null) {
        // A will left behind by a client that is gone (aedes' "obsolete LWT" path, multi-broker only)
        // or a publish without a session: nothing vouches for it.
        log.warn({ topic: clip(packet.topic) }, 'publish without an authenticated session refused')
        callback(new GatewayError('PUBLISH_NO_SESSION', 'publish without an authenticated session'))
        return
      }
      const { principal } = session
      const isWill = conn.will !== null && (packet as unknown) === conn.will
      const denial = checkPublish(principal, packet.topic, limits.maxTopicLevels)
      if (denial !== null) {
        const kind = denial === 'topic_too_deep' ? 'topicTooDeep' : 'deniedPublishes'
        callback(refusePublish(kind, client, principal, denial, packet.topic))
        return
      }
      const size = payloadBytes(packet.payload)
      if (size > limits.maxPayloadBytes) {
        callback(refusePublish('oversized', client, principal, 'payload_too_large', packet.topic))
        return
      }
      // Wills are exempt: the "offline" status must get out even when the device used up its bucket.
      if (principal.kind === 'device' && !isWill && !rate.take(principal.id)) {
        callback(refusePublish('rateLimited', client, principal, 'rate_limited', packet.topic))
        return
      }
      // Only a device may publish telemetry, to its own topic (permissions.ts); comparing with that topic
      // costs less than parsing it again (~3 µs per message, measured in the ingest benchmark).
      const telemetry = principal.kind === 'device' && packet.topic === deviceTopic(principal.id, 'telemetry')
      // Telemetry is never retained (device contract); a retained reading would be replayed to every
      // new subscriber. Lenient: clear the flag rather than refuse the reading.
      if (packet.retain && telemetry) packet.retain = false
      if (keeper === undefined || !telemetry || packet.qos === 0) {
        callback(null)
        return
      }
      // aedes writes the PUBACK as soon as this calls back: only once the message is durable.
      keeper.keep(packet, clock()).then(
        () => callback(null),
        (error: unknown) => {
          const reason = error instanceof SpoolRefusal ? error.reason : 'spool_write_failed'
          if (reason === 'spool_write_failed') log.error({ err: error }, 'telemetry spool write failed')
          callback(refusePublish('spoolRefusals', client, principal, reason, packet.topic))
        },
      )
    },

    authorizeSubscribe(client, subscription, callback) {
      const session = byClient.get(client)?.session ?? null
      if (session === null) {
        callback(null, null)
        return
      }
      const denial = checkSubscribe(session.principal, subscription.topic, limits.maxTopicLevels)
      if (denial !== null) {
        const deviceId = session.principal.kind === 'device' ? session.principal.id : null
        refuse(
          denial === 'topic_too_deep' ? 'topicTooDeep' : 'deniedSubscribes',
          { clientId: client.id, deviceId, reason: denial, topic: subscription.topic },
          'subscription refused (0x80)',
        )
        // null negates the subscription: SUBACK carries 0x80 and the connection stays up.
        callback(null, null)
        return
      }
      callback(null, subscription)
    },

    authorizeForward(client, packet) {
      const session = byClient.get(client)?.session ?? null
      if (session !== null && mayReceive(session.principal, packet.topic)) return packet
      log.debug({ clientId: client.id, topic: clip(packet.topic) }, 'delivery withheld')
      return null
    },
  })

  if (keeper !== undefined) {
    // The ingest acknowledges a delivery only after committing it (ingest/src/ack-after-commit.ts), so
    // its PUBACK is what lets a spool entry go. Other subscribers' acknowledgements say nothing about storage.
    broker.on('ack', (packet, client) => {
      const principal = byClient.get(client)?.session?.principal
      if (principal?.kind === 'service' && principal.role === 'ingest') keeper.delivered(packet)
    })
  }
  broker.on('clientReady', (client) => {
    log.debug({ clientId: client.id }, 'client session ready')
  })
  broker.on('clientDisconnect', (client) => {
    log.info({ clientId: client.id }, 'client disconnected')
  })
  broker.on('clientError', (client, error) => {
    if (error instanceof GatewayError) return // logged where it was refused
    log.debug({ clientId: client.id, err: error.message }, 'client connection error')
  })
  broker.on('connectionError', (_client, error) => {
    if (error instanceof GatewayError) return
    log.debug({ err: error.message }, 'connection error before CONNECT completed')
  })
  broker.on('keepaliveTimeout', (client) => {
    log.info({ clientId: client.id }, 'keepalive timeout')
  })

  const server = createServer((socket) => {
    if (closing) {
      socket.destroy()
      return
    }
    const client = broker.handle(socket)
    const conn: Connection = {
      socket,
      client,
      remoteAddress: socket.remoteAddress ?? 'unknown',
      will: null,
      session: null,
      closed: false,
    }
    connections.add(conn)
    byClient.set(client, conn)
    // Attached after aedes' `readable` listener, so it only observes what aedes reads (frame-guard.ts).
    const guard = createFrameGuard(maxFrameBytes)
    socket.on('data', (chunk: Buffer) => {
      const declared = guard.push(chunk)
      if (declared === null) return
      const principal = conn.session?.principal ?? null
      refuse(
        'oversized',
        {
          clientId: client.id,
          deviceId: principal?.kind === 'device' ? principal.id : null,
          reason: 'packet_too_large',
          extra: { declaredBytes: declared, limitBytes: maxFrameBytes, remoteAddress: conn.remoteAddress },
        },
        'oversized packet; closing connection',
      )
      socket.destroy()
    })
    socket.once('close', () => {
      conn.closed = true
      connections.delete(conn)
    })
  })

  for (const { clientId, filter } of options.durableSubscribers ?? []) {
    await addDurableSubscription(broker, clientId, filter)
    log.info({ clientId, filter }, 'durable subscription in place before listening')
  }

  if (keeper !== undefined) {
    // Before listening: replays are queued for the ingest's session ahead of anything devices send now.
    await keeper.replay(
      (packet) =>
        new Promise<void>((resolve, reject) => broker.publish(packet, (error) => (error ? reject(error) : resolve()))),
    )
  }

  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(options.port, options.host, () => {
        server.off('error', reject)
        resolve()
      })
    })
  } catch (error) {
    // Port taken or address unavailable: stop the broker's timers so nothing is left running.
    await new Promise<void>((resolve) => broker.close(() => resolve()))
    throw new GatewayError('LISTEN_FAILED', `cannot listen on ${options.host}:${options.port}`, { cause: error })
  }
  server.on('error', (error) => log.error({ err: error }, 'listener error'))
  const address = server.address()
  const port = typeof address === 'object' && address !== null ? address.port : options.port

  /** Ends `conn` because the registry no longer vouches for its login. */
  function disconnect(conn: Connection, session: Session, reason: string): void {
    credentials.forget(session.username)
    stats.totals.registryDisconnects += 1
    log.warn(
      { clientId: conn.client.id, principal: principalName(session.principal), reason },
      'registry changed; disconnecting client',
    )
    conn.client.close()
  }

  async function recheck(session: Session): Promise<string | null> {
    const identity = await resolveIdentity(registry, session.username)
    if (identity === null || identity.kind !== session.principal.kind) return 'removed'
    if (identity.kind === 'device' && identity.device.revokedAt !== null) return 'revoked'
    if (secretHashOf(identity) !== session.secretHash) return 'credentials_changed'
    if (
      identity.kind === 'service' &&
      session.principal.kind === 'service' &&
      identity.account.role !== session.principal.role
    ) {
      return 'role_changed'
    }
    return null
  }

  async function pollRegistry(): Promise<void> {
    const revision = await registry.revision()
    lastRevision = revision
    for (const conn of connections) {
      const session = conn.session
      if (session === null || conn.closed || session.revision === revision) continue
      const problem = await recheck(session)
      session.revision = revision
      if (problem !== null && !conn.closed) disconnect(conn, session, problem)
    }
  }

  let pollTimer: NodeJS.Timeout | undefined
  let polling: Promise<void> | undefined
  function schedulePoll(): void {
    pollTimer = setTimeout(() => {
      polling = pollRegistry()
        .catch((error: unknown) => log.error({ err: error }, 'registry poll failed; will retry'))
        .finally(() => {
          polling = undefined
          if (!closing) schedulePoll()
        })
    }, pollMs)
  }
  schedulePoll()
  keeper?.start()

  log.info({ host: options.host, port, limits }, 'MQTT gateway listening')

  let closed: Promise<void> | undefined
  return {
    port,
    stats() {
      let connectedDevices = 0
      let connectedServices = 0
      for (const conn of connections) {
        if (conn.session === null || !conn.client.connected) continue
        if (conn.session.principal.kind === 'device') connectedDevices += 1
        else connectedServices += 1
      }
      return {
        ...stats.totals,
        connectedClients: broker.connectedClients,
        connectedDevices,
        connectedServices,
        spoolEntries: keeper?.entries() ?? 0,
        devices: stats.devices(),
      }
    },
    close() {
      closed ??= (async () => {
        closing = true
        clearTimeout(pollTimer)
        await polling
        const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()))
        await new Promise<void>((resolve) => broker.close(() => resolve()))
        // Connections that never completed CONNECT are not aedes clients; end them too.
        for (const conn of connections) conn.socket.destroy()
        await serverClosed
        await keeper?.close()
        log.info('MQTT gateway closed')
      })()
      return closed
    },
  }
}
