import { describe, expect, it } from 'vitest'
import { HOUR_MS } from './aggregation.ts'
import {
  createLocalHourClock,
  DEFAULT_PROFILE_TIME_ZONE,
  dayOfWeekProfile,
  hourOfDayProfile,
  monthProfile,
  type ProfileBucket,
  ProfileError,
  type ProfileHour,
  pairedComparison,
  SEASONS,
  seasonProfile,
} from './profiles.ts'
import { createRng } from './random.ts'
import type { SiteHourAggregate } from './rule-values.ts'

// Local time computed WITHOUT Intl: the clock-change rules written out by hand.
// EU (Directive 2000/84/EC art. 2–3): summer time from 01:00 UTC on the last Sunday of March to 01:00 UTC on the
// last Sunday of October; Stockholm is UTC+1, UTC+2 in summer.
// US (Energy Policy Act 2005 §110): from 02:00 local on the second Sunday of March to 02:00 local on the first
// Sunday of November; New York is UTC−5, UTC−4 in summer (07:00 UTC and 06:00 UTC).
function lastSundayUtc(year: number, month: number): number {
  const last = new Date(Date.UTC(year, month + 1, 0))
  return Date.UTC(year, month, last.getUTCDate() - last.getUTCDay())
}
function nthSundayUtc(year: number, month: number, n: number): number {
  const first = new Date(Date.UTC(year, month, 1))
  return Date.UTC(year, month, 1 + ((7 - first.getUTCDay()) % 7) + 7 * (n - 1))
}
function stockholmOffsetH(t: number): number {
  const year = new Date(t).getUTCFullYear()
  const start = lastSundayUtc(year, 2) + HOUR_MS
  const end = lastSundayUtc(year, 9) + HOUR_MS
  return t >= start && t < end ? 2 : 1
}
function newYorkOffsetH(t: number): number {
  const year = new Date(t).getUTCFullYear()
  const start = nthSundayUtc(year, 2, 2) + 7 * HOUR_MS
  const end = nthSundayUtc(year, 10, 1) + 6 * HOUR_MS
  return t >= start && t < end ? -4 : -5
}
function local(t: number, offsetH: (t: number) => number): { hour: number; weekday: number; month: number } {
  const d = new Date(t + offsetH(t) * HOUR_MS)
  // getUTCDay: 0 = Sunday; the profile's 0 = Monday.
  return { hour: d.getUTCHours(), weekday: (d.getUTCDay() + 6) % 7, month: d.getUTCMonth() }
}
/** Meteorological season by a lookup table (not the formula under test): 0 winter … 3 autumn. */
const SEASON_OF_MONTH = [0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 0] as const
function seasonAt(t: number): number {
  return SEASON_OF_MONTH[local(t, stockholmOffsetH).month] ?? -1
}

function hoursOf(from: number, to: number, value: (t: number, i: number) => number | null): ProfileHour[] {
  const out: ProfileHour[] = []
  for (let t = from, i = 0; t < to; t += HOUR_MS, i += 1) {
    const mean = value(t, i)
    out.push({ t, mean, valid: mean !== null })
  }
  return out
}

/** The profile computed the plain way: group the counted hours by the hand-computed local key. */
function expected(
  hours: readonly ProfileHour[],
  from: number,
  to: number,
  size: number,
  keyOf: (t: number) => number,
): ProfileBucket[] {
  const buckets = Array.from({ length: size }, (_, key) => ({ key, values: [] as number[], periodHours: 0 }))
  for (let t = from; t < to; t += HOUR_MS) {
    const b = buckets[keyOf(t)]
    if (b) b.periodHours += 1
  }
  for (const h of hours) {
    if (!h.valid || h.suspect === true || h.mean === null || h.t < from || h.t >= to) continue
    buckets[keyOf(h.t)]?.values.push(h.mean)
  }
  return buckets.map(({ key, values, periodHours }) => ({
    key,
    mean: values.length > 0 ? values.reduce((a, b) => a + b, 0) / values.length : null,
    hours: values.length,
    periodHours,
    coverage: periodHours > 0 ? values.length / periodHours : null,
  }))
}

