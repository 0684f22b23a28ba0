import {
  DeviceId,
  EXPORT_FORMATS,
  EXPORT_RESOLUTIONS,
  EXPORT_SCHEMA_VERSIONS,
  EXPORT_VALUES,
  type ExportFormat,
  type ExportResolution,
  type ExportSchemaVersion,
  type ExportValues,
  LATEST_EXPORT_SCHEMA,
  METRICS,
  type Metric,
  type Site,
  SiteId,
} from '@skolluft/core'
import type { ExportQuery } from '@skolluft/storage'
import { z } from 'zod'

/**
 * The export query language, the same for `GET /api/v1/export` and `skolluft export` (docs/export.md):
 *
 *   resolution=raw|hourly|daily  format=csv|ndjson|parquet  from=ISO  to=ISO  [schema=1|2]  [values=raw|corrected]
 *   [sites=a,b] [devices=d1,d2] [bbox=minLon,minLat,maxLon,maxLat] [metrics=pm25,no2] [after=<row key>]
 */

/** Most ids in `sites` or `devices`: a long list belongs in a bbox or no filter (and keeps the URL short). */
export const MAX_EXPORT_IDS = 500

/** Longest `after` value: a time, two ids (ID_PATTERN, at most 64 characters each) and a metric fit easily. */
const MAX_AFTER_CHARS = 300

/** A query the export cannot run, with the HTTP status that says why (400 bad query, 404 unknown site). */
export class ExportQueryError extends Error {
  readonly code: string
  readonly status: 400 | 404

  constructor(code: string, message: string, status: 400 | 404 = 400) {
    super(message)
    this.name = 'ExportQueryError'
    this.code = code
    this.status = status
  }
}

const isoDateTime = (name: string) =>
  z.iso.datetime({
    offset: true,
    error: `${name} is required: an ISO 8601 date-time with Z or an offset, e.g. 2026-11-29T07:00:00Z`,
  })

const idList = (name: string, id: z.ZodString) =>
  z
    .string()
    .transform((s) => s.split(','))
    .pipe(
      z
        .array(id)
        .min(1)
        .max(MAX_EXPORT_IDS, `${name}: at most ${MAX_EXPORT_IDS} ids`)
        .transform((ids) => [...new Set(ids)].sort()),
    )

const Bbox = z
  .string()
  .transform((s) => s.split(',').map((part) => (part.trim() === '' ? Number.NaN : Number(part))))
  .pipe(
    z
      .tuple([
        z.number().min(-180).max(180),
        z.number().min(-90).max(90),
        z.number().min(-180).max(180),
        z.number().min(-90).max(90),
      ])
      .refine(([minLon, minLat, maxLon, maxLat]) => minLon <= maxLon && minLat <= maxLat, {
        message: 'bbox is minLon,minLat,maxLon,maxLat (WGS84 degrees) with min ≤ max',
      }),
  )

const MetricList = z
  .string()
  .transform((s) => s.split(','))
  .pipe(z.array(z.enum(METRICS, { error: `metrics must be a comma-separated list of ${METRICS.join(', ')}` })).min(1))

const SCHEMA_TEXT = EXPORT_SCHEMA_VERSIONS.map(String) as ['1', '2']

export const ExportQueryParams = z.strictObject(
  {
    resolution: z.enum(EXPORT_RESOLUTIONS, {
      error: `resolution is required: one of ${EXPORT_RESOLUTIONS.join(', ')}`,
    }),
    format: z.enum(EXPORT_FORMATS, { error: `format must be one of ${EXPORT_FORMATS.join(', ')}` }).default('csv'),
    from: isoDateTime('from'),
    to: isoDateTime('to'),
    schema: z
      .enum(SCHEMA_TEXT, { error: `schema must be one of ${SCHEMA_TEXT.join(', ')} (the export schema version)` })
      .default(String(LATEST_EXPORT_SCHEMA) as '2')
      .transform((v): ExportSchemaVersion => (v === '1' ? 1 : 2)),
    values: z.enum(EXPORT_VALUES, { error: `values must be one of ${EXPORT_VALUES.join(', ')}` }).default('raw'),
    sites: idList('sites', SiteId).optional(),
    devices: idList('devices', DeviceId).optional(),
    bbox: Bbox.optional(),
    metrics: MetricList.optional(),
    after: z.string().min(1).max(MAX_AFTER_CHARS).optional(),
  },
  {
    error: (issue) =>
      issue.code === 'unrecognized_keys' ? `unknown query parameter: ${issue.keys.join(', ')}` : undefined,
  },
)

export type ExportQueryParams = z.output<typeof ExportQueryParams>

/**
 * Where a resumed export starts: strictly after this row in the export's order. Raw rows sort by site ('' for
 * no site first), device, time, metric; hourly and daily rows by site, time, metric (METRICS order).
 */
export interface ExportAfter {
  readonly siteId: string
  /** Raw exports only; '' for aggregates. */
  readonly deviceId: string
  readonly ts: number
  readonly metricIndex: number
}

