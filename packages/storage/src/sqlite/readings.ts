import { setImmediate as nextTurn } from 'node:timers/promises'
import {
  type AggregatePoint,
  createHourIsoFormatter,
  dailyPoints,
  type ExportHourSums,
  type ExportReading,
  HOUR_MS,
  HOURLY_MIN_COVERAGE,
  type HourBucket,
  hourPoint,
  hourStart,
  METRICS,
  type Metric,
  type MetricValues,
  type QcSample,
  regulatoryDayStart,
} from '@skolluft/core'
import type Database from 'better-sqlite3'
import { StorageError } from '../errors.ts'
import { comparePair, exportMetrics } from '../export-order.ts'
import {
  EXPORT_BATCH_ROWS,
  type ExportQuery,
  type LatestReading,
  type QualityBacklogEntry,
  type QualityCheck,
  type QualityCheckResult,
  type RawPoint,
  type ReadingStore,
  type SeriesQuery,
  type SiteHour,
  type StoredReading,
  type WriteResult,
} from '../types.ts'

/** Stand-in for "no site" in key columns that cannot be NULL; ids never match it (ID_PATTERN needs 1+ chars). */
export const NO_SITE = ''

/** Metric values of one reading in METRICS order, NULL when absent: the tail of every hot-path statement. */
type MetricArgs = (number | null)[]

/** An hour of one metric as an array (statement in raw mode): a year of them fetches ~30 % faster than objects. */
type BucketTuple = [hourStart: number, n: number, sum: number, min: number, max: number, expected: number]

/** A site-hour as an array (statement in raw mode): 240 000 of them build noticeably faster than objects. */
type SiteBucketTuple = [siteId: string, hourStart: number, n: number, sum: number, expected: number]

interface RawRow {
  ts: number
  value: number
  device_id: string
}

type LatestRow = {
  device_id: string
  ts: number
  site_id: string | null
  received_at: number
} & Record<Metric, number | null> &
  Record<`${Metric}_ts`, number | null>

interface SiteLatestRow extends LatestRow {
  current_site: string
}

interface CountRow {
  count: number
}

type KeyRange = [key: string, from: number, to: number, limit: number]
type SiteRawRange = [
  siteId: string,
  fromHour: number,
  to: number,
  siteId: string,
  from: number,
  to: number,
  limit: number,
]
type SiteDeviceRange = [siteId: string, deviceId: string, from: number, to: number, limit: number]

interface QueryStatements<R, SiteParams extends unknown[] = KeyRange> {
  readonly site: Database.Statement<SiteParams, R>
  readonly device: Database.Statement<KeyRange, R>
  readonly siteDevice: Database.Statement<SiteDeviceRange, R>
}

interface PendingWrite {
  readonly readings: readonly StoredReading[]
  readonly resolve: (result: WriteResult) => void
  readonly reject: (error: unknown) => void
}

/**
 * FROM/WHERE of the fleet-wide range scans (every device or site over [from, to) hours): each device's
 * hours are one primary-key range of `hourly`, so the cost follows devices × hours in the range, not the
 * length of the history. `latest` lists every device that has hourly rows: both are written in the same
 * transaction for every stored reading. Measured (10 000 devices, 24 of 72 stored hours): the same as a
 * full scan of `hourly` and 10× faster than via an index on hour_start (a key lookup per row); a full scan
 * grows with the history. CROSS JOIN keeps SQLite from reordering the loops.
 */
const FLEET_SCAN = `FROM latest l CROSS JOIN hourly h
     ON h.device_id = l.device_id AND h.hour_start >= ? AND h.hour_start < ?
     WHERE true`

export interface SqliteReadingStore extends ReadingStore {
  /** Commits queued writes now (used before closing). */
  flush(): void
}

