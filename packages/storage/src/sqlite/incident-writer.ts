import { randomUUID } from 'node:crypto'
import Database from 'better-sqlite3'
import type { z } from 'zod'
import { StorageError, type StorageErrorCode } from '../errors.ts'
import { IncidentInput, IncidentRecord } from '../types.ts'

/**
 * Saving breach incidents, shared by `BreachStore.saveIncident` and `AlertStore.commitEvaluation` so both enforce
 * the same rules (validation, known site, fixed identity, one open incident per site and rule).
 */

export interface IncidentRow {
  id: string
  site_id: string
  pollutant: string
  rule_id: string
  profile_id: string
  profile_version: string
  severity: string
  threshold: number
  start_ts: number
  end_ts: number | null
  opened_at: number
  closed_at: number | null
  peak: number
  peak_at: number
  escalations: string
  retrospective: number
  withdrawn_at: number | null
  acknowledged_at: number | null
  acknowledged_by: string | null
  updated_at: number
}

/** The columns a save writes; acknowledgement and withdrawal belong to their own methods. */
type SavedRow = Omit<IncidentRow, 'withdrawn_at' | 'acknowledged_at' | 'acknowledged_by'>

/** What identifies an incident; an update may not change it (another rule or profile version is another incident). */
const IDENTITY = [
  ['siteId', 'site_id'],
  ['pollutant', 'pollutant'],
  ['ruleId', 'rule_id'],
  ['profileId', 'profile_id'],
  ['profileVersion', 'profile_version'],
] as const

export interface IncidentWriter {
  /**
   * Validates, then inserts (or updates by id) and returns the stored record. Runs in its own IMMEDIATE transaction,
   * or as a savepoint when the caller is inside a transaction already (better-sqlite3 nests them), so a refusal
   * throws without leaving anything behind. Errors as `BreachStore.saveIncident`.
   */
  save(incident: IncidentInput): IncidentRecord
  /** Marks the incident withdrawn (a second call keeps the first time). False if unknown. */
  withdraw(id: string, at: number): boolean
}

