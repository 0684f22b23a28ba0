import type { Readable } from 'node:stream'
import {
  audit,
  CreateTokenBody,
  createToken,
  createUser,
  HttpProblem,
  parseApiToken,
  publicToken,
  publicUser,
} from '@skolluft/api'
import { Password, UserInput } from '@skolluft/core'
import { createLogger, generateSecret, hashSecret, type Logger, loadConfig } from '@skolluft/runtime'
import { type Storage, StorageError } from '@skolluft/storage'
import type { z } from 'zod'
import { CommonConfig } from '../config.ts'
import { withDataDir } from '../data-dir.ts'
import { describeFlagIssues } from '../flag-issues.ts'
import type { CliIo } from '../main.ts'
import { isoOrNull, printRows } from '../output.ts'

/**
 * People and access from the command line: users (`user add|list|disable`) and API tokens
 * (`token create|list|revoke`). The CLI is a composition root, so it reuses the API's own operations
 * (createUser, createToken, audit) and validation (core UserInput and Password, the API's
 * CreateTokenBody): a user made here is the same as one made through POST /api/v1/users.
 * Every change is audited with the actor `cli` (whoever can run this owns DATA_DIR anyway).
 */
export const CLI_ACTOR = 'cli'

/**
 * Most bytes `--password-stdin` reads: MAX_PASSWORD_LENGTH (256 characters) is at most 1 KiB of UTF-8,
 * so a too-long password still reaches Password's own message, while a file piped in by mistake does not
 * get read whole.
 */
export const MAX_STDIN_PASSWORD_BYTES = 4096

/** A people command refused its input or found no such record; `code` says which. Exit code 1. */
export class PeopleCommandError extends Error {
  readonly code: string

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'PeopleCommandError'
    this.code = code
  }
}

/** How schema fields are spelled on the command line, for error messages. */
const FLAG_OF: Readonly<Record<string, string>> = {
  email: '--email',
  name: '--name',
  role: '--role',
  sites: '--site',
  scopes: '--scope',
  expiresInDays: '--expires-days',
}

function describeIssues(error: z.ZodError): string {
  return describeFlagIssues(error, FLAG_OF)
}

/** JSON log lines go to stderr, so stdout carries only the command's output (`--json` stays parseable). */
function cliLogger(level: string, io: CliIo): Logger {
  return createLogger({ level, name: 'skolluft-cli', destination: { write: (line: string) => io.err(line) } })
}

interface PeopleContext {
  readonly storage: Storage
  readonly log: Logger
  readonly clock: () => number
}

/** Opens DATA_DIR and runs `fn` with what the API's operations need; always closes the store. */
async function withPeople<T>(env: NodeJS.ProcessEnv, io: CliIo, fn: (ctx: PeopleContext) => Promise<T>): Promise<T> {
  const config = loadConfig(CommonConfig, env)
  const log = cliLogger(config.LOG_LEVEL, io)
  return withDataDir(config, (storage) => fn({ storage, log, clock: Date.now }))
}

/**
 * Reads one password from a pipe or file: one line, the final newline dropped (so `echo` works), nothing
 * else trimmed (spaces are allowed in a password). Refuses a terminal: typed there it would be echoed.
 */
export async function readStdinPassword(stdin: Readable): Promise<string> {
  if ('isTTY' in stdin && stdin.isTTY === true) {
    throw new PeopleCommandError(
      'STDIN_IS_TERMINAL',
      '--password-stdin reads the password from a pipe or a file, e.g. `skolluft user add … --password-stdin < pw.txt`',
    )
  }
  const chunks: Buffer[] = []
  let bytes = 0
  for await (const chunk of stdin) {
    const part = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk))
    bytes += part.length
    if (bytes > MAX_STDIN_PASSWORD_BYTES) {
      throw new PeopleCommandError('PASSWORD_TOO_LONG', `stdin holds more than ${MAX_STDIN_PASSWORD_BYTES} bytes`)
    }
    chunks.push(part)
  }
  const text = Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '')
  if (/[\r\n]/.test(text)) throw new PeopleCommandError('INVALID_PASSWORD', 'give the password on stdin as one line')
  return text
}

export interface UserAddOptions {
  readonly role: string
  readonly email: string
  readonly sites: readonly string[]
  readonly name: string | undefined
  /** Read the password from stdin; otherwise one is generated and printed once. */
  readonly passwordStdin: boolean
  readonly json: boolean
}

