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
    db.exec('CREATE INDEX IF NOT EXISTS spool_received_at ON spool (received_at)')
    db.pragma(`user_version = ${SPOOL_SCHEMA_VERSION}`)
  } catch (error) {
    db.close()
    throw error
  }

  const insert = db.prepare<[string, Buffer, number]>(
    'INSERT INTO spool (topic, payload, received_at) VALUES (?, ?, ?)',
  )
  const remove = db.prepare<[number]>('DELETE FROM spool WHERE id = ?')
  const select = db.prepare<[number, number], EntryRow>(
    'SELECT id, topic, payload, received_at FROM spool WHERE id > ? ORDER BY id LIMIT ?',
  )
  const prune = db.prepare<[number]>('DELETE FROM spool WHERE received_at < ?')
  const count = db.prepare<[], { n: number }>('SELECT count(*) AS n FROM spool')
  let entries = count.get()?.n ?? 0

  const appendBatch = db.transaction((batch: readonly (readonly SpoolRecord[])[]): number[][] =>
    batch.map((records) => records.map((r) => Number(insert.run(r.topic, r.payload, r.receivedAt).lastInsertRowid))),
  )
  const ackBatch = db.transaction((ids: readonly number[]): number => {
    let removed = 0
    for (const id of ids) removed += remove.run(id).changes
    return removed
  })

  // Group commit, as in readings.ts: the first append of an event-loop turn commits at once; appends made
  // after it in the same turn wait for one shared commit in setImmediate. Every append resolves only after
  // the commit that holds its records.
  let queue: PendingAppend[] = []
  let turnBusy = false

  function commit(batch: readonly (readonly SpoolRecord[])[]): number[][] {
    const ids = appendBatch.immediate(batch)
    for (const list of ids) entries += list.length
    return ids
  }

  function flush(): void {
    turnBusy = false
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
      if (turnBusy) {
        return new Promise((resolve, reject) => {
          queue.push({ records, resolve, reject })
        })
      }
      turnBusy = true
      setImmediate(flush)
      try {
        return Promise.resolve(commit([records])[0] ?? [])
      } catch (error) {
        return Promise.reject(error)
      }
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
      const removed = prune.run(ts).changes
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