export function createSqliteReadingStore(db: Database.Database): SqliteReadingStore {
  const cols = (suffix: string) => METRICS.map((m) => `${m}${suffix}`).join(', ')

  // Hot path: prepared once here; three statements per reading with positional parameters (binding by
  // name costs a property lookup per parameter). The upserts read their parameters once through a
  // one-row subquery, so each metric value is bound once and used for n, sum, min and max.
  const params = (names: readonly string[]) => `(SELECT ${names.map((n) => `? AS ${n}`).join(', ')}) WHERE true`
  const insertReading = db.prepare<[string, number, string | null, number | null, number, ...MetricArgs], never>(
    `INSERT OR IGNORE INTO readings (device_id, ts, site_id, seq, received_at, ${cols('')})
     VALUES (?, ?, ?, ?, ?, ${METRICS.map(() => '?').join(', ')})`,
  )
  // Late data just adds. `min(a, NULL)` is NULL in SQLite, hence the coalesce for metrics absent so far.
  // expected keeps the larger value if the device's interval changed within the hour: coverage is then
  // under- rather than over-stated. ("WHERE true" resolves the parsing ambiguity of INSERT ... SELECT ... ON.)
  const upsertHour = db.prepare<[string, number, string, number, ...MetricArgs], never>(
    `INSERT INTO hourly (device_id, hour_start, site_id, expected,
       ${METRICS.map((m) => `${m}_n, ${m}_sum, ${m}_min, ${m}_max`).join(', ')})
     SELECT p_device, p_hour, p_site, p_expected, ${METRICS.map((m) => `p_${m} IS NOT NULL, p_${m}, p_${m}, p_${m}`).join(', ')}
     FROM ${params(['p_device', 'p_hour', 'p_site', 'p_expected', ...METRICS.map((m) => `p_${m}`)])}
     ON CONFLICT (device_id, hour_start, site_id) DO UPDATE SET
       expected = max(expected, excluded.expected),
       qc_dirty = 1,
       ${METRICS.map(
         (m) => `${m}_n = ${m}_n + excluded.${m}_n,
       ${m}_sum = coalesce(${m}_sum + excluded.${m}_sum, ${m}_sum, excluded.${m}_sum),
       ${m}_min = coalesce(min(${m}_min, excluded.${m}_min), ${m}_min, excluded.${m}_min),
       ${m}_max = coalesce(max(${m}_max, excluded.${m}_max), ${m}_max, excluded.${m}_max)`,
       ).join(',\n       ')}`,
  )
  // Each metric moves only to a strictly newer value of its own, so late data never moves it backwards.
  // (All right-hand sides in SET see the row as it was before the update.)
  const newer = (m: Metric) => `excluded.${m}_ts IS NOT NULL AND (${m}_ts IS NULL OR excluded.${m}_ts > ${m}_ts)`
  const upsertLatest = db.prepare<[string, number, string | null, number, ...MetricArgs], never>(
    `INSERT INTO latest (device_id, ts, site_id, received_at, ${METRICS.map((m) => `${m}, ${m}_ts`).join(', ')})
     SELECT p_device, p_ts, p_site, p_received,
       ${METRICS.map((m) => `p_${m}, CASE WHEN p_${m} IS NULL THEN NULL ELSE p_ts END`).join(', ')}
     FROM ${params(['p_device', 'p_ts', 'p_site', 'p_received', ...METRICS.map((m) => `p_${m}`)])}
     ON CONFLICT (device_id) DO UPDATE SET
       ts = max(ts, excluded.ts),
       site_id = CASE WHEN excluded.ts > ts THEN excluded.site_id ELSE site_id END,
       received_at = CASE WHEN excluded.ts > ts THEN excluded.received_at ELSE received_at END,
       ${METRICS.map(
         (m) => `${m} = CASE WHEN ${newer(m)} THEN excluded.${m} ELSE ${m} END,
       ${m}_ts = CASE WHEN ${newer(m)} THEN excluded.${m}_ts ELSE ${m}_ts END`,
       ).join(',\n       ')}`,
  )

  /** Writes the readings of several calls in one transaction; returns inserted counts per call. */
  const writeBatch = db.transaction((batch: readonly (readonly StoredReading[])[]): number[] =>
    batch.map((readings) => {
      let inserted = 0
      for (const r of readings) {
        const values = metricArgs(r.values)
        // Only rows actually inserted feed the aggregates: a duplicate must not be counted twice.
        if (insertReading.run(r.deviceId, r.ts, r.siteId, r.seq, r.receivedAt, ...values).changes !== 1) continue
        inserted++
        upsertHour.run(r.deviceId, hourStart(r.ts), r.siteId ?? NO_SITE, r.expectedPerHour, ...values)
        upsertLatest.run(r.deviceId, r.ts, r.siteId, r.receivedAt, ...values)
      }
      return inserted
    }),
  )

  // Query statements, one set per metric: the metric picks columns, which cannot be bound parameters.
  // Column names come from the METRICS constant, never from input.
  const buckets = new Map<Metric, QueryStatements<BucketTuple>>()
  const siteBuckets = new Map<Metric, Database.Statement<[from: number, to: number], SiteBucketTuple>>()
  const raw = new Map<Metric, QueryStatements<RawRow, SiteRawRange>>()
  for (const m of METRICS) {
    const select = `SELECT hour_start, sum(${m}_n) AS n, sum(${m}_sum) AS sum, min(${m}_min) AS min, max(${m}_max) AS max`
    const tail = `AND hour_start >= ? AND hour_start < ? AND ${m}_n > 0 GROUP BY hour_start ORDER BY hour_start LIMIT ?`
    // A site sums the expected samples of every device that measured the metric there; one device's rows
    // for an hour differ only by site (a move within the hour), so a device's expectation is its own.
    buckets.set(m, {
      site: db
        .prepare<KeyRange, BucketTuple>(`${select}, sum(expected) AS expected FROM hourly WHERE site_id = ? ${tail}`)
        .raw(),
      device: db
        .prepare<KeyRange, BucketTuple>(`${select}, max(expected) AS expected FROM hourly WHERE device_id = ? ${tail}`)
        .raw(),
      siteDevice: db
        .prepare<SiteDeviceRange, BucketTuple>(
          `${select}, max(expected) AS expected FROM hourly WHERE site_id = ? AND device_id = ? ${tail}`,
        )
        .raw(),
    })
    // Every site at once (the replay): the same sums as `site` above, grouped by site too. Driven by the
    // devices (see FLEET_SCAN) instead of hourly_by_site, which has no index on the hour alone.
    siteBuckets.set(
      m,
      db
        .prepare<[from: number, to: number], SiteBucketTuple>(
          `SELECT h.site_id, h.hour_start, sum(h.${m}_n), sum(h.${m}_sum), sum(h.expected)
           ${FLEET_SCAN} AND h.${m}_n > 0 AND h.site_id <> '${NO_SITE}'
           GROUP BY h.site_id, h.hour_start ORDER BY h.site_id, h.hour_start`,
        )
        .raw(),
    )
    const rawSelect = `SELECT ts, ${m} AS value, device_id FROM readings`
    const range = `AND ts >= ? AND ts < ? AND ${m} IS NOT NULL ORDER BY ts, device_id LIMIT ?`
    raw.set(m, {
      // readings has no index by site (one fewer page written per commit); the devices that measured at
      // the site in the time range come from hourly's site index, then each device's range from the key.
      site: db.prepare(
        `${rawSelect} WHERE device_id IN (SELECT DISTINCT device_id FROM hourly
           WHERE site_id = ? AND hour_start >= ? AND hour_start < ? AND ${m}_n > 0)
         AND site_id = ? ${range}`,
      ),
      device: db.prepare(`${rawSelect} WHERE device_id = ? ${range}`),
      siteDevice: db.prepare(`${rawSelect} WHERE site_id = ? AND device_id = ? ${range}`),
    })
  }

  // siteHourly: the `site` statement's sums for several metrics in one scan of the site's hours. Each aggregate
  // takes only the rows with a sample of its metric (FILTER, as `site`'s WHERE does), visited in the same index
  // order, so every sum is the same as `site`'s to the last bit. One statement per metric list (from METRICS).
  const siteHourlyStatements = new Map<string, Database.Statement<[string, number, number], number[]>>()
  const siteHourlyStatement = (metrics: readonly Metric[]) => {
    const key = metrics.join(',')
    let statement = siteHourlyStatements.get(key)
    if (statement === undefined) {
      const columns = metrics.map((m) => {
        const only = `FILTER (WHERE ${m}_n > 0)`
        return `sum(${m}_n) ${only}, sum(${m}_sum) ${only}, min(${m}_min) ${only}, max(${m}_max) ${only}, sum(expected) ${only}`
      })
      statement = db
        .prepare<[string, number, number], number[]>(
          `SELECT hour_start, ${columns.join(', ')} FROM hourly WHERE site_id = ? AND hour_start >= ? AND hour_start < ?
           GROUP BY hour_start ORDER BY hour_start`,
        )
        .raw()
      siteHourlyStatements.set(key, statement)
    }
    return statement
  }

  const latestAll = db.prepare<[], LatestRow>('SELECT * FROM latest ORDER BY device_id')
  // A device's latest values count for a site only if it stands there now AND its newest reading was taken
  // there: right after a move, the new site shows nothing measured at the old one.
  const latestAtSites = db.prepare<[], SiteLatestRow>(
    `SELECT l.*, p.site_id AS current_site
     FROM latest l JOIN placements p ON p.device_id = l.device_id AND p.to_ts IS NULL AND p.site_id = l.site_id
     ORDER BY p.site_id`,
  )

  // One reading usually carries several metrics: its device-hour row counts it once per metric, so the
  // largest per-metric n is the number of readings (exact unless a device alternates metrics between
  // messages, where it undercounts). max() with several arguments is SQLite's scalar maximum.
  const sampleCountsInRange = db.prepare<[from: number, to: number], { device_id: string; n: number }>(
    `SELECT l.device_id, sum(max(${METRICS.map((m) => `h.${m}_n`).join(', ')})) AS n
     ${FLEET_SCAN} GROUP BY l.device_id`,
  )

  const countAll = db.prepare<[], CountRow>('SELECT count(*) AS count FROM readings')
  const countDevice = db.prepare<[string], CountRow>('SELECT count(*) AS count FROM readings WHERE device_id = ?')
  const countSite = db.prepare<[string, string], CountRow>(
    `SELECT count(*) AS count FROM readings
     WHERE device_id IN (SELECT DISTINCT device_id FROM hourly WHERE site_id = ?) AND site_id = ?`,
  )
  const countSiteDevice = db.prepare<[string, string], CountRow>(
    'SELECT count(*) AS count FROM readings WHERE device_id = ? AND site_id = ?',
  )

  // Group commit. A commit costs far more than the rows in it (about a dozen syscalls: WAL locks and
  // frames), so calls made while a commit already happened in this event-loop turn share one transaction,
  // committed in setImmediate. The first call of a turn commits at once, so a caller that awaits each
  // write (the ingest acknowledges one MQTT message at a time) pays no extra latency. Every call resolves
  // only after the commit that holds its readings.
  let queue: PendingWrite[] = []
  let turnBusy = false

  function commit(batch: readonly (readonly StoredReading[])[]): number[] {
    // IMMEDIATE takes the write lock up front, so a busy database waits on busy_timeout instead of failing.
    return writeBatch.immediate(batch)
  }

  function flush(): void {
    turnBusy = false
    const pending = queue
    queue = []
    if (pending.length === 0) return
    let counts: number[]
    try {
      counts = commit(pending.map((p) => p.readings))
    } catch (error) {
      if (pending.length === 1 || isLockError(error)) {
        for (const p of pending) p.reject(error)
        return
      }
      // The whole batch rolled back; one call's bad input must not fail the others, so retry each alone.
      for (const p of pending) {
        try {
          settle(p, commit([p.readings])[0] ?? 0)
        } catch (single) {
          p.reject(single)
        }
      }
      return
    }
    pending.forEach((p, i) => {
      settle(p, counts[i] ?? 0)
    })
  }

  function hourBuckets(query: SeriesQuery, from: number, limit: number): HourBucket[] {
    const { siteId, deviceId, metric, to } = query
    const statements = buckets.get(metric)
    if (statements === undefined) throw new StorageError('INVALID_QUERY', `unknown metric ${String(metric)}`)
    let rows: BucketTuple[]
    if (siteId !== undefined && deviceId !== undefined)
      rows = statements.siteDevice.all(siteId, deviceId, from, to, limit)
    else if (siteId !== undefined) rows = statements.site.all(siteId, from, to, limit)
    else if (deviceId !== undefined) rows = statements.device.all(deviceId, from, to, limit)
    else throw new StorageError('INVALID_QUERY', 'a series query needs a siteId or a deviceId')
    return rows.map(([start, n, sum, min, max, expected]) => ({ start, n, sum, min, max, expected }))
  }

  const quality = createQualityStatements(db)

  return {
    flush,

    writeReadings(readings): Promise<WriteResult> {
      if (!db.open) return Promise.reject(new StorageError('CLOSED', 'the storage is closed'))
      if (readings.length === 0) return Promise.resolve({ inserted: 0, duplicates: 0 })
      if (turnBusy) {
        return new Promise((resolve, reject) => {
          queue.push({ readings, resolve, reject })
        })
      }
      turnBusy = true
      setImmediate(flush)
      try {
        const inserted = commit([readings])[0] ?? 0
        return Promise.resolve({ inserted, duplicates: readings.length - inserted })
      } catch (error) {
        return Promise.reject(error)
      }
    },

    async rawSeries(query): Promise<RawPoint[]> {
      const { siteId, deviceId, metric, from, to, limit } = query
      const statements = raw.get(metric)
      if (statements === undefined) throw new StorageError('INVALID_QUERY', `unknown metric ${String(metric)}`)
      if (limit <= 0) return []
      let rows: RawRow[]
      if (siteId !== undefined && deviceId !== undefined)
        rows = statements.siteDevice.all(siteId, deviceId, from, to, limit)
      else if (siteId !== undefined) rows = statements.site.all(siteId, hourStart(from), to, siteId, from, to, limit)
      else if (deviceId !== undefined) rows = statements.device.all(deviceId, from, to, limit)
      else throw new StorageError('INVALID_QUERY', 'a series query needs a siteId or a deviceId')
      return rows.map((row) => ({ t: new Date(row.ts).toISOString(), value: row.value, deviceId: row.device_id }))
    },

    async aggregateSeries(query): Promise<AggregatePoint[]> {
      if (query.limit <= 0) return []
      if (query.every === '1h') {
        // Hours overlapping [from, to).
        const iso = createHourIsoFormatter()
        return hourBuckets(query, hourStart(query.from), query.limit).map((bucket) => hourPoint(bucket, iso))
      }
      // Whole UTC+1 days from the one containing `from`; a day has at most 24 hours, so limit × 24 rows suffice.
      const hours = hourBuckets(query, regulatoryDayStart(query.from), query.limit * 24)
      return dailyPoints(hours).slice(0, query.limit)
    },

    async siteHourly({ siteId, metrics, from, to }): Promise<Map<Metric, AggregatePoint[]>> {
      const asked = [...new Set(metrics)]
      for (const m of asked) {
        if (!METRICS.includes(m)) throw new StorageError('INVALID_QUERY', `unknown metric ${String(m)}`)
      }
      const series = new Map<Metric, AggregatePoint[]>(asked.map((m) => [m, []]))
      if (asked.length === 0 || !(from < to)) return series
      const iso = createHourIsoFormatter()
      for (const row of siteHourlyStatement(asked).all(siteId, hourStart(from), to)) {
        // As BucketTuple: SQLite's values as they come (what aggregateSeries passes on), five per metric.
        const cell = (k: number): number => {
          const value = row[k]
          if (value === undefined) throw new StorageError('INVALID_QUERY', `siteHourly: no column ${k}`)
          return value
        }
        const start = cell(0)
        for (const [i, m] of asked.entries()) {
          const n = cell(1 + i * 5)
          // No sample of this metric in the hour (the filtered sum is NULL): absent, as in aggregateSeries.
          if (!(typeof n === 'number' && n > 0)) continue
          const bucket = {
            start,
            n,
            sum: cell(2 + i * 5),
            min: cell(3 + i * 5),
            max: cell(4 + i * 5),
            expected: cell(5 + i * 5),
          }
          series.get(m)?.push(hourPoint(bucket, iso))
        }
      }
      return series
    },

    async latestByDevice(): Promise<LatestReading[]> {
      return latestAll.all().map((row) => ({
        deviceId: row.device_id,
        siteId: row.site_id,
        ts: row.ts,
        values: latestValues(row),
        metricTs: latestTimes(row),
        receivedAt: row.received_at,
      }))
    },

    async latestBySite(): Promise<Map<string, LatestReading>> {
      interface Merged {
        deviceId: string
        ts: number
        receivedAt: number
        values: MetricValues
        metricTs: Partial<Record<Metric, number>>
      }
      const merged = new Map<string, Merged>()
      for (const row of latestAtSites.all()) {
        let site = merged.get(row.current_site)
        if (site === undefined) {
          site = { deviceId: row.device_id, ts: row.ts, receivedAt: row.received_at, values: {}, metricTs: {} }
          merged.set(row.current_site, site)
        } else if (row.ts > site.ts) {
          site.deviceId = row.device_id
          site.ts = row.ts
          site.receivedAt = row.received_at
        }
        // Per metric, the newest value among the site's devices wins.
        for (const m of METRICS) {
          const value = row[m]
          const ts = row[`${m}_ts`]
          if (value === null || ts === null) continue
          const seen = site.metricTs[m]
          if (seen !== undefined && seen >= ts) continue
          site.metricTs[m] = ts
          site.values[m] = value
        }
      }
      const out = new Map<string, LatestReading>()
      for (const [siteId, site] of merged) {
        out.set(siteId, {
          deviceId: site.deviceId,
          siteId,
          ts: site.ts,
          values: site.values,
          metricTs: site.metricTs,
          receivedAt: site.receivedAt,
        })
      }
      return out
    },

    async sampleCounts({ from, to }): Promise<Map<string, number>> {
      const counts = new Map<string, number>()
      for (const row of sampleCountsInRange.all(from, to)) {
        if (row.n > 0) counts.set(row.device_id, row.n)
      }
      return counts
    },

    async hourlyBySite({ metric, from, to }): Promise<SiteHour[]> {
      const statement = siteBuckets.get(metric)
      if (statement === undefined) throw new StorageError('INVALID_QUERY', `unknown metric ${String(metric)}`)
      const hours: SiteHour[] = []
      // Hours overlapping [from, to), as aggregateSeries.
      for (const [siteId, t, n, sum, expected] of statement.all(hourStart(from), to)) {
        // hourPoint's arithmetic (the contract tests compare the two), without its ISO timestamp: formatting
        // 240 000 of those took longer than the query (measured ~0.5 s vs 0.04 s for 10 000 sites × 24 h).
        const coverage = expected > 0 ? Math.min(1, n / expected) : 0
        hours.push({ siteId, t, mean: sum / n, n, valid: coverage >= HOURLY_MIN_COVERAGE })
      }
      return hours
    },

    streamReadings(query): AsyncIterable<readonly ExportReading[]> {
      return streamReadings(db, query)
    },

    streamHourly(query): AsyncIterable<readonly ExportHourSums[]> {
      return streamHourly(db, query)
    },

    async qualityBacklog(finalBefore, limit, after): Promise<QualityBacklogEntry[]> {
      if (!Number.isSafeInteger(limit) || limit <= 0) return []
      // Hours that ended by finalBefore: hour_start + 1 h <= finalBefore.
      const lastHour = finalBefore - HOUR_MS
      const rows =
        after === undefined
          ? quality.backlog.all(lastHour, limit)
          : quality.backlogAfter.all(lastHour, after.hourStart, after.deviceId, limit)
      return rows.map(([hour, deviceId]) => ({ deviceId, hourStart: hour }))
    },

    async checkQuality(deviceId, hour, check, finalBefore): Promise<QualityCheckResult> {
      if (!db.open) throw new StorageError('CLOSED', 'the storage is closed')
      checkQualityArgs(hour, check)
      return quality.check(deviceId, hour, check, finalBefore)
    },

    async requireQualityVersion(version): Promise<number> {
      if (!db.open) throw new StorageError('CLOSED', 'the storage is closed')
      if (!Number.isSafeInteger(version) || version < 1) {
        throw new StorageError('INVALID_QUERY', `a quality rules version is a positive integer, not ${version}`)
      }
      // Fast path without the write lock: the version was asked for before (every start after the first).
      if ((quality.storedVersion.get() ?? 0) >= version) return 0
      return quality.requireVersion.immediate(version)
    },

    async countReadings(filter = {}): Promise<number> {
      const { siteId, deviceId } = filter
      let row: CountRow | undefined
      if (siteId !== undefined && deviceId !== undefined) row = countSiteDevice.get(deviceId, siteId)
      else if (siteId !== undefined) row = countSite.get(siteId, siteId)
      else if (deviceId !== undefined) row = countDevice.get(deviceId)
      else row = countAll.get()
      return row?.count ?? 0
    },
  }
}

