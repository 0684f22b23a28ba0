import { z } from 'zod'
import { HOUR_MS, hourStart } from './aggregation.ts'
import { METRIC_INFO, METRICS, type Metric } from './metrics.ts'
import {
  createLocalHourClock,
  DEFAULT_PROFILE_TIME_ZONE,
  hourOfDayProfile,
  type LocalHour,
  type PairedComparison,
  type Profile,
  type ProfileBucket,
  type ProfileHour,
  type ProfileOptions,
} from './profiles.ts'

/**
 * Suggested measures (issue 7): patterns in a site's profiles that point to a cause, and a catalogue of measures
 * that each such pattern suggests. Pure.
 *
 * Everything here is a SUGGESTION for a committee, never a conclusion: a pattern is a pointer (a drop-off peak is
 * consistent with traffic at drop-off, it does not prove it), the data are indicative low-cost measurements
 * (air-quality reference §3), and every number is shown with the coverage it rests on. The wording rule is
 * enforced on the catalogue itself (FORBIDDEN_WORDS), because the catalogue is data the municipality can edit.
 *
 * Flow: profiles.ts builds profiles / paired comparisons → a detector per pattern returns PatternEvidence or null
 * → suggestMeasures(evidence, catalogue) returns the measures whose pattern was found, with the evidence rendered
 * in Swedish and English, and the patterns it refused for too little data, each with a reason.
 */

// ---------------------------------------------------------------------------------------------------------------
// Patterns and the numbers each one reports

/** Patterns the detectors can find. Each names the values its evidence carries (PATTERN_VALUES). */
export const PATTERN_IDS = [
  'drop-off-peak',
  'spring-road-dust',
  'winter-evening-peak',
  'indoor-follows-outdoor',
  'indoor-sources',
  'local-increment',
] as const
export const PatternId = z.enum(PATTERN_IDS)
export type PatternId = z.infer<typeof PatternId>

/** How a value is printed: a concentration in the metric's unit, a ratio (2 decimals) or a share (per cent). */
export type ValueKind = 'concentration' | 'ratio' | 'share'

/**
 * The values each pattern's evidence carries, by name, with how each is printed. A catalogue template may use
 * these as `{name}` placeholders, plus the COMMON_PLACEHOLDERS. The schema rejects any other placeholder, so an
 * edited catalogue cannot refer to a number that does not exist.
 */
export const PATTERN_VALUES = {
  'drop-off-peak': {
    weekdayMorning: 'concentration',
    weekdayDaily: 'concentration',
    weekdayRatio: 'ratio',
    weekendMorning: 'concentration',
    weekendDaily: 'concentration',
    weekendRatio: 'ratio',
  },
  'spring-road-dust': {
    spring: 'concentration',
    summerAutumn: 'concentration',
    ratio: 'ratio',
  },
  'winter-evening-peak': {
    winterEvening: 'concentration',
    winterDaily: 'concentration',
    winterRatio: 'ratio',
    summerRatio: 'ratio',
  },
  'indoor-follows-outdoor': {
    indoor: 'concentration',
    outdoor: 'concentration',
    ratio: 'ratio',
    shareIndoorAbove: 'share',
  },
  'indoor-sources': {
    indoor: 'concentration',
    outdoor: 'concentration',
    ratio: 'ratio',
    shareIndoorAbove: 'share',
  },
  'local-increment': {
    site: 'concentration',
    background: 'concentration',
    increment: 'concentration',
    ratio: 'ratio',
  },
} as const satisfies Record<PatternId, Record<string, ValueKind>>

/** Placeholders every template may use: the metric's label, the evidence's coverage (share) and counted hours. */
export const COMMON_PLACEHOLDERS = ['metric', 'coverage', 'hours'] as const

/** What a detector found: the pattern, the metric, the named numbers, and how much data they rest on. */
export interface PatternEvidence {
  readonly pattern: PatternId
  readonly metric: Metric
  /** The pattern's values (PATTERN_VALUES[pattern]), all finite. */
  readonly values: Readonly<Record<string, number>>
  /**
   * The LOWEST coverage (0–1) among the groups of hours compared (e.g. weekday 07–09 and the weekday day): the
   * evidence is only as good as its thinnest part.
   */
  readonly coverage: number
  /** The FEWEST counted hours among the groups compared. */
  readonly hours: number
}

// ---------------------------------------------------------------------------------------------------------------
// Thresholds

/**
 * Least coverage (0–1) of every compared group for a pattern to be suggested. 0.75 is the share of hours official
 * monitoring requires for a valid daily mean (≥ 18 of 24 h; air-quality reference §3, 2024/2881 Annex V C),
 * applied here by analogy: a pattern resting on less than three quarters of its hours is not shown as evidence.
 */
export const MIN_PATTERN_COVERAGE = 0.75

