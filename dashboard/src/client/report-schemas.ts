import * as z from 'zod/mini'

/**
 * The report responses as the dashboard reads them (issue 7), validated where they enter the browser; zod/mini
 * as in schemas.ts. Strict where the page prints a number (means, coverage, counts), lenient where the API grows
 * (the background comparison, indoor/outdoor and the municipality's parts may be absent or richer).
 *
 * Sources: api/src/routes/reports.ts `ReportResponse`, api/src/routes/municipal-report.ts
 * `MunicipalReportResponse`, api/src/routes/measures.ts (catalogue, measures taken, follow-up).
 */

const Localized = z.object({ sv: z.string(), en: z.string() })
export type LocalizedText = z.infer<typeof Localized>

const Worst = z.object({ t: z.string(), value: z.number(), coverage: z.number() })

export const MetricReportSchema = z.object({
  metric: z.string(),
  mean: z.nullable(z.number()),
  countedHours: z.number(),
  expectedHours: z.number(),
  coverage: z.number(),
  sufficientCoverage: z.boolean(),
  validDays: z.number(),
  expectedDays: z.number(),
  dayCoverage: z.number(),
  worstHours: z.array(Worst),
  worstDays: z.array(Worst),
})
export type MetricReportData = z.infer<typeof MetricReportSchema>

/** A rule of a profile: `count` rules (hours or days above a value) and `mean` rules (the period mean). */
export const RuleSchema = z.object({
  rule: z.string(),
  kind: z.string(),
  pollutant: z.string(),
  period: z.string(),
  value: z.number(),
  unverified: z.optional(z.string()),
  coverage: z.number(),
  sufficientCoverage: z.boolean(),
  note: z.optional(z.string()),
  count: z.optional(z.number()),
  validPeriods: z.optional(z.number()),
  expectedPeriods: z.optional(z.number()),
  allowedPerYear: z.optional(z.nullable(z.number())),
  allowedForYearOnly: z.optional(z.boolean()),
  mean: z.optional(z.nullable(z.number())),
  countedHours: z.optional(z.number()),
  expectedHours: z.optional(z.number()),
  aboveValue: z.optional(z.nullable(z.boolean())),
  exceeded: z.nullable(z.boolean()),
})
export type RuleData = z.infer<typeof RuleSchema>

export const ProfileReportSchema = z.object({
  id: z.string(),
  version: z.string(),
  name: z.string(),
  legal: z.boolean(),
  unverified: z.optional(z.string()),
  applies: z.nullable(z.object({ from: z.string(), to: z.string() })),
  rules: z.array(RuleSchema),
})
export type ProfileReportData = z.infer<typeof ProfileReportSchema>

export const BucketSchema = z.object({
  key: z.number(),
  mean: z.nullable(z.number()),
  hours: z.number(),
  periodHours: z.number(),
  coverage: z.nullable(z.number()),
})
export type BucketData = z.infer<typeof BucketSchema>

export const MetricProfilesSchema = z.object({
  metric: z.string(),
  timeZone: z.string(),
  hourOfDay: z.array(BucketSchema),
  dayOfWeek: z.array(BucketSchema),
  season: z.array(BucketSchema),
})
export type MetricProfilesData = z.infer<typeof MetricProfilesSchema>

export const SuggestionSchema = z.object({
  measureId: z.string(),
  name: Localized,
  description: Localized,
  pattern: z.string(),
  metric: z.string(),
  evidence: Localized,
  caveat: Localized,
  sources: z.array(z.object({ text: z.string(), url: z.optional(z.string()), reliability: z.string() })),
  coverage: z.number(),
  hours: z.number(),
  values: z.record(z.string(), z.number()),
})
export type SuggestionData = z.infer<typeof SuggestionSchema>

