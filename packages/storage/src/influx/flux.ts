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

/**
 * The stop of a range over the whole history. `range()` stops at `now()` by default
 * (https://docs.influxdata.com/flux/v0/stdlib/universe/range/), which would hide points stamped later than the
 * server's clock: a device clock running ahead, or a `skolluft_meta` point written at another machine's `Date.now()`.
 * InfluxDB stores times up to 2262-04-11T23:47:16.854775806Z (int64 ns); 2100 stays clear of that edge, where
 * window arithmetic (`stop` + a period) could overflow, and is later than any reading this platform will take.
 */
const END_OF_TIME = new Date(Date.UTC(2100, 0, 1))

const at = (ms: number) => new Date(ms)

/**
 * The terms joined with `and`, or `true` when there are none. Leaving absent filters out (instead of `and true`) keeps
 * the filter wholly pushable to the storage engine: a boolean literal is not (`isPushableExpr`,
 * query/stdlib/influxdata/influxdb/rules.go), and a filter left behind stops later push-downs (`SortedPivotRule`,
 * `PushDownGroupAggregateRule`) that need `ReadRange` as the direct predecessor.
 */
function allOf(terms: readonly (ParameterizedQuery | undefined)[]): ParameterizedQuery {
  const [first, ...rest] = terms.filter((t) => t !== undefined)
  if (first === undefined) return flux`true`
  return rest.reduce((all, one) => flux`${all} and ${one}`, first)
}

/** `r.device == "…"`, `r.site == "…"` / `not exists r.site` (siteId null), for the ids given. */
function keyTerms(filter: {
  readonly deviceId?: string
  readonly siteId?: string | null
}): (ParameterizedQuery | undefined)[] {
  return [
    filter.deviceId === undefined ? undefined : flux`r.device == ${filter.deviceId}`,
    filter.siteId === undefined
      ? undefined
      : filter.siteId === null
        ? flux`not exists r.site`
        : flux`r.site == ${filter.siteId}`,
  ]
}

function keyFilter(filter: { readonly deviceId?: string; readonly siteId?: string | null }): ParameterizedQuery {
  return allOf(keyTerms(filter))
}

/**
 * `(r.<column> == "a" or r.<column> == "b" …)`: unlike `contains()`, comparisons of a tag (or `_field`) with a
 * literal are pushed down to the storage engine, so only the matching series are read (InfluxDB's
 * `isPushableExpr`, query/stdlib/influxdata/influxdb/rules.go). An empty list matches nothing.
 */
function anyOf(column: 'device' | 'site' | '_field', values: readonly string[]): ParameterizedQuery {
  const [first, ...rest] = values.map((v) =>
    column === 'device' ? flux`r.device == ${v}` : column === 'site' ? flux`r.site == ${v}` : flux`r._field == ${v}`,
  )
  if (first === undefined) return flux`false`
  return flux`(${rest.reduce((all, one) => flux`${all} or ${one}`, first)})`
}

function setFilter(column: 'device' | 'site', values: readonly string[] | undefined): ParameterizedQuery | undefined {
  if (values === undefined) return undefined
  return column === 'device' ? anyOf('device', values) : flux`exists r.site and ${anyOf('site', values)}`
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
  |> filter(fn: (r) => r._measurement == "reading" and ${anyOf('_field', q.fields)})
  |> filter(fn: (r) => ${allOf([...keyTerms(q), setFilter('device', q.deviceIds), setFilter('site', q.siteIds)])})
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
  |> range(start: ${EPOCH}, stop: ${END_OF_TIME})
  |> filter(fn: (r) => r._measurement == "reading" and ${anyOf('_field', fields)})
  |> last()
  |> keep(columns: ["_time", "_value", "_field", "device", "site"])`
}

/** Readings (one `received_at` per reading) matching the filter. */
export function countQuery(bucket: string, filter: { readonly deviceId?: string; readonly siteId?: string }) {
  return flux`from(bucket: ${bucket})
  |> range(start: ${EPOCH}, stop: ${END_OF_TIME})
  |> filter(fn: (r) => r._measurement == "reading" and r._field == "received_at")
  |> filter(fn: (r) => ${keyFilter(filter)})
  |> group()
  |> count()`
}

/**
 * Readings (one `received_at` each) per device in [from, to): range, filter, group and count are all pushed down to
 * InfluxDB's storage engine, so the fleet's 24 h coverage (device health, every 30–60 s) never moves raw points.
 */
export function deviceCountsQuery(bucket: string, from: number, to: number) {
  return flux`from(bucket: ${bucket})
  |> range(start: ${at(from)}, stop: ${at(to)})
  |> filter(fn: (r) => r._measurement == "reading" and r._field == "received_at")
  |> group(columns: ["device"])
  |> count()`
}

/** A device's time span in a duplicate lookup: [from, to), epoch ms. */
export interface DeviceSpan {
  readonly deviceId: string
  readonly from: number
  readonly to: number
}

/**
 * The (device, ts) keys of stored readings in each device's own span, for first-write-wins. Each device is filtered
 * to its own span, so one device uploading a week-old buffer beside hundreds of live devices in the same batch reads
 * back that device's week, not a week of every device.
 */
export function existingKeysQuery(bucket: string, spans: readonly DeviceSpan[]) {
  let from = Number.POSITIVE_INFINITY
  let to = Number.NEGATIVE_INFINITY
  for (const span of spans) {
    from = Math.min(from, span.from)
    to = Math.max(to, span.to)
  }
  const [first, ...rest] = spans.map(
    (span) => flux`(r.device == ${span.deviceId} and r._time >= ${at(span.from)} and r._time < ${at(span.to)})`,
  )
  const any = first === undefined ? flux`false` : rest.reduce((all, one) => flux`${all} or ${one}`, first)
  return flux`from(bucket: ${bucket})
  |> range(start: ${at(from)}, stop: ${at(to)})
  |> filter(fn: (r) => r._measurement == "reading" and r._field == "received_at")
  |> filter(fn: (r) => ${any})
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
  |> filter(fn: (r) => r._measurement == "reading" and ${anyOf('_field', q.metrics)})
  |> filter(fn: (r) => ${allOf([setFilter('device', q.deviceIds), setFilter('site', q.siteIds)])})
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
  |> filter(fn: (r) => r._measurement == "reading" and ${anyOf('_field', fields)})
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
  |> range(start: ${EPOCH}, stop: ${END_OF_TIME})
  |> filter(fn: (r) => r._measurement == "device_hour" and r._field == "qc_version" and r._value < ${version})
  |> group()
  |> count()`
}

/** The highest quality rules version asked for (measurement `skolluft_meta`). */
export function requiredVersionQuery(bucket: string) {
  return flux`from(bucket: ${bucket})
  |> range(start: ${EPOCH}, stop: ${END_OF_TIME})
  |> filter(fn: (r) => r._measurement == "skolluft_meta" and r._field == "qc_version")
  |> group()
  |> max()`
}