/**
 * Fewest counted hours in every compared group. 12 = six days of the two drop-off hours (07–09): fewer, and a single
 * episode (a long-range transport day, §6.2) could make or hide a pattern. Not more, because the smallest group a
 * monthly report compares is the weekend's drop-off hours: a month has 8–10 weekend days, 16–20 such hours, so a
 * month with a few gaps must still qualify (with 20, a single month could never show the drop-off pattern).
 * Engineering choice.
 */
export const MIN_PATTERN_HOURS = 12

/** Drop-off hours: local 07:00–09:00 (buckets 7 and 8), the morning peak of the §6.3 diurnal shape. */
export const DROP_OFF_HOURS: readonly number[] = [7, 8]

/**
 * Weekday 07–09 mean over the weekday daily mean at least this. §6.3 models the weekday morning NO2 peak at ~1.5–2×
 * the daily mean (UNVERIFIED shape); 1.25 finds such a peak with room for noise, while a flat profile (ratio ~1) is
 * not taken for one.
 */
export const DROP_OFF_MIN_RATIO = 1.25

/**
 * The weekday morning ratio must exceed the weekend one by this factor: the drop-off is a weekday event, and §6.3
 * puts weekend levels at ~0.6–0.7× (UNVERIFIED). A morning peak as strong at weekends points to something else
 * (e.g. the morning inversion), not to drop-off traffic.
 */
export const DROP_OFF_MIN_WEEKDAY_CONTRAST = 1.15

/**
 * Spring (March–May) PM10 mean over the summer+autumn mean at least this. §6.2: road dust from studded tyres gives
 * the highest PM10 in spring (sourced); the size of the peak is not sourced, so 1.3 is an engineering choice
 * (UNVERIFIED) above the season-to-season noise of a year of hourly means.
 */
export const SPRING_DUST_MIN_RATIO = 1.3

/** Local evening hours 17:00–23:00 (buckets 17–22) for wood smoke: §6.2 names winter evenings (shape UNVERIFIED). */
export const EVENING_HOURS: readonly number[] = [17, 18, 19, 20, 21, 22]

/** Winter evening mean over the winter daily mean at least this (UNVERIFIED; §6.3 says only "evening rise"). */
export const WINTER_EVENING_MIN_RATIO = 1.2

/**
 * The winter evening ratio over the summer one at least this: an evening rise that summer shows as well is more
 * like evening traffic or a low evening mixing height than like heating with wood (UNVERIFIED engineering choice).
 */
export const WINTER_EVENING_MIN_SEASON_CONTRAST = 1.1

/**
 * Indoor/outdoor ratio of means at least this, with indoor rarely above outdoor, suggests that indoor particles
 * mostly come in from outside (intake, ventilation, leaks). UNVERIFIED engineering choice: a ratio of 0.6 means
 * well over half of the outdoor level is found indoors.
 */
export const INDOOR_FOLLOWS_OUTDOOR_MIN_RATIO = 0.6

/**
 * Share of paired hours with indoor above outdoor: below this, indoor is "rarely above" (then outdoor is the
 * likely origin); at or above it, indoor is "often above" (sources in the building). A quarter: UNVERIFIED.
 */
export const INDOOR_ABOVE_SHARE = 0.25

/**
 * Site mean over its urban background mean at least this for a local increment. §6.1: in Malmö street NO2 is
 * ~2× the roof (16–19 vs ~8), while street PM2.5 is within ~10 % of the roof (7.2 vs 6.6, 2023) – a difference
 * low-cost sensors cannot tell apart from calibration (§4). 1.2 lies between the two.
 */
export const LOCAL_INCREMENT_MIN_RATIO = 1.2

// ---------------------------------------------------------------------------------------------------------------
// Profiles of a subset of days

/**
 * Hour-of-day profile over only the hours whose LOCAL time matches `include` (weekdays, weekends, a season). The
 * means and counted hours are those of hourOfDayProfile over the matching hours; periodHours counts only the
 * matching hours of the period, so coverage is that of the subset (filtering the input of hourOfDayProfile alone
 * would divide weekday hours by all days' hours).
 */
export function hourOfDayProfileWhere(
  hours: readonly ProfileHour[],
  options: ProfileOptions,
  include: (local: LocalHour) => boolean,
): Profile {
  const clock = createLocalHourClock(options.timeZone ?? DEFAULT_PROFILE_TIME_ZONE)
  const base = hourOfDayProfile(
    hours.filter((hour) => include(clock(hourStart(hour.t)))),
    options,
  )
  const periodHours = new Array<number>(24).fill(0)
  for (let t = Math.ceil(options.from / HOUR_MS) * HOUR_MS; t < options.to; t += HOUR_MS) {
    const local = clock(t)
    if (include(local)) periodHours[local.hourOfDay] = (periodHours[local.hourOfDay] ?? 0) + 1
  }
  return {
    ...base,
    buckets: base.buckets.map((bucket) => {
      const inPeriod = periodHours[bucket.key] ?? 0
      return { ...bucket, periodHours: inPeriod, coverage: inPeriod > 0 ? bucket.hours / inPeriod : null }
    }),
  }
}

