import { describe, expect, it } from 'vitest'
import { DAY_MS, HOUR_MS, regulatoryDayStart } from './aggregation.ts'
import {
  diffIncidents,
  evaluateIncidents,
  exceedances,
  type Incident,
  IncidentError,
  liveCutoff,
  type PeriodValue,
  regulatoryYearStart,
} from './incidents.ts'
import type { ThresholdRule } from './thresholds.ts'

/** Fake times only: hour 0 of the series is 2026-01-12T00:00Z. */
const T0 = Date.UTC(2026, 0, 12)
const h = (i: number): number => T0 + i * HOUR_MS
const series = (values: readonly (number | null)[]): PeriodValue[] => values.map((value, i) => ({ t: h(i), value }))

const RULE: ThresholdRule = {
  id: 'test-no2-hour',
  pollutant: 'no2',
  period: 'hour',
  value: 100,
  allowedPerYear: 18,
  clearValue: 80,
  clearAfter: 3,
  persistence: 2,
  severity: 'warning',
  escalateAt: [150, 200],
}
const rule = (patch: Partial<ThresholdRule>): ThresholdRule => ({ ...RULE, ...patch })

/** [start, openedAt, end, closedAt] as hour indices (null = open). */
const shape = (incidents: Incident[]): (readonly [number, number, number | null, number | null])[] =>
  incidents.map((i) => [
    (i.start - T0) / HOUR_MS,
    (i.openedAt - T0) / HOUR_MS,
    i.end === null ? null : (i.end - T0) / HOUR_MS,
    i.closedAt === null ? null : (i.closedAt - T0) / HOUR_MS,
  ])

describe('evaluateIncidents: persistence', () => {
  it.each([1, 2, 3, 5])('persistence %i opens on the %i-th consecutive period above the value, not before', (n) => {
    const r = rule({ persistence: n })
    const before = evaluateIncidents(series(Array(n - 1).fill(120)), r)
    expect(before).toEqual([])
    expect(shape(evaluateIncidents(series(Array(n).fill(120)), r))).toEqual([[0, n - 1, null, null]])
  })

  it.each([
    ['a value at or below the limit resets the run', [120, 100, 120], []],
    ['a value exactly on the limit is not a breach (strictly greater)', [100, 100, 100], []],
    ['the run restarts after a reset', [120, 90, 120, 101], [[2, 3, null, null]]],
    ['a gap pauses the run: it neither opens nor resets', [120, null, 120], [[0, 2, null, null]]],
    ['gaps alone open nothing', [null, null, null, 120], []],
  ] as const)('%s', (_name, values, expected) => {
    expect(shape(evaluateIncidents(series(values), RULE))).toEqual(expected)
  })
})

describe('evaluateIncidents: hysteresis', () => {
  it('a value hovering around the limit gives ONE incident, not twenty', () => {
    // Opens, then 40 hours alternating just above and just below the limit (never at or below the clear
    // level 80), then clears.
    const hovering = Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? 101 + (i % 5) : 95 - (i % 7)))
    const incidents = evaluateIncidents(series([120, 120, ...hovering, 70, 70, 70]), RULE)
    expect(shape(incidents)).toEqual([[0, 1, 42, 44]])
  })

  it('the same series without hysteresis (clear at the limit after 1 h) flaps', () => {
    const hovering = Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? 101 : 95))
    const flapping = evaluateIncidents(series(hovering), rule({ clearValue: 100, clearAfter: 1, persistence: 1 }))
    expect(flapping).toHaveLength(20)
  })

  it.each([
    [
      'dips to just under the limit, above the clear level, do not close',
      [120, 120, 99, 81, 99, 81],
      [[0, 1, null, null]],
    ],
    ['fewer than clearAfter periods at the clear level do not close', [120, 120, 80, 80], [[0, 1, null, null]]],
    [
      'clearAfter periods at or below the clear level close; end = first of them',
      [120, 120, 80, 80, 80],
      [[0, 1, 2, 4]],
    ],
    ['a value above the clear level restarts the clear count', [120, 120, 70, 70, 90, 70, 70, 70], [[0, 1, 5, 7]]],
    ['gaps pause the clear count', [120, 120, 70, null, 70, null, null, 70], [[0, 1, 2, 7]]],
    ['a silent device leaves the incident open', [120, 120, 70, null, null, null, null, null], [[0, 1, null, null]]],
    [
      'after a close, a new breach is a new incident',
      [120, 120, 70, 70, 70, 130, 130],
      [
        [0, 1, 2, 4],
        [5, 6, null, null],
      ],
    ],
  ] as const)('%s', (_name, values, expected) => {
    expect(shape(evaluateIncidents(series(values), RULE))).toEqual(expected)
  })

  it('daily rules close after one clear day', () => {
    const daily = rule({ period: 'day', persistence: 1, clearAfter: 1, value: 50, clearValue: 40 })
    const days = [60, 45, 40].map((value, i) => ({ t: T0 + i * DAY_MS, value }))
    const [incident] = evaluateIncidents(days, daily)
    expect(incident?.end).toBe(T0 + 2 * DAY_MS)
  })
})

