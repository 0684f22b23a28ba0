import { DEFAULT_MEASURES, type Measure, MeasureCatalogue } from '@skolluft/core'
import type Database from 'better-sqlite3'
import { StorageError } from '../errors.ts'
import { type MeasureStore, NewSiteMeasure, type SiteMeasure, type StoredMeasureCatalogue } from '../types.ts'
import { invalid } from './incident-writer.ts'

/**
 * Migration 8: the catalogue of measures and the measures taken at sites (issue 7; core measures.ts,
 * measure-follow-up.ts).
 *
 * - `measure_catalogue` has at most one row (id 1): the edited catalogue as JSON, validated with core
 *   MeasureCatalogue on write and on read, and its revision. No row = never edited (revision 0, DEFAULT_MEASURES),
 *   so a change of the default catalogue in a new release reaches every deployment that never edited it.
 * - `site_measures`: one row per measure taken; the public id is `sm-<id>`, AUTOINCREMENT so an id is never given
 *   twice. `measure_id` names a catalogue measure or is NULL; it is not a foreign key because the catalogue is one
 *   JSON document that may later drop the measure (the record keeps its title). Removed with its site? Sites are
 *   never deleted; the foreign key keeps a measure from naming an unknown site.
 */
export const MEASURES_MIGRATION = `
  CREATE TABLE measure_catalogue (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    revision INTEGER NOT NULL,
    measures TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    updated_by TEXT NOT NULL
  );

  CREATE TABLE site_measures (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    site_id TEXT NOT NULL REFERENCES sites (id),
    measure_id TEXT,
    title TEXT NOT NULL,
    taken_on TEXT NOT NULL,
    note TEXT,
    recorded_by TEXT NOT NULL,
    recorded_at INTEGER NOT NULL
  );
  CREATE INDEX site_measures_by_site ON site_measures (site_id, taken_on, id);
`

interface CatalogueRow {
  revision: number
  measures: string
  updated_at: number
  updated_by: string
}

interface SiteMeasureRow {
  id: number
  site_id: string
  measure_id: string | null
  title: string
  taken_on: string
  note: string | null
  recorded_by: string
  recorded_at: number
}

const ID_PREFIX = 'sm-'

function numericId(id: string): number | undefined {
  if (!id.startsWith(ID_PREFIX)) return undefined
  const n = Number(id.slice(ID_PREFIX.length))
  return Number.isSafeInteger(n) && n > 0 && `${ID_PREFIX}${n}` === id ? n : undefined
}

const DEFAULT_CATALOGUE: StoredMeasureCatalogue = {
  revision: 0,
  measures: DEFAULT_MEASURES,
  updatedAt: null,
  updatedBy: null,
}

function catalogueFrom(row: CatalogueRow | undefined): StoredMeasureCatalogue {
  if (row === undefined) return DEFAULT_CATALOGUE
  let json: unknown
  try {
    json = JSON.parse(row.measures)
  } catch (error) {
    throw new StorageError('CORRUPT_ROW', 'the stored catalogue of measures is not JSON', { cause: error })
  }
  const parsed = MeasureCatalogue.safeParse(json)
  if (!parsed.success)
    throw invalid('CORRUPT_ROW', `stored catalogue of measures (revision ${row.revision})`, parsed.error)
  return { revision: row.revision, measures: parsed.data, updatedAt: row.updated_at, updatedBy: row.updated_by }
}

function siteMeasureFrom(row: SiteMeasureRow): SiteMeasure {
  const parsed = NewSiteMeasure.safeParse({
    siteId: row.site_id,
    measureId: row.measure_id,
    title: row.title,
    takenOn: row.taken_on,
    note: row.note,
    recordedBy: row.recorded_by,
    recordedAt: row.recorded_at,
  })
  if (!parsed.success) throw invalid('CORRUPT_ROW', `stored measure ${ID_PREFIX}${row.id}`, parsed.error)
  return { id: `${ID_PREFIX}${row.id}`, ...parsed.data }
}