/** Core profiles.ts pairedComparison of one metric (a and b named where used), as reports.ts `PairedOut`. */
export const PairedSchema = z.object({
  metric: z.string(),
  periodHours: z.number(),
  hoursA: z.number(),
  hoursB: z.number(),
  pairedHours: z.number(),
  coverage: z.nullable(z.number()),
  meanA: z.nullable(z.number()),
  meanB: z.nullable(z.number()),
  meanDifference: z.nullable(z.number()),
  ratioOfMeans: z.nullable(z.number()),
  shareAGreater: z.nullable(z.number()),
})
export type PairedData = z.infer<typeof PairedSchema>

/** The nearest urban background site (a = this site, b = background; a − b is the local increment). */
export const BackgroundSchema = z.object({
  site: z.string(),
  name: z.string(),
  distance_km: z.number(),
  max_distance_km: z.number(),
  comparisons: z.array(PairedSchema),
})
export type BackgroundData = z.infer<typeof BackgroundSchema>

/** Indoor (a) against outdoor (b) air at the site; the report's other numbers then use the outdoor hours. */
export const IndoorOutdoorSchema = z.object({
  indoor_devices: z.array(z.string()),
  outdoor_devices: z.array(z.string()),
  report_series: z.string(),
  comparisons: z.array(PairedSchema),
})
export type IndoorOutdoorData = z.infer<typeof IndoorOutdoorSchema>

export const SiteReportSchema = z.object({
  site: z.string(),
  from: z.string(),
  to: z.string(),
  generated_at: z.string(),
  report: z.object({
    periodIsYear: z.boolean(),
    metrics: z.array(MetricReportSchema),
    profiles: z.array(ProfileReportSchema),
  }),
  profiles: z.array(MetricProfilesSchema),
  suggestions: z.array(SuggestionSchema),
  skipped: z.array(
    z.object({ pattern: z.string(), metric: z.string(), reason: z.string(), coverage: z.number(), hours: z.number() }),
  ),
  evaluated: z.array(z.object({ pattern: z.string(), metric: z.string(), result: z.string() })),
  /** `code` is absent from older APIs. */
  not_evaluated: z.array(z.object({ pattern: z.string(), code: z.optional(z.string()), reason: z.string() })),
  /** Threshold profile ids the rules come from; absent from older APIs. */
  threshold_profiles: z.optional(z.array(z.string())),
  /** Absent from older APIs; null when there is none. */
  background: z.optional(z.nullable(BackgroundSchema)),
  indoor_outdoor: z.optional(z.nullable(IndoorOutdoorSchema)),
})
export type SiteReportData = z.infer<typeof SiteReportSchema>

/** `GET /sites/:id`, the parts the report's heading needs. */
export const SiteHeadingSchema = z.object({
  id: z.string(),
  properties: z.object({
    name: z.string(),
    kind: z.string(),
    address: z.optional(z.nullable(z.string())),
    locality: z.optional(z.nullable(z.string())),
    municipality: z.optional(z.nullable(z.string())),
  }),
})
export type SiteHeadingData = z.infer<typeof SiteHeadingSchema>

// ---- municipality (helper B's MunicipalReportResponse; read leniently until it settles) ------------------------

const Component = z.object({
  metric: z.string(),
  mean: z.nullable(z.number()),
  coverage: z.nullable(z.number()),
  sufficientCoverage: z.optional(z.boolean()),
  ratio: z.nullable(z.number()),
})