function expectClose(actual: readonly ProfileBucket[], wanted: readonly ProfileBucket[]): void {
  expect(actual.length).toBe(wanted.length)
  for (const [i, w] of wanted.entries()) {
    const a = actual[i]
    expect(a?.key).toBe(w.key)
    expect(a?.hours).toBe(w.hours)
    expect(a?.periodHours).toBe(w.periodHours)
    expect(a?.coverage).toBe(w.coverage)
    if (w.mean === null) expect(a?.mean).toBeNull()
    else expect(a?.mean).toBeCloseTo(w.mean, 9)
  }
}

// January 2026 in Stockholm (UTC+1 all month): 2025-12-31T23:00Z … 2026-01-31T23:00Z. 1 January 2026 is a Thursday.
const JAN_FROM = Date.UTC(2025, 11, 31, 23)
const JAN_TO = Date.UTC(2026, 0, 31, 23)

describe('hourOfDayProfile', () => {
  it('a month whose value is 10 + the local hour gives each bucket exactly that mean, all hours covered', () => {
    const hours = hoursOf(JAN_FROM, JAN_TO, (t) => 10 + local(t, stockholmOffsetH).hour)
    const profile = hourOfDayProfile(hours, { from: JAN_FROM, to: JAN_TO })
    expect(profile.timeZone).toBe(DEFAULT_PROFILE_TIME_ZONE)
    expect(profile.buckets.map((b) => b.mean)).toEqual(Array.from({ length: 24 }, (_, h) => 10 + h))
    for (const b of profile.buckets) {
      expect(b).toMatchObject({ hours: 31, periodHours: 31, coverage: 1 })
    }
  })

  it('follows the local clock in summer: 08:00 in Stockholm is 06:00 UTC in July', () => {
    const from = Date.UTC(2026, 5, 30, 22)
    const to = Date.UTC(2026, 6, 31, 22)
    // A drop-off peak: 100 at 06:00 UTC, 1 otherwise.
    const hours = hoursOf(from, to, (t) => (new Date(t).getUTCHours() === 6 ? 100 : 1))
    const profile = hourOfDayProfile(hours, { from, to })
    expect(profile.buckets[8]?.mean).toBe(100)
    expect(profile.buckets.filter((b) => b.mean === 100).map((b) => b.key)).toEqual([8])
  })

  it('matches an independent computation on random data over a whole year (2026, both clock changes)', () => {
    const from = Date.UTC(2025, 11, 31, 23)
    const to = Date.UTC(2026, 11, 31, 23)
    const rng = createRng(7)
    const hours = hoursOf(from, to, () => (rng() < 0.1 ? null : rng() * 50)).map((h) => ({
      ...h,
      suspect: rng() < 0.02,
    }))
    const profile = hourOfDayProfile(hours, { from, to })
    expectClose(
      profile.buckets,
      expected(hours, from, to, 24, (t) => local(t, stockholmOffsetH).hour),
    )
    // Over a year, 02:00 is missing once and doubled once: still 365 of each hour.
    expect(profile.buckets.map((b) => b.periodHours)).toEqual(new Array(24).fill(365))
  })

  it('counts only valid, non-suspect hours with a mean, and reports the coverage that leaves', () => {
    const hours: ProfileHour[] = hoursOf(JAN_FROM, JAN_TO, (t) => 10 + local(t, stockholmOffsetH).hour).map((h, i) => {
      const hour = local(h.t, stockholmOffsetH).hour
      const day = Math.floor(i / 24)
      if (hour === 8) return { ...h, mean: 1000, valid: false } // every 08:00 invalid (< 75 % of samples)
      if (hour === 9 && day % 2 === 0) return { ...h, mean: 1000, suspect: true } // 16 of 31 suspect
      if (hour === 10 && day < 10) return { ...h, mean: null, valid: true } // no mean
      return h
    })
    const profile = hourOfDayProfile(hours, { from: JAN_FROM, to: JAN_TO })
    expect(profile.buckets[8]).toEqual({ key: 8, mean: null, hours: 0, periodHours: 31, coverage: 0 })
    expect(profile.buckets[9]).toEqual({ key: 9, mean: 19, hours: 15, periodHours: 31, coverage: 15 / 31 })
    expect(profile.buckets[10]).toEqual({ key: 10, mean: 20, hours: 21, periodHours: 31, coverage: 21 / 31 })
    expect(profile.buckets[11]).toEqual({ key: 11, mean: 21, hours: 31, periodHours: 31, coverage: 1 })
  })

  it('spring clock change (Stockholm, 29 March 2026): a 23-hour day without 02:00', () => {
    const from = Date.UTC(2026, 2, 28, 23)
    const to = Date.UTC(2026, 2, 29, 22)
    expect((to - from) / HOUR_MS).toBe(23)
    const hours = hoursOf(from, to, (t) => 10 + local(t, stockholmOffsetH).hour)
    const profile = hourOfDayProfile(hours, { from, to })
    expect(profile.buckets[2]).toEqual({ key: 2, mean: null, hours: 0, periodHours: 0, coverage: null })
    for (const b of profile.buckets.filter((b) => b.key !== 2)) {
      expect(b).toEqual({ key: b.key, mean: 10 + b.key, hours: 1, periodHours: 1, coverage: 1 })
    }
    const week = dayOfWeekProfile(hours, { from, to })
    expect(week.buckets.map((b) => b.periodHours)).toEqual([0, 0, 0, 0, 0, 0, 23])
  })

  it('autumn clock change (Stockholm, 25 October 2026): a 25-hour day with 02:00 twice', () => {
    const from = Date.UTC(2026, 9, 24, 22)
    const to = Date.UTC(2026, 9, 25, 23)
    expect((to - from) / HOUR_MS).toBe(25)
    // 00:00 UTC is 02:00 summer time, 01:00 UTC is 02:00 normal time.
    const hours = hoursOf(from, to, (t) =>
      t === Date.UTC(2026, 9, 25, 0)
        ? 100
        : t === Date.UTC(2026, 9, 25, 1)
          ? 200
          : 10 + local(t, stockholmOffsetH).hour,
    )
    const profile = hourOfDayProfile(hours, { from, to })
    expect(profile.buckets[2]).toEqual({ key: 2, mean: 150, hours: 2, periodHours: 2, coverage: 1 })
    for (const b of profile.buckets.filter((b) => b.key !== 2)) {
      expect(b).toEqual({ key: b.key, mean: 10 + b.key, hours: 1, periodHours: 1, coverage: 1 })
    }
    const week = dayOfWeekProfile(hours, { from, to })
    expect(week.buckets.map((b) => b.periodHours)).toEqual([0, 0, 0, 0, 0, 0, 25])
  })

  it('empty input: every bucket null with no hours, the period still counted', () => {
    const profile = hourOfDayProfile([], { from: JAN_FROM, to: JAN_TO })
    expect(profile.buckets).toHaveLength(24)
    for (const b of profile.buckets)
      expect(b).toEqual({ key: b.key, mean: null, hours: 0, periodHours: 31, coverage: 0 })
    const empty = dayOfWeekProfile([], { from: JAN_FROM, to: JAN_FROM })
    for (const b of empty.buckets)
      expect(b).toEqual({ key: b.key, mean: null, hours: 0, periodHours: 0, coverage: null })
  })

  it('in New York, across the US clock change (8 March 2026), matches the hand-written US rule', () => {
    const from = Date.UTC(2026, 2, 1, 5)
    const to = Date.UTC(2026, 3, 1, 4)
    const rng = createRng(11)
    const hours = hoursOf(from, to, () => (rng() < 0.2 ? null : rng() * 80))
    const options = { from, to, timeZone: 'America/New_York' }
    const profile = hourOfDayProfile(hours, options)
    expect(profile.timeZone).toBe('America/New_York')
    expectClose(
      profile.buckets,
      expected(hours, from, to, 24, (t) => local(t, newYorkOffsetH).hour),
    )
    expect(profile.buckets[2]?.periodHours).toBe(30) // 31 days, 02:00 missing on 8 March
    expectClose(
      dayOfWeekProfile(hours, options).buckets,
      expected(hours, from, to, 7, (t) => local(t, newYorkOffsetH).weekday),
    )
  })

  it('places an hour by the local time of its start in a half-hour zone (Asia/Kolkata, UTC+05:30)', () => {
    const t = Date.UTC(2026, 0, 5, 0) // 05:30 local, a Monday
    expect(createLocalHourClock('Asia/Kolkata')(t)).toEqual({ hourOfDay: 5, dayOfWeek: 0, month: 0 })
    const t2 = Date.UTC(2026, 0, 4, 18, 0) // 23:30 local Sunday
    expect(createLocalHourClock('Asia/Kolkata')(t2)).toEqual({ hourOfDay: 23, dayOfWeek: 6, month: 0 })
    // 2025-12-31T18:30Z is 00:00 on 1 January 2026 (a Thursday) in Kolkata: local month and weekday, not UTC's.
    expect(createLocalHourClock('Asia/Kolkata')(Date.UTC(2025, 11, 31, 18, 30))).toEqual({
      hourOfDay: 0,
      dayOfWeek: 3,
      month: 0,
    })
  })

  it('ignores hours outside the period, rejects a duplicate hour, an unknown zone and a reversed period', () => {
    const inside = { t: JAN_FROM, mean: 5, valid: true }
    const profile = hourOfDayProfile([{ t: JAN_FROM - HOUR_MS, mean: 999, valid: true }, inside], {
      from: JAN_FROM,
      to: JAN_FROM + HOUR_MS,
    })
    expect(profile.buckets[0]).toEqual({ key: 0, mean: 5, hours: 1, periodHours: 1, coverage: 1 })
    const code = (f: () => unknown): string | undefined => {
      try {
        f()
      } catch (error) {
        return error instanceof ProfileError ? error.code : 'other'
      }
      return undefined
    }
    expect(code(() => hourOfDayProfile([inside, inside], { from: JAN_FROM, to: JAN_TO }))).toBe('DUPLICATE_HOUR')
    expect(code(() => hourOfDayProfile([], { from: JAN_FROM, to: JAN_TO, timeZone: 'Mars/Olympus' }))).toBe(
      'INVALID_TIME_ZONE',
    )
    expect(code(() => dayOfWeekProfile([], { from: JAN_TO, to: JAN_FROM }))).toBe('INVALID_PERIOD')
  })
})

