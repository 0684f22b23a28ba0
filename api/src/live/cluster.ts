import type { Logger } from '@skolluft/runtime'
import { createAdapter } from '@socket.io/redis-adapter'
import { createClient, type RedisClientType } from 'redis'
import type { Server } from 'socket.io'

/**
 * Several API instances behind one load balancer, joined through Redis (socket.io's Redis adapter).
 *
 * Where live events come from decides how they cross instances:
 * - `readings` and `device-status` come from the broker. Every instance runs its own live feed
 *   (mqtt-feed.ts: a plain, non-shared QoS 0 subscription), so every instance receives every broker message
 *   once and hands it to the sockets connected to it. A browser's socket lives on exactly one instance, so it
 *   gets each event once. These events must NOT also go through Redis: each instance would then deliver
 *   every event N times (once from its own feed, N-1 times from its peers).
 *   The opposite design (one instance per message through a `$share/…` subscription, then Redis to the rest)
 *   was rejected: our own gateway (aedes 1.2) has no shared subscriptions, so the live map would go dark on
 *   it; every instance still receives every event, only through Redis instead of the broker, so it saves
 *   nothing per instance; and a Redis outage would then blank the live map on all instances but one.
 * - Events that originate in one instance (an HTTP action, a job of that instance) reach no other instance
 *   by themselves: LiveHub.broadcastReadings/broadcastStatus deliver them locally and send them to the other
 *   instances with `io.serverSideEmit` over Redis, where each hub applies them to its own sockets.
 *   Per-socket state (subscriptions, rights, the one-batch-in-flight ack window, merging) therefore stays
 *   where the socket is; nothing per socket is shared, and a socket.io broadcast (which would skip all of
 *   it) is never used.
 *
 * A Redis outage does not stop the API: broker events do not depend on Redis, so the API keeps serving
 * (HTTP and the live map) and only events that originate in another instance are missed until Redis is
 * back; the outage and the recovery are logged. Refusing to start would turn a Redis outage into a full
 * API outage for the smallest part of the live traffic. A malformed REDIS_URL fails at start (config.ts).
 *
 * The load balancer must keep a socket.io session on one instance (sticky sessions, e.g. by cookie or
 * client address), or clients must use the WebSocket transport only: the HTTP long-polling requests of
 * one session must reach the instance that holds it (socket.io docs, "Using multiple nodes").
 */
export interface LiveCluster {
  /** Whether a message to the other instances can go out now. */
  ready(): boolean
  close(): Promise<void>
}

/** How long start-up waits for Redis before it goes on without it (and keeps trying in the background). */
export const REDIS_CONNECT_TIMEOUT_MS = 5_000
/** How long close() waits for Redis to confirm the unsubscriptions before the connections are cut. */
export const REDIS_CLOSE_TIMEOUT_MS = 2_000
/**
 * Reconnection back-off: 50 ms doubling up to 5 s, plus up to 200 ms of jitter so instances that lost Redis
 * together do not return in step. node-redis's own default gives up after a connect timeout
 * (@redis/client socket.js defaultReconnectStrategy); this one never does.
 */
export const REDIS_RETRY_MAX_MS = 5_000
/** Prefix of the adapter's pub/sub channels, so several deployments can share one Redis. */
export const REDIS_CHANNEL_PREFIX = 'skolluft-live'

/** The URL without its credentials, for logs. */
export function redisAddress(url: string): string {
  const parsed = new URL(url)
  return `${parsed.protocol}//${parsed.host}`
}

type RedisClient = RedisClientType

/**
 * What the adapter calls on a client, with every reply it ignores handled. The adapter fires its pub/sub
 * commands and publications without awaiting them (@socket.io/redis-adapter 8.3 index.js); node-redis queues
 * them while Redis is away and rejects them when the client is destroyed, which would be unhandled
 * rejections (a crash, in Node's default mode) when an instance shuts down during an outage.
 */
