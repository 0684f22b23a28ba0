import {
  audit,
  CalibrationBody,
  createCalibration,
  publicCalibration,
  RetireBody,
  retireCalibration,
} from '@skolluft/api'
import { CalibrationId, METRICS } from '@skolluft/core'
import { createLogger, type Logger, loadConfig } from '@skolluft/runtime'
import type { Storage } from '@skolluft/storage'
import type { z } from 'zod'
import { CommonConfig } from '../config.ts'
import { withDataDir } from '../data-dir.ts'
import { describeFlagIssues } from '../flag-issues.ts'
import type { CliIo } from '../main.ts'
import { printRows } from '../output.ts'
import { CLI_ACTOR } from './people.ts'

/**
 * Calibrations from the command line (`calibration add|fit|list|retire`, issue 5; docs/corrections.md). The CLI is
 * a composition root: it runs the API's own operations (createCalibration, retireCalibration) and validation
 * (CalibrationBody) on DATA_DIR, so a calibration made here is the same as one made through
 * POST /api/v1/calibrations. Changes are audited with the actor `cli`.
 */

/** A calibration command refused its input; `code` says why. Exit code 1 (usage problems: 2). */
export class CalibrationCommandError extends Error {
  readonly code: string

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'CalibrationCommandError'
    this.code = code
  }
}

/** How body fields are spelled on the command line, for error messages. */
const FLAG_OF: Readonly<Record<string, string>> = {
  deviceId: '--device',
  metric: '--metric',
  slope: '--slope',
  intercept: '--intercept',
  validFrom: '--valid-from',
  note: '--note',
  reference: '--reference',
  from: '--from',
  to: '--to',
}

function describeIssues(error: z.ZodError): string {
  return describeFlagIssues(error, FLAG_OF)
}

/** A number from a flag; NaN (refused by the schema with its message) when it is not one. */
function numberFlag(value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  return value.trim() === '' ? Number.NaN : Number(value)
}

function cliLogger(level: string, io: CliIo): Logger {
  return createLogger({ level, name: 'skolluft-cli', destination: { write: (line: string) => io.err(line) } })
}

interface CalibrationContext {
  readonly storage: Storage
  readonly log: Logger
  readonly clock: () => number
}

async function withCalibrations<T>(
  env: NodeJS.ProcessEnv,
  io: CliIo,
  fn: (ctx: CalibrationContext) => Promise<T>,
): Promise<T> {
  const config = loadConfig(CommonConfig, env)
  const log = cliLogger(config.LOG_LEVEL, io)
  return withDataDir(config, (storage) => fn({ storage, log, clock: Date.now }))
}

export interface CalibrationAddOptions {
  readonly device: string | undefined
  readonly metric: string | undefined
  readonly slope: string | undefined
  readonly intercept: string | undefined
  readonly validFrom: string | undefined
  readonly note: string | undefined
  readonly json: boolean
}

export interface CalibrationFitOptions {
  readonly device: string | undefined
  readonly metric: string | undefined
  readonly reference: string | undefined
  readonly from: string | undefined
  readonly to: string | undefined
  readonly validFrom: string | undefined
  readonly json: boolean
}

function summary(c: ReturnType<typeof publicCalibration>): string {
  const after = c.applied_after === null ? 'raw values' : `after ${c.applied_after}`
  const line = `${c.ref}: ${c.device} ${c.metric} = ${c.slope} · x + ${c.intercept} (${after}), valid from ${c.valid_from}`
  if (c.basis.kind !== 'colocation') return line
  return `${line}\n  fitted on ${c.basis.n} hours against ${c.basis.reference} (${c.basis.period?.from} – ${c.basis.period?.to}): r² ${c.basis.r2?.toFixed(4)}, RMSE ${c.basis.rmse?.toFixed(3)}`
}

async function create(env: NodeJS.ProcessEnv, io: CliIo, body: unknown, json: boolean, what: string): Promise<number> {
  const parsed = CalibrationBody.safeParse(body)
  if (!parsed.success) {
    io.err(`skolluft: calibration ${what}: ${describeIssues(parsed.error)}`)
    return 2
  }
  const created = await withCalibrations(env, io, async (ctx) => {
    const calibration = await createCalibration(ctx, parsed.data, CLI_ACTOR)
    await audit(ctx, CLI_ACTOR, 'calibration.create', calibration.id, {
      device: calibration.deviceId,
      metric: calibration.metric,
      version: calibration.version,
      kind: calibration.basis.kind,
    })
    return publicCalibration(calibration)
  })
  io.out(json ? JSON.stringify(created) : summary(created))
  return 0
}

