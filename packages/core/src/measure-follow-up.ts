import { DAY_MS, HOUR_MS, REGULATORY_DAY_OFFSET_MS } from './aggregation.ts'
import type { TimeWindow } from './annual-exceedances.ts'
import type { LocalizedText } from './measures.ts'
import { METRIC_INFO, type Metric } from './metrics.ts'
import { SEASONS, seasonOfMonth } from './profiles.ts'
import { hourIsFinal, type RuleHour } from './rule-values.ts'

/**
 * Follow-up of a measure taken at a site (issue 7: "record a measure taken at a site with its date, and show before
 * and after, with the caveats (season, weather, coverage) stated"). Pure.
 *
 * Two windows of equal length: the N whole days (fixed UTC+1, the regulatory day of aggregation.ts) immediately
 * before the day the measure was taken, and the N days from that day on. Per pollutant: the mean of the counted
 * hourly means of each window (an hour counts when valid, not suspect, with a mean and final, as in every report),
 * its coverage, and the change after − before (absolute and per cent of before). When an urban background site is
 * given, its change over the same windows is shown beside, and the difference of the two changes
 * (difference-in-differences): a change the background shows as well is regional (weather, long-range transport)
 * and not the site's own. Mean temperature and humidity of both windows are shown as the weather.
 *
 * None of this shows what the measure did: two windows differ in season, weather, holidays and traffic whatever was
 * done, and low-cost data are indicative (air-quality reference §3). The caveats are part of the result and are
 * worded as such; the texts never state a conclusion (measures.ts FORBIDDEN_WORDS, checked in the tests).
 */

/** Window length when none is asked for: four weeks, so both windows hold every weekday four times. */
export const FOLLOW_UP_DEFAULT_DAYS = 28
/** Shortest window: one week, so both windows hold each weekday (the weekly traffic cycle, §6.3) once. */
export const FOLLOW_UP_MIN_DAYS = 7
/**
 * Longest window: half a year. Longer, and the before window reaches back past the readings kept (400 days,
 * MAX_READING_AGE_MS) once the after window is complete, and the two windows mix every season anyway.
 */
export const FOLLOW_UP_MAX_DAYS = 182

/**
 * Least coverage (0–1) of a window below which its mean is marked thin (caveat LOW_COVERAGE): 75 %, the share of
 * hours official monitoring requires for a valid daily mean (≥ 18 of 24 h; air-quality reference §3, 2024/2881
 * Annex V C), applied by analogy as measures.ts MIN_PATTERN_COVERAGE is.
 */
export const FOLLOW_UP_MIN_COVERAGE = 0.75

/**
 * Difference of the two windows' mean temperatures (°C) above which the weather is said to differ. UNVERIFIED
 * engineering choice: temperature stands in for the heating season (wood burning, §6.2) and for the mixing height
 * (§6.3: winter levels ~1.3×, summer ~0.7× by lower mixing height and inversions), and in southern Sweden the
 * monthly mean temperature changes by about 4–5 °C from one month to the next in spring and autumn; 3 °C flags a
 * difference of most of a month's seasonal step, while two windows of the same season stay below it.
 */
export const WEATHER_MAX_TEMP_DIFFERENCE_C = 3

/** The pollutants followed up (the reported metrics of a site report). */
export const FOLLOW_UP_METRICS = ['pm1', 'pm25', 'pm10', 'no2'] as const satisfies readonly Metric[]

export const FOLLOW_UP_CAVEAT_CODES = [
  'SEASON_DIFFERS',
  'WEATHER_DIFFERS',
  'WEATHER_UNKNOWN',
  'LOW_COVERAGE',
  'AFTER_INCOMPLETE',
  'NO_BACKGROUND',
  'SCHOOL_HOLIDAYS',
] as const
export type FollowUpCaveatCode = (typeof FOLLOW_UP_CAVEAT_CODES)[number]

