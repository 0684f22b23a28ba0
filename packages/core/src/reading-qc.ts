import { HOUR_MS } from './aggregation.ts'
import { METRIC_INFO, METRICS, type Metric } from './metrics.ts'
import { PM_SENSOR_MAX_UG_M3, QC_POLLUTANTS, type QcPollutant, STUCK_MIN_HOURS, STUCK_MIN_SAMPLES } from './quality.ts'

/**
 * Per-reading quality flags (air-quality reference §4.1 "Recommended check pipeline (per raw sample …)").
 * Pure and deterministic: the caller passes the readings of ONE device around the range to check and gets back a
 * bitmask per reading. Flags are stored beside the value; a value is never changed or dropped because of a flag
 * (reference §4.2 "store raw, corrected and QC flag side by side; never overwrite raw").
 *
 * The rules and their numbers are documented for researchers in docs/quality-flags.md, whose tables are generated
 * from READING_FLAG_INFO and kept equal to the code by reading-qc.test.ts. Every rule or number change bumps
 * READING_QC_VERSION, which is stored with each checked hour.
 */

/** Order matters: the index of a flag is its bit within a metric's byte of the mask. Append only. */
export const READING_FLAGS = [
  'out_of_range',
  'pm_order',
  'stuck',
  'spike',
  'rate_of_change',
  'high_humidity',
  'warm_up',
] as const
export type ReadingFlag = (typeof READING_FLAGS)[number]

/** Bump when a rule or number changes; stored with each checked hour so old flags can be told from new ones. */
export const READING_QC_VERSION = 1

export const QC_LEVELS = ['ok', 'suspect', 'invalid'] as const
export type QcLevel = (typeof QC_LEVELS)[number]

const MINUTE_MS = 60_000
const PM = ['pm1', 'pm25', 'pm10'] as const satisfies readonly Metric[]
type PmMetric = (typeof PM)[number]

// ---------------------------------------------------------------------------------------------------------------
// Numbers. Each cites reference §4.1 or says it is an engineering choice (UNVERIFIED).

/**
 * Physical range per reading. PM: below 0 or above the optical sensor's range (reference §4.1, quality.ts
 * PM_SENSOR_MAX_UG_M3 = 500; ingest keeps values up to METRIC_INFO.max so a real smoke event is stored, flagged).
 * RH: [0, 100] % (§4.1). NO2: the electrochemical noise floor and ceiling ingest keeps (METRIC_INFO.no2).
 * Temperature: see QC_TEMP_MIN_C / QC_TEMP_MAX_C.
 */
export const QC_TEMP_MAX_C = 65 // §4.1: Sablan et al. QC (PurpleAir_data_wrangling) discards T > 65 °C
/** Lower end of the operating range of the BME280 / DHT22 class of sensors (datasheets); UNVERIFIED, engineering choice. */
export const QC_TEMP_MIN_C = -40

export const QC_RANGE: Readonly<Record<Metric, { readonly min: number; readonly max: number }>> = {
  pm1: { min: METRIC_INFO.pm1.min, max: PM_SENSOR_MAX_UG_M3 },
  pm25: { min: METRIC_INFO.pm25.min, max: PM_SENSOR_MAX_UG_M3 },
  pm10: { min: METRIC_INFO.pm10.min, max: PM_SENSOR_MAX_UG_M3 },
  no2: { min: METRIC_INFO.no2.min, max: METRIC_INFO.no2.max },
  temp: { min: QC_TEMP_MIN_C, max: QC_TEMP_MAX_C },
  rh: { min: METRIC_INFO.rh.min, max: METRIC_INFO.rh.max },
}

/**
 * PM ordering (§4.1 "PM1 ≤ PM2.5 ≤ PM10, mass fractions are nested"): a finer fraction may exceed a coarser one of
 * the same reading by this much before it is flagged, for rounding and sensor noise at low concentrations
 * (sensors report to 0.1 or 1 µg/m³). UNVERIFIED, engineering choice (quality.ts uses 1 µg/m³ and 10 % for hourly
 * means, where averaging already removes most noise).
 */
