import {
  type MunicipalReport,
  type MunicipalSite,
  municipalReport,
  sitesFor,
  type ThresholdProfile,
  type TimeWindow,
} from '@skolluft/core'
import { Router } from 'express'
import { z } from 'zod'
import { cacheFor, requirePermission } from '../auth/authenticate.ts'
import type { ApiContext } from '../options.ts'
import { HttpProblem, methodNotAllowed, validationProblem } from '../problem.ts'
import { readSiteAirHours } from '../site-hours.ts'
import {
  buildSiteReport,
  coreSiteReport,
  csvCell,
  REPORT_METRICS,
  ReportQuery,
  type ReportRegistry,
  reportPeriod,
  selectedProfiles,
} from './reports.ts'

/**
 * `GET /reports/municipality?from=YYYY-MM-DD&to=YYYY-MM-DD[&profiles=a,b][&format=csv]`: the municipality level of
 * issue 7's period report (core municipal-report.ts over every site's core site-report.ts for the period).
 * Shapes: the core objects (camelCase) with the period and generation time at the top (snake_case), as
 * reports.ts ReportResponse.
 *
 * Every site's numbers come from the same functions as its site report (site-hours.ts readSiteAirHours and
 * reports.ts coreSiteReport, as reports.ts buildSiteReport: the site's hourly aggregates with the quality checks,
 * outdoor devices only at a site with indoor ones too), so a site has the same mean here as in its own report
 * (tested; `municipalReportPerSite` builds it through buildSiteReport itself, the reference of
 * bench/municipal-report.ts, which checks the two give the same numbers). Read per site: one
 * ReadingStore.siteHourly (SQLite: one scan of the site's hours for its five metrics; it was five aggregateSeries
 * queries, twice the time), still most of the time (BENCHMARKS.md "Municipality report": 150 sites × a year).
 * Not from ReadingStore.hourlyBySite (one query for all sites): its hours carry no min/max, without which the
 * stuck-sensor check (quality.ts) cannot run, so the numbers would differ from the site reports'. Nor from
 * ReadingStore.streamHourly: its batches re-run a grouped query (100 sites × a year: 379 s).
 *
 * Access: series:hourly on EVERY site (staff, admin, or anyone with the public map on); a role bound to some
 * sites (principal) gets 403: the report compares all sites, and a median over only their own would mislead.
 */

/** Same parameters as the site report: from, to (whole UTC+1 days, both included), format, profiles. */
export const MunicipalReportQuery = ReportQuery

const Iso = z.iso.datetime()
const Localized = z.object({ sv: z.string(), en: z.string() })
/** Site kinds that take part in medians and the ranking (core SITE_KINDS without 'background'). */
const Kind = z.string()

const LeftOutOut = z.object({
  siteId: z.string(),
  name: z.string(),
  kind: Kind,
  reason: z.enum(['insufficient-coverage', 'no-data', 'not-reported']),
  /** Indicative mean (insufficient coverage) or null. */
  mean: z.number().nullable(),
  coverage: z.number().nullable(),
})

const SiteComparisonOut = z.object({
  siteId: z.string(),
  name: z.string(),
  kind: Kind,
  mean: z.number(),
  coverage: z.number(),
  differenceFromMedian: z.number(),
  ratioToMedian: z.number().nullable(),
  kindMedian: z.number(),
  differenceFromKindMedian: z.number(),
  ratioToKindMedian: z.number().nullable(),
  rankInKind: z.number().int(),
  sitesOfKind: z.number().int(),
})

/** An urban background site: shown for reference, never in a median or the ranking. */
const BackgroundSiteOut = z.object({
  siteId: z.string(),
  name: z.string(),
  mean: z.number().nullable(),
  coverage: z.number(),
  sufficientCoverage: z.boolean(),
})

const MunicipalMetricOut = z.object({
  metric: z.string(),
  unit: z.string(),
  median: z.number().nullable(),
  included: z.number().int(),
  leftOut: z.array(LeftOutOut),
  leftOutCounts: z.object({
    'insufficient-coverage': z.number().int(),
    'no-data': z.number().int(),
    'not-reported': z.number().int(),
  }),
  kinds: z.array(z.object({ kind: Kind, median: z.number().nullable(), sites: z.number().int() })),
  sites: z.array(SiteComparisonOut),
  background: z.array(BackgroundSiteOut),
})