export class MeasureFollowUpError extends Error {
  readonly code: 'INVALID_DATE' | 'INVALID_DAYS'
  constructor(code: MeasureFollowUpError['code'], message: string) {
    super(message)
    this.name = 'MeasureFollowUpError'
    this.code = code
  }
}

/**
 * One hourly mean as the follow-up reads it: a `RuleHour` (pollutants, from `siteRuleHours`, with quality issues as
 * `suspect`) or a storage aggregate (temperature, humidity). `coverage` decides finality early (hourIsFinal); without
 * it an hour is final once it ended FINAL_GRACE_MS ago.
 */
export type FollowUpHour = Pick<RuleHour, 't' | 'mean' | 'valid'> & Partial<Pick<RuleHour, 'suspect' | 'coverage'>>

/** A site's hourly means per metric (pollutants and, for the weather, temp and rh). */
export type FollowUpSeries = Partial<Record<Metric, readonly FollowUpHour[]>>

export interface FollowUpInput {
  /** The day the measure was taken, YYYY-MM-DD (a UTC+1 calendar day); the after window starts on it. */
  readonly takenOn: string
  /** Window length in days, FOLLOW_UP_MIN_DAYS…FOLLOW_UP_MAX_DAYS; default FOLLOW_UP_DEFAULT_DAYS. */
  readonly days?: number
  readonly site: FollowUpSeries
  /** The urban background site's series, when there is one to compare with. */
  readonly background?: { readonly siteId: string; readonly series: FollowUpSeries } | null
  /** Epoch ms; hours not final at `now` are not counted, and an after window not over yet states no change. */
  readonly now: number
  /** Default FOLLOW_UP_METRICS. */
  readonly metrics?: readonly Metric[]
}

export interface FollowUpSide {
  /** Mean of the counted hourly means of the window; null when none counted. */
  readonly mean: number | null
  readonly countedHours: number
  /** Hours of the window (days × 24). */
  readonly expectedHours: number
  /** countedHours / expectedHours, 0–1. */
  readonly coverage: number
  /** coverage ≥ FOLLOW_UP_MIN_COVERAGE. */
  readonly sufficientCoverage: boolean
}

export interface FollowUpChange {
  /** after − before, in the metric's unit. */
  readonly absolute: number
  /** (after − before) / before × 100; null when the before mean is 0. */
  readonly percent: number | null
}

export interface FollowUpComparison {
  readonly before: FollowUpSide
  readonly after: FollowUpSide
  /** Null while the after window is not complete, or when a side has no counted hour. */
  readonly change: FollowUpChange | null
}

export interface FollowUpMetric extends FollowUpComparison {
  readonly metric: Metric
  /** The background site over the same windows; null without a background site. */
  readonly background: FollowUpComparison | null
  /**
   * Site change − background change (absolute, the metric's unit): the part of the site's change the background did
   * not show. Null unless both changes are stated.
   */
  readonly differenceInDifferences: number | null
}

export interface FollowUpWeather {
  /** Mean of the valid hourly means of each window; null without any. */
  readonly before: number | null
  readonly after: number | null
  /** Whose sensor: the site's own when it measured, else the background site's; null when neither did. */
  readonly source: 'site' | 'background' | null
}

export interface FollowUpCaveat {
  readonly code: FollowUpCaveatCode
  readonly text: LocalizedText
}

export interface MeasureFollowUp {
  readonly takenOn: string
  readonly days: number
  readonly before: TimeWindow
  readonly after: TimeWindow
  /** The after window is over and its hours final: only then is a change stated. */
  readonly afterComplete: boolean
  readonly backgroundSiteId: string | null
  readonly metrics: readonly FollowUpMetric[]
  /** °C and % RH. */
  readonly weather: { readonly temp: FollowUpWeather; readonly rh: FollowUpWeather }
  /** Seasons (SEASONS names, local meteorological seasons by UTC+1 month) each window touches, in time order. */
  readonly seasons: { readonly before: readonly string[]; readonly after: readonly string[] }
  readonly caveats: readonly FollowUpCaveat[]
}

