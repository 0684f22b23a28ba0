import { join } from 'node:path'
import { DAY_MS } from '@skolluft/core'
import { createLogger, hashSecret, silentLogger } from '@skolluft/runtime'
import { openSqliteStorage, type Storage } from '@skolluft/storage'
import { tempDir } from '@skolluft/testkit'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { LOGIN_BURST, LOGIN_REFILL_S } from '../rate-limit.ts'
import { type RunningApi, type StartApiOptions, startApi } from '../server.ts'

/**
 * Log-in, sessions, CSRF, API tokens, the audit log and first-admin setup, over real HTTP against a real
 * SQLite file. Every response and every log line is kept, and the last test checks that no password, password
 * hash, token secret or session secret ever showed up where it must not.
 */
const NOW = Date.parse('2026-11-30T12:00:00Z')
let now = NOW
const clock = () => now

const SITE = 'site-a'
const PASSWORDS = {
  admin: 'admin password 0123456789',
  staff: 'staff password 0123456789',
  principal: 'principal password 0123456789',
} as const
const SETUP_VALUE = 'one-time-setup-value-0123456789abcdef'
const FIRST_ADMIN_PASSWORD = 'first admin password 0123456789'

let dir: Awaited<ReturnType<typeof tempDir>>
let storage: Storage
let setupStorage: Storage
let api: RunningApi
const servers: RunningApi[] = []
const logLines: string[] = []
const log = createLogger({ level: 'debug', destination: { write: (line: string) => void logLines.push(line) } })

interface Seen {
  readonly what: string
  /** Status line, every header (Set-Cookie included) and the body. */
  readonly text: string
}
const responses: Seen[] = []
/** Every credential handed out, with the response that handed it out (the one place it may appear). */
const issued: { readonly value: string; readonly secret: string; readonly issuedIn: string }[] = []
const userIds = new Map<string, string>()

const Problem = z.object({ status: z.number(), code: z.string(), detail: z.string() })
const LoginResponse = z.object({
  user: z.object({ id: z.string(), email: z.string(), role: z.string(), sites: z.array(z.string()) }),
  csrfToken: z.string().min(40),
})
const SessionResponse = z.object({
  user: z.object({ id: z.string(), role: z.string() }).nullable(),
  csrfToken: z.string().nullable(),
  publicMap: z.boolean(),
  setupOpen: z.boolean(),
})
const TokenCreated = z.object({ token: z.string(), id: z.string(), role: z.string(), scopes: z.array(z.string()) })
const AuditList = z.object({
  entries: z.array(
    z.object({
      id: z.number(),
      actor: z.string(),
      action: z.string(),
      target: z.string().nullable(),
      detail: z.record(z.string(), z.unknown()),
    }),
  ),
})

interface Session {
  readonly cookie: string
  readonly csrf: string
  readonly userId: string
}

interface Sent {
  readonly status: number
  readonly headers: Headers
  readonly body: unknown
}

async function send(
  server: RunningApi,
  method: string,
  path: string,
  init: { headers?: Record<string, string>; body?: unknown; session?: Session; csrf?: string | false } = {},
): Promise<Sent> {
  const headers: Record<string, string> = { ...init.headers }
  if (init.session) headers.Cookie = init.session.cookie
  // A session's own CSRF token unless the test says otherwise.
  const csrf = init.csrf === undefined ? init.session?.csrf : init.csrf
  if (csrf) headers['X-CSRF-Token'] = csrf
  if (init.body !== undefined) headers['Content-Type'] = 'application/json'
  const res = await fetch(`http://127.0.0.1:${server.port}/api/v1${path}`, {
    method,
    headers,
    ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
  })
  const text = await res.text()
  responses.push({ what: `${method} ${path}`, text: `${res.status} ${JSON.stringify([...res.headers])} ${text}` })
  return { status: res.status, headers: res.headers, body: text === '' ? undefined : JSON.parse(text) }
}

function problemOf(sent: Sent, status: number): z.infer<typeof Problem> {
  expect(sent.status).toBe(status)
  expect(sent.headers.get('content-type')).toMatch(/^application\/problem\+json/)
  return Problem.parse(sent.body)
}

function sessionCookieOf(sent: Sent): string {
  for (const cookie of sent.headers.getSetCookie()) {
    const match = /^skolluft_session=([^;]+)/.exec(cookie)
    if (match?.[1]) return match[1]
  }
  throw new Error('no session cookie')
}