/** Monday–Friday (dayOfWeek 0–4) and Saturday–Sunday. School holidays are not known here and count as weekdays. */
export const isWeekday = (local: LocalHour): boolean => local.dayOfWeek < 5
export const isWeekend = (local: LocalHour): boolean => local.dayOfWeek >= 5

// ---------------------------------------------------------------------------------------------------------------
// Detectors

interface Pooled {
  readonly mean: number
  readonly hours: number
  readonly coverage: number
}

/**
 * Hour-weighted mean of some buckets (the mean of all their counted hours, as if they were one bucket), with their
 * counted hours and coverage; null when they have no counted hour or no period hour.
 */
function pool(buckets: readonly ProfileBucket[], keys?: readonly number[]): Pooled | null {
  let sum = 0
  let hours = 0
  let periodHours = 0
  for (const bucket of buckets) {
    if (keys !== undefined && !keys.includes(bucket.key)) continue
    periodHours += bucket.periodHours
    if (bucket.mean === null) continue
    sum += bucket.mean * bucket.hours
    hours += bucket.hours
  }
  if (hours === 0 || periodHours === 0) return null
  return { mean: sum / hours, hours, coverage: hours / periodHours }
}

function evidence(
  pattern: PatternId,
  metric: Metric,
  values: Record<string, number>,
  parts: Pooled[],
): PatternEvidence {
  return {
    pattern,
    metric,
    values,
    coverage: Math.min(...parts.map((p) => p.coverage)),
    hours: Math.min(...parts.map((p) => p.hours)),
  }
}

/**
 * Weekday morning peak at drop-off: in hour-of-day profiles of weekdays and of weekends
 * (hourOfDayProfileWhere with isWeekday / isWeekend), the weekday 07–09 mean over the weekday daily mean is at
 * least DROP_OFF_MIN_RATIO and at least DROP_OFF_MIN_WEEKDAY_CONTRAST times the weekend's ratio. Null otherwise or
 * when a group has no data (or a daily mean ≤ 0).
 */
export function detectDropOffPeak(
  metric: Metric,
  profiles: { readonly weekday: Profile; readonly weekend: Profile },
): PatternEvidence | null {
  const weekdayMorning = pool(profiles.weekday.buckets, DROP_OFF_HOURS)
  const weekdayDaily = pool(profiles.weekday.buckets)
  const weekendMorning = pool(profiles.weekend.buckets, DROP_OFF_HOURS)
  const weekendDaily = pool(profiles.weekend.buckets)
  if (weekdayMorning === null || weekdayDaily === null || weekendMorning === null || weekendDaily === null) return null
  if (weekdayDaily.mean <= 0 || weekendDaily.mean <= 0) return null
  const weekdayRatio = weekdayMorning.mean / weekdayDaily.mean
  const weekendRatio = weekendMorning.mean / weekendDaily.mean
  if (weekdayRatio < DROP_OFF_MIN_RATIO) return null
  if (weekdayRatio < weekendRatio * DROP_OFF_MIN_WEEKDAY_CONTRAST) return null
  return evidence(
    'drop-off-peak',
    metric,
    {
      weekdayMorning: weekdayMorning.mean,
      weekdayDaily: weekdayDaily.mean,
      weekdayRatio,
      weekendMorning: weekendMorning.mean,
      weekendDaily: weekendDaily.mean,
      weekendRatio,
    },
    [weekdayMorning, weekdayDaily, weekendMorning, weekendDaily],
  )
}

/**
 * Spring road-dust peak: in a seasonProfile (buckets in SEASONS order), the spring mean over the pooled
 * summer+autumn mean is at least SPRING_DUST_MIN_RATIO. Meant for PM10 (§6.2: coarse road wear and resuspension).
 */
export function detectSpringRoadDust(metric: Metric, seasons: Profile): PatternEvidence | null {
  // SEASONS order: 0 winter, 1 spring, 2 summer, 3 autumn.
  const spring = pool(seasons.buckets, [1])
  const summerAutumn = pool(seasons.buckets, [2, 3])
  if (spring === null || summerAutumn === null || summerAutumn.mean <= 0) return null
  const ratio = spring.mean / summerAutumn.mean
  if (ratio < SPRING_DUST_MIN_RATIO) return null
  return evidence('spring-road-dust', metric, { spring: spring.mean, summerAutumn: summerAutumn.mean, ratio }, [
    spring,
    summerAutumn,
  ])
}

/**
 * Winter evening peak (wood burning, §6.2): in hour-of-day profiles of winter and of summer
 * (hourOfDayProfileWhere by season), the winter 17–23 mean over the winter daily mean is at least
 * WINTER_EVENING_MIN_RATIO and at least WINTER_EVENING_MIN_SEASON_CONTRAST times the summer's ratio. Meant for
 * PM2.5.
 */