/** Start (epoch ms) of the UTC+1 day of a YYYY-MM-DD date. Throws MeasureFollowUpError INVALID_DATE. */
export function followUpDayStart(date: string): number {
  const ms = /^\d{4}-\d{2}-\d{2}$/.test(date) ? Date.parse(`${date}T00:00:00Z`) : Number.NaN
  if (!Number.isFinite(ms) || new Date(ms).toISOString().slice(0, 10) !== date) {
    throw new MeasureFollowUpError('INVALID_DATE', `${JSON.stringify(date)} is not a calendar date YYYY-MM-DD`)
  }
  return ms - REGULATORY_DAY_OFFSET_MS
}

/** The before and after windows of a measure taken on `takenOn`, each `days` UTC+1 days long. */
export function followUpWindows(takenOn: string, days: number): { before: TimeWindow; after: TimeWindow } {
  if (!Number.isInteger(days) || days < FOLLOW_UP_MIN_DAYS || days > FOLLOW_UP_MAX_DAYS) {
    throw new MeasureFollowUpError(
      'INVALID_DAYS',
      `days must be a whole number from ${FOLLOW_UP_MIN_DAYS} to ${FOLLOW_UP_MAX_DAYS}, got ${String(days)}`,
    )
  }
  const start = followUpDayStart(takenOn)
  return { before: { from: start - days * DAY_MS, to: start }, after: { from: start, to: start + days * DAY_MS } }
}

function counted(hour: FollowUpHour, window: TimeWindow, now: number): boolean {
  return (
    hour.t >= window.from &&
    hour.t < window.to &&
    hour.valid &&
    hour.suspect !== true &&
    hour.mean !== null &&
    hourIsFinal({ t: hour.t, coverage: hour.coverage ?? 0 }, now)
  )
}

function side(hours: readonly FollowUpHour[] | undefined, window: TimeWindow, now: number): FollowUpSide {
  let sum = 0
  let n = 0
  const seen = new Set<number>()
  for (const hour of hours ?? []) {
    if (!counted(hour, window, now) || hour.mean === null || seen.has(hour.t)) continue
    seen.add(hour.t)
    sum += hour.mean
    n += 1
  }
  const expectedHours = (window.to - window.from) / HOUR_MS
  const coverage = expectedHours > 0 ? Math.min(1, n / expectedHours) : 0
  return {
    mean: n > 0 ? sum / n : null,
    countedHours: n,
    expectedHours,
    coverage,
    sufficientCoverage: coverage >= FOLLOW_UP_MIN_COVERAGE,
  }
}

function comparison(
  hours: readonly FollowUpHour[] | undefined,
  windows: { before: TimeWindow; after: TimeWindow },
  now: number,
  afterComplete: boolean,
): FollowUpComparison {
  const before = side(hours, windows.before, now)
  const after = side(hours, windows.after, now)
  const change =
    afterComplete && before.mean !== null && after.mean !== null
      ? {
          absolute: after.mean - before.mean,
          percent: before.mean === 0 ? null : ((after.mean - before.mean) / before.mean) * 100,
        }
      : null
  return { before, after, change }
}

function weatherOf(
  metric: 'temp' | 'rh',
  site: FollowUpSeries,
  background: FollowUpSeries | undefined,
  windows: { before: TimeWindow; after: TimeWindow },
  now: number,
): FollowUpWeather {
  for (const [source, series] of [
    ['site', site],
    ['background', background],
  ] as const) {
    const hours = series?.[metric]
    const before = side(hours, windows.before, now).mean
    const after = side(hours, windows.after, now).mean
    if (before !== null || after !== null) return { before, after, source }
  }
  return { before: null, after: null, source: null }
}

