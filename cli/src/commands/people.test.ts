import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { type RunningApi, startApi } from '@skolluft/api'
import { defaultScopes } from '@skolluft/core'
import { silentLogger, verifySecret } from '@skolluft/runtime'
import type { Storage } from '@skolluft/storage'
import { tempDir } from '@skolluft/testkit'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { DATABASE_FILE, openDataDir } from '../data-dir.ts'
import { runCli } from '../main.ts'
import { type Captured, capture } from '../test-io.ts'
import { PeopleCommandError, userAdd } from './people.ts'

/**
 * The people commands in process (runCli with captured output) on a real SQLite data directory; a real
 * API on port 0 over the same directory proves that what the CLI creates works (log-in, bearer tokens).
 */
const SITES = [
  { id: 'site-a', name: 'Testförskolan A (demo)', kind: 'preschool', municipality: 'Lund', lat: 55.7, lon: 13.19 },
  { id: 'site-b', name: 'Testskolan B (demo)', kind: 'school', municipality: 'Lund', lat: 55.66, lon: 13.36 },
] as const

const UserOutput = z.strictObject({
  user: z.strictObject({
    id: z.string(),
    email: z.string(),
    name: z.string().nullable(),
    role: z.string(),
    sites: z.array(z.string()),
    created_at: z.string(),
    disabled: z.boolean(),
  }),
  password: z.string().optional(),
})

const TokenOutput = z.strictObject({
  token: z.string().regex(/^skl_/),
  id: z.string(),
  role: z.string(),
  scopes: z.array(z.string()),
  sites: z.array(z.string()),
  expires_at: z.iso.datetime(),
})

let dir: Awaited<ReturnType<typeof tempDir>>
let env: NodeJS.ProcessEnv
let storage: Storage
let api: RunningApi | undefined

async function cli(...argv: string[]): Promise<{ code: number } & Captured> {
  const c = capture()
  const code = await runCli(argv, env, c.io)
  return { code, ...c }
}

async function apiUrl(path: string): Promise<string> {
  api ??= await startApi({
    log: silentLogger(),
    storage,
    host: '127.0.0.1',
    port: 0,
    options: { publicMap: false, mapSnapshotMaxAgeMs: 0 },
  })
  return `http://127.0.0.1:${api.port}/api/v1${path}`
}

async function login(email: string, password: string): Promise<Response> {
  return fetch(await apiUrl('/auth/login'), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password }),
  })
}

async function rawSeries(token?: string): Promise<Response> {
  return fetch(await apiUrl('/sites/site-a/series?metric=pm25&every=raw'), {
    headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
  })
}

beforeEach(async () => {
  dir = await tempDir()
  env = { DATA_DIR: dir.path, LOG_LEVEL: 'info' }
  storage = await openDataDir({ DATA_DIR: dir.path })
  await storage.registry.upsertSites(SITES.map((s) => ({ ...s, demo: true })))
})

afterEach(async () => {
  await api?.close()
  api = undefined
  await storage.close()
  await dir.cleanup()
})

