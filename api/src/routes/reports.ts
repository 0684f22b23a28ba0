import {
  DAY_MS,
  DEFAULT_MEASURES,
  DEFAULT_PROFILE_TIME_ZONE,
  dayOfWeekProfile,
  detectDropOffPeak,
  detectSpringRoadDust,
  detectWinterEveningPeak,
  hourOfDayProfile,
  hourOfDayProfileWhere,
  isValidId,
  isWeekday,
  isWeekend,
  type Metric,
  type PatternEvidence,
  type PatternId,
  PROFILES,
  type Profile,
  REGULATORY_DAY_OFFSET_MS,
  type RuleHour,
  type SiteReport,
  type Suggestions,
  seasonOfMonth,
  seasonProfile,
  siteReport,
  siteRuleHours,
  suggestMeasures,
  type TimeWindow,
} from '@skolluft/core'
import { Router } from 'express'
import { z } from 'zod'
import { cacheFor, requireSitePermission } from '../auth/authenticate.ts'
import type { ApiContext } from '../options.ts'
import { HttpProblem, methodNotAllowed, notFoundProblem, validationProblem } from '../problem.ts'
import { readSiteHours } from '../site-hours.ts'

/**
 * `GET /sites/:id/report?from=YYYY-MM-DD&to=YYYY-MM-DD[&format=csv]`: one site's period report (issue 7): the
 * numbers of core site-report.ts (means, exceedances per rule with the allowed number, worst hours and days,
 * coverage beside every number), profiles by local hour of day, day of week and season (core profiles.ts), and the
 * measures that the single-site patterns suggest (core measures.ts). Reads the hourly series as
 * routes/exceedances.ts does; the same permission (`series:hourly`).
 */

/** Longest period: a school year or a calendar year with room to spare; readings are kept 400 days (MAX_READING_AGE_MS). */
export const MAX_REPORT_DAYS = 400

/** Metrics reported: the pollutants (means, worst periods, profiles, patterns). */
export const REPORT_METRICS = ['pm1', 'pm25', 'pm10', 'no2'] as const satisfies readonly Metric[]

/** Means and coverage go out with 3 decimals, as the exceedances and series routes (sites.ts MEAN_DECIMALS). */
const DECIMALS = 1_000
const round = (value: number): number => Math.round(value * DECIMALS) / DECIMALS
const roundOrNull = (value: number | null): number | null => (value === null ? null : round(value))

/** Patterns this route evaluates: those that need one site's own series only. */
const SINGLE_SITE_PATTERNS = ['drop-off-peak', 'spring-road-dust', 'winter-evening-peak'] as const

/** Patterns left out, and why: each needs a second series that a single-site report does not pair yet. */
export const NOT_EVALUATED: readonly { pattern: PatternId; reason: string }[] = [
  {
    pattern: 'indoor-follows-outdoor',
    reason: 'needs an indoor and an outdoor series of the same site; this report does not pair them',
  },
  {
    pattern: 'indoor-sources',
    reason: 'needs an indoor and an outdoor series of the same site; this report does not pair them',
  },
  {
    pattern: 'local-increment',
    reason: 'needs the nearest urban background site; this report does not compare with one',
  },
]

const DATE_MESSAGE = 'must be a calendar date YYYY-MM-DD'

export const ReportQuery = z.strictObject(
  {
    from: z.iso.date({
      error: (i) => (i.input === undefined ? 'from is required, e.g. from=2026-03-01' : DATE_MESSAGE),
    }),
    to: z.iso.date({ error: (i) => (i.input === undefined ? 'to is required, e.g. to=2026-03-31' : DATE_MESSAGE) }),
    format: z.enum(['json', 'csv'], { error: 'format must be json or csv' }).optional(),
  },
  {
    error: (issue) =>
      issue.code === 'unrecognized_keys' ? `unknown query parameter: ${issue.keys.join(', ')}` : undefined,
  },
)

