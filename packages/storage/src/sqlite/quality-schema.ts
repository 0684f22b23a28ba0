/**
 * Migration 6: per-reading quality flags (issue 5, plan section A), stored beside the values and never changing them.
 *
 * - `readings.qc`: the flag bitmask of core reading-qc.ts (8 bits per metric, < 2^53); NULL or 0 = no flag. Whether
 *   a reading was checked at all is a property of its device-hour, not of the reading: see `hourly` below.
 * - `hourly.qc_dirty`: 1 until the device-hour's readings are checked, and again whenever a reading lands in it
 *   (ingest's upsert sets it in the row write it does anyway, so the hot path pays no extra statement). Existing
 *   rows start dirty: the quality worker checks the stored history after the upgrade.
 * - `hourly.qc_version`: the READING_QC_VERSION the hour was last checked with; NULL = never checked.
 * - `hourly_qc_dirty`: a partial index holding only dirty rows, so the worker's backlog query costs the backlog,
 *   not the history. On a WITHOUT ROWID table an index entry carries the primary key, so the index orders by
 *   (hour_start, device_id, site_id): the backlog's ORDER BY and keyset need no sort.
 * - `meta` key `qc_version` (absent = 0): the highest version whose recheck of the history was requested (see
 *   `ReadingStore.requireQualityVersion`), so a new rule version re-dirties the history once, not at every start.
 */
export const QUALITY_MIGRATION = `
  ALTER TABLE readings ADD COLUMN qc INTEGER;
  ALTER TABLE hourly ADD COLUMN qc_dirty INTEGER NOT NULL DEFAULT 1;
  ALTER TABLE hourly ADD COLUMN qc_version INTEGER;
  CREATE INDEX hourly_qc_dirty ON hourly (hour_start) WHERE qc_dirty = 1;
`
