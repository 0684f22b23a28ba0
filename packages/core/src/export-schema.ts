import { DAILY_MIN_VALID_HOURS, DAY_MS, HOUR_MS, HOURLY_MIN_COVERAGE, regulatoryDayStart } from './aggregation.ts'
import { METRIC_INFO, METRICS, type Metric } from './metrics.ts'
import { flagsOf, metricByte, qcLevel, READING_FLAGS } from './reading-qc.ts'

/**
 * Bulk export schemas (issue 5; docs/export.md is checked against DATA_DICTIONARY).
 *
 * Long ("tidy") format: one row per value, so the columns never depend on which metrics a query names. The
 * column order is pinned by a test and never changes within a schema version; a change of columns is a new
 * schema id. Rows come in a fixed order (raw: site, device, time, metric; hourly/daily: site, time, metric;
 * metrics in METRICS order), so the same query over the same data gives the same bytes.
 *
 * - `skolluft-export/1`: values and plain aggregates.
 * - `skolluft-export/2`: the v1 columns in the same order, then quality flags (raw) and corrected values with
 *   the name and version of the correction. A v1 request returns exactly what it returned before v2 existed.
 *
 * - time: ISO 8601 UTC with milliseconds (`YYYY-MM-DDTHH:MM:SS.sssZ`); for aggregates the window start.
 * - numbers as JavaScript prints them (shortest string that reads back to the same double); empty = no value.
 * - CSV: RFC 4180, UTF-8 without BOM, CRLF line ends, one header row. NDJSON: one JSON object per line (LF),
 *   the same keys in the same order, null where CSV is empty. Parquet: typed columns (@skolluft/parquet).
 */
export const EXPORT_SCHEMA_VERSIONS = [1, 2] as const
export type ExportSchemaVersion = (typeof EXPORT_SCHEMA_VERSIONS)[number]
export const LATEST_EXPORT_SCHEMA: ExportSchemaVersion = 2

export function exportSchemaId(version: ExportSchemaVersion): string {
  return `skolluft-export/${version}`
}

/** The first schema's id (kept for readers that pinned it). */
export const EXPORT_SCHEMA_ID = exportSchemaId(1)

export const EXPORT_RESOLUTIONS = ['raw', 'hourly', 'daily'] as const
export type ExportResolution = (typeof EXPORT_RESOLUTIONS)[number]

export const EXPORT_FORMATS = ['csv', 'ndjson', 'parquet'] as const
export type ExportFormat = (typeof EXPORT_FORMATS)[number]

/** Which values an export carries beside the raw ones: none, or the corrected value and its correction. */
export const EXPORT_VALUES = ['raw', 'corrected'] as const
export type ExportValues = (typeof EXPORT_VALUES)[number]

export const RAW_EXPORT_COLUMNS = ['time', 'site_id', 'device_id', 'metric', 'value', 'unit'] as const
export const AGGREGATE_EXPORT_COLUMNS = [
  'time',
  'site_id',
  'metric',
  'mean',
  'min',
  'max',
  'n',
  'expected',
  'coverage',
  'valid',
] as const
/** v2 raw: the v1 columns, then quality and correction. */
export const RAW_EXPORT_COLUMNS_V2 = [...RAW_EXPORT_COLUMNS, 'qc', 'flags', 'corrected', 'correction'] as const
/** v2 hourly/daily: the v1 columns, then the corrected mean and its correction. */
export const AGGREGATE_EXPORT_COLUMNS_V2 = [...AGGREGATE_EXPORT_COLUMNS, 'corrected_mean', 'correction'] as const

export type ExportColumn = (typeof RAW_EXPORT_COLUMNS_V2)[number] | (typeof AGGREGATE_EXPORT_COLUMNS_V2)[number]

/** Schema v1 columns per resolution. */
export const EXPORT_COLUMNS: Readonly<Record<ExportResolution, readonly ExportColumn[]>> = {
  raw: RAW_EXPORT_COLUMNS,
  hourly: AGGREGATE_EXPORT_COLUMNS,
  daily: AGGREGATE_EXPORT_COLUMNS,
}

export const EXPORT_COLUMNS_BY_SCHEMA: Readonly<
  Record<ExportSchemaVersion, Readonly<Record<ExportResolution, readonly ExportColumn[]>>>
