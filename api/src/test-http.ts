import type { Role } from '@skolluft/core'
import { hashSecret } from '@skolluft/runtime'
import type { Storage } from '@skolluft/storage'
import { z } from 'zod'
import type { RunningApi } from './server.ts'

/**
 * Test helpers for talking to a running API over real HTTP, shared by the route and permission tests (not a
 * test file itself). A caller is a set of headers (a session cookie or a bearer token) and, for sessions, the CSRF
 * token that state changes must send.
 */
export interface Caller {
  readonly headers: Record<string, string>
  /** Sent as X-CSRF-Token on state changes (sessions only). */
  readonly csrf: string | null
}

export const ANONYMOUS_CALLER: Caller = { headers: {}, csrf: null }

/**
 * One request to `/api/v1{path}`. JSON and problem documents come back parsed; anything else (an export's CSV)
 * as text; an empty body as undefined. `csrf: false` leaves the CSRF header out on purpose.
 */
export async function call(
  server: RunningApi,
  caller: Caller,
  method: 'GET' | 'POST' | 'DELETE',
  path: string,
  options: { body?: unknown; csrf?: boolean } = {},
): Promise<{ status: number; body: unknown; headers: Headers }> {
  const headers: Record<string, string> = { ...caller.headers }
  if (options.body !== undefined) headers['Content-Type'] = 'application/json'
  if (method !== 'GET' && caller.csrf !== null && options.csrf !== false) headers['X-CSRF-Token'] = caller.csrf
  const res = await fetch(`http://127.0.0.1:${server.port}/api/v1${path}`, {
    method,
    headers,
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
  })
  const text = await res.text()
  const isJson = /[/+]json\b/.test(res.headers.get('content-type') ?? '')
  return {
    status: res.status,
    body: text === '' ? undefined : isJson ? JSON.parse(text) : text,
    headers: res.headers,
  }
}

/** The `Cookie` value of the session a log-in response set. */
export function sessionCookie(res: Response): string {
  for (const cookie of res.headers.getSetCookie()) {
    const match = /^skolluft_session=([^;]+)/.exec(cookie)
    if (match?.[1]) return `skolluft_session=${match[1]}`
  }
  throw new Error('no session cookie in the log-in response')
}

const LoginBody = z.object({ csrfToken: z.string().min(1) })
const TokenBody = z.object({ token: z.string().startsWith('skl_'), id: z.string().min(1) })

/** Logs in with POST /auth/login and returns the session as a caller; throws when the API refuses. */
export async function logIn(server: RunningApi, email: string, password: string): Promise<Caller> {
  const res = await fetch(`http://127.0.0.1:${server.port}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ email, password }),
  })
  if (res.status !== 200) throw new Error(`log-in of ${email} answered ${res.status}`)
  const { csrfToken } = LoginBody.parse(await res.json())
  return { headers: { Cookie: sessionCookie(res) }, csrf: csrfToken }
}

/** Creates an API token with POST /tokens as `admin` and returns it as a caller, with the token's id. */
export async function createToken(
  server: RunningApi,
  admin: Caller,
  body: unknown,
): Promise<{ caller: Caller; id: string }> {
  const created = await call(server, admin, 'POST', '/tokens', { body })
  if (created.status !== 201)
    throw new Error(`POST /tokens answered ${created.status}: ${JSON.stringify(created.body)}`)
  const { token, id } = TokenBody.parse(created.body)
  return { caller: { headers: { Authorization: `Bearer ${token}` }, csrf: null }, id }
}

/** A user the route tests add to storage and log in: `who` is the name, the callers' key and the password seed. */
export interface TestUser {
  readonly who: string
  readonly role: Role
  /** Bound sites (principals); none when left out. */
  readonly sites?: readonly string[]
}

/** The e-mail a test user logs in with (lower-cased, as the store keeps e-mails). */
export function testUserEmail(who: string): string {
  return `${who.toLowerCase()}@example.org`
}

/** The password a test user logs in with. */
export function testUserPassword(who: string): string {
  return `password of ${who}`
}

/** Adds each user to storage, created at `at`, in order; returns the stored ids by `who`. */
export async function addTestUsers(
  storage: Pick<Storage, 'access'>,
  users: readonly TestUser[],
  at: number,
): Promise<Map<string, string>> {
  const ids = new Map<string, string>()
  for (const user of users) {
    const record = await storage.access.addUser(
      {
        email: testUserEmail(user.who),
        name: user.who,
        role: user.role,
        sites: user.sites ?? [],
        passwordHash: await hashSecret(testUserPassword(user.who)),
      },
      at,
    )
    ids.set(user.who, record.id)
  }
  return ids
}

/** Logs each user (added with addTestUsers) in, one after the other; returns their sessions by `who`. */
export async function logInTestUsers(server: RunningApi, users: readonly TestUser[]): Promise<Map<string, Caller>> {
  const callers = new Map<string, Caller>()
  for (const user of users)
    callers.set(user.who, await logIn(server, testUserEmail(user.who), testUserPassword(user.who)))
  return callers
}