export function detectWinterEveningPeak(
  metric: Metric,
  profiles: { readonly winter: Profile; readonly summer: Profile },
): PatternEvidence | null {
  const winterEvening = pool(profiles.winter.buckets, EVENING_HOURS)
  const winterDaily = pool(profiles.winter.buckets)
  const summerEvening = pool(profiles.summer.buckets, EVENING_HOURS)
  const summerDaily = pool(profiles.summer.buckets)
  if (winterEvening === null || winterDaily === null || summerEvening === null || summerDaily === null) return null
  if (winterDaily.mean <= 0 || summerDaily.mean <= 0) return null
  const winterRatio = winterEvening.mean / winterDaily.mean
  const summerRatio = summerEvening.mean / summerDaily.mean
  if (winterRatio < WINTER_EVENING_MIN_RATIO) return null
  if (winterRatio < summerRatio * WINTER_EVENING_MIN_SEASON_CONTRAST) return null
  return evidence(
    'winter-evening-peak',
    metric,
    { winterEvening: winterEvening.mean, winterDaily: winterDaily.mean, winterRatio, summerRatio },
    [winterEvening, winterDaily, summerEvening, summerDaily],
  )
}

function pairedParts(comparison: PairedComparison): {
  meanA: number
  meanB: number
  ratio: number
  share: number
  part: Pooled
} | null {
  const { meanA, meanB, ratioOfMeans, shareAGreater, coverage, pairedHours } = comparison
  if (meanA === null || meanB === null || ratioOfMeans === null || shareAGreater === null || coverage === null) {
    return null
  }
  return {
    meanA,
    meanB,
    ratio: ratioOfMeans,
    share: shareAGreater,
    part: { mean: meanA, hours: pairedHours, coverage },
  }
}

/**
 * Indoor/outdoor patterns from pairedComparison(indoor, outdoor) (a = INDOOR): indoor often above outdoor
 * (shareAGreater ≥ INDOOR_ABOVE_SHARE) → 'indoor-sources'; otherwise indoor at least
 * INDOOR_FOLLOWS_OUTDOOR_MIN_RATIO of outdoor → 'indoor-follows-outdoor'; otherwise null (indoor well below
 * outdoor: nothing to suggest). The ratio of means does not show that indoor FOLLOWS outdoor hour by hour (no lag
 * or correlation is computed); the wording of the catalogue says "may".
 */
export function detectIndoorOutdoor(metric: Metric, indoorVsOutdoor: PairedComparison): PatternEvidence | null {
  const parts = pairedParts(indoorVsOutdoor)
  if (parts === null) return null
  const values = { indoor: parts.meanA, outdoor: parts.meanB, ratio: parts.ratio, shareIndoorAbove: parts.share }
  if (parts.share >= INDOOR_ABOVE_SHARE) return evidence('indoor-sources', metric, values, [parts.part])
  if (parts.ratio >= INDOOR_FOLLOWS_OUTDOOR_MIN_RATIO) {
    return evidence('indoor-follows-outdoor', metric, values, [parts.part])
  }
  return null
}

/**
 * A site above its urban background: from pairedComparison(site, background) (a = SITE), the ratio of means is at
 * least LOCAL_INCREMENT_MIN_RATIO. The increment (site − background over the same hours) is the part a local
 * measure can change.
 */
export function detectLocalIncrement(metric: Metric, siteVsBackground: PairedComparison): PatternEvidence | null {
  const parts = pairedParts(siteVsBackground)
  if (parts === null || parts.ratio < LOCAL_INCREMENT_MIN_RATIO) return null
  return evidence(
    'local-increment',
    metric,
    { site: parts.meanA, background: parts.meanB, increment: parts.meanA - parts.meanB, ratio: parts.ratio },
    [parts.part],
  )
}

// ---------------------------------------------------------------------------------------------------------------
// Catalogue

/**
 * Words that state a conclusion rather than a suggestion (issue 7: "stated as a suggestion with its evidence,
 * never as a conclusion"). Matched as whole words, case-insensitively, in every text of the catalogue.
 */
export const FORBIDDEN_WORDS = {
  en: ['causes', 'caused', 'will', 'proves', 'proven', 'must', 'certainly', 'definitely', 'always'],
  sv: ['orsakar', 'orsakas', 'orsakade', 'bevisar', 'bevisat', 'måste', 'definitivt', 'alltid', 'kommer att'],
} as const

/** The forbidden words found in a text of a language (empty when none). */
export function forbiddenWordsIn(text: string, language: 'sv' | 'en'): string[] {
  const lower = text.toLowerCase()
  return FORBIDDEN_WORDS[language].filter((word) =>
    // \p{L} so that å, ä, ö count as letters at a word boundary.
    new RegExp(`(^|[^\\p{L}])${word}($|[^\\p{L}])`, 'u').test(lower),
  )
}

const PLACEHOLDER = /\{([A-Za-z]+)\}/g

