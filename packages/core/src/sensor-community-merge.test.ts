import { describe, expect, it } from 'vitest'
import type { MetricValues } from './metrics.ts'
import {
  joinStationReadings,
  STATION_JOIN_TOLERANCE_MS,
  type StationReading,
  type StationSample,
  sensorCommunityRole,
  stationModel,
  stationModelTypes,
} from './sensor-community-merge.ts'

const T0 = Date.UTC(2018, 10, 5)
const S = 1000

function pm(seconds: number, pm25: number, source = `pm@${seconds}`): StationSample<string> {
  return { ts: T0 + seconds * S, values: { pm25, pm10: pm25 * 2 }, source }
}
function cl(seconds: number, rh: number, source = `cl@${seconds}`): StationSample<string> {
  return { ts: T0 + seconds * S, values: { temp: 9, rh }, source }
}
/** [seconds, kind, sources] of each output reading. */
function shape(readings: readonly StationReading<string>[]): [number, string, string][] {
  return readings.map((r) => [(r.ts - T0) / S, r.kind, r.sources.join(',')])
}

/** Every source value appears in exactly one output reading. */
function expectEachValueOnce(
  pms: readonly StationSample<string>[],
  climates: readonly StationSample<string>[],
  out: readonly StationReading<string>[],
): void {
  const sources = [...pms, ...climates]
  const bySource = new Map(sources.map((s) => [s.source, s]))
  const seen: string[] = []
  for (const r of out) {
    const merged: MetricValues = {}
    for (const id of r.sources) {
      seen.push(id)
      Object.assign(merged, bySource.get(id)?.values)
    }
    expect(r.values).toEqual(merged)
  }
  expect(seen.sort()).toEqual(sources.map((s) => s.source).sort())
}

