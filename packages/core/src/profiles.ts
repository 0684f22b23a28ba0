import { DAY_MS, HOUR_MS, hourStart } from './aggregation.ts'
import type { RuleHour } from './rule-values.ts'

/**
 * Profiles by hour of day, day of week, season and month, and paired comparisons of two series (issue 7,
 * "patterns that point to a cause"). Pure.
 *
 * Input: one site's hourly aggregates of one metric. Any `RuleHour` (rule-values.ts) or `SiteHourAggregate`
 * fits: only `t` (hour start, epoch ms UTC), `mean`, `valid` and, when present, `suspect` are read.
 * An hour counts when it is valid (≥ HOURLY_MIN_COVERAGE = 75 % of its expected samples, aggregation.ts, already
 * decided in its `valid` flag), has a mean, and is not suspect (quality.ts issues; the same hours the rules count).
 *
 * Each bucket's mean is the mean of the counted hourly means in it (each hour weighs the same, like a daily mean
 * in aggregation.ts). Next to it: how many hours went in, how many hours of the period fall in the bucket, and
 * their ratio (coverage), so every number in a report comes with its coverage.
 *
 * Time zone: buckets are LOCAL time of an IANA zone (default Europe/Stockholm), daylight saving included, because
 * what causes the patterns follows local clocks: the 08:00 school drop-off is 07:00 UTC in winter and 06:00 UTC
 * in summer. Profiles in fixed UTC+1 (the regulatory day of aggregation.ts) would smear the morning peak over two
 * buckets for half the year. An hour is placed by the local time of its START; the days on which the clock
 * changes are handled as they are: in spring local hour 02 does not exist (the day has 23 hours, bucket 2 gets no
 * period hour that day), in autumn it occurs twice (25 hours, bucket 2 gets two). Period hours are counted the
 * same way, so coverage stays ≤ 1. In a zone whose offset is not a whole number of hours (Asia/Kolkata, +05:30)
 * a UTC hour straddles two local hours and goes to the one its start falls in.
 */

/** Zone of local-time profiles when none is given: the first user is Lund municipality (Sweden). */
export const DEFAULT_PROFILE_TIME_ZONE = 'Europe/Stockholm'

/** What a profile reads of an hour: satisfied by `RuleHour` and by `SiteHourAggregate`. */
export type ProfileHour = Pick<RuleHour, 't' | 'mean' | 'valid'> & Partial<Pick<RuleHour, 'suspect'>>

export interface ProfileOptions {
  /** Start of the period, epoch ms (inclusive): hours starting at or after it count. */
  readonly from: number
  /** End of the period, epoch ms (exclusive): hours starting before it count. */
  readonly to: number
  /** IANA time zone of the buckets; default `DEFAULT_PROFILE_TIME_ZONE`. */
  readonly timeZone?: string
}

export interface ProfileBucket {
  /**
   * Local hour of day 0–23, day of week 0–6 (Monday…Sunday), season 0–3 (index into SEASONS: winter, spring,
   * summer, autumn) or month 0–11 (January…December).
   */
  readonly key: number
  /** Mean of the counted hourly means in the bucket; null without any. */
  readonly mean: number | null
  /** Counted hours (valid, not suspect, with a mean) that went into the mean. */
  readonly hours: number
  /** Hours of the period [from, to) that fall in this bucket. */
  readonly periodHours: number
  /** hours / periodHours (0–1); null when the period has no hour in this bucket. */
  readonly coverage: number | null
}

export interface Profile {
  readonly timeZone: string
  readonly from: number
  readonly to: number
  /** 24 buckets (hours 0–23), 7 (Monday…Sunday), 4 (SEASONS) or 12 (January…December), in key order. */
  readonly buckets: readonly ProfileBucket[]
}

export class ProfileError extends Error {
  readonly code: 'INVALID_TIME_ZONE' | 'DUPLICATE_HOUR' | 'INVALID_PERIOD'
  constructor(code: ProfileError['code'], message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'ProfileError'
    this.code = code
  }
}

