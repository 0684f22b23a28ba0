import { describe, expect, it } from 'vitest'
import { DAY_MS, HOUR_MS } from './aggregation.ts'
import {
  annualMean,
  countableValues,
  countExceedances,
  profileYearWindow,
  regulatoryYearWindow,
  type TimeWindow,
  yearExceedances,
} from './annual-exceedances.ts'
import { IncidentError } from './incidents.ts'
import type { RuleHour } from './rule-values.ts'
import { PROFILES, profileById, profileValidOn } from './thresholds.ts'

/** 2025 in UTC+1 starts at 23:00 UTC on 31 December 2024. */
const Y2025 = Date.parse('2024-12-31T23:00:00Z')
const LONG_AFTER = Date.parse('2027-01-01T00:00:00Z')

function hour(t: number, mean: number | null, extra: Partial<RuleHour> = {}): RuleHour {
  return { t, mean, coverage: 1, valid: true, suspect: false, ...extra }
}

/** `days` whole UTC+1 days of hourly values from `start`, each hour's value from `value(day, hourOfDay)`. */
function days(start: number, count: number, value: (day: number, h: number) => number): RuleHour[] {
  const hours: RuleHour[] = []
  for (let d = 0; d < count; d++) {
    for (let h = 0; h < 24; h++) hours.push(hour(start + d * DAY_MS + h * HOUR_MS, value(d, h)))
  }
  return hours
}

function profile(id: string) {
  const found = profileById(id)
  if (found === undefined) throw new Error(`no profile ${id}`)
  return found
}

describe('regulatoryYearWindow and profileYearWindow', () => {
  it('runs a year from 23:00 UTC on 31 December, 8 760 hours (8 784 in a leap year)', () => {
    expect(regulatoryYearWindow(2025)).toEqual({ from: Y2025, to: Date.parse('2025-12-31T23:00:00Z') })
    const leap = regulatoryYearWindow(2028)
    expect((leap.to - leap.from) / HOUR_MS).toBe(8784)
  })

  it('clips a profile to the days it applies, and is null exactly when profileValidOn holds on no day', () => {
    expect(profileYearWindow(profile('se-mkn'), 2025)).toEqual(regulatoryYearWindow(2025))
    expect(profileYearWindow(profile('eu2008-50'), 2029)).toEqual(regulatoryYearWindow(2029))
    expect(profileYearWindow(profile('eu2008-50'), 2030)).toBeNull()
    expect(profileYearWindow(profile('eu2024-2881'), 2029)).toBeNull()
    expect(profileYearWindow(profile('eu2024-2881'), 2030)).toEqual(regulatoryYearWindow(2030))
    // Valid from 11 December 2026: 00:00 UTC+1 that day.
    expect(profileYearWindow(profile('eu2024-2881-thresholds'), 2026)).toEqual({
      from: Date.parse('2026-12-10T23:00:00Z'),
      to: Date.parse('2026-12-31T23:00:00Z'),
    })
    for (const p of PROFILES) {
      for (const year of [2025, 2026, 2029, 2030]) {
        const anyDay = profileValidOn(p, `${year}-01-01`) || profileValidOn(p, `${year}-12-31`)
        expect(profileYearWindow(p, year) !== null, `${p.id} ${year}`).toBe(anyDay)
      }
    }
  })
})

describe('annualMean', () => {
  it('averages the counted hours only: invalid, suspect and not yet final hours are left out', () => {
    const window = regulatoryYearWindow(2025)
    const hours = [
      hour(Y2025 - HOUR_MS, 1000), // the hour before the year
      hour(Y2025, 10),
      hour(Y2025 + HOUR_MS, 20),
      hour(Y2025 + 2 * HOUR_MS, 500, { suspect: true }),
      hour(Y2025 + 3 * HOUR_MS, 500, { valid: false, coverage: 0.5 }),
      hour(Y2025 + 4 * HOUR_MS, null),
      hour(Y2025 + 5 * HOUR_MS, 30),
      hour(window.to, 1000), // the first hour of the next year
    ]
    expect(annualMean(hours, window, LONG_AFTER)).toEqual({ mean: 20, countedHours: 3, expectedHours: 8760 })
    // At 04:30 UTC+1 on 1 January the 05:00 hour has not begun: not final, not counted (coverage 1 would make it
    // final, so give it a partial one).
    const partial = hours.map((h) => (h.t === Y2025 + 5 * HOUR_MS ? { ...h, coverage: 0.8 } : h))
    expect(annualMean(partial, window, Y2025 + 5 * HOUR_MS + 30 * 60_000).countedHours).toBe(2)
    expect(annualMean([], window, LONG_AFTER)).toEqual({ mean: null, countedHours: 0, expectedHours: 8760 })
  })
})

