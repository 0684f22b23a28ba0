import { REJECT_CODES, type RejectCode } from '@skolluft/core'
import type Database from 'better-sqlite3'
import { StorageError } from '../errors.ts'
import { REJECT_LOG_CAPACITY, type RejectCount, type RejectLog, type RejectRecord } from '../types.ts'

/** Stand-in for an unknown sender in reject_counts, whose key cannot be NULL; device ids never match it. */
const NO_DEVICE = ''

interface RejectRow {
  at: number
  device_id: string | null
  topic: string
  code: string
  message: string
  batch_index: number | null
  message_key: string | null
}

interface CountRow {
  device_id: string
  code: string
  count: number
  last_at: number
}

export function createSqliteRejectLog(db: Database.Database, capacity = REJECT_LOG_CAPACITY): RejectLog {
  const insert = db.prepare<[number, string | null, string, string, string, number | null, string | null], never>(
    'INSERT INTO rejects (at, device_id, topic, code, message, batch_index, message_key) VALUES (?, ?, ?, ?, ?, ?, ?)',
  )
  const seen = db.prepare<[string], { one: number }>('SELECT 1 AS one FROM rejects WHERE message_key = ? LIMIT 1')
  const bump = db.prepare<[string, string, number], never>(
    `INSERT INTO reject_counts (device_id, code, count, last_at) VALUES (?, ?, 1, ?)
     ON CONFLICT (device_id, code) DO UPDATE SET count = count + 1, last_at = max(last_at, excluded.last_at)`,
  )
  // Row ids only grow (INTEGER PRIMARY KEY takes max + 1 and the newest rows are never deleted), so the
  // newest `capacity` rows are exactly those with id > max - capacity: a range delete on the primary key.
  const prune = db.prepare<[number], never>('DELETE FROM rejects WHERE id <= (SELECT max(id) FROM rejects) - ?')
  const listAll = db.prepare<[number], RejectRow>('SELECT * FROM rejects ORDER BY id DESC LIMIT ?')
  const listDevice = db.prepare<[string, number], RejectRow>(
    'SELECT * FROM rejects WHERE device_id = ? ORDER BY id DESC LIMIT ?',
  )
  const listCounts = db.prepare<[], CountRow>('SELECT * FROM reject_counts ORDER BY device_id, code')

  const write = db.transaction((rejects: readonly RejectRecord[], redelivery: boolean) => {
    // Decided before inserting: the rejections of one message share its key.
    const alreadyLogged = new Set<string>()
    if (redelivery) {
      for (const r of rejects) {
        if (r.messageKey != null && seen.get(r.messageKey) !== undefined) alreadyLogged.add(r.messageKey)
      }
    }
    for (const r of rejects) {
      const key = r.messageKey ?? null
      if (key !== null && alreadyLogged.has(key)) continue
      insert.run(r.at, r.deviceId, r.topic, r.code, r.message, r.index, key)
      bump.run(r.deviceId ?? NO_DEVICE, r.code, r.at)
    }
    prune.run(capacity)
  })

  return {
    async record(rejects, options) {
      if (rejects.length === 0) return
      write.immediate(rejects, options?.redelivery === true)
    },

    async list({ limit, deviceId }) {
      if (limit <= 0) return []
      const rows = deviceId === undefined ? listAll.all(limit) : listDevice.all(deviceId, limit)
      return rows.map((row) => ({
        at: row.at,
        deviceId: row.device_id,
        topic: row.topic,
        code: rejectCode(row.code),
        message: row.message,
        index: row.batch_index,
        messageKey: row.message_key,
      }))
    },

    async counts(): Promise<RejectCount[]> {
      return listCounts.all().map((row) => ({
        deviceId: row.device_id === NO_DEVICE ? null : row.device_id,
        code: rejectCode(row.code),
        count: row.count,
        lastAt: row.last_at,
      }))
    },
  }
}

function rejectCode(value: string): RejectCode {
  const code = REJECT_CODES.find((c) => c === value)
  if (code === undefined) throw new StorageError('CORRUPT_ROW', `unknown reject code in the database: ${value}`)
  return code
}
