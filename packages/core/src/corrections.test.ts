import { describe, expect, it } from 'vitest'
import type { AggregatePoint } from './aggregation.ts'
import {
  Calibration,
  CorrectionError,
  colocationPairs,
  createCorrector,
  type FitPair,
  fitLinearCalibration,
  HUMIDITY_CORRECTIONS,
  humidityCorrection,
  humidityCorrectionFor,
  humidityCorrectionsMarkdown,
  MIN_FIT_PAIRS,
  NewCalibration,
  parseCorrectionId,
} from './corrections.ts'
import { expectTablesInDoc } from './doc-tables.testing.ts'

/**
 * Expected numbers are written out from the formulas in air-quality.md §4.2 (not from the code under test):
 *   hackAIR  PM2.5 / (1 + 0.48756 · (RH/100)^8.60068),  PM10 / (1 + 0.81559 · (RH/100)^5.83411)
 *   EPA 2021 piecewise in PA = raw PM2.5 (table in §4.2), clamped at 0.
 */
const hackair = humidityCorrection('rh-hackair@1')
const epa = humidityCorrection('rh-epa-2021@1')

function apply(id: string, metric: 'pm25' | 'pm10', value: number, rh: number): number {
  const c = humidityCorrection(id)
  if (c === undefined) throw new Error(`no ${id}`)
  return c.apply(metric, value, rh)
}

describe('the humidity correction registry', () => {
  it('holds rh-hackair@1 and rh-epa-2021@1, ids name@version, unique', () => {
    expect(hackair?.metrics).toEqual(['pm25', 'pm10'])
    expect(epa?.metrics).toEqual(['pm25'])
    const ids = HUMIDITY_CORRECTIONS.map((c) => c.id)
    expect(new Set(ids).size).toBe(ids.length)
    for (const c of HUMIDITY_CORRECTIONS) expect(c.id).toBe(`${c.name}@${c.version}`)
    expect(parseCorrectionId('rh-epa-2021@1')).toEqual({ name: 'rh-epa-2021', version: 1 })
    expect(parseCorrectionId('rh-epa-2021')).toBeUndefined()
    expect(parseCorrectionId('x@0')).toBeUndefined()
  })

  it('has its table in docs/corrections.md, unchanged', () => {
    expectTablesInDoc(new URL('../../../docs/corrections.md', import.meta.url), [humidityCorrectionsMarkdown()])
  })
})

describe('rh-hackair@1', () => {
  it('divides by the growth factor of each size fraction', () => {
    // PM2.5 40 µg/m³ at 80 %: 0.8^8.60068 = 0.146726…, factor 1.071538…, 37.32952…
    expect(apply('rh-hackair@1', 'pm25', 40, 80)).toBeCloseTo(40 / (1 + 0.48756 * 0.8 ** 8.60068), 12)
    expect(apply('rh-hackair@1', 'pm25', 40, 80)).toBeCloseTo(37.32952, 5)
    // PM10 40 µg/m³ at 80 %: 0.8^5.83411 = 0.272030…, factor 1.221865…, 32.73685…
    expect(apply('rh-hackair@1', 'pm10', 40, 80)).toBeCloseTo(40 / (1 + 0.81559 * 0.8 ** 5.83411), 12)
    expect(apply('rh-hackair@1', 'pm10', 40, 80)).toBeCloseTo(32.73685, 5)
    // At 100 % RH the factors are exactly 1 + a.
    expect(apply('rh-hackair@1', 'pm25', 10, 100)).toBeCloseTo(10 / 1.48756, 12)
    expect(apply('rh-hackair@1', 'pm10', 10, 100)).toBeCloseTo(10 / 1.81559, 12)
    // Dry air: no change.
    expect(apply('rh-hackair@1', 'pm25', 10, 0)).toBe(10)
  })
})

