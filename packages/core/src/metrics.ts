/**
 * The quantities a skolluft sensor reports, with their canonical unit and the range a
 * physically possible reading lies in. Values outside the range are rejected at ingest
 * (air-quality reference §4.1 "Physical range": PM > 500 µg/m³ is beyond the Plantower
 * PMS5003 class, RH outside [0, 100] %, T outside any outdoor sensor spec).
 */
export const METRICS = ['pm1', 'pm25', 'pm10', 'no2', 'temp', 'rh'] as const
export type Metric = (typeof METRICS)[number]

export interface MetricInfo {
  readonly unit: string
  readonly label: string
  /** Inclusive physical bounds; a reading outside them is rejected, not stored. */
  readonly min: number
  readonly max: number
}

export const METRIC_INFO: Readonly<Record<Metric, MetricInfo>> = {
  pm1: { unit: 'µg/m³', label: 'PM1', min: 0, max: 1000 },
  pm25: { unit: 'µg/m³', label: 'PM2.5', min: 0, max: 1000 },
  pm10: { unit: 'µg/m³', label: 'PM10', min: 0, max: 2000 },
  // Electrochemical NO2 cells read slightly negative around zero; -20 µg/m³ is the noise floor we keep.
  no2: { unit: 'µg/m³', label: 'NO2', min: -20, max: 4000 },
  temp: { unit: '°C', label: 'Temperature', min: -50, max: 70 },
  rh: { unit: '%', label: 'Relative humidity', min: 0, max: 100 },
}

export function isMetric(value: string): value is Metric {
  return (METRICS as readonly string[]).includes(value)
}

export type MetricValues = Partial<Record<Metric, number>>