describe('dayOfWeekProfile', () => {
  it('separates weekdays from the weekend, Monday first, with each weekday counted in the period', () => {
    // Weekdays 15, weekend 5 (local calendar days).
    const hours: SiteHourAggregate[] = hoursOf(JAN_FROM, JAN_TO, (t) =>
      local(t, stockholmOffsetH).weekday < 5 ? 15 : 5,
    ).map((h) => ({ ...h, min: h.mean, max: h.mean, n: 60, coverage: 1, valid: true }))
    const profile = dayOfWeekProfile(hours, { from: JAN_FROM, to: JAN_TO })
    expect(profile.buckets.map((b) => b.mean)).toEqual([15, 15, 15, 15, 15, 5, 5])
    // January 2026: 4 Mondays, Tuesdays, Wednesdays; 5 Thursdays, Fridays, Saturdays; 4 Sundays.
    expect(profile.buckets.map((b) => b.periodHours)).toEqual([4, 4, 4, 5, 5, 5, 4].map((d) => d * 24))
    expect(profile.buckets.every((b) => b.coverage === 1)).toBe(true)
  })

  it('matches an independent computation on random data over a year with gaps', () => {
    const from = Date.UTC(2025, 11, 31, 23)
    const to = Date.UTC(2026, 11, 31, 23)
    const rng = createRng(3)
    const hours = hoursOf(from, to, () => rng() * 30).filter(() => rng() > 0.3)
    expectClose(
      dayOfWeekProfile(hours, { from, to }).buckets,
      expected(hours, from, to, 7, (t) => local(t, stockholmOffsetH).weekday),
    )
  })
})