describe('rh-epa-2021@1 (piecewise, RH 50 % unless said)', () => {
  const rhTerm = 0.0862 * 50 // 4.31
  it.each([
    // PA < 30: 0.524·PA − 0.0862·RH + 5.75
    { pa: 10, expected: 5.24 - 4.31 + 5.75 }, // 6.68
    // at 30 (f = 30/20 − 1.5 = 0): 0.524·30 − 4.31 + 5.75 = 17.16
    { pa: 30, expected: 17.16 },
    // 40: f = 0.5, (0.786·0.5 + 0.524·0.5)·40 = 26.2, − 4.31 + 5.75 = 27.64
    { pa: 40, expected: 27.64 },
    // at 50 (third piece): 0.786·50 − 4.31 + 5.75 = 40.74
    { pa: 50, expected: 40.74 },
    // at 210 (f = 0): 0.786·210 − 4.31 + 5.75 = 166.5
    { pa: 210, expected: 166.5 },
    // 235: f = 0.5: 0.738·235 − 4.31·0.5 + 2.966·0.5 + 5.75·0.5 + 8.84e-4·235²·0.5 = 200.04245
    { pa: 235, expected: 173.43 - 2.155 + 1.483 + 2.875 + 24.40945 },
    // at 260: 2.966 + 0.69·260 + 8.84e-4·260² = 2.966 + 179.4 + 59.7584 = 242.1244
    { pa: 260, expected: 242.1244 },
    // 300: 2.966 + 207 + 79.56 = 289.526
    { pa: 300, expected: 289.526 },
  ])('PA $pa → $expected', ({ pa, expected }) => {
    expect(rhTerm).toBeCloseTo(4.31, 12)
    expect(apply('rh-epa-2021@1', 'pm25', pa, 50)).toBeCloseTo(expected, 9)
  })

  it('is continuous at the boundaries 30, 50, 210, 260', () => {
    for (const [b, atB] of [
      [30, 17.16],
      [50, 40.74],
      [210, 166.5],
      [260, 242.1244],
    ] as const) {
      expect(apply('rh-epa-2021@1', 'pm25', b - 1e-9, 50)).toBeCloseTo(atB, 6)
      expect(apply('rh-epa-2021@1', 'pm25', b, 50)).toBeCloseTo(atB, 9)
    }
  })

  it('uses the RH term and clamps at 0', () => {
    // 5 at 90 %: 2.62 − 7.758 + 5.75 = 0.612
    expect(apply('rh-epa-2021@1', 'pm25', 5, 90)).toBeCloseTo(0.612, 9)
    // 2 at 95 %: 1.048 − 8.189 + 5.75 = −1.391 → 0
    expect(apply('rh-epa-2021@1', 'pm25', 2, 95)).toBe(0)
  })
})

describe('humidityCorrectionFor', () => {
  it('chooses by model, needs an RH sensor, covers only its metrics', () => {
    const sensors = ['pm1', 'pm25', 'pm10', 'rh', 'temp'] as const
    expect(humidityCorrectionFor({ model: 'SDS011', sensors: [...sensors] }, 'pm25')?.id).toBe('rh-hackair@1')
    expect(humidityCorrectionFor({ model: 'skolluft-sim', sensors: [...sensors] }, 'pm10')?.id).toBe('rh-hackair@1')
    expect(humidityCorrectionFor({ model: 'Plantower PMS5003', sensors: [...sensors] }, 'pm25')?.id).toBe(
      'rh-epa-2021@1',
    )
    expect(humidityCorrectionFor({ model: 'PurpleAir PA-II', sensors: [...sensors] }, 'pm25')?.id).toBe('rh-epa-2021@1')
    expect(humidityCorrectionFor({ model: 'pms7003', sensors: [...sensors] }, 'pm10')).toBeNull()
    expect(humidityCorrectionFor({ model: 'SDS011', sensors: [...sensors] }, 'pm1')).toBeNull()
    expect(humidityCorrectionFor({ model: 'SDS011', sensors: [...sensors] }, 'no2')).toBeNull()
    expect(humidityCorrectionFor({ model: 'SDS011', sensors: ['pm25', 'pm10'] }, 'pm25')).toBeNull()
  })

  it('keeps old versions selectable and refuses unknown ones', () => {
    const device = { model: 'SDS011', sensors: ['pm25', 'rh'] as ('pm25' | 'rh')[] }
    expect(humidityCorrectionFor(device, 'pm25', { humidityVersions: { 'rh-hackair': 1 } })?.id).toBe('rh-hackair@1')
    expect(() => humidityCorrectionFor(device, 'pm25', { humidityVersions: { 'rh-hackair': 99 } })).toThrow(
      CorrectionError,
    )
  })
})

