import { describe, expect, it } from 'vitest'
import {
  type AggregatePoint,
  addSample,
  aggregateWindowCount,
  createHourIsoFormatter,
  DAILY_MIN_VALID_HOURS,
  DAY_MS,
  DEFAULT_INTERVAL_S,
  dailyPoints,
  expectedSamplesPerHour,
  HOUR_MS,
  HOURLY_MIN_COVERAGE,
  type HourBucket,
  hourPoint,
  hourStart,
  REGULATORY_DAY_OFFSET_MS,
  regulatoryDayStart,
  WindowAlignmentError,
  withEmptyWindows,
} from './aggregation.ts'
import { createRng } from './random.ts'

const at = (iso: string): number => Date.parse(iso)

/** An hourly bucket of `n` samples all equal to `value`, for a device at the default 60 s interval. */
function bucket(startIso: string, n: number, value: number, expected = 60): HourBucket {
  return { start: at(startIso), n, sum: n * value, min: value, max: value, expected }
}

/** `count` consecutive full hours of constant `value` from `firstIso`. */
function hours(firstIso: string, count: number, value: number, n = 60): HourBucket[] {
  return Array.from({ length: count }, (_, i) => ({ ...bucket(firstIso, n, value), start: at(firstIso) + i * HOUR_MS }))
}

describe('constants', () => {
  it('match the reference rules (§3): 75 % of an hour, 18 valid hours a day, UTC+1 days', () => {
    expect(HOURLY_MIN_COVERAGE).toBe(0.75)
    expect(DAILY_MIN_VALID_HOURS).toBe(18)
    expect(REGULATORY_DAY_OFFSET_MS).toBe(HOUR_MS)
    expect(DAY_MS).toBe(86_400_000)
    expect(DEFAULT_INTERVAL_S).toBe(60)
  })
})

describe('hourStart', () => {
  it('floors to the UTC hour', () => {
    expect(hourStart(at('2026-11-29T07:59:59.999Z'))).toBe(at('2026-11-29T07:00:00Z'))
    expect(hourStart(at('2026-11-29T08:00:00.000Z'))).toBe(at('2026-11-29T08:00:00Z'))
    expect(hourStart(at('2026-11-29T08:00:00.001Z'))).toBe(at('2026-11-29T08:00:00Z'))
    expect(hourStart(0)).toBe(0)
    expect(hourStart(-1)).toBe(-HOUR_MS) // before 1970 still floors downwards
  })
})

describe('regulatoryDayStart (fixed UTC+1)', () => {
  it('starts a day at 23:00 UTC the evening before', () => {
    expect(regulatoryDayStart(at('2026-11-28T22:59:59.999Z'))).toBe(at('2026-11-27T23:00:00Z'))
    expect(regulatoryDayStart(at('2026-11-28T23:00:00.000Z'))).toBe(at('2026-11-28T23:00:00Z'))
    expect(regulatoryDayStart(at('2026-11-29T00:00:00Z'))).toBe(at('2026-11-28T23:00:00Z'))
    expect(regulatoryDayStart(at('2026-11-29T22:59:59.999Z'))).toBe(at('2026-11-28T23:00:00Z'))
  })

  it('does not follow daylight saving time', () => {
    // 1 July (CEST in Sweden): still 23:00 UTC, not 22:00 UTC.
    expect(regulatoryDayStart(at('2026-07-01T22:30:00Z'))).toBe(at('2026-06-30T23:00:00Z'))
    expect(regulatoryDayStart(at('2026-07-01T23:30:00Z'))).toBe(at('2026-07-01T23:00:00Z'))
    // the night of the spring change (29 March 2026) has 24 hours like any other
    const start = regulatoryDayStart(at('2026-03-29T12:00:00Z'))
    expect(regulatoryDayStart(start + DAY_MS - 1)).toBe(start)
    expect(regulatoryDayStart(start + DAY_MS)).toBe(start + DAY_MS)
  })

  it('puts every instant in a 24 h window that starts at 23:00 UTC (seeded)', () => {
    const random = createRng(2881)
    for (let i = 0; i < 5000; i += 1) {
      const ts = Math.floor((random() - 0.1) * 4e12) // 1957 … 2096
      const start = regulatoryDayStart(ts)
      expect(start).toBeLessThanOrEqual(ts)
      expect(ts).toBeLessThan(start + DAY_MS)
      expect(new Date(start).getUTCHours()).toBe(23)
      expect(Math.abs(start % HOUR_MS)).toBe(0)
    }
  })
})