describe('skolluft user add', () => {
  it('prints a generated password once, stores only its hash, audits as cli, and the password logs in', async () => {
    const added = await cli(
      'user',
      'add',
      '--role',
      'staff',
      '--email',
      'Anna.Berg@Lund.se',
      '--name',
      'Anna Berg',
      '--json',
    )
    expect(added.code, added.stderr()).toBe(0)
    const { user, password } = UserOutput.parse(JSON.parse(added.stdout()))
    expect(user).toMatchObject({
      email: 'anna.berg@lund.se',
      name: 'Anna Berg',
      role: 'staff',
      sites: [],
      disabled: false,
    })
    expect(password?.length).toBeGreaterThanOrEqual(32)
    if (password === undefined) throw new Error('no password printed')
    // Only stdout carries it: the JSON log line of the audit goes to stderr, without the secret.
    expect(added.stderr()).toContain('"actor":"cli"')
    expect(added.stderr()).not.toContain(password)
    const database = await readFile(join(dir.path, DATABASE_FILE))
    const wal = await readFile(join(dir.path, `${DATABASE_FILE}-wal`)).catch(() => Buffer.alloc(0))
    expect(database.includes(password)).toBe(false)
    expect(wal.includes(password)).toBe(false)

    const [entry] = await storage.access.listAudit({ limit: 10 })
    expect(entry).toMatchObject({
      actor: 'cli',
      action: 'user.create',
      target: user.id,
      detail: { role: 'staff', sites: [] },
    })

    const res = await login('anna.berg@lund.se', password)
    expect(res.status).toBe(200)
    expect(await res.json()).toMatchObject({ user: { id: user.id, role: 'staff' } })
    expect((await login('anna.berg@lund.se', `${password}x`)).status).toBe(401)
  })

  it('says in human output that the password is shown only once', async () => {
    const added = await cli('user', 'add', '--role', 'admin', '--email', 'it@lund.se')
    expect(added.code, added.stderr()).toBe(0)
    expect(added.stdout()).toContain('user it@lund.se added: role admin')
    expect(added.stdout()).toContain('shown only now')
    const password = /password: (\S+)/.exec(added.stdout())?.[1]
    const stored = await storage.access.getUserByEmail('it@lund.se')
    expect(password).toBeDefined()
    expect(stored?.passwordHash).toMatch(/^scrypt\$/)
    expect(await verifySecret(password ?? '', stored?.passwordHash ?? '')).toBe(true)
  })

  it('binds a principal to existing sites and refuses one without a site, with an unknown site, or a taken email', async () => {
    const none = await cli('user', 'add', '--role', 'principal', '--email', 'rektor@lund.se')
    expect(none.code).toBe(2)
    expect(none.stderr()).toContain('--site: a principal is bound to at least one site')
    const staffWithSite = await cli('user', 'add', '--role', 'staff', '--email', 'x@lund.se', '--site', 'site-a')
    expect(staffWithSite.code).toBe(2)
    expect(staffWithSite.stderr()).toContain('only principals are bound to sites')
    const unknown = await cli(
      'user',
      'add',
      '--role',
      'principal',
      '--email',
      'rektor@lund.se',
      '--site',
      'no-such-site',
    )
    expect(unknown.code).toBe(1)
    expect(unknown.stderr()).toContain('no-such-site')
    const badRole = await cli('user', 'add', '--role', 'janitor', '--email', 'y@lund.se')
    expect(badRole.code).toBe(2)
    expect(badRole.stderr()).toContain('--role')
    const noEmail = await cli('user', 'add', '--role', 'staff')
    expect(noEmail.code).toBe(2)
    expect(noEmail.stderr()).toContain('--email <email> are required')
    expect(await storage.access.countUsers()).toBe(0)

    const ok = await cli(
      'user',
      'add',
      '--role',
      'principal',
      '--email',
      'rektor@lund.se',
      '--site',
      'site-b',
      '--site',
      'site-a',
      '--json',
    )
    expect(ok.code, ok.stderr()).toBe(0)
    expect(UserOutput.parse(JSON.parse(ok.stdout())).user.sites).toEqual(['site-a', 'site-b'])
    const [entry] = await storage.access.listAudit({ limit: 10 })
    expect(entry?.detail).toEqual({ role: 'principal', sites: ['site-a', 'site-b'] })

    const taken = await cli('user', 'add', '--role', 'staff', '--email', 'REKTOR@lund.se')
    expect(taken.code).toBe(1)
    expect(taken.stderr()).toContain('a user with email rektor@lund.se already exists')
    expect(await storage.access.countUsers()).toBe(1)
    expect((await storage.access.listAudit({ limit: 10 })).filter((e) => e.action === 'user.create')).toHaveLength(1)
  })

  it('--password-stdin takes the password from stdin, prints no password, and checks it', async () => {
    const typed = 'correct horse battery staple'
    const c = capture()
    const code = await userAdd(
      env,
      c.io,
      { role: 'caretaker', email: 'vaktmastare@lund.se', sites: [], name: undefined, passwordStdin: true, json: true },
      Readable.from([Buffer.from(`${typed}\n`)]),
    )
    expect(code, c.stderr()).toBe(0)
    const printed = UserOutput.parse(JSON.parse(c.stdout()))
    expect(printed.password).toBeUndefined()
    expect(c.stdout() + c.stderr()).not.toContain(typed)
    const stored = await storage.access.getUserByEmail('vaktmastare@lund.se')
    expect(await verifySecret(typed, stored?.passwordHash ?? '')).toBe(true)
    expect((await login('vaktmastare@lund.se', typed)).status).toBe(200)

    const short = capture()
    const options = { role: 'staff', email: 's@lund.se', sites: [], name: undefined, passwordStdin: true, json: false }
    expect(await userAdd(env, short.io, options, Readable.from(['too short\n']))).toBe(2)
    expect(short.stderr()).toContain('at least 12 characters')
    expect(short.stderr()).not.toContain('too short')
    await expect(userAdd(env, capture().io, options, Readable.from(['first line is long\nsecond\n']))).rejects.toThrow(
      'one line',
    )
    const terminal = Object.assign(Readable.from([]), { isTTY: true })
    await expect(userAdd(env, capture().io, options, terminal)).rejects.toBeInstanceOf(PeopleCommandError)
    expect(await storage.access.getUserByEmail('s@lund.se')).toBeUndefined()
  })
})

