import { describe, expect, it } from 'vitest'
import { HOUR_MS } from './aggregation.ts'
import {
  createLocalHourClock,
  DEFAULT_PROFILE_TIME_ZONE,
  dayOfWeekProfile,
  hourOfDayProfile,
  type ProfileBucket,
  ProfileError,
  type ProfileHour,
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
function local(t: number, offsetH: (t: number) => number): { hour: number; weekday: number } {
  const d = new Date(t + offsetH(t) * HOUR_MS)
  // getUTCDay: 0 = Sunday; the profile's 0 = Monday.
  return { hour: d.getUTCHours(), weekday: (d.getUTCDay() + 6) % 7 }
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
    expect(createLocalHourClock('Asia/Kolkata')(t)).toEqual({ hourOfDay: 5, dayOfWeek: 0 })
    const t2 = Date.UTC(2026, 0, 4, 18, 0) // 23:30 local Sunday
    expect(createLocalHourClock('Asia/Kolkata')(t2)).toEqual({ hourOfDay: 23, dayOfWeek: 6 })
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
