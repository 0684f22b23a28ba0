import { z } from 'zod'
import { METRIC_INFO, METRICS, type Metric, type MetricValues } from './metrics.ts'
import { no2PpbToUgm3 } from './units.ts'

/**
 * Device contract v1: telemetry payloads. See docs/device-contract.md.
 *
 * Single reading: {"ts":"2026-11-29T07:45:00Z","seq":1042,"pm25":7.4,"no2":18.2,...}
 * Buffered batch:  {"readings":[{...},{...}]}  (at most MAX_BATCH_READINGS readings)
 */

/** Largest telemetry payload the gateway forwards and the ingest parses. 500 readings × ~200 B fits. */
export const MAX_PAYLOAD_BYTES = 128 * 1024
/** Readings in one buffered batch; a larger buffer is sent as several batches. */
export const MAX_BATCH_READINGS = 500
/** A device clock may run this far ahead of ours before its readings are refused (NTP-synced devices sit well inside). */
export const MAX_FUTURE_SKEW_MS = 10 * 60 * 1000
/** Oldest reading accepted from a device buffer: 400 days covers a school year plus a summer without power. */
export const MAX_READING_AGE_MS = 400 * 24 * 3600 * 1000

const MeasurementValue = z.number().nullable().optional()

export const TelemetryReading = z.object({
  v: z.literal(1).optional(),
  ts: z.iso.datetime({ offset: true }),
  seq: z.number().int().nonnegative().optional(),
  pm1: MeasurementValue,
  pm25: MeasurementValue,
  pm10: MeasurementValue,
  no2: MeasurementValue,
  no2_ppb: MeasurementValue,
  temp: MeasurementValue,
  rh: MeasurementValue,
})
export type TelemetryReading = z.infer<typeof TelemetryReading>

export const TelemetryBatch = z.object({
  v: z.literal(1).optional(),
  readings: z.array(z.unknown()),
})

const KNOWN_FIELDS = new Set(Object.keys(TelemetryReading.shape))
const BATCH_FIELDS = new Set(Object.keys(TelemetryBatch.shape))

export const REJECT_CODES = [
  'bad_json',
  'payload_too_large',
  'not_an_object',
  'batch_too_big',
  'empty_batch',
  'wrong_type',
  'missing_ts',
  'bad_timestamp',
  'future_timestamp',
  'too_old',
  'no_measurement',
  'out_of_range',
  'conflicting_no2',
  'duplicate_in_batch',
  'bad_topic',
  'unknown_device',
  'revoked_device',
] as const
export type RejectCode = (typeof REJECT_CODES)[number]

export interface ParsedReading {
  /** Measurement time, epoch milliseconds (UTC). */
  readonly ts: number
  readonly seq: number | null
  /** Values in canonical units (NO2 in µg/m³). */
  readonly values: MetricValues
}

export interface ReadingRejection {
  /** Index in the batch, or 0 for a single reading. */
  readonly index: number
  readonly code: RejectCode
  readonly message: string
}

export type TelemetryParseResult =
  | {
      readonly ok: true
      readonly readings: readonly ParsedReading[]
      readonly rejected: readonly ReadingRejection[]
      /** Fields a device sent that v1 does not define; ignored, reported so an operator can spot typos. */
      readonly ignoredFields: readonly string[]
      readonly batch: boolean
    }
  | { readonly ok: false; readonly code: RejectCode; readonly message: string }

/**
 * Parses and validates one telemetry payload. Pure: `now` is passed in.
 * Envelope problems (bad JSON, oversize, too many readings) reject the whole message;
 * problems with one reading of a batch reject only that reading.
 */
