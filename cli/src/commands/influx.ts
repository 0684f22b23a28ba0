import { randomBytes } from 'node:crypto'
import { constants } from 'node:fs'
import { access, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { HttpError, InfluxDB, RequestTimedOutError } from '@influxdata/influxdb-client'
import {
  type Authorization,
  AuthorizationsAPI,
  type Bucket,
  BucketsAPI,
  OrgsAPI,
  type Permission,
  SetupAPI,
} from '@influxdata/influxdb-client-apis'
import { createLogger, type Logger, loadConfig } from '@skolluft/runtime'
import { z } from 'zod'
import { CommonConfig } from '../config.ts'
import type { CliIo } from '../main.ts'

/**
 * `skolluft influx setup|check` (issue 6): brings an InfluxDB 2 server to the state skolluft needs, or reports how
 * far it is from it. The desired state: the organisation INFLUX_ORG, the readings bucket INFLUX_BUCKET with a
 * retention, and two scoped tokens (ingest: write + read on the bucket; read-only: API and Grafana). Runs with an
 * operator token (INFLUX_TOKEN); on a fresh server `--init` onboards it first (POST /api/v2/setup), making
 * INFLUX_TOKEN the operator token, so the same environment works before and after.
 *
 * Idempotent: what exists and matches is left alone; what differs (retention, a token's permissions) is reported
 * and changed only with --apply. Tokens are shown once, when they are created, on stdout or in a file of mode
 * 0600; they are never logged, and an existing token is never shown again.
 */

/** Environment of the influx commands. STORE=influxdb services read the same variables. */
export const InfluxEnv = CommonConfig.extend({
  INFLUX_URL: z.url({ protocol: /^https?$/, error: 'an http(s) URL, e.g. http://influxdb:8086' }),
  INFLUX_ORG: z.string().min(1),
  INFLUX_BUCKET: z.string().min(1),
  INFLUX_TOKEN: z.string().min(1, 'the operator token'),
})
export type InfluxEnv = z.infer<typeof InfluxEnv>

/** An influx command failed; `code` says why (exit code 1). */
export class InfluxCommandError extends Error {
  readonly code: string

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'InfluxCommandError'
    this.code = code
  }
}

/** The influxdb-client's own default socket timeout for node.js (ConnectionOptions.timeout), stated here. */
const REQUEST_TIMEOUT_MS = 10_000
const DAY_S = 86_400
/** InfluxDB 2 refuses retention periods under one hour (docs: "minimum retention period is one hour"); days avoid it. */
const MAX_RETENTION_DAYS = 36_500
/**
 * InfluxDB 2 refuses shorter passwords at onboarding (tenant.EShortPassword, "passwords must be at least 8
 * characters long"); checked here so the refusal comes before any request.
 */
const MIN_PASSWORD_LENGTH = 8
/**
 * Default retention: 0 = kept forever. Readings are research data (exposure near schools over years, trends,
 * reanalysis with later calibrations), small (a few hundred devices at one reading a minute is some GB a year
 * after InfluxDB's compression), and a retention that silently deletes them cannot be undone. Shorter retention
 * is a deliberate choice: --retention <days>.
 */
const DEFAULT_RETENTION_DAYS = 0

/** The two tokens skolluft uses, found again by their description (InfluxDB has no other name for a token). */
export const TOKEN_KINDS = ['ingest', 'read'] as const
export type TokenKind = (typeof TOKEN_KINDS)[number]

export function tokenDescription(kind: TokenKind, bucket: string): string {
  return kind === 'ingest'
    ? `skolluft ingest: write+read bucket ${bucket}`
    : `skolluft read-only: read bucket ${bucket}`
}

const TOKEN_PURPOSE: Readonly<Record<TokenKind, string>> = {
  ingest: 'ingest workers: write + read (duplicate and quality checks) on the bucket',
  read: 'API and Grafana: read-only on the bucket',
}

/** Permissions of each token: on the one bucket only (resource id), never on every bucket of the org. */
export function tokenPermissions(kind: TokenKind, orgID: string, bucketID: string): Permission[] {
  const resource = { type: 'buckets', id: bucketID, orgID } as const
  return kind === 'ingest'
    ? [
        { action: 'read', resource },
        { action: 'write', resource },
      ]
    : [{ action: 'read', resource }]
}