/** Creates a user (as POST /api/v1/users does) and prints a generated password once. */
export async function userAdd(
  env: NodeJS.ProcessEnv,
  io: CliIo,
  options: UserAddOptions,
  stdin: Readable = process.stdin,
): Promise<number> {
  const input = UserInput.safeParse({
    email: options.email,
    role: options.role,
    sites: [...options.sites],
    name: options.name ?? null,
  })
  if (!input.success) {
    io.err(`skolluft: user add: ${describeIssues(input.error)}`)
    return 2
  }
  let generated: string | undefined
  let password: string
  if (options.passwordStdin) {
    const checked = Password.safeParse(await readStdinPassword(stdin))
    if (!checked.success) {
      io.err(`skolluft: user add: ${describeIssues(checked.error)}`)
      return 2
    }
    password = checked.data
  } else {
    generated = generateSecret()
    password = generated
  }
  const passwordHash = await hashSecret(password)
  const user = await withPeople(env, io, async (ctx) => {
    const created = await createUser(ctx, input.data, passwordHash).catch((error: unknown) => {
      throw userAddError(error, input.data.email)
    })
    await audit(ctx, CLI_ACTOR, 'user.create', created.id, { role: created.role, sites: created.sites })
    return created
  })
  if (options.json) {
    io.out(JSON.stringify({ user: publicUser(user), ...(generated === undefined ? {} : { password: generated }) }))
    return 0
  }
  const sites = user.sites.length > 0 ? `, sites ${user.sites.join(', ')}` : ''
  io.out(`user ${user.email} added: role ${user.role}${sites}, id ${user.id}`)
  if (generated === undefined) {
    io.out('  password: as given on stdin')
  } else {
    io.out(
      `  password: ${generated}\n` +
        'The password is shown only now; it is stored only as a hash. Hand it to the user over a safe channel.\n' +
        'If it is lost, an admin sets a new one (dashboard user administration, PATCH /api/v1/users/:id).',
    )
  }
  return 0
}

/** The API's answers to a refused user, as command-line errors. */
function userAddError(error: unknown, email: string): unknown {
  const code = error instanceof HttpProblem || error instanceof StorageError ? error.code : undefined
  if (code === 'email_taken' || code === 'CONFLICT') {
    return new PeopleCommandError('EMAIL_TAKEN', `a user with email ${email} already exists`, { cause: error })
  }
  if (code === 'site_not_found' || code === 'UNKNOWN_SITE') {
    return new PeopleCommandError(
      'UNKNOWN_SITE',
      `${(error as Error).message} (sites come from: skolluft sites import <file>)`,
      { cause: error },
    )
  }
  return error
}

export async function userList(env: NodeJS.ProcessEnv, io: CliIo, json: boolean): Promise<number> {
  const users = await withPeople(env, io, (ctx) => ctx.storage.access.listUsers())
  const rows = users.map((u) => ({ ...publicUser(u), disabled_at: isoOrNull(u.disabledAt) }))
  return printRows(io, rows, {
    json,
    empty: 'no users (add the first admin: skolluft user add --role admin --email <you@example.org>)',
    header: ['EMAIL', 'ROLE', 'SITES', 'NAME', 'CREATED', 'STATE'],
    cells: (r) => [
      r.email,
      r.role,
      r.sites.join(',') || '-',
      r.name ?? '-',
      r.created_at,
      r.disabled_at === null ? 'active' : `disabled ${r.disabled_at}`,
    ],
  })
}

/** Disables an account and ends its sessions (as DELETE /api/v1/users/:id does). */
export async function userDisable(env: NodeJS.ProcessEnv, io: CliIo, email: string): Promise<number> {
  return withPeople(env, io, async (ctx) => {
    const { access } = ctx.storage
    const user = await access.getUserByEmail(email)
    if (user === undefined) throw new PeopleCommandError('USER_NOT_FOUND', `no user with email ${email}`)
    if (user.disabledAt !== null) {
      io.out(`user ${user.email} is already disabled (since ${isoOrNull(user.disabledAt)})`)
      return 0
    }
    await access.updateUser(user.id, { disabledAt: ctx.clock() })
    const sessions = await access.deleteUserSessions(user.id)
    await audit(ctx, CLI_ACTOR, 'user.disable', user.id)
    io.out(`user ${user.email} disabled; ${sessions} open session(s) ended`)
    if (user.role === 'admin' && (await access.countUsers('admin')) === 0) {
      io.out('No active admin is left: add one with skolluft user add --role admin --email <e>')
    }
    return 0
  })
}

