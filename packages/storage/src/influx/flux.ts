import { flux, fluxExpression, type ParameterizedQuery } from '@influxdata/influxdb-client'
import { METRICS, type Metric } from '@skolluft/core'

/**
 * The Flux queries of the InfluxDB reading store, one function each, so their text can be read (and reviewed)
 * in one place. Every value reaches Flux through the client's `flux` tagged template, which quotes strings and
 * formats times and numbers (no string concatenation of input); field and measurement names come from constants.
 * Schema: line-protocol.ts (measurements `reading`, `device_hour`, `skolluft_meta`).
 *
 * Times: ranges are [start, stop) in epoch ms, passed as RFC 3339 date-times. Hourly windows are UTC hours
 * (`window(every: 1h)`; every zone Sweden uses is a whole number of hours from UTC, so a UTC hour is a local hour);
 * the UTC+1 days of the air-quality directive are built from those hours in TypeScript (core `dailyPoints`).
 */

/** Fields of a `reading` point that are not metrics. */
export const READING_META_FIELDS = ['seq', 'received_at', 'expected_per_hour', 'qc'] as const

/** The earliest time a range may start at (the epoch): `range(start: 0)` reads the whole history. */
const EPOCH = new Date(0)

const at = (ms: number) => new Date(ms)

/** `and r.device == "…"` / `and r.site == "…"` / `and not exists r.site` as one Flux boolean expression. */
function keyFilter(filter: { readonly deviceId?: string; readonly siteId?: string | null }): ParameterizedQuery {
  const device = filter.deviceId === undefined ? flux`true` : flux`r.device == ${filter.deviceId}`
  const site =
    filter.siteId === undefined
      ? flux`true`
      : filter.siteId === null
        ? flux`not exists r.site`
        : flux`r.site == ${filter.siteId}`
  return flux`${device} and ${site}`
}

function setFilter(column: 'device' | 'site', values: readonly string[] | undefined): ParameterizedQuery {
  if (values === undefined) return flux`true`
  return column === 'device'
    ? flux`contains(value: r.device, set: ${values})`
    : flux`exists r.site and contains(value: r.site, set: ${values})`
}

/** Raw points of one metric in time order (then device), at most `limit`. */
export function rawPointsQuery(
  bucket: string,
  q: {
    readonly metric: Metric
    readonly deviceId?: string
    readonly siteId?: string
    readonly from: number
    readonly to: number
    readonly limit: number
  },
): ParameterizedQuery {
  return flux`from(bucket: ${bucket})
  |> range(start: ${at(q.from)}, stop: ${at(q.to)})
  |> filter(fn: (r) => r._measurement == "reading" and r._field == ${q.metric})
  |> filter(fn: (r) => ${keyFilter(q)})
  |> group()
  |> sort(columns: ["_time", "device"])
  |> limit(n: ${q.limit})
  |> keep(columns: ["_time", "_value", "device"])`
}

/**
 * Per (device, site, UTC hour, field): samples, sum, min and max, for the hours in [from, to) (hour-aligned).
 * `expected_per_hour` is one of the fields when asked for: its max is the device-hour's expected samples.
 */
export function hourSumsQuery(
  bucket: string,
  q: {
    readonly fields: readonly string[]
    readonly from: number
    readonly to: number
    readonly deviceId?: string
    readonly siteId?: string | null
    readonly deviceIds?: readonly string[]
    readonly siteIds?: readonly string[]
  },
): ParameterizedQuery {
  return flux`from(bucket: ${bucket})
  |> range(start: ${at(q.from)}, stop: ${at(q.to)})
  |> filter(fn: (r) => r._measurement == "reading" and contains(value: r._field, set: ${q.fields}))
  |> filter(fn: (r) => ${keyFilter(q)} and ${setFilter('device', q.deviceIds)} and ${setFilter('site', q.siteIds)})
  |> map(fn: (r) => ({r with _value: float(v: r._value)}))
  |> window(every: 1h)
  |> reduce(
    identity: {n: 0, sum: 0.0, min: 0.0, max: 0.0},
    fn: (r, accumulator) => ({
      n: accumulator.n + 1,
      sum: accumulator.sum + r._value,
      min: if accumulator.n == 0 or r._value < accumulator.min then r._value else accumulator.min,
      max: if accumulator.n == 0 or r._value > accumulator.max then r._value else accumulator.max,
    }),
  )
  |> keep(columns: ["_start", "_field", "device", "site", "n", "sum", "min", "max"])`
}

/** The newest point of every field of every `reading` series (device, site): the latest values. */
export function latestQuery(bucket: string): ParameterizedQuery {
  const fields = [...METRICS, 'received_at']
  return flux`from(bucket: ${bucket})
  |> range(start: ${EPOCH})
  |> filter(fn: (r) => r._measurement == "reading" and contains(value: r._field, set: ${fields}))
  |> last()
  |> keep(columns: ["_time", "_value", "_field", "device", "site"])`
}

/** Readings (one `received_at` per reading) matching the filter. */
export function countQuery(bucket: string, filter: { readonly deviceId?: string; readonly siteId?: string }) {
  return flux`from(bucket: ${bucket})
  |> range(start: ${EPOCH})
  |> filter(fn: (r) => r._measurement == "reading" and r._field == "received_at")
  |> filter(fn: (r) => ${keyFilter(filter)})
  |> group()
  |> count()`
}