describe('skolluft user list and disable', () => {
  it('lists users without hashes, and disabling ends sessions, stops log-in and is audited', async () => {
    const password = 'a long enough password'
    await userAdd(
      env,
      capture().io,
      { role: 'staff', email: 'anna@lund.se', sites: [], name: 'Anna', passwordStdin: true, json: false },
      Readable.from([password]),
    )
    const res = await login('anna@lund.se', password)
    expect(res.status).toBe(200)
    const cookie = res.headers.getSetCookie()[0]?.split(';')[0] ?? ''
    const session = async () =>
      ((await (await fetch(await apiUrl('/auth/session'), { headers: { cookie } })).json()) as { user: unknown }).user
    expect(await session()).not.toBeNull()

    const list = await cli('user', 'list', '--json')
    expect(list.code).toBe(0)
    expect(list.stdout()).not.toContain('scrypt')
    expect(list.stdout().toLowerCase()).not.toContain('hash')
    expect(JSON.parse(list.stdout())).toEqual([
      expect.objectContaining({ email: 'anna@lund.se', role: 'staff', disabled: false, disabled_at: null }),
    ])
    const table = await cli('user', 'list')
    expect(table.stdout()).toMatch(/anna@lund\.se\tstaff\t-\tAnna\t\S+\tactive/)

    const disabled = await cli('user', 'disable', 'ANNA@lund.se')
    expect(disabled.code, disabled.stderr()).toBe(0)
    expect(disabled.stdout()).toContain('1 open session(s) ended')
    expect(await session()).toBeNull()
    const sessionId = /=([0-9a-f]+)\./.exec(cookie)?.[1] ?? ''
    expect(sessionId).not.toBe('')
    expect(await storage.access.getSession(sessionId)).toBeUndefined()
    expect((await login('anna@lund.se', password)).status).toBe(401)
    const user = await storage.access.getUserByEmail('anna@lund.se')
    expect(user?.disabledAt).not.toBeNull()
    const [entry] = await storage.access.listAudit({ limit: 10 })
    expect(entry).toMatchObject({ actor: 'cli', action: 'user.disable', target: user?.id })
    expect(JSON.parse((await cli('user', 'list', '--json')).stdout())).toEqual([
      expect.objectContaining({ disabled: true, disabled_at: expect.any(String) }),
    ])

    const again = await cli('user', 'disable', 'anna@lund.se')
    expect(again.code).toBe(0)
    expect(again.stdout()).toContain('already disabled')
    const unknown = await cli('user', 'disable', 'nobody@lund.se')
    expect(unknown.code).toBe(1)
    expect(unknown.stderr()).toContain('no user with email nobody@lund.se')
    expect((await cli('user', 'disable')).code).toBe(2)
  })
})

