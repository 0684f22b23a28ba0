import type { EaqiPollutant } from './aqi.ts'

/**
 * Guideline and limit values drawn as reference lines on charts (air-quality reference §1.1–1.3).
 * These are for display: a chart line says "compare with this", it does not decide a breach. The
 * breach rules (allowed exceedances, persistence, hysteresis) are threshold profiles of their own.
 */
export const GUIDELINE_SOURCES = ['who2021', 'eu2008', 'eu2030'] as const
export type GuidelineSource = (typeof GUIDELINE_SOURCES)[number]

export interface GuidelineLine {
  readonly pollutant: EaqiPollutant
  readonly source: GuidelineSource
  /** Averaging period the value applies to; a chart draws only lines whose period matches its resolution. */
  readonly period: 'hour' | 'day' | 'year'
  /** µg/m³ */
  readonly value: number
  /** Short label for a legend, e.g. "WHO 2021 24 h". */
  readonly label: string
}

export const GUIDELINE_LINES: readonly GuidelineLine[] = [
  // WHO Air Quality Guidelines 2021, AQG level (reference §1.1).
  { pollutant: 'pm25', source: 'who2021', period: 'day', value: 15, label: 'WHO 2021 24 h' },
  { pollutant: 'pm25', source: 'who2021', period: 'year', value: 5, label: 'WHO 2021 annual' },
  { pollutant: 'pm10', source: 'who2021', period: 'day', value: 45, label: 'WHO 2021 24 h' },
  { pollutant: 'pm10', source: 'who2021', period: 'year', value: 15, label: 'WHO 2021 annual' },
  { pollutant: 'no2', source: 'who2021', period: 'day', value: 25, label: 'WHO 2021 24 h' },
  { pollutant: 'no2', source: 'who2021', period: 'year', value: 10, label: 'WHO 2021 annual' },
  // EU 2008/50/EC, in force until the end of 2029 (reference §1.2).
  { pollutant: 'pm10', source: 'eu2008', period: 'day', value: 50, label: 'EU 2008/50 day' },
  { pollutant: 'pm10', source: 'eu2008', period: 'year', value: 40, label: 'EU 2008/50 annual' },
  { pollutant: 'pm25', source: 'eu2008', period: 'year', value: 25, label: 'EU 2008/50 annual' },
  { pollutant: 'no2', source: 'eu2008', period: 'hour', value: 200, label: 'EU 2008/50 hour' },
  { pollutant: 'no2', source: 'eu2008', period: 'year', value: 40, label: 'EU 2008/50 annual' },
  // EU 2024/2881, limit values from 1 January 2030 (reference §1.3).
  { pollutant: 'pm25', source: 'eu2030', period: 'day', value: 25, label: 'EU 2030 day' },
  { pollutant: 'pm25', source: 'eu2030', period: 'year', value: 10, label: 'EU 2030 annual' },
  { pollutant: 'pm10', source: 'eu2030', period: 'day', value: 45, label: 'EU 2030 day' },
  { pollutant: 'pm10', source: 'eu2030', period: 'year', value: 20, label: 'EU 2030 annual' },
  { pollutant: 'no2', source: 'eu2030', period: 'hour', value: 200, label: 'EU 2030 hour' },
  { pollutant: 'no2', source: 'eu2030', period: 'day', value: 50, label: 'EU 2030 day' },
  { pollutant: 'no2', source: 'eu2030', period: 'year', value: 20, label: 'EU 2030 annual' },
]

export function guidelineLines(pollutant: EaqiPollutant): GuidelineLine[] {
  return GUIDELINE_LINES.filter((line) => line.pollutant === pollutant)
}