export interface InfluxSetupOptions {
  readonly retention: string | undefined
  readonly apply: boolean
  readonly init: boolean
  readonly username: string | undefined
  readonly passwordFile: string | undefined
  readonly ingestEnv: string | undefined
  readonly readEnv: string | undefined
}

export interface InfluxCheckOptions {
  readonly retention: string | undefined
}

function parseRetentionDays(value: string | undefined): number {
  if (value === undefined) return DEFAULT_RETENTION_DAYS
  const days = /^[0-9]+$/.test(value) ? Number(value) : Number.NaN
  if (!Number.isInteger(days) || days > MAX_RETENTION_DAYS) {
    throw new InfluxCommandError(
      'INFLUX_USAGE',
      `--retention must be whole days, 0 (kept forever) to ${MAX_RETENTION_DAYS}; got ${JSON.stringify(value)}`,
    )
  }
  return days
}

const describeRetention = (seconds: number) =>
  seconds === 0 ? 'kept forever' : seconds % DAY_S === 0 ? `${seconds / DAY_S} days` : `${seconds} s`

/** A bucket's retention in seconds: its `expire` rule; none, or everySeconds 0, is infinite (Bucket.retentionRules). */
function bucketRetentionS(bucket: Bucket): number {
  return bucket.retentionRules.find((r) => r.type === undefined || r.type === 'expire')?.everySeconds ?? 0
}

const permissionKey = (p: Permission) => `${p.action}:${p.resource.type}/${p.resource.id ?? '*'}`

function samePermissions(a: readonly Permission[], b: readonly Permission[]): boolean {
  const left = [...new Set(a.map(permissionKey))].sort()
  const right = [...new Set(b.map(permissionKey))].sort()
  return left.length === right.length && left.every((k, i) => k === right[i])
}

/** The error body InfluxDB 2 sends ({"code":"unauthorized","message":"unauthorized access"}). */
const InfluxErrorBody = z.object({ code: z.string().optional(), message: z.string().optional() })

/** A network error's code (node's system errors), when it has one. */
const SystemError = z.object({ code: z.string() })
const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
])

/**
 * Turns what the client threw into an error an operator can act on. `what` names the request ("create the
 * organisation lund"). Never includes request bodies (an onboarding request carries the password).
 */
function explain(error: unknown, what: string, url: string): InfluxCommandError {
  if (error instanceof InfluxCommandError) return error
  if (error instanceof HttpError) {
    const body = InfluxErrorBody.safeParse(error.json)
    const message = body.success ? (body.data.message ?? '') : ''
    if (error.statusCode === 401 || error.statusCode === 403) {
      // InfluxDB answers 401 both for an unknown token ("unauthorized access") and for a known token without
      // the permission ("write:orgs is unauthorized"): authorizer.IsAllowed.
      if (message === '' || message === 'unauthorized access') {
        return new InfluxCommandError(
          'INFLUX_UNAUTHORIZED',
          `InfluxDB at ${url} refused INFLUX_TOKEN (${error.statusCode} ${message || 'unauthorized'}) to ${what}: ` +
            'is it the operator token of this server, and still active?',
          { cause: error },
        )
      }
      return new InfluxCommandError(
        'INFLUX_FORBIDDEN',
        // InfluxDB OSS lists tokens only for an operator token (GET /api/v2/authorizations, "Required permissions").
        `INFLUX_TOKEN may not ${what} (${error.statusCode}: ${message}): use the operator token of the server`,
        { cause: error },
      )
    }
    return new InfluxCommandError(
      'INFLUX_HTTP',
      `InfluxDB at ${url} could not ${what}: ${error.statusCode} ${message || (error.statusMessage ?? '')}`.trim(),
      { cause: error },
    )
  }
  if (error instanceof RequestTimedOutError) {
    return new InfluxCommandError(
      'INFLUX_UNREACHABLE',
      `InfluxDB at ${url} did not answer within ${REQUEST_TIMEOUT_MS / 1000} s (${what})`,
      { cause: error },
    )
  }
  const system = SystemError.safeParse(error)
  if (system.success && UNREACHABLE_CODES.has(system.data.code)) {
    return new InfluxCommandError(
      'INFLUX_UNREACHABLE',
      `cannot reach InfluxDB at ${url} (${system.data.code}): is INFLUX_URL right and the server running?`,
      { cause: error },
    )
  }
  return new InfluxCommandError(
    'INFLUX_FAILED',
    `InfluxDB at ${url}: could not ${what}: ${error instanceof Error ? error.message : String(error)}`,
    { cause: error },
  )
}