describe('evaluateIncidents: peak and escalation', () => {
  it('tracks the peak over the whole incident, the first of equal values winning', () => {
    const [incident] = evaluateIncidents(series([130, 120, 140, 110, 140, 99, 70, 70, 70]), RULE)
    expect(incident?.peak).toBe(140)
    expect(incident?.peakAt).toBe(h(2))
  })

  it('the peak includes the persistence run before the incident opened', () => {
    const [incident] = evaluateIncidents(series([145, 120, 130]), RULE)
    expect([incident?.peak, incident?.peakAt, incident?.openedAt]).toEqual([145, h(0), h(1)])
  })

  it.each([
    [
      'once per level, at the first value above it',
      [120, 160, 140, 170, 210, 190, 220],
      [
        [150, 1, 160],
        [200, 4, 210],
      ],
    ],
    [
      'a jump over two levels records both',
      [120, 250, 260],
      [
        [150, 1, 250],
        [200, 1, 250],
      ],
    ],
    ['a value exactly on a level does not escalate', [120, 150, 200], [[150, 2, 200]]],
    ['levels passed during the persistence run keep their time', [160, 120], [[150, 0, 160]]],
    ['falling and rising again does not escalate twice', [120, 160, 90, 160, 90, 160], [[150, 1, 160]]],
  ] as const)('escalates %s', (_name, values, expected) => {
    const [incident] = evaluateIncidents(series(values), RULE)
    expect(incident?.escalations.map((e) => [e.level, (e.at - T0) / HOUR_MS, e.value])).toEqual(expected)
  })

  it('a new incident escalates afresh', () => {
    const incidents = evaluateIncidents(series([160, 160, 70, 70, 70, 160, 160]), RULE)
    expect(incidents.map((i) => i.escalations.length)).toEqual([1, 1])
  })
})

describe('evaluateIncidents: input checks', () => {
  it.each([
    [
      'UNORDERED_HISTORY',
      [
        { t: h(1), value: 1 },
        { t: h(0), value: 1 },
      ],
    ],
    [
      'UNORDERED_HISTORY',
      [
        { t: h(1), value: 1 },
        { t: h(1), value: 1 },
      ],
    ],
    ['INVALID_VALUE', [{ t: h(0), value: Number.NaN }]],
  ] as const)('throws %s', (code, history) => {
    expect(() => evaluateIncidents(history, RULE)).toThrow(IncidentError)
    try {
      evaluateIncidents(history, RULE)
    } catch (error) {
      expect(error instanceof IncidentError && error.code).toBe(code)
    }
  })
})

describe('diffIncidents: live and late data', () => {
  /** Events as [type, hour index, retrospective, level?]. */
  const events = (before: Incident[], after: Incident[], cutoffHour: number) =>
    diffIncidents(before, after, { liveCutoff: h(cutoffHour) }).map((e) => [
      e.type,
      (e.at - T0) / HOUR_MS,
      e.retrospective,
      ...(e.level === undefined ? [] : [e.level]),
    ])

  it('a live breach opens, escalates, closes: live events, each once', () => {
    const values = [50, 120, 130, 160, 120, 70, 70, 70, 50]
    const seen: unknown[][] = []
    let stored: Incident[] = []
    // Replay hour by hour as the live pipeline would: evaluate, diff against the stored list, store.
    for (let n = 1; n <= values.length; n++) {
      const now = h(n) // hour n-1 has just completed
      const next = evaluateIncidents(series(values.slice(0, n)), RULE)
      seen.push(...events(stored, next, (liveCutoff(now, 'hour') - T0) / HOUR_MS))
      stored = next
    }
    expect(seen).toEqual([
      ['opened', 2, false], // peak 130 at opening: no change event
      ['escalated', 3, false, 150],
      ['changed', 3, false], // new peak 160
      ['closed', 7, false],
    ])
  })

  it('late data that completes a run opens the incident retrospectively', () => {
    const live = evaluateIncidents(series([120, null, null, 70, 70]), rule({ persistence: 2 }))
    expect(live).toEqual([])
    const late = evaluateIncidents(series([120, 130, 125, 70, 70]), rule({ persistence: 2 }))
    expect(events(live, late, 10)).toEqual([['opened', 1, true]])
  })

  it('late data before an open incident moves its start: changed, retrospective', () => {
    const live = evaluateIncidents(series([null, null, 120, 120, 120]), RULE)
    const late = evaluateIncidents(series([120, 120, 120, 120, 120]), RULE)
    expect(shape(live)).toEqual([[2, 3, null, null]])
    expect(events(live, late, 3)).toEqual([['changed', 0, true]])
  })

  it('late data can open, escalate and close a whole incident in the past', () => {
    const late = evaluateIncidents(series([120, 160, 70, 70, 70, 10, 10, 10, 10, 10]), RULE)
    expect(events([], late, 8)).toEqual([
      ['opened', 1, true],
      ['escalated', 1, true, 150],
      ['closed', 4, true],
    ])
  })

  it('late low values can withdraw an incident', () => {
    const live = evaluateIncidents(series([120, null, 120]), RULE)
    const late = evaluateIncidents(series([120, 50, 120]), RULE)
    expect(live).toHaveLength(1)
    expect(events(live, late, 10)).toEqual([['withdrawn', 0, true]])
  })

  it('late data that joins two incidents changes the first and withdraws the second', () => {
    const live = evaluateIncidents(series([120, 120, 70, 70, 70, 120, 120]), RULE)
    const late = evaluateIncidents(series([120, 120, 70, 90, 70, 120, 120]), RULE)
    expect(live).toHaveLength(2)
    expect(late).toHaveLength(1)
    expect(events(live, late, 20)).toEqual([
      ['changed', 2, true],
      ['withdrawn', 5, true],
    ])
  })

  it('the same list gives no events', () => {
    const list = evaluateIncidents(series([120, 160, 120, 70, 70, 70, 120, 120]), RULE)
    expect(diffIncidents(list, list, { liveCutoff: 0 })).toEqual([])
  })

  it('liveCutoff is two periods before now', () => {
    expect(liveCutoff(h(10), 'hour')).toBe(h(8))
    expect(liveCutoff(T0 + 10 * DAY_MS, 'day')).toBe(T0 + 8 * DAY_MS)
  })
})