describe('expectedSamplesPerHour', () => {
  it('is 3600 / interval', () => {
    expect(expectedSamplesPerHour(60)).toBe(60)
    expect(expectedSamplesPerHour(10)).toBe(360)
    expect(expectedSamplesPerHour(3600)).toBe(1)
    expect(expectedSamplesPerHour(145)).toBeCloseTo(24.83, 2) // airrohr default interval
  })
})

describe('hourPoint', () => {
  it('is valid at exactly 75 % coverage: 45 of 60 samples', () => {
    const point = hourPoint(bucket('2026-11-29T07:00:00Z', 45, 7.4))
    expect(point).toEqual({
      t: '2026-11-29T07:00:00.000Z',
      mean: 7.4,
      min: 7.4,
      max: 7.4,
      n: 45,
      expected: 60,
      coverage: 0.75,
      valid: true,
    })
  })

  it('is invalid at 44 of 60 samples', () => {
    const point = hourPoint(bucket('2026-11-29T07:00:00Z', 44, 7.4))
    expect(point.coverage).toBeCloseTo(44 / 60, 12)
    expect(point.valid).toBe(false)
    expect(point.mean).toBe(7.4) // an invalid hour still reports its numbers
  })

  it('caps coverage at 1 when more samples arrive than expected', () => {
    const point = hourPoint(bucket('2026-11-29T07:00:00Z', 75, 1))
    expect(point.coverage).toBe(1)
    expect(point.valid).toBe(true)
    expect(point.n).toBe(75)
  })

  it('has no numbers for an empty bucket, and no coverage without an expectation', () => {
    expect(hourPoint(bucket('2026-11-29T07:00:00Z', 0, 0))).toMatchObject({
      mean: null,
      min: null,
      max: null,
      n: 0,
      coverage: 0,
      valid: false,
    })
    expect(hourPoint(bucket('2026-11-29T07:00:00Z', 10, 1, 0))).toMatchObject({ coverage: 0, valid: false, mean: 1 })
  })

  it('takes mean, min and max from the running sums', () => {
    let b: HourBucket | undefined
    const start = at('2026-11-29T07:00:00Z')
    for (const value of [4, 8, 6, 2]) b = addSample(b, start, value, 4)
    expect(b).toEqual({ start, n: 4, sum: 20, min: 2, max: 8, expected: 4 })
    if (!b) throw new Error('no bucket')
    expect(hourPoint(b)).toMatchObject({ mean: 5, min: 2, max: 8, coverage: 1, valid: true })
  })

  it('sits on the 75 % threshold without rounding error for every interval that divides it (1–3600 s)', () => {
    for (let intervalS = 1; intervalS <= 3600; intervalS += 1) {
      const expected = expectedSamplesPerHour(intervalS)
      const threshold = HOURLY_MIN_COVERAGE * expected
      if (!Number.isInteger(threshold)) continue
      const b = (n: number): HourBucket => ({ start: 0, n, sum: n, min: 1, max: 1, expected })
      expect(hourPoint(b(threshold)).valid, `interval ${intervalS} s, ${threshold} samples`).toBe(true)
      if (threshold > 0) expect(hourPoint(b(threshold - 1)).valid, `interval ${intervalS} s`).toBe(false)
    }
  })
})

describe('addSample', () => {
  it('starts a bucket from one sample and keeps its expectation when more arrive', () => {
    const start = at('2026-11-29T07:00:00Z')
    const first = addSample(undefined, start, -3, 60)
    expect(first).toEqual({ start, n: 1, sum: -3, min: -3, max: -3, expected: 60 })
    expect(addSample(first, start, 5, 999)).toEqual({ start, n: 2, sum: 2, min: -3, max: 5, expected: 60 })
  })
})

