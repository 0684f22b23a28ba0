import { createHash } from 'node:crypto'
import { once } from 'node:events'
import type { Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { createGzip } from 'node:zlib'
import {
  EXPORT_CONTENT_TYPES,
  type ExportResolution,
  exportSchemaId,
  holds,
  READING_QC_VERSION,
  sitesFor,
} from '@skolluft/core'
import {
  buildExportRequest,
  buildManifest,
  type ExportChunk,
  ExportQueryError,
  ExportQueryParams,
  type ExportRequest,
  type ExportSources,
  exportChunks,
  exportFileName,
  loadExportCorrections,
  newExportStats,
  softwareVersion,
} from '@skolluft/export'
import type { Request, Response } from 'express'
import { Router } from 'express'
import { authOf, requirePermission } from '../auth/authenticate.ts'
import type { ApiContext } from '../options.ts'
import { HttpProblem, methodNotAllowed, validationProblem } from '../problem.ts'
import { MAX_SERIES_SPAN } from '../series-query.ts'

/**
 * Bulk export (issue 5), schemas `skolluft-export/1` and `/2` (core export-schema.ts, docs/export.md); the query
 * language and the row pipeline are @skolluft/export's, shared with `skolluft export`:
 *
 *   GET /export?resolution=raw|hourly|daily&format=csv|ndjson|parquet&from=ISO&to=ISO[&schema=1|2]
 *              [&values=raw|corrected][&sites=a,b][&devices=d1,d2][&bbox=…][&metrics=pm25,no2][&after=<row key>]
 *   GET /export/manifest?<the same query>   the manifest of that file (rows, bytes, SHA-256, corrections, …)
 *
 * Streamed from storage in batches with back-pressure (memory stays flat), gzip (level 1) when the client
 * accepts it; rows in a fixed order, so the same request over the same data returns the same bytes.
 *
 * Access: holders of `export` (admin, staff, researcher tokens) get any resolution with no limit on the
 * window and no paging. Everyone else gets hourly and daily data of the sites they may read series of (public
 * map on: every site, as the map), with the window capped as the series endpoint caps it
 * (MAX_PUBLIC_EXPORT_SPAN); raw readings need `export`. Quota: EXPORT_QUOTA concurrent exports per caller.
 */

/** The series endpoint's windows (series-query.ts): the same rules as the map for callers without `export`. */
export const MAX_PUBLIC_EXPORT_SPAN: Readonly<
  Record<Exclude<ExportResolution, 'raw'>, (typeof MAX_SERIES_SPAN)['1h']>
> = {
  hourly: MAX_SERIES_SPAN['1h'],
  daily: MAX_SERIES_SPAN['1d'],
}

/**
 * Concurrent exports, instead of page and rate limits (docs/export.md "Quotas"): each export holds one of the
 * machine's cores while it runs (~300 000 rows/s, BENCHMARKS.md), so two per caller let a researcher fetch two
 * things at once and four in all leave the map and ingest room on a small server. Engineering choice.
 */
export const EXPORT_QUOTA = { perCaller: 2, total: 4 } as const

/** Seconds a refused caller is told to wait: a small export takes well under that. */
const EXPORT_RETRY_AFTER_S = 10

export { ExportQueryParams }

const READ_ONLY = ['GET', 'HEAD'] as const

function problemOf(error: ExportQueryError): HttpProblem {
  return new HttpProblem({
    status: error.status,
    code: error.code,
    title: error.status === 404 ? 'Not Found' : 'Invalid export query',
    detail: error.message,
  })
}

/** Validates the query and the caller's access; resolves sites and bbox. Throws HttpProblem. */
async function resolveExport(req: Request, ctx: ApiContext): Promise<ExportRequest> {
  const parsed = ExportQueryParams.safeParse(req.query)
  if (!parsed.success) throw validationProblem(parsed.error, 'export query')
  const q = parsed.data
  const from = Date.parse(q.from)
  const to = Date.parse(q.to)
  if (from >= to)
    throw problemOf(new ExportQueryError('invalid_request', `from (${q.from}) must be before to (${q.to})`))

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
      throw problemOf(
        new ExportQueryError(
          'span_too_long',
          `without the export permission, resolution=${q.resolution} allows at most ${cap.label} between from and to; ` +
            'split the window into consecutive requests, or use an API token with the export permission (no limit)',
        ),
      )
    }
  }
  try {
    return buildExportRequest(q, await ctx.storage.registry.listSites(), visible, () => {
      requirePermission(req, ctx, 'export', 'export these sites')
    })
  } catch (error) {
    throw error instanceof ExportQueryError ? problemOf(error) : error
  }
}