// Calendar year 2026 in Stockholm local time: 2025-12-31T23:00Z … 2026-12-31T23:00Z.
const YEAR_FROM = Date.UTC(2025, 11, 31, 23)
const YEAR_TO = Date.UTC(2026, 11, 31, 23)

describe('seasonProfile', () => {
  it('a year whose value is 10 × (season + 1) gives each season exactly that mean, with its days as period hours', () => {
    const hours = hoursOf(YEAR_FROM, YEAR_TO, (t) => 10 * (seasonAt(t) + 1))
    const profile = seasonProfile(hours, { from: YEAR_FROM, to: YEAR_TO })
    expect(SEASONS).toEqual(['winter', 'spring', 'summer', 'autumn'])
    expect(profile.buckets.map((b) => b.mean)).toEqual([10, 20, 30, 40])
    // Winter: January 31 + February 28 + December 31 days; spring 92 days less the hour lost on 29 March;
    // summer 92 days; autumn 91 days plus the hour gained on 25 October.
    expect(profile.buckets.map((b) => b.periodHours)).toEqual([90 * 24, 92 * 24 - 1, 92 * 24, 91 * 24 + 1])
    expect(profile.buckets.every((b) => b.coverage === 1 && b.hours === b.periodHours)).toBe(true)
  })

  it('places the hours around a season boundary by the local date, in winter and in summer time', () => {
    const at = (t: number): number | undefined => {
      const profile = seasonProfile([{ t, mean: 1, valid: true }], { from: t, to: t + HOUR_MS })
      return profile.buckets.find((b) => b.hours === 1)?.key
    }
    expect(at(Date.UTC(2026, 1, 28, 22))).toBe(0) // 23:00 on 28 February (UTC+1): winter
    expect(at(Date.UTC(2026, 1, 28, 23))).toBe(1) // 00:00 on 1 March: spring, though still February in UTC
    expect(at(Date.UTC(2026, 4, 31, 21))).toBe(1) // 23:00 on 31 May (UTC+2): spring
    expect(at(Date.UTC(2026, 4, 31, 22))).toBe(2) // 00:00 on 1 June: summer
    expect(at(Date.UTC(2026, 10, 30, 22))).toBe(3) // 23:00 on 30 November (UTC+1): autumn
    expect(at(Date.UTC(2026, 10, 30, 23))).toBe(0) // 00:00 on 1 December: winter
  })

  it('matches an independent computation on random data with gaps and suspect hours over two years', () => {
    const from = Date.UTC(2024, 11, 31, 23)
    const to = YEAR_TO
    const rng = createRng(21)
    const hours = hoursOf(from, to, () => (rng() < 0.15 ? null : rng() * 40))
      .map((h) => ({ ...h, suspect: rng() < 0.03 }))
      .filter(() => rng() > 0.1)
    expectClose(seasonProfile(hours, { from, to }).buckets, expected(hours, from, to, 4, seasonAt))
  })

  it('a period inside one season: the other seasons have no period hours and no coverage', () => {
    const from = Date.UTC(2026, 5, 30, 22) // July 2026, local
    const to = Date.UTC(2026, 6, 31, 22)
    const hours = hoursOf(from, to, (_t, i) => (i % 4 === 0 ? null : 12))
    const profile = seasonProfile(hours, { from, to })
    expect(profile.buckets[2]).toEqual({ key: 2, mean: 12, hours: 558, periodHours: 744, coverage: 0.75 })
    for (const key of [0, 1, 3]) {
      expect(profile.buckets[key]).toEqual({ key, mean: null, hours: 0, periodHours: 0, coverage: null })
    }
    expect(seasonProfile([], { from, to }).buckets[2]).toEqual({
      key: 2,
      mean: null,
      hours: 0,
      periodHours: 744,
      coverage: 0,
    })
  })
})

