import { z } from 'zod'
import type { AggregatePoint } from './aggregation.ts'
import { DeviceId } from './ids.ts'
import { METRICS, type Metric } from './metrics.ts'
import type { Device } from './registry.ts'

/**
 * Corrections (issue 5, user-needs item 7 "Visible, versioned calibration"). Raw values are never changed: a
 * correction is applied when data is read, and every corrected value says which chain of corrections made it
 * (`rh-hackair@1+cal-7@2`; `none` when nothing applied, export-schema.ts NO_CORRECTION). Documented in docs/corrections.md.
 *
 * Two kinds:
 * - Humidity corrections for optical PM sensors (air-quality.md §4.2): fixed, published formulas, each with a
 *   name and a version. A change of formula (even of one coefficient) is a NEW version appended to
 *   HUMIDITY_CORRECTIONS; old versions stay in the registry so an export made with them can be reproduced.
 * - Linear calibrations per device and metric (`slope · x + intercept`), entered by hand or fitted against a
 *   co-located reference device. Versions per (device, metric) increase; stored rows never change except
 *   that a calibration can be retired (its validity ends).
 *
 * Order: the humidity correction first, then the calibration. A calibration records in `after` which
 * humidity correction its input had been through when it was fitted (or null for raw values), and the
 * corrector applies exactly that one before it, so a calibration is always used as it was fitted.
 */

/** A correction formula's identity; printed `${name}@${version}`. */
export interface CorrectionId {
  readonly name: string
  readonly version: number
}

export function formatCorrectionId(id: CorrectionId): string {
  return `${id.name}@${id.version}`
}

const CORRECTION_REF = /^([a-z][a-z0-9-]*)@([1-9][0-9]{0,5})$/

/** `rh-hackair@1` → { name, version }; undefined when malformed. */
export function parseCorrectionId(text: string): CorrectionId | undefined {
  const match = CORRECTION_REF.exec(text)
  if (match === null || match[1] === undefined || match[2] === undefined) return undefined
  return { name: match[1], version: Number(match[2]) }
}

export interface HumidityCorrection extends CorrectionId {
  /** `${name}@${version}` */
  readonly id: string
  /** Metrics the formula is defined for. */
  readonly metrics: readonly Metric[]
  /** The formula as printed in docs/corrections.md (RH = the sensor's own raw relative humidity, %). */
  readonly formula: string
  /** Where the formula comes from. */
  readonly source: string
  /** The corrected value; `rh` is the raw RH of the same reading (or hour), 0–100 %. */
  readonly apply: (metric: Metric, value: number, rh: number) => number
}

// hackAIR growth-factor coefficients (air-quality.md §4.2, "the hackAIR one (as used in community code)").
const HACKAIR_PM25_A = 0.48756
const HACKAIR_PM25_B = 8.60068
const HACKAIR_PM10_A = 0.81559
const HACKAIR_PM10_B = 5.83411

function hackAir1(metric: Metric, value: number, rh: number): number {
  const [a, b] = metric === 'pm25' ? [HACKAIR_PM25_A, HACKAIR_PM25_B] : [HACKAIR_PM10_A, HACKAIR_PM10_B]
  return value / (1 + a * (rh / 100) ** b)
}

// US EPA 2021 PurpleAir correction, extended October-2021 piecewise form (air-quality.md §4.2: Barkjohn, Gantt &
// Clements 2021, AMT 14:4617, and the AirNow Fire & Smoke Map Q&A). 0.0862 / 5.75 are the published
// coefficients (not sensortoolkit's pre-publication 0.0852 / 5.72).
const EPA_LOW_SLOPE = 0.524
const EPA_MID_SLOPE = 0.786
const EPA_HIGH_SLOPE = 0.69
const EPA_RH = 0.0862
const EPA_OFFSET = 5.75
const EPA_HIGH_OFFSET = 2.966
const EPA_HIGH_SQUARE = 8.84e-4
/** Boundaries of the pieces, µg/m³ of raw PM2.5 (§4.2 table). */
const EPA_BREAKS = [30, 50, 210, 260] as const