/** The (device, ts) keys of stored readings among `deviceIds` in [from, to): for first-write-wins. */
export function existingKeysQuery(bucket: string, deviceIds: readonly string[], from: number, to: number) {
  return flux`from(bucket: ${bucket})
  |> range(start: ${at(from)}, stop: ${at(to)})
  |> filter(fn: (r) => r._measurement == "reading" and r._field == "received_at")
  |> filter(fn: (r) => contains(value: r.device, set: ${deviceIds}))
  |> keep(columns: ["_time", "device"])`
}

/** Distinct (site, device) pairs with readings of one of `metrics` in [from, to). */
export function pairsQuery(
  bucket: string,
  q: {
    readonly metrics: readonly Metric[]
    readonly from: number
    readonly to: number
    readonly deviceIds?: readonly string[]
    readonly siteIds?: readonly string[]
  },
) {
  return flux`from(bucket: ${bucket})
  |> range(start: ${at(q.from)}, stop: ${at(q.to)})
  |> filter(fn: (r) => r._measurement == "reading" and contains(value: r._field, set: ${q.metrics}))
  |> filter(fn: (r) => ${setFilter('device', q.deviceIds)} and ${setFilter('site', q.siteIds)})
  |> group(columns: ["site", "device"])
  |> first()
  |> keep(columns: ["site", "device"])`
}

/**
 * One device's readings at one site (null = none) in (after, to), as rows with one column per field asked for
 * (pivot), time order, at most `limit`. Only rows carrying one of `metrics` count.
 */
export function readingRowsQuery(
  bucket: string,
  q: {
    readonly deviceId: string
    readonly siteId: string | null | undefined
    readonly metrics: readonly Metric[]
    readonly withQc: boolean
    readonly from: number
    readonly to: number
    readonly limit: number
  },
) {
  const fields: string[] = [...q.metrics]
  if (q.withQc) fields.push('qc')
  const carries = fluxExpression(q.metrics.map((m) => `exists r.${m}`).join(' or '))
  return flux`from(bucket: ${bucket})
  |> range(start: ${at(q.from)}, stop: ${at(q.to)})
  |> filter(fn: (r) => r._measurement == "reading" and contains(value: r._field, set: ${fields}))
  |> filter(fn: (r) => ${keyFilter(q)})
  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
  |> group()
  |> filter(fn: (r) => ${carries})
  |> sort(columns: ["_time"])
  |> limit(n: ${q.limit})`
}

/** Device-hour states (`dirty`, `checked`, `qc_version`) in [from, to), optionally of one device. */
export function deviceHoursQuery(
  bucket: string,
  q: { readonly deviceId?: string; readonly from: number; readonly to: number },
) {
  return flux`from(bucket: ${bucket})
  |> range(start: ${at(q.from)}, stop: ${at(q.to)})
  |> filter(fn: (r) => r._measurement == "device_hour")
  |> filter(fn: (r) => ${keyFilter({ deviceId: q.deviceId })})
  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
  |> group()
  |> keep(columns: ["_time", "device", "dirty", "checked", "qc_version"])`
}

/**
 * Device-hours waiting for their quality check, oldest first then by device: never checked, written since the
 * check (`dirty` ≠ `checked`), or checked with rules older than `required`; hours starting at or before `lastHour`.
 */
export function backlogQuery(
  bucket: string,
  q: {
    readonly lastHour: number
    readonly required: number
    readonly limit: number
    readonly after?: { readonly hourStart: number; readonly deviceId: string }
  },
) {
  const after =
    q.after === undefined
      ? flux`true`
      : flux`r._time > ${at(q.after.hourStart)} or (r._time == ${at(q.after.hourStart)} and r.device > ${q.after.deviceId})`
  return flux`from(bucket: ${bucket})
  |> range(start: ${EPOCH}, stop: ${at(q.lastHour + 1)})
  |> filter(fn: (r) => r._measurement == "device_hour")
  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
  |> filter(fn: (r) => exists r.dirty and (not exists r.checked or r.dirty != r.checked or not exists r.qc_version or r.qc_version < ${q.required}))
  |> group()
  |> filter(fn: (r) => ${after})
  |> sort(columns: ["_time", "device"])
  |> limit(n: ${q.limit})
  |> keep(columns: ["_time", "device"])`
}

/** Device-hours checked with rules older than `version` (what a version bump makes dirty again). */
export function outdatedHoursQuery(bucket: string, version: number) {
  return flux`from(bucket: ${bucket})
  |> range(start: ${EPOCH})
  |> filter(fn: (r) => r._measurement == "device_hour" and r._field == "qc_version" and r._value < ${version})
  |> group()
  |> count()`
}

/** The highest quality rules version asked for (measurement `skolluft_meta`). */
export function requiredVersionQuery(bucket: string) {
  return flux`from(bucket: ${bucket})
  |> range(start: ${EPOCH})
  |> filter(fn: (r) => r._measurement == "skolluft_meta" and r._field == "qc_version")
  |> group()
  |> max()`
}
