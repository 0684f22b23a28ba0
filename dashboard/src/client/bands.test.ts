import { EAQI_BANDS, type EaqiLevel } from '@skolluft/core'
import { describe, expect, it } from 'vitest'
import { bandColour, bandRanges, bandSymbol, bandTextColour, contrastRatio, NO_BAND_COLOUR } from './bands.ts'

describe('band colours', () => {
  it('uses the EEA colour of each band and grey without a band', () => {
    for (const band of EAQI_BANDS) expect(bandColour(band.level)).toBe(band.colour)
    expect(bandColour(null)).toBe(NO_BAND_COLOUR)
  })

  it('writes the band number with at least WCAG AA contrast (4.5:1) on every fill', () => {
    for (const level of [1, 2, 3, 4, 5, 6, null] as (EaqiLevel | null)[]) {
      expect(contrastRatio(bandColour(level), bandTextColour(level)), String(level)).toBeGreaterThanOrEqual(4.5)
    }
  })

  it('computes WCAG contrast ratios', () => {
    expect(contrastRatio('#000000', '#ffffff')).toBeCloseTo(21, 5)
    expect(contrastRatio('#777777', '#777777')).toBe(1)
    expect(() => contrastRatio('red', '#ffffff')).toThrow(RangeError)
  })

  it('has a symbol besides the colour: the level, or a dash', () => {
    expect(bandSymbol(4)).toBe('4')
    expect(bandSymbol(null)).toBe('–')
  })

  it('lists the ranges of each band for the legend', () => {
    expect(bandRanges('en', 'pm25')).toEqual(['≤ 5', '5–15', '15–50', '50–90', '90–140', '> 140'])
    expect(bandRanges('sv', 'no2')[5]).toBe('> 150')
  })
})
