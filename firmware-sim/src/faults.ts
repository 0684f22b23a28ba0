import { METRIC_INFO, METRICS, type Metric, type MetricValues } from '@skolluft/core'
import { gaussian, hash, hashString, unit } from './random.ts'

/**
 * What a low-cost sensor makes of the air: the faults the QA pipeline of the air-quality reference §4
 * has to catch. Pure and deterministic: whether a fault is active at a time is a function of
 * (device, seed, time), never of what happened before, so the live fleet, a replay and a backfill
 * produce the same raw readings.
 *
 * Every rate 0 disables its fault. Magnitudes are engineering assumptions (UNVERIFIED) unless cited.
 */
export interface FaultRates {
  /** Share of readings (0–1) with a burst of extra electrical noise. */
  readonly noise: number
  /** Share of devices (0–1) whose sensors drift slowly (NO2 baseline, optical PM gain), recalibrated every 90 days. */
  readonly drift: number
  /** Stuck-value episodes (a frozen sensor repeating its last value) per device per day. */
  readonly stuck: number
  /** Share of readings (0–1) with a spike (an insect in the optical chamber, a bus idling by the inlet). */
  readonly spike: number
  /** Share of devices (0–1) whose optical PM reads high in humid air (no heated inlet, as PMS5003-class sensors). */
  readonly humidity: number
  /** Outages (power or network lost; readings buffered on the device) per device per day. */
  readonly outage: number
}

/**
 * Defaults for a "normal" fleet at the overall fault rate DEFAULT_FAULT_RATE: every optical sensor
 * has the humidity artefact (§4.2: raw optical PM is biased high in humid air), a tenth of the
 * devices drift, and rare glitches and outages happen.
 */
export const DEFAULT_FAULT_RATES: FaultRates = Object.freeze({
  noise: 0.02,
  drift: 0.1,
  stuck: 0.05,
  spike: 0.002,
  humidity: 1,
  outage: 0.1,
})
export const NO_FAULTS: FaultRates = Object.freeze({ noise: 0, drift: 0, stuck: 0, spike: 0, humidity: 0, outage: 0 })
/** The overall fault rate (SIM_FAULT_RATE) that gives DEFAULT_FAULT_RATES. */
export const DEFAULT_FAULT_RATE = 0.02

/**
 * One knob for the lot: `faultRate / DEFAULT_FAULT_RATE` scales every default rate (shares capped at 1).
 * 0 disables all faults, DEFAULT_FAULT_RATE gives the defaults, 0.2 is a fleet in a bad way.
 */
export function scaleFaultRates(faultRate: number, base: FaultRates = DEFAULT_FAULT_RATES): FaultRates {
  const k = Math.max(0, faultRate) / DEFAULT_FAULT_RATE
  return {
    noise: Math.min(1, base.noise * k),
    drift: Math.min(1, base.drift * k),
    stuck: base.stuck * k,
    spike: Math.min(1, base.spike * k),
    humidity: Math.min(1, base.humidity * k),
    outage: base.outage * k,
  }
}

const DAY_MS = 86_400_000
const HOUR_MS = 3_600_000
const MINUTE_MS = 60_000

/** Episodes (stuck, outage) are drawn per slot of this length; an episode starts in its slot. */
const EPISODE_SLOT_MS = HOUR_MS
/** Stuck sensors stay stuck 30 min–6 h (sensortoolkit flags persistent values; §4.1 suggests ≥ 2 h checks). */
const STUCK_MIN_MS = 30 * MINUTE_MS
const STUCK_MAX_MS = 6 * HOUR_MS
/** Outages from a few minutes (Wi-Fi blip) to 4 h (power cut, router restart). */
const OUTAGE_MIN_MS = 5 * MINUTE_MS
const OUTAGE_MAX_MS = 4 * HOUR_MS
/** Drift accumulates over this period and is reset by a recalibration at its end. */
const DRIFT_PERIOD_MS = 90 * DAY_MS
/**
 * Worst drift at the end of a period: NO2 baseline ±15 µg/m³ (JRC reports baseline changes of tens of
 * ppb for electrochemical cells, §4.3), optical PM gain ±20 %.
 */
const DRIFT_NO2_MAX = 15
const DRIFT_PM_GAIN_MAX = 0.2
/** Above this RH optical PM starts reading high (§4.1 humidity gate ~70–75 %). */
const HUMIDITY_ARTEFACT_RH = 75