describe('fitLinearCalibration', () => {
  const line = (xs: readonly number[], f: (x: number) => number): FitPair[] =>
    xs.map((x) => ({ device: x, reference: f(x) }))
  const oneTo = (n: number) => Array.from({ length: n }, (_, i) => i + 1)

  it('recovers a known line exactly (r² = 1, RMSE 0)', () => {
    const fit = fitLinearCalibration(line(oneTo(30), (x) => 0.8 * x - 2))
    expect(fit.slope).toBeCloseTo(0.8, 12)
    expect(fit.intercept).toBeCloseTo(-2, 10)
    expect(fit.n).toBe(30)
    expect(fit.r2).toBeCloseTo(1, 12)
    expect(fit.rmse).toBeCloseTo(0, 10)
  })

  it('matches a hand computation when r² < 1', () => {
    // x = 1..24, y = 2x + e with e = +1 for odd x, −1 for even x. x̄ = 12.5, Σe = 0, Σ(x−x̄)e = −12,
    // Sxx = 24·(24² − 1)/12 = 1150, Sxy = 2·1150 − 12 = 2288, Syy = 4·1150 − 4·12 + 24 = 4576.
    // slope = 2288/1150, intercept = ȳ − slope·x̄ = 25 − 12.5·2288/1150 = 150/1150,
    // SS_res = Syy − Sxy²/Sxx = 24 − 144/1150, r² = Sxy²/(Sxx·Syy), RMSE = √(SS_res/24).
    const fit = fitLinearCalibration(line(oneTo(24), (x) => 2 * x + (x % 2 === 1 ? 1 : -1)))
    expect(fit.slope).toBeCloseTo(2288 / 1150, 12) // 1.989565…
    expect(fit.intercept).toBeCloseTo(150 / 1150, 12) // 0.130435…
    expect(fit.r2).toBeCloseTo(2288 ** 2 / (1150 * 4576), 12) // 0.994783…
    expect(fit.r2).toBeLessThan(1)
    expect(fit.rmse).toBeCloseTo(Math.sqrt((24 - 144 / 1150) / 24), 12) // 0.997388…
    expect(fit.n).toBe(24)
  })

  it(`refuses fewer than ${MIN_FIT_PAIRS} pairs and degenerate data`, () => {
    const tooFew = () => fitLinearCalibration(line(oneTo(MIN_FIT_PAIRS - 1), (x) => x))
    expect(tooFew).toThrow(/at least 24 hourly pairs .* found 23/)
    expect(tooFew).toThrow(expect.objectContaining({ code: 'TOO_FEW_PAIRS' }))
    expect(() => fitLinearCalibration(line(Array(30).fill(5), (x) => x))).toThrow(
      expect.objectContaining({ code: 'DEGENERATE_FIT', message: expect.stringMatching(/device values/) }),
    )
    expect(() => fitLinearCalibration(line(oneTo(30), () => 7))).toThrow(
      expect.objectContaining({ code: 'DEGENERATE_FIT', message: expect.stringMatching(/reference values/) }),
    )
  })
})

describe('colocationPairs', () => {
  const hour = (i: number) => new Date(Date.UTC(2026, 10, 1, i)).toISOString()
  const point = (i: number, mean: number | null, valid = true): AggregatePoint => ({
    t: hour(i),
    mean,
    min: mean ?? 0,
    max: mean ?? 0,
    n: valid ? 60 : 10,
    expected: 60,
    coverage: valid ? 1 : 10 / 60,
    valid,
  })

  it('pairs the valid hours of both devices by hour', () => {
    const pairs = colocationPairs({
      metric: 'no2',
      humidity: null,
      device: [point(0, 10), point(1, 11, false), point(2, 12), point(3, 13)],
      reference: [point(0, 20), point(1, 21), point(3, 23, false), point(4, 24)],
    })
    expect(pairs).toEqual([{ device: 10, reference: 20 }])
  })

  it('humidity-corrects the device mean with its valid hourly RH, skipping hours without one', () => {
    const pairs = colocationPairs({
      metric: 'pm25',
      humidity: hackair ?? null,
      device: [point(0, 40), point(1, 30), point(2, 20)],
      rh: [point(0, 80), point(2, 90, false)],
      reference: [point(0, 30), point(1, 25), point(2, 15)],
    })
    expect(pairs).toEqual([{ device: 40 / (1 + 0.48756 * 0.8 ** 8.60068), reference: 30 }])
  })
})

