import { describe, expect, it } from 'vitest'
import {
  HIGH_HUMIDITY_PERCENT,
  NO2_MIN_HOURLY_MEAN_UG_M3,
  PM_SENSOR_MAX_UG_M3,
  type QcHour,
  QUALITY_ISSUES,
  qualityIssues,
  STUCK_MIN_HOURS,
} from './quality.ts'

const H = 3_600_000
/** 2024-11-04T00:00:00Z, a Monday. */
const T0 = Date.UTC(2024, 10, 4)

function hour(i: number, mean: number | null, opts: { min?: number | null; max?: number | null; n?: number } = {}) {
  return { t: T0 + i * H, mean, min: opts.min === undefined ? mean : opts.min, max: opts.max ?? mean, n: opts.n ?? 60 }
}
/** A flat hour: 60 identical samples. */
const flat = (i: number, v: number): QcHour => hour(i, v)
/** A normal hour: samples spread ±1 around the mean. */
const varied = (i: number, v: number): QcHour => hour(i, v, { min: v - 1, max: v + 1 })

function flagged(result: ReturnType<typeof qualityIssues>, metric: 'pm1' | 'pm25' | 'pm10' | 'no2') {
  return [...(result.get(metric)?.entries() ?? [])].map(([t, issues]) => [(t - T0) / H, issues])
}

describe('quality constants (reference §4.1, §5.2)', () => {
  it('match the reference', () => {
    expect(STUCK_MIN_HOURS).toEqual({ pm1: 2, pm25: 2, pm10: 2, no2: 6 })
    expect(PM_SENSOR_MAX_UG_M3).toBe(500)
    expect(HIGH_HUMIDITY_PERCENT).toBe(90)
    expect(NO2_MIN_HOURLY_MEAN_UG_M3).toBe(-5)
    expect(QUALITY_ISSUES).toEqual(['stuck', 'out_of_range', 'high_humidity', 'pm_order'])
  })
})

describe('stuck', () => {
  it('flags every hour of a PM run of 2 h of the same non-zero value, not a single flat hour', () => {
    const result = qualityIssues({
      pm25: [varied(0, 8), flat(1, 12.3), flat(2, 12.3), varied(3, 9), flat(4, 7), varied(5, 8)],
    })
    expect(flagged(result, 'pm25')).toEqual([
      [1, ['stuck']],
      [2, ['stuck']],
    ])
  })

  it('needs 6 h for NO2: 5 h is not stuck, 6 h is', () => {
    const five = [0, 1, 2, 3, 4].map((i) => flat(i, 14))
    expect(qualityIssues({ no2: five }).get('no2')).toBeUndefined()
    const six = [0, 1, 2, 3, 4, 5].map((i) => flat(i, 14))
    expect(flagged(qualityIssues({ no2: six }), 'no2').map(([i]) => i)).toEqual([0, 1, 2, 3, 4, 5])
    // The same 2 h run that flags PM does not flag NO2.
    expect(qualityIssues({ no2: [flat(0, 14), flat(1, 14)] }).size).toBe(0)
  })

  it('does not flag runs of zero (clean air reads 0)', () => {
    const zeros = [0, 1, 2, 3, 4, 5, 6, 7].map((i) => flat(i, 0))
    expect(qualityIssues({ pm25: zeros, pm10: zeros, no2: zeros }).size).toBe(0)
  })

  it('breaks a run on a different value, a gap, a one-sample hour or an hour with variance', () => {
    expect(qualityIssues({ pm10: [flat(0, 20), flat(1, 21)] }).size).toBe(0)
    expect(qualityIssues({ pm10: [flat(0, 20), flat(2, 20)] }).size).toBe(0)
    expect(qualityIssues({ pm10: [flat(0, 20), hour(1, 20, { n: 1 }), flat(2, 20)] }).size).toBe(0)
    expect(qualityIssues({ pm10: [flat(0, 20), varied(1, 20), flat(2, 20)] }).size).toBe(0)
    expect(qualityIssues({ pm10: [flat(0, 20), hour(1, null, { n: 0 }), flat(2, 20)] }).size).toBe(0)
  })

  it('sorts an unordered series before looking for runs', () => {
    const result = qualityIssues({ pm1: [flat(2, 5), flat(1, 5), varied(0, 3)] })
    expect(flagged(result, 'pm1')).toEqual([
      [1, ['stuck']],
      [2, ['stuck']],
    ])
  })

  it('a long NO2 run after a shorter one flags only the long one', () => {
    const hours = [flat(0, 9), flat(1, 9), flat(2, 9), varied(3, 9), ...[4, 5, 6, 7, 8, 9].map((i) => flat(i, 9))]
    expect(flagged(qualityIssues({ no2: hours }), 'no2').map(([i]) => i)).toEqual([4, 5, 6, 7, 8, 9])
  })
})

