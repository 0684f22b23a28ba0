import { describe, expect, it } from 'vitest'
import { DAY_MS, HOUR_MS } from './aggregation.ts'
import {
  FOLLOW_UP_CAVEAT_CODES,
  FOLLOW_UP_DEFAULT_DAYS,
  type FollowUpHour,
  type FollowUpInput,
  followUpWindows,
  type MeasureFollowUp,
  MeasureFollowUpError,
  measureFollowUp,
  WEATHER_MAX_TEMP_DIFFERENCE_C,
} from './measure-follow-up.ts'
import { forbiddenWordsIn } from './measures.ts'
import { FINAL_GRACE_MS } from './rule-values.ts'

/** Monday 2026-03-02: the after window starts at its UTC+1 midnight, 2026-03-01T23:00Z. */
const TAKEN_ON = '2026-03-02'
const START = Date.parse('2026-03-01T23:00:00Z')
const DAYS = 7
const BEFORE_FROM = START - DAYS * DAY_MS
const AFTER_TO = START + DAYS * DAY_MS
/** Long after both windows: everything final. */
const LATER = AFTER_TO + 30 * DAY_MS

/** One valid, complete hourly mean per hour of [from, to), valued by `value(t)` (null: no hour at all). */
function hours(from: number, to: number, value: (t: number) => number | null): FollowUpHour[] {
  const out: FollowUpHour[] = []
  for (let t = from; t < to; t += HOUR_MS) {
    const v = value(t)
    if (v !== null) out.push({ t, mean: v, valid: true, coverage: 1, suspect: false })
  }
  return out
}

/** `before` in the before window, `after` from START on; a day on either side too (must be left out). */
const step = (before: number, after: number) =>
  hours(BEFORE_FROM - DAY_MS, AFTER_TO + DAY_MS, (t) =>
    t < BEFORE_FROM || t >= AFTER_TO ? 1000 : t < START ? before : after,
  )

function run(overrides: Partial<FollowUpInput> = {}): MeasureFollowUp {
  return measureFollowUp({ takenOn: TAKEN_ON, days: DAYS, site: { pm25: step(20, 15) }, now: LATER, ...overrides })
}

const codes = (result: MeasureFollowUp) => result.caveats.map((c) => c.code)

describe('followUpWindows', () => {
  it('takes N whole UTC+1 days before the day the measure was taken and N from it', () => {
    expect(followUpWindows(TAKEN_ON, DAYS)).toEqual({
      before: { from: Date.parse('2026-02-22T23:00:00Z'), to: START },
      after: { from: START, to: Date.parse('2026-03-08T23:00:00Z') },
    })
  })

  it('refuses dates that are not calendar dates and lengths outside 7–182 days', () => {
    for (const date of ['2026-02-30', '2026-3-2', '02/03/2026', '']) {
      expect(() => followUpWindows(date, DAYS)).toThrow(expect.objectContaining({ code: 'INVALID_DATE' }))
    }
    for (const days of [6, 183, 7.5, Number.NaN]) {
      expect(() => followUpWindows(TAKEN_ON, days)).toThrow(MeasureFollowUpError)
    }
    expect(() => followUpWindows(TAKEN_ON, 7)).not.toThrow()
    expect(() => followUpWindows(TAKEN_ON, 182)).not.toThrow()
  })
})