const ComponentOut = z.object({
  metric: z.string(),
  mean: z.number().nullable(),
  coverage: z.number().nullable(),
  sufficientCoverage: z.boolean(),
  ratio: z.number().nullable(),
})

const RankingOut = z.object({
  formula: Localized,
  basis: z.array(z.object({ metric: z.string(), value: z.number(), rule: z.string(), profile: z.string() })),
  ranked: z.array(
    z.object({
      rank: z.number().int(),
      siteId: z.string(),
      name: z.string(),
      kind: Kind,
      score: z.number(),
      drivenBy: z.string(),
      components: z.array(ComponentOut),
    }),
  ),
  notEnoughData: z.array(
    z.object({ siteId: z.string(), name: z.string(), kind: Kind, components: z.array(ComponentOut) }),
  ),
})

export const MunicipalReportResponse = z.object({
  /** The period in fixed UTC+1 days: `from` 00:00 of the first day, `to` 00:00 after the last (exclusive). */
  from: Iso,
  to: Iso,
  generated_at: Iso,
  /** Threshold profile ids the rules and the ranking's basis come from (the `profiles` parameter or all). */
  threshold_profiles: z.array(z.string()),
  report: z.object({
    /** Sites compared (schools and preschools); background sites are counted apart. */
    sites: z.number().int(),
    backgroundSites: z.number().int(),
    metrics: z.array(MunicipalMetricOut),
    ranking: RankingOut,
  }),
  /**
   * Sites with indoor and outdoor devices whose numbers come from their outdoor devices only (limit values are
   * for outdoor air), as in their site reports.
   */
  outdoor_only_sites: z.array(z.string()),
})
export type MunicipalReportResponse = z.infer<typeof MunicipalReportResponse>

/** CSV columns, in this order (documented in the OpenAPI entry). */
export const MUNICIPAL_CSV_COLUMNS = [
  'kind',
  'metric',
  'site',
  'name',
  'site_kind',
  'mean',
  'coverage',
  'median',
  'difference_from_median',
  'ratio_to_median',
  'kind_median',
  'rank_in_kind',
  'reason',
  'rank',
  'score',
  'driven_by',
] as const

/** Means, medians, ratios and coverage go out with 3 decimals, as reports.ts. */
const DECIMALS = 1_000
const round = (value: number): number => Math.round(value * DECIMALS) / DECIMALS
const roundOrNull = (value: number | null): number | null => (value === null ? null : round(value))

type ReportOut = MunicipalReportResponse['report']

function municipalOut(report: MunicipalReport): ReportOut {
  const componentOut = (c: MunicipalReport['ranking']['ranked'][number]['components'][number]) => ({
    ...c,
    mean: roundOrNull(c.mean),
    coverage: roundOrNull(c.coverage),
    ratio: roundOrNull(c.ratio),
  })
  return {
    sites: report.sites,
    backgroundSites: report.backgroundSites,
    metrics: report.metrics.map((m) => ({
      ...m,
      median: roundOrNull(m.median),
      leftOut: m.leftOut.map((l) => ({ ...l, mean: roundOrNull(l.mean), coverage: roundOrNull(l.coverage) })),
      leftOutCounts: { ...m.leftOutCounts },
      kinds: m.kinds.map((k) => ({ ...k, median: roundOrNull(k.median) })),
      sites: m.sites.map((c) => ({
        ...c,
        mean: round(c.mean),
        coverage: round(c.coverage),
        differenceFromMedian: round(c.differenceFromMedian),
        ratioToMedian: roundOrNull(c.ratioToMedian),
        kindMedian: round(c.kindMedian),
        differenceFromKindMedian: round(c.differenceFromKindMedian),
        ratioToKindMedian: roundOrNull(c.ratioToKindMedian),
      })),
      background: m.background.map((b) => ({ ...b, mean: roundOrNull(b.mean), coverage: round(b.coverage) })),
    })),
    ranking: {
      formula: { ...report.ranking.formula },
      basis: report.ranking.basis.map((b) => ({ ...b })),
      ranked: report.ranking.ranked.map((r) => ({
        ...r,
        score: round(r.score),
        components: r.components.map(componentOut),
      })),
      notEnoughData: report.ranking.notEnoughData.map((n) => ({ ...n, components: n.components.map(componentOut) })),
    },
  }
}

type Cell = string | number | boolean | null | undefined