async function login(server: RunningApi, email: string, password: string): Promise<Session> {
  const sent = await send(server, 'POST', '/auth/login', { body: { email, password } })
  expect(sent.status).toBe(200)
  const body = LoginResponse.parse(sent.body)
  const value = sessionCookieOf(sent)
  issued.push({ value, secret: value.split('.')[1] ?? value, issuedIn: `POST /auth/login ${responses.length - 1}` })
  return { cookie: `skolluft_session=${value}`, csrf: body.csrfToken, userId: body.user.id }
}

async function createToken(session: Session, body: Record<string, unknown>): Promise<z.infer<typeof TokenCreated>> {
  const sent = await send(api, 'POST', '/tokens', { session, body })
  expect(sent.status).toBe(201)
  const token = TokenCreated.parse(sent.body)
  issued.push({
    value: token.token,
    secret: tokenSecret(token.token),
    issuedIn: `POST /tokens ${responses.length - 1}`,
  })
  return token
}

/** The secret part of `skl_<id>_<secret>` (base64url: it may contain `_` itself). */
function tokenSecret(token: string): string {
  const secret = /^skl_[0-9a-f]{24}_(.+)$/.exec(token)?.[1]
  if (secret === undefined) throw new Error('not an API token')
  return secret
}

const bearer = (token: string) => ({ Authorization: `Bearer ${token}` })

async function start(extra: Partial<StartApiOptions> = {}, store = storage): Promise<RunningApi> {
  const server = await startApi({
    log,
    storage: store,
    clock,
    host: '127.0.0.1',
    port: 0,
    ...extra,
    options: { publicMap: false, mapSnapshotMaxAgeMs: 0, ...extra.options },
  })
  servers.push(server)
  return server
}

beforeAll(async () => {
  dir = await tempDir('skolluft-auth-')
  storage = openSqliteStorage({ path: join(dir.path, 'skolluft.db') })
  setupStorage = openSqliteStorage({ path: join(dir.path, 'setup.db') })
  await storage.registry.upsertSites([
    { id: SITE, name: 'Skola A', kind: 'school', municipality: 'Lund', lat: 55.7, lon: 13.2 },
  ])
  for (const role of ['admin', 'staff', 'principal'] as const) {
    const user = await storage.access.addUser(
      {
        email: `${role}@example.org`,
        name: role,
        role,
        sites: role === 'principal' ? [SITE] : [],
        passwordHash: await hashSecret(PASSWORDS[role]),
      },
      NOW - DAY_MS,
    )
    userIds.set(role, user.id)
  }
  api = await start()
})

beforeEach(() => {
  // Log-in attempts refill at one per LOGIN_REFILL_S; give every test a full bucket.
  now += LOGIN_BURST * LOGIN_REFILL_S * 1000
})

afterAll(async () => {
  for (const server of servers) await server.close()
  await storage?.close()
  await setupStorage?.close()
  await dir?.cleanup()
})

