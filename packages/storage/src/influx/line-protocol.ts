import { HOUR_MS, METRICS } from '@skolluft/core'
import type { StoredReading } from '../types.ts'

/**
 * The InfluxDB line protocol encoder for skolluft's readings, precision ms
 * (https://docs.influxdata.com/influxdb/v2/reference/syntax/line-protocol/).
 *
 * Schema (docs/influxdb.md says why it is so):
 *
 * ```text
 * reading,device=<deviceId>[,site=<siteId>] pm1=…,pm25=…,pm10=…,no2=…,temp=…,rh=…,seq=<n>i,received_at=<ms>i,expected_per_hour=… <ts ms>
 * reading,device=<deviceId>[,site=<siteId>] qc=<mask>i <ts ms>
 * device_hour,device=<deviceId> [dirty=<token>i][,checked=<token>i][,qc_version=<n>i] <hour start ms>
 * skolluft_meta qc_version=<n>i <ms>
 * ```
 *
 * - `reading`: the metrics present (floats), `seq` only when not null. The site tag is omitted for a reading
 *   that belongs to no site. Series key + time = (device, site, ts), and the site is a function of (device, ts),
 *   so writing a reading again overwrites the same point: idempotent on (device, ts).
 * - The quality flags are a later point with the same series and time and the single field `qc`; InfluxDB
 *   merges the fields of points with the same series and time.
 * - `device_hour`: bookkeeping per device and hour (time = hour start). `dirty` is a fresh random token written
 *   with every write that lands readings in the hour; a check copies the token it saw into `checked` (so the hour
 *   needs a check while `dirty` ≠ `checked`: no clock comparison between machines), and `qc_version` is the rules
 *   version it ran with. Same series and time, so the newest write of each field wins.
 * - `skolluft_meta`: platform-wide settings as points without tags; `qc_version` is the quality rules version
 *   required (readers take the max over all points).
 *
 * Tags are in key order (InfluxDB's advice for write performance). Numbers that cannot be represented
 * (NaN, ±Infinity, unsafe integers) and characters line protocol cannot carry (newlines) throw a
 * LineProtocolError instead of producing a line the server would refuse or misread.
 */

export const READING_MEASUREMENT = 'reading'
export const DEVICE_HOUR_MEASUREMENT = 'device_hour'
export const META_MEASUREMENT = 'skolluft_meta'

/** Tag keys. */
export const TAG = { device: 'device', site: 'site' } as const

/** Field keys besides the metrics (whose field key is the metric id, e.g. `pm25`). */
export const FIELD = {
  seq: 'seq',
  receivedAt: 'received_at',
  expectedPerHour: 'expected_per_hour',
  qc: 'qc',
  dirty: 'dirty',
  checked: 'checked',
  qcVersion: 'qc_version',
} as const

export const LINE_PROTOCOL_ERROR_CODES = ['NON_FINITE', 'NOT_AN_INTEGER', 'INVALID_TEXT', 'NO_FIELDS'] as const
export type LineProtocolErrorCode = (typeof LINE_PROTOCOL_ERROR_CODES)[number]

/** A value cannot be encoded as line protocol; `code` says why. */
export class LineProtocolError extends Error {
  readonly code: LineProtocolErrorCode

  constructor(code: LineProtocolErrorCode, message: string) {
    super(message)
    this.name = 'LineProtocolError'
    this.code = code
  }
}

/** Line protocol has no escape for these in names, tags or fields ("does not support the newline character"). */
const UNSUPPORTED = /[\n\r]/

function checkText(kind: string, value: string): void {
  if (value.length === 0) throw new LineProtocolError('INVALID_TEXT', `${kind} must not be empty`)
  if (UNSUPPORTED.test(value)) throw new LineProtocolError('INVALID_TEXT', `${kind} must not contain a line break`)
  // A trailing backslash would escape the separator that follows it (`a\,b=c` reads as one tag value).
  if (value.endsWith('\\')) throw new LineProtocolError('INVALID_TEXT', `${kind} must not end with a backslash`)
}

/** Measurement names: escape comma and space. */
export function escapeMeasurement(name: string): string {
  checkText('measurement', name)
  return name.replace(/[, ]/g, (c) => `\\${c}`)
}

/** Tag keys, tag values and field keys: escape comma, equals sign and space. */
export function escapeKey(value: string): string {
  checkText('tag or field key/value', value)
  return value.replace(/[,= ]/g, (c) => `\\${c}`)
}

/** A string field value, quoted, with double quote and backslash escaped. */
export function stringField(value: string): string {
  if (UNSUPPORTED.test(value)) throw new LineProtocolError('INVALID_TEXT', 'string field must not contain a line break')
  return `"${value.replace(/["\\]/g, (c) => `\\${c}`)}"`
}

