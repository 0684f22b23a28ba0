import {
  type Calibration,
  CalibrationId,
  CorrectionError,
  calibrationRef,
  colocationPairs,
  DeviceId,
  fitLinearCalibration,
  HOUR_MS,
  humidityCorrectionFor,
  MAX_CALIBRATION_SLOPE,
  METRICS,
  type Metric,
  MIN_CALIBRATION_SLOPE,
  MIN_FIT_PAIRS,
  type NewCalibration,
} from '@skolluft/core'
import { type DeviceRecord, type Storage, StorageError } from '@skolluft/storage'
import { Router } from 'express'
import { z } from 'zod'
import { actorOf, audit } from '../auth/audit.ts'
import { requirePermission } from '../auth/authenticate.ts'
import { cacheNever } from '../http-headers.ts'
import type { ApiContext } from '../options.ts'
import { HttpProblem, methodNotAllowed, notFoundProblem, validationProblem } from '../problem.ts'

/**
 * Per-device linear calibrations (issue 5; core corrections.ts, docs/corrections.md). Stored values never change:
 * an export with values=corrected applies them when it reads.
 *
 *   GET  /calibrations?device=&metric=     every version, by device, metric, version (export)
 *   GET  /calibrations/:id                 one calibration (export)
 *   POST /calibrations                     manual or colocation fit → 201 the new version (calibrations:write)
 *   POST /calibrations/:id/retire {at?}    ends its validity at `at` (default now) (calibrations:write)
 *
 * Reading needs `export` (admin, staff, researcher): whoever can export corrected data may see what corrected it.
 * Changes need calibrations:write (admin, staff) and are audited.
 */

/** Longest colocation period one fit reads: a year of hours (two hourly series of ≤ 8 784 points each). */
export const MAX_FIT_SPAN_MS = 366 * 24 * HOUR_MS

const isoDateTime = (name: string) =>
  z.iso
    .datetime({
      offset: true,
      error: `${name} must be an ISO 8601 date-time with Z or an offset, e.g. 2026-11-29T07:00:00Z`,
    })
    .transform((s) => Date.parse(s))

const hourAligned = (name: string) =>
  isoDateTime(name).refine((ms) => ms % HOUR_MS === 0, { message: `${name} must be a whole hour (UTC)` })

const Slope = z
  .number({ error: 'slope must be a number' })
  .min(MIN_CALIBRATION_SLOPE, `slope must be at least ${MIN_CALIBRATION_SLOPE}`)
  .max(MAX_CALIBRATION_SLOPE, `slope must be at most ${MAX_CALIBRATION_SLOPE}`)
const MetricParam = z.enum(METRICS, { error: `metric must be one of ${METRICS.join(', ')}` })

/** `POST /calibrations` body: a line entered by hand, or one fitted against a co-located reference device. */
export const CalibrationBody = z.discriminatedUnion(
  'kind',
  [
    z.strictObject({
      kind: z.literal('manual'),
      deviceId: DeviceId,
      metric: MetricParam,
      slope: Slope,
      intercept: z.number({ error: 'intercept must be a number' }),
      /** Readings from this time on get the calibration. */
      validFrom: isoDateTime('validFrom'),
      /** Where the numbers come from. */
      note: z.string().trim().max(500).optional(),
    }),
    z.strictObject({
      kind: z.literal('colocation'),
      deviceId: DeviceId,
      metric: MetricParam,
      /** The co-located reference device (its raw hourly means are taken as truth). */
      reference: z.strictObject({ deviceId: DeviceId }),
      /** The colocation period: hours whose start lies in [from, to). */
      from: hourAligned('from'),
      to: hourAligned('to'),
      /** Default: `from` (the colocation period itself gets the calibration too). */
      validFrom: isoDateTime('validFrom').optional(),
    }),
  ],
  { error: 'kind must be "manual" or "colocation"' },
)
export type CalibrationBody = z.output<typeof CalibrationBody>

/** `POST /calibrations/:id/retire` body. */
export const RetireBody = z.strictObject({
  /** Readings from this time on no longer get the calibration; default now. */
  at: isoDateTime('at').optional(),
})