function epa2021(_metric: Metric, pa: number, rh: number): number {
  const [b30, b50, b210, b260] = EPA_BREAKS
  let pm: number
  if (pa < b30) pm = EPA_LOW_SLOPE * pa - EPA_RH * rh + EPA_OFFSET
  else if (pa < b50) {
    const f = pa / 20 - 1.5
    pm = (EPA_MID_SLOPE * f + EPA_LOW_SLOPE * (1 - f)) * pa - EPA_RH * rh + EPA_OFFSET
  } else if (pa < b210) pm = EPA_MID_SLOPE * pa - EPA_RH * rh + EPA_OFFSET
  else if (pa < b260) {
    const f = pa / 50 - 4.2
    pm =
      (EPA_HIGH_SLOPE * f + EPA_MID_SLOPE * (1 - f)) * pa -
      EPA_RH * rh * (1 - f) +
      EPA_HIGH_OFFSET * f +
      EPA_OFFSET * (1 - f) +
      EPA_HIGH_SQUARE * pa * pa * f
  } else pm = EPA_HIGH_OFFSET + EPA_HIGH_SLOPE * pa + EPA_HIGH_SQUARE * pa * pa
  // §4.2: "result < 0 → clamp to 0".
  return Math.max(0, pm)
}

/**
 * Every humidity correction version ever defined, oldest first. Append only: never edit an entry that has
 * shipped (a changed coefficient is a new version), so `name@version` always means the same formula.
 */
export const HUMIDITY_CORRECTIONS: readonly HumidityCorrection[] = [
  {
    name: 'rh-hackair',
    version: 1,
    id: 'rh-hackair@1',
    metrics: ['pm25', 'pm10'],
    formula:
      'PM2.5 / (1 + 0.48756 · (RH/100)^8.60068); PM10 / (1 + 0.81559 · (RH/100)^5.83411) (hygroscopic growth factor)',
    source:
      'hackAIR growth factor as listed in the Sensor.Community (opendata-stuttgart/meta) wiki "Luftfeuchte Korrektur" and used in community code; air-quality.md §4.2',
    apply: hackAir1,
  },
  {
    name: 'rh-epa-2021',
    version: 1,
    id: 'rh-epa-2021@1',
    metrics: ['pm25'],
    formula:
      'PA < 30: 0.524·PA − 0.0862·RH + 5.75; 30 ≤ PA < 50: [0.786·f + 0.524·(1−f)]·PA − 0.0862·RH + 5.75, f = PA/20 − 1.5; 50 ≤ PA < 210: 0.786·PA − 0.0862·RH + 5.75; 210 ≤ PA < 260: [0.69·f + 0.786·(1−f)]·PA − 0.0862·RH·(1−f) + 2.966·f + 5.75·(1−f) + 8.84e-4·PA²·f, f = PA/50 − 4.2; PA ≥ 260: 2.966 + 0.69·PA + 8.84e-4·PA²; below 0 → 0 (PA = raw PM2.5)',
    source:
      'US EPA nationwide PurpleAir correction: Barkjohn, Gantt & Clements 2021, AMT 14:4617 (https://amt.copernicus.org/articles/14/4617/2021/), extended piecewise form of October 2021 from the AirNow Fire & Smoke Map Q&A; air-quality.md §4.2',
    apply: epa2021,
  },
]

const HUMIDITY_BY_ID: ReadonlyMap<string, HumidityCorrection> = new Map(HUMIDITY_CORRECTIONS.map((c) => [c.id, c]))

/** A humidity correction by `name@version`; undefined if there is no such version. */
export function humidityCorrection(id: string): HumidityCorrection | undefined {
  return HUMIDITY_BY_ID.get(id)
}

/** The newest version of a humidity correction by name. */
export function latestHumidityCorrection(name: string): HumidityCorrection | undefined {
  let latest: HumidityCorrection | undefined
  for (const c of HUMIDITY_CORRECTIONS)
    if (c.name === name && (latest === undefined || c.version > latest.version)) latest = c
  return latest
}

/**
 * Plantower-class models (PMS5003 and relatives, PurpleAir which uses them): the EPA correction was fitted to
 * these (§4.2). Every other optical PM sensor (SDS011, unknown models) gets the hackAIR growth factor.
 */
const PLANTOWER_MODEL = /pms|plantower|purple\s*air/i

/** The humidity correction family for a device model: `rh-epa-2021` for Plantower-class, `rh-hackair` otherwise. */
export function humidityCorrectionName(model: string): string {
  return PLANTOWER_MODEL.test(model) ? 'rh-epa-2021' : 'rh-hackair'
}

/** Pins humidity correction versions by name (`{ 'rh-hackair': 1 }`); a name not given uses its newest version. */
export interface CorrectionOptions {
  readonly humidityVersions?: Readonly<Record<string, number>>
}

/**
 * The humidity correction for a device's metric, or null when none applies: the metric is not one the model's
 * formula covers, or the device has no RH sensor (the formulas need the sensor's own raw RH, §4.2).
 * Throws CorrectionError UNKNOWN_CORRECTION for a pinned version that does not exist.
 */
