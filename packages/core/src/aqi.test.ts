import { describe, expect, it } from 'vitest'
import {
  EAQI_BAND_KEYS,
  EAQI_BANDS,
  EAQI_POLLUTANTS,
  type EaqiLevel,
  type EaqiPollutant,
  eaqiBand,
  eaqiLevel,
  isEaqiPollutant,
  siteIndex,
} from './aqi.ts'

/**
 * Air-quality reference §2.1, the revised 2024 EEA index, transcribed by hand: the upper cut-point of
 * each band per pollutant (µg/m³) and the EEA colour. The top band is open (> the last cut-point).
 */
const REFERENCE_2_1: readonly {
  level: EaqiLevel
  key: string
  colour: string
  pm25: number | null
  pm10: number | null
  no2: number | null
}[] = [
  { level: 1, key: 'good', colour: '#50F0E6', pm25: 5, pm10: 15, no2: 10 },
  { level: 2, key: 'fair', colour: '#50CCAA', pm25: 15, pm10: 45, no2: 25 },
  { level: 3, key: 'moderate', colour: '#F0E641', pm25: 50, pm10: 120, no2: 60 },
  { level: 4, key: 'poor', colour: '#FF5050', pm25: 90, pm10: 195, no2: 100 },
  { level: 5, key: 'very_poor', colour: '#960032', pm25: 140, pm10: 270, no2: 150 },
  { level: 6, key: 'extremely_poor', colour: '#7D2181', pm25: null, pm10: null, no2: null },
]

/** The smallest double above a positive finite x: "just above" a cut-point, with no rounding slack. */
function nextUp(x: number): number {
  const view = new DataView(new ArrayBuffer(8))
  view.setFloat64(0, x)
  view.setBigUint64(0, view.getBigUint64(0) + 1n)
  return view.getFloat64(0)
}

/** Every finite cut-point: [pollutant, cut-point, band it closes]. */
const CUT_POINTS: readonly [EaqiPollutant, number, EaqiLevel][] = REFERENCE_2_1.flatMap((row) =>
  EAQI_POLLUTANTS.flatMap((p): [EaqiPollutant, number, EaqiLevel][] => {
    const upper = row[p]
    return upper === null ? [] : [[p, upper, row.level]]
  }),
)