const KIND_STUCK = 11
const KIND_OUTAGE = 12
const KIND_NOISE = 13
const KIND_SPIKE = 14
const KIND_DEVICE = 15

export type StuckGroup = 'pm' | 'no2' | 'all'

export interface FaultProfile {
  readonly deviceId: string
  readonly rates: FaultRates
  /** Per-device key. */
  readonly key: number
  /** Whether this device's optical sensor shows the humidity artefact. */
  readonly humidityArtefact: boolean
  /** Drift of this device, or null if it does not drift. */
  readonly drift: { readonly no2: number; readonly pmGain: number; readonly phaseMs: number } | null
}

export function faultProfile(deviceId: string, rates: FaultRates, seed = 1): FaultProfile {
  const key = hash(hashString(deviceId), seed, KIND_DEVICE)
  const drifting = unit(key, 1) < rates.drift
  const sign = (k: number) => (unit(key, k) < 0.5 ? -1 : 1)
  return {
    deviceId,
    rates,
    key,
    humidityArtefact: unit(key, 2) < rates.humidity,
    drift: drifting
      ? {
          no2: sign(3) * DRIFT_NO2_MAX * (0.3 + 0.7 * unit(key, 4)),
          pmGain: sign(5) * DRIFT_PM_GAIN_MAX * (0.3 + 0.7 * unit(key, 6)),
          phaseMs: Math.floor(unit(key, 7) * DRIFT_PERIOD_MS),
        }
      : null,
  }
}

export interface FaultWindow {
  readonly start: number
  readonly end: number
}

/** Whether an episode of `kind` at `ratePerDay` covers `ts`; episodes are drawn per slot and may span slots. */
function episodeAt(
  key: number,
  kind: number,
  ratePerDay: number,
  minMs: number,
  maxMs: number,
  ts: number,
): FaultWindow | null {
  if (ratePerDay <= 0) return null
  const chance = Math.min(1, (ratePerDay * EPISODE_SLOT_MS) / DAY_MS)
  const slot = Math.floor(ts / EPISODE_SLOT_MS)
  const lookback = Math.ceil(maxMs / EPISODE_SLOT_MS)
  for (let s = slot; s >= slot - lookback; s -= 1) {
    if (unit(key, kind, s) >= chance) continue
    const start = s * EPISODE_SLOT_MS + Math.floor(unit(key, kind, s, 1) * EPISODE_SLOT_MS)
    // Log-uniform length: many short episodes, a few long ones.
    const length = Math.round(minMs * (maxMs / minMs) ** unit(key, kind, s, 2))
    if (start <= ts && ts < start + length) return { start, end: start + length }
  }
  return null
}

/** The outage covering `ts`, if any. The device measures on but cannot send until `end`. */
export function outageAt(profile: FaultProfile, ts: number): FaultWindow | null {
  return episodeAt(profile.key, KIND_OUTAGE, profile.rates.outage, OUTAGE_MIN_MS, OUTAGE_MAX_MS, ts)
}

/** The stuck episode covering `ts`, if any, with the sensor group that is frozen. */
export function stuckAt(profile: FaultProfile, ts: number): (FaultWindow & { readonly group: StuckGroup }) | null {
  const window = episodeAt(profile.key, KIND_STUCK, profile.rates.stuck, STUCK_MIN_MS, STUCK_MAX_MS, ts)
  if (!window) return null
  const u = unit(profile.key, KIND_STUCK, window.start, 3)
  return { ...window, group: u < 0.45 ? 'pm' : u < 0.9 ? 'no2' : 'all' }
}

/** Every outage that starts in [from, to), in order; for tests and for planning a demo. */
export function outagesBetween(profile: FaultProfile, from: number, to: number): FaultWindow[] {
  const out: FaultWindow[] = []
  let ts = from
  while (ts < to) {
    const window = outageAt(profile, ts)
    if (window && window.start >= from) {
      if (out.at(-1)?.start !== window.start) out.push(window)
      ts = window.end
    } else {
      ts += MINUTE_MS
    }
  }
  return out
}

/**
 * hackAIR growth factors (air-quality reference §4.2, as used in community code): the inverse of the
 * correction, so a correction applied downstream removes the artefact the simulator adds.
 */