export interface ExportRequest {
  readonly resolution: ExportResolution
  readonly format: ExportFormat
  readonly schema: ExportSchemaVersion
  readonly values: ExportValues
  readonly query: ExportQuery
  readonly after?: ExportAfter
}

/** The first cells of the last row a client has, as written (`after`), back into a position in the order. */
export function parseAfter(resolution: ExportResolution, text: string): ExportAfter {
  const parts = text.split(',')
  const expected = resolution === 'raw' ? 'time,site_id,device_id,metric' : 'time,site_id,metric'
  const fail = (why: string) =>
    new ExportQueryError(
      'invalid_after',
      `after: ${why}; give the first cells of the last complete row you have, as written: ${expected}`,
    )
  if (parts.length !== expected.split(',').length) throw fail(`expected ${expected.split(',').length} fields`)
  const [time = '', siteId = '', third = '', fourth = ''] = parts
  const ts = z.iso.datetime({ offset: true }).safeParse(time).success ? Date.parse(time) : Number.NaN
  if (!Number.isFinite(ts)) throw fail(`${JSON.stringify(time)} is not an ISO 8601 date-time`)
  const deviceId = resolution === 'raw' ? third : ''
  const metric = resolution === 'raw' ? fourth : third
  const metricIndex = METRICS.indexOf(metric as Metric)
  if (metricIndex < 0) throw fail(`${JSON.stringify(metric)} is not a metric`)
  if (siteId !== '' && !SiteId.safeParse(siteId).success) throw fail('site_id is not a site id')
  if (resolution !== 'raw' && siteId === '') throw fail('site_id is empty')
  if (resolution === 'raw' && !DeviceId.safeParse(deviceId).success) throw fail('device_id is not a device id')
  return { siteId, deviceId, ts, metricIndex }
}

/** Sites a bbox selects (inclusive edges), by their registry coordinates. */
function sitesInBbox(sites: readonly Site[], [minLon, minLat, maxLon, maxLat]: readonly number[]): Set<string> {
  const inside = new Set<string>()
  for (const s of sites) {
    if (s.lon >= (minLon ?? 0) && s.lon <= (maxLon ?? 0) && s.lat >= (minLat ?? 0) && s.lat <= (maxLat ?? 0)) {
      inside.add(s.id)
    }
  }
  return inside
}

/**
 * Resolves validated parameters against the registered sites: unknown sites are a 404, sites outside `visible`
 * call `refuse` (which throws), a bbox selects sites by coordinates, and a caller limited to some sites gets
 * only those. Shared by the API and the CLI (which sees every site). Throws ExportQueryError.
 */
export function buildExportRequest(
  q: ExportQueryParams,
  registered: readonly Site[],
  visible: 'all' | ReadonlySet<string>,
  refuse: (siteIds: readonly string[]) => void,
): ExportRequest {
  if (Date.parse(q.from) >= Date.parse(q.to)) {
    throw new ExportQueryError('invalid_request', `from (${q.from}) must be before to (${q.to})`)
  }
  if (q.values === 'corrected' && q.schema < 2) {
    throw new ExportQueryError(
      'invalid_request',
      'values=corrected needs schema=2: schema 1 has no columns for corrected values',
    )
  }
  const known = new Set(registered.map((s) => s.id))
  let siteIds: string[] | undefined
  if (q.sites !== undefined) {
    const unknown = q.sites.filter((id) => !known.has(id))
    if (unknown.length > 0) {
      throw new ExportQueryError(
        'site_not_found',
        `no site with id ${unknown.map((id) => JSON.stringify(id)).join(', ')}`,
        404,
      )
    }
    const refused = visible === 'all' ? [] : q.sites.filter((id) => !visible.has(id))
    if (refused.length > 0) refuse(refused)
    siteIds = q.sites
  }
  if (q.bbox !== undefined) {
    const inside = sitesInBbox(registered, q.bbox)
    siteIds = (siteIds ?? [...known].sort()).filter((id) => inside.has(id))
  }
  if (visible !== 'all') siteIds = (siteIds ?? [...known].sort()).filter((id) => visible.has(id))

  const metrics: Metric[] = METRICS.filter((m) => q.metrics === undefined || q.metrics.includes(m))
  return {
    resolution: q.resolution,
    format: q.format,
    schema: q.schema,
    values: q.values,
    query: {
      metrics,
      from: Date.parse(q.from),
      to: Date.parse(q.to),
      ...(siteIds === undefined ? {} : { siteIds }),
      ...(q.devices === undefined ? {} : { deviceIds: q.devices }),
    },
    ...(q.after === undefined ? {} : { after: parseAfter(q.resolution, q.after) }),
  }
}

/** `skolluft-hourly-20260112T000000Z-20260119T000000Z.csv` */
export function exportFileName(request: ExportRequest): string {
  const stamp = (ms: number) => new Date(ms).toISOString().replace(/[-:]|\.\d{3}/g, '')
  return `skolluft-${request.resolution}-${stamp(request.query.from)}-${stamp(request.query.to)}.${request.format}`
}