export const QC_PM_ORDER_TOLERANCE_UG_M3 = 0.5

/**
 * Spike (§4.1 "single sample > k × rolling median (e.g. k = 5) and neighbours normal → flag, not delete";
 * design recommendation, UNVERIFIED): the rolling median is over the previous QC_SPIKE_WINDOW_MS of the metric.
 */
export const QC_SPIKE_FACTOR = 5
export const QC_SPIKE_WINDOW_MS = 30 * MINUTE_MS
/**
 * The spike must also exceed the median by this much, so that noise around a near-zero median (5 × 0.4 = 2 µg/m³)
 * is not a spike. PM: 20 µg/m³; NO2: 40 µg/m³, twice the −20 µg/m³ noise floor ingest keeps for electrochemical
 * cells (METRIC_INFO.no2.min). UNVERIFIED, engineering choices.
 */
export const QC_SPIKE_MIN_EXCESS: Readonly<Record<QcPollutant, number>> = { pm1: 20, pm25: 20, pm10: 20, no2: 40 }
/** A median of fewer readings is no baseline. UNVERIFIED, engineering choice. */
export const QC_SPIKE_MIN_BASELINE_SAMPLES = 3
/** The readings just before and after a spike ("neighbours") must be this close in time to count. UNVERIFIED. */
export const QC_SPIKE_NEIGHBOUR_MAX_GAP_MS = 15 * MINUTE_MS

/**
 * Rate of change (§4.1 "|Δ| between consecutive 1-min values > plausible max (e.g. 100 µg/m³/min PM2.5 at a
 * school) → flag"; design recommendation, UNVERIFIED). Readings further apart than QC_RATE_MAX_GAP_MS are not
 * compared; closer than a minute, the change is taken per minute (a 1 Hz sensor's noise is not a rate).
 */
export const QC_RATE_MAX_UG_M3_PER_MIN = 100
export const QC_RATE_MAX_GAP_MS = 5 * MINUTE_MS

/**
 * Humidity gate (§4.1 "optical PM above ~70 % RH is biased high (SDS011 datasheet range ends at 70 % RH)"). A
 * suspect flag for research use, not a suppression: quality.ts HIGH_HUMIDITY_PERCENT (90 %) is the hourly
 * threshold that suppresses alerts.
 */
export const QC_HIGH_HUMIDITY_PERCENT = 70

/**
 * Warm-up (§4.3 "exclude warm-up period after power-on"; durations UNVERIFIED, engineering choices). A reading
 * after the device was silent for at least QC_SILENCE_MIN_MS, or QC_SILENCE_MIN_INTERVALS of its own reporting
 * interval when that is longer, is taken as a power-on; the readings within QC_WARM_UP_MS of it are flagged.
 * NO2: 30 min (the auxiliary electrode's baseline decays after power-on, §4.3); optical PM: 60 s (fan and laser
 * settle; SDS011-class firmware waits about 30 s before measuring).
 */
export const QC_SILENCE_MIN_MS = 10 * MINUTE_MS
export const QC_SILENCE_MIN_INTERVALS = 3
export const QC_WARM_UP_MS: Readonly<Record<QcPollutant, number>> = {
  pm1: MINUTE_MS,
  pm25: MINUTE_MS,
  pm10: MINUTE_MS,
  no2: 30 * MINUTE_MS,
}

const LONGEST_STUCK_MS = Math.max(...QC_POLLUTANTS.map((m) => STUCK_MIN_HOURS[m])) * HOUR_MS

/**
 * How far before the checked range the caller must load readings of the same device: the longest stuck run
 * (6 h, NO2) plus one hour, which covers the spike median window (30 min), warm-up detection (30 min NO2 warm-up
 * after a 10 min silence) and a silence at the start of a stuck run for devices reporting at least every 20 min.
 * With this much context, the flags of a reading do not depend on where the loaded window starts.
 */
export const QC_CONTEXT_BEFORE_MS = LONGEST_STUCK_MS + HOUR_MS
/** How far after the range the caller must load: the spike rule needs the next reading (its neighbour). */
export const QC_CONTEXT_AFTER_MS = QC_SPIKE_NEIGHBOUR_MAX_GAP_MS

