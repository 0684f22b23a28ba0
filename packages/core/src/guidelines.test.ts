import { describe, expect, it } from 'vitest'
import { EAQI_POLLUTANTS } from './aqi.ts'
import { GUIDELINE_LINES, GUIDELINE_SOURCES, guidelineLines } from './guidelines.ts'

/**
 * Air-quality reference §1.1–1.3, transcribed by hand (µg/m³): the WHO 2021 AQG column (24 h and annual),
 * EU 2008/50/EC limit values for PM and NO2 (§1.2; the NO2 alert threshold and O3 are not chart lines),
 * and EU 2024/2881 Annex I Table 1 (§1.3). [pollutant, source, period, value]
 */
const REFERENCE: readonly (readonly [string, string, string, number])[] = [
  // §1.1 WHO 2021 AQG
  ['pm25', 'who2021', 'year', 5],
  ['pm25', 'who2021', 'day', 15],
  ['pm10', 'who2021', 'year', 15],
  ['pm10', 'who2021', 'day', 45],
  ['no2', 'who2021', 'year', 10],
  ['no2', 'who2021', 'day', 25],
  // §1.2 EU 2008/50/EC
  ['pm10', 'eu2008', 'day', 50],
  ['pm10', 'eu2008', 'year', 40],
  ['pm25', 'eu2008', 'year', 25],
  ['no2', 'eu2008', 'hour', 200],
  ['no2', 'eu2008', 'year', 40],
  // §1.3 EU 2024/2881 from 1 January 2030
  ['pm25', 'eu2030', 'day', 25],
  ['pm25', 'eu2030', 'year', 10],
  ['pm10', 'eu2030', 'day', 45],
  ['pm10', 'eu2030', 'year', 20],
  ['no2', 'eu2030', 'hour', 200],
  ['no2', 'eu2030', 'day', 50],
  ['no2', 'eu2030', 'year', 20],
]

const key = (pollutant: string, source: string, period: string): string => `${pollutant}/${source}/${period}`

describe('GUIDELINE_LINES against reference §1.1–1.3', () => {
  it.each(REFERENCE)('%s %s %s = %d µg/m³', (pollutant, source, period, value) => {
    const lines = GUIDELINE_LINES.filter((l) => l.pollutant === pollutant && l.source === source && l.period === period)
    expect(lines.map((l) => l.value)).toEqual([value])
  })

  it('has no line the reference does not list', () => {
    const listed = new Set(REFERENCE.map(([p, s, t]) => key(p, s, t)))
    const extra = GUIDELINE_LINES.filter((l) => !listed.has(key(l.pollutant, l.source, l.period)))
    expect(extra).toEqual([])
    expect(GUIDELINE_LINES).toHaveLength(REFERENCE.length)
  })

  it('has at most one line per pollutant, source and period', () => {
    const keys = GUIDELINE_LINES.map((l) => key(l.pollutant, l.source, l.period))
    expect(new Set(keys).size).toBe(keys.length)
  })

  it('uses only the known sources and index pollutants', () => {
    for (const line of GUIDELINE_LINES) {
      expect(GUIDELINE_SOURCES).toContain(line.source)
      expect(EAQI_POLLUTANTS).toContain(line.pollutant)
      expect(['hour', 'day', 'year']).toContain(line.period)
      expect(line.value).toBeGreaterThan(0)
    }
  })

  it('makes the 2030 values no looser than the 2008 ones where both exist', () => {
    for (const line of GUIDELINE_LINES.filter((l) => l.source === 'eu2030')) {
      const old = GUIDELINE_LINES.find(
        (l) => l.source === 'eu2008' && l.pollutant === line.pollutant && l.period === line.period,
      )
      if (old !== undefined) expect(line.value).toBeLessThanOrEqual(old.value)
    }
  })

  it('makes WHO 2021 the strictest line for each pollutant and period it covers', () => {
    for (const who of GUIDELINE_LINES.filter((l) => l.source === 'who2021')) {
      for (const other of GUIDELINE_LINES.filter((l) => l.pollutant === who.pollutant && l.period === who.period)) {
        expect(who.value).toBeLessThanOrEqual(other.value)
      }
    }
  })
})

describe('labels', () => {
  it.each(GUIDELINE_LINES.map((l) => [l.label, l] as const))('%s names its source and period', (_label, line) => {
    const source = { who2021: /^WHO 2021 /, eu2008: /^EU 2008\/50 /, eu2030: /^EU 2030 / }[line.source]
    expect(line.label).toMatch(source)
    const period =
      line.source === 'who2021'
        ? { hour: / 1 h$/, day: / 24 h$/, year: / annual$/ }[line.period]
        : { hour: / hour$/, day: / day$/, year: / annual$/ }[line.period]
    expect(line.label).toMatch(period)
  })

  it.each(EAQI_POLLUTANTS)('%s: every legend entry is distinct', (pollutant) => {
    const labels = guidelineLines(pollutant).map((l) => l.label)
    expect(new Set(labels).size).toBe(labels.length)
  })
})

describe('guidelineLines', () => {
  it.each([
    ['pm25', 5],
    ['pm10', 6],
    ['no2', 7],
  ] as const)('%s has %i lines, all of it and in table order', (pollutant, count) => {
    const lines = guidelineLines(pollutant)
    expect(lines).toHaveLength(count)
    expect(lines).toEqual(GUIDELINE_LINES.filter((l) => l.pollutant === pollutant))
    for (const line of lines) expect(line.pollutant).toBe(pollutant)
  })

  it('covers every line exactly once over the three pollutants', () => {
    expect(EAQI_POLLUTANTS.flatMap((p) => guidelineLines(p))).toHaveLength(GUIDELINE_LINES.length)
  })

  it('returns a new array, so a caller cannot change the table', () => {
    const lines = guidelineLines('no2')
    lines.length = 0
    expect(guidelineLines('no2')).toHaveLength(7)
  })
})