function placeholdersOf(template: string): string[] {
  return [...template.matchAll(PLACEHOLDER)].map((match) => match[1] ?? '')
}

const suggestionText = (language: 'sv' | 'en') =>
  z
    .string()
    .min(1)
    .refine((text) => forbiddenWordsIn(text, language).length === 0, {
      message: `states a conclusion (one of: ${FORBIDDEN_WORDS[language].join(', ')}); word it as a suggestion`,
    })

/** A text in Swedish and English, both worded as suggestions. */
export const LocalizedText = z.object({ sv: suggestionText('sv'), en: suggestionText('en') })
export type LocalizedText = z.infer<typeof LocalizedText>

/** Where the reason a measure may help comes from; `reliability` uses the key of the air-quality reference. */
export const MeasureSource = z.object({
  text: z.string().min(1),
  url: z.url().optional(),
  reliability: z.enum(['official', 'secondary', 'code', 'unverified']),
})
export type MeasureSource = z.infer<typeof MeasureSource>

/** One pattern that suggests a measure, with the evidence template (placeholders `{name}`) in both languages. */
export const MeasureTrigger = z.object({ pattern: PatternId, evidence: LocalizedText }).superRefine((trigger, ctx) => {
  const allowed = new Set<string>([...COMMON_PLACEHOLDERS, ...Object.keys(PATTERN_VALUES[trigger.pattern])])
  for (const language of ['sv', 'en'] as const) {
    for (const name of placeholdersOf(trigger.evidence[language])) {
      if (!allowed.has(name)) {
        ctx.addIssue({
          code: 'custom',
          path: ['evidence', language],
          message: `unknown placeholder {${name}} for pattern ${trigger.pattern}`,
        })
      }
    }
  }
})
export type MeasureTrigger = z.infer<typeof MeasureTrigger>

/** A measure in the catalogue. The catalogue is data (an array of these) the municipality can edit. */
export const Measure = z.object({
  id: z.string().regex(/^[a-z0-9]+(-[a-z0-9]+)*$/),
  name: LocalizedText,
  description: LocalizedText,
  /** The metrics the measure concerns: a pattern found on another metric does not suggest it. */
  metrics: z.array(z.enum(METRICS)).min(1),
  /** The patterns that suggest it (the "why here"), each with its evidence template. */
  suggestedBy: z.array(MeasureTrigger).min(1),
  /** Why it may help; a reason without a checked source says so (reliability 'unverified'). */
  sources: z.array(MeasureSource).min(1),
})
export type Measure = z.infer<typeof Measure>

/** A catalogue: measures with unique ids. */
export const MeasureCatalogue = z.array(Measure).superRefine((measures, ctx) => {
  const seen = new Set<string>()
  measures.forEach((measure, index) => {
    if (seen.has(measure.id))
      ctx.addIssue({ code: 'custom', path: [index, 'id'], message: `duplicate id ${measure.id}` })
    seen.add(measure.id)
  })
})

const LUND_AIR_PAGE = 'https://old.lund.se/bygga-bo--miljo/boendemiljo/luften-utomhus/'

/**
 * The default catalogue (issue 7's examples). Sources are only those of the air-quality reference (§6.1–6.2);
 * where it says nothing about whether a measure works, the source says UNVERIFIED rather than inventing one.
 */