const Iso = z.iso.datetime()
const Worst = z.object({ t: Iso, value: z.number(), coverage: z.number() })
const MetricReportOut = z.object({
  metric: z.string(),
  mean: z.number().nullable(),
  countedHours: z.number().int(),
  expectedHours: z.number().int(),
  coverage: z.number(),
  sufficientCoverage: z.boolean(),
  validDays: z.number().int(),
  expectedDays: z.number().int(),
  dayCoverage: z.number(),
  worstHours: z.array(Worst),
  worstDays: z.array(Worst),
})
const RuleBase = {
  rule: z.string(),
  pollutant: z.string(),
  value: z.number(),
  unverified: z.string().optional(),
  coverage: z.number(),
  sufficientCoverage: z.boolean(),
  note: z.string().optional(),
}
const RuleOut = z.discriminatedUnion('kind', [
  z.object({
    ...RuleBase,
    kind: z.literal('count'),
    period: z.enum(['hour', 'day']),
    count: z.number().int(),
    validPeriods: z.number().int(),
    expectedPeriods: z.number().int(),
    allowedPerYear: z.number().int().nullable(),
    allowedForYearOnly: z.boolean(),
    exceeded: z.boolean().nullable(),
  }),
  z.object({
    ...RuleBase,
    kind: z.literal('mean'),
    period: z.literal('year'),
    mean: z.number().nullable(),
    countedHours: z.number().int(),
    expectedHours: z.number().int(),
    aboveValue: z.boolean().nullable(),
    exceeded: z.boolean().nullable(),
  }),
])
const ProfileReportOut = z.object({
  id: z.string(),
  version: z.string(),
  name: z.string(),
  legal: z.boolean(),
  unverified: z.string().optional(),
  applies: z.object({ from: Iso, to: Iso }).nullable(),
  rules: z.array(RuleOut),
})
const Bucket = z.object({
  key: z.number().int(),
  mean: z.number().nullable(),
  hours: z.number().int(),
  periodHours: z.number().int(),
  coverage: z.number().nullable(),
})
const Localized = z.object({ sv: z.string(), en: z.string() })

export const ReportResponse = z.object({
  site: z.string(),
  /** The period in fixed UTC+1 days: `from` 00:00 of the first day, `to` 00:00 after the last (exclusive). */
  from: Iso,
  to: Iso,
  generated_at: Iso,
  report: z.object({
    periodIsYear: z.boolean(),
    metrics: z.array(MetricReportOut),
    profiles: z.array(ProfileReportOut),
  }),
  /** Per metric; buckets in local time of `timeZone`. */
  profiles: z.array(
    z.object({
      metric: z.string(),
      timeZone: z.string(),
      hourOfDay: z.array(Bucket),
      dayOfWeek: z.array(Bucket),
      season: z.array(Bucket),
    }),
  ),
  suggestions: z.array(
    z.object({
      measureId: z.string(),
      name: Localized,
      description: Localized,
      pattern: z.string(),
      metric: z.string(),
      evidence: Localized,
      caveat: Localized,
      sources: z.array(z.object({ text: z.string(), url: z.string().optional(), reliability: z.string() })),
      coverage: z.number(),
      hours: z.number().int(),
      values: z.record(z.string(), z.number()),
    }),
  ),
  /** Patterns found but too thin to be shown as evidence. */
  skipped: z.array(
    z.object({
      pattern: z.string(),
      metric: z.string(),
      reason: z.string(),
      coverage: z.number(),
      hours: z.number().int(),
    }),
  ),
  /** Single-site patterns checked, per metric, and what came of it. */
  evaluated: z.array(
    z.object({ pattern: z.string(), metric: z.string(), result: z.enum(['found', 'not_found', 'no_data']) }),
  ),
  not_evaluated: z.array(z.object({ pattern: z.string(), reason: z.string() })),
})
export type ReportResponse = z.infer<typeof ReportResponse>

/** CSV columns, in this order (documented in the OpenAPI entry). */
export const REPORT_CSV_COLUMNS = [
  'kind',
  'profile',
  'rule',
  'metric',
  'period',
  'value',
  'mean',
  'count',
  'allowed_per_year',
  'counted',
  'expected',
  'coverage',
  'sufficient_coverage',
] as const

function rangeProblem(message: string): HttpProblem {
  return new HttpProblem({
    status: 400,
    code: 'invalid_request',
    title: 'Invalid report query',
    detail: `invalid report query: ${message}`,
    errors: [{ path: 'to', message }],
  })
}

/** [from 00:00, the day after `to` 00:00) in fixed UTC+1: whole regulatory days, `to` inclusive. */
export function reportWindow(from: string, to: string): TimeWindow {
  return {
    from: Date.parse(`${from}T00:00:00Z`) - REGULATORY_DAY_OFFSET_MS,
    to: Date.parse(`${to}T00:00:00Z`) + DAY_MS - REGULATORY_DAY_OFFSET_MS,
  }
}

