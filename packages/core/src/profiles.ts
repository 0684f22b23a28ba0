import { DAY_MS, HOUR_MS, hourStart } from './aggregation.ts'
import type { RuleHour } from './rule-values.ts'

/**
 * Profiles by hour of day and by day of week (issue 7, "patterns that point to a cause"). Pure.
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
  /** Hour of day 0–23 (local), or day of week 0–6 = Monday…Sunday (local). */
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
  /** 24 buckets (hours 0–23) or 7 (Monday…Sunday), in key order. */
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

/** Local hour of day 0–23 and day of week 0–6 (Monday = 0) of an instant in a zone. */
export interface LocalHour {
  readonly hourOfDay: number
  readonly dayOfWeek: number
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

function profile(
  hours: readonly ProfileHour[],
  options: ProfileOptions,
  size: number,
  keyOf: (local: LocalHour) => number,
): Profile {
  const { from, to } = options
  const timeZone = options.timeZone ?? DEFAULT_PROFILE_TIME_ZONE
  if (!Number.isFinite(from) || !Number.isFinite(to) || from > to) {
    throw new ProfileError('INVALID_PERIOD', `invalid period ${from}–${to}`)
  }
  const localHour = createLocalHourClock(timeZone)
  const periodHours = new Array<number>(size).fill(0)
  const counted = new Array<number>(size).fill(0)
  const sums = new Array<number>(size).fill(0)
  for (let t = Math.ceil(from / HOUR_MS) * HOUR_MS; t < to; t += HOUR_MS) {
    const key = keyOf(localHour(t))
    periodHours[key] = (periodHours[key] ?? 0) + 1
  }
  const seen = new Set<number>()
  for (const hour of hours) {
    // An hour belongs to the period, and to a bucket, by the UTC hour its `t` falls in.
    const start = hourStart(hour.t)
    if (start < from || start >= to) continue
    if (seen.has(start)) {
      throw new ProfileError('DUPLICATE_HOUR', `hour ${new Date(start).toISOString()} given twice`)
    }
    seen.add(start)
    if (!hour.valid || hour.suspect === true || hour.mean === null) continue
    const key = keyOf(localHour(start))
    counted[key] = (counted[key] ?? 0) + 1
    sums[key] = (sums[key] ?? 0) + hour.mean
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
