import { randomUUID } from 'node:crypto'
import Database from 'better-sqlite3'
import { z } from 'zod'
import { StorageError, type StorageErrorCode } from '../errors.ts'
import { type BreachStore, IncidentComment, IncidentInput, type IncidentQuery, IncidentRecord } from '../types.ts'

interface IncidentRow {
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

/** The columns `saveIncident` writes; acknowledgement and withdrawal belong to their own methods. */
type SavedRow = Omit<IncidentRow, 'withdrawn_at' | 'acknowledged_at' | 'acknowledged_by'>

interface CommentRow {
  incident_id: string
  at: number
  actor: string
  text: string
}

const Query = z.object({
  siteId: z.string().optional(),
  ruleId: z.string().optional(),
  state: z.enum(['open', 'closed', 'all']).optional(),
  from: z.number().optional(),
  to: z.number().optional(),
  includeWithdrawn: z.boolean().optional(),
  limit: z.number().int(),
})

/** What identifies an incident; an update may not change it (another rule or profile version is another incident). */
const IDENTITY = [
  ['siteId', 'site_id'],
  ['pollutant', 'pollutant'],
  ['ruleId', 'rule_id'],
  ['profileId', 'profile_id'],
  ['profileVersion', 'profile_version'],
] as const

export function createSqliteBreachStore(db: Database.Database): BreachStore {
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
  const acknowledge = db.prepare<[number, string, number, string], never>(
    `UPDATE incidents SET acknowledged_at = ?, acknowledged_by = ?, updated_at = max(updated_at, ?)
     WHERE id = ? AND acknowledged_at IS NULL`,
  )
  const incidentKnown = db.prepare<[string], { id: string }>('SELECT id FROM incidents WHERE id = ?')
  // Matches the WHERE of the partial index incidents_open, so only open incidents are read (covering scan).
  const openCounts = db.prepare<[], { site_id: string; count: number }>(
    `SELECT site_id, count(*) AS count FROM incidents WHERE end_ts IS NULL AND withdrawn_at IS NULL
     GROUP BY site_id`,
  )
  const insertComment = db.prepare<CommentRow, never>(
    'INSERT INTO incident_comments (incident_id, at, actor, text) VALUES (@incident_id, @at, @actor, @text)',
  )
  const selectComments = db.prepare<[string], CommentRow>(
    'SELECT incident_id, at, actor, text FROM incident_comments WHERE incident_id = ? ORDER BY at, id',
  )
  /**
   * listIncidents statements by their WHERE clause (at most 2^6 shapes). The tie-break is rowid (creation order),
   * which both start indexes carry, so LIMIT stops early; `id` would need a sort of every incident with the same
   * start (measured: 150 ms vs 1.4 ms for the newest 100 open of 15 000 open incidents sharing one start).
   */
  const listStatements = new Map<string, Database.Statement<unknown[], IncidentRow>>()

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

  function listStatement(where: readonly string[]): Database.Statement<unknown[], IncidentRow> {
    const key = where.join(' AND ')
    let statement = listStatements.get(key)
    if (statement === undefined) {
      statement = db.prepare<unknown[], IncidentRow>(
        `SELECT * FROM incidents ${key === '' ? '' : `WHERE ${key}`} ORDER BY start_ts DESC, rowid DESC LIMIT ?`,
      )
      listStatements.set(key, statement)
    }
    return statement
  }

  return {
    async saveIncident(incident) {
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

    async getIncident(id) {
      const row = selectIncident.get(id)
      return row === undefined ? undefined : incidentFromRow(row)
    },

    async listIncidents(query: IncidentQuery) {
      const parsed = Query.safeParse(query)
      if (!parsed.success) throw invalid('INVALID_QUERY', 'incident query', parsed.error)
      const q = parsed.data
      if (q.limit <= 0) return []
      const where: string[] = []
      const params: unknown[] = []
      if (q.siteId !== undefined) {
        where.push('site_id = ?')
        params.push(q.siteId)
      }
      if (q.ruleId !== undefined) {
        where.push('rule_id = ?')
        params.push(q.ruleId)
      }
      if (q.state === 'open') where.push('end_ts IS NULL')
      if (q.state === 'closed') where.push('end_ts IS NOT NULL')
      if (q.to !== undefined) {
        where.push('start_ts < ?')
        params.push(q.to)
      }
      if (q.from !== undefined) {
        where.push('(end_ts IS NULL OR end_ts > ?)')
        params.push(q.from)
      }
      if (q.includeWithdrawn !== true) where.push('withdrawn_at IS NULL')
      return listStatement(where)
        .all(...params, q.limit)
        .map(incidentFromRow)
    },

    async withdrawIncident(id, at) {
      if (withdraw.run(at, at, id).changes > 0) return true
      return incidentKnown.get(id) !== undefined
    },

    async openCountBySite() {
      return new Map(openCounts.all().map((row) => [row.site_id, row.count]))
    },

    async acknowledge(id, actor, at) {
      if (acknowledge.run(at, actor, at, id).changes > 0) return true
      return incidentKnown.get(id) !== undefined
    },

    async addComment(incidentId, actor, at, text) {
      const parsed = IncidentComment.safeParse({ incidentId, at, actor, text })
      if (!parsed.success) throw invalid('INVALID_COMMENT', `comment on incident ${incidentId}`, parsed.error)
      const comment = parsed.data
      if (incidentKnown.get(incidentId) === undefined) {
        throw new StorageError('UNKNOWN_INCIDENT', `incident ${JSON.stringify(incidentId)} does not exist`)
      }
      insertComment.run({ incident_id: comment.incidentId, at: comment.at, actor: comment.actor, text: comment.text })
      return comment
    },

    async listComments(incidentId) {
      return selectComments.all(incidentId).map((row) => ({
        incidentId: row.incident_id,
        at: row.at,
        actor: row.actor,
        text: row.text,
      }))
    },
  }
}

function invalid(code: StorageErrorCode, what: string, error: z.ZodError): StorageError {
  const issue = error.issues[0]
  const path = issue === undefined || issue.path.length === 0 ? '' : ` (${issue.path.join('.')})`
  return new StorageError(code, `${what} is invalid${path}: ${issue?.message ?? 'invalid'}`, { cause: error })
}

/** Every stored incident is validated on read, escalations included: a hand-edited or corrupt row is an error. */
function incidentFromRow(row: IncidentRow): IncidentRecord {
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

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}