export function createIncidentWriter(db: Database.Database): IncidentWriter {
  const siteExists = db.prepare<[string], { id: string }>('SELECT id FROM sites WHERE id = ?')
  const selectIncident = db.prepare<[string], IncidentRow>('SELECT * FROM incidents WHERE id = ?')
  const selectOpen = db.prepare<[string, string], { id: string }>(
    'SELECT id FROM incidents WHERE site_id = ? AND rule_id = ? AND end_ts IS NULL AND withdrawn_at IS NULL',
  )
  const insertIncident = db.prepare<SavedRow, never>(
    `INSERT INTO incidents (id, site_id, pollutant, rule_id, profile_id, profile_version, severity, threshold,
       start_ts, end_ts, opened_at, closed_at, peak, peak_at, escalations, retrospective, updated_at)
     VALUES (@id, @site_id, @pollutant, @rule_id, @profile_id, @profile_version, @severity, @threshold,
       @start_ts, @end_ts, @opened_at, @closed_at, @peak, @peak_at, @escalations, @retrospective, @updated_at)`,
  )
  const updateIncident = db.prepare<SavedRow, never>(
    `UPDATE incidents SET severity = @severity, threshold = @threshold, start_ts = @start_ts, end_ts = @end_ts,
       opened_at = @opened_at, closed_at = @closed_at, peak = @peak, peak_at = @peak_at,
       escalations = @escalations, retrospective = @retrospective, updated_at = @updated_at
     WHERE id = @id`,
  )
  const withdraw = db.prepare<[number, number, string], never>(
    'UPDATE incidents SET withdrawn_at = ?, updated_at = max(updated_at, ?) WHERE id = ? AND withdrawn_at IS NULL',
  )
  const incidentKnown = db.prepare<[string], { id: string }>('SELECT id FROM incidents WHERE id = ?')

  const write = db.transaction((row: SavedRow): IncidentRow => {
    const current = selectIncident.get(row.id)
    if (current === undefined) {
      if (siteExists.get(row.site_id) === undefined) {
        throw new StorageError('UNKNOWN_SITE', `site ${JSON.stringify(row.site_id)} does not exist`)
      }
    } else {
      for (const [field, column] of IDENTITY) {
        if (current[column] !== row[column]) {
          throw new StorageError(
            'CONFLICT',
            `incident ${row.id} has ${field} ${JSON.stringify(current[column])}; an update cannot change it to ${JSON.stringify(row[column])}`,
          )
        }
      }
    }
    try {
      if (current === undefined) insertIncident.run(row)
      else updateIncident.run(row)
    } catch (error) {
      // The only UNIQUE constraint besides the primary key (which the branch above respects) is incidents_open.
      if (error instanceof Database.SqliteError && error.code === 'SQLITE_CONSTRAINT_UNIQUE') {
        const open = selectOpen.get(row.site_id, row.rule_id)
        throw new StorageError(
          'CONFLICT',
          `site ${row.site_id} already has an open incident${open === undefined ? '' : ` (${open.id})`} for rule ${row.rule_id}; close or withdraw it first`,
          { cause: error },
        )
      }
      throw error
    }
    const stored = selectIncident.get(row.id)
    if (stored === undefined) throw new StorageError('UNKNOWN_INCIDENT', `incident ${row.id} vanished while saving`)
    return stored
  })

  return {
    save(incident) {
      const parsed = IncidentInput.safeParse(incident)
      if (!parsed.success) throw invalid('INVALID_INCIDENT', `incident ${incident.id ?? '(new)'}`, parsed.error)
      const r = parsed.data
      return incidentFromRow(
        write.immediate({
          id: r.id ?? `inc_${randomUUID()}`,
          site_id: r.siteId,
          pollutant: r.pollutant,
          rule_id: r.ruleId,
          profile_id: r.profileId,
          profile_version: r.profileVersion,
          severity: r.severity,
          threshold: r.threshold,
          start_ts: r.start,
          end_ts: r.end,
          opened_at: r.openedAt,
          closed_at: r.closedAt,
          peak: r.peak,
          peak_at: r.peakAt,
          escalations: JSON.stringify(r.escalations),
          retrospective: r.retrospective ? 1 : 0,
          updated_at: r.updatedAt,
        }),
      )
    },

    withdraw(id, at) {
      if (withdraw.run(at, at, id).changes > 0) return true
      return incidentKnown.get(id) !== undefined
    },
  }
}

/** A StorageError naming the first zod issue, with its path. */
export function invalid(code: StorageErrorCode, what: string, error: z.ZodError): StorageError {
  const issue = error.issues[0]
  const path = issue === undefined || issue.path.length === 0 ? '' : ` (${issue.path.join('.')})`
  return new StorageError(code, `${what} is invalid${path}: ${issue?.message ?? 'invalid'}`, { cause: error })
}

/** Every stored incident is validated on read, escalations included: a hand-edited or corrupt row is an error. */
export function incidentFromRow(row: IncidentRow): IncidentRecord {
  const record = IncidentRecord.safeParse({
    id: row.id,
    siteId: row.site_id,
    pollutant: row.pollutant,
    ruleId: row.rule_id,
    profileId: row.profile_id,
    profileVersion: row.profile_version,
    severity: row.severity,
    threshold: row.threshold,
    start: row.start_ts,
    end: row.end_ts,
    openedAt: row.opened_at,
    closedAt: row.closed_at,
    peak: row.peak,
    peakAt: row.peak_at,
    escalations: parseJson(row.escalations),
    retrospective: row.retrospective !== 0,
    withdrawnAt: row.withdrawn_at,
    acknowledgedAt: row.acknowledged_at,
    acknowledgedBy: row.acknowledged_by,
    updatedAt: row.updated_at,
  })
  if (!record.success) throw invalid('CORRUPT_ROW', `stored incident ${row.id}`, record.error)
  return record.data
}

/** JSON text to a value for validation; unparsable text gives undefined, which the caller's schema refuses. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}