/**
 * The municipality report as CSV (RFC 4180, CRLF, header row). Rows, in this order, per metric: `median` (the
 * municipal median; `coverage` empty), `kind_median` per kind, `site` per counting site, `left_out` per site left
 * out (with `reason`), `background` per urban background site; then `rank` per ranked site and `not_ranked` per
 * site with too little data. Empty cell: no value.
 */
export function municipalCsv(report: ReportOut): string {
  const rows: Cell[][] = [[...MUNICIPAL_CSV_COLUMNS]]
  const row = (cells: Partial<Record<(typeof MUNICIPAL_CSV_COLUMNS)[number], Cell>>) =>
    rows.push(MUNICIPAL_CSV_COLUMNS.map((c) => cells[c]))
  for (const m of report.metrics) {
    row({ kind: 'median', metric: m.metric, median: m.median })
    for (const k of m.kinds) row({ kind: 'kind_median', metric: m.metric, site_kind: k.kind, kind_median: k.median })
    for (const c of m.sites) {
      row({
        kind: 'site',
        metric: m.metric,
        site: c.siteId,
        name: c.name,
        site_kind: c.kind,
        mean: c.mean,
        coverage: c.coverage,
        median: m.median,
        difference_from_median: c.differenceFromMedian,
        ratio_to_median: c.ratioToMedian,
        kind_median: c.kindMedian,
        rank_in_kind: c.rankInKind,
      })
    }
    for (const l of m.leftOut) {
      row({
        kind: 'left_out',
        metric: m.metric,
        site: l.siteId,
        name: l.name,
        site_kind: l.kind,
        mean: l.mean,
        coverage: l.coverage,
        reason: l.reason,
      })
    }
    for (const b of m.background) {
      row({
        kind: 'background',
        metric: m.metric,
        site: b.siteId,
        name: b.name,
        site_kind: 'background',
        mean: b.mean,
        coverage: b.coverage,
      })
    }
  }
  for (const r of report.ranking.ranked) {
    row({
      kind: 'rank',
      site: r.siteId,
      name: r.name,
      site_kind: r.kind,
      rank: r.rank,
      score: r.score,
      driven_by: r.drivenBy,
    })
  }
  for (const n of report.ranking.notEnoughData) {
    row({ kind: 'not_ranked', site: n.siteId, name: n.name, site_kind: n.kind, reason: 'not-enough-data' })
  }
  return rows.map((cells) => `${cells.map(csvCell).join(',')}\r\n`).join('')
}

/** The municipality report's numbers and the sites counted from their outdoor devices only. */
export interface MunicipalNumbers {
  readonly report: ReportOut
  readonly outdoorOnly: readonly string[]
}

const byId = (a: { id: string }, b: { id: string }): number => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)

/**
 * The report built site by site with reports.ts buildSiteReport, exactly as each site's own report is built (the
 * reference the faster path is checked against, bench/municipal-report.ts).
 */
export async function municipalReportPerSite(
  ctx: ApiContext,
  window: TimeWindow,
  profiles: readonly ThresholdProfile[],
  registry: ReportRegistry,
  now: number,
): Promise<MunicipalNumbers> {
  const entries: MunicipalSite[] = []
  const outdoorOnly: string[] = []
  // In turn: SQLite answers synchronously, so running the sites at once would only interleave them.
  for (const site of [...registry.sites].sort(byId)) {
    const parts = await buildSiteReport(ctx, site, window, profiles, registry, now)
    entries.push({ site, report: parts.core })
    if (parts.indoorOutdoor !== null) outdoorOnly.push(site.id)
  }
  return { report: municipalOut(municipalReport({ window, metrics: REPORT_METRICS, sites: entries })), outdoorOnly }
}

/**
 * The report: per site, the hours its own report counts (site-hours.ts readSiteAirHours) through the same core
 * siteReport (reports.ts coreSiteReport), so every number is the site report's. What reports.ts buildSiteReport
 * adds for a site's own page (the rounded report, the rule hours again for profiles and patterns) is not made.
 */
