import {
  countableValues,
  countExceedances,
  type Metric,
  type PeriodValue,
  PROFILES,
  profileYearWindow,
  REGULATORY_DAY_OFFSET_MS,
  type RuleHour,
  regulatoryYearWindow,
  siteRuleHours,
  THRESHOLD_PERIODS,
  type ThresholdPeriod,
  type ThresholdProfile,
  type TimeWindow,
} from '@skolluft/core'
import { Router } from 'express'
import { z } from 'zod'
import { cacheFor, requireSitePermission } from '../auth/authenticate.ts'
import type { ApiContext } from '../options.ts'
import { HttpProblem, methodNotAllowed, validationProblem } from '../problem.ts'
import { readSiteHours } from '../site-hours.ts'
import { siteOr404 } from '../site-lookup.ts'

/**
 * `GET /sites/:id/exceedances?year=YYYY[&profile=<id>]`: per threshold profile, how often each rule was exceeded
 * in one calendar year (UTC+1) against the number it allows, with the data coverage beside every count (issue 4;
 * air-quality reference §3: "always show data coverage next to a count or mean, and flag years below 85 % as
 * indicative"). The numbers come from core: which hours count (rule-values.ts `siteRuleHours`: valid, final, no
 * quality issue), how periods are counted (incidents.ts `exceedances`) and annual means (annual-exceedances.ts).
 */

/** Earliest year asked about; no reading can be that old (MAX_READING_AGE_MS is 400 days), it keeps typos out. */
export const FIRST_EXCEEDANCE_YEAR = 2000

/** Coverage and annual means go out with 3 decimals, as the series route's means (sites.ts MEAN_DECIMALS). */
const DECIMALS = 1_000

const round = (value: number): number => Math.round(value * DECIMALS) / DECIMALS

const PROFILE_IDS = PROFILES.map((p) => p.id)
const YEAR_FORMAT_MESSAGE = 'year must be a four-digit calendar year, e.g. 2026'

export const ExceedancesQuery = z.strictObject(
  {
    year: z
      .string({
        error: (issue) => (issue.input === undefined ? 'year is required, e.g. year=2026' : YEAR_FORMAT_MESSAGE),
      })
      .regex(/^\d{4}$/, YEAR_FORMAT_MESSAGE)
      .transform(Number),
    profile: z.enum(PROFILE_IDS, { error: `profile must be one of ${PROFILE_IDS.join(', ')}` }).optional(),
  },
  {
    error: (issue) =>
      issue.code === 'unrecognized_keys' ? `unknown query parameter: ${issue.keys.join(', ')}` : undefined,
  },
)

const RuleExceedance = z.object({
  rule: z.string(),
  pollutant: z.string(),
  period: z.enum(THRESHOLD_PERIODS.filter((p) => p !== 'running24h')),
  /** µg/m³; a valid period mean strictly above it is an exceedance. */
  value: z.number(),
  allowed_per_year: z.number().int().nullable(),
  count: z.number().int(),
  exceeded: z.boolean(),
  coverage: z.number().min(0).max(1),
  valid_periods: z.number().int(),
  expected_periods: z.number().int(),
  sufficient_coverage: z.boolean(),
  /** `year` rules only; null when no hour counted. */
  annual_mean: z.number().nullable().optional(),
  unverified: z.string().optional(),
})
export type RuleExceedance = z.infer<typeof RuleExceedance>

const ProfileExceedances = z.object({
  id: z.string(),
  version: z.string(),
  name: z.string(),
  legal: z.boolean(),
  valid_from: z.iso.date().nullable(),
  valid_to: z.iso.date().nullable(),
  unverified: z.string().optional(),
  rules: z.array(RuleExceedance),
})
export type ProfileExceedances = z.infer<typeof ProfileExceedances>

export const ExceedancesResponse = z.object({
  site: z.string(),
  year: z.number().int(),
  /** The year in UTC+1: from 23:00 UTC on 31 December of the year before. */
  from: z.iso.datetime(),
  to: z.iso.datetime(),
  generated_at: z.iso.datetime(),
  profiles: z.array(ProfileExceedances),
})

/**
 * The report for one site and year, pure: per profile that applies in the year (each counted over the part of the
 * year it applies), every rule but the running 24-h ones (never counted, reference §3).
 */