/** Local hour of day 0–23, day of week 0–6 (Monday = 0) and month 0–11 (January = 0) of an instant in a zone. */
export interface LocalHour {
  readonly hourOfDay: number
  readonly dayOfWeek: number
  readonly month: number
}

/**
 * Local time of instants in one IANA zone. One Intl.DateTimeFormat per clock (building one costs tens of µs;
 * formatting ~1–3 µs), and the zone's offset is looked up once per UTC day unless it differs between the day's
 * first and last hour (a clock change), then per hour: a year of hours needs ~730 formats instead of 8 760.
 * That shortcut assumes a zone changes its offset at most once within 23 hours, true of every zone in the tz
 * database. Throws ProfileError INVALID_TIME_ZONE for a zone Intl does not know.
 */
export function createLocalHourClock(timeZone: string): (t: number) => LocalHour {
  let format: Intl.DateTimeFormat
  try {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    })
  } catch (cause) {
    throw new ProfileError('INVALID_TIME_ZONE', `unknown time zone ${JSON.stringify(timeZone)}`, { cause })
  }
  const offsetAt = (t: number): number => {
    let year = 0
    let month = 0
    let day = 0
    let hour = 0
    let minute = 0
    let second = 0
    for (const part of format.formatToParts(t)) {
      const value = Number(part.value)
      if (part.type === 'year') year = value
      else if (part.type === 'month') month = value
      else if (part.type === 'day') day = value
      else if (part.type === 'hour') hour = value
      else if (part.type === 'minute') minute = value
      else if (part.type === 'second') second = value
    }
    const local = Date.UTC(year, month - 1, day, hour, minute, second)
    return local - Math.floor(t / 1000) * 1000
  }
  // Per UTC day: the offset of all its hours, or null when it changes within the day.
  const dayOffsets = new Map<number, number | null>()
  const offsetOf = (t: number): number => {
    const day = Math.floor(t / DAY_MS)
    let offset = dayOffsets.get(day)
    if (offset === undefined) {
      const first = offsetAt(day * DAY_MS)
      offset = first === offsetAt(day * DAY_MS + 23 * HOUR_MS) ? first : null
      dayOffsets.set(day, offset)
    }
    return offset ?? offsetAt(t)
  }
  return (t) => {
    const local = t + offsetOf(t)
    const localDay = Math.floor(local / DAY_MS)
    return {
      hourOfDay: Math.floor((local - localDay * DAY_MS) / HOUR_MS),
      // 1970-01-01 was a Thursday: Monday-based index 3.
      dayOfWeek: (((localDay + 3) % 7) + 7) % 7,
      // The local wall-clock date read as if it were UTC: its UTC month is the local month.
      month: new Date(localDay * DAY_MS).getUTCMonth(),
    }
  }
}

/** Profile by local hour of day: 24 buckets, 0–23. */
export function hourOfDayProfile(hours: readonly ProfileHour[], options: ProfileOptions): Profile {
  return profile(hours, options, 24, (local) => local.hourOfDay)
}

/** Profile by local day of week: 7 buckets, 0 = Monday … 6 = Sunday. */
export function dayOfWeekProfile(hours: readonly ProfileHour[], options: ProfileOptions): Profile {
  return profile(hours, options, 7, (local) => local.dayOfWeek)
}

/**
 * Meteorological seasons, the order of `seasonProfile`'s buckets: whole calendar months (winter December–February,
 * spring March–May, summer June–August, autumn September–November), the convention of climatology (WMO) and of
 * most air-quality reporting. Whole months, not the astronomical seasons (which start on the 20th–23rd), so a
 * season is made of the same months as the monthly report beside it, and because the causes in Sweden follow
 * months: PM10 road dust from studded tyres on dry roads is highest in spring (peak March–April) and again in
 * autumn, low in summer; small-scale wood burning is a winter (evening) source (air-quality reference §6.2; the
 * March–April peak month is the §6.3 modelling assumption). Each season thus separates one suspected cause, and
 * each suggests its own measure (street cleaning and dust binding in spring, information about wood burning in
 * winter). monthProfile shows the finer shape inside a season.
 */