describe('monthProfile', () => {
  it('a year whose value is the local month number gives 12 buckets with that mean and the days of each month', () => {
    const hours = hoursOf(YEAR_FROM, YEAR_TO, (t) => local(t, stockholmOffsetH).month + 1)
    const profile = monthProfile(hours, { from: YEAR_FROM, to: YEAR_TO })
    expect(profile.buckets.map((b) => b.mean)).toEqual(Array.from({ length: 12 }, (_, m) => m + 1))
    const days = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    // March 2026 loses an hour, October gains one (EU summer time).
    expect(profile.buckets.map((b) => b.periodHours)).toEqual(
      days.map((d, m) => d * 24 + (m === 2 ? -1 : m === 9 ? 1 : 0)),
    )
  })

  it('matches an independent computation on random data, in New York too', () => {
    const rng = createRng(5)
    const hours = hoursOf(YEAR_FROM, YEAR_TO, () => (rng() < 0.2 ? null : rng() * 25))
    expectClose(
      monthProfile(hours, { from: YEAR_FROM, to: YEAR_TO }).buckets,
      expected(hours, YEAR_FROM, YEAR_TO, 12, (t) => local(t, stockholmOffsetH).month),
    )
    expectClose(
      monthProfile(hours, { from: YEAR_FROM, to: YEAR_TO, timeZone: 'America/New_York' }).buckets,
      expected(hours, YEAR_FROM, YEAR_TO, 12, (t) => local(t, newYorkOffsetH).month),
    )
  })
})

