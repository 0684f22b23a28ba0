import Database from 'better-sqlite3'
import { StorageError } from '../errors.ts'

/**
 * The InfluxDB writer's on-disk spool: line protocol lines the server has not accepted yet, in write order,
 * and the lines it refused (HTTP 400/413 for a single line), kept with the server's reason.
 *
 * One SQLite file (WAL, synchronous=FULL: a line the writer reported durable survives a power loss, not
 * just a process crash). `seq` is the writer's order key, assigned when `write` was called, so lines of a
 * request that failed after later lines were spooled still replay first. The file is opened with an
 * exclusive lock: two writers on one spool would replay each other's lines out of order, so the second
 * fails to open (SQLITE_BUSY after `busy_timeout`) instead.
 */
export interface SpoolFile {
  /** Appends lines (seq, line) in one committed transaction. */
  append(rows: readonly SpoolRow[]): void
  /** Oldest lines first (by seq), at most `limit`. */
  oldest(limit: number): SpoolRow[]
  /** Deletes lines the server accepted. */
  remove(seqs: readonly number[]): void
  /** Moves one line from the pending lines to the refused table, with the server's status and message. */
  refuse(row: SpoolRow, status: number, reason: string, at: number): void
  /** Lines waiting. */
  depth(): number
  /** The next free seq: one past the largest ever stored in this file (pending or refused). */
  nextSeq(): number
  refusedLines(limit: number): RefusedLine[]
  refusedCount(): number
  readonly open: boolean
  close(): void
}

export interface SpoolRow {
  readonly seq: number
  readonly line: string
}

export interface RefusedLine {
  readonly seq: number
  readonly line: string
  /** HTTP status of the refusal (400 malformed / partial write, 413 a single line too large). */
  readonly status: number
  /** The server's message. */
  readonly reason: string
  /** Epoch ms. */
  readonly refusedAt: number
}

const SPOOL_FILE_SCHEMA_VERSION = 1

/**
 * How long opening waits for a lock held by another connection. Short, unlike the main store's 5 s: the
 * lock is held for the writer's lifetime (locking_mode=EXCLUSIVE), so waiting longer would not help.
 */
const SPOOL_LOCK_TIMEOUT_MS = 1_000

export function openSpoolFile(path: string): SpoolFile {
  const db = new Database(path)
  try {
    db.pragma(`busy_timeout = ${SPOOL_LOCK_TIMEOUT_MS}`)
    db.pragma('locking_mode = EXCLUSIVE')
    db.pragma('journal_mode = WAL')
    db.pragma('synchronous = FULL')
    const version = Number(db.pragma('user_version', { simple: true }))
    if (version > SPOOL_FILE_SCHEMA_VERSION) {
      throw new StorageError('SCHEMA_TOO_NEW', `influx spool ${path} has schema ${version}, newer than this code`)
    }
    // seq is the rowid, so "oldest first" is a walk of the table's own B-tree.
    db.exec(`CREATE TABLE IF NOT EXISTS pending (seq INTEGER PRIMARY KEY, line TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS refused (
        seq INTEGER PRIMARY KEY,
        line TEXT NOT NULL,
        status INTEGER NOT NULL,
        reason TEXT NOT NULL,
        refused_at INTEGER NOT NULL
      )`)
    db.pragma(`user_version = ${SPOOL_FILE_SCHEMA_VERSION}`)
  } catch (error) {
    db.close()
    throw error
  }

  const insert = db.prepare<[number, string]>('INSERT INTO pending (seq, line) VALUES (?, ?)')
  const select = db.prepare<[number], SpoolRow>('SELECT seq, line FROM pending ORDER BY seq LIMIT ?')
  const deleteOne = db.prepare<[number]>('DELETE FROM pending WHERE seq = ?')
  const insertRefused = db.prepare<[number, string, number, string, number]>(
    'INSERT OR REPLACE INTO refused (seq, line, status, reason, refused_at) VALUES (?, ?, ?, ?, ?)',
  )
  const countPending = db.prepare<[], { n: number }>('SELECT count(*) AS n FROM pending')
  const countRefused = db.prepare<[], { n: number }>('SELECT count(*) AS n FROM refused')
  const maxSeq = db.prepare<[], { m: number | null }>(
    'SELECT max(m) AS m FROM (SELECT max(seq) AS m FROM pending UNION ALL SELECT max(seq) FROM refused)',
  )
  const selectRefused = db.prepare<
    [number],
    { seq: number; line: string; status: number; reason: string; refused_at: number }
  >('SELECT seq, line, status, reason, refused_at FROM refused ORDER BY seq LIMIT ?')

  let depth = countPending.get()?.n ?? 0

  const appendAll = db.transaction((rows: readonly SpoolRow[]) => {
    for (const row of rows) insert.run(row.seq, row.line)
  })
  const removeAll = db.transaction((seqs: readonly number[]): number => {
    let removed = 0
    for (const seq of seqs) removed += deleteOne.run(seq).changes
    return removed
  })
  const moveToRefused = db.transaction((row: SpoolRow, status: number, reason: string, at: number): number => {
    insertRefused.run(row.seq, row.line, status, reason, at)
    return deleteOne.run(row.seq).changes
  })

  function checkOpen(): void {
    if (!db.open) throw new StorageError('CLOSED', 'the influx spool is closed')
  }

  return {
    append(rows) {
      checkOpen()
      if (rows.length === 0) return
      appendAll.immediate(rows)
      depth += rows.length
    },
    oldest(limit) {
      checkOpen()
      return select.all(limit)
    },
    remove(seqs) {
      checkOpen()
      if (seqs.length === 0) return
      depth -= removeAll.immediate(seqs)
    },
    refuse(row, status, reason, at) {
      checkOpen()
      depth -= moveToRefused.immediate(row, status, reason, at)
    },
    depth: () => depth,
    nextSeq() {
      checkOpen()
      return (maxSeq.get()?.m ?? 0) + 1
    },
    refusedLines(limit) {
      checkOpen()
      return selectRefused.all(limit).map((r) => ({
        seq: r.seq,
        line: r.line,
        status: r.status,
        reason: r.reason,
        refusedAt: r.refused_at,
      }))
    },
    refusedCount() {
      checkOpen()
      return countRefused.get()?.n ?? 0
    },
    get open() {
      return db.open
    },
    close() {
      if (db.open) db.close()
    },
  }
}