/** Seasons of the UTC+1 calendar months a window touches, in time order. */
function seasonsOf(window: TimeWindow): string[] {
  const seasons: string[] = []
  for (let t = window.from; t < window.to; t += DAY_MS) {
    const month = new Date(t + REGULATORY_DAY_OFFSET_MS).getUTCMonth()
    const season = SEASONS[seasonOfMonth(month)] ?? 'winter'
    if (seasons.at(-1) !== season) seasons.push(season)
  }
  return seasons
}

const SEASON_SV: Readonly<Record<string, string>> = {
  winter: 'vinter',
  spring: 'vår',
  summer: 'sommar',
  autumn: 'höst',
}

const fmt = (value: number, language: 'sv' | 'en'): string => {
  const text = value.toFixed(1)
  return language === 'sv' ? text.replace('.', ',').replace('-', '−') : text
}

/** The school-holiday caveat, stated with every follow-up: the platform knows no school calendar. */
export const SCHOOL_HOLIDAYS_CAVEAT: LocalizedText = {
  sv: 'Skollov och studiedagar är inte kända här: ett lov i det ena fönstret och inte i det andra kan ge en skillnad i trafik och i verksamhet som inte har med åtgärden att göra.',
  en: 'School holidays and closed days are not known here: a holiday in one window and not in the other can give a difference in traffic and activity that has nothing to do with the measure.',
}

/**
 * Before and after of a measure taken on `input.takenOn` (see the top of this file). Throws MeasureFollowUpError
 * INVALID_DATE, INVALID_DAYS.
 */