export function humidityCorrectionFor(
  device: Pick<Device, 'model' | 'sensors'>,
  metric: Metric,
  options: CorrectionOptions = {},
): HumidityCorrection | null {
  if (!device.sensors.includes('rh')) return null
  const name = humidityCorrectionName(device.model)
  const pinned = options.humidityVersions?.[name]
  const correction =
    pinned === undefined
      ? latestHumidityCorrection(name)
      : humidityCorrection(formatCorrectionId({ name, version: pinned }))
  if (correction === undefined) {
    throw new CorrectionError('UNKNOWN_CORRECTION', `no humidity correction ${name}@${String(pinned)}`)
  }
  return correction.metrics.includes(metric) ? correction : null
}

export const CORRECTION_ERROR_CODES = [
  /** A colocation fit had fewer than MIN_FIT_PAIRS hours. */
  'TOO_FEW_PAIRS',
  /** The device's or the reference's values do not vary, so no line can be fitted. */
  'DEGENERATE_FIT',
  /** The fitted slope is outside [MIN_CALIBRATION_SLOPE, MAX_CALIBRATION_SLOPE]. */
  'SLOPE_OUT_OF_RANGE',
  'UNKNOWN_CORRECTION',
] as const
export type CorrectionErrorCode = (typeof CORRECTION_ERROR_CODES)[number]

export class CorrectionError extends Error {
  readonly code: CorrectionErrorCode

  constructor(code: CorrectionErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'CorrectionError'
    this.code = code
  }
}

/**
 * Fewest hourly pairs a colocation fit accepts: one full day of valid hours, so the fit sees a daily cycle.
 * UNVERIFIED, engineering choice (the issue asks for at least 24).
 */
export const MIN_FIT_PAIRS = 24
/**
 * Range a calibration slope must lie in. UNVERIFIED, engineering choice: low-cost PM reads ~40 % high (§4.2),
 * NO2 cells differ up to 37 % in gain (§4.3); a factor beyond 10 either way means a unit or pairing mistake.
 */
export const MIN_CALIBRATION_SLOPE = 0.1
export const MAX_CALIBRATION_SLOPE = 10

/** `cal-<n>`: a calibration's id, given by the store. */
export const CalibrationId = z.string().regex(/^cal-[1-9][0-9]{0,14}$/, 'a calibration id is cal-<number>')

const EpochMs = z.number().int().min(0).max(8.64e15)
const HumidityCorrectionRef = z
  .string()
  .refine((id) => HUMIDITY_BY_ID.has(id), { message: 'not a known humidity correction (name@version)' })

const Finite = z.number().refine(Number.isFinite, { message: 'must be a finite number' })

/** What a calibration's line was derived from. */
export const CalibrationBasis = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('manual'),
    /** The humidity correction the calibration is applied after (its line assumes corrected input); null = raw. */
    after: HumidityCorrectionRef.nullable(),
    /** Where the numbers come from (a lab sheet, a vendor batch factor). */
    note: z.string().trim().max(500).nullable(),
  }),
  z.strictObject({
    kind: z.literal('colocation'),
    after: HumidityCorrectionRef.nullable(),
    /** The reference device, taken as truth (its raw hourly means, uncorrected). */
    reference: z.strictObject({ deviceId: DeviceId }),
    /** Hours whose start lies in [from, to), epoch ms. */
    period: z.strictObject({ from: EpochMs, to: EpochMs }),
    /** Hourly pairs fitted. */
    n: z.number().int().min(MIN_FIT_PAIRS),
    r2: z
      .number()
      .min(-1e-9)
      .max(1 + 1e-9),
    /** Root mean square of (calibrated − reference) over the pairs, in the metric's unit. */
    rmse: z.number().min(0),
  }),
])
export type CalibrationBasis = z.infer<typeof CalibrationBasis>

const CalibrationFields = {
  deviceId: DeviceId,
  metric: z.enum(METRICS),
  slope: Finite.pipe(z.number().min(MIN_CALIBRATION_SLOPE).max(MAX_CALIBRATION_SLOPE)),
  intercept: Finite,
  /** Readings with ts ≥ validFrom get it (epoch ms). */
  validFrom: EpochMs,
  basis: CalibrationBasis,
  createdAt: EpochMs,
  /** Who made it (audit actor: `user:<id>`, `token:<id>`, `cli`). */
  createdBy: z.string().min(1).max(200),
}

