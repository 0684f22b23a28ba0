/// <reference lib="dom" />
import { io, type Socket } from 'socket.io-client'
import { parseReadings, type ReadingData } from './schemas.ts'

/**
 * Live readings over socket.io on the page's own origin (path /socket.io). On every connect the
 * client subscribes to the map and to the open site; the server sends coalesced `readings` batches
 * and waits for our ack before the next (one batch in flight per client). After a lost connection
 * the app refetches the sites, since batches sent while we were away are gone.
 */

export interface LiveHandlers {
  readonly onReadings: (readings: ReadingData[]) => void
  /** A device went on- or offline; the site summaries are worth refetching. */
  readonly onDeviceStatus: () => void
  /** `connected` false: lost (show the banner); true with `reconnected`: back after a loss (catch up). */
  readonly onConnection: (connected: boolean, reconnected: boolean) => void
}

/** Retry delays after a refused connection: from 1 s, doubling, at most 30 s (socket.io's own defaults are 1 s and 5 s). */
export const RETRY_MIN_MS = 1_000
export const RETRY_MAX_MS = 30_000

export interface Live {
  setSite(id: string | null): void
  close(): void
}

export function connectLive(handlers: LiveHandlers): Live {
  const socket: Socket = io({ path: '/socket.io' })
  let site: string | null = null
  let wasConnected = false
  let lost = false
  let retryMs = RETRY_MIN_MS
  let retryTimer: ReturnType<typeof setTimeout> | null = null
  let closed = false

  socket.on('connect', () => {
    retryMs = RETRY_MIN_MS
    socket.emit('subscribe', { map: true })
    if (site !== null) socket.emit('subscribe', { site })
    const reconnected = wasConnected || lost
    wasConnected = true
    lost = false
    handlers.onConnection(true, reconnected)
  })
  socket.on('disconnect', (reason) => {
    lost = true
    handlers.onConnection(false, false)
    // A server-side disconnect is not retried by the client on its own (socket.io docs, "disconnect" event).
    if (reason === 'io server disconnect') socket.connect()
  })
  socket.on('connect_error', () => {
    if (!lost) {
      lost = true
      handlers.onConnection(false, false)
    }
    // A connection refused by a server middleware is not retried by the client itself (socket.active
    // is false then); one refused during a server restart must still come back.
    if (!socket.active && retryTimer === null && !closed) {
      retryTimer = setTimeout(() => {
        retryTimer = null
        if (!closed) socket.connect()
      }, retryMs)
      retryMs = Math.min(retryMs * 2, RETRY_MAX_MS)
    }
  })
  socket.on('readings', (batch: unknown, ack: unknown) => {
    try {
      handlers.onReadings(parseReadings(batch))
    } finally {
      if (typeof ack === 'function') ack()
    }
  })
  socket.on('device-status', () => handlers.onDeviceStatus())

  return {
    setSite(id) {
      if (id === site) return
      if (site !== null && socket.connected) socket.emit('unsubscribe', { site })
      site = id
      if (site !== null && socket.connected) socket.emit('subscribe', { site })
    },
    close() {
      closed = true
      if (retryTimer !== null) clearTimeout(retryTimer)
      socket.close()
    },
  }
}