export const CalibrationsQuery = z.strictObject(
  { device: DeviceId.optional(), metric: MetricParam.optional() },
  {
    error: (issue) =>
      issue.code === 'unrecognized_keys' ? `unknown query parameter: ${issue.keys.join(', ')}` : undefined,
  },
)

const IsoTime = z.iso.datetime()
/** One calibration as the API sends it (documented in openapi.ts from this schema). */
export const CalibrationResponse = z.object({
  id: z.string(),
  /** How exports name it in their `correction` chain, e.g. `cal-7@2`. */
  ref: z.string(),
  device: z.string(),
  metric: z.enum(METRICS),
  version: z.number().int(),
  slope: z.number(),
  intercept: z.number(),
  valid_from: IsoTime,
  valid_to: IsoTime.nullable(),
  /** The humidity correction applied before the line (the line was fitted on its output); null = raw values. */
  applied_after: z.string().nullable(),
  basis: z.object({
    kind: z.enum(['manual', 'colocation']),
    note: z.string().nullable().optional(),
    reference: z.string().optional(),
    period: z.object({ from: IsoTime, to: IsoTime }).optional(),
    n: z.number().int().optional(),
    r2: z.number().optional(),
    rmse: z.number().optional(),
  }),
  created_at: IsoTime,
  created_by: z.string(),
})
export const CalibrationListResponse = z.object({ calibrations: z.array(CalibrationResponse) })

const iso = (ms: number) => new Date(ms).toISOString()

export function publicCalibration(c: Calibration): z.infer<typeof CalibrationResponse> {
  const basis =
    c.basis.kind === 'manual'
      ? { kind: c.basis.kind, note: c.basis.note }
      : {
          kind: c.basis.kind,
          reference: c.basis.reference.deviceId,
          period: { from: iso(c.basis.period.from), to: iso(c.basis.period.to) },
          n: c.basis.n,
          r2: c.basis.r2,
          rmse: c.basis.rmse,
        }
  return {
    id: c.id,
    ref: calibrationRef(c),
    device: c.deviceId,
    metric: c.metric,
    version: c.version,
    slope: c.slope,
    intercept: c.intercept,
    valid_from: iso(c.validFrom),
    valid_to: c.validTo === null ? null : iso(c.validTo),
    applied_after: c.basis.after,
    basis,
    created_at: iso(c.createdAt),
    created_by: c.createdBy,
  }
}

function badRequest(code: string, detail: string, path?: string): HttpProblem {
  return new HttpProblem({
    status: 400,
    code,
    title: 'Invalid calibration',
    detail,
    ...(path === undefined ? {} : { errors: [{ path, message: detail }] }),
  })
}

async function measuringDevice(storage: Storage, id: string, metric: Metric, path: string): Promise<DeviceRecord> {
  const device = await storage.registry.getDevice(id)
  if (device === undefined) throw notFoundProblem(`no device with id ${JSON.stringify(id)}`, 'device_not_found')
  if (!device.sensors.includes(metric)) {
    throw badRequest('metric_not_measured', `device ${id} does not measure ${metric}`, path)
  }
  return device
}

/** What creating and retiring calibrations needs; the API context and the CLI both provide it. */
export interface CalibrationDeps {
  readonly storage: Storage
  readonly clock: () => number
}

/**
 * Fits a colocation calibration (without storing it): the valid hourly means (≥ 75 % coverage) of the device and
 * of the reference over [from, to), paired by hour; when the device's metric has a humidity correction, the
 * device's hourly mean is corrected first with its valid hourly mean RH, and the calibration records that it is
 * applied after it. Throws HttpProblem 404 device_not_found, 400 metric_not_measured / invalid_period,
 * 422 too_few_pairs / degenerate_fit / slope_out_of_range.
 */