export function parseTelemetry(payload: Uint8Array | string, now: number): TelemetryParseResult {
  const size = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.byteLength
  if (size > MAX_PAYLOAD_BYTES) {
    return {
      ok: false,
      code: 'payload_too_large',
      message: `payload is ${size} bytes; the limit is ${MAX_PAYLOAD_BYTES}`,
    }
  }
  let json: unknown
  try {
    json = JSON.parse(typeof payload === 'string' ? payload : Buffer.from(payload).toString('utf8'))
  } catch (error) {
    return { ok: false, code: 'bad_json', message: `payload is not valid JSON: ${(error as Error).message}` }
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    return { ok: false, code: 'not_an_object', message: 'payload must be a JSON object' }
  }
  const ignored = new Set<string>()
  if ('readings' in json) {
    const batch = TelemetryBatch.safeParse(json)
    if (!batch.success) {
      const issue = batch.error.issues[0]
      const field = issue?.path.join('.') ?? ''
      const message = field.startsWith('readings')
        ? '"readings" must be an array of reading objects'
        : `"${field}": ${issue?.message ?? 'invalid'}`
      return { ok: false, code: 'wrong_type', message }
    }
    for (const key of Object.keys(json)) if (!BATCH_FIELDS.has(key)) ignored.add(key)
    const items = batch.data.readings
    if (items.length === 0) return { ok: false, code: 'empty_batch', message: '"readings" is empty' }
    if (items.length > MAX_BATCH_READINGS) {
      return {
        ok: false,
        code: 'batch_too_big',
        message: `batch has ${items.length} readings; the limit is ${MAX_BATCH_READINGS}`,
      }
    }
    const readings: ParsedReading[] = []
    const rejected: ReadingRejection[] = []
    const seen = new Set<number>()
    items.forEach((item, index) => {
      const result = parseReading(item, now, ignored)
      if ('code' in result) {
        rejected.push({ index, ...result })
      } else if (seen.has(result.ts)) {
        rejected.push({ index, code: 'duplicate_in_batch', message: `timestamp repeated within the batch` })
      } else {
        seen.add(result.ts)
        readings.push(result)
      }
    })
    return { ok: true, readings, rejected, ignoredFields: [...ignored], batch: true }
  }
  const result = parseReading(json, now, ignored)
  if ('code' in result) return { ok: false, code: result.code, message: result.message }
  return { ok: true, readings: [result], rejected: [], ignoredFields: [...ignored], batch: false }
}

function parseReading(
  input: unknown,
  now: number,
  ignored: Set<string>,
): ParsedReading | { code: RejectCode; message: string } {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    return { code: 'not_an_object', message: 'a reading must be a JSON object' }
  }
  if (!('ts' in input)) return { code: 'missing_ts', message: '"ts" (measurement time, ISO 8601 UTC) is required' }
  for (const key of Object.keys(input)) if (!KNOWN_FIELDS.has(key)) ignored.add(key)
  const parsed = TelemetryReading.safeParse(input)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    const field = issue?.path.join('.') ?? ''
    if (field === 'ts') {
      return { code: 'bad_timestamp', message: '"ts" must be an ISO 8601 date-time with Z or an offset' }
    }
    return { code: 'wrong_type', message: `"${field}": ${issue?.message ?? 'invalid'}` }
  }
  const r = parsed.data
  const ts = Date.parse(r.ts)
  if (!Number.isFinite(ts)) return { code: 'bad_timestamp', message: `"ts" is not a real date: ${r.ts}` }
  if (ts > now + MAX_FUTURE_SKEW_MS) {
    return {
      code: 'future_timestamp',
      message: `"ts" ${r.ts} is more than ${MAX_FUTURE_SKEW_MS / 60000} min ahead of the platform clock`,
    }
  }
  if (ts < now - MAX_READING_AGE_MS) {
    return { code: 'too_old', message: `"ts" ${r.ts} is older than ${MAX_READING_AGE_MS / 86400000} days` }
  }
  if (r.no2 != null && r.no2_ppb != null) {
    return { code: 'conflicting_no2', message: 'send either "no2" (µg/m³) or "no2_ppb", not both' }
  }
  const values: MetricValues = {}
  for (const metric of METRICS) {
    const raw = metric === 'no2' && r.no2 == null && r.no2_ppb != null ? no2PpbToUgm3(r.no2_ppb) : r[metric]
    if (raw == null) continue
    const info = METRIC_INFO[metric]
    if (raw < info.min || raw > info.max) {
      // A converted no2_ppb value is reported as sent, with its µg/m³ equivalent next to the µg/m³ range.
      const sent =
        metric === 'no2' && r.no2 == null ? `"no2_ppb" = ${r.no2_ppb} ppb (${raw} µg/m³)` : `"${metric}" = ${raw}`
      return {
        code: 'out_of_range',
        message: `${sent} is outside the physical range ${info.min}–${info.max} ${info.unit}`,
      }
    }
    values[metric as Metric] = raw
  }
  if (Object.keys(values).length === 0) {
    return { code: 'no_measurement', message: `a reading needs at least one of ${METRICS.join(', ')}, no2_ppb` }
  }
  return { ts, seq: r.seq ?? null, values }
}

/** Serialises a reading in the v1 wire format (used by the simulator and tests). */
export function formatTelemetryReading(reading: {
  ts: number
  seq?: number | null
  values: MetricValues
}): Record<string, unknown> {
  const out: Record<string, unknown> = { ts: new Date(reading.ts).toISOString() }
  if (reading.seq != null) out.seq = reading.seq
  for (const metric of METRICS) {
    const value = reading.values[metric]
    if (value !== undefined) out[metric] = value
  }
  return out
}