describe('joinStationReadings', () => {
  it('joins each PM reading with the climate reading of its cycle, at the PM time', () => {
    const pms = [pm(0, 5), pm(148, 6), pm(296, 7)]
    const climates = [cl(1, 91), cl(149, 92), cl(296, 93)]
    const out = joinStationReadings(pms, climates)
    expect(shape(out)).toEqual([
      [0, 'joined', 'pm@0,cl@1'],
      [148, 'joined', 'pm@148,cl@149'],
      [296, 'joined', 'pm@296,cl@296'],
    ])
    expect(out[0]?.values).toEqual({ pm25: 5, pm10: 10, temp: 9, rh: 91 })
    expectEachValueOnce(pms, climates, out)
  })

  it('joins at exactly the tolerance and not one millisecond beyond, on either side', () => {
    expect(STATION_JOIN_TOLERANCE_MS).toBe(30_000)
    const at = joinStationReadings([pm(100, 5)], [cl(130, 90)])
    expect(shape(at)).toEqual([[100, 'joined', 'pm@100,cl@130']])
    const before = joinStationReadings([pm(100, 5)], [cl(70, 90)])
    expect(shape(before)).toEqual([[100, 'joined', 'pm@100,cl@70']])
    const beyond = { ts: T0 + 130 * S + 1, values: { rh: 90 }, source: 'late' }
    expect(shape(joinStationReadings([pm(100, 5)], [beyond]))).toEqual([
      [100, 'pm', 'pm@100'],
      [130.001, 'climate', 'late'],
    ])
    const early = { ts: T0 + 70 * S - 1, values: { rh: 90 }, source: 'early' }
    expect(shape(joinStationReadings([pm(100, 5)], [early]))).toEqual([
      [69.999, 'climate', 'early'],
      [100, 'pm', 'pm@100'],
    ])
    // The tolerance is an option.
    expect(shape(joinStationReadings([pm(100, 5)], [cl(101, 90)], { toleranceMs: 500 }))).toEqual([
      [100, 'pm', 'pm@100'],
      [101, 'climate', 'cl@101'],
    ])
  })

  it('takes the nearest climate reading, and the earlier one on a tie', () => {
    expect(shape(joinStationReadings([pm(100, 5)], [cl(90, 1), cl(97, 2), cl(120, 3)]))).toEqual([
      [90, 'climate', 'cl@90'],
      [100, 'joined', 'pm@100,cl@97'],
      [120, 'climate', 'cl@120'],
    ])
    // Equally far before and after: the earlier climate reading joins.
    expect(shape(joinStationReadings([pm(100, 5)], [cl(110, 2), cl(90, 1)]))).toEqual([
      [100, 'joined', 'pm@100,cl@90'],
      [110, 'climate', 'cl@110'],
    ])
    // Two PM readings equally far from one climate reading: the earlier PM reading gets it.
    expect(shape(joinStationReadings([pm(110, 6), pm(90, 5)], [cl(100, 1)]))).toEqual([
      [90, 'joined', 'pm@90,cl@100'],
      [110, 'pm', 'pm@110'],
    ])
  })

  it('joins each climate reading at most once: the closer PM reading wins, the other takes its next nearest', () => {
    const pms = [pm(100, 5), pm(103, 6)]
    const climates = [cl(102, 1), cl(120, 2)]
    const out = joinStationReadings(pms, climates)
    // |103−102| = 1 beats |100−102| = 2; pm@100 then takes cl@120 (20 s, within the tolerance).
    expect(shape(out)).toEqual([
      [100, 'joined', 'pm@100,cl@120'],
      [103, 'joined', 'pm@103,cl@102'],
    ])
    expectEachValueOnce(pms, climates, out)
  })

  it('keeps unmatched readings on both sides, each at its own time', () => {
    const pms = [pm(0, 5), pm(148, 6), pm(1000, 7)]
    const climates = [cl(1, 91), cl(500, 92), cl(2000, 93)]
    const out = joinStationReadings(pms, climates)
    expect(shape(out)).toEqual([
      [0, 'joined', 'pm@0,cl@1'],
      [148, 'pm', 'pm@148'],
      [500, 'climate', 'cl@500'],
      [1000, 'pm', 'pm@1000'],
      [2000, 'climate', 'cl@2000'],
    ])
    expect(out[2]?.values).toEqual({ temp: 9, rh: 92 })
    expectEachValueOnce(pms, climates, out)
    expect(joinStationReadings([], [])).toEqual([])
    expect(shape(joinStationReadings([pm(0, 1)], []))).toEqual([[0, 'pm', 'pm@0']])
    expect(shape(joinStationReadings([], [cl(0, 1)]))).toEqual([[0, 'climate', 'cl@0']])
  })

  it('stores a duplicated row once per key: the second one stays alone at the same time', () => {
    const pms = [pm(100, 5)]
    const climates = [cl(100, 1, 'first'), cl(100, 2, 'second')]
    const out = joinStationReadings(pms, climates)
    // Joined before climate-only at an equal time, so storage keeps the joined reading (first come, first stored).
    expect(shape(out)).toEqual([
      [100, 'joined', 'pm@100,first'],
      [100, 'climate', 'second'],
    ])
  })

  it('is deterministic: the same readings in any order give the same output', () => {
    const pms = Array.from({ length: 60 }, (_, i) => pm(i * 145 + (i % 3), i))
    const climates = Array.from({ length: 60 }, (_, i) => cl(i * 145 + ((i * 7) % 40) - 10, 50 + i))
    const out = joinStationReadings(pms, climates)
    const shuffled = (list: readonly StationSample<string>[]) =>
      list
        .map((s, i) => ({ s, k: (i * 37) % list.length }))
        .sort((a, b) => a.k - b.k)
        .map((x) => x.s)
    expect(joinStationReadings(shuffled(pms), shuffled(climates))).toEqual(out)
    expect(joinStationReadings([...pms].reverse(), [...climates].reverse())).toEqual(out)
    expectEachValueOnce(pms, climates, out)
    // Offsets −10…+29 s: every climate reading is within 30 s of its own cycle and ≥ 115 s from the others.
    expect(out.every((r) => r.kind === 'joined')).toBe(true)
  })

  it('keeps several stations apart when the caller joins them one by one', () => {
    // The importer groups by location; a station's readings never join another's.
    const a = joinStationReadings([pm(0, 5, 'a-pm')], [cl(1, 90, 'a-cl')])
    const b = joinStationReadings([pm(0, 7, 'b-pm')], [])
    const c = joinStationReadings([], [cl(1, 60, 'c-cl')])
    expect([shape(a), shape(b), shape(c)]).toEqual([
      [[0, 'joined', 'a-pm,a-cl']],
      [[0, 'pm', 'b-pm']],
      [[1, 'climate', 'c-cl']],
    ])
  })

  describe('against what earlier imports stored', () => {
    const pms = [pm(0, 5), pm(148, 6)]
    const climates = [cl(1, 91), cl(149, 92)]
    const joined = joinStationReadings(pms, climates)
    const storedOf = (readings: readonly StationReading<string>[]) => new Map(readings.map((r) => [r.ts, r.values]))

    it('repeats the same readings when the same files were imported before', () => {
      expect(joinStationReadings(pms, climates, { stored: storedOf(joined) })).toEqual(joined)
    })

    it('splits a pair whose PM reading is stored without it, so the climate values are not lost', () => {
      // The PM file was imported alone before: the joined reading at 0 s would be a duplicate of the PM-only one.
      const stored = storedOf(joinStationReadings(pms, []))
      expect(shape(joinStationReadings(pms, climates, { stored }))).toEqual([
        [0, 'pm', 'pm@0'],
        [1, 'climate', 'cl@1'],
        [148, 'pm', 'pm@148'],
        [149, 'climate', 'cl@149'],
      ])
    })

    it('leaves a climate reading stored inside a joined reading there, even without its PM partner', () => {
      // Only the climate file imported again: its values are in the joined readings at the PM times.
      const out = joinStationReadings([], climates, { stored: storedOf(joined) })
      expect(shape(out)).toEqual([
        [0, 'climate', 'cl@1'],
        [148, 'climate', 'cl@149'],
      ])
      expect(out[0]?.values).toEqual({ temp: 9, rh: 91 })
    })

    it('keeps a stored pair even when a closer climate reading comes in later; the newcomer stays alone', () => {
      const stored = storedOf(joined)
      const out = joinStationReadings(pms, [...climates, cl(0, 99, 'closer')], { stored })
      expect(shape(out)).toEqual([
        [0, 'joined', 'pm@0,cl@1'],
        [0, 'climate', 'closer'],
        [148, 'joined', 'pm@148,cl@149'],
      ])
    })

    it('splits a pair whose climate reading is already stored on its own, so it is not stored twice', () => {
      const stored = storedOf(joinStationReadings([], [climates[0] ?? cl(1, 91)]))
      expect(shape(joinStationReadings(pms, climates, { stored }))).toEqual([
        [0, 'pm', 'pm@0'],
        [1, 'climate', 'cl@1'],
        [148, 'joined', 'pm@148,cl@149'],
      ])
    })
  })
})

describe('station roles and models', () => {
  it('tells PM sensors from climate sensors', () => {
    expect(['SDS011', 'PMS5003', 'SPS30', 'BME280', 'DHT22', 'BMP280', 'PPD42NS'].map(sensorCommunityRole)).toEqual([
      'pm',
      'pm',
      'pm',
      'climate',
      'climate',
      'climate',
      undefined,
    ])
  })

  it('names the model PM type first, so the humidity correction follows the PM sensor', () => {
    expect(stationModel('SDS011', 'BME280')).toBe('SDS011+BME280')
    expect(stationModel('PMS5003', undefined)).toBe('PMS5003')
    expect(stationModel(undefined, 'DHT22')).toBe('DHT22')
    expect(stationModelTypes('SDS011+BME280')).toEqual(['SDS011', 'BME280'])
  })
})