describe('yearExceedances', () => {
  const pm10Year = { period: 'year', value: 40, allowedPerYear: null } as const
  const pm10Day = { period: 'day', value: 50, allowedPerYear: 35 } as const

  it('year rule: one period, the mean of the counted hours, strictly above the value, coverage in hours', () => {
    // 320 days at 40 exactly: not above 40.
    const atLimit = days(Y2025, 320, () => 40)
    expect(yearExceedances(atLimit, pm10Year, 2025, LONG_AFTER)).toEqual({
      count: 0,
      allowed: null,
      exceeded: false,
      validPeriods: 320 * 24,
      expectedPeriods: 8760,
      coverage: (320 * 24) / 8760,
      sufficientCoverage: true,
      annualMean: 40,
    })
    // One hour more at 64: (7680 × 40 + 64) / 7681 > 40.
    const above = [...atLimit, hour(Y2025 + 320 * DAY_MS, 64)]
    const result = yearExceedances(above, pm10Year, 2025, LONG_AFTER)
    expect(result).toMatchObject({ count: 1, exceeded: true, validPeriods: 7681 })
    expect(result.annualMean).toBeCloseTo((7680 * 40 + 64) / 7681, 10)
  })

  it('flags a year below 85 % coverage as insufficient (indicative), at or above it as sufficient', () => {
    // 85 % of 8 760 hours is 7 446: 310 whole days and 6 hours.
    const counted = [...days(Y2025, 310, () => 10), ...days(Y2025 + 310 * DAY_MS, 1, () => 10).slice(0, 6)]
    expect(counted).toHaveLength(7446)
    expect(yearExceedances(counted, pm10Year, 2025, LONG_AFTER).sufficientCoverage).toBe(true)
    expect(yearExceedances(counted.slice(1), pm10Year, 2025, LONG_AFTER).sufficientCoverage).toBe(false)
  })

  it('day rule: counts valid days above the value, expected days of the whole year even mid-year', () => {
    // Days 3, 4 and 9 above 50; day 6 has only 17 counted hours (invalid), however high.
    const hours = days(Y2025, 12, (d) => ([3, 4, 9].includes(d) ? 51 : d === 6 ? 400 : 20)).map((h) =>
      h.t >= Y2025 + 6 * DAY_MS && h.t < Y2025 + 6 * DAY_MS + 7 * HOUR_MS ? { ...h, suspect: true } : h,
    )
    const now = Y2025 + 20 * DAY_MS
    expect(yearExceedances(hours, pm10Day, 2025, now)).toEqual({
      count: 3,
      allowed: 35,
      exceeded: false,
      validPeriods: 11,
      expectedPeriods: 365,
      coverage: 11 / 365,
      sufficientCoverage: false,
    })
  })

  it('counts only inside the window a profile applies, with the window’s periods expected', () => {
    // From 11 December 2026 (UTC+1): days before it do not count, the 21 days from it are expected.
    const window = profileYearWindow(profile('eu2024-2881-thresholds'), 2026) as TimeWindow
    const rule = { period: 'day', value: 90, allowedPerYear: null } as const
    const hours = days(window.from - 5 * DAY_MS, 10, () => 100)
    const result = yearExceedances(hours, rule, 2026, LONG_AFTER, window)
    expect(result).toMatchObject({ count: 5, validPeriods: 5, expectedPeriods: 21, exceeded: true })
    expect(result.coverage).toBeCloseTo(5 / 21, 12)
    const hourRule = { period: 'hour', value: 90, allowedPerYear: null } as const
    expect(yearExceedances(hours, hourRule, 2026, LONG_AFTER, window)).toMatchObject({
      count: 120,
      expectedPeriods: 21 * 24,
    })
  })

  it('gives the same from values made once per pollutant, period and window (countableValues)', () => {
    const hours = days(Y2025, 40, (d, h) => 10 + ((d * 7 + h * 3) % 60))
    const hourly = countableValues(hours, 'hour', regulatoryYearWindow(2025), LONG_AFTER)
    expect(countableValues(hours, 'year', regulatoryYearWindow(2025), LONG_AFTER)).toEqual(hourly)
    for (const rule of [pm10Year, pm10Day, { period: 'hour', value: 55, allowedPerYear: 18 } as const]) {
      const values = countableValues(hours, rule.period, regulatoryYearWindow(2025), LONG_AFTER)
      expect(countExceedances(values, rule, 2025)).toEqual(yearExceedances(hours, rule, 2025, LONG_AFTER))
    }
    expect(yearExceedances(hours, { period: 'hour', value: 55, allowedPerYear: 18 }, 2025, LONG_AFTER).count).toBe(
      hours.filter((h) => (h.mean ?? 0) > 55).length,
    )
  })

  it('refuses running 24-h rules and a window outside the year', () => {
    const running = { period: 'running24h', value: 50, allowedPerYear: null } as const
    expect(() => yearExceedances([], running, 2025, LONG_AFTER)).toThrow(IncidentError)
    expect(() => countExceedances([], running, 2025)).toThrow(IncidentError)
    const next = regulatoryYearWindow(2026)
    expect(() => yearExceedances([], pm10Day, 2025, LONG_AFTER, next)).toThrow(RangeError)
  })
})