/** `calibration add`: a line entered by hand (as POST /api/v1/calibrations with kind manual). */
export async function calibrationAdd(env: NodeJS.ProcessEnv, io: CliIo, o: CalibrationAddOptions): Promise<number> {
  const body = {
    kind: 'manual',
    deviceId: o.device,
    metric: o.metric,
    slope: numberFlag(o.slope),
    intercept: numberFlag(o.intercept),
    validFrom: o.validFrom,
    ...(o.note === undefined ? {} : { note: o.note }),
  }
  return create(env, io, body, o.json, 'add')
}

/** `calibration fit`: a colocation fit against a reference device (as POST /api/v1/calibrations, colocation). */
export async function calibrationFit(env: NodeJS.ProcessEnv, io: CliIo, o: CalibrationFitOptions): Promise<number> {
  const body = {
    kind: 'colocation',
    deviceId: o.device,
    metric: o.metric,
    reference: { deviceId: o.reference },
    from: o.from,
    to: o.to,
    ...(o.validFrom === undefined ? {} : { validFrom: o.validFrom }),
  }
  return create(env, io, body, o.json, 'fit')
}

export async function calibrationList(
  env: NodeJS.ProcessEnv,
  io: CliIo,
  o: { readonly device: string | undefined; readonly metric: string | undefined; readonly json: boolean },
): Promise<number> {
  const metric = METRICS.find((m) => m === o.metric)
  if (o.metric !== undefined && metric === undefined) {
    io.err(`skolluft: calibration list: --metric must be one of ${METRICS.join(', ')}`)
    return 2
  }
  const list = await withCalibrations(env, io, (ctx) =>
    ctx.storage.calibrations.list({
      ...(o.device === undefined ? {} : { deviceId: o.device }),
      ...(metric === undefined ? {} : { metric }),
    }),
  )
  return printRows(io, list.map(publicCalibration), {
    json: o.json,
    empty: 'no calibrations (add one: skolluft calibration add|fit …)',
    header: ['REF', 'DEVICE', 'METRIC', 'SLOPE', 'INTERCEPT', 'AFTER', 'VALID FROM', 'VALID TO', 'BASIS'],
    cells: (c) => [
      c.ref,
      c.device,
      c.metric,
      String(c.slope),
      String(c.intercept),
      c.applied_after ?? 'raw',
      c.valid_from,
      c.valid_to ?? '-',
      c.basis.kind === 'colocation'
        ? `colocation ${c.basis.reference} n=${c.basis.n} r²=${c.basis.r2?.toFixed(3)} rmse=${c.basis.rmse?.toFixed(3)}`
        : `manual${c.basis.note ? ` (${c.basis.note})` : ''}`,
    ],
  })
}

/** `calibration retire <id> [--at ISO]`: readings from `at` (default now) on no longer get it. */
export async function calibrationRetire(
  env: NodeJS.ProcessEnv,
  io: CliIo,
  id: string,
  atIso: string | undefined,
): Promise<number> {
  if (!CalibrationId.safeParse(id).success) {
    throw new CalibrationCommandError('CALIBRATION_NOT_FOUND', `no calibration with id ${JSON.stringify(id)}`)
  }
  const parsed = RetireBody.safeParse(atIso === undefined ? {} : { at: atIso })
  if (!parsed.success) {
    io.err(`skolluft: calibration retire: --${describeIssues(parsed.error)}`)
    return 2
  }
  const retired = await withCalibrations(env, io, async (ctx) => {
    const when = parsed.data.at ?? ctx.clock()
    const calibration = await retireCalibration(ctx, id, when)
    await audit(ctx, CLI_ACTOR, 'calibration.retire', calibration.id, { at: new Date(when).toISOString() })
    return publicCalibration(calibration)
  })
  io.out(`${retired.ref} (${retired.device} ${retired.metric}) retired: valid to ${retired.valid_to}`)
  return 0
}
