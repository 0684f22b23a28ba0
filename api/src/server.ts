import { once } from 'node:events'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Server as SocketServer } from 'socket.io'
import { API_V1_PREFIX, createApi } from './app.ts'
import { connectLiveCluster, type LiveCluster } from './live/cluster.ts'
import { createLiveHub, type LiveHub } from './live/hub.ts'
import { type MqttFeed, type MqttFeedOptions, startMqttFeed } from './live/mqtt-feed.ts'
import type { ApiDeps } from './options.ts'

/** After close() stops accepting, in-flight requests get this long before their sockets are cut. */
export const CLOSE_GRACE_MS = 5_000
/** socket.io's own buffer limit per message from a client: subscriptions are tiny. */
const SOCKET_MAX_MESSAGE_BYTES = 16 * 1024

export interface StartApiOptions extends ApiDeps {
  readonly host: string
  /** 0 picks a free port; the chosen one is in the result. */
  readonly port: number
  /** Broker credentials of the `api` service, for live events; without them the map updates on reload only. */
  readonly live?: MqttFeedOptions
  /**
   * `redis://` or `rediss://` URL joining several API instances (live/cluster.ts); unset: a single instance.
   * REDIS_URL, passed on by apiListenOptions.
   */
  readonly redisUrl?: string | undefined
  /** How long start-up waits for Redis before it goes on without it (live/cluster.ts default). */
  readonly redisConnectTimeoutMs?: number
}

export interface RunningApi {
  readonly port: number
  /** The socket.io fan-out (tests publish into it directly). */
  readonly hub: LiveHub
  close(): Promise<void>
}

/**
 * Whether a socket.io handshake comes from a page of this server. No Origin: not a browser page (curl, a
 * native client), allowed. An Origin that is not a URL (`null` from a sandboxed frame or a file:// page) is
 * refused; parsing it must not throw, engine.io calls this outside any error handler.
 */
export function isSameOrigin(origin: string | undefined, host: string | undefined): boolean {
  if (origin === undefined) return true
  if (!URL.canParse(origin)) return false
  return new URL(origin).host === host
}

export async function startApi(options: StartApiOptions): Promise<RunningApi> {
  const { host, port, live, redisUrl, redisConnectTimeoutMs, ...deps } = options
  const api = createApi(deps)
  const server = createServer(api.app)
  const io = new SocketServer(server, {
    path: '/socket.io',
    serveClient: false,
    maxHttpBufferSize: SOCKET_MAX_MESSAGE_BYTES,
    // Same origin only: the dashboard is served from this server.
    cors: undefined,
    allowRequest: (req, callback) => {
      // Browsers send Origin on WebSocket and XHR; a page elsewhere must not ride on a user's cookie.
      callback(null, isSameOrigin(req.headers.origin, req.headers.host))
    },
  })
  let cluster: LiveCluster | undefined
  if (redisUrl !== undefined) {
    cluster = await connectLiveCluster({
      url: redisUrl,
      io,
      log: deps.log,
      ...(redisConnectTimeoutMs === undefined ? {} : { connectTimeoutMs: redisConnectTimeoutMs }),
    })
  }
  const hub = createLiveHub({
    io,
    auth: api.auth,
    policy: api.ctx.options,
    log: deps.log,
    revalidateMs: api.ctx.options.liveRevalidateMs,
    ...(cluster === undefined ? {} : { cluster }),
  })
  // Log-outs, user changes and revoked tokens that requests make here reach the live sockets of every instance.
  const stopAccessChanges = api.ctx.accessChanges.subscribe((change) => hub.accessChanged(change))
  let address: AddressInfo
  let feed: MqttFeed | undefined
  try {
    server.listen({ host, port })
    await once(server, 'listening')
    const bound = server.address()
    if (bound === null || typeof bound === 'string') {
      throw new Error(`api server has no TCP address (got ${String(bound)})`)
    }
    address = bound
    if (live !== undefined) {
      feed = await startMqttFeed({
        options: live,
        registry: deps.storage.registry,
        hub,
        log: deps.log,
        clock: api.ctx.clock,
      })
    }
  } catch (error) {
    // A port in use or a broker that refuses: undo what started, or the Redis connection (which retries for ever)
    // and the hub's timers would keep the process alive after the error.
    stopAccessChanges()
    hub.close()
    await new Promise<void>((resolve) => io.close(() => resolve()))
    await cluster?.close()
    server.close()
    throw error
  }
  deps.log.info(
    { host, port: address.port, api: API_V1_PREFIX, live: live !== undefined, cluster: cluster !== undefined },
    'api listening',
  )

  let closing: Promise<void> | undefined
  return {
    port: address.port,
    hub,
    close() {
      closing ??= (async () => {
        await feed?.close()
        stopAccessChanges()
        hub.close()
        await new Promise<void>((resolve) => io.close(() => resolve()))
        // After io.close(): it closes the Redis adapter, whose unsubscriptions go out on the way.
        await cluster?.close()
        await new Promise<void>((resolve, reject) => {
          const force = setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS)
          force.unref()
          server.close((error) => {
            clearTimeout(force)
            // io.close() closes the http server too; a second close reports ERR_SERVER_NOT_RUNNING.
            if (error && !('code' in error && error.code === 'ERR_SERVER_NOT_RUNNING')) reject(error)
            else resolve()
          })
          // Keep-alive connections with no request in flight would otherwise hold close() open.
          server.closeIdleConnections()
        })
      })()
      return closing
    },
  }
}