describe('POST /auth/login', () => {
  it('answers a wrong password and an unknown email with the same 401 login_failed problem', async () => {
    const wrong = await send(api, 'POST', '/auth/login', { body: { email: 'staff@example.org', password: 'nope' } })
    const unknown = await send(api, 'POST', '/auth/login', {
      body: { email: 'nobody@example.org', password: PASSWORDS.staff },
    })
    expect(problemOf(wrong, 401).code).toBe('login_failed')
    expect(problemOf(unknown, 401)).toEqual(problemOf(wrong, 401))
    expect(unknown.body).toEqual(wrong.body)
    expect(wrong.headers.getSetCookie()).toEqual([])
    expect(unknown.headers.getSetCookie()).toEqual([])
    // A disabled account (tested below) and a user without a password fail the same way.
    const bad = await send(api, 'POST', '/auth/login', { body: { email: 'staff@example.org' } })
    expect(problemOf(bad, 400).code).toBe('invalid_request')
  })

  it('refuses the 11th rapid attempt from one address with 429 and Retry-After, even with the right password', async () => {
    const limited = await start()
    for (let i = 0; i < LOGIN_BURST; i++) {
      const attempt = await send(limited, 'POST', '/auth/login', {
        body: { email: `guess${i}@example.org`, password: 'guess' },
      })
      expect(problemOf(attempt, 401).code).toBe('login_failed')
    }
    const eleventh = await send(limited, 'POST', '/auth/login', {
      body: { email: 'admin@example.org', password: PASSWORDS.admin },
    })
    expect(problemOf(eleventh, 429).code).toBe('rate_limited')
    expect(eleventh.headers.get('retry-after')).toBe(String(LOGIN_REFILL_S))
    expect(eleventh.headers.getSetCookie()).toEqual([])
  })

  it('never refuses successful log-ins from one address (staff behind one school network)', async () => {
    const shared = await start()
    for (let i = 0; i < 3 * LOGIN_BURST; i++) {
      const ok = await send(shared, 'POST', '/auth/login', {
        body: { email: 'staff@example.org', password: PASSWORDS.staff },
      })
      expect(ok.status).toBe(200)
    }
  })

  it('limits attempts per account too, whatever the address (and whatever the case of the email)', async () => {
    // Behind a proxy on the same host, each request comes from the address the proxy names.
    const proxied = await start({ options: { trustProxy: 'loopback' } })
    for (let i = 0; i < LOGIN_BURST; i++) {
      const attempt = await send(proxied, 'POST', '/auth/login', {
        headers: { 'X-Forwarded-For': `192.0.2.${i + 1}` },
        body: { email: 'staff@example.org', password: `guess ${i}` },
      })
      expect(problemOf(attempt, 401).code).toBe('login_failed')
    }
    const eleventh = await send(proxied, 'POST', '/auth/login', {
      headers: { 'X-Forwarded-For': '198.51.100.7' },
      body: { email: 'STAFF@example.org', password: PASSWORDS.staff },
    })
    expect(problemOf(eleventh, 429).code).toBe('rate_limited')
    // Another account from that new address is fine.
    const other = await send(proxied, 'POST', '/auth/login', {
      headers: { 'X-Forwarded-For': '198.51.100.7' },
      body: { email: 'admin@example.org', password: PASSWORDS.admin },
    })
    expect(other.status).toBe(200)
    issued.push({ value: sessionCookieOf(other), secret: sessionCookieOf(other).split('.')[1] ?? '', issuedIn: 'x' })
  })

  it('sets an HttpOnly, SameSite=Strict session cookie for Path=/, Secure only when configured', async () => {
    const sent = await send(api, 'POST', '/auth/login', {
      body: { email: ' Staff@Example.org ', password: PASSWORDS.staff },
    })
    expect(sent.status).toBe(200)
    expect(sent.headers.get('cache-control')).toBe('no-store')
    const body = LoginResponse.parse(sent.body)
    expect(sent.body).toHaveProperty('user', {
      id: userIds.get('staff'),
      email: 'staff@example.org',
      name: 'staff',
      role: 'staff',
      sites: [],
      created_at: new Date(NOW - DAY_MS).toISOString(),
      disabled: false,
    })
    const cookies = sent.headers.getSetCookie()
    expect(cookies).toHaveLength(1)
    const attributes = (cookies[0] ?? '').split(';').map((a) => a.trim())
    expect(attributes[0]).toMatch(/^skolluft_session=[0-9a-f]{24}\.[A-Za-z0-9_-]{43}$/)
    expect(attributes).toContain('HttpOnly')
    expect(attributes).toContain('SameSite=Strict')
    expect(attributes).toContain('Path=/')
    expect(attributes).toContain(`Max-Age=${7 * 24 * 3600}`)
    expect(attributes).not.toContain('Secure')
    const value = sessionCookieOf(sent)
    issued.push({ value, secret: value.split('.')[1] ?? '', issuedIn: 'cookie test' })

    // GET /auth/session names the user and hands the same CSRF token to a reloaded page.
    const session = await send(api, 'GET', '/auth/session', { headers: { Cookie: `skolluft_session=${value}` } })
    expect(SessionResponse.parse(session.body)).toEqual({
      user: expect.objectContaining({ id: userIds.get('staff'), role: 'staff' }),
      csrfToken: body.csrfToken,
      publicMap: false,
      setupOpen: false,
    })
    expect(SessionResponse.parse((await send(api, 'GET', '/auth/session')).body)).toEqual({
      user: null,
      csrfToken: null,
      publicMap: false,
      setupOpen: false,
    })

    const secure = await start({ options: { secureCookies: true } })
    const overTls = await send(secure, 'POST', '/auth/login', {
      body: { email: 'staff@example.org', password: PASSWORDS.staff },
    })
    expect(overTls.status).toBe(200)
    expect((overTls.headers.getSetCookie()[0] ?? '').split(';').map((a) => a.trim())).toContain('Secure')
    const secureValue = sessionCookieOf(overTls)
    issued.push({ value: secureValue, secret: secureValue.split('.')[1] ?? '', issuedIn: 'secure cookie test' })
  })
})

