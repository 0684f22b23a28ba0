import { describe, expect, it } from 'vitest'
import {
  coverageOf,
  DEVICE_HEALTH,
  type DeviceHealthInput,
  deviceHealth,
  HEALTH_WINDOW_MS,
  OFFLINE_AFTER_INTERVALS,
  OFFLINE_MIN_MS,
  offlineAfterMs,
  SUSPECT_BELOW_COVERAGE,
} from './health.ts'

const MINUTE_MS = 60_000
const HOUR_MS = 60 * MINUTE_MS
/** A fixed "now" (2026-01-15T08:00:00Z) so no test depends on the wall clock. */
const NOW = Date.UTC(2026, 0, 15, 8)

describe('constants', () => {
  it('match issue 3: offline after max(3 intervals, 10 min); suspect below 75 % over 24 h', () => {
    expect(OFFLINE_AFTER_INTERVALS).toBe(3)
    expect(OFFLINE_MIN_MS).toBe(10 * MINUTE_MS)
    expect(SUSPECT_BELOW_COVERAGE).toBe(0.75)
    expect(HEALTH_WINDOW_MS).toBe(24 * HOUR_MS)
    expect([...DEVICE_HEALTH]).toEqual(['ok', 'suspect', 'offline', 'never'])
  })
})

describe('offlineAfterMs', () => {
  it.each([
    // interval s, threshold ms
    [10, OFFLINE_MIN_MS], // 30 s < 10 min: the minimum
    [60, OFFLINE_MIN_MS], // 3 min < 10 min
    [199, OFFLINE_MIN_MS], // 597 s
    [200, OFFLINE_MIN_MS], // exactly 10 min either way
    [201, 603_000], // 3 intervals just over the minimum
    [300, 15 * MINUTE_MS],
    [3600, 3 * HOUR_MS],
  ])('interval %i s -> %i ms', (intervalS, expected) => {
    expect(offlineAfterMs(intervalS)).toBe(expected)
  })
})

describe('deviceHealth', () => {
  const at = (silenceMs: number, intervalS: number, coverage: number | null = 1): DeviceHealthInput => ({
    lastTs: NOW - silenceMs,
    intervalS,
    now: NOW,
    coverage,
  })

  it.each([1, 0, 0.5, null])('never reported (coverage %s) -> never', (coverage) => {
    expect(deviceHealth({ lastTs: null, intervalS: 60, now: NOW, coverage })).toBe('never')
  })

  it('a reading at epoch 0 is a reading, not "never"', () => {
    expect(deviceHealth({ lastTs: 0, intervalS: 60, now: 5 * MINUTE_MS, coverage: null })).toBe('ok')
    expect(deviceHealth({ lastTs: 0, intervalS: 60, now: 11 * MINUTE_MS, coverage: null })).toBe('offline')
  })

  it.each([
    // interval s, silence ms, expected; the threshold is offlineAfterMs(interval), exactly at it is still online
    [300, 0, 'ok'],
    [300, 15 * MINUTE_MS - 1, 'ok'],
    [300, 15 * MINUTE_MS, 'ok'],
    [300, 15 * MINUTE_MS + 1, 'offline'],
    [3600, 3 * HOUR_MS, 'ok'],
    [3600, 3 * HOUR_MS + 1, 'offline'],
    [201, 603_000, 'ok'],
    [201, 603_001, 'offline'],
    // Short intervals: the 10-minute minimum, not 3 intervals.
    [10, 30_000 + 1, 'ok'],
    [10, 5 * MINUTE_MS, 'ok'],
    [10, 10 * MINUTE_MS, 'ok'],
    [10, 10 * MINUTE_MS + 1, 'offline'],
    [60, 3 * MINUTE_MS + 1, 'ok'],
    [60, 10 * MINUTE_MS, 'ok'],
    [60, 10 * MINUTE_MS + 1, 'offline'],
    [200, 10 * MINUTE_MS, 'ok'],
    [200, 10 * MINUTE_MS + 1, 'offline'],
    [60, 24 * HOUR_MS, 'offline'],
  ] as const)('interval %i s, silent for %i ms -> %s', (intervalS, silenceMs, expected) => {
    expect(deviceHealth(at(silenceMs, intervalS))).toBe(expected)
  })

  it.each([
    // coverage, expected (device online)
    [1, 'ok'],
    [0.9, 'ok'],
    [SUSPECT_BELOW_COVERAGE, 'ok'],
    [0.7499, 'suspect'],
    [0.5, 'suspect'],
    [0, 'suspect'],
    [null, 'ok'],
  ] as const)('online with coverage %s -> %s', (coverage, expected) => {
    expect(deviceHealth(at(MINUTE_MS, 60, coverage))).toBe(expected)
  })

  it.each([0, 0.5, 1, null])('offline wins over any coverage (%s)', (coverage) => {
    expect(deviceHealth(at(OFFLINE_MIN_MS + 1, 60, coverage))).toBe('offline')
  })

  it('a reading stamped slightly in the future (device clock ahead) is online', () => {
    expect(deviceHealth({ lastTs: NOW + 30_000, intervalS: 60, now: NOW, coverage: 1 })).toBe('ok')
  })
})

