import { describe, expect, it } from 'vitest'
import { isMetric, METRIC_INFO, METRICS } from './metrics.ts'

describe('metrics', () => {
  it('lists the six v1 quantities once each, in wire order', () => {
    expect(METRICS).toEqual(['pm1', 'pm25', 'pm10', 'no2', 'temp', 'rh'])
    expect(Object.keys(METRIC_INFO).sort()).toEqual([...METRICS].sort())
  })

  it('gives every metric a unit, a label and a non-empty range', () => {
    for (const metric of METRICS) {
      const info = METRIC_INFO[metric]
      expect(info.unit.length, metric).toBeGreaterThan(0)
      expect(info.label.length, metric).toBeGreaterThan(0)
      expect(info.min, metric).toBeLessThan(info.max)
    }
  })

  it('uses µg/m³ for PM and NO2, °C and % for the climate channels', () => {
    expect([METRIC_INFO.pm1.unit, METRIC_INFO.pm25.unit, METRIC_INFO.pm10.unit, METRIC_INFO.no2.unit]).toEqual([
      'µg/m³',
      'µg/m³',
      'µg/m³',
      'µg/m³',
    ])
    expect(METRIC_INFO.temp.unit).toBe('°C')
    expect(METRIC_INFO.rh.unit).toBe('%')
  })

  it('keeps the physical ranges the ingest enforces', () => {
    expect(METRIC_INFO.pm25).toMatchObject({ min: 0, max: 1000 })
    expect(METRIC_INFO.pm10).toMatchObject({ min: 0, max: 2000 })
    expect(METRIC_INFO.no2).toMatchObject({ min: -20, max: 4000 })
    expect(METRIC_INFO.rh).toMatchObject({ min: 0, max: 100 })
    expect(METRIC_INFO.temp).toMatchObject({ min: -50, max: 70 })
    // PM fractions are nested (PM1 ⊂ PM2.5 ⊂ PM10), so their upper bounds must not shrink.
    expect(METRIC_INFO.pm1.max).toBeLessThanOrEqual(METRIC_INFO.pm25.max)
    expect(METRIC_INFO.pm25.max).toBeLessThanOrEqual(METRIC_INFO.pm10.max)
  })

  it('recognises exactly the metric names', () => {
    for (const metric of METRICS) expect(isMetric(metric)).toBe(true)
    for (const other of ['no2_ppb', 'PM25', 'pm2.5', 'pm2_5', 'co2', '', 'toString', '__proto__', 'constructor']) {
      expect(isMetric(other), other).toBe(false)
    }
  })
})