> = {
  1: EXPORT_COLUMNS,
  2: { raw: RAW_EXPORT_COLUMNS_V2, hourly: AGGREGATE_EXPORT_COLUMNS_V2, daily: AGGREGATE_EXPORT_COLUMNS_V2 },
}

export function exportColumns(schema: ExportSchemaVersion, resolution: ExportResolution): readonly ExportColumn[] {
  return EXPORT_COLUMNS_BY_SCHEMA[schema][resolution]
}

/** MIME types of the formats; `header=present` is RFC 4180 §3's optional parameter. */
export const EXPORT_CONTENT_TYPES: Readonly<Record<ExportFormat, string>> = {
  csv: 'text/csv; charset=utf-8; header=present',
  ndjson: 'application/x-ndjson',
  // Registered with IANA in 2024.
  parquet: 'application/vnd.apache.parquet',
}

/** One value of a row: empty in CSV / null in NDJSON when null. */
export type ExportCell = string | number | boolean | null

export interface DictionaryEntry {
  readonly type: 'string' | 'number' | 'integer' | 'boolean' | 'datetime'
  readonly unit: string
  readonly meaning: string
  readonly example: string
  /** Resolutions that have the column. */
  readonly in: readonly ExportResolution[]
  /** The first schema version with the column. */
  readonly since: ExportSchemaVersion
}

const UNITS = [...new Set(METRICS.map((m) => METRIC_INFO[m].unit))].join(', ')

/** What each column means; docs/export.md shows it (export-schema.test.ts checks the doc matches). */
export const DATA_DICTIONARY: Readonly<Record<ExportColumn, DictionaryEntry>> = {
  time: {
    type: 'datetime',
    unit: 'UTC',
    meaning:
      'raw: measurement time as the device reported it; hourly: start of the UTC hour; daily: start of the calendar day in fixed UTC+1 (23:00 UTC the evening before)',
    example: '2026-01-12T07:00:00.000Z',
    in: ['raw', 'hourly', 'daily'],
    since: 1,
  },
  site_id: {
    type: 'string',
    unit: '',
    meaning:
      'site where the device stood at `time` (placement history); raw rows of a device that stood nowhere have it empty',
    example: 'lund-fladen',
    in: ['raw', 'hourly', 'daily'],
    since: 1,
  },
  device_id: {
    type: 'string',
    unit: '',
    meaning: 'the sensor device that measured the value',
    example: 'sim-0001',
    in: ['raw'],
    since: 1,
  },
  metric: {
    type: 'string',
    unit: '',
    meaning: `quantity: one of ${METRICS.join(', ')} (PM1, PM2.5, PM10, NO2, air temperature, relative humidity)`,
    example: 'pm25',
    in: ['raw', 'hourly', 'daily'],
    since: 1,
  },
  value: {
    type: 'number',
    unit: 'see `unit`',
    meaning: 'the value as received and stored, never modified (no correction, no rounding)',
    example: '12.3',
    in: ['raw'],
    since: 1,
  },
  unit: {
    type: 'string',
    unit: '',
    meaning: `unit of \`value\`: ${UNITS}`,
    example: 'µg/m³',
    in: ['raw'],
    since: 1,
  },
  mean: {
    type: 'number',
    unit: 'unit of the metric',
    meaning:
      'hourly: mean of the readings in the hour; daily: mean of the valid hourly means; empty when a day has no valid hour',
    example: '8.75',
    in: ['hourly', 'daily'],
    since: 1,
  },
  min: {
    type: 'number',
    unit: 'unit of the metric',
    meaning: 'smallest reading in the window (over all hours of a day, valid or not)',
    example: '3.1',
    in: ['hourly', 'daily'],
    since: 1,
  },
  max: {
    type: 'number',
    unit: 'unit of the metric',
    meaning: 'largest reading in the window (over all hours of a day, valid or not)',
    example: '21',
    in: ['hourly', 'daily'],
    since: 1,
  },
  n: {
    type: 'integer',
    unit: 'count',
    meaning:
      'hourly: readings in the hour, over all devices at the site; daily: valid hourly means in the day (hours with at least 75 % of their expected readings)',
    example: '60',
    in: ['hourly', 'daily'],
    since: 1,
  },
  expected: {
    type: 'number',
    unit: 'count',
    meaning:
      'hourly: readings the devices at the site were expected to send in the hour (3600 s / interval, added over devices; not a whole number when the interval does not divide an hour, e.g. 24.324324324324323 at 148 s); daily: 24 hours',
    example: '60',
    in: ['hourly', 'daily'],
    since: 1,
  },
  coverage: {
    type: 'number',
    unit: 'fraction 0–1',
    meaning: 'min(1, n / expected)',
    example: '1',
    in: ['hourly', 'daily'],
    since: 1,
  },
  valid: {
    type: 'boolean',
    unit: '',
    meaning: `hourly: coverage ≥ ${HOURLY_MIN_COVERAGE}; daily: at least ${DAILY_MIN_VALID_HOURS} valid hours (2008/50/EC Annex VII, 2024/2881 Annex V)`,
    example: 'true',
    in: ['hourly', 'daily'],
    since: 1,
  },
  qc: {
    type: 'string',
    unit: '',
    meaning:
      'quality of the reading for this metric: ok (checked, no flag), suspect, invalid (the worst level of its flags, docs/quality-flags.md), or unchecked (its hour has not been checked yet: it ended less than a few minutes ago, or data arrived late)',
    example: 'ok',
    in: ['raw'],
    since: 2,
  },
  flags: {
    type: 'string',
    unit: '',
    meaning: `quality flags of the reading for this metric, joined by \`;\` in the order ${READING_FLAGS.join(', ')}; empty when there is none or the reading is unchecked`,
    example: 'spike;high_humidity',
    in: ['raw'],
    since: 2,
  },
  corrected: {
    type: 'number',
    unit: 'see `unit`',
    meaning:
      'with values=corrected: the value after the corrections named in `correction` (equal to `value` when none applies); empty with values=raw',
    example: '9.81',
    in: ['raw'],
    since: 2,
  },
  corrected_mean: {
    type: 'number',
    unit: 'unit of the metric',
    meaning:
      "with values=corrected: hourly, the mean of the corrected hourly means of the site's devices weighted by their readings (each device-hour corrected with its own hourly mean RH); daily, the mean of the corrected means of the valid hours; empty with values=raw or when `mean` is empty",
    example: '7.9',
    in: ['hourly', 'daily'],
    since: 2,
  },
  correction: {
    type: 'string',
    unit: '',
    meaning:
      'with values=corrected: the corrections applied, each as name@version, a chain joined by `+` (docs/corrections.md); `none` when none applies; for aggregates over devices or hours with different chains, the distinct chains joined by `;`; empty with values=raw',
    example: 'rh-hackair@1+cal-3@1',
    in: ['raw', 'hourly', 'daily'],
    since: 2,
  },
}