const NO_CHANGE: QualityCheckResult = { hours: 0, checked: 0, flagged: 0, changed: 0 }

/** A flag mask of core reading-qc.ts: 48 bits used, so any non-negative safe integer is storable. */
function isMask(mask: number): boolean {
  return Number.isSafeInteger(mask) && mask >= 0
}

function checkQualityArgs(hour: number, check: QualityCheck): void {
  const problem =
    !Number.isSafeInteger(hour) || hour % HOUR_MS !== 0
      ? `hourStart ${hour} is not an hour-aligned epoch ms`
      : !Number.isSafeInteger(check.version) || check.version < 1
        ? `a quality rules version is a positive integer, not ${check.version}`
        : !(
              check.contextBeforeMs >= 0 &&
              check.contextAfterMs >= 0 &&
              check.contextBeforeMs + check.contextAfterMs < 1e12
            )
          ? 'the quality context spans are finite, non-negative durations'
          : undefined
  if (problem !== undefined) throw new StorageError('INVALID_QUERY', problem)
}

/** `ms` rounded up to whole hours. */
function wholeHours(ms: number): number {
  return Math.ceil(ms / HOUR_MS) * HOUR_MS
}

/** Statements and transactions of the quality flags (issue 5; schema in quality-schema.ts). */
function createQualityStatements(db: Database.Database) {
  // Both walk the partial index hourly_qc_dirty, which orders by (hour_start, device_id, site_id): no sort, and the
  // cost follows the backlog, not the history. The literal `qc_dirty = 1` lets SQLite use the partial index.
  const backlog = db
    .prepare<[lastHour: number, limit: number], [hourStart: number, deviceId: string]>(
      `SELECT DISTINCT hour_start, device_id FROM hourly WHERE qc_dirty = 1 AND hour_start <= ?
       ORDER BY hour_start, device_id LIMIT ?`,
    )
    .raw()
  const backlogAfter = db
    .prepare<[lastHour: number, hourStart: number, deviceId: string, limit: number], [number, string]>(
      `SELECT DISTINCT hour_start, device_id FROM hourly WHERE qc_dirty = 1 AND hour_start <= ?
         AND (hour_start, device_id) > (?, ?)
       ORDER BY hour_start, device_id LIMIT ?`,
    )
    .raw()
  const needsCheck = db
    .prepare<[deviceId: string, hourStart: number, version: number], number>(
      'SELECT 1 FROM hourly WHERE device_id = ? AND hour_start = ? AND (qc_dirty = 1 OR qc_version IS NOT ?) LIMIT 1',
    )
    .pluck()
  const samples = db
    .prepare<[deviceId: string, from: number, to: number], (number | null)[]>(
      `SELECT ts, qc, ${METRICS.join(', ')} FROM readings WHERE device_id = ? AND ts >= ? AND ts < ? ORDER BY ts`,
    )
    .raw()
  const setMask = db.prepare<[mask: number, deviceId: string, ts: number], never>(
    'UPDATE readings SET qc = ? WHERE device_id = ? AND ts = ?',
  )
  // Hours already checked with this version are left alone: no page written for nothing.
  // A device moved within an hour has a row per site: RETURNING lets the count be of device-hours, not rows.
  const markChecked = db
    .prepare<[version: number, deviceId: string, from: number, to: number, version: number], number>(
      `UPDATE hourly SET qc_dirty = 0, qc_version = ?
       WHERE device_id = ? AND hour_start >= ? AND hour_start < ? AND (qc_dirty = 1 OR qc_version IS NOT ?)
       RETURNING hour_start`,
    )
    .pluck()
  const storedVersion = db.prepare<[], number>("SELECT value FROM meta WHERE key = 'qc_version'").pluck()
  const setStoredVersion = db.prepare<[version: number], never>(
    "INSERT INTO meta (key, value) VALUES ('qc_version', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
  )
  // One pass over hourly, once per new version (the meta key says it was done).
  const redirty = db.prepare<[version: number], never>(
    'UPDATE hourly SET qc_dirty = 1 WHERE qc_dirty = 0 AND qc_version < ?',
  )

  const check = db.transaction(
    (deviceId: string, hour: number, rules: QualityCheck, finalBefore: number): QualityCheckResult => {
      // Hours before hourStart(finalBefore) have ended by finalBefore.
      const finalEnd = Math.floor(finalBefore / HOUR_MS) * HOUR_MS
      if (hour + HOUR_MS > finalEnd) return NO_CHANGE
      const asked = storedVersion.get() ?? 0
      if (rules.version < asked) {
        throw new StorageError(
          'CONFLICT',
          `quality rules version ${rules.version} is older than version ${asked} this database asks for`,
        )
      }
      if (needsCheck.get(deviceId, hour, rules.version) === undefined) return NO_CHANGE
      // The readings whose flags data in this hour can change, in whole hours, cut at the last final hour.
      const from = hour - wholeHours(rules.contextAfterMs)
      const to = Math.min(hour + HOUR_MS + wholeHours(rules.contextBeforeMs), finalEnd)
      const rows = samples.all(deviceId, from - rules.contextBeforeMs, to + rules.contextAfterMs)
      const input: QcSample[] = new Array(rows.length)
      for (let i = 0; i < rows.length; i++) {
        const row = rows[i] ?? []
        const values: Partial<Record<Metric, number>> = {}
        for (let j = 0; j < METRICS.length; j++) {
          const v = row[j + 2]
          const m = METRICS[j]
          if (v !== null && v !== undefined && m !== undefined) values[m] = v
        }
        input[i] = { ts: row[0] ?? 0, values }
      }
      const masks = rules.run(input, { from, to })
      let checked = 0
      let flagged = 0
      let changed = 0
      for (const row of rows) {
        const ts = row[0] ?? 0
        if (ts < from || ts >= to) continue
        const mask = masks.get(ts) ?? 0
        if (!isMask(mask)) {
          throw new StorageError('INVALID_QUERY', `quality mask ${mask} for ${deviceId} at ${ts} is not a bitmask`)
        }
        checked++
        if (mask !== 0) flagged++
        if (mask === (row[1] ?? 0)) continue
        setMask.run(mask, deviceId, ts)
        changed++
      }
      const hours = new Set(markChecked.all(rules.version, deviceId, from, to, rules.version)).size
      return { hours, checked, flagged, changed }
    },
  )

  const requireVersion = db.transaction((version: number): number => {
    if ((storedVersion.get() ?? 0) >= version) return 0
    const marked = redirty.run(version).changes
    setStoredVersion.run(version)
    return marked
  })

  return {
    backlog,
    backlogAfter,
    storedVersion,
    requireVersion,
    // IMMEDIATE: takes the write lock before reading, so no other process writes between the read and the marks.
    check: (deviceId: string, hour: number, rules: QualityCheck, finalBefore: number) =>
      check.immediate(deviceId, hour, rules, finalBefore),
  }
}

