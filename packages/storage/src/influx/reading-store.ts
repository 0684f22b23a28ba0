import { randomInt } from 'node:crypto'
import { setImmediate as nextTurn } from 'node:timers/promises'
import type { ParameterizedQuery, QueryApi } from '@influxdata/influxdb-client'
import {
  type AggregatePoint,
  aggregateWindowCount,
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
import type { Logger } from '@skolluft/runtime'
import { StorageError } from '../errors.ts'
import { comparePair, exportMetrics } from '../export-order.ts'
import {
  EXPORT_BATCH_ROWS,
  type ExportQuery,
  type LatestReading,
  type QualityBacklogEntry,
  type QualityCheckResult,
  type RawPoint,
  type ReadingStore,
  type SiteHour,
  type StoredReading,
  type WriteResult,
} from '../types.ts'
import {
  backlogQuery,
  countQuery,
  deviceCountsQuery,
  deviceHoursQuery,
  existingKeysQuery,
  hourSumsQuery,
  latestQuery,
  outdatedHoursQuery,
  pairsQuery,
  rawPointsQuery,
  readingRowsQuery,
  requiredVersionQuery,
} from './flux.ts'
import { deviceHourLine, metaLine, qcLine, readingLine } from './line-protocol.ts'

/**
 * Readings in InfluxDB 2 (issue 6). Writes go through the writer (line protocol, batched, spooled to disk while
 * InfluxDB is away); reads are Flux queries (flux.ts). The metadata (registry, users, alerts, …) stays in the
 * relational store; this store only needs each device's current site, for `latestBySite`.
 *
 * How the contract of types.ts is kept without transactions:
 * - Idempotent on (device, ts): a point's series key is (measurement, device, site) and the site is a function of
 *   (device, ts), so the same reading written again lands on the same point. First write wins: before writing,
 *   the keys of a batch are looked up (one query per batch) and those already stored are left out and counted as
 *   duplicates. While InfluxDB is unreachable the lookup cannot run: readings go to the spool as they are and a
 *   replay that meets an existing point overwrites it with the same key (last write wins for that case only).
 * - Aggregates: computed by Flux from the raw points when asked (`window(every: 1h)` + `reduce`), never stored,
 *   so late data and quality flags can never leave them stale. Chosen over InfluxDB tasks (which run on a schedule
 *   and miss data later than their window) and over aggregates kept by the ingest (a read-modify-write per
 *   reading, racy with several ingest workers). docs/scaling.md says where this stops being fast enough.
 * - Quality flags: a device-hour that receives readings gets `device_hour dirty=<random>` in the same write; a
 *   check remembers the `dirty` value it saw before reading and writes it back as `checked`. A reading that lands
 *   meanwhile (or is replayed from the spool later) writes a new `dirty`, so its hour stays in the backlog.
 *   No clocks are compared, so several ingest machines with skewed clocks cannot lose a check.
 */

/** The write path this store needs (writer.ts). */
export interface LineWriter {
  /** Resolves once the lines are durable: accepted by InfluxDB or committed to the local spool. */
  write(lines: readonly string[]): Promise<unknown>
  /** 'direct' while InfluxDB takes writes; anything else means the spool is in use. */
  stats(): { readonly state: string }
}

export interface InfluxReadingStoreOptions {
  readonly queryApi: QueryApi
  /**
   * The duplicate lookup before each write, with a short timeout of its own (default: queryApi): an InfluxDB that
   * hangs must not hold the devices' acknowledgements for a whole query timeout before the writer spools.
   */
  readonly lookupApi?: QueryApi
  readonly bucket: string
  readonly writer: LineWriter
  /** Each device's current site (open placement), for latestBySite. */
  readonly currentSites: () => Promise<ReadonlyMap<string, string>>
  readonly log: Logger
}

type Row = Record<string, unknown>

interface PendingWrite {
  readonly readings: readonly StoredReading[]
  readonly resolve: (result: WriteResult) => void
  readonly reject: (error: unknown) => void
}

/**
 * Epoch ms of a Flux time column: an RFC 3339 string by default; a number or Date if the process switched the
 * client's (global) dateTime serializer (`serializeDateTimeAsNumber` / `serializeDateTimeAsDate`).
 */
function ms(value: unknown): number {
  const t =
    typeof value === 'string'
      ? Date.parse(value)
      : typeof value === 'number'
        ? value
        : value instanceof Date
          ? value.getTime()
          : Number.NaN
  if (!Number.isFinite(t))
    throw new StorageError('INVALID_QUERY', `InfluxDB returned a time that is not one: ${String(value)}`)
  return t
}

function num(value: unknown): number {
  return typeof value === 'number' ? value : Number(value)
}

function str(value: unknown): string | null {
  return typeof value === 'string' && value !== '' ? value : null
}

/** After a failed duplicate lookup, writes go without one for this long (then it is tried again). */
export const LOOKUP_PAUSE_MS = 60_000

const NO_CHANGE: QualityCheckResult = { hours: 0, checked: 0, flagged: 0, changed: 0 }

/** Per (device, site, hour): the hour sums of each metric and the device-hour's expected samples. */
interface DeviceHour {
  readonly deviceId: string
  readonly siteId: string | null
  readonly t: number
  expected: number
  readonly metrics: Map<string, { n: number; sum: number; min: number; max: number }>
}

export interface InfluxReadingStore extends ReadingStore {
  /** Refuses further calls; the writer is closed by its owner. */
  close(): Promise<void>
}

export function createInfluxReadingStore(options: InfluxReadingStoreOptions): InfluxReadingStore {
  const { queryApi, bucket, writer, log } = options
  let closed = false
  /** Until when the duplicate lookup is skipped after it failed (epoch ms). */
  let lookupPausedUntil = 0

  /*
   * Group commit: calls made while a batch is being looked up and written wait in `queue` and go together in the
   * next batch, so a busy ingest (hundreds of messages in flight, one call each) costs one duplicate lookup and one
   * write request per batch, not per message. One batch at a time: the next one's lookup sees what this one wrote,
   * and a lookup that fails pauses the lookups once, not once per message in flight.
   */
  let queue: PendingWrite[] = []
  let pumping = false

  async function pump(): Promise<void> {
    pumping = true
    try {
      while (queue.length > 0) {
        // Calls made in the same event-loop turn as the first one join its batch.
        await nextTurn()
        const batch = queue
        queue = []
        await commit(batch)
      }
    } finally {
      pumping = false
    }
  }

  /** Looks the batch's keys up once, writes what is new (first write wins, also within the batch), settles each call. */
  async function commit(batch: readonly PendingWrite[]): Promise<void> {
    try {
      const stored = await storedKeys(batch.flatMap((p) => p.readings))
      const seen = stored ?? new Set<string>()
      const lines: string[] = []
      const hours = new Set<string>()
      // Each call is encoded on its own: a reading that cannot be encoded fails its own call, not the batch's others.
      const counts = batch.map((p): number | Error => {
        const own: string[] = []
        const added: StoredReading[] = []
        try {
          for (const r of p.readings) {
            const key = `${r.deviceId}@${r.ts}`
            if (seen.has(key)) continue
            own.push(readingLine(r))
            added.push(r)
            seen.add(key)
          }
        } catch (error) {
          for (const r of added) seen.delete(`${r.deviceId}@${r.ts}`)
          return error instanceof Error ? error : new Error(String(error))
        }
        lines.push(...own)
        for (const r of added) hours.add(`${r.deviceId}@${hourStart(r.ts)}`)
        return own.length
      })
      // After the readings, in the same request: a check that reads `dirty` and then the readings sees both.
      for (const h of hours) {
        const at = h.lastIndexOf('@')
        lines.push(deviceHourLine(h.slice(0, at), Number(h.slice(at + 1)), { dirty: randomInt(1, 2 ** 47) }))
      }
      if (lines.length > 0) await writer.write(lines)
      batch.forEach((p, i) => {
        const inserted = counts[i] ?? 0
        if (inserted instanceof Error) p.reject(inserted)
        else p.resolve({ inserted, duplicates: p.readings.length - inserted })
      })
    } catch (error) {
      // The lookup or the write failed (a spool that cannot be written): no call of the batch is durable.
      for (const p of batch) p.reject(error)
    }
  }

  async function rows(query: ParameterizedQuery, api: QueryApi = queryApi): Promise<Row[]> {
    if (closed) throw new StorageError('CLOSED', 'the storage is closed')
    try {
      return await api.collectRows<Row>(query, (values, meta) => meta.toObject(values))
    } catch (error) {
      // Unreachable, timed out, refused: one code callers can treat as "try again later" (the ingest does).
      throw new StorageError('STORAGE_UNAVAILABLE', `InfluxDB query failed: ${(error as Error).message}`, {
        cause: error,
      })
    }
  }

  /** Hour sums of the asked fields, keyed per (device, site, hour), in no particular order. */
  async function deviceHours(q: Parameters<typeof hourSumsQuery>[1]): Promise<Map<string, DeviceHour>> {
    const out = new Map<string, DeviceHour>()
    // Flux refuses a range with start >= stop ("cannot query an empty range", flux stdlib/universe/range.go).
    if (q.from >= q.to) return out
    for (const row of await rows(hourSumsQuery(bucket, { ...q, fields: [...q.fields, 'expected_per_hour'] }))) {
      const deviceId = String(row.device)
      const siteId = str(row.site)
      const t = ms(row._start)
      const key = `${siteId ?? ''}\u0000${deviceId}\u0000${t}`
      let hour = out.get(key)
      if (hour === undefined) {
        hour = { deviceId, siteId, t, expected: 0, metrics: new Map() }
        out.set(key, hour)
      }
      const field = String(row._field)
      if (field === 'expected_per_hour') hour.expected = num(row.max)
      else hour.metrics.set(field, { n: num(row.n), sum: num(row.sum), min: num(row.min), max: num(row.max) })
    }
    return out
  }

  /** A site's (or device's) hour buckets of one metric, in time order: devices add up as aggregateSeries says. */
  function buckets(hours: Iterable<DeviceHour>, metric: Metric, addExpected: boolean): HourBucket[] {
    const byHour = new Map<
      number,
      { start: number; n: number; sum: number; min: number; max: number; expected: number }
    >()
    for (const hour of hours) {
      const m = hour.metrics.get(metric)
      if (m === undefined || m.n === 0) continue
      const b = byHour.get(hour.t)
      if (b === undefined) {
        byHour.set(hour.t, { start: hour.t, ...m, expected: hour.expected })
        continue
      }
      b.n += m.n
      b.sum += m.sum
      b.min = Math.min(b.min, m.min)
      b.max = Math.max(b.max, m.max)
      b.expected = addExpected ? b.expected + hour.expected : Math.max(b.expected, hour.expected)
    }
    return [...byHour.values()].sort((a, b) => a.start - b.start)
  }

  async function requiredVersion(): Promise<number> {
    const [row] = await rows(requiredVersionQuery(bucket))
    return row === undefined ? 0 : num(row._value)
  }

  /** Keys `${device}@${ts}` of the readings already stored, or undefined when the lookup cannot run now. */
  async function storedKeys(readings: readonly StoredReading[]): Promise<Set<string> | undefined> {
    if (writer.stats().state !== 'direct' || Date.now() < lookupPausedUntil) return undefined
    const spans = new Map<string, { deviceId: string; from: number; to: number }>()
    for (const r of readings) {
      const span = spans.get(r.deviceId)
      if (span === undefined) spans.set(r.deviceId, { deviceId: r.deviceId, from: r.ts, to: r.ts + 1 })
      else {
        span.from = Math.min(span.from, r.ts)
        span.to = Math.max(span.to, r.ts + 1)
      }
    }
    try {
      const found = new Set<string>()
      for (const row of await rows(existingKeysQuery(bucket, [...spans.values()]), options.lookupApi)) {
        found.add(`${String(row.device)}@${ms(row._time)}`)
      }
      return found
    } catch (error) {
      if (error instanceof StorageError && error.code !== 'STORAGE_UNAVAILABLE') throw error
      // A server that takes line protocol but no Flux (VictoriaMetrics in the tests) or a failing query: the
      // readings are still written; only a conflicting rewrite of an existing key could then win. Paused for a
      // while, so a lookup that keeps failing costs neither a request per write nor a log line per write.
      lookupPausedUntil = Date.now() + LOOKUP_PAUSE_MS
      log.warn({ err: error, pausedMs: LOOKUP_PAUSE_MS }, 'InfluxDB duplicate lookup failed: writing without it')
      return undefined
    }
  }

  const store: InfluxReadingStore = {
    writeReadings(readings): Promise<WriteResult> {
      if (closed) return Promise.reject(new StorageError('CLOSED', 'the storage is closed'))
      if (readings.length === 0) return Promise.resolve({ inserted: 0, duplicates: 0 })
      return new Promise((resolve, reject) => {
        queue.push({ readings, resolve, reject })
        if (!pumping) void pump()
      })
    },

    async rawSeries(query): Promise<RawPoint[]> {
      if (query.siteId === undefined && query.deviceId === undefined) {
        throw new StorageError('INVALID_QUERY', 'a series query needs a siteId or a deviceId')
      }
      if (!METRICS.includes(query.metric))
        throw new StorageError('INVALID_QUERY', `unknown metric ${String(query.metric)}`)
      if (query.limit <= 0 || query.from >= query.to) return []
      return (await rows(rawPointsQuery(bucket, query))).map((row) => ({
        t: new Date(ms(row._time)).toISOString(),
        value: num(row._value),
        deviceId: String(row.device),
      }))
    },

    async siteHourly({ siteId, metrics, from, to }) {
      const series = new Map<Metric, AggregatePoint[]>()
      // The contract's definition itself: one aggregateSeries per metric, with a limit that cuts nothing.
      const limit = aggregateWindowCount('1h', from, to)
      for (const metric of new Set(metrics)) {
        if (!METRICS.includes(metric)) throw new StorageError('INVALID_QUERY', `unknown metric ${String(metric)}`)
        series.set(metric, await store.aggregateSeries({ siteId, metric, every: '1h', from, to, limit }))
      }
      return series
    },

    async aggregateSeries(query) {
      const { siteId, deviceId, metric } = query
      if (siteId === undefined && deviceId === undefined) {
        throw new StorageError('INVALID_QUERY', 'a series query needs a siteId or a deviceId')
      }
      if (!METRICS.includes(metric)) throw new StorageError('INVALID_QUERY', `unknown metric ${String(metric)}`)
      if (query.limit <= 0) return []
      const from = query.every === '1h' ? hourStart(query.from) : regulatoryDayStart(query.from)
      const hours = await deviceHours({
        fields: [metric],
        from,
        to: Math.ceil(query.to / HOUR_MS) * HOUR_MS,
        ...(deviceId === undefined ? {} : { deviceId }),
        ...(siteId === undefined ? {} : { siteId }),
      })
      // A site adds up its devices' expected samples; one device's rows of an hour differ only by site.
      const list = buckets(hours.values(), metric, deviceId === undefined).filter((b) => b.start < query.to)
      if (query.every === '1h') {
        const iso = createHourIsoFormatter()
        return list.slice(0, query.limit).map((b) => hourPoint(b, iso))
      }
      return dailyPoints(list).slice(0, query.limit)
    },

    async latestByDevice(): Promise<LatestReading[]> {
      return latestFromRows(await rows(latestQuery(bucket)))
    },

    async latestBySite(): Promise<Map<string, LatestReading>> {
      const [latest, sites] = await Promise.all([rows(latestQuery(bucket)), options.currentSites()])
      const out = new Map<string, LatestReading>()
      for (const device of latestFromRows(latest)) {
        // Only a device that stands at the site now AND whose newest reading was taken there.
        const site = sites.get(device.deviceId)
        if (site === undefined || site !== device.siteId) continue
        const merged = out.get(site)
        if (merged === undefined) {
          out.set(site, device)
          continue
        }
        const values: MetricValues = { ...merged.values }
        const metricTs = { ...merged.metricTs }
        for (const m of METRICS) {
          const ts = device.metricTs[m]
          const value = device.values[m]
          if (ts === undefined || value === undefined) continue
          const seen = metricTs[m]
          if (seen !== undefined && seen >= ts) continue
          metricTs[m] = ts
          values[m] = value
        }
        const newer = device.ts > merged.ts ? device : merged
        out.set(site, {
          deviceId: newer.deviceId,
          siteId: site,
          ts: newer.ts,
          receivedAt: newer.receivedAt,
          values,
          metricTs,
        })
      }
      return out
    },

    async countReadings(filter = {}): Promise<number> {
      const [row] = await rows(countQuery(bucket, filter))
      return row === undefined ? 0 : num(row._value)
    },

    async sampleCounts({ from, to }): Promise<Map<string, number>> {
      // Readings per device over the hours starting in [from, to): the time range from the first such hour's start
      // to the end of the last one.
      const start = Math.ceil(from / HOUR_MS) * HOUR_MS
      const stop = Math.ceil(to / HOUR_MS) * HOUR_MS
      const counts = new Map<string, number>()
      if (start >= stop) return counts
      for (const row of await rows(deviceCountsQuery(bucket, start, stop))) {
        const n = num(row._value)
        if (n > 0) counts.set(String(row.device), n)
      }
      return counts
    },

    async hourlyBySite({ metric, from, to }): Promise<SiteHour[]> {
      if (!METRICS.includes(metric)) throw new StorageError('INVALID_QUERY', `unknown metric ${String(metric)}`)
      const hours = await deviceHours({
        fields: [metric],
        from: hourStart(from),
        to: Math.ceil(to / HOUR_MS) * HOUR_MS,
      })
      const bySite = new Map<string, DeviceHour[]>()
      for (const hour of hours.values()) {
        if (hour.siteId === null || hour.t >= to) continue
        const list = bySite.get(hour.siteId) ?? []
        list.push(hour)
        bySite.set(hour.siteId, list)
      }
      const out: SiteHour[] = []
      for (const siteId of [...bySite.keys()].sort()) {
        for (const b of buckets(bySite.get(siteId) ?? [], metric, true)) {
          const coverage = b.expected > 0 ? Math.min(1, b.n / b.expected) : 0
          out.push({ siteId, t: b.start, mean: b.sum / b.n, n: b.n, valid: coverage >= HOURLY_MIN_COVERAGE })
        }
      }
      return out
    },

    streamReadings(query): AsyncIterable<readonly ExportReading[]> {
      return streamReadings(query)
    },

    streamHourly(query): AsyncIterable<readonly ExportHourSums[]> {
      return streamHourly(query)
    },

    async qualityBacklog(finalBefore, limit, after): Promise<QualityBacklogEntry[]> {
      // Hours that ended by finalBefore: hourStart + 1 h <= finalBefore (none before the epoch, where ranges start).
      if (!Number.isSafeInteger(limit) || limit <= 0 || finalBefore - HOUR_MS < 0) return []
      const required = await requiredVersion()
      const list = await rows(
        backlogQuery(bucket, {
          lastHour: finalBefore - HOUR_MS,
          required,
          limit,
          ...(after === undefined ? {} : { after }),
        }),
      )
      return list.map((row) => ({ deviceId: String(row.device), hourStart: ms(row._time) }))
    },

    async checkQuality(deviceId, hour, check, finalBefore): Promise<QualityCheckResult> {
      if (closed) throw new StorageError('CLOSED', 'the storage is closed')
      if (!Number.isSafeInteger(hour) || hour % HOUR_MS !== 0) {
        throw new StorageError('INVALID_QUERY', `hourStart ${hour} is not an hour-aligned epoch ms`)
      }
      if (!Number.isSafeInteger(check.version) || check.version < 1) {
        throw new StorageError('INVALID_QUERY', `a quality rules version is a positive integer, not ${check.version}`)
      }
      // As the SQLite store (checkQualityArgs): a negative or unbounded reach would check the wrong span.
      if (
        !(
          check.contextBeforeMs >= 0 &&
          check.contextAfterMs >= 0 &&
          check.contextBeforeMs + check.contextAfterMs < 1e12
        )
      ) {
        throw new StorageError('INVALID_QUERY', 'the quality context spans are finite, non-negative durations')
      }
      const finalEnd = Math.floor(finalBefore / HOUR_MS) * HOUR_MS
      if (hour + HOUR_MS > finalEnd) return NO_CHANGE
      const asked = await requiredVersion()
      if (check.version < asked) {
        throw new StorageError(
          'CONFLICT',
          `quality rules version ${check.version} is older than version ${asked} this database asks for`,
        )
      }
      const whole = (span: number) => Math.ceil(span / HOUR_MS) * HOUR_MS
      const from = hour - whole(check.contextAfterMs)
      const to = Math.min(hour + HOUR_MS + whole(check.contextBeforeMs), finalEnd)
      // The states BEFORE the readings: a reading landing after this read writes a new `dirty` (see above).
      const states = await rows(deviceHoursQuery(bucket, { deviceId, from, to }))
      const own = states.find((s) => ms(s._time) === hour)
      const needs = (s: Row) =>
        s.dirty !== undefined && s.dirty !== null && (s.dirty !== s.checked || num(s.qc_version ?? 0) !== check.version)
      if (own === undefined || !needs(own)) return NO_CHANGE
      const samples: (QcSample & { siteId: string | null; qc: number })[] = []
      for await (const batch of readingBatches(
        deviceId,
        undefined,
        [...METRICS],
        true,
        from - check.contextBeforeMs,
        to + check.contextAfterMs,
      )) {
        for (const r of batch) samples.push({ ts: r.ts, values: r.values, siteId: r.siteId, qc: r.qc ?? 0 })
      }
      const masks = check.run(samples, { from, to })
      const lines: string[] = []
      let checked = 0
      let flagged = 0
      let changed = 0
      for (const s of samples) {
        if (s.ts < from || s.ts >= to) continue
        const mask = masks.get(s.ts) ?? 0
        if (!Number.isSafeInteger(mask) || mask < 0) {
          throw new StorageError('INVALID_QUERY', `quality mask ${mask} for ${deviceId} at ${s.ts} is not a bitmask`)
        }
        checked++
        if (mask !== 0) flagged++
        if (mask === s.qc) continue
        lines.push(qcLine(deviceId, s.siteId, s.ts, mask))
        changed++
      }
      let hours = 0
      for (const state of states) {
        if (!needs(state)) continue
        hours++
        lines.push(deviceHourLine(deviceId, ms(state._time), { checked: num(state.dirty), qcVersion: check.version }))
      }
      await writer.write(lines)
      return { hours, checked, flagged, changed }
    },

    async requireQualityVersion(version): Promise<number> {
      if (!Number.isSafeInteger(version) || version < 1) {
        throw new StorageError('INVALID_QUERY', `a quality rules version is a positive integer, not ${version}`)
      }
      if ((await requiredVersion()) >= version) return 0
      const [row] = await rows(outdatedHoursQuery(bucket, version))
      await writer.write([metaLine({ qcVersion: version })])
      return row === undefined ? 0 : num(row._value)
    },

    async close() {
      closed = true
    },
  }
  return store

  /** A device's readings at one site (undefined = every site) in [from, to), in pages, with qc when asked. */
  async function* readingBatches(
    deviceId: string,
    siteId: string | null | undefined,
    metrics: readonly Metric[],
    withQc: boolean,
    from: number,
    to: number,
  ): AsyncGenerator<(ExportReading & { qc: number | null })[]> {
    let start = from
    // `start < to`: Flux refuses an empty range, and a full page can end at to - 1.
    while (start < to) {
      const page = await rows(
        readingRowsQuery(bucket, { deviceId, siteId, metrics, withQc, from: start, to, limit: EXPORT_BATCH_ROWS }),
      )
      if (page.length === 0) return
      const out = page.map((row) => {
        const values: Partial<Record<Metric, number>> = {}
        for (const m of metrics) {
          const v = row[m]
          if (typeof v === 'number') values[m] = v
        }
        return {
          siteId: str(row.site),
          deviceId,
          ts: ms(row._time),
          values,
          qc: typeof row.qc === 'number' ? row.qc : null,
        }
      })
      yield out
      await nextTurn()
      if (page.length < EXPORT_BATCH_ROWS) return
      start = (out[out.length - 1]?.ts ?? to) + 1
    }
  }

  async function* streamReadings(query: ExportQuery): AsyncGenerator<readonly ExportReading[]> {
    const metrics = exportMetrics(query)
    if (metrics.length === 0 || query.from >= query.to) return
    if (query.siteIds?.length === 0 || query.deviceIds?.length === 0) return
    const pairs = (await rows(pairsQuery(bucket, { ...query, metrics })))
      .map((row) => ({ siteId: str(row.site), deviceId: String(row.device) }))
      .sort((a, b) => comparePair(a.siteId ?? '', a.deviceId, b.siteId ?? '', b.deviceId))
    const resume = query.after
    // Hours checked with rules older than the version asked for count as unchecked, as requireQualityVersion makes
    // them dirty again in the SQLite store (their flags are stale until rechecked).
    const required = await requiredVersion()
    for (const pair of pairs) {
      let from = query.from
      if (resume !== undefined) {
        const order = comparePair(pair.siteId ?? '', pair.deviceId, resume.siteId ?? '', resume.deviceId ?? '')
        if (order < 0) continue
        if (order === 0) from = Math.max(from, resume.ts)
      }
      // Hours not checked (or written since): their readings' qc is null, as in the SQLite store.
      const unchecked = new Set<number>()
      for (const s of await rows(
        deviceHoursQuery(bucket, { deviceId: pair.deviceId, from: hourStart(from), to: query.to }),
      )) {
        const stale = s.checked === undefined || s.checked === null || s.dirty !== s.checked
        if (stale || num(s.qc_version ?? 0) < required) unchecked.add(ms(s._time))
      }
      for await (const batch of readingBatches(pair.deviceId, pair.siteId, metrics, true, from, query.to)) {
        yield batch.map((r) => ({ ...r, siteId: pair.siteId, qc: unchecked.has(hourStart(r.ts)) ? null : (r.qc ?? 0) }))
      }
    }
  }

  async function* streamHourly(query: ExportQuery): AsyncGenerator<readonly ExportHourSums[]> {
    const metrics = exportMetrics(query)
    if (metrics.length === 0 || query.from >= query.to) return
    if (query.siteIds?.length === 0 || query.deviceIds?.length === 0) return
    const fields: string[] = [...metrics]
    if (query.byDevice === true && !fields.includes('rh')) fields.push('rh')
    const from = hourStart(query.from)
    const sites = new Map<string, DeviceHour[]>()
    // One query per call: a site-hour needs all its devices; the result is grouped by site below.
    const hours = await deviceHours({
      fields,
      from,
      to: Math.ceil(query.to / HOUR_MS) * HOUR_MS,
      ...(query.deviceIds === undefined ? {} : { deviceIds: query.deviceIds }),
      ...(query.siteIds === undefined ? {} : { siteIds: query.siteIds }),
    })
    for (const hour of hours.values()) {
      if (hour.siteId === null || hour.t >= query.to) continue
      const list = sites.get(hour.siteId) ?? []
      list.push(hour)
      sites.set(hour.siteId, list)
    }
    const afterSite = query.after?.siteId ?? ''
    const afterHour = query.after?.ts ?? Number.NEGATIVE_INFINITY
    let out: ExportHourSums[] = []
    for (const siteId of [...sites.keys()].sort()) {
      if (siteId < afterSite) continue
      const list = (sites.get(siteId) ?? []).sort((a, b) => a.t - b.t || (a.deviceId < b.deviceId ? -1 : 1))
      if (query.byDevice === true) {
        for (const hour of list) {
          if (siteId === afterSite && hour.t < afterHour) continue
          const rhSums = hour.metrics.get('rh')
          const rh = rhSums !== undefined && rhSums.n > 0 ? rhSums.sum / rhSums.n : undefined
          for (const m of metrics) {
            const s = hour.metrics.get(m)
            if (s === undefined || s.n === 0) continue
            out.push({
              siteId,
              deviceId: hour.deviceId,
              t: hour.t,
              metric: m,
              ...s,
              expected: hour.expected,
              ...(rh === undefined ? {} : { rh }),
            })
          }
          if (out.length >= EXPORT_BATCH_ROWS) {
            yield out
            out = []
            await nextTurn()
          }
        }
      } else {
        const byHour = new Map<number, DeviceHour[]>()
        for (const hour of list) byHour.set(hour.t, [...(byHour.get(hour.t) ?? []), hour])
        for (const [t, devices] of byHour) {
          if (siteId === afterSite && t < afterHour) continue
          for (const m of metrics) {
            const [b] = buckets(devices, m, true)
            if (b === undefined) continue
            out.push({ siteId, t, metric: m, n: b.n, sum: b.sum, min: b.min, max: b.max, expected: b.expected })
          }
          // Per hour, not per site: a site with a year of hours would otherwise be one batch.
          if (out.length >= EXPORT_BATCH_ROWS) {
            yield out
            out = []
            await nextTurn()
          }
        }
      }
    }
    if (out.length > 0) yield out
  }
}

/** Latest per device from the newest point of each (series, field). */
function latestFromRows(list: readonly Row[]): LatestReading[] {
  interface Device {
    ts: number
    siteId: string | null
    receivedAt: number
    values: MetricValues
    metricTs: Partial<Record<Metric, number>>
  }
  const devices = new Map<string, Device>()
  for (const row of list) {
    const deviceId = String(row.device)
    const ts = ms(row._time)
    const field = String(row._field)
    let d = devices.get(deviceId)
    if (d === undefined) {
      d = { ts: Number.NEGATIVE_INFINITY, siteId: null, receivedAt: 0, values: {}, metricTs: {} }
      devices.set(deviceId, d)
    }
    if (field === 'received_at') {
      // The newest reading (over every site the device stood at) names the site.
      if (ts > d.ts) {
        d.ts = ts
        d.siteId = str(row.site)
        d.receivedAt = num(row._value)
      }
      continue
    }
    const m = METRICS.find((x) => x === field)
    if (m === undefined) continue
    const seen = d.metricTs[m]
    if (seen !== undefined && seen >= ts) continue
    d.metricTs[m] = ts
    d.values[m] = num(row._value)
  }
  return [...devices.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([deviceId, d]) => ({
      deviceId,
      siteId: d.siteId,
      ts: d.ts,
      values: d.values,
      metricTs: d.metricTs,
      receivedAt: d.receivedAt,
    }))
}
