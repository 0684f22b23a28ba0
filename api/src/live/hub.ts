import {
  type AccessPolicy,
  canOnSite,
  holds,
  isValidId,
  METRICS,
  type MetricValues,
  type Principal,
} from '@skolluft/core'
import type { Logger } from '@skolluft/runtime'
import type { Server, Socket } from 'socket.io'
import { z } from 'zod'
import type { Authenticator } from '../auth/authenticate.ts'
import { AccessChange } from './access-changes.ts'

/**
 * Live events over socket.io. A client subscribes to the whole map and/or to single sites:
 *   client → `subscribe` {map: true} | {site: id};  `unsubscribe` the same
 *   server → `readings` [{site, device, ts, values}]      (ack it: the next batch waits for the ack)
 *   server → `device-status` [{site, device, online, ts}] (only to clients allowed to see device health)
 *
 * A slow client never makes the server queue without bound (house style: signalk-server's
 * BackpressureManager): each client has at most one `readings` batch in flight and, while it waits,
 * keeps only the newest event per site, merged per metric. Memory per client is bounded by the number of
 * sites, however fast readings arrive and however slow the client is. A client that never acks gets
 * one batch per ACK_TIMEOUT_MS.
 *
 * With several API instances (cluster.ts) each hub serves only the sockets connected to it. Broker events
 * reach every instance through its own feed (publishReadings/publishStatus: local only); events that start
 * in one instance go to the others through the cluster adapter (broadcastReadings/broadcastStatus).
 *
 * Access changes (a log-out, a disabled or changed user, a revoked token: access-changes.ts) are re-checked at
 * once on every instance (accessChanged): the instance that made the change checks its own affected sockets
 * and tells the others through the cluster adapter, so a socket on any instance loses what it may no longer
 * see within the time a Redis message takes, not REVALIDATE_MS. The periodic check stays as the safety net
 * for changes no instance hears of: made while Redis was down, or by the CLI, which writes to storage
 * directly and reaches no API process.
 */
export const ACK_TIMEOUT_MS = 10_000
/** Events are gathered this long before a batch goes out, so a burst becomes one message. */
export const FLUSH_DELAY_MS = 100
/** Sites one client may follow one by one (the map subscription covers all). */
export const MAX_SITE_SUBSCRIPTIONS = 100
/**
 * A connection outlives the request that opened it, so its credentials are checked again this often:
 * after a log-out, a disabled account or a revoked token the socket is closed (or narrowed to what the
 * caller may still see) within this time. Changes made through the API are acted on at once (accessChanged);
 * this bounds the rest (CLI changes, messages lost while Redis was down).
 */
export const REVALIDATE_MS = 30_000

export interface ReadingEvent {
  readonly site: string
  readonly device: string
  /** ISO 8601 UTC of the newest value. */
  readonly ts: string
  readonly values: MetricValues
}

export interface StatusEvent {
  readonly site: string
  readonly device: string
  readonly online: boolean
  readonly ts: string
}

/** serverSideEmit event names between instances (cluster.ts); the payloads are checked like any input. */
export const PEER_READINGS_EVENT = 'skolluft:live-readings'
export const PEER_STATUS_EVENT = 'skolluft:live-status'
export const PEER_ACCESS_EVENT = 'skolluft:live-access'

const IdString = z.string().refine(isValidId, 'not an id')
const PeerReadings = z.array(
  z.strictObject({
    site: IdString,
    device: IdString,
    ts: z.iso.datetime({ offset: true }),
    values: z.partialRecord(z.enum(METRICS), z.number()),
  }),
)
const PeerStatus = z.strictObject({
  site: IdString,
  device: IdString,
  online: z.boolean(),
  ts: z.iso.datetime({ offset: true }),
})

const Subscription = z.union([
  z.strictObject({ map: z.literal(true) }),
  z.strictObject({ site: z.string().refine(isValidId, 'not a site id') }),
])