function settle(pending: PendingWrite, inserted: number): void {
  pending.resolve({ inserted, duplicates: pending.readings.length - inserted })
}

function metricArgs(values: MetricValues): MetricArgs {
  return METRICS.map((m) => values[m] ?? null)
}

function latestValues(row: LatestRow): MetricValues {
  const values: MetricValues = {}
  for (const m of METRICS) {
    const value = row[m]
    if (value !== null) values[m] = value
  }
  return values
}

function latestTimes(row: LatestRow): Partial<Record<Metric, number>> {
  const times: Partial<Record<Metric, number>> = {}
  for (const m of METRICS) {
    const ts = row[`${m}_ts`]
    if (ts !== null && row[m] !== null) times[m] = ts
  }
  return times
}

/** SQLITE_BUSY / SQLITE_LOCKED (and their extended codes): retrying each call alone would only wait longer. */
function isLockError(error: unknown): boolean {
  if (!(error instanceof Error) || !('code' in error) || typeof error.code !== 'string') return false
  return error.code.startsWith('SQLITE_BUSY') || error.code.startsWith('SQLITE_LOCKED')
}

/** `AND column IN (list)` via json_each (one bound parameter whatever the list length), or nothing. */
function inList(column: string, list: readonly string[] | undefined, params: unknown[]): string {
  if (list === undefined) return ''
  params.push(JSON.stringify(list))
  return ` AND ${column} IN (SELECT value FROM json_each(?))`
}