const isNotFound = (error: unknown) => error instanceof HttpError && error.statusCode === 404

interface Apis {
  readonly setup: SetupAPI
  readonly orgs: OrgsAPI
  readonly buckets: BucketsAPI
  readonly auths: AuthorizationsAPI
}

interface Run {
  readonly env: InfluxEnv
  readonly apis: Apis
  readonly io: CliIo
  readonly log: Logger
  /** false: `check`, which changes nothing. */
  readonly change: boolean
  readonly apply: boolean
  readonly retentionS: number
  /** What was changed, for the summary; empty = nothing changed. */
  readonly changed: string[]
  /** What differs and was left as it is (check: also what is missing); non-empty = exit 1. */
  readonly drift: string[]
  /** Tokens created in this run, shown once at the end. */
  readonly created: { kind: TokenKind; token: string }[]
  /** Calls `what` while turning client errors into InfluxCommandErrors. */
  readonly call: <T>(what: string, fn: () => Promise<T>) => Promise<T>
}

function cliLogger(level: string, io: CliIo): Logger {
  return createLogger({ level, name: 'skolluft-influx', destination: { write: (line: string) => io.err(line) } })
}

function openApis(env: InfluxEnv): Apis {
  const influx = new InfluxDB({ url: env.INFLUX_URL, token: env.INFLUX_TOKEN, timeout: REQUEST_TIMEOUT_MS })
  return {
    setup: new SetupAPI(influx),
    orgs: new OrgsAPI(influx),
    buckets: new BucketsAPI(influx),
    auths: new AuthorizationsAPI(influx),
  }
}

function startRun(
  env: NodeJS.ProcessEnv,
  io: CliIo,
  o: { change: boolean; apply: boolean; retention: string | undefined },
): Run {
  const retentionS = parseRetentionDays(o.retention) * DAY_S
  const config = loadConfig(InfluxEnv, env)
  const url = config.INFLUX_URL
  return {
    env: config,
    apis: openApis(config),
    io,
    log: cliLogger(config.LOG_LEVEL, io),
    change: o.change,
    apply: o.apply,
    retentionS,
    changed: [],
    drift: [],
    created: [],
    call: async (what, fn) => {
      try {
        return await fn()
      } catch (error) {
        throw explain(error, what, url)
      }
    },
  }
}

function noteChange(run: Run, line: string): void {
  run.changed.push(line)
  run.io.out(line)
}

/** Reads the onboarding password: the file's content without its final line break. */
async function readPassword(file: string): Promise<string> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (error) {
    throw new InfluxCommandError('INFLUX_USAGE', `--password-file: cannot read ${file}`, { cause: error })
  }
  const password = text.replace(/\r?\n$/, '')
  if (password.includes('\n')) {
    throw new InfluxCommandError('INFLUX_USAGE', '--password-file: the password must be one line')
  }
  if (password.length < MIN_PASSWORD_LENGTH) {
    throw new InfluxCommandError(
      'INFLUX_USAGE',
      `--password-file: InfluxDB needs at least ${MIN_PASSWORD_LENGTH} characters`,
    )
  }
  return password
}

