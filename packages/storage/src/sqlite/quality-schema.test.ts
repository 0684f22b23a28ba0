import { join } from 'node:path'
import { HOUR_MS } from '@skolluft/core'
import { tempDir } from '@skolluft/testkit'
import Database from 'better-sqlite3'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { QualityCheck } from '../types.ts'
import { MIGRATIONS } from './migrations.ts'
import { openSqliteStorage } from './sqlite-storage.ts'

const T0 = Date.UTC(2026, 0, 12)
const NONE: QualityCheck = { version: 1, contextBeforeMs: HOUR_MS, contextAfterMs: 0, run: () => new Map() }

describe('SQLite quality flags (migration 6)', () => {
  let dir: { path: string; cleanup: () => Promise<void> }
  let dbPath: string

  beforeEach(async () => {
    dir = await tempDir()
    dbPath = join(dir.path, 'skolluft.db')
  })
  afterEach(async () => {
    await dir.cleanup()
  })

  it('upgrades a version 5 database: its stored hours become the backlog, its readings unchecked', async () => {
    const db = new Database(dbPath)
    for (const step of MIGRATIONS.slice(0, 5)) db.exec(step)
    db.pragma('user_version = 5')
    const insert = db.prepare(
      'INSERT INTO readings (device_id, ts, site_id, received_at, pm25) VALUES (?, ?, NULL, ?, ?)',
    )
    const hour = db.prepare(
      `INSERT INTO hourly (device_id, hour_start, site_id, expected, pm1_n, pm25_n, pm25_sum, pm25_min, pm25_max,
         pm10_n, no2_n, temp_n, rh_n) VALUES (?, ?, '', 60, 0, 1, ?, ?, ?, 0, 0, 0, 0)`,
    )
    for (const h of [0, 1]) {
      insert.run('dev-1', T0 + h * HOUR_MS, T0 + h * HOUR_MS, 5 + h)
      hour.run('dev-1', T0 + h * HOUR_MS, 5 + h, 5 + h, 5 + h)
    }
    db.close()

    const storage = openSqliteStorage({ path: dbPath })
    try {
      const end = T0 + 3 * HOUR_MS
      expect(await storage.readings.qualityBacklog(end, 10)).toEqual([
        { deviceId: 'dev-1', hourStart: T0 },
        { deviceId: 'dev-1', hourStart: T0 + HOUR_MS },
      ])
      const stream = async () => {
        const qc: (number | null | undefined)[] = []
        for await (const batch of storage.readings.streamReadings({ metrics: ['pm25'], from: T0, to: end }))
          qc.push(...batch.map((r) => r.qc))
        return qc
      }
      expect(await stream()).toEqual([null, null])
      expect(await storage.readings.checkQuality('dev-1', T0, NONE, end)).toEqual({
        hours: 2,
        checked: 2,
        flagged: 0,
        changed: 0,
      })
      expect(await stream()).toEqual([0, 0])
    } finally {
      await storage.close()
    }
  })

  it('reads the backlog and the unchecked hours through indexes, without sorting', async () => {
    await openSqliteStorage({ path: dbPath }).close()
    const db = new Database(dbPath, { readonly: true })
    try {
      const plan = (sql: string) =>
        db
          .prepare<unknown[], { detail: string }>(`EXPLAIN QUERY PLAN ${sql}`)
          .all()
          .map((r) => r.detail)
          .join('; ')
      const backlog = plan(
        `SELECT DISTINCT hour_start, device_id FROM hourly WHERE qc_dirty = 1 AND hour_start <= 1
           AND (hour_start, device_id) > (0, 'a') ORDER BY hour_start, device_id LIMIT 5`,
      )
      expect(backlog).toMatch(/USING COVERING INDEX hourly_qc_dirty/)
      expect(backlog).not.toMatch(/TEMP B-TREE/)
      const unchecked = plan(
        `SELECT DISTINCT hour_start FROM hourly WHERE device_id = 'a' AND hour_start >= 0 AND hour_start < 9
           AND (qc_dirty = 1 OR qc_version IS NULL)`,
      )
      expect(unchecked).toMatch(/USING PRIMARY KEY \(device_id=\? AND hour_start>\? AND hour_start<\?\)/)
    } finally {
      db.close()
    }
  })
})