describe('skolluft token', () => {
  it('creates a researcher token that reads raw series, lists it without its secret, and revokes it', async () => {
    const before = Date.now()
    const created = await cli('token', 'create', '--role', 'researcher', '--name', 'Lunds universitet', '--json')
    expect(created.code, created.stderr()).toBe(0)
    const token = TokenOutput.parse(JSON.parse(created.stdout()))
    expect(token).toMatchObject({ role: 'researcher', scopes: defaultScopes('researcher'), sites: [] })
    // 90 days unless --expires-days says otherwise (CreateTokenBody's default).
    const expires = Date.parse(token.expires_at)
    expect(expires).toBeGreaterThanOrEqual(before + 90 * 86_400_000)
    expect(expires).toBeLessThanOrEqual(Date.now() + 90 * 86_400_000)
    expect(created.stderr()).not.toContain(token.token)
    const [entry] = await storage.access.listAudit({ limit: 10 })
    expect(entry).toMatchObject({ actor: 'cli', action: 'token.create', target: token.id })

    expect((await rawSeries(token.token)).status).toBe(200)
    expect((await rawSeries()).status).toBe(401)

    const list = await cli('token', 'list', '--json')
    expect(list.stdout()).not.toContain(token.token.slice(-20))
    expect(JSON.parse(list.stdout())).toEqual([
      expect.objectContaining({ id: token.id, name: 'Lunds universitet', state: 'active', revoked_at: null }),
    ])
    expect((await cli('token', 'list')).stdout()).toContain(`${token.id}\tLunds universitet\tresearcher`)

    const revoked = await cli('token', 'revoke', token.id)
    expect(revoked.code, revoked.stderr()).toBe(0)
    expect((await rawSeries(token.token)).status).toBe(401)
    expect(JSON.parse((await cli('token', 'list', '--json')).stdout())).toEqual([
      expect.objectContaining({ id: token.id, state: 'revoked', revoked_at: expect.any(String) }),
    ])
    const [revokeEntry] = await storage.access.listAudit({ limit: 10 })
    expect(revokeEntry).toMatchObject({ actor: 'cli', action: 'token.revoke', target: token.id })
    // A whole token pasted instead of the id finds the same token, and is not echoed.
    const again = await cli('token', 'revoke', token.token)
    expect(again.stdout()).toContain('already revoked')
    expect(again.stdout()).not.toContain(token.token)
    const unknown = await cli('token', 'revoke', 'nope')
    expect(unknown.code).toBe(1)
    expect(unknown.stderr()).toContain('no API token with id nope')
  })

  it('takes scopes, sites and a lifetime, and refuses what CreateTokenBody refuses', async () => {
    const human = await cli(
      'token',
      'create',
      '--role',
      'principal',
      '--site',
      'site-a',
      '--scope',
      'map:read',
      '--scope',
      'series:hourly',
      '--expires-days',
      '7',
    )
    expect(human.code, human.stderr()).toBe(0)
    expect(human.stdout()).toContain('role principal, scopes map:read series:hourly, sites site-a')
    expect(human.stdout()).toContain('shown only now')
    const value = /token: (skl_\S+)/.exec(human.stdout())?.[1]
    expect(value).toBeDefined()
    const [stored] = await storage.access.listTokens()
    expect(stored?.expiresAt).toBe((stored?.createdAt ?? 0) + 7 * 86_400_000)
    // Hourly values of its own site, but not raw readings: its scopes leave series:raw out.
    expect((await rawSeries(value)).status).toBe(403)

    const refusals: [string[], number, string][] = [
      [['--role', 'researcher', '--scope', 'users:manage'], 2, 'a token cannot have a scope its role does not have'],
      [['--role', 'researcher', '--scope', 'everything'], 2, '--scope'],
      [['--role', 'principal'], 2, 'only principal tokens are bound to sites'],
      [['--role', 'staff', '--site', 'site-a'], 2, 'only principal tokens are bound to sites'],
      [['--role', 'researcher', '--expires-days', '400'], 2, '--expires-days'],
      [['--role', 'researcher', '--expires-days', 'soon'], 2, '--expires-days must be whole days'],
      [['--role', 'principal', '--site', 'no-such-site'], 1, 'no-such-site'],
      [['--name', 'x'], 2, '--role <role> is required'],
    ]
    for (const [args, code, message] of refusals) {
      const result = await cli('token', 'create', ...args)
      expect(result.code, args.join(' ')).toBe(code)
      expect(result.stderr(), args.join(' ')).toContain(message)
    }
    expect(await storage.access.listTokens()).toHaveLength(1)
  })
})

describe('usage', () => {
  it('documents the people commands and refuses unknown subcommands', async () => {
    const help = await cli('help')
    expect(help.code).toBe(0)
    expect(help.stdout()).toContain('user add --role <admin|staff|principal|caretaker|researcher> --email <e>')
    expect(help.stdout()).toContain('token create --role <role>')
    const user = await cli('user')
    expect(user.code).toBe(2)
    expect(user.stderr()).toContain('user: subcommands are add, list, disable')
    const token = await cli('token', 'delete', 'x')
    expect(token.code).toBe(2)
    expect(token.stderr()).toContain('token: subcommands are create, list, revoke')
  })
})