export const DEFAULT_MEASURES: readonly Measure[] = [
  {
    id: 'traffic-at-drop-off',
    name: {
      sv: 'Trafiklugnande åtgärder eller bilfri gata vid lämning och hämtning',
      en: 'Traffic calming or a car-free street at drop-off and pick-up times',
    },
    description: {
      sv: 'Färre och långsammare bilar vid skolan under lämning och hämtning, till exempel en bilfri skolgata, avlämningsplats längre bort eller sänkt hastighet.',
      en: 'Fewer and slower cars by the school at drop-off and pick-up, for example a car-free school street, a drop-off point further away or a lower speed limit.',
    },
    metrics: ['no2', 'pm10', 'pm25', 'pm1'],
    suggestedBy: [
      {
        pattern: 'drop-off-peak',
        evidence: {
          sv: 'Data tyder på en topp vid lämning: {metric} vardagar kl. 07–09 var i medel {weekdayMorning} mot {weekdayDaily} över hela dygnet (kvot {weekdayRatio}); på helger var kvoten {weekendRatio}. Trafik vid lämning kan bidra. Täckning {coverage}, minst {hours} timmar per grupp.',
          en: 'The data suggest a drop-off peak: weekday {metric} at 07–09 averaged {weekdayMorning} against {weekdayDaily} over the whole day (ratio {weekdayRatio}); at weekends the ratio was {weekendRatio}. Traffic at drop-off may contribute. Coverage {coverage}, at least {hours} hours per group.',
        },
      },
      {
        pattern: 'local-increment',
        evidence: {
          sv: 'Data tyder på ett lokalt tillskott: {metric} vid platsen var i medel {site} mot {background} i urban bakgrund samma timmar (tillskott {increment}, kvot {ratio}). Lokal trafik kan bidra. Täckning {coverage}, {hours} parade timmar.',
          en: 'The data suggest a local increment: {metric} at the site averaged {site} against {background} at the urban background in the same hours (increment {increment}, ratio {ratio}). Local traffic may contribute. Coverage {coverage}, {hours} paired hours.',
        },
      },
    ],
    sources: [
      {
        text: 'Road traffic is the largest source of urban pollution; street NO2 is mostly local (air-quality reference §6.2, Lund "Luften utomhus" page; Malmö Miljöbarometern NO2 page: ~80 % of street-level NO2 from local sources, §6.1).',
        url: LUND_AIR_PAGE,
        reliability: 'official',
      },
      {
        text: 'Higher speeds increase road wear and resuspension of PM10 (air-quality reference §6.2, Trafikverket).',
        reliability: 'official',
      },
      {
        text: 'How much a car-free school street lowers levels at the school: UNVERIFIED (no source in the air-quality reference).',
        reliability: 'unverified',
      },
    ],
  },
  {
    id: 'move-air-intake',
    name: { sv: 'Flytta ventilationens luftintag', en: 'Move the air intake of the ventilation' },
    description: {
      sv: 'Placera luftintaget bort från gatan och avlämningsplatsen, till exempel på taket eller på husets baksida.',
      en: 'Place the air intake away from the street and the drop-off point, for example on the roof or at the back of the building.',
    },
    metrics: ['pm25', 'pm10', 'pm1', 'no2'],
    suggestedBy: [
      {
        pattern: 'indoor-follows-outdoor',
        evidence: {
          sv: 'Data tyder på att partiklar inomhus kan komma utifrån: {metric} inomhus var i medel {indoor} mot {outdoor} utomhus samma timmar (kvot {ratio}), och inomhus låg över utomhus bara {shareIndoorAbove} av timmarna. Täckning {coverage}, {hours} parade timmar.',
          en: 'The data suggest that indoor particles may come from outside: indoor {metric} averaged {indoor} against {outdoor} outdoors in the same hours (ratio {ratio}), and indoor was above outdoor in only {shareIndoorAbove} of the hours. Coverage {coverage}, {hours} paired hours.',
        },
      },
    ],
    sources: [
      {
        text: 'That moving an intake lowers indoor levels: UNVERIFIED (no source in the air-quality reference).',
        reliability: 'unverified',
      },
    ],
  },
  {
    id: 'ventilation-schedule',
    name: {
      sv: 'Ändra ventilationens drifttider och filterklass',
      en: 'Change the ventilation schedule and filter class',
    },
    description: {
      sv: 'Starta ventilationen före barnens ankomst så att lokalen är genomventilerad, och se över filterklassen på tilluften.',
      en: 'Start the ventilation before the children arrive so that the rooms are aired through, and review the filter class of the supply air.',
    },
    metrics: ['pm25', 'pm10', 'pm1'],
    suggestedBy: [
      {
        pattern: 'indoor-follows-outdoor',
        evidence: {
          sv: 'Data tyder på att tilluften kan föra in partiklar: {metric} inomhus var {ratio} gånger nivån utomhus samma timmar ({indoor} mot {outdoor}). Ett filter av högre klass kan minska det. Täckning {coverage}, {hours} parade timmar.',
          en: 'The data suggest that the supply air may bring particles in: indoor {metric} was {ratio} times the outdoor level in the same hours ({indoor} against {outdoor}). A filter of a higher class may reduce this. Coverage {coverage}, {hours} paired hours.',
        },
      },
      {
        pattern: 'indoor-sources',
        evidence: {
          sv: 'Data tyder på källor inomhus: {metric} inomhus låg över utomhus {shareIndoorAbove} av de parade timmarna (medel {indoor} mot {outdoor}). Längre drifttid före och efter skoldagen kan hjälpa. Täckning {coverage}, {hours} parade timmar.',
          en: 'The data suggest sources indoors: indoor {metric} was above outdoor in {shareIndoorAbove} of the paired hours (mean {indoor} against {outdoor}). Running the ventilation longer before and after the school day may help. Coverage {coverage}, {hours} paired hours.',
        },
      },
    ],
    sources: [
      {
        text: 'Effect of ventilation schedules and filter classes on indoor PM at schools: UNVERIFIED (no source in the air-quality reference).',
        reliability: 'unverified',
      },
    ],
  },
  {
    id: 'vegetation-barrier',
    name: { sv: 'Plantering och vegetationsridåer', en: 'Planting and vegetation barriers' },
    description: {
      sv: 'En tät häck eller vegetationsridå mellan gatan och skolgården. Förbehåll: träd kan också stänga inne föroreningar i trånga gaturum (gatukanjoner) och höja halterna där; passar bäst där luften kan röra sig fritt.',
      en: 'A dense hedge or vegetation barrier between the street and the schoolyard. Caveat: trees can also trap pollution in narrow street canyons and raise levels there; best suited where air can move freely.',
    },
    metrics: ['no2', 'pm10', 'pm25', 'pm1'],
    suggestedBy: [
      {
        pattern: 'local-increment',
        evidence: {
          sv: 'Data tyder på ett lokalt tillskott från gatan: {metric} vid platsen var i medel {site} mot {background} i urban bakgrund (tillskott {increment}, kvot {ratio}). En vegetationsridå kan minska det, men inte i ett trångt gaturum. Täckning {coverage}, {hours} parade timmar.',
          en: 'The data suggest a local increment from the street: {metric} at the site averaged {site} against {background} at the urban background (increment {increment}, ratio {ratio}). A vegetation barrier may reduce it, though not in a narrow street canyon. Coverage {coverage}, {hours} paired hours.',
        },
      },
    ],
    sources: [
      {
        text: 'Tall buildings and narrow streets (street canyons) give the highest PM10 (air-quality reference §6.2, Trafikverket).',
        reliability: 'official',
      },
      {
        text: 'Effect of vegetation barriers, and that trees may trap pollution in street canyons: UNVERIFIED (no source in the air-quality reference).',
        reliability: 'unverified',
      },
    ],
  },
  {
    id: 'spring-street-cleaning',
    name: {
      sv: 'Gatustädning och dammbindning under våren',
      en: 'Street cleaning and dust binding in spring',
    },
    description: {
      sv: 'Städa gator och binda dammet (till exempel med saltlösning) kring skolan när vägarna torkar upp på våren.',
      en: 'Clean the streets and bind the dust (for example with a salt solution) around the school when the roads dry up in spring.',
    },
    metrics: ['pm10'],
    suggestedBy: [
      {
        pattern: 'spring-road-dust',
        evidence: {
          sv: 'Data tyder på vägdamm under våren: {metric} var i medel {spring} under våren mot {summerAutumn} under sommar och höst (kvot {ratio}). Dubbdäck på torra vägar kan bidra. Täckning {coverage}, minst {hours} timmar per säsong.',
          en: 'The data suggest spring road dust: {metric} averaged {spring} in spring against {summerAutumn} in summer and autumn (ratio {ratio}). Studded tyres on dry roads may contribute. Coverage {coverage}, at least {hours} hours per season.',
        },
      },
    ],
    sources: [
      {
        text: 'Studded tyres on dry roads make PM10 (road wear and resuspension) highest in spring and autumn (air-quality reference §6.2: Naturvårdsverket fact box via SVT; Trafikverket "Vinterdäck och partiklar"; SLB dubbdäck page).',
        reliability: 'official',
      },
      {
        text: 'How much street cleaning and dust binding lower PM10 at a school: UNVERIFIED (no source in the air-quality reference).',
        reliability: 'unverified',
      },
    ],
  },
  {
    id: 'wood-burning-information',
    name: { sv: 'Information om vedeldning', en: 'Information about wood burning' },
    description: {
      sv: 'Information till hushållen kring skolan om hur man eldar med ved med mindre rök, och om att undvika eldning vid dålig luft.',
      en: 'Information to households around the school about burning wood with less smoke, and about not burning when the air is poor.',
    },
    metrics: ['pm25', 'pm1', 'pm10'],
    suggestedBy: [
      {
        pattern: 'winter-evening-peak',
        evidence: {
          sv: 'Data tyder på en kvällstopp på vintern: {metric} kl. 17–23 var i medel {winterEvening} mot {winterDaily} över vinterdygnet (kvot {winterRatio}; på sommaren {summerRatio}). Vedeldning kan bidra. Täckning {coverage}, minst {hours} timmar per grupp.',
          en: 'The data suggest a winter evening peak: {metric} at 17–23 averaged {winterEvening} against {winterDaily} over the winter day (ratio {winterRatio}; in summer {summerRatio}). Wood burning may contribute. Coverage {coverage}, at least {hours} hours per group.',
        },
      },
    ],
    sources: [
      {
        text: 'Small-scale wood burning is a named secondary source of particles in Lund, in winter evenings (air-quality reference §6.2, Lund "Luften utomhus" page; its size and daily shape UNVERIFIED).',
        url: LUND_AIR_PAGE,
        reliability: 'official',
      },
    ],
  },
]