describe('CSRF', () => {
  it('refuses a cookie-authenticated POST without the X-CSRF-Token header or with a wrong one', async () => {
    const admin = await login(api, 'admin@example.org', PASSWORDS.admin)
    const other = await login(api, 'staff@example.org', PASSWORDS.staff)
    const body = { name: 'csrf test', role: 'researcher' }
    const without = problemOf(await send(api, 'POST', '/tokens', { session: admin, csrf: false, body }), 403)
    expect(without.code).toBe('csrf_failed')
    expect(without.detail).toContain('X-CSRF-Token')
    const wrong = await send(api, 'POST', '/tokens', { session: admin, csrf: `${admin.csrf}x`, body })
    expect(problemOf(wrong, 403).code).toBe('csrf_failed')
    // Another session's token is as wrong as a made-up one.
    const borrowed = await send(api, 'POST', '/tokens', { session: admin, csrf: other.csrf, body })
    expect(problemOf(borrowed, 403).code).toBe('csrf_failed')
    const refusedDelete = await send(api, 'DELETE', `/users/${userIds.get('staff')}`, { session: admin, csrf: false })
    expect(problemOf(refusedDelete, 403).code).toBe('csrf_failed')
    // Nothing was created or changed by the refused requests.
    expect((await storage.access.listTokens()).filter((t) => t.name === 'csrf test')).toEqual([])
    expect((await storage.access.getUser(userIds.get('staff') ?? ''))?.disabledAt).toBeNull()

    await createToken(admin, body)
    expect((await storage.access.listTokens()).filter((t) => t.name === 'csrf test')).toHaveLength(1)
  })

  it('is not needed with a bearer token (a browser never sends one by itself)', async () => {
    const admin = await login(api, 'admin@example.org', PASSWORDS.admin)
    const { token } = await createToken(admin, {
      name: 'automation',
      role: 'admin',
      scopes: ['tokens:manage', 'users:manage'],
    })
    const viaBearer = await send(api, 'POST', '/tokens', {
      headers: bearer(token),
      body: { name: 'made by a token', role: 'researcher' },
    })
    expect(viaBearer.status).toBe(201)
    const made = TokenCreated.parse(viaBearer.body)
    issued.push({ value: made.token, secret: tokenSecret(made.token), issuedIn: 'bearer' })
    // A bearer token decides even when a session cookie rides along: no CSRF check applies.
    const both = await send(api, 'POST', '/users', {
      headers: { ...bearer(token), Cookie: admin.cookie },
      body: { email: 'made-by-token@example.org', role: 'researcher' },
    })
    expect(both.status).toBe(201)
    // An admin token holds only the scopes it was given: no audit log.
    expect(problemOf(await send(api, 'GET', '/audit', { headers: bearer(token) }), 403).code).toBe('forbidden')
  })
})