interface Client {
  readonly socket: Socket
  principal: Principal
  /** The session whose cookie opened the socket; null for tokens and anonymous sockets. */
  readonly sessionId: string | null
  /** Bumped by every credential check, so the result of an older, slower check does not win. */
  checks: number
  map: boolean
  readonly sites: Set<string>
  readonly pending: Map<string, ReadingEvent>
  readonly pendingStatus: Map<string, StatusEvent>
  inFlight: boolean
  timer: NodeJS.Timeout | undefined
}

export interface LiveHub {
  /**
   * Events this instance learnt from the broker, to the sockets connected here only: every instance has its
   * own feed (mqtt-feed.ts), so sending them on would deliver them once per instance.
   */
  publishReadings(events: readonly ReadingEvent[]): void
  publishStatus(event: StatusEvent): void
  /**
   * Events that originate in this instance, which no other instance learns of by itself: to the sockets
   * connected here and, when instances are joined (cluster.ts), to every other instance's. While Redis is
   * unavailable the other instances miss them (logged).
   */
  broadcastReadings(events: readonly ReadingEvent[]): void
  broadcastStatus(event: StatusEvent): void
  /**
   * Access changed (routes call this through ApiContext.accessChanges): re-checks now the credentials of the
   * sockets it touches, here and, when instances are joined, on every other instance. A socket whose
   * credentials no longer hold is closed; one that holds less is narrowed. Returns at once; the checks run
   * in the background. While Redis is unavailable the other instances find out at their periodic check.
   */
  accessChanged(change: AccessChange): void
  /**
   * Connected clients and the events waiting for them; `fromPeers` counts the live events received from other
   * instances, `accessFromPeers` the access changes. For tests and metrics.
   */
  stats(): { clients: number; pending: number; inFlight: number; fromPeers: number; accessFromPeers: number }
  /** Stops the periodic credential check (the sockets close with the socket.io server). */
  close(): void
}

function merge(older: ReadingEvent | undefined, newer: ReadingEvent): ReadingEvent {
  if (older === undefined) return newer
  const [first, second] = older.ts <= newer.ts ? [older, newer] : [newer, older]
  return { site: newer.site, device: second.device, ts: second.ts, values: { ...first.values, ...second.values } }
}

