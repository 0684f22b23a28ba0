import {
  type AggregateRow,
  aggregateCells,
  createCorrectedHourFolder,
  createDailyFolder,
  createLineFormatter,
  createRawTextWriter,
  DATA_DICTIONARY,
  type ExportReading,
  type ExportRowCells,
  exportColumns,
  exportHeader,
  exportSchemaId,
  hourlyRow,
  METRICS,
  type Metric,
  rawRows,
  regulatoryDayStart,
  type ValueCorrector,
} from '@skolluft/core'
import { createParquetEncoder } from '@skolluft/parquet'
import type { ExportQuery, ReadingStore } from '@skolluft/storage'
import type { ExportAfter, ExportRequest } from './query.ts'

/**
 * The export pipeline: rows from storage in the export's fixed order, then text lines (CSV, NDJSON) or Parquet
 * bytes. Pure apart from the store, so the API and the CLI write identical bytes for the same query.
 */

export interface ExportSources {
  readonly readings: ReadingStore
  /**
   * The corrector of a device (values=corrected): core corrections.ts chain for its model and calibrations.
   * Called once per device and export.
   */
  readonly correctorFor?: (deviceId: string) => ValueCorrector
}

/** What an export produced, filled in as it runs. */
export interface ExportStats {
  rows: number
  /** Correction chains that occur in the rows (values=corrected). */
  readonly corrections: Set<string>
}

export function newExportStats(): ExportStats {
  return { rows: 0, corrections: new Set() }
}

/** Bytes or text of whole rows, and how many. */
export interface ExportChunk {
  readonly data: string | Uint8Array
  readonly rows: number
}

const NO_CORRECTOR: ValueCorrector = () => null

/**
 * Rows per Parquet row group. Encoding a group holds the event loop: ~150–200 ms at 65 536 rows (measured,
 * packages/parquet), ~40 ms at 16 384, which the API's other requests can live with; files grow a little.
 */
export const EXPORT_PARQUET_ROW_GROUP_ROWS = 16_384

/** Position of a row in the export's order, comparable with an ExportAfter. */
function compareToAfter(after: ExportAfter, siteId: string, deviceId: string, ts: number, metric: Metric): number {
  if (siteId !== after.siteId) return siteId < after.siteId ? -1 : 1
  if (deviceId !== after.deviceId) return deviceId < after.deviceId ? -1 : 1
  if (ts !== after.ts) return ts < after.ts ? -1 : 1
  return METRICS.indexOf(metric) - after.metricIndex
}

/** The storage query of a raw export: with RH for humidity corrections, and from the `after` reading on. */
function rawStreamQuery(request: ExportRequest): ExportQuery {
  const { after } = request
  const query = queryWithRh(request)
  if (after === undefined) return query
  return {
    ...query,
    after: { siteId: after.siteId === '' ? null : after.siteId, deviceId: after.deviceId, ts: after.ts },
  }
}

/** The storage query, with RH added for humidity corrections (they need the RH of the same reading or hour). */
function queryWithRh(request: ExportRequest): ExportQuery {
  const { query } = request
  return request.values === 'corrected' && !query.metrics.includes('rh')
    ? { ...query, metrics: [...query.metrics, 'rh'] }
    : query
}

/** Each device's corrector, made once per export (none without `correctorFor`). */
function correctorCache(sources: ExportSources): (deviceId: string) => ValueCorrector {
  const correctors = new Map<string, ValueCorrector>()
  return (deviceId) => {
    let c = correctors.get(deviceId)
    if (c === undefined) {
      c = sources.correctorFor?.(deviceId) ?? NO_CORRECTOR
      correctors.set(deviceId, c)
    }
    return c
  }
}

/** firstMetricOf for a reading that comes before the `after` row: nothing of it is written. */
const SKIP_READING = Number.POSITIVE_INFINITY

/**
 * The first metric (METRICS index) of a reading that a resumed raw export still writes: every metric of a reading
 * after the `after` row's reading, the metrics after its metric of that reading itself, none (SKIP_READING) before.
 */
function firstMetricOf(after: ExportAfter | undefined, reading: ExportReading): number {
  if (after === undefined) return 0
  const site = reading.siteId ?? ''
  if (site !== after.siteId) return site < after.siteId ? SKIP_READING : 0
  if (reading.deviceId !== after.deviceId) return reading.deviceId < after.deviceId ? SKIP_READING : 0
  if (reading.ts !== after.ts) return reading.ts < after.ts ? SKIP_READING : 0
  return after.metricIndex + 1
}

/**
 * Longest text chunk of a raw export, in characters (~64 KB): strings up to this size are allocated in V8's young
 * generation and die there; a storage batch of readings with all six metrics would make ~500 KB strings, which go
 * to the large-object space and wait for a full collection (bench/export.ts header).
 */
const MAX_TEXT_CHUNK_CHARS = 65_536

/** Raw text rows straight from the readings (core createRawTextWriter): the same bytes as exportRows + a line formatter. */
async function* rawTextChunks(
  sources: ExportSources,
  request: ExportRequest,
  format: Exclude<ExportRequest['format'], 'parquet'>,
  stats: ExportStats,
): AsyncGenerator<ExportChunk> {
  const writer = createRawTextWriter(format, request.schema, request.query.metrics)
  const corrected = request.values === 'corrected'
  const correctorOf = correctorCache(sources)
  const onCorrection = (chain: string) => {
    stats.corrections.add(chain)
  }
  let text = ''
  let before = 0
  const take = (): ExportChunk => {
    const chunk = { data: text, rows: writer.rows - before }
    stats.rows += chunk.rows
    before = writer.rows
    text = ''
    return chunk
  }
  for await (const batch of sources.readings.streamReadings(rawStreamQuery(request))) {
    for (const reading of batch) {
      const first = firstMetricOf(request.after, reading)
      if (first === SKIP_READING) continue
      text += writer.lines(reading, corrected ? correctorOf(reading.deviceId) : undefined, first, onCorrection)
      // Readings with every metric make six rows each: cut the text before it grows into V8's large-object space.
      if (text.length >= MAX_TEXT_CHUNK_CHARS) yield take()
    }
    if (text.length > 0) yield take()
  }
}