export async function fitColocation(
  storage: Storage,
  input: Extract<CalibrationBody, { kind: 'colocation' }>,
): Promise<Pick<NewCalibration, 'slope' | 'intercept' | 'basis'>> {
  const { deviceId, metric, from, to } = input
  if (input.reference.deviceId === deviceId) {
    throw badRequest('invalid_reference', 'the reference must be another device', 'reference.deviceId')
  }
  if (from >= to) throw badRequest('invalid_period', 'from must be before to', 'from')
  if (to - from > MAX_FIT_SPAN_MS) {
    throw badRequest(
      'invalid_period',
      `the colocation period is at most ${MAX_FIT_SPAN_MS / (24 * HOUR_MS)} days`,
      'to',
    )
  }
  const device = await measuringDevice(storage, deviceId, metric, 'deviceId')
  await measuringDevice(storage, input.reference.deviceId, metric, 'reference.deviceId')
  const humidity = humidityCorrectionFor(device, metric)
  const limit = (to - from) / HOUR_MS
  const hourly = (id: string, m: Metric) =>
    storage.readings.aggregateSeries({ deviceId: id, metric: m, from, to, limit, every: '1h' })
  const [deviceHours, referenceHours, rhHours] = await Promise.all([
    hourly(deviceId, metric),
    hourly(input.reference.deviceId, metric),
    humidity === null ? Promise.resolve(undefined) : hourly(deviceId, 'rh'),
  ])
  const pairs = colocationPairs({
    metric,
    humidity,
    device: deviceHours,
    reference: referenceHours,
    ...(rhHours === undefined ? {} : { rh: rhHours }),
  })
  try {
    const fit = fitLinearCalibration(pairs)
    if (!(fit.slope >= MIN_CALIBRATION_SLOPE && fit.slope <= MAX_CALIBRATION_SLOPE)) {
      throw new CorrectionError(
        'SLOPE_OUT_OF_RANGE',
        `the fitted slope ${fit.slope.toPrecision(4)} is outside ${MIN_CALIBRATION_SLOPE}–${MAX_CALIBRATION_SLOPE} (r² ${fit.r2.toFixed(3)}): check that the devices stood together and measure the same thing`,
      )
    }
    return {
      slope: fit.slope,
      intercept: fit.intercept,
      basis: {
        kind: 'colocation',
        after: humidity?.id ?? null,
        reference: { deviceId: input.reference.deviceId },
        period: { from, to },
        n: fit.n,
        r2: fit.r2,
        rmse: fit.rmse,
      },
    }
  } catch (error) {
    if (!(error instanceof CorrectionError)) throw error
    const hint =
      error.code === 'TOO_FEW_PAIRS'
        ? ` (a pair is an hour in which both ${deviceId} and ${input.reference.deviceId} have at least 75 % of their expected ${metric} samples${humidity === null ? '' : ', and RH for the humidity correction'}; at least ${MIN_FIT_PAIRS} are needed)`
        : ''
    throw new HttpProblem({
      status: 422,
      code: error.code.toLowerCase(),
      title: 'Calibration cannot be fitted',
      detail: `${error.message}${hint}`,
      cause: error,
    })
  }
}

/** Creates the next calibration version of (device, metric), as POST /calibrations does. Throws HttpProblem. */
export async function createCalibration(
  deps: CalibrationDeps,
  body: CalibrationBody,
  actor: string,
): Promise<Calibration> {
  const { storage, clock } = deps
  let line: Pick<NewCalibration, 'slope' | 'intercept' | 'basis'>
  let validFrom: number
  if (body.kind === 'manual') {
    const device = await measuringDevice(storage, body.deviceId, body.metric, 'deviceId')
    line = {
      slope: body.slope,
      intercept: body.intercept,
      basis: {
        kind: 'manual',
        // A hand-entered line is applied where a fitted one would be: after the device's humidity correction.
        after: humidityCorrectionFor(device, body.metric)?.id ?? null,
        note: body.note ?? null,
      },
    }
    validFrom = body.validFrom
  } else {
    line = await fitColocation(storage, body)
    validFrom = body.validFrom ?? body.from
  }
  try {
    return await storage.calibrations.add({
      deviceId: body.deviceId,
      metric: body.metric,
      ...line,
      validFrom,
      createdAt: clock(),
      createdBy: actor,
    })
  } catch (error) {
    if (error instanceof StorageError && error.code === 'INVALID_CALIBRATION') {
      throw badRequest('invalid_calibration', error.message)
    }
    if (error instanceof StorageError && error.code === 'UNKNOWN_DEVICE') {
      throw notFoundProblem(error.message, 'device_not_found')
    }
    throw error
  }
}