describe('coverageOf', () => {
  const from = NOW - HEALTH_WINDOW_MS
  /** Placed long before the window. */
  const LONG_AGO = from - 30 * 24 * HOUR_MS

  it.each([
    // samples, interval s, expected: a full 24 h window
    [1440, 60, 1],
    [1080, 60, 0.75],
    [1079, 60, 1079 / 1440],
    [720, 60, 0.5],
    [0, 60, 0],
    [288, 300, 1],
    [24, 3600, 1],
    [18, 3600, 0.75],
    [8640, 10, 1],
  ])('%i samples at %i s over the full day -> %d', (samples, intervalS, expected) => {
    expect(coverageOf(samples, intervalS, from, LONG_AGO, NOW)).toBeCloseTo(expected, 12)
  })

  it.each([1441, 2000, 1_000_000])('caps %i samples (duplicates, batch replays) at 1', (samples) => {
    expect(coverageOf(samples, 60, from, LONG_AGO, NOW)).toBe(1)
  })

  it.each([
    // placed this long before now, samples, expected: only the time the device stood there counts
    [6 * HOUR_MS, 360, 1],
    [6 * HOUR_MS, 270, 0.75],
    [6 * HOUR_MS, 180, 0.5],
    [6 * HOUR_MS, 0, 0],
    [HOUR_MS, 60, 1],
    [HOUR_MS, 30, 0.5],
    [10 * MINUTE_MS, 10, 1],
    [HEALTH_WINDOW_MS, 1440, 1], // placed exactly at the window start
  ])('placement starting %i ms before now with %i samples -> %d', (sinceAgo, samples, expected) => {
    expect(coverageOf(samples, 60, from, NOW - sinceAgo, NOW)).toBeCloseTo(expected, 12)
  })

  it('a placement inside the window is not penalised for the hours before it', () => {
    const since = NOW - 6 * HOUR_MS
    // 360 readings over 6 h would be 25 % of a full day, but it is all the device could send.
    expect(coverageOf(360, 60, from, since, NOW)).toBe(1)
    expect(coverageOf(360, 60, from, LONG_AGO, NOW)).toBe(0.25)
  })

  it.each([
    // interval s, placed this long before now: shorter than one interval -> cannot be judged
    [60, 0],
    [60, 1],
    [60, 59_999],
    [300, 4 * MINUTE_MS],
    [3600, 59 * MINUTE_MS],
  ])('interval %i s, placed %i ms ago: shorter than one interval -> null', (intervalS, sinceAgo) => {
    expect(coverageOf(0, intervalS, from, NOW - sinceAgo, NOW)).toBeNull()
    expect(coverageOf(1, intervalS, from, NOW - sinceAgo, NOW)).toBeNull()
  })

  it('exactly one interval is judged: one reading is 100 %, none is 0 %', () => {
    expect(coverageOf(1, 60, from, NOW - MINUTE_MS, NOW)).toBe(1)
    expect(coverageOf(0, 60, from, NOW - MINUTE_MS, NOW)).toBe(0)
  })

  it.each([
    // window length ms, interval s
    [0, 60],
    [30_000, 60],
    [59_999, 60],
    [HOUR_MS - 1, 3600],
  ])('a window of %i ms with a %i s interval -> null', (windowMs, intervalS) => {
    expect(coverageOf(0, intervalS, NOW - windowMs, LONG_AGO, NOW)).toBeNull()
    expect(coverageOf(5, intervalS, NOW - windowMs, LONG_AGO, NOW)).toBeNull()
  })

  it('a window of exactly one interval is judged', () => {
    expect(coverageOf(1, 3600, NOW - HOUR_MS, LONG_AGO, NOW)).toBe(1)
  })

  it('a placement that starts after now (or a window that starts after now) cannot be judged', () => {
    expect(coverageOf(0, 60, from, NOW + HOUR_MS, NOW)).toBeNull()
    expect(coverageOf(0, 60, NOW + HOUR_MS, LONG_AGO, NOW)).toBeNull()
  })

  it('feeds deviceHealth: a day at 74 % is suspect, 75 % is ok, a fresh placement is ok', () => {
    const health = (coverage: number | null): string =>
      deviceHealth({ lastTs: NOW - MINUTE_MS, intervalS: 60, now: NOW, coverage })
    expect(health(coverageOf(1065, 60, from, LONG_AGO, NOW))).toBe('suspect')
    expect(health(coverageOf(1080, 60, from, LONG_AGO, NOW))).toBe('ok')
    expect(health(coverageOf(0, 60, from, NOW - 30_000, NOW))).toBe('ok')
  })
})