// ---------------------------------------------------------------------------------------------------------------
// What each flag means (the source of docs/quality-flags.md).

export interface ReadingFlagInfo {
  readonly level: Exclude<QcLevel, 'ok'>
  /** Metrics the flag can be set on. */
  readonly metrics: readonly Metric[]
  /** The rule with its numbers, as implemented. */
  readonly rule: string
  /** Where the rule and its numbers come from; UNVERIFIED where the reference says so. */
  readonly basis: string
}

const stuckHours = (metric: QcPollutant): number => STUCK_MIN_HOURS[metric]
const minutes = (ms: number): number => ms / MINUTE_MS

export const READING_FLAG_INFO: Readonly<Record<ReadingFlag, ReadingFlagInfo>> = {
  out_of_range: {
    level: 'invalid',
    metrics: METRICS,
    rule:
      `value outside the physical range or not a finite number: PM (pm1, pm25, pm10) < ${QC_RANGE.pm25.min} or > ` +
      `${QC_RANGE.pm25.max} µg/m³; rh < ${QC_RANGE.rh.min} or > ${QC_RANGE.rh.max} %; temp < ${QC_RANGE.temp.min} or > ` +
      `${QC_RANGE.temp.max} °C; no2 < ${QC_RANGE.no2.min} or > ${QC_RANGE.no2.max} µg/m³`,
    basis:
      `air-quality reference §4.1 physical range (Sablan et al. QC: discard PM > 500 µg/m³, RH > 100 %, T > 65 °C); ` +
      `temp < ${QC_TEMP_MIN_C} °C: BME280/DHT22-class operating range, UNVERIFIED; no2 bounds: the electrochemical ` +
      `noise floor and ceiling ingest keeps`,
  },
  pm_order: {
    level: 'suspect',
    metrics: PM,
    rule:
      `in one reading a finer PM fraction exceeds a coarser one by more than ${QC_PM_ORDER_TOLERANCE_UG_M3} µg/m³ ` +
      `(pm1 > pm25, pm25 > pm10 or pm1 > pm10); both metrics of the pair are flagged`,
    basis: `§4.1 PM ordering (mass fractions are nested); tolerance ${QC_PM_ORDER_TOLERANCE_UG_M3} µg/m³ UNVERIFIED`,
  },
  stuck: {
    level: 'invalid',
    metrics: QC_POLLUTANTS,
    rule:
      `the value is not zero and every reading of the metric for at least the last ${stuckHours('pm25')} h (PM) / ` +
      `${stuckHours('no2')} h (no2) had exactly the same value (at least ${STUCK_MIN_SAMPLES} readings); looks back ` +
      `only, so the first ${stuckHours('pm25')} h / ${stuckHours('no2')} h of a run are not flagged; a pause in the ` +
      `metric's readings as long as a power-on silence (see warm_up) starts a new run; zero is never stuck (clean air ` +
      `reads 0)`,
    basis: '§4.1 stuck / flat-line (sensortoolkit QC_Persistent_Values); run lengths UNVERIFIED',
  },
  spike: {
    level: 'suspect',
    metrics: QC_POLLUTANTS,
    rule:
      `value > ${QC_SPIKE_FACTOR} × the median of the metric's readings in the previous ${minutes(QC_SPIKE_WINDOW_MS)} ` +
      `min (at least ${QC_SPIKE_MIN_BASELINE_SAMPLES} readings) and more than ${QC_SPIKE_MIN_EXCESS.pm25} µg/m³ (PM) / ` +
      `${QC_SPIKE_MIN_EXCESS.no2} µg/m³ (no2) above that median, while the readings just before and just after ` +
      `(each within ${minutes(QC_SPIKE_NEIGHBOUR_MAX_GAP_MS)} min) are not above that bound`,
    basis:
      '§4.1 spike (k × rolling median, neighbours normal): design recommendation, UNVERIFIED; all numbers UNVERIFIED',
  },
  rate_of_change: {
    level: 'suspect',
    metrics: PM,
    rule:
      `the value changed from the previous reading of the metric (at most ${minutes(QC_RATE_MAX_GAP_MS)} min ` +
      `earlier) by more than ${QC_RATE_MAX_UG_M3_PER_MIN} µg/m³ per minute (readings less than 1 min apart: by more ` +
      `than ${QC_RATE_MAX_UG_M3_PER_MIN} µg/m³); the later reading is flagged`,
    basis: '§4.1 rate of change (e.g. 100 µg/m³/min PM2.5 at a school): design recommendation, UNVERIFIED',
  },
  high_humidity: {
    level: 'suspect',
    metrics: PM,
    rule:
      `optical PM while the relative humidity of the same reading is above ${QC_HIGH_HUMIDITY_PERCENT} % ` +
      `(a reading without its own rh is not flagged)`,
    basis:
      '§4.1 humidity gate (SDS011 datasheet range ends at 70 % RH; optical PM biased high above ~70 %), ' +
      'opendata-stuttgart/meta wiki',
  },
  warm_up: {
    level: 'suspect',
    metrics: QC_POLLUTANTS,
    rule:
      `readings less than ${minutes(QC_WARM_UP_MS.no2)} min (no2) / ${QC_WARM_UP_MS.pm25 / 1000} s (PM) after a ` +
      `power-on, taken to be the first reading after the device was silent for at least ` +
      `${minutes(QC_SILENCE_MIN_MS)} min (or ${QC_SILENCE_MIN_INTERVALS} × its reporting interval, when longer)`,
    basis: '§4.3 exclude the warm-up period after power-on (electrochemical baseline decays); durations UNVERIFIED',
  },
}