/** A float field value. JS's shortest round-trip form (exponent notation included) parses back exactly. */
export function floatField(name: string, value: number): string {
  if (!Number.isFinite(value)) throw new LineProtocolError('NON_FINITE', `${name} is ${value}, not a finite number`)
  return String(value)
}

/** An integer field value (`<n>i`); only safe integers, so the value is exact. */
export function integerField(name: string, value: number): string {
  if (!Number.isFinite(value)) throw new LineProtocolError('NON_FINITE', `${name} is ${value}, not a finite number`)
  if (!Number.isSafeInteger(value)) throw new LineProtocolError('NOT_AN_INTEGER', `${name} is ${value}, not an integer`)
  return `${value}i`
}

/** A timestamp in ms (the writer sends precision=ms). */
export function timestampMs(value: number): string {
  if (!Number.isFinite(value)) throw new LineProtocolError('NON_FINITE', `timestamp is ${value}`)
  if (!Number.isSafeInteger(value)) throw new LineProtocolError('NOT_AN_INTEGER', `timestamp ${value} is not whole ms`)
  return String(value)
}

function line(
  measurement: string,
  tags: readonly (readonly [string, string | null])[],
  fields: readonly (readonly [string, string])[],
  ts: number,
): string {
  if (fields.length === 0) throw new LineProtocolError('NO_FIELDS', `a ${measurement} point needs at least one field`)
  let out = escapeMeasurement(measurement)
  for (const [key, value] of tags) if (value !== null) out += `,${escapeKey(key)}=${escapeKey(value)}`
  out += ` ${fields.map(([key, value]) => `${escapeKey(key)}=${value}`).join(',')}`
  return `${out} ${timestampMs(ts)}`
}

/** One reading as a `reading` point. */
export function readingLine(r: StoredReading): string {
  const fields: [string, string][] = []
  for (const metric of METRICS) {
    const value = r.values[metric]
    if (value !== undefined) fields.push([metric, floatField(metric, value)])
  }
  if (r.seq !== null) fields.push([FIELD.seq, integerField(FIELD.seq, r.seq)])
  fields.push([FIELD.receivedAt, integerField(FIELD.receivedAt, r.receivedAt)])
  fields.push([FIELD.expectedPerHour, floatField(FIELD.expectedPerHour, r.expectedPerHour)])
  return line(
    READING_MEASUREMENT,
    [
      [TAG.device, r.deviceId],
      [TAG.site, r.siteId],
    ],
    fields,
    r.ts,
  )
}

/** The quality mask of one reading: merges into the reading's point (same series and time). */
export function qcLine(deviceId: string, siteId: string | null, ts: number, mask: number): string {
  if (mask < 0) throw new LineProtocolError('NOT_AN_INTEGER', `qc mask ${mask} is negative`)
  return line(
    READING_MEASUREMENT,
    [
      [TAG.device, deviceId],
      [TAG.site, siteId],
    ],
    [[FIELD.qc, integerField(FIELD.qc, mask)]],
    ts,
  )
}

export interface DeviceHourFields {
  /** A fresh random token (integer), written with every write that lands readings in the hour. */
  readonly dirty?: number
  /** The `dirty` token the last check of the hour saw when it started reading. */
  readonly checked?: number
  /** The quality rules version the last check ran with. */
  readonly qcVersion?: number
}

/** Bookkeeping of one device-hour; `hourStart` must be a whole UTC hour. At least one field. */
export function deviceHourLine(deviceId: string, hourStart: number, fields: DeviceHourFields): string {
  if (!Number.isSafeInteger(hourStart) || hourStart % HOUR_MS !== 0) {
    throw new LineProtocolError('NOT_AN_INTEGER', `hour start ${hourStart} is not a whole hour`)
  }
  const encoded: [string, string][] = []
  if (fields.dirty !== undefined) encoded.push([FIELD.dirty, integerField(FIELD.dirty, fields.dirty)])
  if (fields.checked !== undefined) encoded.push([FIELD.checked, integerField(FIELD.checked, fields.checked)])
  if (fields.qcVersion !== undefined) encoded.push([FIELD.qcVersion, integerField(FIELD.qcVersion, fields.qcVersion)])
  return line(DEVICE_HOUR_MEASUREMENT, [[TAG.device, deviceId]], encoded, hourStart)
}

/**
 * A platform setting. `ts` defaults to now: a recent time keeps the point inside any bucket retention, and
 * readers take the max over all points, so each write may be its own point.
 */
export function metaLine(fields: { readonly qcVersion: number }, ts: number = Date.now()): string {
  return line(META_MEASUREMENT, [], [[FIELD.qcVersion, integerField(FIELD.qcVersion, fields.qcVersion)]], ts)
}