function calibrationNotFound(id: unknown): HttpProblem {
  return notFoundProblem(`no calibration with id ${JSON.stringify(id)}`, 'calibration_not_found')
}

/** Retires a calibration at `at`, as POST /calibrations/:id/retire does. Throws HttpProblem 404, 409, 400. */
export async function retireCalibration(deps: CalibrationDeps, id: string, at: number): Promise<Calibration> {
  try {
    const retired = await deps.storage.calibrations.retire(id, at)
    if (retired === undefined) throw calibrationNotFound(id)
    return retired
  } catch (error) {
    if (error instanceof StorageError && error.code === 'CONFLICT') {
      throw new HttpProblem({ status: 409, code: 'already_retired', title: 'Conflict', detail: error.message })
    }
    if (error instanceof StorageError && error.code === 'INVALID_CALIBRATION') {
      throw badRequest('invalid_retirement', error.message, 'at')
    }
    throw error
  }
}

export function calibrationsRouter(ctx: ApiContext): Router {
  const { storage, clock } = ctx
  const router = Router()

  async function byId(id: unknown): Promise<Calibration> {
    const parsed = CalibrationId.safeParse(id)
    const calibration = parsed.success ? await storage.calibrations.get(parsed.data) : undefined
    if (calibration === undefined) throw calibrationNotFound(id)
    return calibration
  }

  router
    .route('/calibrations')
    .get(async (req, res) => {
      requirePermission(req, ctx, 'export', 'read calibrations')
      const parsed = CalibrationsQuery.safeParse(req.query)
      if (!parsed.success) throw validationProblem(parsed.error, 'calibrations query')
      const { device, metric } = parsed.data
      const list = await storage.calibrations.list({
        ...(device === undefined ? {} : { deviceId: device }),
        ...(metric === undefined ? {} : { metric }),
      })
      cacheNever(res)
      res.json({ calibrations: list.map(publicCalibration) })
    })
    .post(async (req, res) => {
      const principal = requirePermission(req, ctx, 'calibrations:write', 'create calibrations')
      const parsed = CalibrationBody.safeParse(req.body)
      if (!parsed.success) throw validationProblem(parsed.error, 'calibration')
      const actor = actorOf(principal)
      const created = await createCalibration(ctx, parsed.data, actor)
      await audit(ctx, actor, 'calibration.create', created.id, {
        device: created.deviceId,
        metric: created.metric,
        version: created.version,
        kind: created.basis.kind,
      })
      cacheNever(res)
      res.status(201).json(publicCalibration(created))
    })
    .all(methodNotAllowed(['GET', 'HEAD', 'POST']))

  router
    .route('/calibrations/:id')
    .get(async (req, res) => {
      requirePermission(req, ctx, 'export', 'read calibrations')
      const calibration = await byId(req.params.id)
      cacheNever(res)
      res.json(publicCalibration(calibration))
    })
    .all(methodNotAllowed(['GET', 'HEAD']))

  router
    .route('/calibrations/:id/retire')
    .post(async (req, res) => {
      const principal = requirePermission(req, ctx, 'calibrations:write', 'retire calibrations')
      const parsed = RetireBody.safeParse(req.body ?? {})
      if (!parsed.success) throw validationProblem(parsed.error, 'retirement')
      const calibration = await byId(req.params.id)
      const at = parsed.data.at ?? clock()
      const actor = actorOf(principal)
      const retired = await retireCalibration(ctx, calibration.id, at)
      await audit(ctx, actor, 'calibration.retire', retired.id, { at: iso(at) })
      cacheNever(res)
      res.json(publicCalibration(retired))
    })
    .all(methodNotAllowed(['POST']))

  return router
}