/** One stored reading (all its metrics), as storage streams them for a raw export. */
export interface ExportReading {
  readonly siteId: string | null
  readonly deviceId: string
  /** Epoch ms UTC. */
  readonly ts: number
  readonly values: Partial<Record<Metric, number>>
  /**
   * Quality flags of the reading (reading-qc.ts bitmask, 8 bits per metric): null while its device-hour has not
   * been checked yet, 0 when checked and clean. Absent = not asked for.
   */
  readonly qc?: number | null
}

/** One site-hour's (or, with `deviceId`, one device-hour's) sums for one metric, as storage streams them. */
export interface ExportHourSums {
  readonly siteId: string
  /** Set when storage streams device-hours (for corrections); absent for whole sites. */
  readonly deviceId?: string
  /** Hour start, epoch ms UTC. */
  readonly t: number
  readonly metric: Metric
  readonly n: number
  readonly sum: number
  readonly min: number
  readonly max: number
  readonly expected: number
  /** Mean relative humidity of the same device-hour (device-hours only), for humidity corrections. */
  readonly rh?: number
}

/**
 * A correction for one device: the corrected value and the chain that produced it (`name@version`, joined by
 * `+`), or null when no correction applies. `rh` is the RAW relative humidity of the same reading (or hour).
 */
export type ValueCorrector = (
  metric: Metric,
  ts: number,
  value: number,
  rh: number | undefined,
) => { readonly value: number; readonly correction: string } | null

/** The `correction` cell when no correction applies to a value. */
export const NO_CORRECTION = 'none'

