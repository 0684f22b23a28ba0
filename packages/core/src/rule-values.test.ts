import { describe, expect, it } from 'vitest'
import { HOUR_MS, REGULATORY_DAY_OFFSET_MS } from './aggregation.ts'
import {
  evaluationLookbackMs,
  FINAL_GRACE_MS,
  hourIsFinal,
  periodValues,
  type RuleHour,
  type SiteHourAggregate,
  siteRuleHours,
} from './rule-values.ts'

/** 2026-11-02 00:00 in UTC+1 (a regulatory day start): 2026-11-01T23:00Z. */
const DAY = Date.UTC(2026, 10, 2) - REGULATORY_DAY_OFFSET_MS
const LATER = DAY + 10 * 24 * HOUR_MS

const hour = (i: number, mean: number | null, extra: Partial<RuleHour> = {}): RuleHour => ({
  t: DAY + i * HOUR_MS,
  mean,
  coverage: 1,
  valid: true,
  suspect: false,
  ...extra,
})

describe('hourIsFinal', () => {
  const t = DAY
  it('is final when every expected sample arrived, or once the hour ended plus the grace', () => {
    expect(hourIsFinal({ t, coverage: 1 }, t + 10 * 60_000)).toBe(true)
    expect(hourIsFinal({ t, coverage: 0.98 }, t + HOUR_MS + FINAL_GRACE_MS - 1)).toBe(false)
    expect(hourIsFinal({ t, coverage: 0.98 }, t + HOUR_MS + FINAL_GRACE_MS)).toBe(true)
    expect(hourIsFinal({ t, coverage: 0 }, t + HOUR_MS)).toBe(false)
  })
})

describe('periodValues', () => {
  it('hour: counted means; invalid or suspect hours are gaps; unfinished hours are left out', () => {
    const hours = [hour(0, 10), hour(1, 20, { valid: false }), hour(2, 30, { suspect: true }), hour(3, 40)]
    const now = DAY + 4 * HOUR_MS + 60_000
    // Hour 3 has every sample (coverage 1): final. An hour still filling is not.
    expect(periodValues([...hours, hour(4, 50, { coverage: 0.5 })], 'hour', now)).toEqual([
      { t: DAY, value: 10 },
      { t: DAY + HOUR_MS, value: null },
      { t: DAY + 2 * HOUR_MS, value: null },
      { t: DAY + 3 * HOUR_MS, value: 40 },
    ])
  })

  it('day: the mean of the counted hourly means of the UTC+1 day, valid with 18 of them, once the day is over', () => {
    const full = Array.from({ length: 24 }, (_, i) => hour(i, i < 6 ? null : 10 + (i % 2)))
    // 18 counted hours (6..23): 9 × 10 and 9 × 11.
    expect(periodValues(full, 'day', LATER)).toEqual([{ t: DAY, value: 10.5 }])
    // One more gap: 17 counted hours, not a valid day.
    const short = full.map((h, i) => (i === 6 ? { ...h, suspect: true } : h))
    expect(periodValues(short, 'day', LATER)).toEqual([{ t: DAY, value: null }])
    // The day is not over: no value at all, neither breach nor clear.
    expect(periodValues(full, 'day', DAY + 23 * HOUR_MS + 30 * 60_000)).toEqual([])
  })

  it('running 24 h: each final hour with the mean of itself and the 23 before, valid with 18 counted hours', () => {
    const hours = Array.from({ length: 30 }, (_, i) => hour(i, i))
    const values = periodValues(hours, 'running24h', LATER)
    expect(values).toHaveLength(30)
    // Hour 16 has 17 counted hours behind it (0..16): not valid; hour 17 has 18: mean of 0..17.
    expect(values[16]).toEqual({ t: DAY + 16 * HOUR_MS, value: null })
    expect(values[17]).toEqual({ t: DAY + 17 * HOUR_MS, value: 8.5 })
    // Hour 29: hours 6..29.
    expect(values[29]).toEqual({ t: DAY + 29 * HOUR_MS, value: 17.5 })
  })

  it('year: never an incident period', () => {
    expect(periodValues([hour(0, 100)], 'year', LATER)).toEqual([])
  })
})

describe('evaluationLookbackMs', () => {
  it('reaches back over the persistence and one period, a running mean over its 24 hours', () => {
    expect(evaluationLookbackMs('hour', 2)).toBe(3 * HOUR_MS)
    expect(evaluationLookbackMs('running24h', 1)).toBe(25 * HOUR_MS)
    expect(evaluationLookbackMs('day', 3)).toBe(4 * 24 * HOUR_MS + REGULATORY_DAY_OFFSET_MS)
    expect(evaluationLookbackMs('year', 1)).toBe(0)
  })
})

describe('siteRuleHours', () => {
  const aggregate = (i: number, mean: number, spread = 1): SiteHourAggregate => ({
    t: DAY + i * HOUR_MS,
    mean,
    min: mean - spread,
    max: mean + spread,
    n: 60,
    coverage: 1,
    valid: true,
  })

  it('marks the PM hours of a humid hour suspect and leaves NO2 alone', () => {
    const { hours, issues } = siteRuleHours({
      pm25: [aggregate(0, 20), aggregate(1, 20)],
      pm10: [aggregate(0, 30), aggregate(1, 30)],
      no2: [aggregate(0, 15), aggregate(1, 15)],
      rh: [aggregate(0, 95), aggregate(1, 60)],
    })
    expect(hours.get('pm25')?.map((h) => h.suspect)).toEqual([true, false])
    expect(hours.get('pm10')?.map((h) => h.suspect)).toEqual([true, false])
    expect(hours.get('no2')?.map((h) => h.suspect)).toEqual([false, false])
    expect(issues.get('pm25')?.get(DAY)).toEqual(['high_humidity'])
  })

  it('keeps the aggregate numbers and leaves metrics that were not given out', () => {
    const { hours } = siteRuleHours({ no2: [aggregate(0, 15)] })
    expect([...hours.keys()]).toEqual(['no2'])
    expect(hours.get('no2')).toEqual([{ t: DAY, mean: 15, coverage: 1, valid: true, suspect: false }])
  })
})
