import Database from 'better-sqlite3'
import { StorageError } from '../errors.ts'
import type { SpoolEntry, SpoolRecord, TelemetrySpool } from '../spool.ts'
import { BUSY_TIMEOUT_MS } from './sqlite-storage.ts'

export interface SqliteSpoolOptions {
  /** Spool file; created if missing. Keep it apart from the main database (see TelemetrySpool). */
  readonly path: string
  /** As for the main store (SqliteStorageOptions.synchronous): NORMAL survives a process crash, FULL power loss. */
  readonly synchronous?: 'NORMAL' | 'FULL'
}

const SPOOL_SCHEMA_VERSION = 1

interface EntryRow {
  id: number
  topic: string
  payload: Buffer
  received_at: number
}

interface PendingAppend {
  readonly records: readonly SpoolRecord[]
  readonly resolve: (ids: number[]) => void
  readonly reject: (error: unknown) => void
}

/**
 * The telemetry spool in its own SQLite file (WAL). AUTOINCREMENT keeps ids increasing even after the
 * newest entries were deleted, so a replay that pages by id never sees an id twice.
 */
export function openSqliteSpool(options: SqliteSpoolOptions): TelemetrySpool {
  const db = new Database(options.path)
  try {
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`)
    db.pragma('journal_mode = WAL')
    db.pragma(`synchronous = ${options.synchronous === 'FULL' ? 'FULL' : 'NORMAL'}`)
    const version = Number(db.pragma('user_version', { simple: true }))
    if (version > SPOOL_SCHEMA_VERSION) {
      throw new StorageError('SCHEMA_TOO_NEW', `spool ${options.path} has schema ${version}, newer than this code`)
    }
    db.exec(`CREATE TABLE IF NOT EXISTS spool (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      topic TEXT NOT NULL,
      payload BLOB NOT NULL,
      received_at INTEGER NOT NULL
    )`)
    db.pragma(`user_version = ${SPOOL_SCHEMA_VERSION}`)
  } catch (error) {
    db.close()
    throw error
  }

  const insert = db.prepare<[string, Buffer, number]>(
    'INSERT INTO spool (topic, payload, received_at) VALUES (?, ?, ?)',
  )
  const removeRange = db.prepare<[number, number]>('DELETE FROM spool WHERE id BETWEEN ? AND ?')
  const select = db.prepare<[number, number], EntryRow>(
    'SELECT id, topic, payload, received_at FROM spool WHERE id > ? ORDER BY id LIMIT ?',
  )
  // No index on received_at: it would cost a second B-tree write per message (~2 µs, a quarter of the
  // append and delete, measured). Entries are appended in time order, so the old ones are the lowest ids:
  // find the first entry that is young enough, walking from the oldest, and delete everything before it.
  const firstYoung = db.prepare<[number], { id: number }>(
    'SELECT id FROM spool WHERE received_at >= ? ORDER BY id LIMIT 1',
  )
  const removeBefore = db.prepare<[number]>('DELETE FROM spool WHERE id < ?')
  const count = db.prepare<[], { n: number }>('SELECT count(*) AS n FROM spool')
  let entries = count.get()?.n ?? 0

  const appendBatch = db.transaction((batch: readonly (readonly SpoolRecord[])[]): number[][] =>
    batch.map((records) => records.map((r) => Number(insert.run(r.topic, r.payload, r.receivedAt).lastInsertRowid))),
  )
  // Ids are consecutive (one writer) and acknowledged roughly in order, so a batch is a few runs of
  // consecutive ids: one range delete per run instead of one per id.
  const ackBatch = db.transaction((ids: readonly number[]): number => {
    const sorted = [...ids].sort((a, b) => a - b)
    let removed = 0
    let from = sorted[0] ?? 0
    let to = from
    for (let i = 1; i <= sorted.length; i += 1) {
      const id = sorted[i]
      if (id !== undefined && id <= to + 1) {
        to = Math.max(to, id)
        continue
      }
      removed += removeRange.run(from, to).changes
      from = id ?? 0
      to = from
    }
    return removed
  })

  // Group commit: appends made in one event-loop turn share one commit, in setImmediate (the check phase of
  // the same loop iteration, so the wait is well under a millisecond). Unlike readings.ts the first append of
  // a turn does not commit at once: the gateway takes many publishes per turn, and a commit costs far more
  // than a row. Every append resolves only after the commit that holds its records.
  let queue: PendingAppend[] = []

  function commit(batch: readonly (readonly SpoolRecord[])[]): number[][] {
    const ids = appendBatch.immediate(batch)
    for (const list of ids) entries += list.length
    return ids
  }

  function flush(): void {
    const pending = queue
    queue = []
    if (pending.length === 0) return
    try {
      const ids = commit(pending.map((p) => p.records))
      pending.forEach((p, i) => {
        p.resolve(ids[i] ?? [])
      })
    } catch (error) {
      for (const p of pending) p.reject(error)
    }
  }

  function closed(): Promise<never> {
    return Promise.reject(new StorageError('CLOSED', 'the spool is closed'))
  }

  return {
    append(records) {
      if (!db.open) return closed()
      if (records.length === 0) return Promise.resolve([])
      if (queue.length === 0) setImmediate(flush)
      return new Promise((resolve, reject) => {
        queue.push({ records, resolve, reject })
      })
    },

    async ack(ids) {
      if (!db.open) return closed()
      if (ids.length === 0) return
      entries -= ackBatch.immediate(ids)
    },

    async pending({ afterId = 0, limit }) {
      if (!db.open) return closed()
      return select
        .all(afterId, limit)
        .map((row): SpoolEntry => ({ id: row.id, topic: row.topic, payload: row.payload, receivedAt: row.received_at }))
    },

    async pruneOlderThan(ts) {
      if (!db.open) return closed()
      const removed = removeBefore.run(firstYoung.get(ts)?.id ?? Number.MAX_SAFE_INTEGER).changes
      entries -= removed
      return removed
    },

    size: () => entries,

    async close() {
      if (!db.open) return
      // Appends still queued for the next group commit are committed, not dropped.
      flush()
      db.close()
    },
  }
}
