import {
  isValidId,
  type LatestSummary,
  latestSummary,
  METRIC_INFO,
  type Site,
  siteFeature,
  siteFeatureCollection,
} from '@skolluft/core'
import type { LatestReading } from '@skolluft/storage'
import { Router } from 'express'
import { cachePublic } from '../http-headers.ts'
import type { ApiContext } from '../options.ts'
import { methodNotAllowed, notFoundProblem } from '../problem.ts'
import { MAX_SERIES_POINTS, parseSeriesQuery, seriesTooLargeProblem } from '../series-query.ts'

/** RFC 7946 §12: the media type of GeoJSON. */
export const GEOJSON_CONTENT_TYPE = 'application/geo+json'

const READ_ONLY = ['GET', 'HEAD'] as const

function summaries(latest: ReadonlyMap<string, LatestReading>, now: number): Map<string, LatestSummary> {
  const out = new Map<string, LatestSummary>()
  for (const [siteId, reading] of latest) out.set(siteId, latestSummary(reading, now))
  return out
}

/**
 * Public site data:
 *   GET /sites             FeatureCollection of every site with its latest values
 *   GET /sites/:id         one Feature
 *   GET /sites/:id/series  time series of one metric (see series-query.ts)
 */
export function sitesRouter(ctx: ApiContext): Router {
  const { storage, clock, options } = ctx
  const router = Router()

  async function findSite(id: string): Promise<Site> {
    const site = isValidId(id) ? await storage.registry.getSite(id) : undefined
    if (!site) throw notFoundProblem(`no site with id ${JSON.stringify(id)}`, 'site_not_found')
    return site
  }

  router
    .route('/sites')
    .get(async (_req, res) => {
      const [sites, latest] = await Promise.all([storage.registry.listSites(), storage.readings.latestBySite()])
      cachePublic(res, options.publicMaxAgeS)
      res.type(GEOJSON_CONTENT_TYPE).json(siteFeatureCollection(sites, summaries(latest, clock())))
    })
    .all(methodNotAllowed(READ_ONLY))

  router
    .route('/sites/:id')
    .get(async (req, res) => {
      const site = await findSite(req.params.id)
      const latest = (await storage.readings.latestBySite()).get(site.id)
      cachePublic(res, options.publicMaxAgeS)
      res.type(GEOJSON_CONTENT_TYPE).json(siteFeature(site, latest ? latestSummary(latest, clock()) : null))
    })
    .all(methodNotAllowed(READ_ONLY))

  router
    .route('/sites/:id/series')
    .get(async (req, res) => {
      const site = await findSite(req.params.id)
      const query = parseSeriesQuery(req.query, clock())
      if (query.deviceId !== undefined && !(await storage.registry.getDevice(query.deviceId))) {
        throw notFoundProblem(`no device with id ${JSON.stringify(query.deviceId)}`, 'device_not_found')
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
          : (await storage.readings.aggregateSeries({ ...storageQuery, every: query.every })).map((p) => ({
              t: p.t,
              mean: p.mean,
              min: p.min,
              max: p.max,
              n: p.n,
              coverage: p.coverage,
              valid: p.valid,
            }))
      if (points.length > MAX_SERIES_POINTS) throw seriesTooLargeProblem(query.every)
      cachePublic(res, options.publicMaxAgeS)
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