// ---------------------------------------------------------------------------------------------------------------
// The bitmask. 8 bits per metric: metric index i (METRICS order) → bits [8i, 8i+8); flag j (READING_FLAGS order)
// → bit 8i+j; bit 8i+7 is reserved (0). 6 metrics × 8 bits = 48 bits < 2^53: an exact JS number and SQLite INTEGER.
// Bits above 31 rule out JS bitwise operators on the whole mask; a metric's byte is taken out arithmetically.

export const QC_BITS_PER_METRIC = 8
const BYTE = 2 ** QC_BITS_PER_METRIC
const MAX_MASK = BYTE ** METRICS.length - 1

export class QcMaskError extends Error {
  readonly code = 'invalid_qc_mask'
}

function metricIndex(metric: Metric): number {
  const i = METRICS.indexOf(metric)
  if (i < 0) throw new RangeError(`unknown metric ${String(metric)}`)
  return i
}

function flagIndex(flag: ReadingFlag): number {
  const j = READING_FLAGS.indexOf(flag)
  if (j < 0) throw new RangeError(`unknown reading flag ${String(flag)}`)
  return j
}

/** The position of a flag's bit in the mask (0 = least significant): 8 × metric index + flag index. */
export function flagBitIndex(metric: Metric, flag: ReadingFlag): number {
  return QC_BITS_PER_METRIC * metricIndex(metric) + flagIndex(flag)
}

/** The mask with only this flag of this metric set: 2 ** flagBitIndex(metric, flag). Add distinct bits to combine. */
export function flagBit(metric: Metric, flag: ReadingFlag): number {
  return 2 ** flagBitIndex(metric, flag)
}

/** The 8 bits of one metric, as a number 0–255. Throws QcMaskError when `mask` is not a mask. */
export function metricByte(mask: number, metric: Metric): number {
  if (!Number.isSafeInteger(mask) || mask < 0 || mask > MAX_MASK) {
    throw new QcMaskError(`${mask} is not a reading QC mask (an integer 0–${MAX_MASK})`)
  }
  return Math.floor(mask / BYTE ** metricIndex(metric)) % BYTE
}

/** The flags of one metric set in `mask`, in READING_FLAGS order. Reserved bits are ignored. */
export function flagsOf(mask: number, metric: Metric): ReadingFlag[] {
  const byte = metricByte(mask, metric)
  return READING_FLAGS.filter((_, j) => (byte & (1 << j)) !== 0)
}

