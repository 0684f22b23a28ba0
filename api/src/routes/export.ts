import { once } from 'node:events'
import type { Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { createGzip } from 'node:zlib'
import {
  type AggregateRow,
  aggregateCells,
  createDailyFolder,
  createIsoTimeFormatter,
  createLineFormatter,
  DeviceId,
  EXPORT_CONTENT_TYPES,
  EXPORT_FORMATS,
  EXPORT_RESOLUTIONS,
  EXPORT_SCHEMA_ID,
  type ExportFormat,
  type ExportResolution,
  exportHeader,
  holds,
  hourlyRow,
  METRICS,
  type Metric,
  rawRows,
  regulatoryDayStart,
  type Site,
  SiteId,
  sitesFor,
} from '@skolluft/core'
import type { ExportQuery, ReadingStore } from '@skolluft/storage'
import type { Request, Response } from 'express'
import { Router } from 'express'
import { z } from 'zod'
import { authOf, requirePermission } from '../auth/authenticate.ts'
import type { ApiContext } from '../options.ts'
import { HttpProblem, methodNotAllowed, validationProblem } from '../problem.ts'
import { MAX_SERIES_SPAN } from '../series-query.ts'

/**
 * Bulk export (issue 5), schema `skolluft-export/1` (core export-schema.ts, docs/export.md):
 *
 *   GET /export?resolution=raw|hourly|daily&format=csv|ndjson&from=ISO&to=ISO
 *              [&sites=a,b][&devices=d1,d2][&bbox=minLon,minLat,maxLon,maxLat][&metrics=pm25,no2]
 *
 * Streamed from storage in batches with back-pressure (memory stays flat), gzip (level 1) when the client
 * accepts it; rows in a fixed order, so the same request over the same data returns the same bytes.
 *
 * Access: holders of `export` (admin, staff, researcher tokens) get any resolution with no limit on the
 * window. Everyone else gets hourly and daily data of the sites they may read series of (public map on: every
 * site, as the map), with the window capped as the series endpoint caps it (MAX_PUBLIC_EXPORT_SPAN); raw
 * readings need `export`.
 */

/** The series endpoint's windows (series-query.ts): the same rules as the map for callers without `export`. */
export const MAX_PUBLIC_EXPORT_SPAN: Readonly<
  Record<Exclude<ExportResolution, 'raw'>, (typeof MAX_SERIES_SPAN)['1h']>
> = {
  hourly: MAX_SERIES_SPAN['1h'],
  daily: MAX_SERIES_SPAN['1d'],
}

/** Most ids in `sites` or `devices`: a long list belongs in a bbox or no filter (and keeps the URL short). */
export const MAX_EXPORT_IDS = 500

const READ_ONLY = ['GET', 'HEAD'] as const

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

export const ExportQueryParams = z.strictObject(
  {
    resolution: z.enum(EXPORT_RESOLUTIONS, {
      error: `resolution is required: one of ${EXPORT_RESOLUTIONS.join(', ')}`,
    }),
    format: z.enum(EXPORT_FORMATS, { error: `format must be one of ${EXPORT_FORMATS.join(', ')}` }).default('csv'),
    from: isoDateTime('from'),
    to: isoDateTime('to'),
    sites: idList('sites', SiteId).optional(),
    devices: idList('devices', DeviceId).optional(),
    bbox: Bbox.optional(),
    metrics: MetricList.optional(),
  },
  {
    error: (issue) =>
      issue.code === 'unrecognized_keys' ? `unknown query parameter: ${issue.keys.join(', ')}` : undefined,
  },
)

export type ExportQueryParams = z.output<typeof ExportQueryParams>

export interface ExportRequest {
  readonly resolution: ExportResolution
  readonly format: ExportFormat
  readonly query: ExportQuery
}

function badQuery(code: string, detail: string): HttpProblem {
  return new HttpProblem({ status: 400, code, title: 'Invalid export query', detail })
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

/** Validates the query and the caller's access; resolves sites and bbox. Throws HttpProblem. */
async function resolveExport(req: Request, ctx: ApiContext): Promise<ExportRequest> {
  const parsed = ExportQueryParams.safeParse(req.query)
  if (!parsed.success) throw validationProblem(parsed.error, 'export query')
  const q = parsed.data
  const from = Date.parse(q.from)
  const to = Date.parse(q.to)
  if (from >= to) throw badQuery('invalid_request', `from (${q.from}) must be before to (${q.to})`)

  const { principal } = authOf(req)
  let visible: 'all' | ReadonlySet<string>
  if (holds(principal, 'export', ctx.options)) {
    visible = sitesFor(principal, 'export', ctx.options)
  } else {
    if (q.resolution === 'raw') requirePermission(req, ctx, 'export', 'export raw readings')
    requirePermission(req, ctx, 'series:hourly', 'export series')
    visible = sitesFor(principal, 'series:hourly', ctx.options)
    const cap = MAX_PUBLIC_EXPORT_SPAN[q.resolution === 'raw' ? 'hourly' : q.resolution]
    if (to - from > cap.ms) {
      throw badQuery(
        'span_too_long',
        `without the export permission, resolution=${q.resolution} allows at most ${cap.label} between from and to; ` +
          'split the window into consecutive requests, or use an API token with the export permission (no limit)',
      )
    }
  }

  return buildExportRequest(q, await ctx.storage.registry.listSites(), visible, () => {
    requirePermission(req, ctx, 'export', 'export these sites')
  })
}

/**
 * Resolves validated parameters against the registered sites: unknown sites are a 404, sites outside `visible`
 * call `refuse` (which throws), a bbox selects sites by coordinates, and a caller limited to some sites gets
 * only those. Shared by the API and the CLI (which sees every site).
 */
export function buildExportRequest(
  q: ExportQueryParams,
  registered: readonly Site[],
  visible: 'all' | ReadonlySet<string>,
  refuse: (siteIds: readonly string[]) => void,
): ExportRequest {
  if (Date.parse(q.from) >= Date.parse(q.to)) {
    throw badQuery('invalid_request', `from (${q.from}) must be before to (${q.to})`)
  }
  const known = new Set(registered.map((s) => s.id))
  let siteIds: string[] | undefined
  if (q.sites !== undefined) {
    const unknown = q.sites.filter((id) => !known.has(id))
    if (unknown.length > 0) {
      throw new HttpProblem({
        status: 404,
        code: 'site_not_found',
        title: 'Not Found',
        detail: `no site with id ${unknown.map((id) => JSON.stringify(id)).join(', ')}`,
      })
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
    query: {
      metrics,
      from: Date.parse(q.from),
      to: Date.parse(q.to),
      ...(siteIds === undefined ? {} : { siteIds }),
      ...(q.devices === undefined ? {} : { deviceIds: q.devices }),
    },
  }
}

/** `skolluft-hourly-20260112T000000Z-20260119T000000Z.csv` */
export function exportFileName(request: ExportRequest): string {
  const stamp = (ms: number) => new Date(ms).toISOString().replace(/[-:]|\.\d{3}/g, '')
  return `skolluft-${request.resolution}-${stamp(request.query.from)}-${stamp(request.query.to)}.${request.format}`
}

/**
 * The lines of an export, in chunks of one storage batch each (header first for CSV). Pure apart from the
 * store: the CLI writes the same chunks to a file, so a file and a download of the same query are identical.
 */
export async function* exportChunks(readings: ReadingStore, request: ExportRequest): AsyncGenerator<ExportChunk> {
  const { resolution, format, query } = request
  const line = createLineFormatter(format, resolution)
  const header = exportHeader(format, resolution)
  if (header !== '') yield { text: header, rows: 0 }
  if (resolution === 'raw') {
    const iso = createIsoTimeFormatter()
    for await (const batch of readings.streamReadings(query)) {
      let text = ''
      let rows = 0
      for (const reading of batch) {
        for (const cells of rawRows(reading, query.metrics, iso)) {
          text += line(cells)
          rows++
        }
      }
      yield { text, rows }
    }
    return
  }
  const iso = createIsoTimeFormatter()
  // Days from the one containing `from` (as the series endpoint's 1d); hours overlapping [from, to).
  const hourQuery = resolution === 'daily' ? { ...query, from: regulatoryDayStart(query.from) } : query
  const daily = resolution === 'daily' ? createDailyFolder(query.metrics) : undefined
  const rowsOf = (aggregates: readonly AggregateRow[]): ExportChunk => {
    let text = ''
    for (const row of aggregates) text += line(aggregateCells(row, iso))
    return { text, rows: aggregates.length }
  }
  for await (const batch of readings.streamHourly(hourQuery)) {
    yield rowsOf(daily === undefined ? batch.map(hourlyRow) : batch.flatMap((hour) => daily.push(hour)))
  }
  if (daily !== undefined) yield rowsOf(daily.end())
}

/** Text of whole rows, and how many. */
export interface ExportChunk {
  readonly text: string
  readonly rows: number
}

/** Writes, waiting for 'drain' when the stream's buffer is full (or for the response to close). */
async function write(out: Writable, res: Response, chunk: string): Promise<void> {
  if (chunk === '' || out.write(chunk)) return
  const ac = new AbortController()
  await Promise.race([once(out, 'drain', { signal: ac.signal }), once(res, 'close', { signal: ac.signal })]).finally(
    () => {
      ac.abort()
    },
  )
}

function acceptsGzip(req: Request): boolean {
  return req.acceptsEncodings('gzip', 'identity') === 'gzip'
}

export function exportRouter(ctx: ApiContext): Router {
  const router = Router()
  router
    .route('/export')
    .get(async (req, res) => {
      const request = await resolveExport(req, ctx)
      if (req.method === 'HEAD') {
        res.set({
          'Content-Type': EXPORT_CONTENT_TYPES[request.format],
          'X-Skolluft-Export-Schema': EXPORT_SCHEMA_ID,
        })
        res.end()
        return
      }
      const started = Date.now()
      res.status(200)
      res.set({
        'Content-Type': EXPORT_CONTENT_TYPES[request.format],
        'Content-Disposition': `attachment; filename="${exportFileName(request)}"`,
        'X-Skolluft-Export-Schema': EXPORT_SCHEMA_ID,
        'Cache-Control': 'private, no-store',
      })
      res.vary('Accept-Encoding')
      res.vary('Authorization')
      res.vary('Cookie')
      const gzip = acceptsGzip(req)
      // Own gzip stream (level 1, as the app's compression middleware, which steps aside for an encoded body
      // and would not compress application/x-ndjson at all): deterministic bytes for the same input.
      const zip = gzip ? createGzip({ level: 1 }) : undefined
      if (zip !== undefined) res.set('Content-Encoding', 'gzip')
      const out: Writable = zip ?? res
      // Settles when the gzip stream has flushed into the response; a client that goes away rejects it (logged).
      const piped =
        zip === undefined
          ? undefined
          : pipeline(zip, res).catch((error: unknown) => {
              ctx.log.debug({ err: error }, 'export gzip stream ended early')
            })
      let bytes = 0
      let rows = 0
      try {
        for await (const chunk of exportChunks(ctx.storage.readings, request)) {
          if (res.destroyed) break
          bytes += Buffer.byteLength(chunk.text)
          rows += chunk.rows
          await write(out, res, chunk.text)
        }
        if (res.destroyed) {
          zip?.destroy()
          ctx.log.info({ resolution: request.resolution, bytes }, 'export aborted by the client')
        } else {
          out.end()
          ctx.log.info(
            { resolution: request.resolution, format: request.format, rows, bytes, ms: Date.now() - started },
            'export sent',
          )
        }
        await piped
      } catch (error) {
        // Headers are out: cut the body so the client sees an incomplete transfer, never a short file.
        ctx.log.error({ err: error, resolution: request.resolution }, 'export failed')
        zip?.destroy()
        res.destroy(error instanceof Error ? error : undefined)
      }
    })
    .all(methodNotAllowed(READ_ONLY))
  return router
}