describe('pairedComparison', () => {
  const outdoorOf = (rng: () => number) => (): number => 2 + rng() * 30

  it('indoor = 0.5 × outdoor: ratio 0.5, difference −half the outdoor mean, indoor never higher', () => {
    const rng = createRng(1)
    const outdoor = hoursOf(JAN_FROM, JAN_TO, outdoorOf(rng))
    const indoor = outdoor.map((h) => ({ ...h, mean: h.mean === null ? null : h.mean * 0.5 }))
    const result = pairedComparison(indoor, outdoor, { from: JAN_FROM, to: JAN_TO })
    const outdoorMean = outdoor.reduce((s, h) => s + (h.mean ?? 0), 0) / outdoor.length
    expect(result.periodHours).toBe(744)
    expect(result).toMatchObject({ hoursA: 744, hoursB: 744, pairedHours: 744, coverage: 1, shareAGreater: 0 })
    expect(result.ratioOfMeans).toBeCloseTo(0.5, 12)
    expect(result.meanB).toBeCloseTo(outdoorMean, 9)
    expect(result.meanA).toBeCloseTo(outdoorMean / 2, 9)
    expect(result.meanDifference).toBeCloseTo(-outdoorMean / 2, 9)
    // Swapped: outdoor is higher in every hour.
    const swapped = pairedComparison(outdoor, indoor, { from: JAN_FROM, to: JAN_TO })
    expect(swapped.ratioOfMeans).toBeCloseTo(2, 12)
    expect(swapped.shareAGreater).toBe(1)
  })

  it('leaves out every hour that only one series counts, so the gaps of one do not bias the other', () => {
    // a = 10 and b = 4 whenever both count. Where only one counts, its value is 1000: it must not show.
    const pattern = (i: number): 'both' | 'onlyA' | 'onlyB' | 'aInvalid' | 'bSuspect' | 'aNoMean' | 'neither' =>
      (['both', 'both', 'onlyA', 'onlyB', 'aInvalid', 'bSuspect', 'aNoMean', 'neither', 'both'] as const)[i % 9] ??
      'neither'
    const a: ProfileHour[] = []
    const b: ProfileHour[] = []
    let i = 0
    for (let t = JAN_FROM; t < JAN_TO; t += HOUR_MS, i += 1) {
      const p = pattern(i)
      if (p === 'both') a.push({ t, mean: 10, valid: true })
      if (p === 'both') b.push({ t, mean: 4, valid: true })
      if (p === 'onlyA') a.push({ t, mean: 1000, valid: true })
      if (p === 'onlyB') b.push({ t, mean: 1000, valid: true })
      if (p === 'aInvalid') a.push({ t, mean: 1000, valid: false })
      if (p === 'aInvalid') b.push({ t, mean: 1000, valid: true })
      if (p === 'bSuspect') a.push({ t, mean: 1000, valid: true })
      if (p === 'bSuspect') b.push({ t, mean: 1000, valid: true, suspect: true })
      if (p === 'aNoMean') a.push({ t, mean: null, valid: true })
      if (p === 'aNoMean') b.push({ t, mean: 1000, valid: true })
    }
    // Independently: 744 hours = 82 whole cycles of 9 (738) + 6 (both, both, onlyA, onlyB, aInvalid, bSuspect).
    const paired = 82 * 3 + 2
    const result = pairedComparison(a, b, { from: JAN_FROM, to: JAN_TO })
    expect(result).toEqual({
      from: JAN_FROM,
      to: JAN_TO,
      periodHours: 744,
      hoursA: paired + 83 + 83, // + onlyA + bSuspect hours (a counts there)
      hoursB: paired + 83 + 83 + 82, // + onlyB + aInvalid + aNoMean hours
      pairedHours: paired,
      coverage: paired / 744,
      meanA: 10,
      meanB: 4,
      meanDifference: 6,
      ratioOfMeans: 2.5,
      shareAGreater: 1,
    })
  })

  it('matches an independent hour-by-hour computation on random series with independent gaps', () => {
    const rng = createRng(99)
    const a = hoursOf(YEAR_FROM, YEAR_TO, () => (rng() < 0.2 ? null : rng() * 20)).filter(() => rng() > 0.1)
    const b = hoursOf(YEAR_FROM, YEAR_TO, () => (rng() < 0.1 ? null : rng() * 20)).map((h) => ({
      ...h,
      suspect: rng() < 0.05,
    }))
    const bByHour = new Map(b.filter((h) => h.valid && !h.suspect && h.mean !== null).map((h) => [h.t, h.mean ?? 0]))
    const pairs: [number, number][] = []
    for (const h of a) {
      const other = bByHour.get(h.t)
      if (h.valid && h.mean !== null && other !== undefined) pairs.push([h.mean, other])
    }
    const mean = (xs: number[]): number => xs.reduce((s, x) => s + x, 0) / xs.length
    const result = pairedComparison(a, b, { from: YEAR_FROM, to: YEAR_TO })
    expect(pairs.length).toBeGreaterThan(5000)
    expect(result.pairedHours).toBe(pairs.length)
    expect(result.coverage).toBe(pairs.length / 8760)
    expect(result.meanA).toBeCloseTo(mean(pairs.map(([x]) => x)), 9)
    expect(result.meanB).toBeCloseTo(mean(pairs.map(([, y]) => y)), 9)
    expect(result.meanDifference).toBeCloseTo(mean(pairs.map(([x, y]) => x - y)), 9)
    expect(result.ratioOfMeans).toBeCloseTo(mean(pairs.map(([x]) => x)) / mean(pairs.map(([, y]) => y)), 9)
    expect(result.shareAGreater).toBe(pairs.filter(([x, y]) => x > y).length / pairs.length)
  })

  it('empty inputs and empty periods: no pairs, every number null, coverage 0 (or null without period hours)', () => {
    const nothing = {
      hoursA: 0,
      hoursB: 0,
      pairedHours: 0,
      meanA: null,
      meanB: null,
      meanDifference: null,
      ratioOfMeans: null,
      shareAGreater: null,
    }
    expect(pairedComparison([], [], { from: JAN_FROM, to: JAN_TO })).toEqual({
      from: JAN_FROM,
      to: JAN_TO,
      periodHours: 744,
      coverage: 0,
      ...nothing,
    })
    const a = hoursOf(JAN_FROM, JAN_TO, () => 5)
    expect(pairedComparison(a, [], { from: JAN_FROM, to: JAN_TO })).toMatchObject({
      hoursA: 744,
      pairedHours: 0,
      coverage: 0,
      meanA: null,
    })
    expect(pairedComparison(a, a, { from: JAN_FROM, to: JAN_FROM })).toEqual({
      from: JAN_FROM,
      to: JAN_FROM,
      periodHours: 0,
      coverage: null,
      ...nothing,
    })
  })

  it('no ratio when b’s mean is 0; ties do not count as a greater; hours outside the period are ignored', () => {
    const from = JAN_FROM
    const to = JAN_FROM + 4 * HOUR_MS
    const a = hoursOf(from - HOUR_MS, to + HOUR_MS, (_, i) => [100, 0, 3, 0, 5, 100][i] ?? null)
    const b = hoursOf(from - HOUR_MS, to + HOUR_MS, () => 0)
    const result = pairedComparison(a, b, { from, to })
    expect(result).toMatchObject({ pairedHours: 4, meanA: 2, meanB: 0, meanDifference: 2, ratioOfMeans: null })
    expect(result.shareAGreater).toBe(0.5)
  })

  it('pairs by UTC hour: the autumn clock change day has 25 pairs, the two local 02:00 hours kept apart', () => {
    const from = Date.UTC(2026, 9, 24, 22)
    const to = Date.UTC(2026, 9, 25, 23)
    const a = hoursOf(from, to, (t) => (t === Date.UTC(2026, 9, 25, 0) ? 50 : 10))
    const b = hoursOf(from, to, (t) => (t === Date.UTC(2026, 9, 25, 1) ? 50 : 10))
    const result = pairedComparison(a, b, { from, to })
    expect(result).toMatchObject({ periodHours: 25, pairedHours: 25, coverage: 1, meanDifference: 0 })
    expect(result.shareAGreater).toBe(1 / 25)
  })

  it('pairs an hour whose t is not on the hour with that hour; rejects a duplicate hour and a reversed period', () => {
    const a = [{ t: JAN_FROM + 30 * 60_000, mean: 6, valid: true }]
    const b = [{ t: JAN_FROM, mean: 3, valid: true }]
    expect(pairedComparison(a, b, { from: JAN_FROM, to: JAN_TO })).toMatchObject({ pairedHours: 1, ratioOfMeans: 2 })
    const code = (f: () => unknown): string | undefined => {
      try {
        f()
      } catch (error) {
        return error instanceof ProfileError ? `${error.code} ${error.message}` : 'other'
      }
      return undefined
    }
    expect(code(() => pairedComparison(a, [...b, ...b], { from: JAN_FROM, to: JAN_TO }))).toMatch(
      /^DUPLICATE_HOUR .* in series b$/,
    )
    expect(code(() => pairedComparison(b, b, { from: JAN_TO, to: JAN_FROM }))).toMatch(/^INVALID_PERIOD/)
    expect(code(() => pairedComparison(b, b, { from: Number.NaN, to: JAN_TO }))).toMatch(/^INVALID_PERIOD/)
  })
})