/** The worst level among the flags ('invalid' > 'suspect' > 'ok'); 'ok' when there are none. */
export function qcLevel(flags: readonly ReadingFlag[]): QcLevel {
  let level: QcLevel = 'ok'
  for (const flag of flags) {
    const l = READING_FLAG_INFO[flag].level
    if (l === 'invalid') return l
    level = l
  }
  return level
}

/** qcLevel(flagsOf(mask, metric)). */
export function maskLevel(mask: number, metric: Metric): QcLevel {
  return qcLevel(flagsOf(mask, metric))
}

/** Bitwise OR of two masks (JS `|` works on 32 bits only). */
export function orMasks(a: number, b: number): number {
  let out = 0
  for (let i = 0; i < METRICS.length; i += 1) {
    const metric = METRICS[i]
    if (metric === undefined) continue
    out += (metricByte(a, metric) | metricByte(b, metric)) * BYTE ** i
  }
  return out
}

// ---------------------------------------------------------------------------------------------------------------
// The checks.

export interface QcSample {
  readonly ts: number
  readonly values: Partial<Record<Metric, number>>
}

/** One metric's readings in time order: positions in the sample array, times and values. */
interface Series {
  readonly at: number[]
  readonly ts: number[]
  readonly v: number[]
}

/** Flag bytes per sample and metric, one Uint8Array slot per (sample, metric). */
type Flags = Uint8Array

const M = METRICS.length

function set(flags: Flags, sample: number, metric: Metric, flag: ReadingFlag): void {
  const k = sample * M + metricIndex(metric)
  flags[k] = (flags[k] ?? 0) | (1 << flagIndex(flag))
}

function seriesOf(samples: readonly QcSample[], metric: Metric): Series {
  const s: Series = { at: [], ts: [], v: [] }
  samples.forEach((sample, i) => {
    const v = sample.values[metric]
    if (v === undefined || !Number.isFinite(v)) return
    s.at.push(i)
    s.ts.push(sample.ts)
    s.v.push(v)
  })
  return s
}

/** First index with sorted[i] >= value. */
function lowerBound(sorted: readonly number[], value: number): number {
  let lo = 0
  let hi = sorted.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if ((sorted[mid] ?? 0) < value) lo = mid + 1
    else hi = mid
  }
  return lo
}

function median(sorted: readonly number[]): number {
  const mid = sorted.length >>> 1
  if (sorted.length % 2 === 1) return sorted[mid] ?? 0
  return ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2
}

function checkRange(samples: readonly QcSample[], inRange: (i: number) => boolean, flags: Flags): void {
  samples.forEach((sample, i) => {
    if (!inRange(i)) return
    for (const metric of METRICS) {
      const v = sample.values[metric]
      if (v === undefined) continue
      const { min, max } = QC_RANGE[metric]
      if (!Number.isFinite(v) || v < min || v > max) set(flags, i, metric, 'out_of_range')
    }
  })
}

const PM_PAIRS: readonly (readonly [PmMetric, PmMetric])[] = [
  ['pm1', 'pm25'],
  ['pm25', 'pm10'],
  ['pm1', 'pm10'],
]

function checkOrderAndHumidity(samples: readonly QcSample[], inRange: (i: number) => boolean, flags: Flags): void {
  samples.forEach((sample, i) => {
    if (!inRange(i)) return
    const { values } = sample
    for (const [finer, coarser] of PM_PAIRS) {
      const f = values[finer]
      const c = values[coarser]
      if (f === undefined || c === undefined || !Number.isFinite(f) || !Number.isFinite(c)) continue
      if (f - c > QC_PM_ORDER_TOLERANCE_UG_M3) {
        set(flags, i, finer, 'pm_order')
        set(flags, i, coarser, 'pm_order')
      }
    }
    const rh = values.rh
    // An impossible RH (out_of_range) says nothing about the aerosol.
    if (rh === undefined || !(rh > QC_HIGH_HUMIDITY_PERCENT && rh <= QC_RANGE.rh.max)) return
    for (const metric of PM) {
      const v = values[metric]
      if (v !== undefined && Number.isFinite(v)) set(flags, i, metric, 'high_humidity')
    }
  })
}