/**
 * Readings for export. The (site, device) pairs come from `hourly` (written in the same transaction as every
 * reading, and indexed by device and by site), then each pair's readings from the key of `readings` in
 * batches: `ts > last` (keyset), each batch a finished `.all()`, so no statement stays open across an await
 * (better-sqlite3 forbids writes on a connection while one of its iterators is open).
 */
async function* streamReadings(db: Database.Database, query: ExportQuery): AsyncGenerator<readonly ExportReading[]> {
  const metrics = exportMetrics(query)
  if (metrics.length === 0 || query.from >= query.to) return
  if (query.siteIds?.length === 0 || query.deviceIds?.length === 0) return
  const params: unknown[] = [hourStart(query.from), query.to]
  let sql = `SELECT DISTINCT site_id, device_id FROM hourly WHERE hour_start >= ? AND hour_start < ?
    AND (${metrics.map((m) => `${m}_n > 0`).join(' OR ')})`
  sql += inList('site_id', query.siteIds, params)
  sql += inList('device_id', query.deviceIds, params)
  sql += ' ORDER BY site_id, device_id'
  const pairs = db.prepare<unknown[], { site_id: string; device_id: string }>(sql).all(...params)
  // A reading's flags count once its device-hour (every site's row of it) is checked: the unchecked hours of a
  // device over the range, one small key-range read per (site, device) instead of a join per reading.
  const uncheckedHours = db
    .prepare<[string, number, number], number>(
      `SELECT DISTINCT hour_start FROM hourly WHERE device_id = ? AND hour_start >= ? AND hour_start < ?
         AND (qc_dirty = 1 OR qc_version IS NULL)`,
    )
    .pluck()
  // `site_id IS ?` matches NULL when bound to null: readings without a site are NO_SITE in hourly.
  const batch = db
    .prepare<[string, number, number, string | null, number], (number | null)[]>(
      `SELECT ts, qc, ${metrics.join(', ')} FROM readings
       WHERE device_id = ? AND ts > ? AND ts < ? AND site_id IS ?
         AND (${metrics.map((m) => `${m} IS NOT NULL`).join(' OR ')})
       ORDER BY ts LIMIT ?`,
    )
    .raw()
  // Resume: pairs before the `after` reading's pair are done; its own pair starts at its time (inclusive).
  const resume = query.after
  const resumeSite = resume === undefined ? '' : (resume.siteId ?? NO_SITE)
  for (const pair of pairs) {
    if (resume !== undefined) {
      const order = comparePair(pair.site_id, pair.device_id, resumeSite, resume.deviceId ?? '')
      if (order < 0) continue
    }
    const siteId = pair.site_id === NO_SITE ? null : pair.site_id
    const unchecked = new Set(uncheckedHours.all(pair.device_id, hourStart(query.from), query.to))
    let after = query.from - 1
    if (
      resume !== undefined &&
      pair.site_id === resumeSite &&
      pair.device_id === resume.deviceId &&
      resume.ts - 1 > after
    ) {
      after = resume.ts - 1
    }
    for (;;) {
      const rows = batch.all(pair.device_id, after, query.to, siteId, EXPORT_BATCH_ROWS)
      if (rows.length === 0) break
      const out: ExportReading[] = new Array(rows.length)
      for (let i = 0; i < rows.length; i++) {
        const row = rows[i] ?? []
        const values: Partial<Record<Metric, number>> = {}
        for (let j = 0; j < metrics.length; j++) {
          const v = row[j + 2]
          const m = metrics[j]
          if (v !== null && v !== undefined && m !== undefined) values[m] = v
        }
        const ts = row[0] ?? 0
        const qc = unchecked.size > 0 && unchecked.has(hourStart(ts)) ? null : (row[1] ?? 0)
        out[i] = { siteId, deviceId: pair.device_id, ts, values, qc }
      }
      after = out[out.length - 1]?.ts ?? query.to
      yield out
      await nextTurn()
      if (rows.length < EXPORT_BATCH_ROWS) break
    }
  }
}