const iso = (t: number): string => new Date(t).toISOString()

function reportOut(report: SiteReport): ReportResponse['report'] {
  return {
    periodIsYear: report.periodIsYear,
    metrics: report.metrics.map((m) => ({
      ...m,
      mean: roundOrNull(m.mean),
      coverage: round(m.coverage),
      dayCoverage: round(m.dayCoverage),
      worstHours: m.worstHours.map((w) => ({ t: iso(w.t), value: round(w.value), coverage: round(w.coverage) })),
      worstDays: m.worstDays.map((w) => ({ t: iso(w.t), value: round(w.value), coverage: round(w.coverage) })),
    })),
    profiles: report.profiles.map((p) => ({
      ...p,
      applies: p.applies === null ? null : { from: iso(p.applies.from), to: iso(p.applies.to) },
      rules: p.rules.map((r) =>
        r.kind === 'mean'
          ? { ...r, mean: roundOrNull(r.mean), coverage: round(r.coverage) }
          : { ...r, coverage: round(r.coverage) },
      ),
    })),
  }
}

function bucketsOut(profile: Profile): ReportResponse['profiles'][number]['hourOfDay'] {
  return profile.buckets.map((b) => ({ ...b, mean: roundOrNull(b.mean), coverage: roundOrNull(b.coverage) }))
}

/** Whether some of the profile's buckets (all when `keys` is left out) have a counted hour. */
function hasHours(profile: Profile, keys?: readonly number[]): boolean {
  return profile.buckets.some((b) => b.hours > 0 && (keys === undefined || keys.includes(b.key)))
}

/** Metrics for which some catalogue measure is suggested by `pattern` (others would suggest nothing). */
function metricsSuggestedBy(pattern: PatternId): Metric[] {
  return REPORT_METRICS.filter((metric) =>
    DEFAULT_MEASURES.some((m) => m.metrics.includes(metric) && m.suggestedBy.some((s) => s.pattern === pattern)),
  )
}

interface Patterns {
  readonly found: PatternEvidence[]
  readonly evaluated: ReportResponse['evaluated']
}

/** The single-site detectors over the period, per metric the catalogue has a measure for. */
function detectPatterns(hours: ReadonlyMap<Metric, readonly RuleHour[]>, window: TimeWindow): Patterns {
  const options = { ...window, timeZone: DEFAULT_PROFILE_TIME_ZONE }
  const found: PatternEvidence[] = []
  const evaluated: ReportResponse['evaluated'] = []
  const record = (pattern: PatternId, metric: Metric, hasData: boolean, evidence: PatternEvidence | null) => {
    if (evidence !== null) found.push(evidence)
    evaluated.push({ pattern, metric, result: evidence !== null ? 'found' : hasData ? 'not_found' : 'no_data' })
  }
  for (const pattern of SINGLE_SITE_PATTERNS) {
    for (const metric of metricsSuggestedBy(pattern)) {
      const series = hours.get(metric) ?? []
      if (pattern === 'drop-off-peak') {
        const weekday = hourOfDayProfileWhere(series, options, isWeekday)
        const weekend = hourOfDayProfileWhere(series, options, isWeekend)
        const has = hasHours(weekday) && hasHours(weekend)
        record(pattern, metric, has, detectDropOffPeak(metric, { weekday, weekend }))
      } else if (pattern === 'spring-road-dust') {
        const seasons = seasonProfile(series, options)
        const has = hasHours(seasons, [1]) && hasHours(seasons, [2, 3])
        record(pattern, metric, has, detectSpringRoadDust(metric, seasons))
      } else {
        // SEASONS order: 0 winter, 2 summer.
        const winter = hourOfDayProfileWhere(series, options, (local) => seasonOfMonth(local.month) === 0)
        const summer = hourOfDayProfileWhere(series, options, (local) => seasonOfMonth(local.month) === 2)
        const has = hasHours(winter) && hasHours(summer)
        record(pattern, metric, has, detectWinterEveningPeak(metric, { winter, summer }))
      }
    }
  }
  return { found, evaluated }
}

function csvCell(value: string | number | boolean | null | undefined): string {
  if (value === null || value === undefined) return ''
  const text = String(value)
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text
}

/**
 * The report as CSV (RFC 4180, CRLF, header row): one `metric` row per reported metric (mean of the counted
 * hourly means; counted/expected hours) and one `rule` row per profile rule (count rules: count of periods above
 * `value`, counted/expected = valid/expected periods; annual rules: the period mean, counted/expected hours).
 */