function adapterView(client: RedisClient, log: Logger) {
  function handled<T>(reply: Promise<T>): Promise<T> {
    reply.catch((error: unknown) => log.debug({ err: error }, 'redis command dropped'))
    return reply
  }
  return {
    pSubscribe: (...args: Parameters<RedisClient['pSubscribe']>) => handled(client.pSubscribe(...args)),
    pUnsubscribe: (...args: Parameters<RedisClient['pUnsubscribe']>) => handled(client.pUnsubscribe(...args)),
    subscribe: (...args: Parameters<RedisClient['subscribe']>) => handled(client.subscribe(...args)),
    unsubscribe: (...args: Parameters<RedisClient['unsubscribe']>) => handled(client.unsubscribe(...args)),
    sSubscribe: (...args: Parameters<RedisClient['sSubscribe']>) => handled(client.sSubscribe(...args)),
    publish: (...args: Parameters<RedisClient['publish']>) => handled(client.publish(...args)),
    // Awaited by the adapter (PUBSUB NUMSUB for serverCount()).
    sendCommand: (...args: Parameters<RedisClient['sendCommand']>) => client.sendCommand(...args),
    on: (event: string, listener: (...args: unknown[]) => void) => client.on(event, listener),
    off: (event: string, listener: (...args: unknown[]) => void) => client.off(event, listener),
    listenerCount: (event: string) => client.listenerCount(event),
  }
}

export async function connectLiveCluster(deps: {
  readonly url: string
  readonly io: Server
  readonly log: Logger
  readonly connectTimeoutMs?: number
}): Promise<LiveCluster> {
  const log = deps.log.child({ module: 'live-cluster', redis: redisAddress(deps.url) })
  const pub: RedisClient = createClient({
    url: deps.url,
    socket: {
      reconnectStrategy: (retries) =>
        Math.min(2 ** Math.min(retries, 16) * 50, REDIS_RETRY_MAX_MS) + Math.floor(Math.random() * 200),
    },
  })
  const sub = pub.duplicate()
  // Without an 'error' listener an EventEmitter error ends the process; node-redis reports every failed
  // reconnection attempt here, so only the first one of an outage is logged.
  let down = false
  for (const [role, client] of [
    ['publisher', pub],
    ['subscriber', sub],
  ] as const) {
    client.on('error', (error: unknown) => {
      if (down) return
      down = true
      log.error(
        { err: error, role },
        'redis unavailable: live events from other API instances are lost until it returns',
      )
    })
    client.on('ready', () => {
      if (!down) return
      down = !(pub.isReady && sub.isReady)
      if (!down) log.info('redis back: live events cross API instances again')
    })
  }

  // connect() resolves once ready and retries until then; the adapter's subscriptions queue up meanwhile.
  const connecting = Promise.all([pub.connect(), sub.connect()])
  deps.io.adapter(createAdapter(adapterView(pub, log), adapterView(sub, log), { key: REDIS_CHANNEL_PREFIX }))
  const timeoutMs = deps.connectTimeoutMs ?? REDIS_CONNECT_TIMEOUT_MS
  let timer: NodeJS.Timeout | undefined
  const connected = await Promise.race([
    connecting.then(() => true),
    new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs)
    }),
  ]).finally(() => clearTimeout(timer))
  if (connected) log.info('live events cross API instances through redis')
  else {
    down = true
    log.error({ timeoutMs }, 'redis unreachable at start: serving without it, retrying in the background')
    // The promise settles when Redis answers at last, or rejects once close() gives up on it.
    connecting.catch(() => undefined)
  }

  return {
    ready: () => pub.isReady && sub.isReady,
    async close() {
      // Called after io.close(), which closed the adapter (its unsubscriptions are queued on `sub`).
      await Promise.all(
        [pub, sub].map(async (client) => {
          if (!client.isOpen) return
          if (!client.isReady) {
            client.destroy()
            return
          }
          let force: NodeJS.Timeout | undefined
          await Promise.race([
            client.close(),
            new Promise<void>((resolve) => {
              force = setTimeout(() => {
                client.destroy()
                resolve()
              }, REDIS_CLOSE_TIMEOUT_MS)
            }),
          ]).finally(() => clearTimeout(force))
        }),
      )
    },
  }
}