/** A calibration's `after` must be a humidity correction defined for its metric. */
function checkAfter(c: { readonly metric: Metric; readonly basis: CalibrationBasis }, ctx: z.RefinementCtx): void {
  const after = c.basis.after === null ? undefined : humidityCorrection(c.basis.after)
  if (after !== undefined && !after.metrics.includes(c.metric)) {
    ctx.addIssue({
      code: 'custom',
      path: ['basis', 'after'],
      message: `${after.id} is not defined for ${c.metric} (only ${after.metrics.join(', ')})`,
    })
  }
}

/** A calibration as the caller hands it to the store (id and version are the store's). */
export const NewCalibration = z.strictObject(CalibrationFields).superRefine(checkAfter)
export type NewCalibration = z.infer<typeof NewCalibration>

/** A stored linear calibration: corrected = slope · input + intercept, for readings in [validFrom, validTo). */
export const Calibration = z
  .strictObject({
    id: CalibrationId,
    ...CalibrationFields,
    /** 1, 2, … per (device, metric), in creation order. */
    version: z.number().int().min(1),
    /** Set by retiring: readings with ts ≥ validTo no longer get it. null = open-ended. */
    validTo: EpochMs.nullable(),
  })
  .superRefine(checkAfter)
export type Calibration = z.infer<typeof Calibration>

/** `cal-7@2`: how a calibration is named in a correction chain. */
export function calibrationRef(calibration: Pick<Calibration, 'id' | 'version'>): string {
  return `${calibration.id}@${calibration.version}`
}

/**
 * The calibration in force for a reading at `ts`: among those whose [validFrom, validTo) holds `ts`, the highest
 * version (a new version supersedes the older ones from its validFrom on).
 */
export function calibrationAt(calibrations: readonly Calibration[], ts: number): Calibration | undefined {
  let best: Calibration | undefined
  for (const c of calibrations) {
    if (
      c.validFrom <= ts &&
      (c.validTo === null || ts < c.validTo) &&
      (best === undefined || c.version > best.version)
    ) {
      best = c
    }
  }
  return best
}

export interface FitPair {
  /** The device's value (humidity-corrected when the calibration is applied after a humidity correction). */
  readonly device: number
  readonly reference: number
}

export interface LinearFit {
  readonly slope: number
  readonly intercept: number
  readonly n: number
  /** Coefficient of determination, 1 − SS_res / SS_tot. */
  readonly r2: number
  /** √(SS_res / n): typical error of the calibrated value against the reference. */
  readonly rmse: number
}

/**
 * Ordinary least squares of reference on device (reference ≈ slope · device + intercept), so the line maps a
 * device value to the reference scale. Throws CorrectionError TOO_FEW_PAIRS (fewer than MIN_FIT_PAIRS),
 * DEGENERATE_FIT (device or reference constant). Two-pass sums (centred), for accuracy.
 */
export function fitLinearCalibration(pairs: readonly FitPair[]): LinearFit {
  const n = pairs.length
  if (n < MIN_FIT_PAIRS) {
    throw new CorrectionError(
      'TOO_FEW_PAIRS',
      `a colocation fit needs at least ${MIN_FIT_PAIRS} hourly pairs (valid hours of both devices); found ${n}`,
    )
  }
  let sx = 0
  let sy = 0
  for (const p of pairs) {
    sx += p.device
    sy += p.reference
  }
  const mx = sx / n
  const my = sy / n
  let sxx = 0
  let sxy = 0
  let syy = 0
  for (const p of pairs) {
    const dx = p.device - mx
    const dy = p.reference - my
    sxx += dx * dx
    sxy += dx * dy
    syy += dy * dy
  }
  if (!(sxx > 0)) throw new CorrectionError('DEGENERATE_FIT', 'the device values do not vary over the period')
  if (!(syy > 0)) throw new CorrectionError('DEGENERATE_FIT', 'the reference values do not vary over the period')
  const slope = sxy / sxx
  const intercept = my - slope * mx
  let ssRes = 0
  for (const p of pairs) {
    const e = p.reference - (slope * p.device + intercept)
    ssRes += e * e
  }
  return { slope, intercept, n, r2: 1 - ssRes / syy, rmse: Math.sqrt(ssRes / n) }
}

/**
 * Hourly pairs for a colocation fit: the hours where the device's and the reference's means are both valid
 * (≥ 75 % coverage, AggregatePoint.valid), paired by hour. With a humidity correction, the device's hourly
 * mean is corrected with its hourly mean RH (that hour must be valid too), as the corrector does for hourly data.
 */
