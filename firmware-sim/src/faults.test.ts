import { formatTelemetryReading, METRIC_INFO, METRICS, type MetricValues, parseTelemetry } from '@skolluft/core'
import { describe, expect, it } from 'vitest'
import {
  applyFaults,
  DEFAULT_FAULT_RATE,
  DEFAULT_FAULT_RATES,
  type FaultRates,
  faultProfile,
  humidityGrowth,
  NO_FAULTS,
  outageAt,
  outagesBetween,
  scaleFaultRates,
  stuckAt,
} from './faults.ts'
import { sampleAt, siteProfile } from './model.ts'

const MINUTE_MS = 60_000
const DAY_MS = 86_400_000
const START = Date.parse('2025-10-01T00:00:00Z')
const site = siteProfile({ siteId: 'demo-lund-s-001', kind: 'school', lat: 55.7, lon: 13.19 }, 3)
const truthAt = (ts: number) => sampleAt(site, ts)

function rates(overrides: Partial<FaultRates>): FaultRates {
  return { ...NO_FAULTS, ...overrides }
}

function reported(r: FaultRates, ts: number, deviceId = 'sim-dev-1'): MetricValues {
  return applyFaults(faultProfile(deviceId, r, 3), ts, truthAt(ts), truthAt)
}

const minutes = (count: number, from = START) => Array.from({ length: count }, (_, i) => from + i * MINUTE_MS)

describe('fault rates', () => {
  it('scales the defaults with one overall rate; 0 disables everything', () => {
    expect(scaleFaultRates(0)).toEqual(NO_FAULTS)
    expect(scaleFaultRates(DEFAULT_FAULT_RATE)).toEqual(DEFAULT_FAULT_RATES)
    const bad = scaleFaultRates(1)
    expect(bad.humidity).toBe(1)
    expect(bad.outage).toBeCloseTo(DEFAULT_FAULT_RATES.outage * 50)
  })
})