export function humidityGrowth(rh: number): { pm25: number; pm10: number } {
  if (rh <= HUMIDITY_ARTEFACT_RH) return { pm25: 1, pm10: 1 }
  const x = Math.min(rh, 100) / 100
  // Fog (RH near 100 %): droplets counted as particles; raw optical PM "spikes" (§6.3 RH/T row).
  const fog = rh >= 97 ? 1 + 0.5 * (rh - 97) : 1
  return { pm25: (1 + 0.48756 * x ** 8.60068) * fog, pm10: (1 + 0.81559 * x ** 5.83411) * fog }
}

function isPm(metric: Metric): boolean {
  return metric === 'pm1' || metric === 'pm25' || metric === 'pm10'
}

/** Sensor faults except a stuck sensor: what the sensor reports for the true values at `ts`. */
function distort(profile: FaultProfile, ts: number, truth: MetricValues): MetricValues {
  const out: MetricValues = { ...truth }
  const { rates, key } = profile
  // Humidity artefact on optical PM, driven by the true RH at the inlet.
  if (profile.humidityArtefact && truth.rh !== undefined) {
    const growth = humidityGrowth(truth.rh)
    if (out.pm1 !== undefined) out.pm1 *= growth.pm25
    if (out.pm25 !== undefined) out.pm25 *= growth.pm25
    if (out.pm10 !== undefined) out.pm10 *= growth.pm10
  }
  if (profile.drift) {
    // Sawtooth: grows linearly through the period, back to zero at each recalibration.
    const f = ((ts + profile.drift.phaseMs) % DRIFT_PERIOD_MS) / DRIFT_PERIOD_MS
    for (const metric of ['pm1', 'pm25', 'pm10'] as const) {
      const v = out[metric]
      if (v !== undefined) out[metric] = v * (1 + profile.drift.pmGain * f)
    }
    if (out.no2 !== undefined) out.no2 += profile.drift.no2 * f
  }
  if (rates.noise > 0 && unit(key, KIND_NOISE, ts) < rates.noise) {
    // One factor for all PM channels: a PMS5003-class sensor derives them from the same particle counts.
    const pmFactor = Math.exp(0.35 * gaussian(key, KIND_NOISE, ts, 1))
    for (const metric of ['pm1', 'pm25', 'pm10'] as const) {
      const v = out[metric]
      if (v !== undefined) out[metric] = v * pmFactor
    }
    if (out.no2 !== undefined) out.no2 += 10 * gaussian(key, KIND_NOISE, ts, 2)
  }
  if (rates.spike > 0 && unit(key, KIND_SPIKE, ts) < rates.spike) {
    if (unit(key, KIND_SPIKE, ts, 1) < 0.7) {
      const factor = 3 + 12 * unit(key, KIND_SPIKE, ts, 2)
      for (const metric of ['pm1', 'pm25', 'pm10'] as const) {
        const v = out[metric]
        if (v !== undefined) out[metric] = v * factor
      }
    } else if (out.no2 !== undefined) {
      out.no2 += 50 + 150 * unit(key, KIND_SPIKE, ts, 3)
    }
  }
  return out
}

function finish(values: MetricValues): MetricValues {
  const out: MetricValues = {}
  for (const metric of METRICS) {
    const v = values[metric]
    if (v === undefined) continue
    const info = METRIC_INFO[metric]
    out[metric] = Math.round(Math.min(info.max, Math.max(info.min, v)) * 10) / 10
  }
  return out
}

/**
 * The reading a device reports at `ts`. `truth` is the model's value at `ts`; `truthAt` gives it at any
 * other time (a stuck sensor repeats what it reported when it froze). Values stay within METRIC_INFO and
 * PM1 ≤ PM2.5 ≤ PM10 holds: every PM fault acts on the three channels together and the humidity growth
 * of PM10 is at least that of PM2.5.
 */
export function applyFaults(
  profile: FaultProfile,
  ts: number,
  truth: MetricValues,
  truthAt: (ts: number) => MetricValues,
): MetricValues {
  const reported = distort(profile, ts, truth)
  const stuck = stuckAt(profile, ts)
  if (stuck) {
    const frozen = distort(profile, stuck.start, truthAt(stuck.start))
    for (const metric of METRICS) {
      const freeze = stuck.group === 'all' || (stuck.group === 'pm' ? isPm(metric) : metric === 'no2')
      if (freeze && frozen[metric] !== undefined) reported[metric] = frozen[metric]
    }
  }
  return finish(reported)
}