describe('sessions end', () => {
  it('at log-out: the cookie no longer works', async () => {
    const staff = await login(api, 'staff@example.org', PASSWORDS.staff)
    expect((await send(api, 'GET', '/me', { session: staff })).status).toBe(200)
    const noCsrf = await send(api, 'POST', '/auth/logout', { session: staff, csrf: false })
    expect(problemOf(noCsrf, 403).code).toBe('csrf_failed')
    expect((await send(api, 'GET', '/me', { session: staff })).status).toBe(200)

    const out = await send(api, 'POST', '/auth/logout', { session: staff })
    expect(out.status).toBe(204)
    const cleared = out.headers.getSetCookie()[0] ?? ''
    expect(cleared).toMatch(/^skolluft_session=;/)
    expect(cleared).toContain('Expires=Thu, 01 Jan 1970 00:00:00 GMT')

    expect(problemOf(await send(api, 'GET', '/me', { session: staff }), 401).code).toBe('unauthorized')
    const session = SessionResponse.parse((await send(api, 'GET', '/auth/session', { session: staff })).body)
    expect(session).toMatchObject({ user: null, csrfToken: null })
  })

  it('when an admin disables the user, and the user cannot log in again until re-enabled', async () => {
    const admin = await login(api, 'admin@example.org', PASSWORDS.admin)
    const principal = await login(api, 'principal@example.org', PASSWORDS.principal)
    const second = await login(api, 'principal@example.org', PASSWORDS.principal)
    expect((await send(api, 'GET', `/sites/${SITE}`, { session: principal })).status).toBe(200)

    const id = userIds.get('principal') ?? ''
    expect((await send(api, 'DELETE', `/users/${id}`, { session: admin })).status).toBe(204)
    for (const session of [principal, second]) {
      expect(problemOf(await send(api, 'GET', `/sites/${SITE}`, { session }), 401).code).toBe('unauthorized')
    }
    const again = await send(api, 'POST', '/auth/login', {
      body: { email: 'principal@example.org', password: PASSWORDS.principal },
    })
    expect(problemOf(again, 401).code).toBe('login_failed')
    // An admin cannot lock themselves out.
    const self = await send(api, 'DELETE', `/users/${admin.userId}`, { session: admin })
    expect(problemOf(self, 409).code).toBe('self_disable')
    const selfPatch = await send(api, 'PATCH', `/users/${admin.userId}`, { session: admin, body: { disabled: true } })
    expect(problemOf(selfPatch, 409).code).toBe('self_disable')
    expect((await send(api, 'GET', '/users', { session: admin })).status).toBe(200)

    const enabled = await send(api, 'PATCH', `/users/${id}`, { session: admin, body: { disabled: false } })
    expect(enabled.status).toBe(200)
    expect(enabled.body).toMatchObject({ user: { id, disabled: false } })
    await login(api, 'principal@example.org', PASSWORDS.principal)
  })
})

describe('API tokens', () => {
  it('refuse a revoked token, an unknown one and a wrong secret with 401 invalid_token', async () => {
    const admin = await login(api, 'admin@example.org', PASSWORDS.admin)
    const { token, id } = await createToken(admin, { name: 'to revoke', role: 'researcher' })
    expect((await send(api, 'GET', '/sites', { headers: bearer(token) })).status).toBe(200)

    expect((await send(api, 'DELETE', `/tokens/${id}`, { session: admin })).status).toBe(204)
    const revoked = await send(api, 'GET', '/sites', { headers: bearer(token) })
    expect(problemOf(revoked, 401)).toMatchObject({ code: 'invalid_token', detail: expect.stringContaining('revoked') })
    expect(revoked.headers.get('www-authenticate')).toBe('Bearer realm="skolluft", error="invalid_token"')
    expect(problemOf(await send(api, 'DELETE', '/tokens/nope', { session: admin }), 404).code).toBe('token_not_found')

    const { token: live } = await createToken(admin, { name: 'live', role: 'researcher' })
    const secret = tokenSecret(live)
    const tokenId = live.slice('skl_'.length, 'skl_'.length + 24)
    const wrongSecret = `skl_${tokenId}_${secret.slice(0, -1)}${secret.endsWith('A') ? 'B' : 'A'}`
    const unknownId = `skl_${'0'.repeat(24)}_${secret}`
    for (const value of [wrongSecret, unknownId, 'skl_garbage', 'not-a-token']) {
      const refused = await send(api, 'GET', '/sites', { headers: bearer(value) })
      expect(problemOf(refused, 401).code).toBe('invalid_token')
    }
    expect((await send(api, 'GET', '/sites', { headers: bearer(live) })).status).toBe(200)
  })

  it('refuse a token for a site that does not exist with a 400, not a server error', async () => {
    const admin = await login(api, 'admin@example.org', PASSWORDS.admin)
    const sent = await send(api, 'POST', '/tokens', {
      session: admin,
      body: { name: 'nowhere', role: 'principal', sites: ['no-such-site'] },
    })
    expect(problemOf(sent, 400).code).toBe('site_not_found')
    const scoped = await send(api, 'POST', '/tokens', {
      session: admin,
      body: { name: 'too much', role: 'researcher', scopes: ['rejects:read'] },
    })
    expect(problemOf(scoped, 400).code).toBe('invalid_request')
  })

  it('writes user.create, token.create, token.revoke and user.disable to the audit log with the actor', async () => {
    const admin = await login(api, 'admin@example.org', PASSWORDS.admin)
    const actor = `user:${admin.userId}`
    const created = await send(api, 'POST', '/users', {
      session: admin,
      body: { email: 'audited@example.org', role: 'researcher', password: 'audited password 0123456789' },
    })
    expect(created.status).toBe(201)
    const userId = z.object({ user: z.object({ id: z.string() }) }).parse(created.body).user.id
    const { id: tokenId } = await createToken(admin, { name: 'audited', role: 'researcher' })
    expect((await send(api, 'DELETE', `/tokens/${tokenId}`, { session: admin })).status).toBe(204)
    expect((await send(api, 'DELETE', `/users/${userId}`, { session: admin })).status).toBe(204)

    const audit = await send(api, 'GET', '/audit?limit=4', { session: admin })
    expect(audit.status).toBe(200)
    const { entries } = AuditList.parse(audit.body)
    // Newest first.
    expect(entries.map((e) => [e.actor, e.action, e.target])).toEqual([
      [actor, 'user.disable', userId],
      [actor, 'token.revoke', tokenId],
      [actor, 'token.create', tokenId],
      [actor, 'user.create', userId],
    ])
    expect(entries.find((e) => e.action === 'user.create')?.detail).toEqual({ role: 'researcher', sites: [] })
    expect(entries.find((e) => e.action === 'token.create')?.detail).toEqual({
      role: 'researcher',
      scopes: ['map:read', 'series:hourly', 'series:raw', 'export'],
    })
    // Paging goes on from the last id.
    const last = entries.at(-1)?.id ?? 0
    const older = AuditList.parse((await send(api, 'GET', `/audit?limit=1&before=${last}`, { session: admin })).body)
    expect(older.entries[0]?.id).toBeLessThan(last)
  })

  it('refuse an expired token with 401 invalid_token', async () => {
    const admin = await login(api, 'admin@example.org', PASSWORDS.admin)
    const { token } = await createToken(admin, { name: 'short-lived', role: 'researcher', expiresInDays: 1 })
    now += DAY_MS - 1
    expect((await send(api, 'GET', '/sites', { headers: bearer(token) })).status).toBe(200)
    now += 1
    const expired = await send(api, 'GET', '/sites', { headers: bearer(token) })
    expect(problemOf(expired, 401)).toMatchObject({ code: 'invalid_token', detail: expect.stringContaining('expired') })
  })
})

