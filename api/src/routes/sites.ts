import {
  aggregateWindowCount,
  canOnSite,
  isValidId,
  METRIC_INFO,
  type SiteFeature,
  sitesFor,
  withEmptyWindows,
} from '@skolluft/core'
import type { Request, Response } from 'express'
import { Router } from 'express'
import { authOf, cacheFor, requirePermission, requireSitePermission } from '../auth/authenticate.ts'
import type { DeviceRow, MapSnapshots } from '../map-snapshot.ts'
import type { ApiContext } from '../options.ts'
import { methodNotAllowed, notFoundProblem } from '../problem.ts'
import { MAX_SERIES_POINTS, parseSeriesQuery, seriesTooLargeProblem } from '../series-query.ts'
import { siteOr404 } from '../site-lookup.ts'

/** RFC 7946 §12: the media type of GeoJSON. */
export const GEOJSON_CONTENT_TYPE = 'application/geo+json'

const READ_ONLY = ['GET', 'HEAD'] as const

/**
 * Means and coverage go out with 3 decimals: sensors resolve 0.1 µg/m³, and 17-digit floats made a
 * year of hourly points 45 % larger and slower to serialise and compress (bench/map-api.ts). Validity
 * is decided on the full value in storage; raw values and min/max are sent as measured.
 */
const MEAN_DECIMALS = 1_000

function roundMean<T extends number | null>(value: T): T | number {
  return value === null ? value : Math.round(value * MEAN_DECIMALS) / MEAN_DECIMALS
}

function acceptsGzip(req: Request): boolean {
  return req.acceptsEncodings('gzip', 'identity') === 'gzip'
}

/**
 * Site data:
 *   GET /sites             FeatureCollection of every site the caller may see (map:read), with latest
 *                          values, index, device health summary and open breaches
 *   GET /sites/:id         one Feature; plus `devices` (each device's health) for callers with devices:read
 *   GET /sites/:id/series  time series of one metric (see series-query.ts); raw needs series:raw; 1h and 1d
 *                          have every window of the range, those without samples with n 0 (core withEmptyWindows)
 */
export function sitesRouter(ctx: ApiContext, snapshots: MapSnapshots): Router {
  const { storage, clock, options } = ctx
  const router = Router()

  async function findFeature(
    id: string,
  ): Promise<{ feature: SiteFeature; snapshotDevices: readonly DeviceRow[] | undefined }> {
    const snapshot = await snapshots.get()
    const feature = isValidId(id) ? snapshot.byId.get(id) : undefined
    if (feature === undefined) throw notFoundProblem(`no site with id ${JSON.stringify(id)}`, 'site_not_found')
    return { feature, snapshotDevices: snapshot.devicesBySite.get(id) }
  }

  function sendGeoJson(req: Request, res: Response, json: string, gzipped: Buffer | null, etag: string | null): void {
    res.type(GEOJSON_CONTENT_TYPE)
    res.vary('Accept-Encoding')
    if (etag !== null) res.set('ETag', etag)
    if (gzipped !== null && acceptsGzip(req) && !req.fresh) {
      // Already compressed once per snapshot; the compression middleware leaves an encoded body alone.
      res.set('Content-Encoding', 'gzip')
      res.send(gzipped)
      return
    }
    res.send(json)
  }

  router
    .route('/sites')
    .get(async (req, res) => {
      const principal = requirePermission(req, ctx, 'map:read', 'read the map')
      const visible = sitesFor(principal, 'map:read', options)
      const snapshot = await snapshots.get()
      const isPublic = options.publicMap
      cacheFor(res, isPublic, options.publicMaxAgeS)
      if (visible === 'all') {
        sendGeoJson(req, res, snapshot.json, snapshot.gzipped, snapshot.etag)
        return
      }
      const features = snapshot.features.filter((f) => visible.has(f.id))
      sendGeoJson(req, res, JSON.stringify({ type: 'FeatureCollection', features }), null, null)
    })
    .all(methodNotAllowed(READ_ONLY))

  router
    .route('/sites/:id')
    .get(async (req, res) => {
      const { feature, snapshotDevices } = await findFeature(req.params.id)
      requireSitePermission(req, ctx, 'map:read', feature.id, 'read this site')
      const { principal } = authOf(req)
      const showDevices = canOnSite(principal, 'devices:read', feature.id, options)
      cacheFor(res, options.publicMap && !showDevices, options.publicMaxAgeS)
      // The body depends on who asks (devices or not): a shared cache must not hand one caller's copy to another.
      res.vary('Cookie')
      res.vary('Authorization')
      const body = showDevices
        ? { ...feature, properties: { ...feature.properties, devices: snapshotDevices ?? [] } }
        : feature
      res.type(GEOJSON_CONTENT_TYPE).json(body)
    })
    .all(methodNotAllowed(READ_ONLY))

  router
    .route('/sites/:id/series')
    .get(async (req, res) => {
      const site = await siteOr404(storage.registry, req.params.id)
      const query = parseSeriesQuery(req.query, clock())
      const permission = query.every === 'raw' ? 'series:raw' : 'series:hourly'
      requireSitePermission(
        req,
        ctx,
        permission,
        site.id,
        query.every === 'raw' ? 'read raw readings' : 'read this series',
      )
      if (query.deviceId !== undefined && !(await storage.registry.getDevice(query.deviceId))) {
        throw notFoundProblem(`no device with id ${JSON.stringify(query.deviceId)}`, 'device_not_found')
      }
      // An aggregate series has every window of the range (empty ones too), so its size is known before the query.
      if (query.every !== 'raw' && aggregateWindowCount(query.every, query.from, query.to) > MAX_SERIES_POINTS) {
        throw seriesTooLargeProblem(query.every)
      }
      const storageQuery = {
        siteId: site.id,
        deviceId: query.deviceId,
        metric: query.metric,
        from: query.from,
        to: query.to,
        // One more than the cap tells "exactly the cap" from "more than the cap" without counting first.
        limit: MAX_SERIES_POINTS + 1,
      }
      const points =
        query.every === 'raw'
          ? (await storage.readings.rawSeries(storageQuery)).map((p) => ({
              t: p.t,
              value: p.value,
              device: p.deviceId,
            }))
          : withEmptyWindows(
              await storage.readings.aggregateSeries({ ...storageQuery, every: query.every }),
              query.every,
              query.from,
              query.to,
            ).map((p) => ({
              t: p.t,
              mean: roundMean(p.mean),
              min: p.min,
              max: p.max,
              n: p.n,
              expected: roundMean(p.expected),
              coverage: roundMean(p.coverage),
              valid: p.valid,
            }))
      if (points.length > MAX_SERIES_POINTS) throw seriesTooLargeProblem(query.every)
      cacheFor(res, options.publicMap && permission === 'series:hourly', options.publicMaxAgeS)
      res.json({
        site: site.id,
        metric: query.metric,
        unit: METRIC_INFO[query.metric].unit,
        every: query.every,
        from: new Date(query.from).toISOString(),
        to: new Date(query.to).toISOString(),
        ...(query.deviceId === undefined ? {} : { device: query.deviceId }),
        points,
      })
    })
    .all(methodNotAllowed(READ_ONLY))

  return router
}