/** Onboarding (POST /api/v2/setup) when the server allows it; `false` when the server is not set up and we may not. */
async function onboard(run: Run, o: InfluxSetupOptions | undefined): Promise<boolean> {
  const state = await run.call('tell whether it is set up (GET /api/v2/setup)', () => run.apis.setup.getSetup())
  if (state.allowed !== true) {
    if (o?.init) run.io.out('onboarding: already done (the server has its initial user); --init has nothing to do')
    return true
  }
  if (!o?.init || o.username === undefined || o.passwordFile === undefined) {
    const hint = 'skolluft influx setup --init --username <name> --password-file <file>'
    if (!run.change) {
      run.drift.push(`server: not set up yet (onboarding allowed); set it up with: ${hint}`)
      return false
    }
    throw new InfluxCommandError(
      'INFLUX_NOT_ONBOARDED',
      `InfluxDB at ${run.env.INFLUX_URL} is not set up yet; onboard it with: ${hint}`,
    )
  }
  const password = await readPassword(o.passwordFile)
  const { env } = run
  await run.call('onboard (POST /api/v2/setup)', () =>
    run.apis.setup.postSetup({
      body: {
        username: o.username ?? '',
        password,
        org: env.INFLUX_ORG,
        bucket: env.INFLUX_BUCKET,
        retentionPeriodSeconds: run.retentionS,
        // The operator token is the one in the environment, so INFLUX_TOKEN works for the rest of this run and after.
        token: env.INFLUX_TOKEN,
      },
    }),
  )
  run.log.info({ org: env.INFLUX_ORG, bucket: env.INFLUX_BUCKET, user: o.username }, 'influxdb onboarded')
  noteChange(
    run,
    `onboarded: user ${o.username}, organisation ${env.INFLUX_ORG}, bucket ${env.INFLUX_BUCKET} ` +
      `(${describeRetention(run.retentionS)}); INFLUX_TOKEN is the operator token`,
  )
  return true
}

async function ensureOrg(run: Run): Promise<string | undefined> {
  const name = run.env.INFLUX_ORG
  const found = await run.call(`find the organisation ${name}`, async () => {
    try {
      // InfluxDB 2 answers 404 for an organisation name it does not know (or the token may not see).
      return (await run.apis.orgs.getOrgs({ org: name })).orgs?.find((org) => org.name === name)
    } catch (error) {
      if (isNotFound(error)) return undefined
      throw error
    }
  })
  if (found?.id !== undefined) {
    run.io.out(`organisation ${name}: exists`)
    return found.id
  }
  if (!run.change) {
    run.drift.push(`organisation ${name}: missing`)
    return undefined
  }
  const created = await run.call(`create the organisation ${name}`, () =>
    run.apis.orgs.postOrgs({ body: { name, description: 'skolluft air quality readings' } }),
  )
  if (created.id === undefined) throw new InfluxCommandError('INFLUX_FAILED', 'organisation created without an id')
  run.log.info({ org: name, orgID: created.id }, 'influxdb organisation created')
  noteChange(run, `organisation ${name}: created`)
  return created.id
}

async function ensureBucket(run: Run, orgID: string): Promise<string | undefined> {
  const name = run.env.INFLUX_BUCKET
  const want = run.retentionS
  const found = await run.call(`find the bucket ${name}`, async () => {
    try {
      return (await run.apis.buckets.getBuckets({ orgID, name })).buckets?.find((b) => b.name === name)
    } catch (error) {
      if (isNotFound(error)) return undefined
      throw error
    }
  })
  // 0 = infinite retention (RetentionRule.everySeconds in the InfluxDB 2 API); sent explicitly, because a PATCH
  // with no rule leaves the retention as it was.
  const rules = [{ type: 'expire' as const, everySeconds: want }]
  if (found?.id !== undefined) {
    const bucketID = found.id
    const have = bucketRetentionS(found)
    if (have === want) {
      run.io.out(`bucket ${name}: exists, retention ${describeRetention(have)}`)
      return bucketID
    }
    const difference = `bucket ${name}: retention is ${describeRetention(have)}, wanted ${describeRetention(want)}`
    if (!run.change || !run.apply) {
      // A shorter retention makes InfluxDB delete the older readings at its next retention check.
      const loss = want !== 0 && (have === 0 || want < have) ? '; shortening it deletes older readings' : ''
      run.drift.push(`${difference}: left as it is (skolluft influx setup --apply changes it${loss})`)
      return bucketID
    }
    await run.call(`change the retention of the bucket ${name}`, () =>
      run.apis.buckets.patchBucketsID({ bucketID, body: { retentionRules: rules } }),
    )
    run.log.info({ bucket: name, fromS: have, toS: want }, 'influxdb bucket retention changed')
    noteChange(run, `${difference}: changed`)
    return bucketID
  }
  if (!run.change) {
    run.drift.push(`bucket ${name}: missing`)
    return undefined
  }
  const created = await run.call(`create the bucket ${name}`, () =>
    run.apis.buckets.postBuckets({
      body: { orgID, name, description: 'skolluft readings (measurement reading, device_hour)', retentionRules: rules },
    }),
  )
  if (created.id === undefined) throw new InfluxCommandError('INFLUX_FAILED', 'bucket created without an id')
  run.log.info({ bucket: name, bucketID: created.id, retentionS: want }, 'influxdb bucket created')
  noteChange(run, `bucket ${name}: created, retention ${describeRetention(want)}`)
  return created.id
}