function checkStuck(
  s: Series,
  metric: QcPollutant,
  silenceMs: number,
  inRange: (i: number) => boolean,
  flags: Flags,
): void {
  const minMs = STUCK_MIN_HOURS[metric] * HOUR_MS
  let start = 0
  for (let k = 0; k < s.v.length; k += 1) {
    const v = s.v[k] ?? 0
    const t = s.ts[k] ?? 0
    if (k > 0 && (v !== s.v[k - 1] || t - (s.ts[k - 1] ?? 0) >= silenceMs)) start = k
    const at = s.at[k] ?? 0
    if (v === 0 || !inRange(at)) continue
    if (k - start + 1 >= STUCK_MIN_SAMPLES && t - (s.ts[start] ?? 0) >= minMs) set(flags, at, metric, 'stuck')
  }
}

function checkSpike(s: Series, metric: QcPollutant, inRange: (i: number) => boolean, flags: Flags): void {
  const window: number[] = [] // values of the readings in [t - window, t), sorted
  let lo = 0 // oldest reading in the window
  const n = s.v.length
  for (let k = 0; k < n; k += 1) {
    const t = s.ts[k] ?? 0
    if (k > 0) window.splice(lowerBound(window, s.v[k - 1] ?? 0), 0, s.v[k - 1] ?? 0)
    while (lo < k && (s.ts[lo] ?? 0) < t - QC_SPIKE_WINDOW_MS) {
      window.splice(lowerBound(window, s.v[lo] ?? 0), 1)
      lo += 1
    }
    const at = s.at[k] ?? 0
    if (!inRange(at) || window.length < QC_SPIKE_MIN_BASELINE_SAMPLES || k + 1 >= n) continue
    const med = median(window)
    const bound = Math.max(QC_SPIKE_FACTOR * med, med + QC_SPIKE_MIN_EXCESS[metric])
    const v = s.v[k] ?? 0
    if (!(v > bound)) continue
    // Neighbours normal: the readings just before and after exist, are close, and are not above the bound.
    const prevOk = t - (s.ts[k - 1] ?? 0) <= QC_SPIKE_NEIGHBOUR_MAX_GAP_MS && (s.v[k - 1] ?? 0) <= bound
    const nextOk = (s.ts[k + 1] ?? 0) - t <= QC_SPIKE_NEIGHBOUR_MAX_GAP_MS && (s.v[k + 1] ?? 0) <= bound
    if (prevOk && nextOk) set(flags, at, metric, 'spike')
  }
}

function checkRate(s: Series, metric: PmMetric, inRange: (i: number) => boolean, flags: Flags): void {
  for (let k = 1; k < s.v.length; k += 1) {
    const at = s.at[k] ?? 0
    const dt = (s.ts[k] ?? 0) - (s.ts[k - 1] ?? 0)
    if (!inRange(at) || dt > QC_RATE_MAX_GAP_MS) continue
    const perMinute = (Math.abs((s.v[k] ?? 0) - (s.v[k - 1] ?? 0)) * MINUTE_MS) / Math.max(dt, MINUTE_MS)
    if (perMinute > QC_RATE_MAX_UG_M3_PER_MIN) set(flags, at, metric, 'rate_of_change')
  }
}

function checkWarmUp(
  samples: readonly QcSample[],
  contextStart: number,
  silenceMs: number,
  inRange: (i: number) => boolean,
  flags: Flags,
): void {
  let powerOn = Number.NEGATIVE_INFINITY
  samples.forEach((sample, i) => {
    const previous = i === 0 ? contextStart : (samples[i - 1]?.ts ?? contextStart)
    // The first loaded reading with nothing in the context before it: silent since at least the context start.
    if (sample.ts - previous >= silenceMs) powerOn = sample.ts
    if (!inRange(i)) return
    for (const metric of QC_POLLUTANTS) {
      const v = sample.values[metric]
      if (v === undefined || !Number.isFinite(v) || sample.ts - powerOn >= QC_WARM_UP_MS[metric]) continue
      set(flags, i, metric, 'warm_up')
    }
  })
}