export function colocationPairs(input: {
  readonly device: readonly AggregatePoint[]
  readonly reference: readonly AggregatePoint[]
  readonly metric: Metric
  readonly humidity: HumidityCorrection | null
  /** The device's hourly RH; needed when `humidity` is given. */
  readonly rh?: readonly AggregatePoint[]
}): FitPair[] {
  const validMeans = (points: readonly AggregatePoint[] | undefined) => {
    const means = new Map<string, number>()
    for (const p of points ?? []) if (p.valid && p.mean !== null) means.set(p.t, p.mean)
    return means
  }
  const reference = validMeans(input.reference)
  const rh = validMeans(input.rh)
  const pairs: FitPair[] = []
  for (const p of input.device) {
    if (!p.valid || p.mean === null) continue
    const ref = reference.get(p.t)
    if (ref === undefined) continue
    let value = p.mean
    if (input.humidity !== null) {
      const hourRh = rh.get(p.t)
      if (hourRh === undefined || !validRh(hourRh)) continue
      value = input.humidity.apply(input.metric, value, hourRh)
    }
    pairs.push({ device: value, reference: ref })
  }
  return pairs
}

function validRh(rh: number | undefined): rh is number {
  return rh !== undefined && Number.isFinite(rh) && rh >= 0 && rh <= 100
}

export interface CorrectedValue {
  readonly value: number
  /** The chain applied, steps joined by '+', e.g. `rh-hackair@1+cal-7@2`. */
  readonly correction: string
}

/**
 * (metric, ts, value, rh) → the corrected value and its chain, or null when no correction applies (the caller
 * then reports the raw value with correction 'none'). `rh` is the RAW relative humidity (%) of the same reading
 * (for hourly data: the device's hourly mean RH) — never a corrected or calibrated RH (§4.2); it is only read
 * for metrics with a humidity correction. When the chain needs RH and `rh` is missing or outside 0–100, the
 * result is null: a calibration fitted on humidity-corrected values is never applied to uncorrected ones.
 */
export type Corrector = (metric: Metric, ts: number, value: number, rh: number | undefined) => CorrectedValue | null

/**
 * The corrector for one device: humidity correction (optical PM, by model: humidityCorrectionFor), then the
 * device's linear calibration in force at `ts` for that metric (calibrationAt). When a calibration applies, its
 * `after` decides the humidity step (the one it was fitted on), whatever `options` pin. Calibrations of other
 * devices are ignored. Pure; cheap per call (the export calls it per value).
 */
export function createCorrector(
  device: Pick<Device, 'id' | 'model' | 'sensors'>,
  calibrations: readonly Calibration[],
  options: CorrectionOptions = {},
): Corrector {
  const byMetric = new Map<Metric, Calibration[]>()
  for (const c of calibrations) {
    if (c.deviceId !== device.id) continue
    const list = byMetric.get(c.metric) ?? []
    list.push(c)
    byMetric.set(c.metric, list)
  }
  const humidity = new Map<Metric, HumidityCorrection | null>(
    METRICS.map((m) => [m, humidityCorrectionFor(device, m, options)]),
  )
  const afterOf = (c: Calibration): HumidityCorrection | null => {
    if (c.basis.after === null) return null
    const h = humidityCorrection(c.basis.after)
    // The schema only admits registry ids; the registry is append-only.
    if (h === undefined || !h.metrics.includes(c.metric)) {
      throw new CorrectionError(
        'UNKNOWN_CORRECTION',
        `${c.id}: no humidity correction ${c.basis.after} for ${c.metric}`,
      )
    }
    return h
  }
  return (metric, ts, value, rh) => {
    const list = byMetric.get(metric)
    const calibration = list === undefined ? undefined : calibrationAt(list, ts)
    const h = calibration === undefined ? (humidity.get(metric) ?? null) : afterOf(calibration)
    if (h === null && calibration === undefined) return null
    let corrected = value
    let chain = ''
    if (h !== null) {
      if (!validRh(rh)) return null
      corrected = h.apply(metric, corrected, rh)
      chain = h.id
    }
    if (calibration !== undefined) {
      corrected = calibration.slope * corrected + calibration.intercept
      chain = chain === '' ? calibrationRef(calibration) : `${chain}+${calibrationRef(calibration)}`
    }
    return { value: corrected, correction: chain }
  }
}

/** The table of humidity corrections in docs/corrections.md (a test keeps the two equal). */
export function humidityCorrectionsMarkdown(): string {
  const lines = ['| id | metrics | formula | source |', '| --- | --- | --- | --- |']
  for (const c of HUMIDITY_CORRECTIONS) lines.push(`| ${c.id} | ${c.metrics.join(', ')} | ${c.formula} | ${c.source} |`)
  return lines.join('\n')
}