describe('first-admin setup', () => {
  it('creates the first admin with the one-time value, once', async () => {
    await setupStorage.registry.upsertSites([
      { id: SITE, name: 'Skola A', kind: 'school', municipality: 'Lund', lat: 55.7, lon: 13.2 },
    ])
    const setup = await start({ options: { setupTokenHash: await hashSecret(SETUP_VALUE) } }, setupStorage)
    const closed = await start({}, setupStorage)
    const body = (setupToken: string) => ({
      setupToken,
      email: 'First.Admin@example.org',
      name: 'First Admin',
      password: FIRST_ADMIN_PASSWORD,
    })
    expect(SessionResponse.parse((await send(setup, 'GET', '/auth/session')).body).setupOpen).toBe(true)
    // Without a configured setup value there is no web setup at all.
    expect(SessionResponse.parse((await send(closed, 'GET', '/auth/session')).body).setupOpen).toBe(false)
    expect(problemOf(await send(closed, 'POST', '/auth/setup', { body: body(SETUP_VALUE) }), 409).code).toBe(
      'setup_closed',
    )

    const wrong = await send(setup, 'POST', '/auth/setup', { body: body(`${SETUP_VALUE}x`) })
    expect(problemOf(wrong, 401).code).toBe('setup_failed')
    expect(await setupStorage.access.countUsers()).toBe(0)
    const weak = await send(setup, 'POST', '/auth/setup', { body: { ...body(SETUP_VALUE), password: 'short' } })
    expect(problemOf(weak, 400).code).toBe('invalid_request')

    const right = await send(setup, 'POST', '/auth/setup', { body: body(SETUP_VALUE) })
    expect(right.status).toBe(200)
    const created = LoginResponse.parse(right.body)
    expect(created.user).toMatchObject({ email: 'first.admin@example.org', role: 'admin', sites: [] })
    const value = sessionCookieOf(right)
    issued.push({ value, secret: value.split('.')[1] ?? '', issuedIn: 'setup' })
    const session: Session = { cookie: `skolluft_session=${value}`, csrf: created.csrfToken, userId: created.user.id }
    expect((await send(setup, 'GET', '/users', { session })).status).toBe(200)
    const audit = AuditList.parse((await send(setup, 'GET', '/audit', { session })).body)
    expect(audit.entries.map((e) => [e.actor, e.action, e.target])).toEqual([['setup', 'user.create', created.user.id]])

    const second = await send(setup, 'POST', '/auth/setup', { body: { ...body(SETUP_VALUE), email: 'x@example.org' } })
    expect(problemOf(second, 409).code).toBe('setup_closed')
    expect(SessionResponse.parse((await send(setup, 'GET', '/auth/session')).body).setupOpen).toBe(false)
    expect(await setupStorage.access.countUsers()).toBe(1)
    // The new admin logs in like anyone else.
    await login(setup, 'first.admin@example.org', FIRST_ADMIN_PASSWORD)
  })
})