/** The silence (ms) after which a device's next reading counts as a power-on. */
export function qcSilenceMs(intervalS: number): number {
  const interval = Number.isFinite(intervalS) && intervalS > 0 ? intervalS * 1000 : 0
  return Math.max(QC_SILENCE_MIN_MS, QC_SILENCE_MIN_INTERVALS * interval)
}

function sortedByTs(samples: readonly QcSample[]): readonly QcSample[] {
  for (let i = 1; i < samples.length; i += 1) {
    if ((samples[i]?.ts ?? 0) < (samples[i - 1]?.ts ?? 0)) return [...samples].sort((a, b) => a.ts - b.ts)
  }
  return samples
}

/**
 * Flags for the readings of ONE device whose ts lies in [from, to); `samples` sorted by ts (sorted here if not),
 * covering [from − QC_CONTEXT_BEFORE_MS, to + QC_CONTEXT_AFTER_MS). Returns ts → mask, only for masks ≠ 0 (two
 * readings with the same ts share one entry, their masks OR-ed). Deterministic; O(n · w) for n readings and w
 * readings per spike window (a sorted sliding window), so ~O(n) at the usual one reading a minute.
 */
export function checkReadings(
  input: readonly QcSample[],
  range: { from: number; to: number },
  device: { intervalS: number },
): Map<number, number> {
  const samples = sortedByTs(input)
  const flags: Flags = new Uint8Array(samples.length * M)
  const inRange = (i: number): boolean => {
    const ts = samples[i]?.ts
    return ts !== undefined && ts >= range.from && ts < range.to
  }
  const silenceMs = qcSilenceMs(device.intervalS)

  checkRange(samples, inRange, flags)
  checkOrderAndHumidity(samples, inRange, flags)
  for (const metric of QC_POLLUTANTS) {
    const series = seriesOf(samples, metric)
    checkStuck(series, metric, silenceMs, inRange, flags)
    checkSpike(series, metric, inRange, flags)
    if (metric !== 'no2') checkRate(series, metric, inRange, flags)
  }
  checkWarmUp(samples, range.from - QC_CONTEXT_BEFORE_MS, silenceMs, inRange, flags)

  const out = new Map<number, number>()
  samples.forEach((sample, i) => {
    if (!inRange(i)) return
    let mask = 0
    for (let m = 0; m < M; m += 1) mask += (flags[i * M + m] ?? 0) * BYTE ** m
    if (mask === 0) return
    const before = out.get(sample.ts)
    out.set(sample.ts, before === undefined ? mask : orMasks(before, mask))
  })
  return out
}

// ---------------------------------------------------------------------------------------------------------------
// Documentation tables (docs/quality-flags.md; reading-qc.test.ts keeps the doc equal to these).

/** One row per flag: bit, flag, level, metrics, rule, basis. */
export function readingFlagsMarkdown(): string {
  const lines = ['| bit | flag | level | metrics | rule | basis |', '| --- | --- | --- | --- | --- | --- |']
  READING_FLAGS.forEach((flag, j) => {
    const info = READING_FLAG_INFO[flag]
    lines.push(`| ${j} | \`${flag}\` | ${info.level} | ${info.metrics.join(', ')} | ${info.rule} | ${info.basis} |`)
  })
  return lines.join('\n')
}

/** One row per metric: its bit range and the value of each flag's bit (– where the flag never applies). */
export function readingFlagBitsMarkdown(): string {
  const lines = [
    `| metric | bits | ${READING_FLAGS.join(' | ')} |`,
    `| --- | --- | ${READING_FLAGS.map(() => '---').join(' | ')} |`,
  ]
  METRICS.forEach((metric, i) => {
    const cells = READING_FLAGS.map((flag) =>
      READING_FLAG_INFO[flag].metrics.includes(metric) ? String(flagBit(metric, flag)) : '–',
    )
    const first = QC_BITS_PER_METRIC * i
    lines.push(`| \`${metric}\` | ${first}–${first + QC_BITS_PER_METRIC - 1} | ${cells.join(' | ')} |`)
  })
  return lines.join('\n')
}