/** The caller's key for the quota: the account or token, or the address of an anonymous caller. */
function callerKey(req: Request): string {
  const { principal } = authOf(req)
  return principal.kind === 'anonymous' ? `ip:${req.ip ?? ''}` : `${principal.kind}:${principal.id}`
}

/** Counts running exports per caller and in all; `acquire` throws 429 when a quota is used up. */
export function createExportGate(quota: { readonly perCaller: number; readonly total: number } = EXPORT_QUOTA): {
  acquire(key: string): () => void
} {
  const running = new Map<string, number>()
  let total = 0
  return {
    acquire(key) {
      const mine = running.get(key) ?? 0
      if (mine >= quota.perCaller || total >= quota.total) {
        throw new HttpProblem({
          status: 429,
          code: 'export_quota',
          title: 'Too many exports at once',
          detail:
            mine >= quota.perCaller
              ? `you have ${mine} exports running; at most ${quota.perCaller} run at once per caller. Retry when one has finished`
              : `the server runs ${total} exports; at most ${quota.total} run at once. Retry shortly`,
          headers: { 'Retry-After': String(EXPORT_RETRY_AFTER_S) },
        })
      }
      running.set(key, mine + 1)
      total++
      let released = false
      return () => {
        if (released) return
        released = true
        total--
        const left = (running.get(key) ?? 1) - 1
        if (left <= 0) running.delete(key)
        else running.set(key, left)
      }
    },
  }
}

/** What an export reads: the readings, and with values=corrected each device's corrector. */
async function sourcesFor(ctx: ApiContext, request: ExportRequest) {
  const corrections = request.values === 'corrected' ? await loadExportCorrections(ctx.storage) : undefined
  const sources: ExportSources = {
    readings: ctx.storage.readings,
    ...(corrections === undefined ? {} : { correctorFor: corrections.correctorFor }),
  }
  return { sources, corrections }
}

function chunkBytes(chunk: ExportChunk): Buffer | Uint8Array {
  return typeof chunk.data === 'string' ? Buffer.from(chunk.data, 'utf8') : chunk.data
}

/**
 * The first byte of `Range: bytes=<n>-` (the form resuming clients send); undefined for no range or any other
 * form (several ranges, suffix ranges), which is answered with the whole body (RFC 9110 §14.2 lets a server
 * ignore a Range it does not support).
 */
export function byteRangeStart(header: string | undefined): number | undefined {
  const match = header === undefined ? null : /^bytes=(\d{1,15})-$/.exec(header.trim())
  return match?.[1] === undefined ? undefined : Number(match[1])
}

/** Length and SHA-256 of an export's identity body, by running it without sending it. */
async function measureExport(
  sources: ExportSources,
  request: ExportRequest,
  createdBy: string,
  stats = newExportStats(),
): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256')
  let bytes = 0
  for await (const chunk of exportChunks(sources, request, { createdBy, stats })) {
    const data = chunkBytes(chunk)
    hash.update(data)
    bytes += data.length
  }
  return { bytes, sha256: hash.digest('hex') }
}

/** Writes, waiting for 'drain' when the stream's buffer is full (or for the response to close). */
async function write(out: Writable, res: Response, data: string | Uint8Array): Promise<void> {
  if (data.length === 0 || out.write(data)) return
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

/** The query as the caller spelled it, for the manifest (only parameters the export knows; strings only). */
function spelledQuery(req: Request): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [key, value] of Object.entries(req.query)) if (typeof value === 'string') out[key] = value
  return out
}

