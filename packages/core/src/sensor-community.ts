import { METRIC_INFO, type Metric, type MetricValues } from './metrics.ts'

/**
 * Reading the Sensor.Community (luftdaten.info) archive CSV files, `archive.sensor.community/<date>/
 * <date>_<type>_sensor_<id>.csv`: one file per sensor and day, `;`-separated, a header row naming the columns,
 * e.g. `sensor_id;sensor_type;location;lat;lon;timestamp;P1;durP1;ratioP1;P2;durP2;ratioP2` (SDS011) or
 * `…;timestamp;pressure;altitude;pressure_sealevel;temperature;humidity` (BME280). Columns are found by their
 * header name, never by position. No quoting: the archive writes numbers and plain ids only.
 *
 * Pure: the caller reads the file and writes storage. Every data row becomes either a reading or a row error
 * with its line number (the header is line 1, as an editor numbers lines) and a reason; blank lines are skipped.
 *
 * Times: the archive writes `YYYY-MM-DDTHH:MM:SS` without a zone, and the values are UTC (Sensor.Community
 * maintainer ricki-z, opendata-stuttgart/feinstaub-api #25 "The timestamps are in UTC" and meta #61 "We are
 * saving all value time stamps as UTC"; the server stamps them, the firmware has no clock, device-formats §2.1).
 * A `Z` or an explicit offset, if present, is honoured.
 *
 * Values: `P1` = PM10, `P2` = PM2.5, `P0` = PM1 (device-formats §2.1), `temperature` °C, `humidity` % RH; all other
 * columns (pressure, durP1, ratioP1, particle counts…) are ignored. An empty cell is "no value"; a row with no
 * value at all is an error. A value outside the physical range of core metrics.ts makes the whole row an error,
 * as the ingest rejects a whole telemetry reading (telemetry.ts `out_of_range`).
 */

/** Archive column → metric. */
const COLUMN_METRIC: Readonly<Record<string, Metric>> = {
  P0: 'pm1',
  P1: 'pm10',
  P2: 'pm25',
  temperature: 'temp',
  humidity: 'rh',
}

const METRIC_COLUMN: Readonly<Partial<Record<Metric, string>>> = Object.fromEntries(
  Object.entries(COLUMN_METRIC).map(([column, metric]) => [metric, column]),
)

/**
 * Sensor types read, with the metrics taken from each (µg/m³ for PM in every one of them). Types whose `P1`/`P2`
 * are not mass concentrations (PPD42NS: particle counts) are deliberately absent, as is BMP280 humidity (it has
 * none) and every pressure column (no pressure metric).
 */
export const SENSOR_COMMUNITY_TYPES: Readonly<Record<string, readonly Metric[]>> = {
  SDS011: ['pm10', 'pm25'],
  PMS1003: ['pm1', 'pm25', 'pm10'],
  PMS3003: ['pm1', 'pm25', 'pm10'],
  PMS5003: ['pm1', 'pm25', 'pm10'],
  PMS6003: ['pm1', 'pm25', 'pm10'],
  PMS7003: ['pm1', 'pm25', 'pm10'],
  SPS30: ['pm1', 'pm25', 'pm10'],
  BME280: ['temp', 'rh'],
  BMP280: ['temp'],
  DHT22: ['temp', 'rh'],
}

/** Columns every archive file has. */
export const SENSOR_COMMUNITY_REQUIRED_COLUMNS = ['sensor_id', 'sensor_type', 'timestamp'] as const

export interface SensorCommunityReading {
  /** Line in the file (header = 1). */
  readonly line: number
  /** The Sensor.Community sensor id (digits). */
  readonly sensorId: string
  /** As in SENSOR_COMMUNITY_TYPES, e.g. `SDS011`. */
  readonly sensorType: string
  /** Epoch ms UTC. */
  readonly ts: number
  readonly values: MetricValues
  /**
   * The Sensor.Community location (station) id: the sensors of one airrohr node share it. Null when the column is
   * absent or not a number.
   */
  readonly location: string | null
  /** WGS84 position the archive gives for the sensor's location; null when absent or not a number. */
  readonly lat: number | null
  readonly lon: number | null
}

export interface SensorCommunityRowError {
  /** Line in the file (header = 1; line 1 = the file as a whole, e.g. a missing column). */
  readonly line: number
  readonly reason: string
}

export interface SensorCommunityParseResult {
  readonly readings: SensorCommunityReading[]
  readonly errors: SensorCommunityRowError[]
  /** Data rows seen (blank lines excluded); readings + errors when the header is valid. */
  readonly rows: number
}

const BOM = '\uFEFF'
/** A plain decimal as the archive writes it (`9.83`, `-2.211`, `100`); no exponent, no spaces. */
const DECIMAL = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$/
/** `YYYY-MM-DDTHH:MM:SS[.fff]`, a space allowed for `T`, optional `Z` or `±HH:MM`. */
const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})?$/
const SENSOR_ID = /^\d{1,12}$/
const LOCATION_ID = /^\d{1,12}$/

