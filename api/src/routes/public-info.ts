import { EAQI_BANDS, GUIDELINE_LINES, isEaqiPollutant, type Metric, sitesFor } from '@skolluft/core'
import type { SiteHour, Storage } from '@skolluft/storage'
import { Router } from 'express'
import { z } from 'zod'
import { cacheFor, requirePermission } from '../auth/authenticate.ts'
import { cacheNever } from '../http-headers.ts'
import type { ApiContext } from '../options.ts'
import { methodNotAllowed, validationProblem } from '../problem.ts'

export const REPLAY_HOURS = ['24', '168'] as const

export const ReplayQuery = z.strictObject({
  metric: z.string().refine(isEaqiPollutant, 'metric must be one of pm25, pm10, no2'),
  hours: z.enum(REPLAY_HOURS, { error: 'hours must be 24 or 168' }).default('24'),
})

const HOUR_MS = 3_600_000

/**
 * How long the server reuses one replay's hourly means: the response's own Cache-Control max-age, so a reader
 * never sees older data than a browser cache may already show. Every site's hourly means over 7 days is the read
 * that breaks first at national scale (docs/scaling.md, "A country", Reads: "cache the replay").
 */
export const REPLAY_CACHE_MS = 60_000

interface ReplayQueryKey {
  readonly metric: Metric
  readonly from: number
  readonly to: number
}

/**
 * `hourlyBySite` with a memory of REPLAY_CACHE_MS: an identical query (metric, from, to) within that time gets the
 * same rows, and queries that arrive while one is running share its storage call (the promise is stored). A failed
 * call is forgotten at once. Entries are dropped once expired, so the map holds at most the keys asked for within
 * the last REPLAY_CACHE_MS (3 metrics × 2 windows, a few more around the turn of an hour).
 */
function cachedHourlyBySite(
  storage: Storage,
  clock: () => number,
): (query: ReplayQueryKey) => Promise<readonly SiteHour[]> {
  const entries = new Map<string, { readonly at: number; readonly rows: Promise<readonly SiteHour[]> }>()
  return (query) => {
    const now = clock()
    for (const [key, entry] of entries) {
      if (now - entry.at >= REPLAY_CACHE_MS) entries.delete(key)
    }
    const key = `${query.metric}/${query.from}/${query.to}`
    const hit = entries.get(key)
    if (hit !== undefined) return hit.rows
    const rows = storage.readings.hourlyBySite(query)
    entries.set(key, { at: now, rows })
    // The caller awaits `rows` and sees the error; here it only stops later callers from getting it too.
    rows.catch(() => {
      if (entries.get(key)?.rows === rows) entries.delete(key)
    })
    return rows
  }
}

/**
 * What the dashboard needs besides sites:
 *   GET /config      public runtime configuration (tile URL, map centre, whether the map is public)
 *   GET /guidelines  EAQI bands and guideline lines (core aqi.ts, guidelines.ts), so clients do not copy them
 *   GET /replay      hourly means of one index pollutant for every visible site over the last 24 h or 7 days
 */
export function publicInfoRouter(ctx: ApiContext): Router {
  const { options, storage, clock } = ctx
  const router = Router()
  const hourlyBySite = cachedHourlyBySite(storage, clock)

  router
    .route('/config')
    .get((_req, res) => {
      cacheNever(res)
      res.json({
        tileUrl: options.tileUrl,
        tileAttribution: options.tileAttribution,
        publicMap: options.publicMap,
        center: options.mapCenter,
        zoom: options.mapZoom,
      })
    })
    .all(methodNotAllowed(['GET', 'HEAD']))

  router
    .route('/guidelines')
    .get((_req, res) => {
      res.set('Cache-Control', 'public, max-age=3600')
      res.json({ bands: EAQI_BANDS, lines: GUIDELINE_LINES })
    })
    .all(methodNotAllowed(['GET', 'HEAD']))

  router
    .route('/replay')
    .get(async (req, res) => {
      const principal = requirePermission(req, ctx, 'series:hourly', 'replay hourly values')
      const parsed = ReplayQuery.safeParse(req.query)
      if (!parsed.success) throw validationProblem(parsed.error, 'replay query')
      const hours = Number(parsed.data.hours)
      // The last `hours` complete hours plus the current one, on whole hours.
      const to = Math.floor(clock() / HOUR_MS) * HOUR_MS + HOUR_MS
      const from = to - (hours + 1) * HOUR_MS
      const visible = sitesFor(principal, 'series:hourly', options)
      // Shared by every caller; each sees only its visible sites' rows (filtered below, per request).
      const rows = await hourlyBySite({ metric: parsed.data.metric, from, to })
      const slots = hours + 1
      const sites: Record<string, (number | null)[]> = {}
      for (const row of rows) {
        if (visible !== 'all' && !visible.has(row.siteId)) continue
        const slot = Math.round((row.t - from) / HOUR_MS)
        if (slot < 0 || slot >= slots) continue
        let values = sites[row.siteId]
        if (values === undefined) {
          values = new Array<number | null>(slots).fill(null)
          sites[row.siteId] = values
        }
        // Hours below the validity rule (75 % coverage) are not shown as if they were valid.
        values[slot] = row.valid ? Math.round(row.mean * 10) / 10 : null
      }
      cacheFor(res, options.publicMap, REPLAY_CACHE_MS / 1000)
      res.json({
        metric: parsed.data.metric,
        from: new Date(from).toISOString(),
        to: new Date(to).toISOString(),
        hours: Array.from({ length: slots }, (_, i) => new Date(from + i * HOUR_MS).toISOString()),
        sites,
      })
    })
    .all(methodNotAllowed(['GET', 'HEAD']))

  return router
}