export interface TokenCreateOptions {
  readonly role: string
  readonly name: string | undefined
  readonly scopes: readonly string[]
  readonly sites: readonly string[]
  readonly expiresDays: number | undefined
  readonly json: boolean
}

/** Creates an API token (as POST /api/v1/tokens does) and prints it once. */
export async function tokenCreate(env: NodeJS.ProcessEnv, io: CliIo, options: TokenCreateOptions): Promise<number> {
  const body = CreateTokenBody.safeParse({
    name: options.name ?? `created with the CLI on ${new Date().toISOString().slice(0, 10)}`,
    role: options.role,
    ...(options.scopes.length > 0 ? { scopes: [...options.scopes] } : {}),
    sites: [...options.sites],
    ...(options.expiresDays === undefined ? {} : { expiresInDays: options.expiresDays }),
  })
  if (!body.success) {
    io.err(`skolluft: token create: ${describeIssues(body.error)}`)
    return 2
  }
  const { token, record } = await withPeople(env, io, async (ctx) => {
    const created = await createToken(ctx, body.data, null).catch((error: unknown) => {
      if (error instanceof StorageError && error.code === 'UNKNOWN_SITE') {
        throw new PeopleCommandError('UNKNOWN_SITE', error.message, { cause: error })
      }
      throw error
    })
    const { role, scopes, sites } = created.record
    await audit(ctx, CLI_ACTOR, 'token.create', created.record.id, { role, scopes, sites })
    return created
  })
  const shown = publicToken(record)
  if (options.json) {
    io.out(
      JSON.stringify({
        token,
        id: shown.id,
        role: shown.role,
        scopes: shown.scopes,
        sites: shown.sites,
        expires_at: shown.expires_at,
      }),
    )
    return 0
  }
  const sites = shown.sites.length > 0 ? `, sites ${shown.sites.join(', ')}` : ''
  io.out(
    `token ${shown.id} created: role ${shown.role}, scopes ${shown.scopes.join(' ')}${sites}, expires ${shown.expires_at}\n` +
      `  token: ${token}\n` +
      'The token is shown only now; it is stored only as a hash. Send it as the header "Authorization: Bearer <token>".',
  )
  return 0
}

export async function tokenList(env: NodeJS.ProcessEnv, io: CliIo, json: boolean): Promise<number> {
  const { tokens, now } = await withPeople(env, io, async (ctx) => ({
    tokens: await ctx.storage.access.listTokens(),
    now: ctx.clock(),
  }))
  const rows = tokens.map((t) => ({
    ...publicToken(t),
    state: t.revokedAt !== null ? 'revoked' : t.expiresAt !== null && t.expiresAt <= now ? 'expired' : 'active',
  }))
  return printRows(io, rows, {
    json,
    empty: 'no API tokens',
    header: ['ID', 'NAME', 'ROLE', 'SCOPES', 'SITES', 'EXPIRES', 'LAST USED', 'STATE'],
    cells: (r) => [
      r.id,
      r.name,
      r.role,
      r.scopes.join(','),
      r.sites.join(',') || '-',
      r.expires_at ?? 'never',
      r.last_used_at ?? 'never',
      r.state,
    ],
  })
}

/** Revokes a token by id (a whole `skl_…` token pasted by mistake is accepted, and never echoed). */
export async function tokenRevoke(env: NodeJS.ProcessEnv, io: CliIo, idOrToken: string): Promise<number> {
  const id = parseApiToken(idOrToken)?.id ?? idOrToken
  return withPeople(env, io, async (ctx) => {
    const { access } = ctx.storage
    const token = await access.getToken(id)
    if (token === undefined) throw new PeopleCommandError('TOKEN_NOT_FOUND', `no API token with id ${id}`)
    if (token.revokedAt !== null) {
      io.out(`token ${id} is already revoked (since ${isoOrNull(token.revokedAt)})`)
      return 0
    }
    await access.revokeToken(id, ctx.clock())
    await audit(ctx, CLI_ACTOR, 'token.revoke', id)
    io.out(`token ${id} revoked; the API refuses it from now on`)
    return 0
  })
}