describe('measureFollowUp', () => {
  it('states both means, their coverage and the change, from the counted hours of each window only', () => {
    const result = run()
    expect(result.days).toBe(DAYS)
    expect(result.afterComplete).toBe(true)
    const pm25 = result.metrics.find((m) => m.metric === 'pm25')
    expect(pm25).toMatchObject({
      before: { mean: 20, countedHours: DAYS * 24, expectedHours: DAYS * 24, coverage: 1, sufficientCoverage: true },
      after: { mean: 15, countedHours: DAYS * 24, coverage: 1 },
      change: { absolute: -5, percent: -25 },
      background: null,
      differenceInDifferences: null,
    })
    // Metrics without data: no means, no change.
    expect(result.metrics.find((m) => m.metric === 'no2')).toMatchObject({
      before: { mean: null, countedHours: 0, coverage: 0 },
      change: null,
    })
    expect(result.metrics.map((m) => m.metric)).toEqual(['pm1', 'pm25', 'pm10', 'no2'])
  })

  it('uses four weeks when no length is given', () => {
    const result = measureFollowUp({ takenOn: TAKEN_ON, site: {}, now: LATER + 60 * DAY_MS })
    expect(result.days).toBe(FOLLOW_UP_DEFAULT_DAYS)
    expect(result.before.from).toBe(START - FOLLOW_UP_DEFAULT_DAYS * DAY_MS)
  })

  it('leaves out invalid and suspect hours, hours without a mean, and an hour given twice', () => {
    // Every 4th hour of the after window reads 100 but has no mean, is invalid or is suspect (in turn).
    const series = step(20, 15).map((h): FollowUpHour => {
      const i = (h.t - START) / HOUR_MS
      if (h.t < START || h.t >= AFTER_TO || i % 4 !== 0) return h
      const kind = (i / 4) % 3
      return kind === 0
        ? { ...h, mean: null }
        : kind === 1
          ? { ...h, mean: 100, valid: false }
          : { ...h, mean: 100, suspect: true }
    })
    // The same hour again (START, 1000) is not counted twice.
    const duplicated = [...series, { t: START + HOUR_MS, mean: 1000, valid: true, coverage: 1 }]
    const pm25 = run({ site: { pm25: duplicated } }).metrics.find((m) => m.metric === 'pm25')
    expect(pm25?.after.mean).toBe(15)
    expect(pm25?.after.countedHours).toBe(DAYS * 24 - DAYS * 6)
    expect(pm25?.after.coverage).toBeCloseTo(0.75, 12)
  })

  it('states no change while the after window is not over, and says so', () => {
    const now = START + 3 * DAY_MS
    // Data exist up to now only.
    const during = run({ now, metrics: ['pm25'], site: { pm25: step(20, 15).filter((h) => h.t + HOUR_MS <= now) } })
    expect(during.afterComplete).toBe(false)
    const pm25 = during.metrics.find((m) => m.metric === 'pm25')
    expect(pm25?.change).toBeNull()
    // The hours measured so far are shown, with their (partial) coverage.
    expect(pm25?.after.countedHours).toBe(3 * 24)
    expect(codes(during)).toContain('AFTER_INCOMPLETE')
    expect(codes(during)).not.toContain('LOW_COVERAGE')
    // Complete once the last hour of the after window is final.
    expect(run({ now: AFTER_TO + FINAL_GRACE_MS - 1 }).afterComplete).toBe(false)
    const done = run({ now: AFTER_TO + FINAL_GRACE_MS })
    expect(done.afterComplete).toBe(true)
    expect(codes(done)).not.toContain('AFTER_INCOMPLETE')
  })

  it('gives the background change over the same windows and the difference of the two changes', () => {
    const result = run({ background: { siteId: 'bg-1', series: { pm25: step(10, 8) } } })
    expect(result.backgroundSiteId).toBe('bg-1')
    const pm25 = result.metrics.find((m) => m.metric === 'pm25')
    expect(pm25?.background).toMatchObject({ before: { mean: 10 }, after: { mean: 8 }, change: { absolute: -2 } })
    expect(pm25?.background?.change?.percent).toBeCloseTo(-20, 12)
    // −5 at the site, −2 at the background: −3 the background did not show.
    expect(pm25?.differenceInDifferences).toBeCloseTo(-3, 12)
    expect(codes(result)).not.toContain('NO_BACKGROUND')
    // A background site without data in the windows is no comparison.
    expect(codes(run({ background: { siteId: 'bg-1', series: {} } }))).toContain('NO_BACKGROUND')
    expect(codes(run())).toContain('NO_BACKGROUND')
  })

  it('shows the weather of both windows and flags a temperature difference above the stated limit', () => {
    const temp = (before: number, after: number) => step(before, after)
    const alike = run({
      site: { pm25: step(20, 15), temp: temp(2, 2 + WEATHER_MAX_TEMP_DIFFERENCE_C), rh: step(80, 70) },
    })
    expect(alike.weather.temp).toEqual({ before: 2, after: 2 + WEATHER_MAX_TEMP_DIFFERENCE_C, source: 'site' })
    expect(alike.weather.rh).toEqual({ before: 80, after: 70, source: 'site' })
    expect(codes(alike)).not.toContain('WEATHER_DIFFERS')
    expect(codes(alike)).not.toContain('WEATHER_UNKNOWN')
    const warmer = run({ site: { pm25: step(20, 15), temp: temp(2, 2.1 + WEATHER_MAX_TEMP_DIFFERENCE_C) } })
    expect(codes(warmer)).toContain('WEATHER_DIFFERS')
    expect(warmer.caveats.find((c) => c.code === 'WEATHER_DIFFERS')?.text.sv).toContain('2,0 °C före och 5,1 °C')
    expect(codes(run())).toContain('WEATHER_UNKNOWN')
    // The site has no temperature sensor: the background site's.
    const fromBackground = run({ background: { siteId: 'bg-1', series: { pm25: step(10, 8), temp: temp(1, 9) } } })
    expect(fromBackground.weather.temp).toEqual({ before: 1, after: 9, source: 'background' })
    expect(codes(fromBackground)).toContain('WEATHER_DIFFERS')
  })

  it('flags windows in different seasons, and not windows within one', () => {
    // 23 February – 1 March is winter, 2–8 March spring.
    const spring = run()
    expect(spring.seasons).toEqual({ before: ['winter', 'spring'], after: ['spring'] })
    expect(codes(spring)).toContain('SEASON_DIFFERS')
    const winter = measureFollowUp({ takenOn: '2026-01-15', days: DAYS, site: {}, now: LATER })
    expect(winter.seasons).toEqual({ before: ['winter'], after: ['winter'] })
    expect(codes(winter)).not.toContain('SEASON_DIFFERS')
  })

  it('flags coverage below 75 % on a side, naming the metric and the side', () => {
    // Only the first 12 hours of each day in the before window: 50 %.
    const half = step(20, 15).filter((h) => h.t >= START || (h.t - BEFORE_FROM) % DAY_MS < 12 * HOUR_MS)
    const result = run({ site: { pm25: half, no2: step(10, 10) } })
    const pm25 = result.metrics.find((m) => m.metric === 'pm25')
    expect(pm25?.before).toMatchObject({ coverage: 0.5, sufficientCoverage: false })
    // The change is still stated, beside its coverage and the caveat.
    expect(pm25?.change?.absolute).toBe(-5)
    const caveat = result.caveats.find((c) => c.code === 'LOW_COVERAGE')
    expect(caveat?.text.en).toContain('PM2.5 (before)')
    expect(caveat?.text.sv).toContain('PM2.5 (före)')
    // Metrics with no data at all are below 75 % too.
    expect(caveat?.text.en).toContain('PM10 (before, after)')
    expect(caveat?.text.en).not.toContain('NO2')
  })

  it('always states that school holidays cannot be told apart, and never words a caveat as a conclusion', () => {
    const scenarios = [
      run(),
      run({ now: START + DAY_MS }),
      run({ site: { pm25: step(20, 15), temp: step(0, 20) } }),
      run({ background: { siteId: 'bg-1', series: { pm25: step(10, 8), temp: step(5, 5) } } }),
      measureFollowUp({ takenOn: '2026-06-01', days: 182, site: {}, now: LATER }),
    ]
    const seen = new Set<string>()
    for (const result of scenarios) {
      expect(result.caveats.at(-1)?.code).toBe('SCHOOL_HOLIDAYS')
      for (const caveat of result.caveats) {
        seen.add(caveat.code)
        expect(forbiddenWordsIn(caveat.text.en, 'en'), caveat.text.en).toEqual([])
        expect(forbiddenWordsIn(caveat.text.sv, 'sv'), caveat.text.sv).toEqual([])
        // Nor "effect" (the plan's list): the follow-up shows a difference, not what made it.
        expect(caveat.text.en.toLowerCase()).not.toMatch(/\beffect/)
        expect(caveat.text.sv.toLowerCase()).not.toMatch(/effekt/)
      }
    }
    // Every caveat code was exercised by these scenarios.
    expect([...seen].sort()).toEqual([...FOLLOW_UP_CAVEAT_CODES].sort())
  })
})