describe('dailyPoints', () => {
  it('marks a day with 18 valid hours valid and one with 17 invalid', () => {
    const [valid] = dailyPoints(hours('2026-11-28T23:00:00Z', 18, 5))
    expect(valid).toMatchObject({ t: '2026-11-28T23:00:00.000Z', mean: 5, coverage: 0.75, valid: true, n: 18 * 60 })
    const [invalid] = dailyPoints(hours('2026-11-28T23:00:00Z', 17, 5))
    expect(invalid).toMatchObject({ mean: 5, valid: false })
    expect(invalid?.coverage).toBeCloseTo(17 / 24, 12)
  })

  it('counts only valid hours: 18 full hours plus 6 thin ones is still 18', () => {
    const buckets = [...hours('2026-11-28T23:00:00Z', 18, 5), ...hours('2026-11-29T17:00:00Z', 6, 50, 44)]
    const [day] = dailyPoints(buckets)
    expect(day).toMatchObject({ mean: 5, coverage: 0.75, valid: true, n: 18 * 60 + 6 * 44 })
    // min and max describe every sample of the day, including those of invalid hours
    expect(day).toMatchObject({ min: 5, max: 50 })
  })

  it('is the mean of the valid hourly means, not of the samples', () => {
    const [day] = dailyPoints([
      bucket('2026-11-29T00:00:00Z', 60, 10), // full hour
      bucket('2026-11-29T01:00:00Z', 45, 40), // 75 %: valid, fewer samples
      bucket('2026-11-29T02:00:00Z', 30, 1000), // 50 %: invalid, left out of the mean
    ])
    expect(day?.mean).toBe(25) // (10 + 40) / 2; the sample mean would be (600 + 1800) / 105 ≈ 22.9
    expect(day?.n).toBe(135)
    expect(day?.max).toBe(1000)
  })

  it('has no mean for a day without valid hours, but keeps its count and extremes', () => {
    expect(dailyPoints([bucket('2026-11-29T00:00:00Z', 10, 3)])).toEqual([
      // A day expects 24 hours' worth of samples: 24 × 60.
      { t: '2026-11-28T23:00:00.000Z', mean: null, min: 3, max: 3, n: 10, expected: 1440, coverage: 0, valid: false },
    ])
  })

  it('splits days at 23:00 UTC', () => {
    const points = dailyPoints([bucket('2026-11-28T22:00:00Z', 60, 1), bucket('2026-11-28T23:00:00Z', 60, 2)])
    expect(points.map((p) => [p.t, p.mean])).toEqual([
      ['2026-11-27T23:00:00.000Z', 1],
      ['2026-11-28T23:00:00.000Z', 2],
    ])
  })

  it('ignores empty hours', () => {
    const empty: HourBucket = {
      start: at('2026-11-30T05:00:00Z'),
      n: 0,
      sum: 0,
      min: Number.POSITIVE_INFINITY,
      max: Number.NEGATIVE_INFINITY,
      expected: 60,
    }
    expect(dailyPoints([empty])).toEqual([])
    const [day] = dailyPoints([bucket('2026-11-29T05:00:00Z', 60, 4), { ...empty, start: at('2026-11-29T06:00:00Z') }])
    expect(day).toMatchObject({ min: 4, max: 4, n: 60, mean: 4 })
  })

  it('caps day coverage at 1 when several devices each bring a full day', () => {
    const twoDevices = [...hours('2026-11-28T23:00:00Z', 24, 4), ...hours('2026-11-28T23:00:00Z', 24, 6)]
    const [day] = dailyPoints(twoDevices)
    expect(day).toMatchObject({ coverage: 1, valid: true, mean: 5, n: 48 * 60 })
  })

  it('gives the same days for buckets in any order, sorted by day (seeded)', () => {
    const random = createRng(75)
    const buckets: HourBucket[] = []
    const first = at('2026-11-20T23:00:00Z')
    for (let h = 0; h < 24 * 7; h += 1) {
      if (random() < 0.15) continue // a missing hour
      const n = Math.floor(random() * 70)
      const min = Math.round(random() * 20)
      buckets.push({ start: first + h * HOUR_MS, n, sum: n * (min + 2), min, max: min + 4, expected: 60 })
    }
    const ordered = dailyPoints(buckets)
    expect(ordered.map((p) => p.t)).toEqual([...ordered.map((p) => p.t)].sort())
    expect(ordered).toHaveLength(7)
    for (let round = 0; round < 20; round += 1) {
      const shuffled = [...buckets]
      for (let i = shuffled.length - 1; i > 0; i -= 1) {
        const j = Math.floor(random() * (i + 1))
        const [a, b] = [shuffled[i], shuffled[j]]
        if (a && b) [shuffled[i], shuffled[j]] = [b, a]
      }
      const again = dailyPoints(shuffled)
      expect(again.map(({ mean: _, ...rest }) => rest)).toEqual(ordered.map(({ mean: _, ...rest }) => rest))
      again.forEach((p, i) => {
        const before = ordered[i]?.mean ?? null
        if (p.mean === null || before === null) expect(p.mean).toBe(before)
        else expect(p.mean).toBeCloseTo(before, 9)
      })
    }
  })
})

