import {
  canOnSite,
  FOLLOW_UP_CAVEAT_CODES,
  FOLLOW_UP_DEFAULT_DAYS,
  FOLLOW_UP_MAX_DAYS,
  FOLLOW_UP_METRICS,
  FOLLOW_UP_MIN_DAYS,
  type FollowUpComparison,
  type FollowUpSeries,
  type FollowUpSide,
  followUpWindows,
  HOUR_MS,
  holds,
  MAX_BACKGROUND_DISTANCE_KM,
  METRIC_INFO,
  MeasureCatalogue,
  type MeasureFollowUp,
  type Metric,
  measureFollowUp,
  nearestBackgroundSite,
  REGULATORY_DAY_OFFSET_MS,
  type Site,
  siteRuleHours,
  type TimeWindow,
} from '@skolluft/core'
import {
  type DeviceRecord,
  MAX_SITE_MEASURE_NOTE_CHARS,
  MAX_SITE_MEASURE_TITLE_CHARS,
  type SiteMeasure,
  type Storage,
  StorageError,
  type StoredMeasureCatalogue,
} from '@skolluft/storage'
import { type Request, type Response, Router } from 'express'
import { z } from 'zod'
import { actorOf, audit } from '../auth/audit.ts'
import { authOf, cacheFor, requirePermission, requireSitePermission } from '../auth/authenticate.ts'
import { cacheNever } from '../http-headers.ts'
import type { ApiContext } from '../options.ts'
import { HttpProblem, methodNotAllowed, notFoundProblem, validationProblem } from '../problem.ts'
import { type PlacedDevice, readSiteAirHours } from '../site-hours.ts'
import { siteOr404 } from '../site-lookup.ts'

/**
 * The catalogue of measures, the measures taken at a site, and their follow-up (issue 7; core measures.ts,
 * measure-follow-up.ts, docs/reports.md).
 *
 *   GET    /measures                                   the catalogue (series:hourly), ETag "<revision>"
 *   PUT    /measures                                   replace it; If-Match "<revision>" required (measures:write)
 *   GET    /sites/:id/measures                         measures taken at the site (series:hourly on the site)
 *   POST   /sites/:id/measures                         record one → 201 (measures:write)
 *   DELETE /sites/:id/measures/:measureId              remove one → 204 (measures:write)
 *   GET    /sites/:id/measures/:measureId/follow-up    before and after, with caveats (series:hourly on the site)
 *
 * Changes are audited. The catalogue uses optimistic concurrency (RFC 9110 §13.1.1, §15.5.13, RFC 6585 §3): a PUT
 * without If-Match is refused with 428, one whose revision is no longer current with 412, so two committee
 * members editing at once cannot silently overwrite each other.
 */

/** Means, changes and coverage go out with 3 decimals, as the report routes (reports.ts). */
const DECIMALS = 1_000
const round = (value: number): number => Math.round(value * DECIMALS) / DECIMALS
const roundOrNull = (value: number | null): number | null => (value === null ? null : round(value))

const Iso = z.iso.datetime()
const Localized = z.object({ sv: z.string(), en: z.string() })

/** `GET|PUT /measures` response. `source` 'default' = never edited (revision 0, the built-in catalogue). */
export const MeasureCatalogueResponse = z.object({
  revision: z.number().int().min(0),
  source: z.enum(['default', 'edited']),
  updated_at: Iso.nullable(),
  measures: MeasureCatalogue,
})
export type MeasureCatalogueResponse = z.infer<typeof MeasureCatalogueResponse>

/** `PUT /measures` body: the whole catalogue (core MeasureCatalogue: ids unique, texts worded as suggestions). */
export const MeasureCatalogueBody = MeasureCatalogue

const DATE_MESSAGE = 'must be a calendar date YYYY-MM-DD'

/** `POST /sites/:id/measures` body. */
export const SiteMeasureBody = z.strictObject({
  /** A catalogue measure id (GET /measures); null or left out for a measure outside the catalogue. */
  measureId: z
    .string()
    .regex(/^[a-z0-9]+(-[a-z0-9]+)*$/, 'measureId must be the id of a catalogue measure')
    .nullable()
    .optional(),
  /** Default: the Swedish name of the catalogue measure; required without measureId. */
  title: z.string().trim().min(1, 'title must not be empty').max(MAX_SITE_MEASURE_TITLE_CHARS).optional(),
  /** The UTC+1 calendar day the measure was taken; not in the future. */
  takenOn: z.iso.date({
    error: (i) => (i.input === undefined ? 'takenOn is required, e.g. takenOn=2026-03-02' : `takenOn ${DATE_MESSAGE}`),
  }),
  note: z.string().trim().max(MAX_SITE_MEASURE_NOTE_CHARS).nullable().optional(),
})