describe('first-admin setup, twice at once', () => {
  it('creates exactly one admin when two right setup requests race', async () => {
    const raceStorage = openSqliteStorage({ path: join(dir.path, 'setup-race.db') })
    try {
      const setup = await start({ options: { setupTokenHash: await hashSecret(SETUP_VALUE) } }, raceStorage)
      const body = (email: string) => ({ setupToken: SETUP_VALUE, email, password: FIRST_ADMIN_PASSWORD })
      const answers = await Promise.all([
        send(setup, 'POST', '/auth/setup', { body: body('one@example.org') }),
        send(setup, 'POST', '/auth/setup', { body: body('two@example.org') }),
      ])
      expect(answers.map((a) => a.status).sort()).toEqual([200, 409])
      expect(await raceStorage.access.countUsers('admin')).toBe(1)
    } finally {
      await raceStorage.close()
    }
  })
})

describe('secrets', () => {
  it('never appear in responses or logs: passwords, password hashes, token and session secrets', async () => {
    const hashes = [
      ...(await storage.access.listUsers()).map((u) => u.passwordHash),
      ...(await setupStorage.access.listUsers()).map((u) => u.passwordHash),
      ...(await storage.access.listTokens()).map((t) => t.secretHash),
    ].filter((h): h is string => h !== null)
    for (const credential of issued) {
      const id = credential.value.split('.')[0] ?? ''
      const session = (await storage.access.getSession(id)) ?? (await setupStorage.access.getSession(id))
      if (session) hashes.push(session.secretHash)
    }
    expect(hashes.length).toBeGreaterThan(15)
    expect(issued.length).toBeGreaterThan(15)
    expect(logLines.length).toBeGreaterThan(50)
    const passwords = [...Object.values(PASSWORDS), SETUP_VALUE, FIRST_ADMIN_PASSWORD, 'audited password 0123456789']

    const leaks: string[] = []
    const allResponses = responses.map((r) => r.text).join('\n')
    for (const hash of hashes) {
      // Any recognisable part of a hash: the salt and the key.
      for (const part of hash.split('$').slice(4)) {
        if (allResponses.includes(part)) leaks.push(`a hash part in a response`)
        if (logLines.some((l) => l.includes(part))) leaks.push('a hash part in the log')
      }
    }
    for (const password of passwords) {
      if (allResponses.includes(password)) leaks.push(`password "${password}" in a response`)
      if (logLines.some((l) => l.includes(password))) leaks.push(`password "${password}" in the log`)
    }
    for (const credential of issued) {
      const holders = responses.filter((r) => r.text.includes(credential.secret))
      // Handed out once: in the response that created it, nowhere else.
      if (holders.length !== 1) leaks.push(`${credential.issuedIn}: secret in ${holders.length} responses`)
      if (logLines.some((l) => l.includes(credential.secret))) leaks.push(`${credential.issuedIn}: secret in the log`)
    }
    expect(leaks).toEqual([])
    // The log does say what happened, by id.
    expect(logLines.some((l) => l.includes('"msg":"log-in failed"'))).toBe(true)
    expect(logLines.some((l) => l.includes('"msg":"api token refused"'))).toBe(true)
  })
})

describe('a second server on the same storage', () => {
  it('accepts sessions and tokens issued by the first (no in-memory state is needed)', async () => {
    const admin = await login(api, 'admin@example.org', PASSWORDS.admin)
    const { token } = await createToken(admin, { name: 'shared', role: 'staff' })
    const other = await startApi({
      log: silentLogger(),
      storage,
      clock,
      host: '127.0.0.1',
      port: 0,
      options: { publicMap: false },
    })
    servers.push(other)
    expect((await send(other, 'GET', '/users', { session: admin })).status).toBe(200)
    expect((await send(other, 'GET', `/sites/${SITE}`, { headers: bearer(token) })).status).toBe(200)
  })
})