export function exportRouter(ctx: ApiContext): Router {
  const router = Router()
  const gate = createExportGate()
  const createdBy = softwareVersion().then((s) => `${s.name} ${s.version}`)

  router
    .route('/export')
    .get(async (req, res) => {
      const request = await resolveExport(req, ctx)
      const headers = {
        'Content-Type': EXPORT_CONTENT_TYPES[request.format],
        'X-Skolluft-Export-Schema': exportSchemaId(request.schema),
        // no-transform: the route encodes the body itself (its own gzip, or identity for byte ranges); the app's
        // compression middleware must not encode it again.
        'Cache-Control': 'private, no-store, no-transform',
      }
      if (req.method === 'HEAD') {
        res.set(headers)
        res.end()
        return
      }
      const release = gate.acquire(callerKey(req))
      res.on('close', release)
      const { sources } = await sourcesFor(ctx, request)
      const started = Date.now()
      // A byte range (curl -C -, download managers): the body is deterministic, so a first pass measures it
      // (length and SHA-256, the ETag) and the second sends it from the asked byte on.
      const range = byteRangeStart(req.get('range'))
      let skip = 0
      res.status(200)
      if (range !== undefined) {
        const whole = await measureExport(sources, request, await createdBy)
        const etag = `"sha256-${whole.sha256}"`
        const ifRange = req.get('if-range')
        if (ifRange === undefined || ifRange === etag) {
          if (range >= whole.bytes) {
            throw new HttpProblem({
              status: 416,
              code: 'range_not_satisfiable',
              title: 'Range Not Satisfiable',
              detail: `the export has ${whole.bytes} bytes; the range starts at byte ${range}`,
              headers: { 'Content-Range': `bytes */${whole.bytes}` },
            })
          }
          skip = range
          res.status(206)
          res.set({
            'Content-Range': `bytes ${range}-${whole.bytes - 1}/${whole.bytes}`,
            'Content-Length': String(whole.bytes - range),
            ETag: etag,
          })
        }
      }
      res.set({
        ...headers,
        'Accept-Ranges': 'bytes',
        'Content-Disposition': `attachment; filename="${exportFileName(request)}"`,
      })
      res.vary('Accept-Encoding')
      res.vary('Authorization')
      res.vary('Cookie')
      // A range is of the identity body: a ranged request is never gzipped.
      const gzip = range === undefined && acceptsGzip(req)
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
        for await (const chunk of exportChunks(sources, request, { createdBy: await createdBy })) {
          if (res.destroyed) break
          let data = chunkBytes(chunk)
          rows += chunk.rows
          if (skip > 0) {
            const skipped = Math.min(skip, data.length)
            skip -= skipped
            data = data.subarray(skipped)
          }
          bytes += data.length
          await write(out, res, data)
          // A client that hung up while we waited: stop before reading another storage batch.
          if (res.destroyed) break
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
      } finally {
        release()
      }
    })
    .all(methodNotAllowed(READ_ONLY))

  router
    .route('/export/manifest')
    .get(async (req, res) => {
      const request = await resolveExport(req, ctx)
      const release = gate.acquire(callerKey(req))
      try {
        const { sources, corrections } = await sourcesFor(ctx, request)
        const stats = newExportStats()
        const { bytes, sha256 } = await measureExport(sources, request, await createdBy, stats)
        if (req.socket.destroyed) return
        res.set('Cache-Control', 'private, no-store')
        res.json(
          buildManifest({
            request,
            query: spelledQuery(req),
            file: exportFileName(request),
            rows: stats.rows,
            bytes,
            sha256,
            software: await softwareVersion(),
            corrections: corrections?.describe(stats.corrections) ?? [],
            qualityChecks: `skolluft reading QC v${READING_QC_VERSION} (docs/quality-flags.md)`,
            env: ctx.options.exportEnv,
            generatedAt: ctx.clock(),
          }),
        )
      } finally {
        release()
      }
    })
    .all(methodNotAllowed(READ_ONLY))
  return router
}
