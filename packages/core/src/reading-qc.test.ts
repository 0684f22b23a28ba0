import { readdirSync, readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { HOUR_MS } from './aggregation.ts'
import { expectTablesInDoc } from './doc-tables.testing.ts'
import { METRICS, type Metric } from './metrics.ts'
import {
  checkReadings,
  flagBit,
  flagBitIndex,
  flagsOf,
  maskLevel,
  orMasks,
  QC_CONTEXT_AFTER_MS,
  QC_CONTEXT_BEFORE_MS,
  QC_LEVELS,
  QcMaskError,
  type QcSample,
  qcLevel,
  qcSilenceMs,
  READING_FLAG_INFO,
  READING_FLAGS,
  READING_QC_VERSION,
  type ReadingFlag,
  readingFlagBitsMarkdown,
  readingFlagsMarkdown,
} from './reading-qc.ts'
import { estimateIntervalS, parseSensorCommunityCsv } from './sensor-community.ts'

const T0 = Date.UTC(2026, 0, 12, 8)
const MIN = 60_000
const DEVICE = { intervalS: 60 }

type Values = Partial<Record<Metric, number>>

/** One sample per `stepMs` from `start`, values from `f(i)`. */
function samples(start: number, count: number, stepMs: number, f: (i: number) => Values): QcSample[] {
  return Array.from({ length: count }, (_, i) => ({ ts: start + i * stepMs, values: f(i) }))
}

/** Checks everything given (range = first sample … last sample inclusive). */
function checkAll(list: readonly QcSample[], device = DEVICE): Map<number, number> {
  const first = list[0]?.ts ?? 0
  const last = list[list.length - 1]?.ts ?? 0
  return checkReadings(list, { from: first, to: last + 1 }, device)
}

function flagsAt(result: Map<number, number>, ts: number, metric: Metric): ReadingFlag[] {
  return flagsOf(result.get(ts) ?? 0, metric)
}

function has(result: Map<number, number>, ts: number, metric: Metric, flag: ReadingFlag): boolean {
  return flagsAt(result, ts, metric).includes(flag)
}

/** Times at which `metric` carries `flag`, sorted. */
function flaggedTimes(result: Map<number, number>, metric: Metric, flag: ReadingFlag): number[] {
  return [...result.keys()].filter((ts) => has(result, ts, metric, flag)).sort((a, b) => a - b)
}

/** Flags of one reading checked on its own (the other rules only see this one reading). */
function single(values: Values): Record<Metric, ReadingFlag[]> {
  const mask = checkReadings([{ ts: T0, values }], { from: T0, to: T0 + 1 }, DEVICE).get(T0) ?? 0
  const f = (m: Metric): ReadingFlag[] => flagsOf(mask, m)
  return { pm1: f('pm1'), pm25: f('pm25'), pm10: f('pm10'), no2: f('no2'), temp: f('temp'), rh: f('rh') }
}

describe('reading QC bitmask', () => {
  it('lays flags out as 8 bits per metric in METRICS and READING_FLAGS order', () => {
    expect(READING_QC_VERSION).toBe(1)
    expect([...READING_FLAGS]).toEqual([
      'out_of_range',
      'pm_order',
      'stuck',
      'spike',
      'rate_of_change',
      'high_humidity',
      'warm_up',
    ])
    expect(flagBit('pm1', 'out_of_range')).toBe(1)
    expect(flagBit('pm1', 'warm_up')).toBe(64)
    expect(flagBit('pm25', 'out_of_range')).toBe(256)
    expect(flagBit('pm10', 'stuck')).toBe(2 ** 18)
    expect(flagBit('no2', 'spike')).toBe(2 ** 27)
    expect(flagBitIndex('rh', 'warm_up')).toBe(46)
    expect(flagBit('rh', 'warm_up')).toBe(2 ** 46)
    const all = METRICS.flatMap((m) => READING_FLAGS.map((f) => flagBit(m, f)))
    expect(new Set(all).size).toBe(METRICS.length * READING_FLAGS.length)
    expect(all.reduce((a, b) => a + b, 0)).toBeLessThan(Number.MAX_SAFE_INTEGER)
  })

  it('round-trips every flag set of every metric through flagsOf, beside other metrics', () => {
    for (let subset = 0; subset < 2 ** READING_FLAGS.length; subset += 1) {
      const flags = READING_FLAGS.filter((_, j) => (subset & (1 << j)) !== 0)
      for (const [i, metric] of METRICS.entries()) {
        // The other metrics get a different (rotated) subset, so bleeding between bytes would show.
        const other = READING_FLAGS.filter((_, j) => ((subset >> 1) & (1 << j)) !== 0 || j === 6)
        let mask = 0
        for (const f of flags) mask += flagBit(metric, f)
        for (const m of METRICS) if (m !== metric) for (const f of other) mask += flagBit(m, f)
        expect(flagsOf(mask, metric)).toEqual(flags)
        expect(flagsOf(mask, METRICS[(i + 1) % METRICS.length] ?? 'pm1')).toEqual(other)
      }
    }
  })

  it('ignores the reserved bit, ORs masks over 32 bits and refuses what is not a mask', () => {
    expect(flagsOf(2 ** 15 + flagBit('pm25', 'spike'), 'pm25')).toEqual(['spike'])
    const a = flagBit('rh', 'out_of_range') + flagBit('pm1', 'stuck')
    const b = flagBit('rh', 'out_of_range') + flagBit('no2', 'warm_up')
    const or = orMasks(a, b)
    expect(or).toBe(flagBit('rh', 'out_of_range') + flagBit('pm1', 'stuck') + flagBit('no2', 'warm_up'))
    for (const bad of [-1, 0.5, 2 ** 48, Number.NaN]) {
      expect(() => flagsOf(bad, 'pm25')).toThrow(QcMaskError)
    }
    expect(flagsOf(2 ** 48 - 1, 'rh')).toEqual([...READING_FLAGS])
  })

  it('orders levels ok < suspect < invalid and takes the worst', () => {
    expect([...QC_LEVELS]).toEqual(['ok', 'suspect', 'invalid'])
    expect(qcLevel([])).toBe('ok')
    expect(qcLevel(['spike'])).toBe('suspect')
    expect(qcLevel(['spike', 'warm_up', 'high_humidity'])).toBe('suspect')
    expect(qcLevel(['spike', 'stuck'])).toBe('invalid')
    expect(qcLevel(['out_of_range', 'spike'])).toBe('invalid')
    for (const f of READING_FLAGS) expect(qcLevel([f])).toBe(READING_FLAG_INFO[f].level)
    expect(READING_FLAGS.filter((f) => READING_FLAG_INFO[f].level === 'invalid')).toEqual(['out_of_range', 'stuck'])
    expect(maskLevel(flagBit('pm25', 'stuck'), 'pm25')).toBe('invalid')
    expect(maskLevel(flagBit('pm25', 'stuck'), 'pm10')).toBe('ok')
  })
})

describe('checkReadings rules', () => {
  it('out_of_range: at each bound not flagged, just beyond it flagged', () => {
    const cases: [Metric, number, number][] = [
      ['pm1', 500, 500.1],
      ['pm25', 500, 500.1],
      ['pm10', 500, 500.01],
      ['pm25', 0, -0.1],
      ['rh', 100, 100.01],
      ['rh', 0, -0.5],
      ['temp', 65, 65.1],
      ['temp', -40, -40.1],
      ['no2', -20, -20.5],
      ['no2', 4000, 4000.5],
    ]
    for (const [metric, inside, outside] of cases) {
      expect(single({ [metric]: inside })[metric]).not.toContain('out_of_range')
      expect(single({ [metric]: outside })[metric]).toContain('out_of_range')
    }
    expect(single({ pm25: Number.NaN }).pm25).toEqual(['out_of_range'])
    expect(single({ temp: Number.POSITIVE_INFINITY }).temp).toEqual(['out_of_range'])
    // Only the metric that is out of range.
    const r = single({ pm25: 600, pm10: 700, temp: 10 })
    expect(r.temp).toEqual([])
    expect(r.rh).toEqual([])
  })

  it('pm_order: a finer fraction above a coarser one by more than 0.5 µg/m³ flags both of the pair', () => {
    expect(single({ pm1: 10.5, pm25: 10, pm10: 20 }).pm1).not.toContain('pm_order')
    const r = single({ pm1: 10.6, pm25: 10, pm10: 20 })
    expect(r.pm1).toContain('pm_order')
    expect(r.pm25).toContain('pm_order')
    expect(r.pm10).not.toContain('pm_order')
    const s = single({ pm1: 3, pm25: 20.6, pm10: 20 })
    expect([s.pm1.includes('pm_order'), s.pm25.includes('pm_order'), s.pm10.includes('pm_order')]).toEqual([
      false,
      true,
      true,
    ])
    expect(single({ pm25: 20.5, pm10: 20 }).pm25).not.toContain('pm_order')
    // pm1 against pm10 when pm25 is missing.
    const t = single({ pm1: 9, pm10: 8 })
    expect(t.pm1).toContain('pm_order')
    expect(t.pm10).toContain('pm_order')
  })

  it('high_humidity: optical PM of a reading whose own RH is above 70 %', () => {
    expect(single({ pm25: 10, pm10: 12, rh: 70 }).pm25).not.toContain('high_humidity')
    const r = single({ pm1: 8, pm25: 10, pm10: 12, no2: 20, temp: 5, rh: 70.1 })
    for (const m of ['pm1', 'pm25', 'pm10'] as const) expect(r[m]).toContain('high_humidity')
    for (const m of ['no2', 'temp', 'rh'] as const) expect(r[m]).not.toContain('high_humidity')
    expect(single({ pm25: 10 }).pm25).not.toContain('high_humidity')
    // An impossible RH is out of range and says nothing about the aerosol.
    const bad = single({ pm25: 10, rh: 101 })
    expect(bad.pm25).not.toContain('high_humidity')
    expect(bad.rh).toContain('out_of_range')
  })

  it('stuck: causal, flags a non-zero PM run only from 2 h after it began', () => {
    const before = samples(T0 - 30 * MIN, 30, MIN, (i) => ({ pm25: 5 + (i % 3), no2: 10 + (i % 4) }))
    const run = samples(T0, 181, MIN, (i) => ({ pm25: 7.3, no2: 10 + (i % 5) }))
    const list = [...before, ...run]
    const result = checkAll(list)
    const stuck = flaggedTimes(result, 'pm25', 'stuck')
    expect(stuck[0]).toBe(T0 + 2 * HOUR_MS)
    expect(stuck).toHaveLength(61) // T0 + 120 min … T0 + 180 min
    expect(has(result, T0 + 119 * MIN, 'pm25', 'stuck')).toBe(false)
    expect(flaggedTimes(result, 'no2', 'stuck')).toEqual([])
    // Causality: cutting the run short leaves the flags of the earlier readings as they were.
    const shorter = checkAll(list.slice(0, 30 + 150))
    const end = T0 + 150 * MIN
    expect(shorter).toEqual(new Map([...result].filter(([ts]) => ts < end)))
    expect(flaggedTimes(shorter, 'pm25', 'stuck')).toHaveLength(30)
  })

  it('stuck: NO2 needs 6 h; zero runs and runs broken by another value or a power-on silence are not stuck', () => {
    const no2 = checkAll(samples(T0, 6 * 60 + 2, MIN, () => ({ no2: -3 })))
    expect(flaggedTimes(no2, 'no2', 'stuck')).toEqual([T0 + 6 * HOUR_MS, T0 + 6 * HOUR_MS + MIN])

    const zero = checkAll(samples(T0, 5 * 60, MIN, () => ({ pm25: 0, pm10: 0, no2: 0 })))
    for (const m of ['pm25', 'pm10', 'no2'] as const) expect(flaggedTimes(zero, m, 'stuck')).toEqual([])

    // 7.3 for 90 min, one 7.4, 7.3 for 100 min: no run reaches 2 h.
    const broken = samples(T0, 192, MIN, (i) => ({ pm10: i === 90 ? 7.4 : 7.3 }))
    expect(flaggedTimes(checkAll(broken), 'pm10', 'stuck')).toEqual([])
    // A 10 min silence (a power-on, device interval 60 s) starts a new run; a 9 min one does not.
    const gap = (minutes: number): QcSample[] => [
      ...samples(T0, 90, MIN, () => ({ pm10: 7.3 })),
      ...samples(T0 + 89 * MIN + minutes * MIN, 60, MIN, () => ({ pm10: 7.3 })),
    ]
    expect(flaggedTimes(checkAll(gap(10)), 'pm10', 'stuck')).toEqual([])
    expect(flaggedTimes(checkAll(gap(9)), 'pm10', 'stuck')[0]).toBe(T0 + 2 * HOUR_MS)
    // A single reading is never a run.
    expect(single({ pm25: 7.3 }).pm25).not.toContain('stuck')
  })

  /** 40 min of pm25 alternating around `base` (median = base), then `peak`, then `next` after `nextGapMs`. */
  function spikeSeries(base: number, peak: number, next: number, nextGapMs = MIN, metric: Metric = 'pm25') {
    const list = samples(T0, 40, MIN, (i) => ({ [metric]: base + ((i % 3) - 1) * Math.min(1, base / 4) }))
    const peakTs = T0 + 40 * MIN
    list.push({ ts: peakTs, values: { [metric]: peak } })
    list.push({ ts: peakTs + nextGapMs, values: { [metric]: next } })
    list.push({ ts: peakTs + nextGapMs + MIN, values: { [metric]: base } })
    return { result: checkAll(list), peakTs }
  }

  it('spike: above 5 × the 30 min median and the floor, with both neighbours back within that bound', () => {
    // Median 10: bound = max(5 × 10, 10 + 20) = 50.
    let s = spikeSeries(10, 50.1, 10)
    expect(flaggedTimes(s.result, 'pm25', 'spike')).toEqual([s.peakTs])
    s = spikeSeries(10, 50, 10)
    expect(flaggedTimes(s.result, 'pm25', 'spike')).toEqual([])
    // The next sample must be back within the bound: at the bound counts, above it does not (an episode).
    expect(flaggedTimes(spikeSeries(10, 80, 50).result, 'pm25', 'spike')).toHaveLength(1)
    expect(flaggedTimes(spikeSeries(10, 80, 50.5).result, 'pm25', 'spike')).toEqual([])
    // Median 2: the absolute floor decides, bound = max(10, 22) = 22.
    expect(flaggedTimes(spikeSeries(2, 22, 2).result, 'pm25', 'spike')).toEqual([])
    expect(flaggedTimes(spikeSeries(2, 22.5, 2).result, 'pm25', 'spike')).toHaveLength(1)
    // NO2: floor 40 µg/m³; median 5 → bound 45.
    expect(flaggedTimes(spikeSeries(5, 45, 5, MIN, 'no2').result, 'no2', 'spike')).toEqual([])
    expect(flaggedTimes(spikeSeries(5, 45.5, 5, MIN, 'no2').result, 'no2', 'spike')).toHaveLength(1)
    // The neighbour must be close: 15 min counts, 16 min does not.
    expect(flaggedTimes(spikeSeries(10, 80, 10, 15 * MIN).result, 'pm25', 'spike')).toHaveLength(1)
    expect(flaggedTimes(spikeSeries(10, 80, 10, 16 * MIN).result, 'pm25', 'spike')).toEqual([])
  })

  it('spike: needs a next reading, a normal previous reading and at least 3 readings of baseline', () => {
    const base = samples(T0, 40, MIN, () => ({ pm10: 10 }))
    const peakTs = T0 + 40 * MIN
    // Last reading: nothing after it (yet) to show it was a single sample.
    expect(flaggedTimes(checkAll([...base, { ts: peakTs, values: { pm10: 90 } }]), 'pm10', 'spike')).toEqual([])
    // A two-reading rise: the second reading's previous neighbour is above the bound.
    const rise = [
      ...base,
      { ts: peakTs, values: { pm10: 90 } },
      { ts: peakTs + MIN, values: { pm10: 90 } },
      { ts: peakTs + 2 * MIN, values: { pm10: 10 } },
    ]
    expect(flaggedTimes(checkAll(rise), 'pm10', 'spike')).toEqual([])
    // Readings every 15 min: the previous 30 min hold 2 readings, no baseline.
    const sparse = [
      ...samples(T0, 4, 15 * MIN, () => ({ pm10: 10 })),
      { ts: T0 + 60 * MIN, values: { pm10: 90 } },
      { ts: T0 + 75 * MIN, values: { pm10: 10 } },
    ]
    expect(flaggedTimes(checkAll(sparse, { intervalS: 900 }), 'pm10', 'spike')).toEqual([])
    // Every 10 min: 3 readings of baseline, flagged.
    const tenMin = [
      ...samples(T0, 6, 10 * MIN, () => ({ pm10: 10 })),
      { ts: T0 + 60 * MIN, values: { pm10: 90 } },
      { ts: T0 + 70 * MIN, values: { pm10: 10 } },
    ]
    expect(flaggedTimes(checkAll(tenMin, { intervalS: 600 }), 'pm10', 'spike')).toEqual([T0 + 60 * MIN])
    // The median is of the previous 30 min only: a high level 31+ min back is not the baseline.
    const old = [
      ...samples(T0, 10, MIN, () => ({ pm10: 200 })),
      ...samples(T0 + 10 * MIN, 30, MIN, () => ({ pm10: 10 })),
      { ts: T0 + 40 * MIN, values: { pm10: 90 } },
      { ts: T0 + 41 * MIN, values: { pm10: 10 } },
    ]
    expect(flaggedTimes(checkAll(old), 'pm10', 'spike')).toEqual([T0 + 40 * MIN])
  })

  it('rate_of_change: more than 100 µg/m³ per minute between PM readings at most 5 min apart', () => {
    const pair = (gapMs: number, delta: number, metric: Metric = 'pm10'): boolean => {
      const list = [
        { ts: T0, values: { [metric]: 10 } },
        { ts: T0 + gapMs, values: { [metric]: 10 + delta } },
      ]
      return has(checkAll(list), T0 + gapMs, metric, 'rate_of_change')
    }
    expect(pair(MIN, 100)).toBe(false)
    expect(pair(MIN, 100.5)).toBe(true)
    expect(pair(2 * MIN, 200)).toBe(false)
    expect(pair(2 * MIN, 200.5)).toBe(true)
    expect(pair(5 * MIN, 501)).toBe(true)
    expect(pair(5 * MIN + 1, 2000)).toBe(false)
    // Closer than a minute: the change itself, not scaled up to a minute.
    expect(pair(MIN / 2, 100)).toBe(false)
    expect(pair(MIN / 2, 100.5, 'pm25')).toBe(true)
    // NO2 has no rate rule; the earlier reading is not flagged.
    expect(pair(MIN, 1000, 'no2')).toBe(false)
    const list = [
      { ts: T0, values: { pm25: 10 } },
      { ts: T0 + MIN, values: { pm25: 300 } },
    ]
    expect(flaggedTimes(checkAll(list), 'pm25', 'rate_of_change')).toEqual([T0 + MIN])
  })

  it('rate_of_change: a fall counts as a rise does', () => {
    const list = [
      { ts: T0, values: { pm25: 300 } },
      { ts: T0 + MIN, values: { pm25: 199 } },
    ]
    expect(flaggedTimes(checkAll(list), 'pm25', 'rate_of_change')).toEqual([T0 + MIN])
  })

  it('warm_up: after a silence of 10 min, NO2 for 30 min and PM for 60 s', () => {
    const gapRun = (silenceMin: number, device = DEVICE) => {
      const first = samples(T0, 60, MIN, () => ({ pm25: 5, no2: 10, temp: 3 }))
      const powerOn = T0 + 59 * MIN + silenceMin * MIN
      const second = samples(powerOn, 40, MIN, () => ({ pm25: 5, no2: 10, temp: 3 }))
      const all = [...first, ...second]
      // Range starts after the first loaded reading, so only the silence decides.
      const result = checkReadings(all, { from: T0 + 30 * MIN, to: powerOn + HOUR_MS }, device)
      return { result, powerOn }
    }
    const { result, powerOn } = gapRun(10)
    expect(flaggedTimes(result, 'no2', 'warm_up')).toEqual(Array.from({ length: 30 }, (_, i) => powerOn + i * MIN))
    expect(flaggedTimes(result, 'pm25', 'warm_up')).toEqual([powerOn])
    expect(flaggedTimes(result, 'temp', 'warm_up')).toEqual([])
    expect(has(result, powerOn + 30 * MIN, 'no2', 'warm_up')).toBe(false)
    // 9 min of silence is not a power-on.
    expect(flaggedTimes(gapRun(9).result, 'no2', 'warm_up')).toEqual([])
    // A device that reports every 5 min must be silent 3 intervals (15 min).
    expect(qcSilenceMs(300)).toBe(15 * MIN)
    expect(qcSilenceMs(60)).toBe(10 * MIN)
    expect(flaggedTimes(gapRun(14, { intervalS: 300 }).result, 'no2', 'warm_up')).toEqual([])
    expect(flaggedTimes(gapRun(15, { intervalS: 300 }).result, 'no2', 'warm_up')).toHaveLength(30)
  })

  it('warm_up: the first reading with nothing before it in the context is a power-on', () => {
    // A new device: the first reading ever sits at the start of the range.
    const fresh = samples(T0, 40, MIN, () => ({ no2: 10, pm10: 5 }))
    const r = checkReadings(fresh, { from: T0, to: T0 + HOUR_MS }, DEVICE)
    expect(flaggedTimes(r, 'no2', 'warm_up')).toHaveLength(30)
    expect(flaggedTimes(r, 'pm10', 'warm_up')).toEqual([T0])
    // Readings from the very start of the context: no evidence of a silence.
    const from = T0 + QC_CONTEXT_BEFORE_MS
    const loaded = samples(T0, 7 * 60 + 40, MIN, (i) => ({ no2: 10 + (i % 7) }))
    expect(flaggedTimes(checkReadings(loaded, { from, to: from + HOUR_MS }, DEVICE), 'no2', 'warm_up')).toEqual([])
  })

  it('returns only readings in [from, to), only non-zero masks, whatever the flags around them', () => {
    const list = samples(T0, 120, MIN, (i) => ({ temp: i % 10 === 0 ? 99 : 5, rh: 50 }))
    const from = T0 + 30 * MIN
    const to = T0 + 60 * MIN
    const result = checkReadings(list, { from, to }, DEVICE)
    expect([...result.keys()].sort((a, b) => a - b)).toEqual([from, from + 10 * MIN, from + 20 * MIN])
    for (const mask of result.values()) expect(mask).not.toBe(0)
    // The reading at `to` is out of range but outside the checked range.
    expect(result.has(to)).toBe(false)
    expect(checkReadings(list, { from: to, to }, DEVICE).size).toBe(0)
    expect(checkReadings([], { from, to }, DEVICE).size).toBe(0)
  })

  it('sorts unsorted input and merges two readings with the same time', () => {
    const list: QcSample[] = [
      { ts: T0 + MIN, values: { pm25: 5, rh: 80 } },
      { ts: T0, values: { pm25: 5 } },
      { ts: T0 + MIN, values: { temp: 99 } },
    ]
    const r = checkReadings(list, { from: T0 + MIN, to: T0 + 2 * MIN }, DEVICE)
    expect(r.get(T0 + MIN)).toBe(flagBit('pm25', 'high_humidity') + flagBit('temp', 'out_of_range'))
  })
})

/** A deterministic day of one device with every kind of event in it. */
function eventfulDay(): QcSample[] {
  let x = 42
  const rand = (): number => {
    x = (x * 1_103_515_245 + 12_345) % 2 ** 31
    return x / 2 ** 31
  }
  const list: QcSample[] = []
  for (let i = 0; i < 26 * 60; i += 1) {
    const ts = T0 + i * MIN
    const h = i / 60
    if ((h >= 5 && h < 5.3) || (h >= 15 && h < 16.5)) continue // power-offs
    const pm25 = h >= 9 && h < 12.5 ? 8.4 : Math.round((6 + 4 * rand()) * 10) / 10
    const no2 = h >= 6 && h < 13.5 ? 12 : Math.round(20 * rand() * 10) / 10
    const values: Values = { pm1: pm25 * 0.7, pm25, pm10: pm25 * 1.5, no2, temp: 4, rh: 60 + 20 * rand() }
    if (i % 97 === 0) values.pm10 = 95 // spikes
    if (i % 211 === 0) values.pm1 = pm25 + 3 // order
    if (i % 389 === 0) values.pm25 = 600 // range (and rate)
    list.push({ ts, values })
  }
  return list
}

describe('checkReadings determinism and context', () => {
  it('gives the same flags from only the documented context as from the whole history', () => {
    const all = eventfulDay()
    const full = checkReadings(all, { from: T0, to: T0 + 26 * HOUR_MS }, DEVICE)
    // Every rule fires somewhere, so the comparison covers them all.
    for (const flag of READING_FLAGS) {
      const anywhere = [...full.values()].some((mask) => METRICS.some((m) => flagsOf(mask, m).includes(flag)))
      expect({ flag, anywhere }).toEqual({ flag, anywhere: true })
    }
    for (let hour = 7; hour < 25; hour += 1) {
      const from = T0 + hour * HOUR_MS
      const to = from + HOUR_MS
      const window = all.filter((s) => s.ts >= from - QC_CONTEXT_BEFORE_MS && s.ts < to + QC_CONTEXT_AFTER_MS)
      const part = checkReadings(window, { from, to }, DEVICE)
      const expected = [...full].filter(([ts]) => ts >= from && ts < to)
      expect([...part].sort((a, b) => a[0] - b[0])).toEqual(expected.sort((a, b) => a[0] - b[0]))
    }
    expect(checkReadings(all, { from: T0, to: T0 + 26 * HOUR_MS }, DEVICE)).toEqual(full)
  })

  it('declares a context of the longest stuck run plus an hour before and the spike neighbour after', () => {
    expect(QC_CONTEXT_BEFORE_MS).toBe(7 * HOUR_MS)
    expect(QC_CONTEXT_AFTER_MS).toBe(15 * MIN)
  })
})

describe('docs/quality-flags.md', () => {
  it('has the flag table and the bit table of the code, cell by cell', () => {
    const doc = expectTablesInDoc(new URL('../../../docs/quality-flags.md', import.meta.url), [
      readingFlagsMarkdown(),
      readingFlagBitsMarkdown(),
    ])
    expect(doc).toContain(`READING_QC_VERSION = ${READING_QC_VERSION}`)
  })
})

describe('the Sensor.Community week (Aberdeen, 5–11 November 2018)', () => {
  const dir = new URL('../../../test/fixtures/sensor-community/aberdeen-bme280-2018-11/', import.meta.url)
  const files = readdirSync(dir).sort()
  const text = (type: string): string[] =>
    files.filter((f) => f.includes(`_${type}_`)).map((f) => readFileSync(new URL(f, dir), 'utf8'))
  /** SDS011 and BME280 of the station stamp their readings within a few seconds of each other. */
  const PAIR_MS = 10_000

  it('flags what the raw files show', () => {
    const parse = (type: string) => text(type).flatMap((t) => parseSensorCommunityCsv(t).readings)
    const sds = parse('sds011')
    const bme = parse('bme280')
    expect(sds).toHaveLength(4065)
    // One station = one sample: the SDS011 reading with the nearest BME280 reading's temperature and RH.
    let j = 0
    const list: QcSample[] = sds.map((r) => {
      while (j + 1 < bme.length && Math.abs((bme[j + 1]?.ts ?? 0) - r.ts) <= Math.abs((bme[j]?.ts ?? 0) - r.ts)) j += 1
      const b = bme[j]
      const paired = b !== undefined && Math.abs(b.ts - r.ts) <= PAIR_MS
      return { ts: r.ts, values: paired ? { ...r.values, ...b.values } : r.values }
    })
    const intervalS = estimateIntervalS(list.map((s) => s.ts)) ?? 0
    expect(intervalS).toBe(148)
    const from = list[0]?.ts ?? 0
    const result = checkReadings(list, { from, to: (list[list.length - 1]?.ts ?? 0) + 1 }, { intervalS })

    // Independent count from the raw text: SDS rows with a BME row within 10 s whose humidity is above 70 %.
    const rhBySecond = new Map<number, number>()
    for (const t of text('bme280')) {
      const [header = '', ...lines] = t.split('\n')
      const cols = header.split(';')
      for (const line of lines.filter((l) => l.trim() !== '')) {
        const cells = line.split(';')
        const sec = Date.parse(`${cells[cols.indexOf('timestamp')]}Z`) / 1000
        rhBySecond.set(sec, Number(cells[cols.indexOf('humidity')]))
      }
    }
    let humid = 0
    let rows = 0
    for (const t of text('sds011')) {
      const [header = '', ...lines] = t.split('\n')
      const ts = header.split(';').indexOf('timestamp')
      for (const line of lines.filter((l) => l.trim() !== '')) {
        rows += 1
        const sec = Date.parse(`${line.split(';')[ts]}Z`) / 1000
        const near = [0, 1, -1, 2, -2, 3, -3, 4, -4, 5, -5, 6, -6, 7, -7, 8, -8, 9, -9, 10, -10]
          .map((d) => rhBySecond.get(sec + d))
          .find((v) => v !== undefined)
        if (near !== undefined && near > 70) humid += 1
      }
    }
    expect(rows).toBe(4065)
    // An Aberdeen November: RH never fell to 70 % that week (75.7–100 %), so every paired reading is humid.
    expect(humid).toBeGreaterThan(4000)
    expect(flaggedTimes(result, 'pm25', 'high_humidity')).toHaveLength(humid)
    expect(flaggedTimes(result, 'pm10', 'high_humidity')).toHaveLength(humid)

    // Checked by hand on the raw files: PM within 0.9–126.67 µg/m³, P2 never above P1, the longest identical run
    // 444 s, the largest change between neighbours 87.1 µg/m³ over 148 s (35 per min), no silence over 335 s.
    for (const flag of ['out_of_range', 'pm_order', 'stuck', 'rate_of_change'] as const) {
      for (const m of METRICS) expect({ flag, m, n: flaggedTimes(result, m, flag).length }).toEqual({ flag, m, n: 0 })
    }
    // The first reading is a power-on; 60 s of PM warm-up covers only it at one reading per 148 s.
    expect(flaggedTimes(result, 'pm25', 'warm_up')).toEqual([from])
    expect(flaggedTimes(result, 'pm10', 'warm_up')).toEqual([from])

    // Spikes, checked by hand (previous reading → value → next reading; median of the previous 12 readings):
    const iso = (ms: number): string => new Date(ms).toISOString().slice(0, 19)
    expect(flaggedTimes(result, 'pm25', 'spike').map(iso)).toEqual([
      '2018-11-05T01:03:54', // 5.2 → 37.63 → 7.5, median 5.19
      '2018-11-07T22:48:43', // 9.83 → 47.77 → 11.5, median 1.42
      '2018-11-08T17:10:46', // 22.47 → 30.07 → 6, median 3.87 (bound 23.87)
      '2018-11-08T17:15:41', // 6 → 25.2 → 3.1, median 4.75 (bound 24.75)
    ])
    expect(flaggedTimes(result, 'pm10', 'spike').map(iso)).toEqual([
      // 22:48:43 (17.5 → 104.6 → 25.67) is not one: the next reading stays above 23.5 (5 × median 3.5 + …).
      '2018-11-07T22:53:39', // 25.67 → 36.13 → 18.4, median 5.78 (bound 28.9)
      '2018-11-08T17:10:46', // 49.2 → 75.07 → 19.43, median 14.8 (bound 74)
      '2018-11-11T19:31:27', // 5.7 → 28.37 → 11.8, median 4.72 (bound 24.72)
    ])
    // The 04:01–04:11 episode of 5 November (PM2.5 36–41 for 10 min) is an episode, not spikes.
    expect(
      flaggedTimes(result, 'pm25', 'spike')
        .map(iso)
        .some((t) => t.startsWith('2018-11-05T04')),
    ).toBe(false)
  })
})