/** One measure taken, as the API sends it. `recorded_by` only to callers who may change measures. */
export const SiteMeasureResponse = z.object({
  id: z.string(),
  site: z.string(),
  measure_id: z.string().nullable(),
  title: z.string(),
  taken_on: z.iso.date(),
  note: z.string().nullable(),
  recorded_at: Iso,
  recorded_by: z.string().optional(),
})
export const SiteMeasureListResponse = z.object({ site: z.string(), measures: z.array(SiteMeasureResponse) })

export const FollowUpQuery = z.strictObject(
  {
    days: z
      .string()
      .regex(/^[0-9]{1,3}$/, `days must be a whole number from ${FOLLOW_UP_MIN_DAYS} to ${FOLLOW_UP_MAX_DAYS}`)
      .transform(Number)
      .pipe(
        z
          .number()
          .int()
          .min(FOLLOW_UP_MIN_DAYS, `days must be at least ${FOLLOW_UP_MIN_DAYS}`)
          .max(FOLLOW_UP_MAX_DAYS, `days must be at most ${FOLLOW_UP_MAX_DAYS}`),
      )
      .optional(),
  },
  {
    error: (issue) =>
      issue.code === 'unrecognized_keys' ? `unknown query parameter: ${issue.keys.join(', ')}` : undefined,
  },
)

const Side = z.object({
  mean: z.number().nullable(),
  counted_hours: z.number().int(),
  expected_hours: z.number().int(),
  coverage: z.number(),
  sufficient_coverage: z.boolean(),
})
const Change = z.object({ absolute: z.number(), percent: z.number().nullable() }).nullable()
const Comparison = z.object({ before: Side, after: Side, change: Change })
const Weather = z.object({
  before: z.number().nullable(),
  after: z.number().nullable(),
  source: z.enum(['site', 'background']).nullable(),
})

/** `GET /sites/:id/measures/:measureId/follow-up` response (core measureFollowUp, rounded to 3 decimals). */
export const FollowUpResponse = z.object({
  site: z.string(),
  measure: SiteMeasureResponse,
  generated_at: Iso,
  days: z.number().int(),
  /** [from, to) in fixed UTC+1 days: the N days before `taken_on`, and the N days from it. */
  before: z.object({ from: Iso, to: Iso }),
  after: z.object({ from: Iso, to: Iso }),
  /** Only when the after window is over is a change stated. */
  after_complete: z.boolean(),
  /** The nearest urban background site within `max_distance_km`, compared over the same windows; null: none. */
  background: z
    .object({ site: z.string(), name: z.string(), distance_km: z.number(), max_distance_km: z.number() })
    .nullable(),
  metrics: z.array(
    Comparison.extend({
      metric: z.string(),
      unit: z.string(),
      background: Comparison.nullable(),
      /** Site change − background change, in the metric's unit; null unless both are stated. */
      difference_in_differences: z.number().nullable(),
    }),
  ),
  /** Mean temperature (°C) and relative humidity (%) of each window. */
  weather: z.object({ temp: Weather, rh: Weather }),
  seasons: z.object({ before: z.array(z.string()), after: z.array(z.string()) }),
  caveats: z.array(z.object({ code: z.enum(FOLLOW_UP_CAVEAT_CODES), text: Localized })),
})
export type FollowUpResponse = z.infer<typeof FollowUpResponse>

const iso = (t: number): string => new Date(t).toISOString()

function catalogueOut(catalogue: StoredMeasureCatalogue): MeasureCatalogueResponse {
  return {
    revision: catalogue.revision,
    source: catalogue.revision === 0 ? 'default' : 'edited',
    updated_at: catalogue.updatedAt === null ? null : iso(catalogue.updatedAt),
    measures: [...catalogue.measures],
  }
}

/** Strong entity tag of a catalogue revision. */
const etagOf = (revision: number): string => `"${revision}"`

