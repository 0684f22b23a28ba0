import type Database from 'better-sqlite3'
import { z } from 'zod'
import { StorageError } from '../errors.ts'
import { type BreachStore, IncidentComment, type IncidentQuery } from '../types.ts'
import { createIncidentWriter, type IncidentRow, incidentFromRow, invalid } from './incident-writer.ts'

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

export function createSqliteBreachStore(db: Database.Database): BreachStore {
  const incidents = createIncidentWriter(db)
  const selectIncident = db.prepare<[string], IncidentRow>('SELECT * FROM incidents WHERE id = ?')
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
      return incidents.save(incident)
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
      return incidents.withdraw(id, at)
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