export const SEASONS = ['winter', 'spring', 'summer', 'autumn'] as const
export type Season = (typeof SEASONS)[number]

/** Index into SEASONS of a month 0–11: December, January, February → 0 (winter); March–May → 1; and so on. */
export function seasonOfMonth(month: number): number {
  return Math.floor(((month + 1) % 12) / 3)
}

/**
 * Profile by local meteorological season: 4 buckets in SEASONS order (winter, spring, summer, autumn). A season
 * bucket gathers its months across the whole period: over a calendar year, "winter" is January, February AND the
 * following December, not one continuous winter; to report one winter, give the period 1 December – 1 March.
 */
export function seasonProfile(hours: readonly ProfileHour[], options: ProfileOptions): Profile {
  return profile(hours, options, SEASONS.length, (local) => seasonOfMonth(local.month))
}

/** Profile by local calendar month: 12 buckets, 0 = January … 11 = December (the same month of several years together). */
export function monthProfile(hours: readonly ProfileHour[], options: ProfileOptions): Profile {
  return profile(hours, options, 12, (local) => local.month)
}

function checkPeriod(from: number, to: number): void {
  if (!Number.isFinite(from) || !Number.isFinite(to) || from > to) {
    throw new ProfileError('INVALID_PERIOD', `invalid period ${from}–${to}`)
  }
}

/**
 * The counted hourly means of a series in [from, to), by hour start. An hour belongs to the period by the UTC hour
 * its `t` falls in; it counts when valid, not suspect and with a mean. The same hour given twice is an error
 * (whether or not it would count): the caller has mixed two series.
 */
function countedHours(hours: readonly ProfileHour[], from: number, to: number, label = ''): Map<number, number> {
  const counted = new Map<number, number>()
  const seen = new Set<number>()
  for (const hour of hours) {
    const start = hourStart(hour.t)
    if (start < from || start >= to) continue
    if (seen.has(start)) {
      throw new ProfileError('DUPLICATE_HOUR', `hour ${new Date(start).toISOString()} given twice${label}`)
    }
    seen.add(start)
    if (!hour.valid || hour.suspect === true || hour.mean === null) continue
    counted.set(start, hour.mean)
  }
  return counted
}

function profile(
  hours: readonly ProfileHour[],
  options: ProfileOptions,
  size: number,
  keyOf: (local: LocalHour) => number,
): Profile {
  const { from, to } = options
  const timeZone = options.timeZone ?? DEFAULT_PROFILE_TIME_ZONE
  checkPeriod(from, to)
  const localHour = createLocalHourClock(timeZone)
  const periodHours = new Array<number>(size).fill(0)
  const counted = new Array<number>(size).fill(0)
  const sums = new Array<number>(size).fill(0)
  for (let t = Math.ceil(from / HOUR_MS) * HOUR_MS; t < to; t += HOUR_MS) {
    const key = keyOf(localHour(t))
    periodHours[key] = (periodHours[key] ?? 0) + 1
  }
  for (const [start, mean] of countedHours(hours, from, to)) {
    const key = keyOf(localHour(start))
    counted[key] = (counted[key] ?? 0) + 1
    sums[key] = (sums[key] ?? 0) + mean
  }
  const buckets: ProfileBucket[] = []
  for (let key = 0; key < size; key += 1) {
    const n = counted[key] ?? 0
    const inPeriod = periodHours[key] ?? 0
    buckets.push({
      key,
      mean: n > 0 ? (sums[key] ?? 0) / n : null,
      hours: n,
      periodHours: inPeriod,
      coverage: inPeriod > 0 ? n / inPeriod : null,
    })
  }
  return { timeZone, from, to, buckets }
}

export interface PairedOptions {
  /** Start of the period, epoch ms (inclusive). */
  readonly from: number
  /** End of the period, epoch ms (exclusive). */
  readonly to: number
}

