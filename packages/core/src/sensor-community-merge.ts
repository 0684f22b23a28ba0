import { METRICS, type Metric, type MetricValues } from './metrics.ts'
import { SENSOR_COMMUNITY_TYPES } from './sensor-community.ts'

/**
 * Joining the sensors of one Sensor.Community station (`skolluft import sensor-community --merge-station`).
 *
 * The archive has one file per SENSOR: an airrohr node with an SDS011 and a BME280 appears as two sensor ids
 * (e.g. 15092 and 15093) under one `location` id. Imported as two devices, a PM reading never carries the
 * relative humidity measured with it, so the per-reading `high_humidity` flag (reading-qc.ts) and the humidity
 * corrections (corrections.ts, which need the raw RH of the same reading, air-quality §4.2) cannot apply. Merged,
 * the station is one device and each PM reading is joined with the climate reading of the same measuring cycle.
 *
 * Rules (pure, deterministic):
 * - Each PM reading is joined with the NEAREST climate reading within STATION_JOIN_TOLERANCE_MS, and each climate
 *   reading joins at most one PM reading. Pairs are taken closest first (then the earlier PM time, then the earlier
 *   climate time), so a tie between a climate reading before and one after goes to the earlier one, and the result
 *   does not depend on the order of the input.
 * - A joined reading is stored at the PM reading's time with the values of both. A PM reading without a partner
 *   stays PM-only; a climate reading without a partner is its own reading (T/RH only) at its own time.
 * - Every source value ends up in exactly one output reading: nothing is copied into two readings, nothing dropped.
 *
 * Importing again: the same sources give the same (time, values), so storage (idempotent on device and time)
 * stores nothing twice. When earlier imports stored part of a station otherwise (e.g. the PM file of a day imported
 * alone, its climate file later), pass what is stored (`stored`): a sample whose values are already stored stays
 * where it is (a PM sample at its own time; a climate sample in the nearest stored reading within the tolerance
 * that holds its values, alone or joined), and only the other samples are joined among themselves. A value stored
 * before is then neither stored a second time nor lost in an ignored duplicate. One case cannot be mended: a
 * climate sample stamped in the very millisecond of a stored reading that lacks it (storage keeps one reading per
 * time); the caller sees it as a reading whose time is taken and must report it.
 */

/**
 * Largest time difference between a PM reading and the climate reading joined with it. The airrohr firmware reads
 * all its sensors in one measuring cycle and sends them together, one push-API request per sensor, which the server
 * stamps on arrival (device-formats §2.1: no timestamp in the payload, `X-PIN` per module); the archive rows of one
 * cycle therefore differ by about a second (the Aberdeen fixtures: 0–2 s for 99 % of the rows, at most 8 s).
 * 30 s is well under the 145 s sending interval (`sending_intervall_ms = 145000`), so a reading is never joined with
 * the neighbouring cycle. UNVERIFIED, engineering choice.
 */
export const STATION_JOIN_TOLERANCE_MS = 30_000

export type StationRole = 'pm' | 'climate'

const PM_METRICS: readonly Metric[] = ['pm1', 'pm25', 'pm10']

/** A supported type's role in a station: `pm` when it measures particulate matter, `climate` (T/RH) otherwise. */
export function sensorCommunityRole(sensorType: string): StationRole | undefined {
  const metrics = SENSOR_COMMUNITY_TYPES[sensorType]
  if (metrics === undefined) return undefined
  return metrics.some((m) => PM_METRICS.includes(m)) ? 'pm' : 'climate'
}

/** One archive row of a station's sensor; `source` is the caller's handle (e.g. file and line), passed through. */
export interface StationSample<S> {
  /** Epoch ms UTC. */
  readonly ts: number
  readonly values: MetricValues
  readonly source: S
}

export interface StationReading<S> {
  readonly ts: number
  readonly values: MetricValues
  /** `joined` = a PM and a climate reading; `pm` or `climate` = one sample alone. */
  readonly kind: 'joined' | StationRole
  /** The samples whose values it holds: PM first when joined. */
  readonly sources: readonly S[]
}

export interface StationJoinOptions {
  /** Default STATION_JOIN_TOLERANCE_MS; a pair with |Δt| ≤ toleranceMs may join. */
  readonly toleranceMs?: number
  /** The station device's stored readings by time (what earlier imports wrote); see the module comment. */
  readonly stored?: ReadonlyMap<number, MetricValues>
}

interface Candidate {
  readonly gap: number
  readonly pm: number
  readonly climate: number
}

/** Indices of `samples` sorted by time; equal times keep their input order. */
function byTime<S>(samples: readonly StationSample<S>[]): number[] {
  return samples.map((_, i) => i).sort((a, b) => (samples[a]?.ts ?? 0) - (samples[b]?.ts ?? 0) || a - b)
}

/** True when `stored` holds every value of `values` (same metric, same number). */
function holds(stored: MetricValues | undefined, values: MetricValues): boolean {
  return stored !== undefined && METRICS.every((m) => values[m] === undefined || stored[m] === values[m])
}

/**
 * The readings of one station: its PM sensor's samples joined with its climate sensor's samples (module comment).
 * Output ordered by time; at equal times joined and PM readings before climate-only ones, then by input order.
 */
