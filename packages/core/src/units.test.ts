import { describe, expect, it } from 'vitest'
import { NO2_UGM3_PER_PPB, no2PpbToUgm3 } from './units.ts'

describe('NO2 ppb → µg/m³', () => {
  it('uses the EU reference condition 293.15 K, 101.325 kPa (air-quality reference §4.4)', () => {
    const molarMassGPerMol = 46.0055
    const gasConstant = 8.314462618 // J/(mol·K), CODATA 2018 exact-derived
    const molarVolumeLPerMol = (gasConstant * 293.15) / 101.325
    expect(molarVolumeLPerMol).toBeCloseTo(24.055, 3)
    expect(NO2_UGM3_PER_PPB).toBe(1.9125)
    expect(molarMassGPerMol / molarVolumeLPerMol).toBeCloseTo(NO2_UGM3_PER_PPB, 4)
    // and not the 25 °C (US/UK) factor 1.88
    expect(NO2_UGM3_PER_PPB).not.toBeCloseTo(1.88, 2)
  })

  it('converts linearly through zero', () => {
    expect(no2PpbToUgm3(0)).toBe(0)
    expect(no2PpbToUgm3(1)).toBe(1.9125)
    expect(no2PpbToUgm3(100)).toBeCloseTo(191.25, 10)
    expect(no2PpbToUgm3(-4)).toBeCloseTo(-7.65, 10)
    expect(1 / NO2_UGM3_PER_PPB).toBeCloseTo(0.5229, 4)
  })
})