function siteMeasureOut(m: SiteMeasure, showRecorder: boolean): z.infer<typeof SiteMeasureResponse> {
  return {
    id: m.id,
    site: m.siteId,
    measure_id: m.measureId,
    title: m.title,
    taken_on: m.takenOn,
    note: m.note,
    recorded_at: iso(m.recordedAt),
    ...(showRecorder ? { recorded_by: m.recordedBy } : {}),
  }
}

function sideOut(side: FollowUpSide): z.infer<typeof Side> {
  return {
    mean: roundOrNull(side.mean),
    counted_hours: side.countedHours,
    expected_hours: side.expectedHours,
    coverage: round(side.coverage),
    sufficient_coverage: side.sufficientCoverage,
  }
}

function comparisonOut(c: FollowUpComparison): z.infer<typeof Comparison> {
  return {
    before: sideOut(c.before),
    after: sideOut(c.after),
    change: c.change === null ? null : { absolute: round(c.change.absolute), percent: roundOrNull(c.change.percent) },
  }
}

/** Metrics a follow-up reads besides the site-hour metrics: temperature for the weather. */
const WEATHER_ONLY_METRICS = ['temp'] as const

/**
 * A site's hourly series over `window` as the follow-up reads them: the pollutants with the quality checks applied
 * (siteRuleHours, as every report), rh and temp as stored (valid hours only count). Like the reports
 * (site-hours.ts readSiteAirHours), a site with indoor and outdoor devices is followed up on its outdoor air, so a
 * follow-up and a report of the same site and days agree.
 */
export async function readFollowUpSeries(
  storage: Storage,
  siteId: string,
  window: TimeWindow,
  devices: readonly PlacedDevice[],
): Promise<FollowUpSeries> {
  const stored = (await readSiteAirHours(storage.readings, siteId, window, devices)).series
  const checked = siteRuleHours(stored).hours
  const series: FollowUpSeries = {}
  for (const [metric, hours] of checked) series[metric] = hours
  if (stored.rh !== undefined) series.rh = stored.rh
  for (const metric of WEATHER_ONLY_METRICS) {
    const points = await storage.readings.aggregateSeries({
      siteId,
      metric,
      every: '1h',
      from: window.from,
      to: window.to,
      limit: (window.to - window.from) / HOUR_MS,
    })
    series[metric] = points.map((p) => ({ t: Date.parse(p.t), mean: p.mean, valid: p.valid, coverage: p.coverage }))
  }
  return series
}

/**
 * The pollutants of FOLLOW_UP_METRICS some device measured at the site in the window (a placement there overlapping
 * it): a pollutant nobody measured there is left out rather than shown as a gap with a coverage caveat.
 */
export function measuredMetrics(devices: readonly DeviceRecord[], siteId: string, window: TimeWindow): Metric[] {
  const sensors = new Set<Metric>()
  for (const device of devices) {
    const there = device.placements.some(
      (p) => p.siteId === siteId && p.from < window.to && (p.to === null || p.to > window.from),
    )
    if (there) for (const sensor of device.sensors) sensors.add(sensor)
  }
  return FOLLOW_UP_METRICS.filter((metric) => sensors.has(metric))
}

/** Today's UTC+1 calendar date at `now`, YYYY-MM-DD. */
function regulatoryToday(now: number): string {
  return new Date(now + REGULATORY_DAY_OFFSET_MS).toISOString().slice(0, 10)
}

function badMeasure(code: string, path: string, message: string): HttpProblem {
  return new HttpProblem({
    status: 400,
    code,
    title: 'Invalid measure',
    detail: `invalid measure: ${path}: ${message}`,
    errors: [{ path, message }],
  })
}

/** The revision an If-Match header names: 428 without one, 400 for anything but one strong tag "<n>". */
function expectedRevision(req: Request): number {
  const header = req.get('if-match')
  if (header === undefined) {
    throw new HttpProblem({
      status: 428,
      code: 'precondition_required',
      title: 'Precondition required',
      detail:
        'PUT /measures needs If-Match: "<revision>" with the revision you edited (the ETag of GET /measures), so that two edits cannot overwrite each other',
    })
  }
  const match = /^\s*"([0-9]{1,15})"\s*$/.exec(header)
  if (match?.[1] === undefined) {
    throw new HttpProblem({
      status: 400,
      code: 'invalid_if_match',
      title: 'Invalid If-Match',
      detail: `If-Match must be one entity tag "<revision>" as GET /measures sends it in ETag, got ${JSON.stringify(header)}`,
      errors: [{ path: 'If-Match', message: 'must be "<revision>"' }],
    })
  }
  return Number(match[1])
}