export function createSqliteMeasureStore(db: Database.Database): MeasureStore {
  const selectCatalogue = db.prepare<[], CatalogueRow>(
    'SELECT revision, measures, updated_at, updated_by FROM measure_catalogue WHERE id = 1',
  )
  const upsertCatalogue = db.prepare<CatalogueRow, never>(
    `INSERT INTO measure_catalogue (id, revision, measures, updated_at, updated_by)
     VALUES (1, @revision, @measures, @updated_at, @updated_by)
     ON CONFLICT (id) DO UPDATE SET revision = excluded.revision, measures = excluded.measures,
       updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
  )
  const siteKnown = db.prepare<[string], { id: string }>('SELECT id FROM sites WHERE id = ?')
  const insert = db.prepare<Omit<SiteMeasureRow, 'id'>, never>(
    `INSERT INTO site_measures (site_id, measure_id, title, taken_on, note, recorded_by, recorded_at)
     VALUES (@site_id, @measure_id, @title, @taken_on, @note, @recorded_by, @recorded_at)`,
  )
  const selectOne = db.prepare<[number], SiteMeasureRow>('SELECT * FROM site_measures WHERE id = ?')
  const selectSite = db.prepare<[string], SiteMeasureRow>(
    'SELECT * FROM site_measures WHERE site_id = ? ORDER BY taken_on, id',
  )
  const deleteOne = db.prepare<[number], never>('DELETE FROM site_measures WHERE id = ?')

  const save = db.transaction(
    (json: string, change: { expectedRevision: number; by: string; at: number }): StoredMeasureCatalogue => {
      const current = selectCatalogue.get()?.revision ?? 0
      if (current !== change.expectedRevision) {
        throw new StorageError(
          'CONFLICT',
          `the catalogue of measures is at revision ${current}, not ${change.expectedRevision}: someone saved it in between; load it again`,
        )
      }
      upsertCatalogue.run({ revision: current + 1, measures: json, updated_at: change.at, updated_by: change.by })
      return catalogueFrom(selectCatalogue.get())
    },
  )

  return {
    async catalogue() {
      return catalogueFrom(selectCatalogue.get())
    },

    async saveCatalogue(measures: readonly Measure[], change) {
      const parsed = MeasureCatalogue.safeParse(measures)
      if (!parsed.success) throw invalid('INVALID_MEASURE', 'catalogue of measures', parsed.error)
      const { expectedRevision, by, at } = change
      if (!Number.isSafeInteger(expectedRevision) || expectedRevision < 0) {
        throw new StorageError(
          'INVALID_MEASURE',
          `expected revision must be a whole number ≥ 0, got ${expectedRevision}`,
        )
      }
      if (!Number.isSafeInteger(at) || at < 0 || by.length === 0) {
        throw new StorageError('INVALID_MEASURE', 'a catalogue change needs who (by) and when (at, epoch ms)')
      }
      return save.immediate(JSON.stringify(parsed.data), { expectedRevision, by, at })
    },

    async add(measure) {
      const parsed = NewSiteMeasure.safeParse(measure)
      if (!parsed.success) throw invalid('INVALID_MEASURE', 'measure taken', parsed.error)
      const m = parsed.data
      if (siteKnown.get(m.siteId) === undefined) {
        throw new StorageError('UNKNOWN_SITE', `site ${JSON.stringify(m.siteId)} does not exist`)
      }
      const result = insert.run({
        site_id: m.siteId,
        measure_id: m.measureId,
        title: m.title,
        taken_on: m.takenOn,
        note: m.note,
        recorded_by: m.recordedBy,
        recorded_at: m.recordedAt,
      })
      const row = selectOne.get(Number(result.lastInsertRowid))
      if (row === undefined) throw new StorageError('CORRUPT_ROW', 'a measure taken vanished after insert')
      return siteMeasureFrom(row)
    },

    async list(siteId) {
      return selectSite.all(siteId).map(siteMeasureFrom)
    },

    async get(id) {
      const n = numericId(id)
      const row = n === undefined ? undefined : selectOne.get(n)
      return row === undefined ? undefined : siteMeasureFrom(row)
    },

    async delete(id) {
      const n = numericId(id)
      return n === undefined ? false : deleteOne.run(n).changes > 0
    },
  }
}