/**
 * Site-hours for export, keyset-paged on (site_id, hour_start) over the hourly_by_site index. Per metric a
 * site adds up n, sums and the expected samples of the devices that measured that metric (as aggregateSeries).
 * With `byDevice`, device-hours instead (streamDeviceHours).
 */
async function* streamHourly(db: Database.Database, query: ExportQuery): AsyncGenerator<readonly ExportHourSums[]> {
  if (query.byDevice === true) {
    yield* streamDeviceHours(db, query)
    return
  }
  const metrics = exportMetrics(query)
  if (metrics.length === 0 || query.from >= query.to) return
  if (query.siteIds?.length === 0 || query.deviceIds?.length === 0) return
  const params: unknown[] = []
  let filter = ''
  filter += inList('site_id', query.siteIds, params)
  filter += inList('device_id', query.deviceIds, params)
  const columns = metrics
    .map(
      (m) =>
        `sum(${m}_n), sum(${m}_sum), min(${m}_min), max(${m}_max), sum(CASE WHEN ${m}_n > 0 THEN expected ELSE 0 END)`,
    )
    .join(', ')
  const statement = db
    .prepare<unknown[], (string | number | null)[]>(
      `SELECT site_id, hour_start, ${columns} FROM hourly
       WHERE site_id <> '${NO_SITE}' AND (site_id, hour_start) > (?, ?) AND hour_start >= ? AND hour_start < ?
         AND (${metrics.map((m) => `${m}_n > 0`).join(' OR ')})${filter}
       GROUP BY site_id, hour_start ORDER BY site_id, hour_start LIMIT ?`,
    )
    .raw()
  // Resume: from the `after` site-hour, inclusive.
  let afterSite = query.after?.siteId ?? ''
  let afterHour = query.after === undefined ? Number.NEGATIVE_INFINITY : query.after.ts - 1
  for (;;) {
    const rows = statement.all(afterSite, afterHour, hourStart(query.from), query.to, ...params, EXPORT_BATCH_ROWS)
    if (rows.length === 0) return
    const out: ExportHourSums[] = []
    for (const row of rows) {
      const siteId = String(row[0])
      const t = Number(row[1])
      for (let j = 0; j < metrics.length; j++) {
        const m = metrics[j]
        const n = Number(row[2 + j * 5] ?? 0)
        if (m === undefined || n <= 0) continue
        out.push({
          siteId,
          t,
          metric: m,
          n,
          sum: Number(row[3 + j * 5]),
          min: Number(row[4 + j * 5]),
          max: Number(row[5 + j * 5]),
          expected: Number(row[6 + j * 5]),
        })
      }
      afterSite = siteId
      afterHour = t
    }
    yield out
    await nextTurn()
    if (rows.length < EXPORT_BATCH_ROWS) return
  }
}