// ---------------------------------------------------------------------------------------------------------------
// Suggestions

export class MeasureError extends Error {
  readonly code: 'UNKNOWN_PLACEHOLDER' | 'INVALID_CATALOGUE'
  constructor(code: MeasureError['code'], message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'MeasureError'
    this.code = code
  }
}

/** Printed under every suggestion. */
export const SUGGESTION_CAVEAT: LocalizedText = {
  sv: 'Ett förslag utifrån indikativa mätningar med lågkostnadssensorer, inte en slutsats. Väder, säsong och täckning kan påverka mönstret.',
  en: 'A suggestion from indicative low-cost sensor measurements, not a conclusion. Weather, season and coverage can affect the pattern.',
}

export interface Suggestion {
  readonly measureId: string
  readonly name: LocalizedText
  readonly description: LocalizedText
  readonly pattern: PatternId
  readonly metric: Metric
  /** The evidence template rendered with the pattern's numbers. */
  readonly evidence: LocalizedText
  readonly caveat: LocalizedText
  readonly sources: readonly MeasureSource[]
  readonly coverage: number
  readonly hours: number
  readonly values: Readonly<Record<string, number>>
}

export interface SkippedPattern {
  readonly pattern: PatternId
  readonly metric: Metric
  readonly reason: 'LOW_COVERAGE' | 'TOO_FEW_HOURS'
  readonly coverage: number
  readonly hours: number
}