export function measuresRouter(ctx: ApiContext): Router {
  const { storage, clock, options } = ctx
  const router = Router()

  async function measureOf(site: Site, id: string): Promise<SiteMeasure> {
    const measure = await storage.measures.get(id)
    if (measure === undefined || measure.siteId !== site.id) {
      throw notFoundProblem(`no measure ${JSON.stringify(id)} at site ${site.id}`, 'measure_not_found')
    }
    return measure
  }

  const showRecorder = (req: Request): boolean => holds(authOf(req).principal, 'measures:write', options)

  function sendCatalogue(res: Response, catalogue: StoredMeasureCatalogue): void {
    cacheNever(res)
    res.set('ETag', etagOf(catalogue.revision))
    res.json(catalogueOut(catalogue))
  }

  router
    .route('/measures')
    .get(async (req, res) => {
      requirePermission(req, ctx, 'series:hourly', 'read the catalogue of measures')
      sendCatalogue(res, await storage.measures.catalogue())
    })
    .put(async (req, res) => {
      const principal = requirePermission(req, ctx, 'measures:write', 'edit the catalogue of measures')
      const revision = expectedRevision(req)
      const parsed = MeasureCatalogueBody.safeParse(req.body)
      if (!parsed.success) throw validationProblem(parsed.error, 'catalogue of measures')
      const actor = actorOf(principal)
      let saved: StoredMeasureCatalogue
      try {
        saved = await storage.measures.saveCatalogue(parsed.data, {
          expectedRevision: revision,
          by: actor,
          at: clock(),
        })
      } catch (error) {
        if (error instanceof StorageError && error.code === 'CONFLICT') {
          const current = await storage.measures.catalogue()
          throw new HttpProblem({
            status: 412,
            code: 'revision_mismatch',
            title: 'Precondition failed',
            detail: `the catalogue is at revision ${current.revision}, not ${revision}: someone saved it in between; load it again (GET /measures) and apply your change to that`,
            headers: { ETag: etagOf(current.revision) },
            cause: error,
          })
        }
        if (error instanceof StorageError && error.code === 'INVALID_MEASURE') {
          throw new HttpProblem({
            status: 400,
            code: 'invalid_request',
            title: 'Invalid catalogue of measures',
            detail: error.message,
            cause: error,
          })
        }
        throw error
      }
      await audit(ctx, actor, 'measures.catalogue.update', `revision-${saved.revision}`, {
        revision: saved.revision,
        measures: saved.measures.map((m) => m.id),
      })
      sendCatalogue(res, saved)
    })
    .all(methodNotAllowed(['GET', 'HEAD', 'PUT']))

  router
    .route('/sites/:id/measures')
    .get(async (req, res) => {
      const site = await siteOr404(storage.registry, req.params.id)
      requireSitePermission(req, ctx, 'series:hourly', site.id, 'read the measures of this site')
      const list = await storage.measures.list(site.id)
      const show = showRecorder(req)
      cacheNever(res)
      res.json({ site: site.id, measures: list.map((m) => siteMeasureOut(m, show)) })
    })
    .post(async (req, res) => {
      const site = await siteOr404(storage.registry, req.params.id)
      const principal = requireSitePermission(req, ctx, 'measures:write', site.id, 'record measures')
      const parsed = SiteMeasureBody.safeParse(req.body)
      if (!parsed.success) throw validationProblem(parsed.error, 'measure')
      const body = parsed.data
      const now = clock()
      if (body.takenOn > regulatoryToday(now)) {
        throw badMeasure('invalid_date', 'takenOn', `a measure taken lies in the past or today, not ${body.takenOn}`)
      }
      const measureId = body.measureId ?? null
      let title = body.title
      if (measureId !== null) {
        const { measures } = await storage.measures.catalogue()
        const known = measures.find((m) => m.id === measureId)
        if (known === undefined) {
          throw badMeasure('unknown_measure', 'measureId', `the catalogue has no measure ${JSON.stringify(measureId)}`)
        }
        title ??= known.name.sv
      }
      if (title === undefined) throw badMeasure('invalid_request', 'title', 'title is required without a measureId')
      const actor = actorOf(principal)
      const created = await storage.measures.add({
        siteId: site.id,
        measureId,
        title,
        takenOn: body.takenOn,
        note: body.note ?? null,
        recordedBy: actor,
        recordedAt: now,
      })
      await audit(ctx, actor, 'site-measure.create', created.id, {
        site: site.id,
        measure: measureId,
        takenOn: created.takenOn,
      })
      cacheNever(res)
      res.status(201).json(siteMeasureOut(created, true))
    })
    .all(methodNotAllowed(['GET', 'HEAD', 'POST']))

  router
    .route('/sites/:id/measures/:measureId')
    .delete(async (req, res) => {
      const site = await siteOr404(storage.registry, req.params.id)
      const principal = requireSitePermission(req, ctx, 'measures:write', site.id, 'delete measures')
      const measure = await measureOf(site, req.params.measureId)
      await storage.measures.delete(measure.id)
      await audit(ctx, actorOf(principal), 'site-measure.delete', measure.id, {
        site: site.id,
        measure: measure.measureId,
        takenOn: measure.takenOn,
      })
      cacheNever(res)
      res.status(204).end()
    })
    .all(methodNotAllowed(['DELETE']))

  router
    .route('/sites/:id/measures/:measureId/follow-up')
    .get(async (req, res) => {
      const site = await siteOr404(storage.registry, req.params.id)
      requireSitePermission(req, ctx, 'series:hourly', site.id, 'read the follow-up of measures at this site')
      const parsed = FollowUpQuery.safeParse(req.query)
      if (!parsed.success) throw validationProblem(parsed.error, 'follow-up query')
      const measure = await measureOf(site, req.params.measureId)
      const days = parsed.data.days ?? FOLLOW_UP_DEFAULT_DAYS
      const now = clock()
      const windows = followUpWindows(measure.takenOn, days)
      const window = { from: windows.before.from, to: windows.after.to }
      // Only background sites the caller may read: their levels are in the comparison (as in the site report).
      const { principal } = authOf(req)
      const readable = (await storage.registry.listSites()).filter((s) =>
        canOnSite(principal, 'series:hourly', s.id, options),
      )
      const nearest = nearestBackgroundSite(site, readable)
      const devices = await storage.registry.listDevices()
      const metrics = measuredMetrics(devices, site.id, window)
      const [own, background] = await Promise.all([
        readFollowUpSeries(storage, site.id, window, devices),
        nearest === undefined ? undefined : readFollowUpSeries(storage, nearest.site.id, window, devices),
      ])
      const result: MeasureFollowUp = measureFollowUp({
        takenOn: measure.takenOn,
        days,
        site: own,
        background:
          nearest === undefined || background === undefined ? null : { siteId: nearest.site.id, series: background },
        now,
        metrics,
      })
      cacheFor(res, options.publicMap, options.publicMaxAgeS)
      res.json({
        site: site.id,
        measure: siteMeasureOut(measure, showRecorder(req)),
        generated_at: iso(now),
        days: result.days,
        before: { from: iso(result.before.from), to: iso(result.before.to) },
        after: { from: iso(result.after.from), to: iso(result.after.to) },
        after_complete: result.afterComplete,
        background:
          nearest === undefined
            ? null
            : {
                site: nearest.site.id,
                name: nearest.site.name,
                distance_km: round(nearest.distanceKm),
                max_distance_km: MAX_BACKGROUND_DISTANCE_KM,
              },
        metrics: result.metrics.map((m) => ({
          metric: m.metric,
          unit: METRIC_INFO[m.metric].unit,
          ...comparisonOut(m),
          background: m.background === null ? null : comparisonOut(m.background),
          difference_in_differences: roundOrNull(m.differenceInDifferences),
        })),
        weather: {
          temp: {
            ...result.weather.temp,
            before: roundOrNull(result.weather.temp.before),
            after: roundOrNull(result.weather.temp.after),
          },
          rh: {
            ...result.weather.rh,
            before: roundOrNull(result.weather.rh.before),
            after: roundOrNull(result.weather.rh.after),
          },
        },
        seasons: { before: [...result.seasons.before], after: [...result.seasons.after] },
        caveats: result.caveats.map((c) => ({ code: c.code, text: { ...c.text } })),
      } satisfies FollowUpResponse)
    })
    .all(methodNotAllowed(['GET', 'HEAD']))

  return router
}
