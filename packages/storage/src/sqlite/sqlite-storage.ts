import Database from 'better-sqlite3'
import type { Storage } from '../types.ts'
import { createSqliteAccessStore } from './access.ts'
import { createSqliteAlertStore } from './alerts.ts'
import { createSqliteBreachStore } from './breaches.ts'
import { createSqliteCalibrationStore } from './calibrations.ts'
import { createSqliteMeasureStore } from './measures.ts'
import { migrate } from './migrations.ts'
import { createSqliteReadingStore } from './readings.ts'
import { createSqliteRegistryStore } from './registry.ts'
import { createSqliteRejectLog } from './rejects.ts'

/**
 * How long a connection waits for another process's write lock before failing with SQLITE_BUSY.
 * Gateway, ingest and api share one file; a write transaction here takes well under a millisecond,
 * so 5 s only runs out if a process hangs while holding the lock.
 */
export const BUSY_TIMEOUT_MS = 5000

export interface SqliteStorageOptions {
  /** Database file; created (with its schema) if missing. */
  readonly path: string
  /**
   * Durability of a commit (https://www.sqlite.org/pragma.html#pragma_synchronous, WAL mode):
   * - NORMAL (default): a commit is written to the WAL but not fsynced; the WAL is fsynced at checkpoints.
   *   A committed transaction survives a crash or SIGKILL of the process (the data is in the OS page cache),
   *   but the last commits before a power loss or kernel crash may be lost. The database never corrupts.
   * - FULL: every commit fsyncs the WAL, so it also survives power loss, at the price of one fsync per
   *   writeReadings call (milliseconds on SD cards and cheap disks, which caps ingest at a few hundred
   *   messages per second). Choose it where a lost second of data at power loss matters more than throughput.
   */
  readonly synchronous?: 'NORMAL' | 'FULL'
}

/**
 * Opens (and creates or migrates) the embedded SQLite store. Several processes may open the same file at
 * once: WAL lets readers run beside one writer, busy_timeout makes writers queue instead of failing.
 */
export function openSqliteStorage(options: SqliteStorageOptions): Storage {
  const db = new Database(options.path)
  try {
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`)
    db.pragma('journal_mode = WAL')
    db.pragma(`synchronous = ${options.synchronous === 'FULL' ? 'FULL' : 'NORMAL'}`)
    db.pragma('foreign_keys = ON')
    migrate(db)
    const readings = createSqliteReadingStore(db)
    const storage: Storage = {
      readings,
      registry: createSqliteRegistryStore(db),
      rejects: createSqliteRejectLog(db),
      access: createSqliteAccessStore(db),
      breaches: createSqliteBreachStore(db),
      alerts: createSqliteAlertStore(db),
      calibrations: createSqliteCalibrationStore(db),
      measures: createSqliteMeasureStore(db),
      async close() {
        if (!db.open) return
        // Writes still queued for the next group commit are committed, not dropped.
        readings.flush()
        db.close()
      },
    }
    return storage
  } catch (error) {
    db.close()
    throw error
  }
}