async function ensureTokens(run: Run, orgID: string, bucketID: string): Promise<void> {
  const bucket = run.env.INFLUX_BUCKET
  const list = await run.call('list the tokens (GET /api/v2/authorizations)', () =>
    run.apis.auths.getAuthorizations({ orgID }),
  )
  const active = (list.authorizations ?? []).filter((a) => a.status !== 'inactive' && a.orgID === orgID)
  for (const kind of TOKEN_KINDS) {
    const description = tokenDescription(kind, bucket)
    const want = tokenPermissions(kind, orgID, bucketID)
    const existing: Authorization[] = active.filter((a) => a.description === description)
    const matching = existing.find((a) => samePermissions(a.permissions ?? [], want))
    const label = `${kind} token (${TOKEN_PURPOSE[kind]})`
    if (matching !== undefined) {
      run.io.out(`${label}: exists (not shown again)`)
      continue
    }
    if (existing.length > 0 && (!run.change || !run.apply)) {
      run.drift.push(
        `${label}: exists with other permissions, left as it is ` +
          '(skolluft influx setup --apply replaces it: a new token, the old one deleted)',
      )
      continue
    }
    if (!run.change) {
      run.drift.push(`${label}: missing`)
      continue
    }
    const created = await run.call(`create the ${kind} token`, () =>
      run.apis.auths.postAuthorizations({ body: { orgID, description, status: 'active', permissions: want } }),
    )
    if (created.token === undefined)
      throw new InfluxCommandError('INFLUX_FAILED', `${kind} token created without a token`)
    run.created.push({ kind, token: created.token })
    run.log.info({ kind, authID: created.id, bucket }, 'influxdb token created')
    for (const old of existing) {
      const authID = old.id
      if (authID === undefined) continue
      await run.call(`delete the old ${kind} token`, () => run.apis.auths.deleteAuthorizationsID({ authID }))
      run.log.info({ kind, authID }, 'influxdb token with other permissions deleted')
    }
    noteChange(run, `${label}: ${existing.length > 0 ? 'replaced (the old one is deleted)' : 'created'}`)
  }
}

/** An env file of one token: the four INFLUX_ settings a service needs. */
function envFileText(run: Run, kind: TokenKind, token: string): string {
  const { env } = run
  return [
    `# skolluft ${kind} token for InfluxDB: ${TOKEN_PURPOSE[kind]} ${env.INFLUX_BUCKET}.`,
    '# Written once by `skolluft influx setup`; keep this file mode 0600.',
    `INFLUX_URL=${env.INFLUX_URL}`,
    `INFLUX_ORG=${env.INFLUX_ORG}`,
    `INFLUX_BUCKET=${env.INFLUX_BUCKET}`,
    `INFLUX_TOKEN=${token}`,
    '',
  ].join('\n')
}

/** Writes `text` to `file` with mode 0600 from its creation on (a new file renamed over the old one). */
async function writeSecretFile(file: string, text: string): Promise<void> {
  const temp = join(dirname(file), `.${basename(file)}.${randomBytes(6).toString('hex')}.tmp`)
  try {
    await writeFile(temp, text, { mode: 0o600, flag: 'wx' })
    await rename(temp, file)
  } catch (error) {
    await rm(temp, { force: true })
    throw error
  }
}

/** Refuses before any change when a token file could not be written (a token shown nowhere would be lost). */
async function checkWritable(flag: string, file: string | undefined): Promise<void> {
  if (file === undefined) return
  try {
    await access(dirname(file), constants.W_OK)
  } catch (error) {
    throw new InfluxCommandError('INFLUX_USAGE', `${flag}: cannot write in ${dirname(file)}`, { cause: error })
  }
}

