import { DAILY_MIN_VALID_HOURS, DAY_MS, HOUR_MS, HOURLY_MIN_COVERAGE, regulatoryDayStart } from './aggregation.ts'
import { METRIC_INFO, METRICS, type Metric } from './metrics.ts'

/**
 * Bulk export, schema v1 (`skolluft-export/1`, issue 5; docs/export.md is generated from DATA_DICTIONARY).
 *
 * Long ("tidy") format: one row per value, so the columns never depend on which metrics a query names. The
 * column order is pinned by a test and never changes within a schema version; a change of columns is a new
 * schema id. Rows come in a fixed order (raw: site, device, time, metric; hourly/daily: site, time, metric;
 * metrics in METRICS order), so the same query over the same data gives the same bytes.
 *
 * - time: ISO 8601 UTC with milliseconds (`YYYY-MM-DDTHH:MM:SS.sssZ`); for aggregates the window start.
 * - numbers as JavaScript prints them (shortest string that reads back to the same double); empty = no value.
 * - CSV: RFC 4180, UTF-8 without BOM, CRLF line ends, one header row. NDJSON: one JSON object per line (LF),
 *   the same keys in the same order, null where CSV is empty.
 * Quality flags and corrections are planned for schema v2.
 */
export const EXPORT_SCHEMA_ID = 'skolluft-export/1'

export const EXPORT_RESOLUTIONS = ['raw', 'hourly', 'daily'] as const
export type ExportResolution = (typeof EXPORT_RESOLUTIONS)[number]

export const EXPORT_FORMATS = ['csv', 'ndjson'] as const
export type ExportFormat = (typeof EXPORT_FORMATS)[number]

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

export type ExportColumn = (typeof RAW_EXPORT_COLUMNS)[number] | (typeof AGGREGATE_EXPORT_COLUMNS)[number]

export const EXPORT_COLUMNS: Readonly<Record<ExportResolution, readonly ExportColumn[]>> = {
  raw: RAW_EXPORT_COLUMNS,
  hourly: AGGREGATE_EXPORT_COLUMNS,
  daily: AGGREGATE_EXPORT_COLUMNS,
}

/** MIME types of the formats; `header=present` is RFC 4180 §3's optional parameter. */
export const EXPORT_CONTENT_TYPES: Readonly<Record<ExportFormat, string>> = {
  csv: 'text/csv; charset=utf-8; header=present',
  ndjson: 'application/x-ndjson',
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
  },
  site_id: {
    type: 'string',
    unit: '',
    meaning:
      'site where the device stood at `time` (placement history); raw rows of a device that stood nowhere have it empty',
    example: 'lund-fladen',
    in: ['raw', 'hourly', 'daily'],
  },
  device_id: {
    type: 'string',
    unit: '',
    meaning: 'the sensor device that measured the value',
    example: 'sim-0001',
    in: ['raw'],
  },
  metric: {
    type: 'string',
    unit: '',
    meaning: `quantity: one of ${METRICS.join(', ')} (PM1, PM2.5, PM10, NO2, air temperature, relative humidity)`,
    example: 'pm25',
    in: ['raw', 'hourly', 'daily'],
  },
  value: {
    type: 'number',
    unit: 'see `unit`',
    meaning: 'the value as received and stored, never modified (no correction, no rounding)',
    example: '12.3',
    in: ['raw'],
  },
  unit: {
    type: 'string',
    unit: '',
    meaning: `unit of \`value\`: ${UNITS}`,
    example: 'µg/m³',
    in: ['raw'],
  },
  mean: {
    type: 'number',
    unit: 'unit of the metric',
    meaning:
      'hourly: mean of the readings in the hour; daily: mean of the valid hourly means; empty when a day has no valid hour',
    example: '8.75',
    in: ['hourly', 'daily'],
  },
  min: {
    type: 'number',
    unit: 'unit of the metric',
    meaning: 'smallest reading in the window (over all hours of a day, valid or not)',
    example: '3.1',
    in: ['hourly', 'daily'],
  },
  max: {
    type: 'number',
    unit: 'unit of the metric',
    meaning: 'largest reading in the window (over all hours of a day, valid or not)',
    example: '21',
    in: ['hourly', 'daily'],
  },
  n: {
    type: 'integer',
    unit: 'count',
    meaning:
      'hourly: readings in the hour, over all devices at the site; daily: valid hourly means in the day (hours with at least 75 % of their expected readings)',
    example: '60',
    in: ['hourly', 'daily'],
  },
  expected: {
    type: 'integer',
    unit: 'count',
    meaning:
      'hourly: readings the devices at the site were expected to send in the hour (3600 s / interval, added over devices); daily: 24 hours',
    example: '60',
    in: ['hourly', 'daily'],
  },
  coverage: {
    type: 'number',
    unit: 'fraction 0–1',
    meaning: 'min(1, n / expected)',
    example: '1',
    in: ['hourly', 'daily'],
  },
  valid: {
    type: 'boolean',
    unit: '',
    meaning: `hourly: coverage ≥ ${HOURLY_MIN_COVERAGE}; daily: at least ${DAILY_MIN_VALID_HOURS} valid hours (2008/50/EC Annex VII, 2024/2881 Annex V)`,
    example: 'true',
    in: ['hourly', 'daily'],
  },
}