export const MunicipalReportSchema = z.object({
  from: z.string(),
  to: z.string(),
  generated_at: z.string(),
  threshold_profiles: z.optional(z.array(z.string())),
  report: z.object({
    sites: z.number(),
    backgroundSites: z.optional(z.number()),
    metrics: z.array(
      z.object({
        metric: z.string(),
        unit: z.optional(z.string()),
        median: z.nullable(z.number()),
        included: z.number(),
        leftOut: z.array(
          z.object({
            siteId: z.string(),
            name: z.string(),
            kind: z.string(),
            reason: z.string(),
            mean: z.nullable(z.number()),
            coverage: z.nullable(z.number()),
          }),
        ),
        kinds: z.array(z.object({ kind: z.string(), median: z.nullable(z.number()), sites: z.number() })),
        /** Urban background sites: for reference, never in a median or the ranking. */
        background: z.optional(
          z.array(
            z.object({
              siteId: z.string(),
              name: z.string(),
              mean: z.nullable(z.number()),
              coverage: z.number(),
              sufficientCoverage: z.boolean(),
            }),
          ),
        ),
        sites: z.array(
          z.object({
            siteId: z.string(),
            name: z.string(),
            kind: z.string(),
            mean: z.number(),
            coverage: z.number(),
            differenceFromMedian: z.number(),
            ratioToMedian: z.nullable(z.number()),
            kindMedian: z.number(),
            rankInKind: z.number(),
            sitesOfKind: z.number(),
          }),
        ),
      }),
    ),
    ranking: z.object({
      formula: Localized,
      basis: z.array(z.object({ metric: z.string(), value: z.number(), rule: z.string(), profile: z.string() })),
      ranked: z.array(
        z.object({
          rank: z.number(),
          siteId: z.string(),
          name: z.string(),
          kind: z.string(),
          score: z.number(),
          drivenBy: z.string(),
          components: z.array(Component),
        }),
      ),
      notEnoughData: z.array(
        z.object({ siteId: z.string(), name: z.string(), kind: z.string(), components: z.array(Component) }),
      ),
    }),
  }),
  /** Sites whose numbers come from their outdoor devices only (they have indoor ones too). */
  outdoor_only_sites: z.optional(z.array(z.string())),
})
export type MunicipalReportData = z.infer<typeof MunicipalReportSchema>

// ---- measures (helper A: api/src/routes/measures.ts) ---------------------------------------------------------

export const SiteMeasureSchema = z.object({
  id: z.string(),
  site: z.string(),
  measure_id: z.nullable(z.string()),
  title: z.string(),
  taken_on: z.string(),
  note: z.nullable(z.string()),
  recorded_at: z.string(),
})
export type SiteMeasureData = z.infer<typeof SiteMeasureSchema>

/** `GET /sites/:id/measures`; items are checked one by one (parseSiteMeasures), so one odd item is left out. */
export const SiteMeasureListSchema = z.object({ site: z.string(), measures: z.array(z.unknown()) })

export function parseSiteMeasures(body: z.infer<typeof SiteMeasureListSchema>): SiteMeasureData[] {
  return body.measures.flatMap((item) => {
    const parsed = SiteMeasureSchema.safeParse(item)
    return parsed.success ? [parsed.data] : []
  })
}

const Side = z.object({
  mean: z.nullable(z.number()),
  counted_hours: z.number(),
  expected_hours: z.number(),
  coverage: z.number(),
  sufficient_coverage: z.boolean(),
})
const Change = z.nullable(z.object({ absolute: z.number(), percent: z.nullable(z.number()) }))
const Weather = z.object({ before: z.nullable(z.number()), after: z.nullable(z.number()) })

/** `GET /sites/:id/measures/:measureId/follow-up` (core measureFollowUp). */
export const FollowUpSchema = z.object({
  days: z.number(),
  before: z.object({ from: z.string(), to: z.string() }),
  after: z.object({ from: z.string(), to: z.string() }),
  after_complete: z.boolean(),
  background: z.nullable(z.object({ site: z.string(), name: z.string(), distance_km: z.number() })),
  metrics: z.array(
    z.object({
      metric: z.string(),
      before: Side,
      after: Side,
      change: Change,
      background: z.nullable(z.object({ before: Side, after: Side, change: Change })),
      difference_in_differences: z.nullable(z.number()),
    }),
  ),
  weather: z.optional(z.object({ temp: Weather, rh: Weather })),
  caveats: z.array(z.object({ code: z.string(), text: Localized })),
})
export type FollowUpData = z.infer<typeof FollowUpSchema>