export interface SuggestOptions {
  /** Default MIN_PATTERN_COVERAGE. */
  readonly minCoverage?: number
  /** Default MIN_PATTERN_HOURS. */
  readonly minHours?: number
}

export interface Suggestions {
  readonly suggestions: readonly Suggestion[]
  /** Patterns found but not shown as evidence, with why. */
  readonly skipped: readonly SkippedPattern[]
}

function formatNumber(value: number, decimals: number, language: 'sv' | 'en'): string {
  const text = value.toFixed(decimals)
  return language === 'sv' ? text.replace('.', ',').replace('-', '−') : text
}

function formatValue(kind: ValueKind, value: number, metric: Metric, language: 'sv' | 'en'): string {
  if (kind === 'share') return `${formatNumber(value * 100, 0, language)} %`
  if (kind === 'ratio') return formatNumber(value, 2, language)
  return `${formatNumber(value, 1, language)} ${METRIC_INFO[metric].unit}`
}

/** A template with its placeholders replaced by the evidence's numbers. Throws MeasureError UNKNOWN_PLACEHOLDER. */
export function renderEvidence(template: string, found: PatternEvidence, language: 'sv' | 'en'): string {
  const kinds: Readonly<Record<string, ValueKind>> = PATTERN_VALUES[found.pattern]
  return template.replace(PLACEHOLDER, (_, name: string) => {
    if (name === 'metric') return METRIC_INFO[found.metric].label
    if (name === 'coverage') return formatValue('share', found.coverage, found.metric, language)
    if (name === 'hours') return String(found.hours)
    const kind = kinds[name]
    const value = found.values[name]
    if (kind === undefined || value === undefined) {
      throw new MeasureError('UNKNOWN_PLACEHOLDER', `no value {${name}} in the evidence of ${found.pattern}`)
    }
    return formatValue(kind, value, found.metric, language)
  })
}

/**
 * The measures the found patterns suggest: for each piece of evidence with enough data (coverage ≥ minCoverage and
 * hours ≥ minHours; otherwise it is skipped with the reason), every catalogue measure that concerns its metric and
 * is suggested by its pattern, with the evidence rendered in Swedish and English. Order: evidence order, then
 * catalogue order. The catalogue is validated (MeasureError INVALID_CATALOGUE) because it is editable data.
 */
export function suggestMeasures(
  patterns: readonly PatternEvidence[],
  catalogue: readonly Measure[],
  options: SuggestOptions = {},
): Suggestions {
  const parsed = MeasureCatalogue.safeParse(catalogue)
  if (!parsed.success) {
    throw new MeasureError('INVALID_CATALOGUE', `invalid measure catalogue: ${parsed.error.message}`, {
      cause: parsed.error,
    })
  }
  const minCoverage = options.minCoverage ?? MIN_PATTERN_COVERAGE
  const minHours = options.minHours ?? MIN_PATTERN_HOURS
  const suggestions: Suggestion[] = []
  const skipped: SkippedPattern[] = []
  for (const found of patterns) {
    const { pattern, metric, coverage, hours } = found
    if (coverage < minCoverage) {
      skipped.push({ pattern, metric, reason: 'LOW_COVERAGE', coverage, hours })
      continue
    }
    if (hours < minHours) {
      skipped.push({ pattern, metric, reason: 'TOO_FEW_HOURS', coverage, hours })
      continue
    }
    for (const measure of parsed.data) {
      if (!measure.metrics.includes(metric)) continue
      const trigger = measure.suggestedBy.find((t) => t.pattern === pattern)
      if (trigger === undefined) continue
      suggestions.push({
        measureId: measure.id,
        name: measure.name,
        description: measure.description,
        pattern,
        metric,
        evidence: {
          sv: renderEvidence(trigger.evidence.sv, found, 'sv'),
          en: renderEvidence(trigger.evidence.en, found, 'en'),
        },
        caveat: SUGGESTION_CAVEAT,
        sources: measure.sources,
        coverage,
        hours,
        values: found.values,
      })
    }
  }
  return { suggestions, skipped }
}