/** Cells of one aggregate row in AGGREGATE_EXPORT_COLUMNS(_V2) order (`time` still epoch ms). */
export interface AggregateRow {
  readonly siteId: string
  readonly t: number
  readonly metric: Metric
  readonly mean: number | null
  readonly min: number
  readonly max: number
  readonly n: number
  readonly expected: number
  readonly coverage: number
  readonly valid: boolean
  /** With values=corrected: the corrected mean and the distinct correction chains (`;`-joined). */
  readonly corrected?: { readonly mean: number | null; readonly correction: string }
}

/**
 * One export row's cells in column order; the first cell is the time as epoch ms (the text formats print it
 * as ISO 8601, Parquet stores it as a timestamp).
 */
export type ExportRowCells = ExportCell[]

/** Quality cells (`qc`, `flags`) of one metric of a reading: unchecked when its hour was not checked yet. */
const UNCHECKED_CELLS: readonly [string, null] = ['unchecked', null]
const OK_CELLS: readonly [string, null] = ['ok', null]

export function qualityCells(qc: number | null | undefined, metric: Metric): readonly [string, string | null] {
  if (qc === null || qc === undefined) return UNCHECKED_CELLS
  if (qc === 0 || metricByte(qc, metric) === 0) return OK_CELLS
  const flags = flagsOf(qc, metric)
  return [qcLevel(flags), flags.length === 0 ? null : flags.join(';')]
}

/**
 * The raw rows of one reading, in the schema's raw columns; metrics in METRICS order, `metrics` only. With a
 * corrector (values=corrected) v2 rows carry the corrected value and its correction chain; the RH of the same
 * reading feeds humidity corrections even when `rh` is not among `metrics`.
 */
export function rawRows(
  reading: ExportReading,
  metrics: readonly Metric[],
  schema: ExportSchemaVersion = 1,
  corrector?: ValueCorrector,
): ExportRowCells[] {
  const rows: ExportRowCells[] = []
  for (const m of metrics) {
    const value = reading.values[m]
    if (value === undefined) continue
    const row: ExportRowCells = [reading.ts, reading.siteId, reading.deviceId, m, value, METRIC_INFO[m].unit]
    if (schema >= 2) {
      const [qc, flags] = qualityCells(reading.qc, m)
      row.push(qc, flags)
      if (corrector === undefined) row.push(null, null)
      else {
        const corrected = corrector(m, reading.ts, value, reading.values.rh)
        row.push(corrected?.value ?? value, corrected?.correction ?? NO_CORRECTION)
      }
    }
    rows.push(row)
  }
  return rows
}

/** An hourly row (same arithmetic as core hourPoint). */
export function hourlyRow(hour: ExportHourSums): AggregateRow {
  const coverage = hour.expected > 0 ? Math.min(1, hour.n / hour.expected) : 0
  return {
    siteId: hour.siteId,
    t: hour.t,
    metric: hour.metric,
    mean: hour.sum / hour.n,
    min: hour.min,
    max: hour.max,
    n: hour.n,
    expected: hour.expected,
    coverage,
    valid: coverage >= HOURLY_MIN_COVERAGE,
  }
}

/** Distinct chains in first-seen order, joined by `;`. */
function joinChains(chains: Iterable<string>): string {
  return [...new Set(chains)].join(';')
}

/**
 * Folds device-hours ordered by (site, hour, device) into corrected site-hour rows ordered by (site, hour,
 * metric), one site-hour in memory: each device-hour mean is corrected with that device's corrector and its
 * hourly mean RH, and the site's corrected mean weights the devices by their readings (as the plain mean does).
 */
export function createCorrectedHourFolder(
  metrics: readonly Metric[],
  correctorFor: (deviceId: string) => ValueCorrector,
): { push(hour: ExportHourSums): AggregateRow[]; end(): AggregateRow[] } {
  const order = METRICS.filter((m) => metrics.includes(m))
  let site: string | null = null
  let t = Number.NaN
  let parts = new Map<Metric, ExportHourSums[]>()

  function flush(): AggregateRow[] {
    const out: AggregateRow[] = []
    if (site === null) return out
    for (const m of order) {
      const hours = parts.get(m)
      if (hours === undefined || hours.length === 0) continue
      let n = 0
      let sum = 0
      let min = Number.POSITIVE_INFINITY
      let max = Number.NEGATIVE_INFINITY
      let expected = 0
      let correctedSum = 0
      const chains: string[] = []
      for (const h of hours) {
        n += h.n
        sum += h.sum
        min = Math.min(min, h.min)
        max = Math.max(max, h.max)
        expected += h.expected
        const mean = h.sum / h.n
        const corrected = correctorFor(h.deviceId ?? '')(m, h.t, mean, h.rh)
        correctedSum += (corrected?.value ?? mean) * h.n
        chains.push(corrected?.correction ?? NO_CORRECTION)
      }
      const row = hourlyRow({ siteId: site, t, metric: m, n, sum, min, max, expected })
      out.push({ ...row, corrected: { mean: correctedSum / n, correction: joinChains(chains) } })
    }
    parts = new Map()
    return out
  }

  return {
    push(hour) {
      const out = hour.siteId !== site || hour.t !== t ? flush() : []
      site = hour.siteId
      t = hour.t
      if (hour.n <= 0) return out
      const list = parts.get(hour.metric)
      if (list === undefined) parts.set(hour.metric, [hour])
      else list.push(hour)
      return out
    },
    end() {
      const out = flush()
      site = null
      return out
    },
  }
}