export function measureFollowUp(input: FollowUpInput): MeasureFollowUp {
  const days = input.days ?? FOLLOW_UP_DEFAULT_DAYS
  const windows = followUpWindows(input.takenOn, days)
  const { now } = input
  // The last hour of the after window is final (hourIsFinal by time) once it ended FINAL_GRACE_MS ago.
  const afterComplete = hourIsFinal({ t: windows.after.to - HOUR_MS, coverage: 0 }, now)
  const background = input.background ?? null
  const metrics = (input.metrics ?? FOLLOW_UP_METRICS).map((metric): FollowUpMetric => {
    const own = comparison(input.site[metric], windows, now, afterComplete)
    const bg = background === null ? null : comparison(background.series[metric], windows, now, afterComplete)
    return {
      metric,
      ...own,
      background: bg,
      differenceInDifferences:
        own.change !== null && bg?.change != null ? own.change.absolute - bg.change.absolute : null,
    }
  })
  const weather = {
    temp: weatherOf('temp', input.site, background?.series, windows, now),
    rh: weatherOf('rh', input.site, background?.series, windows, now),
  }
  const seasons = { before: seasonsOf(windows.before), after: seasonsOf(windows.after) }

  const caveats: FollowUpCaveat[] = []
  const allSeasons = new Set([...seasons.before, ...seasons.after])
  if (allSeasons.size > 1) {
    const list = (language: 'sv' | 'en', names: readonly string[]) =>
      names.map((s) => (language === 'sv' ? (SEASON_SV[s] ?? s) : s)).join(', ')
    caveats.push({
      code: 'SEASON_DIFFERS',
      text: {
        sv: `Fönstren ligger i olika årstider (före: ${list('sv', seasons.before)}; efter: ${list('sv', seasons.after)}). Halterna skiftar med årstiden (vägdamm på våren, vedeldning på vintern), så en skillnad kan bero på årstiden.`,
        en: `The windows fall in different seasons (before: ${list('en', seasons.before)}; after: ${list('en', seasons.after)}). Levels vary with the season (road dust in spring, wood burning in winter), so a difference may come from the season.`,
      },
    })
  }
  const { temp } = weather
  if (temp.before === null || temp.after === null) {
    caveats.push({
      code: 'WEATHER_UNKNOWN',
      text: {
        sv: 'Temperaturen är inte mätt i båda fönstren, så vädret kan inte jämföras. Väder (vind, temperatur, nederbörd) påverkar halterna.',
        en: 'Temperature was not measured in both windows, so the weather cannot be compared. Weather (wind, temperature, rain) affects the levels.',
      },
    })
  } else if (Math.abs(temp.after - temp.before) > WEATHER_MAX_TEMP_DIFFERENCE_C) {
    caveats.push({
      code: 'WEATHER_DIFFERS',
      text: {
        sv: `Vädret skiljer sig: medeltemperaturen var ${fmt(temp.before, 'sv')} °C före och ${fmt(temp.after, 'sv')} °C efter (mer än ${WEATHER_MAX_TEMP_DIFFERENCE_C} °C skillnad). Uppvärmning och omblandning av luften skiftar med temperaturen, så en skillnad kan bero på vädret.`,
        en: `The weather differs: the mean temperature was ${fmt(temp.before, 'en')} °C before and ${fmt(temp.after, 'en')} °C after (more than ${WEATHER_MAX_TEMP_DIFFERENCE_C} °C apart). Heating and the mixing of the air vary with temperature, so a difference may come from the weather.`,
      },
    })
  }
  const thin: { metric: Metric; sides: ('before' | 'after')[] }[] = []
  for (const m of metrics) {
    const sides: ('before' | 'after')[] = []
    if (!m.before.sufficientCoverage) sides.push('before')
    // An after window still running is covered by AFTER_INCOMPLETE.
    if (afterComplete && !m.after.sufficientCoverage) sides.push('after')
    if (sides.length > 0) thin.push({ metric: m.metric, sides })
  }
  if (thin.length > 0) {
    const list = (language: 'sv' | 'en') =>
      thin
        .map(({ metric, sides }) => {
          const names = sides.map((s) => (language === 'sv' ? (s === 'before' ? 'före' : 'efter') : s))
          return `${METRIC_INFO[metric].label} (${names.join(', ')})`
        })
        .join('; ')
    const percent = FOLLOW_UP_MIN_COVERAGE * 100
    caveats.push({
      code: 'LOW_COVERAGE',
      text: {
        sv: `Täckningen är under ${percent} % för ${list('sv')}: medelvärdet där vilar på en mindre del av timmarna och är osäkrare.`,
        en: `Coverage is below ${percent} % for ${list('en')}: the mean there rests on a smaller part of the hours and is less certain.`,
      },
    })
  }
  if (!afterComplete) {
    caveats.push({
      code: 'AFTER_INCOMPLETE',
      text: {
        sv: `Fönstret efter åtgärden är inte slut än (det slutar ${new Date(windows.after.to + REGULATORY_DAY_OFFSET_MS).toISOString().slice(0, 10)}); därför anges ingen förändring.`,
        en: `The window after the measure is not over yet (it ends on ${new Date(windows.after.to + REGULATORY_DAY_OFFSET_MS).toISOString().slice(0, 10)}); no change is stated until then.`,
      },
    })
  }
  const backgroundHasData = metrics.some((m) => (m.background?.before.countedHours ?? 0) > 0)
  if (background === null || !backgroundHasData) {
    caveats.push({
      code: 'NO_BACKGROUND',
      text: {
        sv: 'Det finns ingen urban bakgrundsstation med data att jämföra med, så en förändring som gäller hela regionen (väder, intransport) kan inte skiljas från en lokal.',
        en: 'There is no urban background site with data to compare with, so a change across the whole region (weather, long-range transport) cannot be told apart from a local one.',
      },
    })
  }
  caveats.push({ code: 'SCHOOL_HOLIDAYS', text: SCHOOL_HOLIDAYS_CAVEAT })

  return {
    takenOn: input.takenOn,
    days,
    before: windows.before,
    after: windows.after,
    afterComplete,
    backgroundSiteId: background?.siteId ?? null,
    metrics,
    weather,
    seasons,
    caveats,
  }
}