describe('exceedances', () => {
  const DAILY = { period: 'day', value: 50, allowedPerYear: 35 } as const
  const day2025 = (i: number): number => regulatoryYearStart(2025) + i * DAY_MS

  it('starts the year in UTC+1 and aligns with regulatory days', () => {
    expect(new Date(regulatoryYearStart(2025)).toISOString()).toBe('2024-12-31T23:00:00.000Z')
    expect(regulatoryDayStart(Date.UTC(2025, 0, 1, 12))).toBe(regulatoryYearStart(2025))
  })

  it('counts valid days strictly above the value, with coverage', () => {
    const values: PeriodValue[] = [
      { t: day2025(-1), value: 200 }, // 31 Dec 2024 (UTC+1): other year
      { t: day2025(0), value: 50 }, // on the value: not an exceedance
      { t: day2025(1), value: 50.01 },
      { t: day2025(2), value: null }, // not valid
      { t: day2025(3), value: 80 },
      { t: day2025(3), value: 80 }, // repeated period counts once
      { t: day2025(364), value: 51 }, // 31 Dec 2025
      { t: day2025(365), value: 300 }, // 1 Jan 2026
    ]
    expect(exceedances(values, DAILY, 2025)).toEqual({
      count: 3,
      allowed: 35,
      exceeded: false,
      validPeriods: 4,
      expectedPeriods: 365,
      coverage: 4 / 365,
      sufficientCoverage: false,
    })
  })

  it.each([
    [35, 35, false],
    [36, 35, true],
  ])('%i exceedances against %i allowed: exceeded %s', (n, allowed, exceeded) => {
    const values = Array.from({ length: 365 }, (_, i) => ({ t: day2025(i), value: i < n ? 60 : 20 }))
    const result = exceedances(values, { ...DAILY, allowedPerYear: allowed }, 2025)
    expect([result.count, result.exceeded, result.coverage, result.sufficientCoverage]).toEqual([n, exceeded, 1, true])
  })

  it.each([
    [2024, 8784],
    [2025, 8760],
  ])('hourly rules expect every hour of %i (%i)', (year, expected) => {
    const from = regulatoryYearStart(year)
    const values = Array.from({ length: Math.ceil(expected * 0.85) }, (_, i) => ({
      t: from + i * HOUR_MS,
      value: i === 0 ? 201 : 10,
    }))
    const result = exceedances(values, { period: 'hour', value: 200, allowedPerYear: 18 }, year)
    expect([result.expectedPeriods, result.count, result.sufficientCoverage]).toEqual([expected, 1, true])
  })

  it('an annual rule has one period, and any exceedance exceeds it', () => {
    const result = exceedances(
      [{ t: regulatoryYearStart(2025), value: 41 }],
      { period: 'year', value: 40, allowedPerYear: null },
      2025,
    )
    expect([result.count, result.exceeded, result.coverage]).toEqual([1, true, 1])
  })

  it('refuses running 24-h means (display only, reference §3)', () => {
    expect(() => exceedances([], { period: 'running24h', value: 50, allowedPerYear: null }, 2025)).toThrow(
      expect.objectContaining({ code: 'NOT_COUNTABLE' }),
    )
  })
})