/** Hours in a regulatory (fixed UTC+1) day. */
export const HOURS_PER_DAY = 24

/**
 * Folds hourly rows ordered by (site, hour) into daily rows ordered by (site, day, metric), keeping only one day
 * per site in memory: `push` returns the rows of days that are complete, `end` the rest. The daily mean is the
 * mean of the valid hourly means (as core dailyPoints); n counts valid hours, expected is 24. Corrected hourly
 * means fold the same way into a corrected daily mean.
 */
export function createDailyFolder(metrics: readonly Metric[]): {
  push(hour: AggregateRow): AggregateRow[]
  end(): AggregateRow[]
} {
  interface Day {
    min: number
    max: number
    validHours: number
    sumOfValidMeans: number
    sumOfValidCorrected: number
    chains: string[] | undefined
  }
  let site: string | null = null
  let dayStart = Number.NaN
  let days = new Map<Metric, Day>()
  const order = METRICS.filter((m) => metrics.includes(m))

  function flush(): AggregateRow[] {
    const out: AggregateRow[] = []
    if (site === null) return out
    for (const m of order) {
      const day = days.get(m)
      if (day === undefined) continue
      const mean = day.validHours > 0 ? day.sumOfValidMeans / day.validHours : null
      const row: AggregateRow = {
        siteId: site,
        t: dayStart,
        metric: m,
        mean,
        min: day.min,
        max: day.max,
        n: day.validHours,
        expected: HOURS_PER_DAY,
        coverage: Math.min(1, day.validHours / HOURS_PER_DAY),
        valid: day.validHours >= DAILY_MIN_VALID_HOURS,
      }
      out.push(
        day.chains === undefined
          ? row
          : {
              ...row,
              corrected: {
                mean: mean === null ? null : day.sumOfValidCorrected / day.validHours,
                correction: day.chains.length === 0 ? NO_CORRECTION : joinChains(day.chains),
              },
            },
      )
    }
    days = new Map()
    return out
  }

  return {
    push(hour) {
      const start = regulatoryDayStart(hour.t)
      const out = hour.siteId !== site || start !== dayStart ? flush() : []
      site = hour.siteId
      dayStart = start
      if (hour.n <= 0) return out
      let day = days.get(hour.metric)
      if (day === undefined) {
        day = {
          min: hour.min,
          max: hour.max,
          validHours: 0,
          sumOfValidMeans: 0,
          sumOfValidCorrected: 0,
          chains: hour.corrected === undefined ? undefined : [],
        }
        days.set(hour.metric, day)
      }
      day.min = Math.min(day.min, hour.min)
      day.max = Math.max(day.max, hour.max)
      if (hour.valid && hour.mean !== null) {
        day.validHours += 1
        day.sumOfValidMeans += hour.mean
        if (hour.corrected !== undefined && day.chains !== undefined) {
          day.sumOfValidCorrected += hour.corrected.mean ?? hour.mean
          day.chains.push(...hour.corrected.correction.split(';'))
        }
      }
      return out
    },
    end() {
      const out = flush()
      site = null
      return out
    },
  }
}

/** The cells of an aggregate row in the schema's columns (`time` as epoch ms). */
export function aggregateCells(row: AggregateRow, schema: ExportSchemaVersion = 1): ExportRowCells {
  const cells: ExportRowCells = [
    row.t,
    row.siteId,
    row.metric,
    row.mean,
    row.min,
    row.max,
    row.n,
    row.expected,
    row.coverage,
    row.valid,
  ]
  if (schema >= 2) cells.push(row.corrected?.mean ?? null, row.corrected?.correction ?? null)
  return cells
}