export async function municipalNumbers(
  ctx: Pick<ApiContext, 'storage'>,
  window: TimeWindow,
  profiles: readonly ThresholdProfile[],
  registry: ReportRegistry,
  now: number,
): Promise<MunicipalNumbers> {
  const entries: MunicipalSite[] = []
  const outdoorOnly: string[] = []
  // In turn: SQLite answers synchronously, so running the sites at once would only interleave them.
  for (const site of [...registry.sites].sort(byId)) {
    const air = await readSiteAirHours(ctx.storage.readings, site.id, window, registry.devices)
    entries.push({ site, report: coreSiteReport(site.id, window, profiles, air.series, now) })
    if (air.indoorOutdoor !== null) outdoorOnly.push(site.id)
  }
  return { report: municipalOut(municipalReport({ window, metrics: REPORT_METRICS, sites: entries })), outdoorOnly }
}

/**
 * How long computed numbers are served again for the same period, profiles and registry revision: a committee
 * member opens the report, downloads its CSV and prints it within minutes, and a year of 150 sites takes ~24 s to
 * compute (BENCHMARKS.md "Municipality report"); people opening it at once share one computation. Readings that
 * arrive meanwhile show after at most this long; `generated_at` says when the numbers were made. Editorial choice.
 */
export const MUNICIPAL_REPORT_CACHE_MS = 5 * 60_000
/** Reports kept at once (a few people look at a few periods); the oldest goes first. */
export const MUNICIPAL_REPORT_CACHE_ENTRIES = 8

interface CachedNumbers {
  readonly at: number
  readonly numbers: Promise<MunicipalNumbers>
}

export function municipalReportRouter(ctx: ApiContext): Router {
  const { storage, clock, options } = ctx
  const router = Router()
  const cache = new Map<string, CachedNumbers>()

  /** The numbers made at most MUNICIPAL_REPORT_CACHE_MS ago for this key, or made now (and kept). */
  function cachedNumbers(key: string, now: number, make: (now: number) => Promise<MunicipalNumbers>): CachedNumbers {
    const seen = cache.get(key)
    if (seen !== undefined && now >= seen.at && now - seen.at < MUNICIPAL_REPORT_CACHE_MS) return seen
    cache.delete(key)
    const entry: CachedNumbers = { at: now, numbers: make(now) }
    entry.numbers.catch(() => {
      if (cache.get(key) === entry) cache.delete(key)
    })
    cache.set(key, entry)
    for (const old of cache.keys()) {
      if (cache.size <= MUNICIPAL_REPORT_CACHE_ENTRIES) break
      cache.delete(old)
    }
    return entry
  }

  router
    .route('/reports/municipality')
    .get(async (req, res) => {
      const what = 'read the municipality report'
      const principal = requirePermission(req, ctx, 'series:hourly', what)
      if (sitesFor(principal, 'series:hourly', options) !== 'all') {
        throw new HttpProblem({
          status: 403,
          code: 'forbidden',
          title: 'Forbidden',
          detail: `the municipality report compares every site; ${principal.kind === 'anonymous' ? 'this caller' : `role ${principal.role}`} may read the series of its own sites only (use GET /api/v1/sites/{id}/report)`,
        })
      }
      const parsed = MunicipalReportQuery.safeParse(req.query)
      if (!parsed.success) throw validationProblem(parsed.error, 'report query')
      const window = reportPeriod(parsed.data)
      const profiles = selectedProfiles(parsed.data.profiles)
      const revision = await storage.registry.revision()
      const key = `${window.from} ${window.to} ${profiles.map((p) => p.id).join(',')} ${revision}`
      const { at, numbers } = cachedNumbers(key, clock(), async (now) => {
        const [sites, devices] = await Promise.all([storage.registry.listSites(), storage.registry.listDevices()])
        return municipalNumbers(ctx, window, profiles, { sites, devices }, now)
      })
      const { report, outdoorOnly } = await numbers
      cacheFor(res, options.publicMap, options.publicMaxAgeS)
      if (parsed.data.format === 'csv') {
        res.type('text/csv; charset=utf-8')
        res.attachment(`report-municipality-${parsed.data.from}-${parsed.data.to}.csv`)
        res.send(municipalCsv(report))
        return
      }
      res.json({
        from: new Date(window.from).toISOString(),
        to: new Date(window.to).toISOString(),
        generated_at: new Date(at).toISOString(),
        threshold_profiles: profiles.map((p) => p.id),
        report,
        outdoor_only_sites: [...outdoorOnly],
      } satisfies MunicipalReportResponse)
    })
    .all(methodNotAllowed(['GET', 'HEAD']))

  return router
}
