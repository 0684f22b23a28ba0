import {
  canOnSite,
  DAY_MS,
  DEFAULT_PROFILE_TIME_ZONE,
  dayOfWeekProfile,
  detectDropOffPeak,
  detectIndoorOutdoor,
  detectLocalIncrement,
  detectSpringRoadDust,
  detectWinterEveningPeak,
  hourOfDayProfile,
  hourOfDayProfileWhere,
  isWeekday,
  isWeekend,
  MAX_BACKGROUND_DISTANCE_KM,
  type Measure,
  type Metric,
  nearestBackgroundSite,
  type PairedComparison,
  type PatternEvidence,
  type PatternId,
  PROFILES,
  type Profile,
  pairedComparison,
  REGULATORY_DAY_OFFSET_MS,
  type RuleHour,
  type Site,
  type SiteReport,
  type Suggestions,
  seasonOfMonth,
  seasonProfile,
  siteReport,
  siteRuleHours,
  suggestMeasures,
  type ThresholdProfile,
  type TimeWindow,
} from '@skolluft/core'
import { type Request, Router } from 'express'
import { z } from 'zod'
import { authOf, cacheFor, requireSitePermission } from '../auth/authenticate.ts'
import { readMeasureCatalogue } from '../measure-catalogue.ts'
import type { ApiContext } from '../options.ts'
import { HttpProblem, methodNotAllowed, validationProblem } from '../problem.ts'
import { type PlacedDevice, readSiteAirHours, type SiteSeries } from '../site-hours.ts'
import { siteOr404 } from '../site-lookup.ts'

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

/** Patterns that pair the site's outdoor series with its indoor one (core measures.ts detectIndoorOutdoor). */
const INDOOR_PATTERNS = ['indoor-follows-outdoor', 'indoor-sources'] as const satisfies readonly PatternId[]

const DATE_MESSAGE = 'must be a calendar date YYYY-MM-DD'

/** Threshold profile ids, in PROFILES order. */
export const PROFILE_IDS: readonly string[] = PROFILES.map((p) => p.id)

/**
 * `profiles=a,b`: a comma-separated list of threshold profile ids (PROFILE_IDS), duplicates ignored; out in
 * PROFILES order. Unknown ids are named in the error.
 */
export const ProfilesParam = z
  .string({ error: 'profiles must be one comma-separated list of profile ids' })
  .transform((text, ctx) => {
    const ids = text
      .split(',')
      .map((id) => id.trim())
      .filter((id) => id !== '')
    const unknown = [...new Set(ids.filter((id) => !PROFILE_IDS.includes(id)))]
    if (unknown.length > 0) {
      ctx.issues.push({
        code: 'custom',
        input: text,
        message: `unknown profile id${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')} (known: ${PROFILE_IDS.join(', ')})`,
      })
      return z.NEVER
    }
    if (ids.length === 0) {
      ctx.issues.push({ code: 'custom', input: text, message: 'profiles must name at least one profile id' })
      return z.NEVER
    }
    return PROFILE_IDS.filter((id) => ids.includes(id))
  })

/** The selected profiles; all when none were asked for. */
export function selectedProfiles(ids: readonly string[] | undefined): readonly ThresholdProfile[] {
  return ids === undefined ? PROFILES : PROFILES.filter((p) => ids.includes(p.id))
}