/** ISO 8601 UTC with milliseconds. */
export function isoTime(ms: number): string {
  return new Date(ms).toISOString()
}

/**
 * ISO 8601 UTC with milliseconds, as toISOString, formatting the date once per UTC day and the time of day by
 * arithmetic: toISOString was a third of the time of a raw CSV export (measured, 200 000 rows).
 */
export function createIsoTimeFormatter(): (ms: number) => string {
  let day = Number.NaN
  let prefix = ''
  return (ms) => {
    const d = Math.floor(ms / DAY_MS)
    if (d !== day) {
      day = d
      const iso = new Date(d * DAY_MS).toISOString()
      prefix = iso.slice(0, iso.indexOf('T') + 1)
    }
    let rest = ms - d * DAY_MS
    const h = Math.floor(rest / HOUR_MS)
    rest -= h * HOUR_MS
    const m = Math.floor(rest / 60_000)
    rest -= m * 60_000
    const sec = Math.floor(rest / 1000)
    const milli = rest - sec * 1000
    return `${prefix}${pad2(h)}:${pad2(m)}:${pad2(sec)}.${milli < 10 ? '00' : milli < 100 ? '0' : ''}${milli}Z`
  }
}

function pad2(n: number): string {
  return n < 10 ? `0${n}` : `${n}`
}