describe('EAQI_BANDS against reference §2.1', () => {
  it('has the six bands in order, 1 to 6', () => {
    expect(EAQI_BANDS.map((b) => b.level)).toEqual([1, 2, 3, 4, 5, 6])
    expect(EAQI_BANDS.map((b) => b.key)).toEqual([...EAQI_BAND_KEYS])
  })

  it.each(REFERENCE_2_1)('band $level ($key): colour $colour, cut-points PM2.5 $pm25, PM10 $pm10, NO2 $no2', (row) => {
    const band = eaqiBand(row.level)
    expect(band).toEqual({
      level: row.level,
      key: row.key,
      colour: row.colour,
      upper: { pm25: row.pm25, pm10: row.pm10, no2: row.no2 },
    })
  })

  it('writes colours as #RRGGBB', () => {
    for (const band of EAQI_BANDS) expect(band.colour).toMatch(/^#[0-9A-F]{6}$/)
  })

  it.each(EAQI_POLLUTANTS)('%s: cut-points rise strictly and only the top band is open', (p) => {
    const uppers = EAQI_BANDS.map((b) => b.upper[p])
    expect(uppers.at(-1)).toBeNull()
    const finite = uppers.slice(0, -1)
    for (const u of finite) expect(typeof u).toBe('number')
    for (let i = 1; i < finite.length; i++) expect(Number(finite[i])).toBeGreaterThan(Number(finite[i - 1]))
  })

  it('covers exactly the three pollutants skolluft measures', () => {
    expect([...EAQI_POLLUTANTS]).toEqual(['pm25', 'pm10', 'no2'])
  })
})

describe('eaqiLevel', () => {
  it.each(CUT_POINTS)('%s exactly at %d stays in band %i (lower band)', (p, cut, level) => {
    expect(eaqiLevel(p, cut)).toBe(level)
  })

  it.each(CUT_POINTS)('%s just above %d goes to the next band (from %i)', (p, cut, level) => {
    expect(eaqiLevel(p, nextUp(cut))).toBe(level + 1)
    expect(eaqiLevel(p, cut + 0.01)).toBe(level + 1)
  })

  it.each(CUT_POINTS)('%s just below %d is in band %i', (p, cut, level) => {
    expect(eaqiLevel(p, cut - 0.01)).toBe(level)
  })

  it.each([
    ['pm25', 0, 1],
    ['pm10', 0, 1],
    ['no2', 0, 1],
    ['pm25', 2.5, 1],
    ['pm25', 10, 2],
    ['pm25', 35, 3],
    ['pm25', 70, 4],
    ['pm25', 100, 5],
    ['pm10', 30, 2],
    ['pm10', 80, 3],
    ['pm10', 150, 4],
    ['pm10', 250, 5],
    ['no2', 20, 2],
    ['no2', 40, 3],
    ['no2', 80, 4],
    ['no2', 120, 5],
  ] as const)('%s %d µg/m³ inside a band -> %i', (p, value, level) => {
    expect(eaqiLevel(p, value)).toBe(level)
  })

  it.each([
    ['pm25', 1000],
    ['pm10', 2000],
    ['no2', 4000],
    ['pm25', Number.MAX_VALUE],
    ['no2', Number.POSITIVE_INFINITY],
  ] as const)('the top band is open: %s %d -> 6', (p, value) => {
    expect(eaqiLevel(p, value)).toBe(6)
  })

  it.each([-0.5, -20, -0, Number.NEGATIVE_INFINITY])('negative NO2 (%d, a cell near zero) is good', (value) => {
    expect(eaqiLevel('no2', value)).toBe(1)
  })

  it.each(EAQI_POLLUTANTS)('%s NaN has no band', (p) => {
    expect(eaqiLevel(p, Number.NaN)).toBeNull()
  })
})

describe('eaqiBand', () => {
  it.each(REFERENCE_2_1)('level $level is $key', ({ level, key }) => {
    expect(eaqiBand(level).key).toBe(key)
  })

  it.each([0, 7, 1.5, -1])('refuses level %d from an untyped caller', (level) => {
    // The type allows only 1…6; a number from JSON may be anything, so the guard is what is tested here.
    expect(() => eaqiBand(level as EaqiLevel)).toThrow(RangeError)
  })
})

describe('isEaqiPollutant', () => {
  it.each([
    ['pm25', true],
    ['pm10', true],
    ['no2', true],
    ['pm1', false],
    ['temp', false],
    ['rh', false],
    ['o3', false],
    ['so2', false],
    ['PM25', false],
    ['', false],
  ])('%s -> %s', (value, expected) => {
    expect(isEaqiPollutant(value)).toBe(expected)
  })
})

describe('siteIndex', () => {
  it.each([
    ['no values', {}, { band: null, pollutant: null, bands: {} }],
    ['only non-index metrics', { pm1: 400, temp: 20, rh: 95 }, { band: null, pollutant: null, bands: {} }],
    ['one pollutant', { pm25: 12 }, { band: 2, pollutant: 'pm25', bands: { pm25: 2 } }],
    ['all good', { pm25: 1, pm10: 2, no2: 3 }, { band: 1, pollutant: 'pm25', bands: { pm25: 1, pm10: 1, no2: 1 } }],
    [
      'the worst band wins',
      { pm25: 4, pm10: 50, no2: 12 },
      { band: 3, pollutant: 'pm10', bands: { pm25: 1, pm10: 3, no2: 2 } },
    ],
    ['NO2 worst', { pm25: 20, pm10: 50, no2: 151 }, { band: 6, pollutant: 'no2', bands: { pm25: 3, pm10: 3, no2: 6 } }],
    [
      'a tie goes to the first in EAQI_POLLUTANTS order (pm25)',
      { pm25: 20, pm10: 50, no2: 30 },
      { band: 3, pollutant: 'pm25', bands: { pm25: 3, pm10: 3, no2: 3 } },
    ],
    [
      'a tie between pm10 and no2 goes to pm10',
      { pm25: 1, pm10: 150, no2: 80 },
      { band: 4, pollutant: 'pm10', bands: { pm25: 1, pm10: 4, no2: 4 } },
    ],
    [
      'every value on its band 5 cut-point',
      { pm25: 140, pm10: 270, no2: 150 },
      { band: 5, pollutant: 'pm25', bands: { pm25: 5, pm10: 5, no2: 5 } },
    ],
    ['negative NO2 alone', { no2: -3 }, { band: 1, pollutant: 'no2', bands: { no2: 1 } }],
    ['NaN is skipped', { pm25: Number.NaN, pm10: 16 }, { band: 2, pollutant: 'pm10', bands: { pm10: 2 } }],
    ['only NaN', { pm25: Number.NaN, no2: Number.NaN }, { band: null, pollutant: null, bands: {} }],
    [
      'non-index metrics do not count',
      { pm1: 900, pm25: 3, temp: 45 },
      { band: 1, pollutant: 'pm25', bands: { pm25: 1 } },
    ],
  ] as const)('%s', (_what, values, expected) => {
    expect(siteIndex(values)).toEqual(expected)
  })
})