/** One stored reading (all its metrics), as storage streams them for a raw export. */
export interface ExportReading {
  readonly siteId: string | null
  readonly deviceId: string
  /** Epoch ms UTC. */
  readonly ts: number
  readonly values: Partial<Record<Metric, number>>
}

/** One site-hour's sums for one metric (as storage streams them), the input of hourly and daily rows. */
export interface ExportHourSums {
  readonly siteId: string
  /** Hour start, epoch ms UTC. */
  readonly t: number
  readonly metric: Metric
  readonly n: number
  readonly sum: number
  readonly min: number
  readonly max: number
  readonly expected: number
}

/** Cells of one aggregate row in AGGREGATE_EXPORT_COLUMNS order (`time` still epoch ms). */
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
}

/** The raw rows of one reading, in RAW_EXPORT_COLUMNS order; metrics in METRICS order, `metrics` only. */
export function rawRows(reading: ExportReading, metrics: readonly Metric[], iso = isoTime): ExportCell[][] {
  const rows: ExportCell[][] = []
  let time: string | undefined
  for (const m of metrics) {
    const value = reading.values[m]
    if (value === undefined) continue
    time ??= iso(reading.ts)
    rows.push([time, reading.siteId, reading.deviceId, m, value, METRIC_INFO[m].unit])
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

/** Hours in a regulatory (fixed UTC+1) day. */
export const HOURS_PER_DAY = 24

/**
 * Folds hours ordered by (site, hour) into daily rows ordered by (site, day, metric), keeping only one day per
 * site in memory: `push` returns the rows of days that are complete, `end` the rest. The daily mean is the mean
 * of the valid hourly means (as core dailyPoints); n counts valid hours, expected is 24.
 */
export function createDailyFolder(metrics: readonly Metric[]): {
  push(hour: ExportHourSums): AggregateRow[]
  end(): AggregateRow[]
} {
  interface Day {
    min: number
    max: number
    validHours: number
    sumOfValidMeans: number
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
      out.push({
        siteId: site,
        t: dayStart,
        metric: m,
        mean: day.validHours > 0 ? day.sumOfValidMeans / day.validHours : null,
        min: day.min,
        max: day.max,
        n: day.validHours,
        expected: HOURS_PER_DAY,
        coverage: Math.min(1, day.validHours / HOURS_PER_DAY),
        valid: day.validHours >= DAILY_MIN_VALID_HOURS,
      })
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
        day = { min: hour.min, max: hour.max, validHours: 0, sumOfValidMeans: 0 }
        days.set(hour.metric, day)
      }
      day.min = Math.min(day.min, hour.min)
      day.max = Math.max(day.max, hour.max)
      const point = hourlyRow(hour)
      if (point.valid && point.mean !== null) {
        day.validHours += 1
        day.sumOfValidMeans += point.mean
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

export function aggregateCells(row: AggregateRow, iso = isoTime): ExportCell[] {
  return [iso(row.t), row.siteId, row.metric, row.mean, row.min, row.max, row.n, row.expected, row.coverage, row.valid]
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

/** The header line of a file (CSV only; NDJSON has none). */
export function exportHeader(format: ExportFormat, resolution: ExportResolution): string {
  return format === 'csv' ? csvLine(EXPORT_COLUMNS[resolution]) : ''
}

/** A formatter for one resolution and format: cells in, text line out. */
export function createLineFormatter(
  format: ExportFormat,
  resolution: ExportResolution,
): (cells: readonly ExportCell[]) => string {
  return format === 'csv' ? csvLine : createNdjsonLine(EXPORT_COLUMNS[resolution])
}

/** The data dictionary as a Markdown table (pasted into docs/export.md; a test keeps them equal). */
export function dataDictionaryMarkdown(): string {
  const lines = ['| column | in | type | unit | meaning | example |', '| --- | --- | --- | --- | --- | --- |']
  const columns = [...new Set<ExportColumn>([...RAW_EXPORT_COLUMNS, ...AGGREGATE_EXPORT_COLUMNS])]
  for (const c of columns) {
    const e = DATA_DICTIONARY[c]
    lines.push(`| \`${c}\` | ${e.in.join(', ')} | ${e.type} | ${e.unit} | ${e.meaning} | \`${e.example}\` |`)
  }
  return lines.join('\n')
}