/** RFC 4180 §2: a field with a comma, a double quote, CR or LF is quoted, its quotes doubled. */
function csvField(cell: ExportCell): string {
  if (cell === null) return ''
  if (typeof cell !== 'string') return String(cell)
  return /[",\r\n]/.test(cell) ? `"${cell.replaceAll('"', '""')}"` : cell
}

/** One CSV record with its CRLF (RFC 4180 §2.1). */
export function csvLine(cells: readonly ExportCell[]): string {
  let line = ''
  for (let i = 0; i < cells.length; i++) {
    if (i > 0) line += ','
    line += csvField(cells[i] ?? null)
  }
  return `${line}\r\n`
}

/** Characters JSON must escape in a string (RFC 8259 §7); ids, metrics, units and times have none. */
const JSON_ESCAPE = /["\\\p{Cc}]/u

/** One NDJSON line (LF): an object with `columns` as keys, in order; null for no value. */
export function ndjsonLine(columns: readonly ExportColumn[], cells: readonly ExportCell[]): string {
  return createNdjsonLine(columns)(cells)
}

/** `ndjsonLine` for one column list, with the keys prepared once (half the time of JSON.stringify per row). */
function createNdjsonLine(columns: readonly ExportColumn[]): (cells: readonly ExportCell[]) => string {
  const keys = columns.map((c, i) => `${i === 0 ? '{' : ','}"${c}":`)
  return (cells) => {
    let line = ''
    for (let i = 0; i < keys.length; i++) {
      const cell = cells[i] ?? null
      line += keys[i]
      if (typeof cell !== 'string') line += String(cell)
      else line += JSON_ESCAPE.test(cell) ? JSON.stringify(cell) : `"${cell}"`
    }
    return `${line}}\n`
  }
}

/** A string cell as NDJSON writes it (null for no value). */
function jsonString(cell: string | null): string {
  if (cell === null) return 'null'
  return JSON_ESCAPE.test(cell) ? JSON.stringify(cell) : `"${cell}"`
}

/**
 * Raw rows straight from readings to text: the same bytes as rawRows + createLineFormatter, without an array per
 * row. The parts that repeat (a reading's time, site and device; each metric's name and unit) are formatted once per
 * reading or once per export; a raw export is mostly this loop (measured: schema 2 CSV went from ~130 000 to
 * ~250 000 rows/s in-process under a 2 MB young generation). `lines` returns the text of one reading's rows for the
 * metrics whose METRICS index is at least `firstMetric` (resume), counting them in `rows`, and hands each correction
 * chain it writes to `onCorrection`.
 */
export function createRawTextWriter(
  format: Exclude<ExportFormat, 'parquet'>,
  schema: ExportSchemaVersion,
  metrics: readonly Metric[],
): {
  lines(
    reading: ExportReading,
    corrector: ValueCorrector | undefined,
    firstMetric: number,
    onCorrection: (chain: string) => void,
  ): string
  readonly rows: number
} {
  const iso = createIsoTimeFormatter()
  const csv = format === 'csv'
  const order = METRICS.filter((m) => metrics.includes(m))
  const index = order.map((m) => METRICS.indexOf(m))
  // Per metric: the text between the reading's prefix and the value, and after the value.
  const beforeValue = order.map((m) => (csv ? `${csvField(m)},` : `,"metric":${jsonString(m)},"value":`))
  const unit = order.map((m) =>
    csv ? `,${csvField(METRIC_INFO[m].unit)}` : `,"unit":${jsonString(METRIC_INFO[m].unit)}`,
  )
  const end = csv ? '\r\n' : '}\n'
  let rows = 0
  let lastSite: string | null | undefined
  let siteText = ''
  let lastDevice: string | undefined
  let deviceText = ''
  return {
    get rows() {
      return rows
    },
    lines(reading, corrector, firstMetric, onCorrection) {
      if (reading.siteId !== lastSite) {
        lastSite = reading.siteId
        siteText = csv ? csvField(reading.siteId) : jsonString(reading.siteId)
      }
      if (reading.deviceId !== lastDevice) {
        lastDevice = reading.deviceId
        deviceText = csv ? csvField(reading.deviceId) : jsonString(reading.deviceId)
      }
      const time = iso(reading.ts)
      const prefix = csv
        ? `${time},${siteText},${deviceText},`
        : `{"time":"${time}","site_id":${siteText},"device_id":${deviceText}`
      let text = ''
      for (let i = 0; i < order.length; i++) {
        const m = order[i] as Metric
        const value = reading.values[m]
        if (value === undefined || (index[i] ?? 0) < firstMetric) continue
        text += `${prefix}${beforeValue[i]}${String(value)}${unit[i]}`
        if (schema >= 2) {
          const [qc, flags] = qualityCells(reading.qc, m)
          let correctedText = csv ? ',' : ',"corrected":null,"correction":null'
          if (corrector !== undefined) {
            const c = corrector(m, reading.ts, value, reading.values.rh)
            const chain = c?.correction ?? NO_CORRECTION
            onCorrection(chain)
            const v = String(c?.value ?? value)
            correctedText = csv ? `${v},${csvField(chain)}` : `,"corrected":${v},"correction":${jsonString(chain)}`
          }
          text += csv
            ? `,${qc},${flags === null ? '' : csvField(flags)},${correctedText}`
            : `,"qc":"${qc}","flags":${jsonString(flags)}${correctedText}`
        }
        text += end
        rows++
      }
      return text
    },
  }
}

/** The header line of a text file (CSV only; NDJSON and Parquet have none). */
export function exportHeader(
  format: ExportFormat,
  resolution: ExportResolution,
  schema: ExportSchemaVersion = 1,
): string {
  return format === 'csv' ? csvLine(exportColumns(schema, resolution)) : ''
}

/**
 * A text formatter for one resolution, format and schema: row cells in (time as epoch ms), one line out with the
 * time printed as ISO 8601.
 */
export function createLineFormatter(
  format: Exclude<ExportFormat, 'parquet'>,
  resolution: ExportResolution,
  schema: ExportSchemaVersion = 1,
): (cells: ExportRowCells) => string {
  const iso = createIsoTimeFormatter()
  const line = format === 'csv' ? csvLine : createNdjsonLine(exportColumns(schema, resolution))
  return (cells) => {
    const time = cells[0]
    cells[0] = typeof time === 'number' ? iso(time) : (time ?? null)
    return line(cells)
  }
}

/** The data dictionary as a Markdown table (pasted into docs/export.md; a test keeps them equal). */
export function dataDictionaryMarkdown(): string {
  const lines = [
    '| column | since | in | type | unit | meaning | example |',
    '| --- | --- | --- | --- | --- | --- | --- |',
  ]
  const columns = [...new Set<ExportColumn>([...RAW_EXPORT_COLUMNS_V2, ...AGGREGATE_EXPORT_COLUMNS_V2])]
  for (const c of columns) {
    const e = DATA_DICTIONARY[c]
    lines.push(
      `| \`${c}\` | ${e.since} | ${e.in.join(', ')} | ${e.type} | ${e.unit} | ${e.meaning} | \`${e.example}\` |`,
    )
  }
  return lines.join('\n')
}