/**
 * The rows of an export in batches (one storage batch each), cells in the schema's columns with the time as epoch
 * ms. With `after`, storage starts at the row's reading (or hour) and rows up to and including it are dropped.
 */
export async function* exportRows(
  sources: ExportSources,
  request: ExportRequest,
  stats: ExportStats = newExportStats(),
): AsyncGenerator<ExportRowCells[]> {
  const { resolution, schema, query, after } = request
  const corrected = request.values === 'corrected'
  const correctorOf = correctorCache(sources)
  const withRh = queryWithRh(request)

  if (resolution === 'raw') {
    for await (const batch of sources.readings.streamReadings(rawStreamQuery(request))) {
      const out: ExportRowCells[] = []
      for (const reading of batch) {
        const first = firstMetricOf(after, reading)
        if (first === SKIP_READING) continue
        const corrector = corrected ? correctorOf(reading.deviceId) : undefined
        for (const cells of rawRows(reading, query.metrics, schema, corrector)) {
          if (METRICS.indexOf(cells[3] as Metric) < first) continue
          if (corrected) stats.corrections.add(String(cells[9]))
          out.push(cells)
        }
      }
      stats.rows += out.length
      if (out.length > 0) yield out
    }
    return
  }

  // Days from the one containing `from` (as the series endpoint's 1d); hours overlapping [from, to).
  const daily = resolution === 'daily'
  let hourQuery: ExportQuery = daily ? { ...withRh, from: regulatoryDayStart(withRh.from) } : withRh
  if (after !== undefined) hourQuery = { ...hourQuery, after: { siteId: after.siteId, deviceId: null, ts: after.ts } }
  const days = daily ? createDailyFolder(query.metrics) : undefined
  const hours = corrected ? createCorrectedHourFolder(query.metrics, correctorOf) : undefined
  const emit = (aggregates: readonly AggregateRow[]): ExportRowCells[] => {
    const out: ExportRowCells[] = []
    for (const row of aggregates) {
      if (after !== undefined && compareToAfter(after, row.siteId, '', row.t, row.metric) <= 0) continue
      if (row.corrected !== undefined) {
        for (const chain of row.corrected.correction.split(';')) stats.corrections.add(chain)
      }
      out.push(aggregateCells(row, schema))
    }
    stats.rows += out.length
    return out
  }
  const toDays = (rows: readonly AggregateRow[]) => (days === undefined ? rows : rows.flatMap((r) => days.push(r)))
  const stream = sources.readings.streamHourly(corrected ? { ...hourQuery, byDevice: true } : hourQuery)
  for await (const batch of stream) {
    const hourly =
      hours === undefined
        ? batch.filter((h) => query.metrics.includes(h.metric)).map(hourlyRow)
        : batch.flatMap((h) => hours.push(h))
    const out = emit(toDays(hourly))
    if (out.length > 0) yield out
  }
  const tail = emit([...toDays(hours?.end() ?? []), ...(days?.end() ?? [])])
  if (tail.length > 0) yield tail
}

/**
 * The export as chunks to write: text (CSV with its header first, NDJSON) or Parquet bytes (a row group at a
 * time, then the footer). `createdBy` names the software in Parquet files.
 */
export async function* exportChunks(
  sources: ExportSources,
  request: ExportRequest,
  options: { readonly createdBy: string; readonly stats?: ExportStats },
): AsyncGenerator<ExportChunk> {
  const stats = options.stats ?? newExportStats()
  const columns = exportColumns(request.schema, request.resolution)
  if (request.format === 'parquet') {
    const encoder = createParquetEncoder({
      columns: columns.map((name) => ({ name, type: DATA_DICTIONARY[name].type })),
      createdBy: options.createdBy,
      rowGroupRows: EXPORT_PARQUET_ROW_GROUP_ROWS,
      keyValue: {
        'skolluft.schema': exportSchemaId(request.schema),
        'skolluft.resolution': request.resolution,
        'skolluft.values': request.values,
        'skolluft.columns': columns.join(','),
      },
    })
    let pending = 0
    for await (const batch of exportRows(sources, request, stats)) {
      pending += batch.length
      const bytes = encoder.push(batch)
      if (bytes !== undefined) {
        yield { data: bytes, rows: pending }
        pending = 0
      }
    }
    yield { data: encoder.end(), rows: pending }
    return
  }
  // A resumed text export continues a file that already has its header.
  const header = request.after === undefined ? exportHeader(request.format, request.resolution, request.schema) : ''
  if (header !== '') yield { data: header, rows: 0 }
  if (request.resolution === 'raw') {
    yield* rawTextChunks(sources, request, request.format, stats)
    return
  }
  // Aggregates: few rows, the cell path.
  const line = createLineFormatter(request.format, request.resolution, request.schema)
  for await (const batch of exportRows(sources, request, stats)) {
    let text = ''
    for (const cells of batch) text += line(cells)
    yield { data: text, rows: batch.length }
  }
}