/** Parses an archive timestamp to epoch ms UTC; undefined when it is not one or not a real date. */
export function parseSensorCommunityTime(text: string): number | undefined {
  const m = TIMESTAMP.exec(text)
  if (!m) return undefined
  const [, y, mo, d, h, mi, s, frac, zone] = m
  const fields = [y, mo, d, h, mi, s].map(Number)
  const [year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0] = fields
  const ms = frac === undefined ? 0 : Math.round(Number(`0${frac}`) * 1000)
  const utc = Date.UTC(year, month - 1, day, hour, minute, second, ms)
  const back = new Date(utc)
  // Date.UTC rolls 2018-02-30 over to March; a real date comes back unchanged.
  if (
    back.getUTCFullYear() !== year ||
    back.getUTCMonth() !== month - 1 ||
    back.getUTCDate() !== day ||
    back.getUTCHours() !== hour ||
    back.getUTCMinutes() !== minute ||
    back.getUTCSeconds() !== second
  ) {
    return undefined
  }
  if (zone === undefined || zone === 'Z') return utc
  const sign = zone.startsWith('-') ? -1 : 1
  const offsetMin = Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6))
  if (offsetMin > 14 * 60) return undefined
  return utc - sign * offsetMin * 60_000
}

function optionalNumber(text: string | undefined): number | null {
  if (text === undefined || !DECIMAL.test(text)) return null
  return Number(text)
}

export function parseSensorCommunityCsv(text: string): SensorCommunityParseResult {
  const body = text.startsWith(BOM) ? text.slice(BOM.length) : text
  const lines = body.split(/\r?\n/)
  const header = (lines[0] ?? '').split(';').map((c) => c.trim())
  const columnIndex = new Map<string, number>()
  header.forEach((name, i) => {
    if (name !== '' && !columnIndex.has(name)) columnIndex.set(name, i)
  })
  const missing = SENSOR_COMMUNITY_REQUIRED_COLUMNS.filter((c) => !columnIndex.has(c))
  if (missing.length > 0) {
    return {
      readings: [],
      errors: [{ line: 1, reason: `not a Sensor.Community archive header: missing column(s) ${missing.join(', ')}` }],
      rows: 0,
    }
  }
  const readings: SensorCommunityReading[] = []
  const errors: SensorCommunityRowError[] = []
  let rows = 0
  for (let i = 1; i < lines.length; i += 1) {
    const raw = lines[i] ?? ''
    if (raw.trim() === '') continue
    rows += 1
    const result = parseRow(raw, i + 1, header.length, columnIndex)
    if ('reason' in result) errors.push(result)
    else readings.push(result)
  }
  return { readings, errors, rows }
}

function parseRow(
  raw: string,
  line: number,
  width: number,
  columnIndex: ReadonlyMap<string, number>,
): SensorCommunityReading | SensorCommunityRowError {
  const cells = raw.split(';')
  if (cells.length !== width) return { line, reason: `expected ${width} fields, found ${cells.length}` }
  const cell = (column: string): string | undefined => {
    const i = columnIndex.get(column)
    return i === undefined ? undefined : cells[i]?.trim()
  }
  const sensorId = cell('sensor_id') ?? ''
  if (!SENSOR_ID.test(sensorId)) return { line, reason: `sensor_id "${sensorId.slice(0, 40)}" is not a number` }
  const sensorType = (cell('sensor_type') ?? '').toUpperCase()
  const metrics = SENSOR_COMMUNITY_TYPES[sensorType]
  if (metrics === undefined) {
    return { line, reason: `sensor type "${sensorType.slice(0, 40)}" is not supported` }
  }
  const stamp = cell('timestamp') ?? ''
  const ts = parseSensorCommunityTime(stamp)
  if (ts === undefined) return { line, reason: `timestamp "${stamp.slice(0, 40)}" is not a date-time` }
  const values: MetricValues = {}
  for (const metric of metrics) {
    const column = METRIC_COLUMN[metric]
    if (column === undefined) continue
    if (!columnIndex.has(column)) return { line, reason: `column ${column} (${metric}) is missing for ${sensorType}` }
    const text = cell(column) ?? ''
    if (text === '') continue
    if (!DECIMAL.test(text)) return { line, reason: `${column} "${text.slice(0, 40)}" is not a number` }
    const value = Number(text)
    const info = METRIC_INFO[metric]
    if (value < info.min || value > info.max) {
      return { line, reason: `${column} = ${value} is outside the physical range ${info.min}–${info.max} ${info.unit}` }
    }
    values[metric] = value
  }
  if (Object.keys(values).length === 0) return { line, reason: 'no value in the row' }
  const location = cell('location') ?? ''
  return {
    line,
    sensorId,
    sensorType,
    ts,
    values,
    location: LOCATION_ID.test(location) ? location : null,
    lat: optionalNumber(cell('lat')),
    lon: optionalNumber(cell('lon')),
  }
}

/** Bounds of a device's reading interval (registry.ts `Device.intervalS`). */
const MIN_INTERVAL_S = 1
const MAX_INTERVAL_S = 3600

/**
 * The reading interval a series shows: the median spacing of its distinct times, rounded to whole seconds and
 * kept within 1–3600 s. The median ignores outages and the odd double reading. Undefined with fewer than two
 * distinct times.
 */
export function estimateIntervalS(times: readonly number[]): number | undefined {
  const sorted = [...new Set(times)].sort((a, b) => a - b)
  const gaps: number[] = []
  for (let i = 1; i < sorted.length; i += 1) gaps.push((sorted[i] ?? 0) - (sorted[i - 1] ?? 0))
  if (gaps.length === 0) return undefined
  gaps.sort((a, b) => a - b)
  const mid = Math.floor(gaps.length / 2)
  const median = gaps.length % 2 === 1 ? (gaps[mid] ?? 0) : ((gaps[mid - 1] ?? 0) + (gaps[mid] ?? 0)) / 2
  return Math.min(MAX_INTERVAL_S, Math.max(MIN_INTERVAL_S, Math.round(median / 1000)))
}
