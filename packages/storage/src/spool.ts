/**
 * A durable spool of telemetry the gateway has accepted but the ingest has not yet confirmed.
 *
 * Why: the broker (aedes 1.2) acknowledges a QoS 1 PUBLISH to the device before it queues the message
 * for subscribers, and queues it in memory. The gateway appends each accepted telemetry message here
 * BEFORE the PUBACK goes out, deletes it once the ingest has acknowledged its delivery, and re-publishes
 * whatever is left when it starts again. So a reading a device has had acknowledged is either in the
 * store, in the broker's queue, or in this spool. Entries may be delivered twice (after a crash between
 * the ingest's commit and the deletion here); readings are idempotent on (device, ts), so that is harmless.
 *
 * It is a separate interface (and, for SQLite, a separate file) from `Storage` so the gateway's writes
 * never wait on the ingest's.
 */
export interface SpoolRecord {
  readonly topic: string
  readonly payload: Buffer
  /** When the gateway accepted the message, epoch ms. */
  readonly receivedAt: number
}

export interface SpoolEntry extends SpoolRecord {
  /** Increasing in append order; never reused. */
  readonly id: number
}

export interface TelemetrySpool {
  /**
   * Appends records and resolves with their ids (in order) once they are durable (committed).
   * Appends made in the same event-loop turn share one commit.
   */
  append(records: readonly SpoolRecord[]): Promise<number[]>
  /** Deletes entries whose delivery was confirmed; unknown ids are ignored. */
  ack(ids: readonly number[]): Promise<void>
  /** Entries in id order with an id greater than `afterId` (default 0), at most `limit`. */
  pending(query: { readonly afterId?: number; readonly limit: number }): Promise<SpoolEntry[]>
  /**
   * Deletes entries received before `ts` (epoch ms), taken in append order: it stops at the first entry
   * received at or after `ts` (so an entry appended after it with an earlier time, after the clock was set
   * back, stays until a later prune). Returns how many went.
   */
  pruneOlderThan(ts: number): Promise<number>
  /** Entries held now. */
  size(): number
  close(): Promise<void>
}