/**
 * Device-hours for export (`byDevice`), keyset-paged on (site_id, hour_start, device_id): each with the device's
 * own sums per metric and its mean RH in that hour, so corrections can be applied per device. A device has one
 * hourly row per (hour, site), so nothing is added up here.
 */
async function* streamDeviceHours(
  db: Database.Database,
  query: ExportQuery,
): AsyncGenerator<readonly ExportHourSums[]> {
  const metrics = exportMetrics(query)
  if (metrics.length === 0 || query.from >= query.to) return
  if (query.siteIds?.length === 0 || query.deviceIds?.length === 0) return
  const params: unknown[] = []
  let filter = ''
  filter += inList('site_id', query.siteIds, params)
  filter += inList('device_id', query.deviceIds, params)
  const columns = metrics.map((m) => `${m}_n, ${m}_sum, ${m}_min, ${m}_max`).join(', ')
  const statement = db
    .prepare<unknown[], (string | number | null)[]>(
      `SELECT site_id, hour_start, device_id, expected, rh_n, rh_sum, ${columns} FROM hourly
       WHERE site_id <> '${NO_SITE}' AND (site_id, hour_start, device_id) > (?, ?, ?)
         AND hour_start >= ? AND hour_start < ?
         AND (${metrics.map((m) => `${m}_n > 0`).join(' OR ')})${filter}
       ORDER BY site_id, hour_start, device_id LIMIT ?`,
    )
    .raw()
  let afterSite = query.after?.siteId ?? ''
  let afterHour = query.after === undefined ? Number.NEGATIVE_INFINITY : query.after.ts - 1
  let afterDevice = ''
  for (;;) {
    const rows = statement.all(
      afterSite,
      afterHour,
      afterDevice,
      hourStart(query.from),
      query.to,
      ...params,
      EXPORT_BATCH_ROWS,
    )
    if (rows.length === 0) return
    const out: ExportHourSums[] = []
    for (const row of rows) {
      const siteId = String(row[0])
      const t = Number(row[1])
      const deviceId = String(row[2])
      const expected = Number(row[3])
      const rhN = Number(row[4] ?? 0)
      const rh = rhN > 0 ? Number(row[5]) / rhN : undefined
      for (let j = 0; j < metrics.length; j++) {
        const m = metrics[j]
        const n = Number(row[6 + j * 4] ?? 0)
        if (m === undefined || n <= 0) continue
        out.push({
          siteId,
          deviceId,
          t,
          metric: m,
          n,
          sum: Number(row[7 + j * 4]),
          min: Number(row[8 + j * 4]),
          max: Number(row[9 + j * 4]),
          expected,
          ...(rh === undefined ? {} : { rh }),
        })
      }
      afterSite = siteId
      afterHour = t
      afterDevice = deviceId
    }
    yield out
    await nextTurn()
    if (rows.length < EXPORT_BATCH_ROWS) return
  }
}
