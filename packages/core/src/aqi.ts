import type { MetricValues } from './metrics.ts'

/**
 * European Air Quality Index (EEA), revised 2024: six bands from hourly concentrations of each
 * pollutant; a site's index is its worst band (air-quality reference §2.1, ETC HE Report 2024/17).
 * skolluft measures three of the five index pollutants (no O3, no SO2), so its index is the worst
 * band among PM2.5, PM10 and NO2: an indicative index, never an official one.
 */
export const EAQI_POLLUTANTS = ['pm25', 'pm10', 'no2'] as const
export type EaqiPollutant = (typeof EAQI_POLLUTANTS)[number]

export const EAQI_BAND_KEYS = ['good', 'fair', 'moderate', 'poor', 'very_poor', 'extremely_poor'] as const
export type EaqiBandKey = (typeof EAQI_BAND_KEYS)[number]

/** 1 (good) … 6 (extremely poor). */
export type EaqiLevel = 1 | 2 | 3 | 4 | 5 | 6

export interface EaqiBand {
  readonly level: EaqiLevel
  readonly key: EaqiBandKey
  /** EEA colour of the band (reference §2.1). */
  readonly colour: string
  /** Upper cut-point per pollutant in µg/m³, inclusive; null for the open top band. */
  readonly upper: Readonly<Record<EaqiPollutant, number | null>>
}

export const EAQI_BANDS: readonly EaqiBand[] = [
  { level: 1, key: 'good', colour: '#50F0E6', upper: { pm25: 5, pm10: 15, no2: 10 } },
  { level: 2, key: 'fair', colour: '#50CCAA', upper: { pm25: 15, pm10: 45, no2: 25 } },
  { level: 3, key: 'moderate', colour: '#F0E641', upper: { pm25: 50, pm10: 120, no2: 60 } },
  { level: 4, key: 'poor', colour: '#FF5050', upper: { pm25: 90, pm10: 195, no2: 100 } },
  { level: 5, key: 'very_poor', colour: '#960032', upper: { pm25: 140, pm10: 270, no2: 150 } },
  { level: 6, key: 'extremely_poor', colour: '#7D2181', upper: { pm25: null, pm10: null, no2: null } },
]

export function isEaqiPollutant(value: string): value is EaqiPollutant {
  return (EAQI_POLLUTANTS as readonly string[]).includes(value)
}

/**
 * The band of one concentration. A value exactly on a cut-point belongs to the lower band (reference
 * §2.1, from third-party code; marked there as unverified against the EEA text). Negative values (an
 * electrochemical NO2 cell near zero) are "good"; NaN has no band.
 */
export function eaqiLevel(pollutant: EaqiPollutant, value: number): EaqiLevel | null {
  if (Number.isNaN(value)) return null
  for (const band of EAQI_BANDS) {
    const upper = band.upper[pollutant]
    if (upper === null || value <= upper) return band.level
  }
  return null
}

export function eaqiBand(level: EaqiLevel): EaqiBand {
  const band = EAQI_BANDS[level - 1]
  if (band === undefined) throw new RangeError(`no EAQI level ${level}`)
  return band
}

export interface SiteIndex {
  /** Worst level over the pollutants that have a value; null when none has. */
  readonly band: EaqiLevel | null
  /** The pollutant that sets `band` (the first in EAQI_POLLUTANTS order on a tie). */
  readonly pollutant: EaqiPollutant | null
  readonly bands: Partial<Record<EaqiPollutant, EaqiLevel>>
}

/** The index of a set of concentrations (latest values or hourly means). */
export function siteIndex(values: MetricValues): SiteIndex {
  const bands: Partial<Record<EaqiPollutant, EaqiLevel>> = {}
  let band: EaqiLevel | null = null
  let pollutant: EaqiPollutant | null = null
  for (const p of EAQI_POLLUTANTS) {
    const value = values[p]
    if (value === undefined) continue
    const level = eaqiLevel(p, value)
    if (level === null) continue
    bands[p] = level
    if (band === null || level > band) {
      band = level
      pollutant = p
    }
  }
  return { band, pollutant, bands }
}