describe('out_of_range', () => {
  it('flags a PM hour whose max passes 500 µg/m³ even when the mean is plausible', () => {
    const result = qualityIssues({
      pm10: [hour(0, 120, { min: 10, max: 500 }), hour(1, 140, { min: 10, max: 501 })],
    })
    expect(flagged(result, 'pm10')).toEqual([[1, ['out_of_range']]])
  })

  it('flags an NO2 hour mean below −5 µg/m³ but not slight negative noise', () => {
    const result = qualityIssues({
      no2: [hour(0, -4.9, { min: -15, max: 3 }), hour(1, -5.1, { min: -15, max: 3 }), hour(2, 3, { min: -18, max: 9 })],
    })
    expect(flagged(result, 'no2')).toEqual([[1, ['out_of_range']]])
  })
})

describe('high_humidity', () => {
  it('flags the PM hours of an hour with RH mean above 90 %, never NO2', () => {
    const result = qualityIssues({
      rh: [varied(0, 90), varied(1, 90.5), varied(2, 85)],
      pm1: [varied(0, 5), varied(1, 6), varied(2, 5)],
      pm25: [varied(0, 8), varied(1, 9), varied(2, 8)],
      pm10: [varied(0, 12), varied(1, 14), varied(2, 12)],
      no2: [varied(0, 20), varied(1, 22), varied(2, 20)],
    })
    for (const metric of ['pm1', 'pm25', 'pm10'] as const) {
      expect(flagged(result, metric)).toEqual([[1, ['high_humidity']]])
    }
    expect(result.has('no2')).toBe(false)
  })

  it('flags nothing for a humid hour without PM data', () => {
    expect(qualityIssues({ rh: [varied(0, 99)], pm25: [hour(0, null, { n: 0 })] }).size).toBe(0)
  })
})

describe('pm_order', () => {
  it('flags pm25 and pm10 when pm25 exceeds pm10 by more than 1 µg/m³ AND 10 %', () => {
    const result = qualityIssues({
      // hour 0: +0.9 (under 1 µg/m³); hour 1: +1.5 on 20 (7.5 %); hour 2: +3 on 20 (15 %)
      pm25: [varied(0, 5.9), varied(1, 21.5), varied(2, 23)],
      pm10: [varied(0, 5), varied(1, 20), varied(2, 20)],
    })
    expect(flagged(result, 'pm25')).toEqual([[2, ['pm_order']]])
    expect(flagged(result, 'pm10')).toEqual([[2, ['pm_order']]])
  })

  it('checks pm1 against pm25 as well (reference §4.1 PM1 ≤ PM2.5 ≤ PM10)', () => {
    const result = qualityIssues({ pm1: [varied(0, 15)], pm25: [varied(0, 10)], pm10: [varied(0, 30)] })
    expect(flagged(result, 'pm1')).toEqual([[0, ['pm_order']]])
    expect(flagged(result, 'pm25')).toEqual([[0, ['pm_order']]])
    expect(result.has('pm10')).toBe(false)
  })

  it('lists several issues of one hour once each, in QUALITY_ISSUES order', () => {
    const result = qualityIssues({
      rh: [varied(0, 95), varied(1, 95)],
      pm25: [flat(0, 40), flat(1, 40)],
      pm10: [varied(0, 20), varied(1, 20)],
    })
    expect(flagged(result, 'pm25')).toEqual([
      [0, ['stuck', 'high_humidity', 'pm_order']],
      [1, ['stuck', 'high_humidity', 'pm_order']],
    ])
  })
})

it('returns an empty map for clean data', () => {
  const hours = (v: number) => [0, 1, 2, 3].map((i) => varied(i, v))
  expect(qualityIssues({ pm1: hours(4), pm25: hours(6), pm10: hours(12), no2: hours(18), rh: hours(70) }).size).toBe(0)
})