describe('createHourIsoFormatter', () => {
  it('formats whole hours exactly as toISOString, across days, years and before 1970', () => {
    const iso = createHourIsoFormatter()
    const rng = createRng(7)
    const starts = [0, -HOUR_MS, -DAY_MS, Date.UTC(2024, 1, 29, 23), Date.UTC(2026, 11, 31, 23), Date.UTC(2027, 0, 1)]
    for (let i = 0; i < 2_000; i += 1) starts.push(Math.floor((rng() - 0.3) * 2_000_000) * HOUR_MS)
    for (const start of starts) expect(iso(start)).toBe(new Date(start).toISOString())
  })

  it('falls back to toISOString for times that are not whole hours', () => {
    const iso = createHourIsoFormatter()
    const t = Date.UTC(2026, 10, 30, 7, 45, 12, 5)
    expect(iso(t)).toBe('2026-11-30T07:45:12.005Z')
  })
})

describe('withEmptyWindows', () => {
  const empty = (t: string): AggregatePoint => ({
    t,
    mean: null,
    min: null,
    max: null,
    n: 0,
    expected: 0,
    coverage: 0,
    valid: false,
  })
  const point = (t: string, mean: number): AggregatePoint => hourPoint(bucket(t, 60, mean))

  it('gives every hour of a range with no data at all as an empty window', () => {
    const out = withEmptyWindows([], '1h', at('2026-11-30T09:00:00Z'), at('2026-11-30T12:00:00Z'))
    expect(out).toEqual([
      empty('2026-11-30T09:00:00.000Z'),
      empty('2026-11-30T10:00:00.000Z'),
      empty('2026-11-30T11:00:00.000Z'),
    ])
  })

  it('starts at the hour containing a mid-hour `from` and keeps an hour that starts before a mid-hour `to`', () => {
    const out = withEmptyWindows([], '1h', at('2026-11-30T09:30:00Z'), at('2026-11-30T11:00:01Z'))
    expect(out.map((p) => p.t)).toEqual([
      '2026-11-30T09:00:00.000Z',
      '2026-11-30T10:00:00.000Z',
      '2026-11-30T11:00:00.000Z',
    ])
    // `to` exclusive: a window starting exactly at `to` is not in the range.
    expect(withEmptyWindows([], '1h', at('2026-11-30T09:30:00Z'), at('2026-11-30T11:00:00Z'))).toHaveLength(2)
  })

  it('puts the points in their windows and fills the gaps between and around them', () => {
    const a = point('2026-11-30T10:00:00Z', 5)
    const b = point('2026-11-30T12:00:00Z', 7)
    const out = withEmptyWindows([a, b], '1h', at('2026-11-30T09:00:00Z'), at('2026-11-30T14:00:00Z'))
    expect(out).toEqual([
      empty('2026-11-30T09:00:00.000Z'),
      a,
      empty('2026-11-30T11:00:00.000Z'),
      b,
      empty('2026-11-30T13:00:00.000Z'),
    ])
  })

  it('returns the points unchanged when every window has data', () => {
    const points = hours('2026-11-30T00:00:00Z', 24, 3).map((b) => hourPoint(b))
    const out = withEmptyWindows(points, '1h', at('2026-11-30T00:00:00Z'), at('2026-12-01T00:00:00Z'))
    expect(out).toEqual(points)
    const days = dailyPoints(hours('2026-11-27T23:00:00Z', 3 * 24, 3))
    expect(withEmptyWindows(days, '1d', at('2026-11-28T05:00:00Z'), at('2026-11-30T22:59:59Z'))).toEqual(days)
  })

  it('has UTC hours across the daylight saving changes: no hour missing or twice', () => {
    // Sweden: summer time from 2026-03-29 01:00 UTC, back to normal time on 2026-10-25 01:00 UTC.
    for (const [fromIso, toIso] of [
      ['2026-03-29T00:00:00Z', '2026-03-29T04:00:00Z'],
      ['2026-10-25T00:00:00Z', '2026-10-25T04:00:00Z'],
    ] as const) {
      const out = withEmptyWindows([], '1h', at(fromIso), at(toIso))
      expect(out.map((p) => Date.parse(p.t) - at(fromIso))).toEqual([0, 1, 2, 3].map((h) => h * HOUR_MS))
    }
  })

  it('has 24 h days from 23:00 UTC on the clock-change days too (fixed UTC+1, no daylight saving)', () => {
    // From the middle of the day before each change to a mid-day `to` on the day after.
    const spring = withEmptyWindows([], '1d', at('2026-03-28T12:00:00Z'), at('2026-03-30T05:00:00Z'))
    expect(spring.map((p) => p.t)).toEqual([
      '2026-03-27T23:00:00.000Z',
      '2026-03-28T23:00:00.000Z', // 2026-03-29, 23 h long in Swedish local time, 24 h here
      '2026-03-29T23:00:00.000Z',
    ])
    const autumn = withEmptyWindows([], '1d', at('2026-10-24T23:00:00Z'), at('2026-10-25T23:00:00Z'))
    expect(autumn.map((p) => p.t)).toEqual(['2026-10-24T23:00:00.000Z']) // 2026-10-25, 25 h locally
    const day = at('2026-03-28T23:00:00Z')
    expect(aggregateWindowCount('1h', day, day + DAY_MS)).toBe(24)
  })

  it('starts at the UTC+1 day containing a mid-day `from`, including from 23:00–24:00 UTC (already the next day)', () => {
    expect(withEmptyWindows([], '1d', at('2026-11-29T22:59:59Z'), at('2026-11-29T23:00:01Z')).map((p) => p.t)).toEqual([
      '2026-11-28T23:00:00.000Z',
      '2026-11-29T23:00:00.000Z',
    ])
    expect(withEmptyWindows([], '1d', at('2026-11-29T23:30:00Z'), at('2026-11-30T12:00:00Z')).map((p) => p.t)).toEqual([
      '2026-11-29T23:00:00.000Z',
    ])
  })

  it('is empty for from ≥ to, and counts the windows it returns', () => {
    expect(withEmptyWindows([], '1h', at('2026-11-30T10:00:00Z'), at('2026-11-30T10:00:00Z'))).toEqual([])
    expect(aggregateWindowCount('1d', at('2026-11-30T10:00:00Z'), at('2026-11-30T09:00:00Z'))).toBe(0)
    expect(aggregateWindowCount('1h', at('2026-11-30T09:30:00Z'), at('2026-11-30T11:00:01Z'))).toBe(3)
    expect(aggregateWindowCount('1d', at('2026-11-29T22:59:59Z'), at('2026-11-29T23:00:01Z'))).toBe(2)
  })

  it('matches an aggregate query that keeps the windows overlapping [from, to) (seeded)', () => {
    const random = createRng(6)
    const first = at('2026-03-20T00:00:00Z')
    const buckets: HourBucket[] = []
    for (let h = 0; h < 24 * 20; h += 1) {
      if (random() < 0.4) continue
      const n = 1 + Math.floor(random() * 60)
      buckets.push({ start: first + h * HOUR_MS, n, sum: n * 4, min: 1, max: 9, expected: 60 })
    }
    for (let round = 0; round < 50; round += 1) {
      const from = first + Math.floor(random() * 20 * DAY_MS)
      const to = from + 1 + Math.floor(random() * 6 * DAY_MS)
      // As the stores do (packages/storage/src/sqlite/readings.ts aggregateSeries): hour buckets starting in
      // [hourStart(from), to), or in [regulatoryDayStart(from), to) folded into days.
      const hourly = buckets.filter((b) => b.start >= hourStart(from) && b.start < to).map((b) => hourPoint(b))
      const daily = dailyPoints(buckets.filter((b) => b.start >= regulatoryDayStart(from) && b.start < to))
      for (const [every, points] of [
        ['1h', hourly],
        ['1d', daily],
      ] as const) {
        const out = withEmptyWindows(points, every, from, to)
        expect(out).toHaveLength(aggregateWindowCount(every, from, to))
        expect(out.filter((p) => p.n > 0)).toEqual(points)
        const step = every === '1h' ? HOUR_MS : DAY_MS
        const start = every === '1h' ? hourStart(from) : regulatoryDayStart(from)
        expect(out.map((p) => p.t)).toEqual(out.map((_, i) => new Date(start + i * step).toISOString()))
        expect(Date.parse(out.at(-1)?.t ?? '')).toBeLessThan(to)
      }
    }
  })

  it('refuses a point off the windows, outside the range or out of order instead of dropping it', () => {
    const from = at('2026-11-30T09:00:00Z')
    const to = at('2026-11-30T12:00:00Z')
    const a = point('2026-11-30T09:00:00Z', 1)
    const b = point('2026-11-30T10:00:00Z', 2)
    for (const points of [
      [{ ...a, t: '2026-11-30T09:30:00.000Z' }],
      [point('2026-11-30T12:00:00Z', 1)],
      [point('2026-11-30T08:00:00Z', 1)],
      [b, a],
      [a, a],
    ]) {
      expect(() => withEmptyWindows(points, '1h', from, to)).toThrow(WindowAlignmentError)
    }
    expect(() => withEmptyWindows([a], '1d', from, to)).toThrow(/not on a 1d window/)
  })
})