export interface PairedComparison {
  readonly from: number
  readonly to: number
  /** Whole hours starting in [from, to). */
  readonly periodHours: number
  /** Counted hours (valid, not suspect, with a mean) of a alone and of b alone. */
  readonly hoursA: number
  readonly hoursB: number
  /** Hours counted in both a and b: the only hours every number below is computed over. */
  readonly pairedHours: number
  /** pairedHours / periodHours (0–1); null when the period has no hour. */
  readonly coverage: number | null
  /** Mean of a over the paired hours; null without any. */
  readonly meanA: number | null
  /** Mean of b over the paired hours; null without any. */
  readonly meanB: number | null
  /** meanA − meanB (= the mean of the hourly differences); null without paired hours. */
  readonly meanDifference: number | null
  /** meanA / meanB; null without paired hours or when meanB is 0. */
  readonly ratioOfMeans: number | null
  /** Share 0–1 of the paired hours in which a > b (ties do not count); null without paired hours. */
  readonly shareAGreater: number | null
}

/**
 * Two series of hourly means of one metric compared hour by hour: indoor against outdoor at one school, or a
 * site against its nearest urban background site. Only hours counted in BOTH series (valid, not suspect, with a
 * mean; the same rule as the profiles) are compared; an hour that only one of them has is left out of every mean.
 *
 * Why pairing: both series then cover exactly the same hours, so weather (wind, mixing height, rain),
 * long-range transport episodes and the season hit both sides alike and mostly cancel in the difference and the
 * ratio; what remains is what differs between the two places. Comparing the two series' own means instead would
 * mix that with the hours each happens to have (an indoor sensor switched off over the summer holiday would make
 * the indoor mean a winter mean). That is why a paired comparison is evidence a committee can use:
 * - site − urban background is the site's local increment (the "Lenschow" approach: Lenschow et al. 2001,
 *   Atmos. Environ. 35, S23–S33), the part a local measure (traffic at drop-off, street cleaning) can change;
 * - the indoor/outdoor ratio of PM2.5 points to where indoor particles come from: well below 1 with indoor
 *   following outdoor, they come in from outside (air intake, ventilation, leaks: filter or move the intake);
 *   indoor above outdoor in many hours (shareAGreater with a = indoor) points to sources in the building.
 * These are pointers, not conclusions: pairing does not remove differences of calibration between two sensors
 * (compare corrected series), nor the lag with which indoor air follows outdoor air.
 *
 * The ratio is of the means, not a mean of hourly ratios, which hours with a small b would dominate. Pairing is
 * by the UTC hour (`t`), so it needs no time zone and the twice-occurring local hour of an autumn clock change is
 * two separate pairs. Throws ProfileError DUPLICATE_HOUR when a series has an hour twice, INVALID_PERIOD for a
 * reversed or non-finite period.
 */
export function pairedComparison(
  a: readonly ProfileHour[],
  b: readonly ProfileHour[],
  options: PairedOptions,
): PairedComparison {
  const { from, to } = options
  checkPeriod(from, to)
  const first = Math.ceil(from / HOUR_MS) * HOUR_MS
  const periodHours = Math.max(0, Math.ceil((to - first) / HOUR_MS))
  const countedA = countedHours(a, from, to, ' in series a')
  const countedB = countedHours(b, from, to, ' in series b')
  let pairedHours = 0
  let sumA = 0
  let sumB = 0
  let aGreater = 0
  for (const [start, valueA] of countedA) {
    const valueB = countedB.get(start)
    if (valueB === undefined) continue
    pairedHours += 1
    sumA += valueA
    sumB += valueB
    if (valueA > valueB) aGreater += 1
  }
  const meanA = pairedHours > 0 ? sumA / pairedHours : null
  const meanB = pairedHours > 0 ? sumB / pairedHours : null
  return {
    from,
    to,
    periodHours,
    hoursA: countedA.size,
    hoursB: countedB.size,
    pairedHours,
    coverage: periodHours > 0 ? pairedHours / periodHours : null,
    meanA,
    meanB,
    meanDifference: meanA !== null && meanB !== null ? meanA - meanB : null,
    ratioOfMeans: meanA !== null && meanB !== null && meanB !== 0 ? meanA / meanB : null,
    shareAGreater: pairedHours > 0 ? aGreater / pairedHours : null,
  }
}