export function exceedanceProfiles(
  hours: ReadonlyMap<Metric, readonly RuleHour[]>,
  profiles: readonly ThresholdProfile[],
  year: number,
  now: number,
): ProfileExceedances[] {
  // Period values depend on pollutant, period and window only (a year rule's are the hourly ones): made once
  // for the ~60 rules that share 6 of them, instead of once per rule (that took twice as long for a full year).
  const made = new Map<string, PeriodValue[]>()
  const valuesFor = (pollutant: Metric, period: ThresholdPeriod, window: TimeWindow): PeriodValue[] => {
    const key = `${pollutant}/${period === 'year' ? 'hour' : period}/${window.from}/${window.to}`
    let values = made.get(key)
    if (values === undefined) {
      values = countableValues(hours.get(pollutant) ?? [], period, window, now)
      made.set(key, values)
    }
    return values
  }
  const report: ProfileExceedances[] = []
  for (const profile of profiles) {
    const window = profileYearWindow(profile, year)
    if (window === null) continue
    const rules: RuleExceedance[] = []
    for (const rule of profile.rules) {
      const { period } = rule
      if (period === 'running24h') continue
      const result = countExceedances(valuesFor(rule.pollutant, period, window), rule, year, window)
      rules.push({
        rule: rule.id,
        pollutant: rule.pollutant,
        period,
        value: rule.value,
        allowed_per_year: rule.allowedPerYear,
        count: result.count,
        exceeded: result.exceeded,
        coverage: round(result.coverage),
        valid_periods: result.validPeriods,
        expected_periods: result.expectedPeriods,
        sufficient_coverage: result.sufficientCoverage,
        ...(result.annualMean === undefined
          ? {}
          : { annual_mean: result.annualMean === null ? null : round(result.annualMean) }),
        ...(rule.unverified === undefined ? {} : { unverified: rule.unverified }),
      })
    }
    report.push({
      id: profile.id,
      version: profile.version,
      name: profile.name,
      legal: profile.legal,
      valid_from: profile.validFrom,
      valid_to: profile.validTo,
      ...(profile.unverified === undefined ? {} : { unverified: profile.unverified }),
      rules,
    })
  }
  return report
}

function yearProblem(message: string): HttpProblem {
  return new HttpProblem({
    status: 400,
    code: 'invalid_request',
    title: 'Invalid exceedances query',
    detail: `invalid exceedances query: year: ${message}`,
    errors: [{ path: 'year', message }],
  })
}

/** The 400 for a named profile that applies on no day of the year, saying when it does apply. */
function profileNotInForce(profile: ThresholdProfile, year: number): HttpProblem {
  const { validFrom, validTo } = profile
  const span =
    validFrom !== null && validTo !== null
      ? `from ${validFrom} to ${validTo}`
      : validFrom !== null
        ? `from ${validFrom}`
        : `until ${validTo ?? ''}`
  const message = `profile ${profile.id} applies ${span}, not in ${year}`
  return new HttpProblem({
    status: 400,
    code: 'profile_not_in_force',
    title: 'Profile not in force',
    detail: message,
    errors: [{ path: 'profile', message }],
  })
}

export function exceedancesRouter(ctx: ApiContext): Router {
  const { storage, clock, options } = ctx
  const router = Router()

  router
    .route('/sites/:id/exceedances')
    .get(async (req, res) => {
      const site = await siteOr404(storage.registry, req.params.id)
      requireSitePermission(req, ctx, 'series:hourly', site.id, 'read exceedance counts of this site')
      const parsed = ExceedancesQuery.safeParse(req.query)
      if (!parsed.success) throw validationProblem(parsed.error, 'exceedances query')
      const { year } = parsed.data
      const now = clock()
      // The current year as a UTC+1 calendar year, the time basis of every count.
      const currentYear = new Date(now + REGULATORY_DAY_OFFSET_MS).getUTCFullYear()
      if (year < FIRST_EXCEEDANCE_YEAR || year > currentYear) {
        throw yearProblem(`year must be from ${FIRST_EXCEEDANCE_YEAR} to ${currentYear} (the current year)`)
      }
      let profiles: readonly ThresholdProfile[] = PROFILES
      if (parsed.data.profile !== undefined) {
        const named = PROFILES.filter((p) => p.id === parsed.data.profile)
        const profile = named[0]
        if (profile !== undefined && profileYearWindow(profile, year) === null) {
          throw profileNotInForce(profile, year)
        }
        profiles = named
      }
      const window = regulatoryYearWindow(year)
      const hours = siteRuleHours(await readSiteHours(storage.readings, site.id, window)).hours
      cacheFor(res, options.publicMap, options.publicMaxAgeS)
      res.json({
        site: site.id,
        year,
        from: new Date(window.from).toISOString(),
        to: new Date(window.to).toISOString(),
        generated_at: new Date(now).toISOString(),
        profiles: exceedanceProfiles(hours, profiles, year, now),
      } satisfies z.infer<typeof ExceedancesResponse>)
    })
    .all(methodNotAllowed(['GET', 'HEAD']))

  return router
}
