import { describe, expect, it } from 'vitest'
import {
  checkPeriod,
  defaultPeriod,
  MAX_PERIOD_DAYS,
  monthPeriod,
  periodDays,
  periodKindOf,
  termOf,
  termPeriod,
  todayOf,
  yearPeriod,
} from './report-period.ts'

const TODAY = '2026-11-30'

describe('report periods', () => {
  it('takes today as the UTC+1 date', () => {
    expect(todayOf(Date.parse('2026-11-30T22:59:59Z'))).toBe('2026-11-30')
    expect(todayOf(Date.parse('2026-11-30T23:00:00Z'))).toBe('2026-12-01')
  })

  it('makes whole months, leap February included, and ends a month in progress today', () => {
    expect(monthPeriod('2026-02', TODAY)).toEqual({ from: '2026-02-01', to: '2026-02-28' })
    expect(monthPeriod('2028-02', '2029-01-01')).toEqual({ from: '2028-02-01', to: '2028-02-29' })
    expect(monthPeriod('2026-11', '2026-11-17')).toEqual({ from: '2026-11-01', to: '2026-11-17' })
    expect(monthPeriod('2026-13', TODAY)).toBeNull()
    expect(monthPeriod('nov', TODAY)).toBeNull()
  })

  it('makes school terms from the stated settings, and calendar years', () => {
    expect(termPeriod('ht', 2026, '2027-01-01')).toEqual({ from: '2026-08-15', to: '2026-12-22' })
    expect(termPeriod('vt', 2026, TODAY)).toEqual({ from: '2026-01-08', to: '2026-06-14' })
    expect(termPeriod('ht', 2026, TODAY)).toEqual({ from: '2026-08-15', to: TODAY })
    expect(yearPeriod(2025, TODAY)).toEqual({ from: '2025-01-01', to: '2025-12-31' })
    expect(termOf('2026-09-01')).toEqual({ term: 'ht', year: 2026 })
    expect(termOf('2026-03-01')).toEqual({ term: 'vt', year: 2026 })
  })

  it('defaults to the last whole month, across a new year too', () => {
    expect(defaultPeriod(TODAY)).toEqual({ from: '2026-10-01', to: '2026-10-31' })
    expect(defaultPeriod('2027-01-05')).toEqual({ from: '2026-12-01', to: '2026-12-31' })
  })

  it('counts both ends and refuses invalid, reversed and too long periods', () => {
    expect(periodDays({ from: '2026-01-05', to: '2026-02-22' })).toBe(49)
    expect(checkPeriod({ from: '2026-01-05', to: '2026-02-22' })).toBeNull()
    expect(checkPeriod({ from: '2026-02-30', to: '2026-03-01' })).toBe('invalid')
    expect(checkPeriod({ from: '2026-03-02', to: '2026-03-01' })).toBe('reversed')
    expect(periodDays({ from: '2025-01-01', to: '2026-02-04' })).toBe(MAX_PERIOD_DAYS)
    expect(checkPeriod({ from: '2025-01-01', to: '2026-02-04' })).toBeNull()
    expect(checkPeriod({ from: '2025-01-01', to: '2026-02-05' })).toBe('too_long')
  })

  it('recognises which preset a period is', () => {
    expect(periodKindOf({ from: '2026-02-01', to: '2026-02-28' }, TODAY)).toBe('month')
    expect(periodKindOf({ from: '2026-08-15', to: '2026-11-30' }, TODAY)).toBe('term')
    expect(periodKindOf({ from: '2025-01-01', to: '2025-12-31' }, TODAY)).toBe('year')
    expect(periodKindOf({ from: '2026-01-05', to: '2026-02-22' }, TODAY)).toBe('custom')
  })
})