export function createLiveHub(deps: {
  readonly io: Server
  readonly auth: Authenticator
  readonly policy: AccessPolicy
  readonly log: Logger
  readonly revalidateMs?: number
  /** Set when the instances are joined through Redis (cluster.ts); unset: this is the only instance. */
  readonly cluster?: { ready(): boolean }
}): LiveHub {
  const { io, auth, policy, log, cluster } = deps
  const clients = new Set<Client>()
  let fromPeers = 0
  let accessFromPeers = 0
  /** Counts access changes heard of; a handshake that overlapped one is checked again once connected. */
  let accessEpoch = 0
  const handshakes = new WeakMap<Socket, { principal: Principal; sessionId: string | null; epoch: number }>()

  /** Who opened the socket, from its handshake's headers, as a request would be authenticated. */
  function credentialsOf(socket: Socket) {
    const { authorization, cookie } = socket.handshake.headers
    return auth.resolve({ authorization, cookie })
  }

  async function revalidate(client: Client): Promise<void> {
    client.checks += 1
    const check = client.checks
    let principal: Principal | undefined
    try {
      principal = (await credentialsOf(client.socket)).principal
    } catch {
      principal = undefined
    }
    // A newer check started meanwhile (an access change during a periodic check): its answer counts.
    if (check !== client.checks || client.socket.disconnected) return
    if (principal === undefined || !holds(principal, 'map:read', policy)) {
      log.info({ socket: client.socket.id }, 'live socket closed: its credentials are no longer valid')
      client.socket.disconnect(true)
      return
    }
    // A principal whose sites or role changed sees only what the new rights allow from now on, including
    // what was queued for it under the old rights.
    client.principal = principal
    for (const site of client.pending.keys())
      if (!canOnSite(principal, 'map:read', site, policy)) client.pending.delete(site)
    for (const [device, status] of client.pendingStatus) {
      if (
        !canOnSite(principal, 'map:read', status.site, policy) ||
        !canOnSite(principal, 'devices:read', status.site, policy)
      )
        client.pendingStatus.delete(device)
    }
  }

  function touches(client: Client, change: AccessChange): boolean {
    const { principal } = client
    switch (change.kind) {
      case 'session':
        return client.sessionId === change.id
      case 'user':
        return principal.kind === 'user' && principal.id === change.id
      case 'token':
        return principal.kind === 'token' && principal.id === change.id
    }
  }

  /** Re-checks the sockets connected here that `change` touches. */
  function recheck(change: AccessChange): void {
    accessEpoch += 1
    let sockets = 0
    for (const client of clients) {
      if (!touches(client, change)) continue
      sockets += 1
      revalidate(client).catch((error: unknown) => log.warn({ err: error }, 'live socket check failed'))
    }
    if (sockets > 0) log.info({ change: change.kind, sockets }, 'live sockets re-checked after an access change')
  }

  const revalidateTimer = setInterval(() => {
    for (const client of clients) {
      if (client.principal.kind === 'anonymous') continue
      revalidate(client).catch((error: unknown) => log.warn({ err: error }, 'live socket check failed'))
    }
  }, deps.revalidateMs ?? REVALIDATE_MS)
  revalidateTimer.unref()

  io.use((socket, next) => {
    const epoch = accessEpoch
    credentialsOf(socket)
      .then((state) => {
        if (!holds(state.principal, 'map:read', policy)) {
          next(new Error('unauthorized: log in to follow the map'))
          return
        }
        handshakes.set(socket, { principal: state.principal, sessionId: state.session?.id ?? null, epoch })
        next()
      })
      .catch((error: unknown) => next(error instanceof Error ? error : new Error('authentication failed')))
  })

  function wants(client: Client, site: string): boolean {
    return (client.map || client.sites.has(site)) && canOnSite(client.principal, 'map:read', site, policy)
  }

  function flush(client: Client): void {
    client.timer = undefined
    if (client.socket.disconnected) return
    if (client.pendingStatus.size > 0) {
      client.socket.emit('device-status', [...client.pendingStatus.values()])
      client.pendingStatus.clear()
    }
    if (client.inFlight || client.pending.size === 0) return
    const batch = [...client.pending.values()]
    client.pending.clear()
    client.inFlight = true
    client.socket.timeout(ACK_TIMEOUT_MS).emit('readings', batch, (error: Error | null) => {
      client.inFlight = false
      if (error) log.debug({ socket: client.socket.id }, 'live client did not ack in time')
      schedule(client)
    })
  }

  function schedule(client: Client): void {
    if (client.timer === undefined && (client.pending.size > 0 || client.pendingStatus.size > 0)) {
      client.timer = setTimeout(() => flush(client), FLUSH_DELAY_MS)
    }
  }

  io.on('connection', (socket) => {
    const handshake = handshakes.get(socket)
    if (handshake === undefined) {
      socket.disconnect(true)
      return
    }
    const client: Client = {
      socket,
      principal: handshake.principal,
      sessionId: handshake.sessionId,
      checks: 0,
      map: false,
      sites: new Set(),
      pending: new Map(),
      pendingStatus: new Map(),
      inFlight: false,
      timer: undefined,
    }
    clients.add(client)
    // An access change arrived while this handshake read the credentials: they may be stale already.
    if (handshake.epoch !== accessEpoch && handshake.principal.kind !== 'anonymous') {
      revalidate(client).catch((error: unknown) => log.warn({ err: error }, 'live socket check failed'))
    }
    socket.on('subscribe', (body: unknown) => {
      const parsed = Subscription.safeParse(body)
      if (!parsed.success) {
        socket.emit('live-error', { code: 'invalid_subscription', message: 'send {map: true} or {site: "<id>"}' })
        return
      }
      if ('map' in parsed.data) client.map = true
      else if (client.sites.size < MAX_SITE_SUBSCRIPTIONS) client.sites.add(parsed.data.site)
      else socket.emit('live-error', { code: 'too_many_sites', message: `at most ${MAX_SITE_SUBSCRIPTIONS} sites` })
    })
    socket.on('unsubscribe', (body: unknown) => {
      const parsed = Subscription.safeParse(body)
      if (!parsed.success) return
      if ('map' in parsed.data) client.map = false
      else client.sites.delete(parsed.data.site)
    })
    socket.on('disconnect', () => {
      clearTimeout(client.timer)
      clients.delete(client)
    })
  })

  function publishReadings(events: readonly ReadingEvent[]): void {
    for (const client of clients) {
      for (const event of events) {
        if (!wants(client, event.site)) continue
        client.pending.set(event.site, merge(client.pending.get(event.site), event))
      }
      schedule(client)
    }
  }

  function publishStatus(event: StatusEvent): void {
    for (const client of clients) {
      if (!wants(client, event.site) || !canOnSite(client.principal, 'devices:read', event.site, policy)) continue
      client.pendingStatus.set(event.device, event)
      schedule(client)
    }
  }

  /** To the other instances; the sender never receives its own serverSideEmit (socket.io docs). */
  function toPeers(event: string, payload: unknown, count: number): void {
    if (cluster === undefined) return
    // Not queued while Redis is away: stale live events are worth less than bounded memory, and an access
    // change reaches the other instances' sockets at their periodic check anyway (REVALIDATE_MS).
    if (!cluster.ready()) {
      log.warn({ event, events: count }, 'live events not sent to other API instances: redis unavailable')
      return
    }
    io.serverSideEmit(event, payload)
  }

  if (cluster !== undefined) {
    io.on(PEER_READINGS_EVENT, (body: unknown) => {
      const parsed = PeerReadings.safeParse(body)
      if (!parsed.success) {
        log.warn({ event: PEER_READINGS_EVENT }, 'malformed live event from another instance dropped')
        return
      }
      fromPeers += parsed.data.length
      publishReadings(parsed.data)
    })
    io.on(PEER_STATUS_EVENT, (body: unknown) => {
      const parsed = PeerStatus.safeParse(body)
      if (!parsed.success) {
        log.warn({ event: PEER_STATUS_EVENT }, 'malformed live event from another instance dropped')
        return
      }
      fromPeers += 1
      publishStatus(parsed.data)
    })
    io.on(PEER_ACCESS_EVENT, (body: unknown) => {
      const parsed = AccessChange.safeParse(body)
      if (!parsed.success) {
        log.warn({ event: PEER_ACCESS_EVENT }, 'malformed access change from another instance dropped')
        return
      }
      accessFromPeers += 1
      recheck(parsed.data)
    })
  }

  return {
    publishReadings,
    publishStatus,
    broadcastReadings(events) {
      publishReadings(events)
      toPeers(PEER_READINGS_EVENT, events, events.length)
    },
    broadcastStatus(event) {
      publishStatus(event)
      toPeers(PEER_STATUS_EVENT, event, 1)
    },
    accessChanged(change) {
      recheck(change)
      toPeers(PEER_ACCESS_EVENT, change, 1)
    },
    close() {
      clearInterval(revalidateTimer)
    },
    stats() {
      let pending = 0
      let inFlight = 0
      for (const client of clients) {
        pending += client.pending.size
        if (client.inFlight) inFlight += 1
      }
      return { clients: clients.size, pending, inFlight, fromPeers, accessFromPeers }
    },
  }
}