describe('createCorrector', () => {
  const T = Date.UTC(2026, 10, 1)
  const HOUR = 3_600_000
  const device = { id: 'dev-a', model: 'SDS011', sensors: ['pm25', 'pm10', 'no2', 'rh'] as const }
  const sds = { ...device, sensors: [...device.sensors] }
  const cal = (over: Partial<Calibration>): Calibration =>
    Calibration.parse({
      id: 'cal-1',
      deviceId: 'dev-a',
      metric: 'pm25',
      version: 1,
      slope: 0.5,
      intercept: 1,
      validFrom: T,
      validTo: null,
      basis: { kind: 'manual', after: 'rh-hackair@1', note: null },
      createdAt: T,
      createdBy: 'cli',
      ...over,
    })

  it('applies the humidity correction alone when no calibration is in force', () => {
    const correct = createCorrector(sds, [])
    expect(correct('pm25', T, 40, 80)).toEqual({
      value: 40 / (1 + 0.48756 * 0.8 ** 8.60068),
      correction: 'rh-hackair@1',
    })
    expect(correct('no2', T, 40, 80)).toBeNull()
    expect(correct('pm25', T, 40, undefined)).toBeNull()
    expect(correct('pm25', T, 40, 101)).toBeNull()
  })

  it('chains humidity correction then calibration, picking the version in force at ts', () => {
    const v1 = cal({ id: 'cal-1', version: 1, validFrom: T })
    const v2 = cal({ id: 'cal-9', version: 2, slope: 2, intercept: -1, validFrom: T + 10 * HOUR })
    const other = cal({ id: 'cal-5', deviceId: 'dev-b', slope: 9 })
    const correct = createCorrector(sds, [v2, other, v1])
    const wet = 40 / (1 + 0.48756 * 0.8 ** 8.60068)
    expect(correct('pm25', T - 1, 40, 80)).toEqual({ value: wet, correction: 'rh-hackair@1' })
    expect(correct('pm25', T, 40, 80)).toEqual({ value: 0.5 * wet + 1, correction: 'rh-hackair@1+cal-1@1' })
    expect(correct('pm25', T + 10 * HOUR, 40, 80)).toEqual({ value: 2 * wet - 1, correction: 'rh-hackair@1+cal-9@2' })
    // The calibration was fitted on humidity-corrected values: without RH it is not applied at all.
    expect(correct('pm25', T, 40, undefined)).toBeNull()
  })

  it('ends a retired calibration at validTo; applies a raw calibration without RH', () => {
    const retired = cal({ validTo: T + HOUR })
    const no2 = cal({
      id: 'cal-2',
      metric: 'no2',
      slope: 1.2,
      intercept: -3,
      basis: { kind: 'manual', after: null, note: 'lab' },
    })
    const correct = createCorrector(sds, [retired, no2])
    expect(correct('pm25', T + HOUR - 1, 40, 0)?.correction).toBe('rh-hackair@1+cal-1@1')
    expect(correct('pm25', T + HOUR, 40, 0)).toEqual({ value: 40, correction: 'rh-hackair@1' })
    expect(correct('no2', T, 10, undefined)).toEqual({ value: 1.2 * 10 - 3, correction: 'cal-2@1' })
  })

  it('uses the EPA correction for Plantower-class models and nothing for PM10 there', () => {
    const correct = createCorrector({ id: 'dev-p', model: 'PMS5003', sensors: ['pm25', 'pm10', 'rh'] }, [])
    expect(correct('pm25', T, 40, 50)?.correction).toBe('rh-epa-2021@1')
    expect(correct('pm25', T, 40, 50)?.value).toBeCloseTo(27.64, 9)
    expect(correct('pm10', T, 40, 50)).toBeNull()
  })
})

describe('calibration schemas', () => {
  const base = {
    deviceId: 'dev-a',
    metric: 'pm25',
    slope: 1.1,
    intercept: 0,
    validFrom: 0,
    basis: { kind: 'manual', after: null, note: null },
    createdAt: 0,
    createdBy: 'cli',
  }
  it('accepts a plain manual calibration', () => {
    expect(NewCalibration.safeParse(base).success).toBe(true)
  })
  it.each([
    [{ slope: 0 }, 'slope'],
    [{ slope: 11 }, 'slope'],
    [{ intercept: Number.NaN }, 'intercept'],
    [{ metric: 'pm10', basis: { kind: 'manual', after: 'rh-epa-2021@1', note: null } }, 'basis.after'],
    [{ basis: { kind: 'manual', after: 'rh-hackair@7', note: null } }, 'basis.after'],
    [{ deviceId: 'Not An Id' }, 'deviceId'],
  ])('refuses %j (%s)', (patch, path) => {
    const parsed = NewCalibration.safeParse({ ...base, ...patch })
    expect(parsed.success).toBe(false)
    expect(parsed.error?.issues.map((i) => i.path.join('.'))).toContain(path)
  })
})
