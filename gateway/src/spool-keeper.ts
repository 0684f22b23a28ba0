import type { Logger } from '@skolluft/runtime'
import type { TelemetrySpool } from '@skolluft/storage'
import type { PublishPacket } from 'aedes'

/**
 * Keeps accepted device telemetry in a durable spool until the ingest has acknowledged its delivery
 * (see TelemetrySpool in @skolluft/storage for why).
 *
 * Correlating the ingest's PUBACK with a spool entry. In aedes 1.2 the PUBLISH packet that authorizePublish
 * sees is wrapped for delivery (aedes-packet `new Packet(original)`, then per subscriber again in the
 * persistence and as a QoSPacket); each wrapper copies `payload` by reference, and the `ack` event carries
 * the wrapper the persistence kept for that subscriber (handlers/puback.js, `outgoingClearMessageId`).
 * The payload Buffer parsed from a device's packet is a distinct object per message, so it is the key: a
 * WeakMap from payload to spool id, filled when the append has committed (before the PUBACK) and read when
 * the ingest acknowledges. Neither `brokerCounter` nor the `published` hook works for this: aedes assigns
 * the counter to its wrapper only, and calls `published` with the original packet, which has none.
 * If a persistence ever copied payloads (a networked one would), the lookup misses: entries then stay until
 * SPOOL_RETENTION_MS and are replayed at each start, duplicates rather than losses, and the spool fills up;
 * the first test in spool.test.ts (entries deleted once the ingest acknowledges them) fails first.
 */
export interface SpoolKeeperOptions {
  readonly spool: TelemetrySpool
  readonly log: Logger
  readonly clock: () => number
  /** Entries held at most; beyond it publishes are refused (the device keeps the reading). */
  readonly maxEntries: number
  readonly retentionMs: number
  readonly pruneIntervalMs: number
}

export interface SpoolKeeper {
  /** Resolves once the message is durable; rejects with SpoolRefusal when it cannot be kept. */
  keep(packet: PublishPacket, receivedAt: number): Promise<void>
  /** A subscriber that commits before acknowledging (the ingest) acknowledged this delivery. */
  delivered(packet: object | undefined): void
  /** Publishes every entry still held, in order; each is deleted when the ingest acknowledges it again. */
  replay(publish: (packet: PublishPacket) => Promise<void>): Promise<number>
  entries(): number
  /** Starts pruning entries past the retention period, every `pruneIntervalMs`. */
  start(): void
  /** Deletes what was acknowledged so far and stops the timers; the spool itself stays open. */
  close(): Promise<void>
}

export class SpoolRefusal extends Error {
  readonly reason: 'spool_full' | 'spool_write_failed'
  constructor(reason: 'spool_full' | 'spool_write_failed', options?: { cause?: unknown }) {
    super(`telemetry not accepted: ${reason}`, options)
    this.name = 'SpoolRefusal'
    this.reason = reason
  }
}

/** Acknowledged ids are deleted in one transaction per this period (or per SPOOL_ACK_BATCH ids). */
const SPOOL_ACK_FLUSH_MS = 100
/** A delete transaction of 1 000 rows takes ~1 ms; bigger batches only lengthen the pause. */
const SPOOL_ACK_BATCH = 1_000
/** Entries read and republished at a time during replay; bounds memory while reading the spool. */
const SPOOL_REPLAY_BATCH = 1_000

export function createSpoolKeeper(options: SpoolKeeperOptions): SpoolKeeper {
  const { spool, clock, maxEntries } = options
  const log = options.log.child({ module: 'gateway-spool' })
  const ids = new WeakMap<object, number>()
  let acked: number[] = []
  let ackTimer: NodeJS.Timeout | undefined
  let deleting: Promise<void> = Promise.resolve()
  /** Appends not yet committed, counted against the bound so a burst cannot overshoot it. */
  let appending = 0

  function flushAcks(): void {
    clearTimeout(ackTimer)
    ackTimer = undefined
    if (acked.length === 0) return
    const batch = acked
    acked = []
    // A failed delete costs a duplicate delivery after the next restart, never a reading.
    deleting = deleting
      .then(() => spool.ack(batch))
      .catch((error: unknown) => log.error({ err: error, count: batch.length }, 'spool delete failed'))
  }

  async function prune(): Promise<void> {
    const removed = await spool.pruneOlderThan(clock() - options.retentionMs)
    if (removed > 0) {
      log.warn(
        { removed, retentionMs: options.retentionMs },
        'spooled telemetry the ingest never acknowledged was dropped after the retention period',
      )
    }
  }

  let pruneTimer: NodeJS.Timeout | undefined
  let pruning: Promise<void> | undefined
  let closed = false
  function schedulePrune(): void {
    pruneTimer = setTimeout(() => {
      pruning = prune()
        .catch((error: unknown) => log.error({ err: error }, 'spool prune failed; will retry'))
        .finally(() => {
          pruning = undefined
          if (!closed) schedulePrune()
        })
    }, options.pruneIntervalMs)
  }
  return {
    start() {
      if (pruneTimer === undefined && !closed) schedulePrune()
    },

    async keep(packet, receivedAt) {
      if (spool.size() + appending >= maxEntries) throw new SpoolRefusal('spool_full')
      const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload
      // A string payload (never one parsed from the wire) is replaced by a Buffer we can recognise later.
      packet.payload = payload
      appending += 1
      try {
        const [id] = await spool.append([{ topic: packet.topic, payload, receivedAt }])
        if (id !== undefined) ids.set(payload, id)
      } catch (error) {
        throw new SpoolRefusal('spool_write_failed', { cause: error })
      } finally {
        appending -= 1
      }
    },

    delivered(packet) {
      // undefined when aedes found no matching outgoing packet (already acknowledged).
      const payload = packet !== undefined && 'payload' in packet ? packet.payload : undefined
      if (typeof payload !== 'object' || payload === null) return
      const id = ids.get(payload)
      if (id === undefined) return
      ids.delete(payload)
      acked.push(id)
      if (acked.length >= SPOOL_ACK_BATCH) flushAcks()
      else ackTimer ??= setTimeout(flushAcks, SPOOL_ACK_FLUSH_MS)
    },

    async replay(publish) {
      let afterId = 0
      let count = 0
      for (;;) {
        const entries = await spool.pending({ afterId, limit: SPOOL_REPLAY_BATCH })
        if (entries.length === 0) break
        await Promise.all(
          entries.map((entry) => {
            ids.set(entry.payload, entry.id)
            return publish({
              cmd: 'publish',
              topic: entry.topic,
              payload: entry.payload,
              qos: 1,
              retain: false,
              dup: false,
            })
          }),
        )
        count += entries.length
        afterId = entries.at(-1)?.id ?? afterId
      }
      if (count > 0) log.info({ count }, 'replayed spooled telemetry the ingest had not acknowledged')
      return count
    },

    entries: () => spool.size(),

    async close() {
      closed = true
      clearTimeout(pruneTimer)
      await pruning
      flushAcks()
      await deleting
    },
  }
}