export const ReportQuery = z.strictObject(
  {
    from: z.iso.date({
      error: (i) => (i.input === undefined ? 'from is required, e.g. from=2026-03-01' : DATE_MESSAGE),
    }),
    to: z.iso.date({ error: (i) => (i.input === undefined ? 'to is required, e.g. to=2026-03-31' : DATE_MESSAGE) }),
    format: z.enum(['json', 'csv'], { error: 'format must be json or csv' }).optional(),
    profiles: ProfilesParam.optional(),
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
/**
 * Core profiles.ts `pairedComparison` of one metric: a and b are named where it is used (background: a = this
 * site, b = the background site; indoor_outdoor: a = indoor, b = outdoor). Means over the paired hours only.
 */
const PairedOut = z.object({
  metric: z.string(),
  periodHours: z.number().int(),
  hoursA: z.number().int(),
  hoursB: z.number().int(),
  pairedHours: z.number().int(),
  coverage: z.number().nullable(),
  meanA: z.number().nullable(),
  meanB: z.number().nullable(),
  meanDifference: z.number().nullable(),
  ratioOfMeans: z.number().nullable(),
  shareAGreater: z.number().nullable(),
})

/** Why a pattern could not be evaluated for a site: it is a background site itself; no background site it may read
 * lies within reach; it had no indoor, or no outdoor, device in the period. */
export const NOT_EVALUATED_CODES = ['IS_BACKGROUND', 'NO_BACKGROUND', 'NO_INDOOR_DEVICE', 'NO_OUTDOOR_DEVICE'] as const

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
  /** `code` for programs and translations (NOT_EVALUATED_CODES), `reason` in English for people. */
  not_evaluated: z.array(z.object({ pattern: z.string(), code: z.enum(NOT_EVALUATED_CODES), reason: z.string() })),
  /** Threshold profile ids the rules come from (the `profiles` parameter or all). */
  threshold_profiles: z.array(z.string()),
  /**
   * The nearest urban background site within `max_distance_km` (great-circle distance), compared hour by hour
   * (a = this site, b = the background site; a − b is the local increment); null when there is none.
   */
  background: z
    .object({
      site: z.string(),
      name: z.string(),
      distance_km: z.number(),
      max_distance_km: z.number(),
      comparisons: z.array(PairedOut),
    })
    .nullable(),
  /**
   * Indoor against outdoor air at this site (a = indoor devices, b = outdoor devices), when it had both in the
   * period; null otherwise. `report_series` says which hours the means, rules, profiles and patterns above use:
   * 'outdoor' when the site has both (limit values are for outdoor air).
   */
  indoor_outdoor: z
    .object({
      indoor_devices: z.array(z.string()),
      outdoor_devices: z.array(z.string()),
      report_series: z.literal('outdoor'),
      comparisons: z.array(PairedOut),
    })
    .nullable(),
  /**
   * True when every registered device at the site in the period stood indoors: the means, rules and profiles
   * above are then of indoor air, which limit values and guidelines are not made for.
   */
  indoor_only: z.boolean(),
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
function metricsSuggestedBy(pattern: PatternId, catalogue: readonly Measure[]): Metric[] {
  return REPORT_METRICS.filter((metric) =>
    catalogue.some((m) => m.metrics.includes(metric) && m.suggestedBy.some((s) => s.pattern === pattern)),
  )
}

interface Patterns {
  /** The municipality's catalogue of measures (measure-catalogue.ts): which patterns are looked for, and for what. */
  readonly catalogue: readonly Measure[]
  readonly found: PatternEvidence[]
  readonly evaluated: ReportResponse['evaluated']
  readonly notEvaluated: ReportResponse['not_evaluated']
  record(pattern: PatternId, metric: Metric, hasData: boolean, evidence: PatternEvidence | null): void
}

function createPatterns(catalogue: readonly Measure[]): Patterns {
  const found: PatternEvidence[] = []
  const evaluated: ReportResponse['evaluated'] = []
  return {
    catalogue,
    found,
    evaluated,
    notEvaluated: [],
    record(pattern, metric, hasData, evidence) {
      if (evidence !== null) found.push(evidence)
      evaluated.push({ pattern, metric, result: evidence !== null ? 'found' : hasData ? 'not_found' : 'no_data' })
    },
  }
}

/** The single-site detectors over the period, per metric the catalogue has a measure for. */
function detectPatterns(hours: ReadonlyMap<Metric, readonly RuleHour[]>, window: TimeWindow, patterns: Patterns) {
  const options = { ...window, timeZone: DEFAULT_PROFILE_TIME_ZONE }
  const { record } = patterns
  for (const pattern of SINGLE_SITE_PATTERNS) {
    for (const metric of metricsSuggestedBy(pattern, patterns.catalogue)) {
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
}

/** Paired comparisons of REPORT_METRICS over the period (core profiles.ts pairedComparison; a, b as given). */
function pairAll(
  a: ReadonlyMap<Metric, readonly RuleHour[]>,
  b: ReadonlyMap<Metric, readonly RuleHour[]>,
  window: TimeWindow,
): Map<Metric, PairedComparison> {
  return new Map(
    REPORT_METRICS.map((metric) => [metric, pairedComparison(a.get(metric) ?? [], b.get(metric) ?? [], window)]),
  )
}

function pairedOut(comparisons: ReadonlyMap<Metric, PairedComparison>): z.infer<typeof PairedOut>[] {
  return [...comparisons].map(([metric, c]) => ({
    metric,
    periodHours: c.periodHours,
    hoursA: c.hoursA,
    hoursB: c.hoursB,
    pairedHours: c.pairedHours,
    coverage: roundOrNull(c.coverage),
    meanA: roundOrNull(c.meanA),
    meanB: roundOrNull(c.meanB),
    meanDifference: roundOrNull(c.meanDifference),
    ratioOfMeans: roundOrNull(c.ratioOfMeans),
    shareAGreater: roundOrNull(c.shareAGreater),
  }))
}

/** What a site report needs of the registry, read once per request (the municipality route reads it once). */
export interface ReportRegistry {
  readonly sites: readonly Site[]
  readonly devices: readonly PlacedDevice[]
}

export interface SiteReportParts {
  /** The core report (unrounded) and its rounded JSON form. */
  readonly core: SiteReport
  readonly report: ReportResponse['report']
  /** The rule hours of the series the report counts (outdoor when the site has both). */
  readonly hours: ReadonlyMap<Metric, readonly RuleHour[]>
  /** Registered devices placed at the site in the period, indoors and outdoors, by id. */
  readonly devices: { readonly indoor: readonly string[]; readonly outdoor: readonly string[] }
  /** The indoor rule hours and device ids, when the site had indoor and outdoor devices. */
  readonly indoorOutdoor: {
    readonly indoorDevices: readonly string[]
    readonly outdoorDevices: readonly string[]
    readonly indoor: ReadonlyMap<Metric, readonly RuleHour[]>
  } | null
}

/** The core site report of REPORT_METRICS from a site's series (site-hours.ts). */
export function coreSiteReport(
  siteId: string,
  window: TimeWindow,
  profiles: readonly ThresholdProfile[],
  series: SiteSeries,
  now: number,
): SiteReport {
  return siteReport({ siteId, window, metrics: REPORT_METRICS, series, profiles, now })
}

/**
 * One site's core report over `window` from the hours a report counts (storage: site-hours.ts readSiteAirHours:
 * outdoor devices only when the site had both kinds). Shared by the site and the municipality route, so a site's
 * numbers are the same in both.
 */
export async function buildSiteReport(
  ctx: ApiContext,
  site: Pick<Site, 'id'>,
  window: TimeWindow,
  profiles: readonly ThresholdProfile[],
  registry: ReportRegistry,
  now: number,
): Promise<SiteReportParts> {
  const air = await readSiteAirHours(ctx.storage.readings, site.id, window, registry.devices)
  const core = coreSiteReport(site.id, window, profiles, air.series, now)
  return {
    core,
    report: reportOut(core),
    hours: siteRuleHours(air.series).hours,
    devices: { indoor: air.split.indoor, outdoor: air.split.outdoor },
    indoorOutdoor:
      air.indoorOutdoor === null
        ? null
        : {
            indoorDevices: air.split.indoor,
            outdoorDevices: air.split.outdoor,
            indoor: siteRuleHours(air.indoorOutdoor.indoor).hours,
          },
  }
}

/** Whether a comparison has a paired hour (else the detector had no data). */
const hasPairs = (c: PairedComparison | undefined): boolean => c !== undefined && c.pairedHours > 0

async function backgroundPart(
  ctx: ApiContext,
  req: Request,
  site: Site,
  window: TimeWindow,
  hours: ReadonlyMap<Metric, readonly RuleHour[]>,
  registry: ReportRegistry,
  patterns: Patterns,
): Promise<ReportResponse['background']> {
  if (site.kind === 'background') {
    patterns.notEvaluated.push({
      pattern: 'local-increment',
      code: 'IS_BACKGROUND',
      reason: 'this site is itself an urban background site',
    })
    return null
  }
  // Only background sites the caller may read: their levels are in the comparison.
  const { principal } = authOf(req)
  const readable = registry.sites.filter((s) => canOnSite(principal, 'series:hourly', s.id, ctx.options))
  const nearest = nearestBackgroundSite(site, readable, MAX_BACKGROUND_DISTANCE_KM)
  if (nearest === undefined) {
    patterns.notEvaluated.push({
      pattern: 'local-increment',
      code: 'NO_BACKGROUND',
      reason: `no urban background site (kind background) within ${MAX_BACKGROUND_DISTANCE_KM} km of this site`,
    })
    return null
  }
  const air = await readSiteAirHours(ctx.storage.readings, nearest.site.id, window, registry.devices)
  const comparisons = pairAll(hours, siteRuleHours(air.series).hours, window)
  for (const metric of metricsSuggestedBy('local-increment', patterns.catalogue)) {
    const c = comparisons.get(metric)
    patterns.record('local-increment', metric, hasPairs(c), c === undefined ? null : detectLocalIncrement(metric, c))
  }
  return {
    site: nearest.site.id,
    name: nearest.site.name,
    distance_km: round(nearest.distanceKm),
    max_distance_km: MAX_BACKGROUND_DISTANCE_KM,
    comparisons: pairedOut(comparisons),
  }
}

function indoorOutdoorPart(
  parts: SiteReportParts,
  window: TimeWindow,
  patterns: Patterns,
): ReportResponse['indoor_outdoor'] {
  const io = parts.indoorOutdoor
  if (io === null) {
    const missing = parts.devices.indoor.length === 0 ? 'no indoor device' : 'no outdoor device'
    for (const pattern of INDOOR_PATTERNS) {
      patterns.notEvaluated.push({
        pattern,
        code: parts.devices.indoor.length === 0 ? 'NO_INDOOR_DEVICE' : 'NO_OUTDOOR_DEVICE',
        reason: `needs an indoor and an outdoor device at this site in the period; it had ${missing}`,
      })
    }
    return null
  }
  // a = indoor, b = outdoor (detectIndoorOutdoor's convention).
  const comparisons = pairAll(io.indoor, parts.hours, window)
  for (const pattern of INDOOR_PATTERNS) {
    for (const metric of metricsSuggestedBy(pattern, patterns.catalogue)) {
      const c = comparisons.get(metric)
      const evidence = c === undefined ? null : detectIndoorOutdoor(metric, c)
      patterns.record(pattern, metric, hasPairs(c), evidence?.pattern === pattern ? evidence : null)
    }
  }
  return {
    indoor_devices: [...io.indoorDevices],
    outdoor_devices: [...io.outdoorDevices],
    report_series: 'outdoor',
    comparisons: pairedOut(comparisons),
  }
}

/** The report period and the selected profiles from a validated query; 400 for a reversed or too long period. */
export function reportPeriod(query: { from: string; to: string }): TimeWindow {
  const window = reportWindow(query.from, query.to)
  const days = (window.to - window.from) / DAY_MS
  if (days < 1) throw rangeProblem('to must not be before from')
  if (days > MAX_REPORT_DAYS) throw rangeProblem(`the period is ${days} days; at most ${MAX_REPORT_DAYS}`)
  return window
}

export function csvCell(value: string | number | boolean | null | undefined): string {
  if (value === null || value === undefined) return ''
  const text = String(value)
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text
}

/** What the CSV holds besides the report: the hour-by-hour comparisons (null when there are none). */
export interface ReportCsvComparisons {
  readonly background: ReportResponse['background']
  readonly indoorOutdoor: ReportResponse['indoor_outdoor']
}

/**
 * The report as CSV (RFC 4180, CRLF, header row): one `metric` row per reported metric (mean of the counted
 * hourly means; counted/expected hours) and one `rule` row per profile rule (count rules: count of periods above
 * `value`, counted/expected = valid/expected periods; annual rules: the period mean, counted/expected hours).
 * Then one row per metric of each hour-by-hour comparison: `background` (rule = the background site's id; `mean`
 * = this site, `value` = the background, over the paired hours) and `indoor_outdoor` (rule = 'indoor'; `mean` =
 * indoor, `value` = outdoor); counted = paired hours, expected = hours of the period.
 */
export function reportCsv(report: ReportResponse['report'], comparisons?: ReportCsvComparisons): string {
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
  const comparisonRows = (kind: string, rule: string, list: readonly z.infer<typeof PairedOut>[]) => {
    for (const c of list) {
      rows.push([
        kind,
        null,
        rule,
        c.metric,
        null,
        c.meanB,
        c.meanA,
        null,
        null,
        c.pairedHours,
        c.periodHours,
        c.coverage,
        null,
      ])
    }
  }
  if (comparisons?.background)
    comparisonRows('background', comparisons.background.site, comparisons.background.comparisons)
  if (comparisons?.indoorOutdoor) comparisonRows('indoor_outdoor', 'indoor', comparisons.indoorOutdoor.comparisons)
  return rows.map((row) => `${row.map(csvCell).join(',')}\r\n`).join('')
}

export function reportsRouter(ctx: ApiContext): Router {
  const { storage, clock, options } = ctx
  const router = Router()

  router
    .route('/sites/:id/report')
    .get(async (req, res) => {
      const site = await siteOr404(storage.registry, req.params.id)
      requireSitePermission(req, ctx, 'series:hourly', site.id, 'read reports of this site')
      const parsed = ReportQuery.safeParse(req.query)
      if (!parsed.success) throw validationProblem(parsed.error, 'report query')
      const window = reportPeriod(parsed.data)
      const thresholdProfiles = selectedProfiles(parsed.data.profiles)
      const now = clock()
      const [sites, devices] = await Promise.all([storage.registry.listSites(), storage.registry.listDevices()])
      const registry: ReportRegistry = { sites, devices }
      const parts = await buildSiteReport(ctx, site, window, thresholdProfiles, registry, now)
      const { report, hours } = parts
      const patterns = createPatterns(await readMeasureCatalogue(storage, ctx.log))
      detectPatterns(hours, window, patterns)
      const background = await backgroundPart(ctx, req, site, window, hours, registry, patterns)
      const indoorOutdoor = indoorOutdoorPart(parts, window, patterns)
      cacheFor(res, options.publicMap, options.publicMaxAgeS)
      if (parsed.data.format === 'csv') {
        res.type('text/csv; charset=utf-8')
        res.attachment(`report-${site.id}-${parsed.data.from}-${parsed.data.to}.csv`)
        res.send(reportCsv(report, { background, indoorOutdoor }))
        return
      }
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
      const suggested: Suggestions = suggestMeasures(patterns.found, patterns.catalogue)
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
        not_evaluated: patterns.notEvaluated,
        threshold_profiles: thresholdProfiles.map((p) => p.id),
        background,
        indoor_outdoor: indoorOutdoor,
        indoor_only: parts.devices.indoor.length > 0 && parts.devices.outdoor.length === 0,
      } satisfies ReportResponse)
    })
    .all(methodNotAllowed(['GET', 'HEAD']))

  return router
}