export function joinStationReadings<S>(
  pm: readonly StationSample<S>[],
  climate: readonly StationSample<S>[],
  options: StationJoinOptions = {},
): StationReading<S>[] {
  const tolerance = options.toleranceMs ?? STATION_JOIN_TOLERANCE_MS
  const out: { reading: StationReading<S>; rank: number; position: number }[] = []
  const emit = (ts: number, parts: readonly StationSample<S>[], kind: StationReading<S>['kind'], position: number) => {
    const values: MetricValues = {}
    for (const part of parts) Object.assign(values, part.values)
    out.push({
      reading: { ts, values, kind, sources: parts.map((p) => p.source) },
      rank: kind === 'climate' ? 1 : 0,
      position,
    })
  }

  // Samples an earlier import stored stay where they are (module comment); the others are joined below.
  const pmOrder = byTime(pm)
  const climateOrder = byTime(climate)
  const placed = new Map<number, { pm: StationSample<S>[]; climate: StationSample<S>[]; position: number }>()
  const place = (ts: number, role: StationRole, sample: StationSample<S>, position: number) => {
    let entry = placed.get(ts)
    if (entry === undefined) {
      entry = { pm: [], climate: [], position }
      placed.set(ts, entry)
    }
    entry[role].push(sample)
  }
  const pmPool: number[] = []
  const climatePool: number[] = []
  const stored = options.stored
  const storedTimes = stored === undefined ? [] : [...stored.keys()].sort((a, b) => a - b)
  pmOrder.forEach((index, position) => {
    const p = pm[index]
    if (p === undefined) return
    if (holds(stored?.get(p.ts), p.values)) place(p.ts, 'pm', p, position)
    else pmPool.push(index)
  })
  climateOrder.forEach((index, position) => {
    const c = climate[index]
    if (c === undefined) return
    const at = stored === undefined ? undefined : nearestHolding(storedTimes, stored, c, tolerance)
    if (at !== undefined) place(at, 'climate', c, position)
    else climatePool.push(index)
  })
  for (const [ts, entry] of placed) {
    const kind = entry.pm.length === 0 ? 'climate' : entry.climate.length === 0 ? 'pm' : 'joined'
    emit(ts, [...entry.pm, ...entry.climate], kind, entry.position)
  }

  // Candidate pairs within the tolerance: a window over the sorted climate samples slides with the PM time.
  const pmAt = (i: number) => pm[pmPool[i] ?? -1]
  const climateAt = (i: number) => climate[climatePool[i] ?? -1]
  const candidates: Candidate[] = []
  let start = 0
  for (let pi = 0; pi < pmPool.length; pi += 1) {
    const p = pmAt(pi)
    if (p === undefined) continue
    while (start < climatePool.length && (climateAt(start)?.ts ?? 0) < p.ts - tolerance) start += 1
    for (let ci = start; ci < climatePool.length; ci += 1) {
      const c = climateAt(ci)
      if (c === undefined || c.ts > p.ts + tolerance) break
      candidates.push({ gap: Math.abs(c.ts - p.ts), pm: pi, climate: ci })
    }
  }
  // Closest first; ties: earlier PM, then earlier climate (positions in time order, which also order equal times).
  candidates.sort((a, b) => a.gap - b.gap || a.pm - b.pm || a.climate - b.climate)
  const partnerOfPm = new Map<number, number>()
  const taken = new Set<number>()
  for (const c of candidates) {
    if (partnerOfPm.has(c.pm) || taken.has(c.climate)) continue
    partnerOfPm.set(c.pm, c.climate)
    taken.add(c.climate)
  }
  for (let pi = 0; pi < pmPool.length; pi += 1) {
    const p = pmAt(pi)
    if (p === undefined) continue
    const ci = partnerOfPm.get(pi)
    const c = ci === undefined ? undefined : climateAt(ci)
    if (c === undefined) emit(p.ts, [p], 'pm', pi)
    else emit(p.ts, [p, c], 'joined', pi)
  }
  for (let ci = 0; ci < climatePool.length; ci += 1) {
    const c = climateAt(ci)
    if (c !== undefined && !taken.has(ci)) emit(c.ts, [c], 'climate', ci)
  }
  out.sort((a, b) => a.reading.ts - b.reading.ts || a.rank - b.rank || a.position - b.position)
  return out.map((o) => o.reading)
}

/** The stored time nearest to the sample (the earlier on a tie) within the tolerance that holds its values. */
function nearestHolding<S>(
  times: readonly number[],
  stored: ReadonlyMap<number, MetricValues>,
  sample: StationSample<S>,
  tolerance: number,
): number | undefined {
  let lo = 0
  let hi = times.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if ((times[mid] ?? 0) < sample.ts - tolerance) lo = mid + 1
    else hi = mid
  }
  let best: number | undefined
  for (let i = lo; i < times.length; i += 1) {
    const t = times[i] ?? 0
    if (t > sample.ts + tolerance) break
    if (!holds(stored.get(t), sample.values)) continue
    if (best === undefined || Math.abs(t - sample.ts) < Math.abs(best - sample.ts)) best = t
  }
  return best
}

/**
 * The merged device's model: the PM sensor's type then the climate sensor's, joined by `+` (`SDS011+BME280`), so
 * the humidity correction chosen by model (corrections.ts humidityCorrectionName) follows the PM sensor.
 */
export function stationModel(pmType: string | undefined, climateType: string | undefined): string {
  return [pmType, climateType].filter((t): t is string => t !== undefined).join('+')
}

/** The sensor types a merged device's model names (`SDS011+BME280` → SDS011, BME280). */
export function stationModelTypes(model: string): string[] {
  return model.split('+')
}