export function reportCsv(report: ReportResponse['report']): string {
  const rows: (string | number | boolean | null | undefined)[][] = [[...REPORT_CSV_COLUMNS]]
  for (const m of report.metrics) {
    rows.push([
      'metric',
      null,
      null,
      m.metric,
      null,
      null,
      m.mean,
      null,
      null,
      m.countedHours,
      m.expectedHours,
      m.coverage,
      m.sufficientCoverage,
    ])
  }
  for (const p of report.profiles) {
    for (const r of p.rules) {
      rows.push(
        r.kind === 'count'
          ? [
              'rule',
              p.id,
              r.rule,
              r.pollutant,
              r.period,
              r.value,
              null,
              r.count,
              r.allowedPerYear,
              r.validPeriods,
              r.expectedPeriods,
              r.coverage,
              r.sufficientCoverage,
            ]
          : [
              'rule',
              p.id,
              r.rule,
              r.pollutant,
              r.period,
              r.value,
              r.mean,
              null,
              null,
              r.countedHours,
              r.expectedHours,
              r.coverage,
              r.sufficientCoverage,
            ],
      )
    }
  }
  return rows.map((row) => `${row.map(csvCell).join(',')}\r\n`).join('')
}

export function reportsRouter(ctx: ApiContext): Router {
  const { storage, clock, options } = ctx
  const router = Router()

  router
    .route('/sites/:id/report')
    .get(async (req, res) => {
      const site = isValidId(req.params.id) ? await storage.registry.getSite(req.params.id) : undefined
      if (!site) throw notFoundProblem(`no site with id ${JSON.stringify(req.params.id)}`, 'site_not_found')
      requireSitePermission(req, ctx, 'series:hourly', site.id, 'read reports of this site')
      const parsed = ReportQuery.safeParse(req.query)
      if (!parsed.success) throw validationProblem(parsed.error, 'report query')
      const window = reportWindow(parsed.data.from, parsed.data.to)
      const days = (window.to - window.from) / DAY_MS
      if (days < 1) throw rangeProblem('to must not be before from')
      if (days > MAX_REPORT_DAYS) throw rangeProblem(`the period is ${days} days; at most ${MAX_REPORT_DAYS}`)
      const now = clock()
      const series = await readSiteHours(storage.readings, site.id, window)
      const report = reportOut(
        siteReport({ siteId: site.id, window, metrics: REPORT_METRICS, series, profiles: PROFILES, now }),
      )
      cacheFor(res, options.publicMap, options.publicMaxAgeS)
      if (parsed.data.format === 'csv') {
        res.type('text/csv; charset=utf-8')
        res.attachment(`report-${site.id}-${parsed.data.from}-${parsed.data.to}.csv`)
        res.send(reportCsv(report))
        return
      }
      const hours = siteRuleHours(series).hours
      const profileOptions = { ...window, timeZone: DEFAULT_PROFILE_TIME_ZONE }
      const profiles = REPORT_METRICS.map((metric) => {
        const metricHours = hours.get(metric) ?? []
        return {
          metric,
          timeZone: DEFAULT_PROFILE_TIME_ZONE,
          hourOfDay: bucketsOut(hourOfDayProfile(metricHours, profileOptions)),
          dayOfWeek: bucketsOut(dayOfWeekProfile(metricHours, profileOptions)),
          season: bucketsOut(seasonProfile(metricHours, profileOptions)),
        }
      })
      const patterns = detectPatterns(hours, window)
      const suggested: Suggestions = suggestMeasures(patterns.found, DEFAULT_MEASURES)
      res.json({
        site: site.id,
        from: iso(window.from),
        to: iso(window.to),
        generated_at: iso(now),
        report,
        profiles,
        suggestions: suggested.suggestions.map((s) => ({
          ...s,
          sources: [...s.sources],
          values: Object.fromEntries(Object.entries(s.values).map(([k, v]) => [k, round(v)])),
          coverage: round(s.coverage),
        })),
        skipped: suggested.skipped.map((s) => ({ ...s, coverage: round(s.coverage) })),
        evaluated: patterns.evaluated,
        not_evaluated: [...NOT_EVALUATED],
      } satisfies ReportResponse)
    })
    .all(methodNotAllowed(['GET', 'HEAD']))

  return router
}