describe('applyFaults', () => {
  it('changes nothing when every rate is 0', () => {
    for (const ts of minutes(500)) expect(reported(NO_FAULTS, ts)).toEqual(truthAt(ts))
  })

  it('is deterministic per device and seed, and differs between devices', () => {
    const noisy = rates({ noise: 0.5, spike: 0.05, stuck: 5, drift: 1 })
    const a = minutes(300).map((ts) => reported(noisy, ts, 'sim-a'))
    expect(minutes(300).map((ts) => reported(noisy, ts, 'sim-a'))).toEqual(a)
    expect(minutes(300).map((ts) => reported(noisy, ts, 'sim-b'))).not.toEqual(a)
  })

  it('adds noise and spikes to about the share of readings asked for', () => {
    const times = minutes(10_000)
    const truths = times.map(truthAt)
    const noisy = faultProfile('sim-dev-1', rates({ noise: 0.1 }), 3)
    const changed = times.filter(
      (ts, i) => JSON.stringify(applyFaults(noisy, ts, truths[i] ?? {}, truthAt)) !== JSON.stringify(truths[i]),
    ).length
    expect(changed / times.length).toBeGreaterThan(0.08)
    expect(changed / times.length).toBeLessThan(0.12)
    const spiky = faultProfile('sim-dev-1', rates({ spike: 0.02 }), 3)
    const spiked = times.filter((ts, i) => {
      const truth = truths[i] ?? {}
      const raw = applyFaults(spiky, ts, truth, truthAt)
      return (raw.pm25 ?? 0) >= 2.9 * (truth.pm25 ?? 0) || (raw.no2 ?? 0) >= (truth.no2 ?? 0) + 49
    }).length
    expect(spiked / times.length).toBeGreaterThan(0.012)
    expect(spiked / times.length).toBeLessThan(0.028)
  })

  it('freezes a sensor group during a stuck episode and nowhere else', () => {
    const r = rates({ stuck: 6 })
    const profile = faultProfile('sim-stuck', r, 3)
    const times = minutes(3 * 24 * 60)
    const windows = new Map<number, { group: string; values: Set<string> }>()
    let free = 0
    for (const ts of times) {
      const stuck = stuckAt(profile, ts)
      const value = applyFaults(profile, ts, truthAt(ts), truthAt)
      if (!stuck) {
        free += 1
        expect(value).toEqual(truthAt(ts))
        continue
      }
      const entry = windows.get(stuck.start) ?? { group: stuck.group, values: new Set<string>() }
      const frozen =
        stuck.group === 'no2' ? [value.no2] : stuck.group === 'pm' ? [value.pm1, value.pm25, value.pm10] : [value]
      entry.values.add(JSON.stringify(frozen))
      windows.set(stuck.start, entry)
    }
    expect(windows.size).toBeGreaterThan(5)
    expect(free).toBeGreaterThan(0)
    for (const entry of windows.values()) expect(entry.values.size).toBe(1)
  })

  it('makes optical PM read high in humid air, following the hackAIR growth curve', () => {
    expect(humidityGrowth(60)).toEqual({ pm25: 1, pm10: 1 })
    const g90 = humidityGrowth(90)
    expect(g90.pm25).toBeCloseTo(1 + 0.48756 * 0.9 ** 8.60068, 6)
    expect(g90.pm10).toBeGreaterThan(g90.pm25)
    expect(humidityGrowth(100).pm25).toBeGreaterThan(2)
    const humid = minutes(5000).filter((ts) => (truthAt(ts).rh ?? 0) > 90)
    const dry = minutes(5000, Date.parse('2025-06-10T10:00:00Z')).filter((ts) => (truthAt(ts).rh ?? 100) < 70)
    expect(humid.length).toBeGreaterThan(100)
    expect(dry.length).toBeGreaterThan(100)
    for (const ts of humid.slice(0, 200)) {
      expect(reported(rates({ humidity: 1 }), ts).pm25 ?? 0).toBeGreaterThan(truthAt(ts).pm25 ?? 0)
    }
    for (const ts of dry.slice(0, 200)) expect(reported(rates({ humidity: 1 }), ts)).toEqual(truthAt(ts))
  })

  it('drifts a drifting device slowly and resets it at recalibration', () => {
    const profile = faultProfile('sim-drift', rates({ drift: 1 }), 3)
    const drift = profile.drift
    expect(drift).not.toBeNull()
    if (!drift) return
    const offsets = Array.from({ length: 180 }, (_, d) => {
      const ts = START + d * DAY_MS
      return (applyFaults(profile, ts, truthAt(ts), truthAt).no2 ?? 0) - (truthAt(ts).no2 ?? 0)
    })
    // Monotone growth in |offset| between resets, and at least one reset in 180 days (90-day period).
    const jumps = offsets.slice(1).filter((o, i) => Math.abs(o) < Math.abs(offsets[i] ?? 0) - 1).length
    expect(jumps).toBeGreaterThanOrEqual(1)
    expect(jumps).toBeLessThanOrEqual(2)
    expect(Math.max(...offsets.map(Math.abs))).toBeGreaterThan(3)
    expect(Math.max(...offsets.map(Math.abs))).toBeLessThanOrEqual(15.2)
  })

  it('keeps readings in range and PM in order under heavy faults, so the v1 parser accepts them', () => {
    const heavy: FaultRates = { noise: 0.3, drift: 1, stuck: 5, spike: 0.05, humidity: 1, outage: 0 }
    const profile = faultProfile('sim-heavy', heavy, 3)
    const now = START + 30 * DAY_MS
    const problems: string[] = []
    for (const ts of minutes(20_000, now - 20_000 * MINUTE_MS)) {
      const v = applyFaults(profile, ts, truthAt(ts), truthAt)
      for (const metric of METRICS) {
        const value = v[metric]
        if (value === undefined || value < METRIC_INFO[metric].min || value > METRIC_INFO[metric].max)
          problems.push(metric)
      }
      if (!((v.pm1 ?? 0) <= (v.pm25 ?? 0) && (v.pm25 ?? 0) <= (v.pm10 ?? 0)))
        problems.push(`order ${JSON.stringify(v)}`)
      const parsed = parseTelemetry(JSON.stringify(formatTelemetryReading({ ts, values: v })), now)
      if (!parsed.ok) problems.push(parsed.code)
    }
    expect(problems.slice(0, 5)).toEqual([])
  })
})

describe('outages', () => {
  it('happen at about the rate asked for, 5 min to 4 h long, and agree with outageAt', () => {
    const profile = faultProfile('sim-outage', rates({ outage: 2 }), 3)
    const windows = outagesBetween(profile, START, START + 100 * DAY_MS)
    expect(windows.length).toBeGreaterThan(150)
    expect(windows.length).toBeLessThan(250)
    for (const w of windows.slice(0, 50)) {
      expect(w.end - w.start).toBeGreaterThanOrEqual(5 * MINUTE_MS)
      expect(w.end - w.start).toBeLessThanOrEqual(4 * 3_600_000)
      expect(outageAt(profile, w.start)).toEqual(w)
      expect(outageAt(profile, w.end - 1)?.end).toBeGreaterThanOrEqual(w.end)
    }
    expect(outagesBetween(faultProfile('sim-outage', NO_FAULTS, 3), START, START + 10 * DAY_MS)).toEqual([])
  })
})
