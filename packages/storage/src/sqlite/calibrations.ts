import { Calibration, METRICS, NewCalibration } from '@skolluft/core'
import type Database from 'better-sqlite3'
import { z } from 'zod'
import { StorageError } from '../errors.ts'
import type { CalibrationQuery, CalibrationStore } from '../types.ts'
import { invalid } from './incident-writer.ts'

/**
 * Migration 7: per-device linear calibrations (issue 5, plan section B; core corrections.ts).
 *
 * - One row per calibration version; the public id is `cal-<id>`. AUTOINCREMENT so an id is never given twice,
 *   even if a row were removed by hand: exports name calibrations by id and version.
 * - UNIQUE (device_id, metric, version): versions per (device, metric) count 1, 2, … (`add` takes max + 1 inside
 *   an IMMEDIATE transaction, so two processes adding at once get different versions, never a gap or a repeat).
 * - `basis` is JSON (kind manual|colocation, the humidity correction it is applied after, fit statistics); only
 *   ever read with its row, validated on read.
 * - Rows never change except `valid_to`, set once when the calibration is retired.
 */
export const CALIBRATIONS_MIGRATION = `
  CREATE TABLE calibrations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id TEXT NOT NULL REFERENCES devices (id),
    metric TEXT NOT NULL,
    version INTEGER NOT NULL,
    slope REAL NOT NULL,
    intercept REAL NOT NULL,
    valid_from INTEGER NOT NULL,
    valid_to INTEGER,
    basis TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    UNIQUE (device_id, metric, version)
  );
`

interface CalibrationRow {
  id: number
  device_id: string
  metric: string
  version: number
  slope: number
  intercept: number
  valid_from: number
  valid_to: number | null
  basis: string
  created_at: number
  created_by: string
}

const ID_PREFIX = 'cal-'

const Query = z.strictObject({
  deviceId: z.string().optional(),
  metric: z.enum(METRICS).optional(),
})

function numericId(id: string): number | undefined {
  if (!id.startsWith(ID_PREFIX)) return undefined
  const n = Number(id.slice(ID_PREFIX.length))
  return Number.isSafeInteger(n) && n > 0 && `${ID_PREFIX}${n}` === id ? n : undefined
}

function fromRow(row: CalibrationRow): Calibration {
  let basis: unknown
  try {
    basis = JSON.parse(row.basis)
  } catch (error) {
    throw new StorageError('CORRUPT_ROW', `calibration ${row.id}: basis is not JSON`, { cause: error })
  }
  const parsed = Calibration.safeParse({
    id: `${ID_PREFIX}${row.id}`,
    deviceId: row.device_id,
    metric: row.metric,
    version: row.version,
    slope: row.slope,
    intercept: row.intercept,
    validFrom: row.valid_from,
    validTo: row.valid_to,
    basis,
    createdAt: row.created_at,
    createdBy: row.created_by,
  })
  if (!parsed.success) throw invalid('CORRUPT_ROW', `stored calibration ${row.id}`, parsed.error)
  return parsed.data
}

export function createSqliteCalibrationStore(db: Database.Database): CalibrationStore {
  const deviceKnown = db.prepare<[string], { id: string }>('SELECT id FROM devices WHERE id = ?')
  const nextVersion = db.prepare<[string, string], { next: number }>(
    'SELECT coalesce(max(version), 0) + 1 AS next FROM calibrations WHERE device_id = ? AND metric = ?',
  )
  const insert = db.prepare<Omit<CalibrationRow, 'id' | 'valid_to'>, never>(
    `INSERT INTO calibrations (device_id, metric, version, slope, intercept, valid_from, valid_to, basis, created_at,
       created_by)
     VALUES (@device_id, @metric, @version, @slope, @intercept, @valid_from, NULL, @basis, @created_at, @created_by)`,
  )
  const selectOne = db.prepare<[number], CalibrationRow>('SELECT * FROM calibrations WHERE id = ?')
  const selectAll = db.prepare<[], CalibrationRow>('SELECT * FROM calibrations ORDER BY device_id, metric, version')
  const selectDevice = db.prepare<[string], CalibrationRow>(
    'SELECT * FROM calibrations WHERE device_id = ? ORDER BY metric, version',
  )
  const selectDeviceMetric = db.prepare<[string, string], CalibrationRow>(
    'SELECT * FROM calibrations WHERE device_id = ? AND metric = ? ORDER BY version',
  )
  const selectMetric = db.prepare<[string], CalibrationRow>(
    'SELECT * FROM calibrations WHERE metric = ? ORDER BY device_id, version',
  )
  const setValidTo = db.prepare<[number, number], never>(
    'UPDATE calibrations SET valid_to = ? WHERE id = ? AND valid_to IS NULL',
  )

  const add = db.transaction((c: NewCalibration): number => {
    if (deviceKnown.get(c.deviceId) === undefined) {
      throw new StorageError('UNKNOWN_DEVICE', `device ${JSON.stringify(c.deviceId)} does not exist`)
    }
    const version = nextVersion.get(c.deviceId, c.metric)?.next ?? 1
    const result = insert.run({
      device_id: c.deviceId,
      metric: c.metric,
      version,
      slope: c.slope,
      intercept: c.intercept,
      valid_from: c.validFrom,
      basis: JSON.stringify(c.basis),
      created_at: c.createdAt,
      created_by: c.createdBy,
    })
    return Number(result.lastInsertRowid)
  })

  const retire = db.transaction((id: number, at: number): Calibration | undefined => {
    const row = selectOne.get(id)
    if (row === undefined) return undefined
    const current = fromRow(row)
    if (current.validTo !== null) {
      throw new StorageError(
        'CONFLICT',
        `calibration ${current.id} was retired already (valid to ${new Date(current.validTo).toISOString()})`,
      )
    }
    if (at < current.validFrom) {
      throw new StorageError(
        'INVALID_CALIBRATION',
        `calibration ${current.id} starts at ${new Date(current.validFrom).toISOString()}; it cannot end before that`,
      )
    }
    setValidTo.run(at, id)
    return { ...current, validTo: at }
  })

  return {
    async add(calibration) {
      const parsed = NewCalibration.safeParse(calibration)
      if (!parsed.success) throw invalid('INVALID_CALIBRATION', 'calibration', parsed.error)
      const id = add.immediate(parsed.data)
      const row = selectOne.get(id)
      if (row === undefined) throw new StorageError('CORRUPT_ROW', `calibration ${id} vanished after insert`)
      return fromRow(row)
    },

    async list(query: CalibrationQuery = {}) {
      const parsed = Query.safeParse(query)
      if (!parsed.success) throw invalid('INVALID_QUERY', 'calibration query', parsed.error)
      const { deviceId, metric } = parsed.data
      let rows: CalibrationRow[]
      if (deviceId !== undefined && metric !== undefined) rows = selectDeviceMetric.all(deviceId, metric)
      else if (deviceId !== undefined) rows = selectDevice.all(deviceId)
      else if (metric !== undefined) rows = selectMetric.all(metric)
      else rows = selectAll.all()
      return rows.map(fromRow)
    },

    async get(id) {
      const n = numericId(id)
      const row = n === undefined ? undefined : selectOne.get(n)
      return row === undefined ? undefined : fromRow(row)
    },

    async retire(id, at) {
      if (!Number.isSafeInteger(at) || at < 0) {
        throw new StorageError('INVALID_CALIBRATION', `retirement time must be epoch ms, got ${String(at)}`)
      }
      const n = numericId(id)
      return n === undefined ? undefined : retire.immediate(n, at)
    },
  }
}