async function reconcile(run: Run, o: InfluxSetupOptions | undefined): Promise<void> {
  if (!(await onboard(run, o))) return
  const orgID = await ensureOrg(run)
  if (orgID === undefined) return
  const bucketID = await ensureBucket(run, orgID)
  if (bucketID === undefined) return
  await ensureTokens(run, orgID, bucketID)
}

/** Usage problems exit with 2 and the message, as the other commands' flag errors do. */
async function withUsage(io: CliIo, command: string, fn: () => Promise<number>): Promise<number> {
  try {
    return await fn()
  } catch (error) {
    if (!(error instanceof InfluxCommandError) || error.code !== 'INFLUX_USAGE') throw error
    io.err(`skolluft: influx ${command}: ${error.message}`)
    return 2
  }
}

/** `influx setup`: creates what is missing; exit 0 when the server is as wanted, 1 when something was left. */
export function influxSetup(env: NodeJS.ProcessEnv, io: CliIo, o: InfluxSetupOptions): Promise<number> {
  return withUsage(io, 'setup', () => setup(env, io, o))
}

async function setup(env: NodeJS.ProcessEnv, io: CliIo, o: InfluxSetupOptions): Promise<number> {
  if (o.init && (o.username === undefined || o.passwordFile === undefined)) {
    throw new InfluxCommandError('INFLUX_USAGE', '--init needs --username <name> and --password-file <file>')
  }
  if (!o.init && (o.username !== undefined || o.passwordFile !== undefined)) {
    throw new InfluxCommandError('INFLUX_USAGE', '--username and --password-file go with --init')
  }
  const run = startRun(env, io, { change: true, apply: o.apply, retention: o.retention })
  await checkWritable('--ingest-env', o.ingestEnv)
  await checkWritable('--read-env', o.readEnv)
  io.out(`InfluxDB ${run.env.INFLUX_URL}: organisation ${run.env.INFLUX_ORG}, bucket ${run.env.INFLUX_BUCKET}`)
  try {
    await reconcile(run, o)
  } finally {
    // Tokens already created are shown even when a later step failed: they exist and cannot be shown again.
    await showTokens(run, o)
  }
  for (const line of run.drift) io.out(line)
  if (run.changed.length === 0) io.out('nothing to change: the server is already set up')
  return run.drift.length === 0 ? 0 : 1
}

async function showTokens(run: Run, o: InfluxSetupOptions): Promise<void> {
  for (const { kind, token } of run.created) {
    const file = kind === 'ingest' ? o.ingestEnv : o.readEnv
    if (file !== undefined) {
      try {
        await writeSecretFile(file, envFileText(run, kind, token))
        run.io.out(`${kind} token: written to ${file} (mode 0600)`)
        continue
      } catch (error) {
        run.io.err(
          `skolluft: could not write ${file} (${(error as Error).message}); the ${kind} token follows on stdout`,
        )
      }
    }
    run.io.out(`# ${kind} token (${TOKEN_PURPOSE[kind]}), shown once:\nINFLUX_TOKEN=${token}`)
  }
}

/** `influx check`: the comparison alone; exit 0 when everything is as wanted, 1 otherwise. Changes nothing. */
export function influxCheck(env: NodeJS.ProcessEnv, io: CliIo, o: InfluxCheckOptions): Promise<number> {
  return withUsage(io, 'check', () => check(env, io, o))
}

async function check(env: NodeJS.ProcessEnv, io: CliIo, o: InfluxCheckOptions): Promise<number> {
  const run = startRun(env, io, { change: false, apply: false, retention: o.retention })
  io.out(`InfluxDB ${run.env.INFLUX_URL}: organisation ${run.env.INFLUX_ORG}, bucket ${run.env.INFLUX_BUCKET}`)
  await reconcile(run, undefined)
  for (const line of run.drift) io.out(line)
  io.out(run.drift.length === 0 ? 'ok: the server is set up as skolluft needs' : 'not as wanted: see above')
  return run.drift.length === 0 ? 0 : 1
}
