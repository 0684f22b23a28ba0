import { ANONYMOUS, holds, type Permission, type Principal, sitesFor } from '@skolluft/core'
import type { SessionRecord, UserRecord } from '@skolluft/storage'
import type { Request, RequestHandler, Response } from 'express'
import { operatorTokenMatcher } from '../operator-auth.ts'
import type { ApiContext } from '../options.ts'
import { HttpProblem } from '../problem.ts'
import {
  type CredentialVerifier,
  createCredentialVerifier,
  parseApiToken,
  parseSessionValue,
  sameSecret,
} from './credentials.ts'

/** The session cookie. `__Host-` would pin it to https; plain http on localhost must work for the demo. */
export const SESSION_COOKIE = 'skolluft_session'
export const CSRF_HEADER = 'x-csrf-token'
/** A session ends after this long without a request (one working day) … */
export const SESSION_IDLE_MS = 12 * 3_600_000
/** … and at the latest this long after log-in (OWASP Session Management: absolute timeout). */
export const SESSION_MAX_MS = 7 * 24 * 3_600_000
/** lastSeen is written at most this often per session, so reading the map does not write the database. */
export const SESSION_TOUCH_MS = 5 * 60_000

export interface AuthState {
  readonly principal: Principal
  /** The session behind a cookie-authenticated request (its CSRF token); null otherwise. */
  readonly session: SessionRecord | null
  /** The logged-in user, as read when the session was checked; null for tokens and anonymous callers. */
  readonly user: UserRecord | null
}

const ANONYMOUS_STATE: AuthState = { principal: ANONYMOUS, session: null, user: null }
/** OPERATOR_TOKEN (issue 2's static operator credential) reads the reject log and nothing else. */
const OPERATOR_STATE: AuthState = {
  principal: { kind: 'token', id: 'operator', role: 'caretaker', sites: [], scopes: ['rejects:read'] },
  session: null,
  user: null,
}
const states = new WeakMap<Request, AuthState>()

/** The caller of a request that passed `authenticate`; anonymous otherwise. */
export function authOf(req: Request): AuthState {
  return states.get(req) ?? ANONYMOUS_STATE
}

const BEARER = /^Bearer +(\S+) *$/i

export function readCookie(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim()
  }
  return undefined
}

export function invalidTokenProblem(detail: string): HttpProblem {
  return new HttpProblem({
    status: 401,
    code: 'invalid_token',
    title: 'Unauthorized',
    detail,
    // RFC 6750 §3.1
    headers: { 'WWW-Authenticate': 'Bearer realm="skolluft", error="invalid_token"' },
  })
}

export interface Authenticator {
  /** Who sent these headers; throws 401 for a bearer token that is not valid (a stale cookie is anonymous). */
  resolve(headers: {
    readonly authorization?: string | undefined
    readonly cookie?: string | undefined
  }): Promise<AuthState>
  readonly middleware: RequestHandler
  /** Refuses cookie-authenticated state changes without the session's CSRF token. */
  readonly csrf: RequestHandler
}

export function createAuthenticator(ctx: ApiContext): Authenticator {
  const { storage, clock, log } = ctx
  const verifier: CredentialVerifier = createCredentialVerifier(clock)
  const isOperatorToken = operatorTokenMatcher(ctx.options.operatorToken)

  async function fromToken(value: string): Promise<AuthState> {
    if (isOperatorToken(value)) return OPERATOR_STATE
    const parts = parseApiToken(value)
    const token = parts === null ? undefined : await storage.access.getToken(parts.id)
    const now = clock()
    if (parts === null || token === undefined || !(await verifier.verify(parts, token.secretHash))) {
      log.warn({ tokenId: parts?.id ?? null }, 'api token refused')
      throw invalidTokenProblem('the API token is not valid')
    }
    if (token.revokedAt !== null) throw invalidTokenProblem('the API token has been revoked')
    if (token.expiresAt !== null && token.expiresAt <= now) throw invalidTokenProblem('the API token has expired')
    if (token.lastUsedAt === null || now - token.lastUsedAt > SESSION_TOUCH_MS)
      await storage.access.touchToken(token.id, now)
    return {
      principal: { kind: 'token', id: token.id, role: token.role, sites: token.sites, scopes: token.scopes },
      session: null,
      user: null,
    }
  }

  async function fromSession(value: string): Promise<AuthState> {
    const parts = parseSessionValue(value)
    if (parts === null) return ANONYMOUS_STATE
    const session = await storage.access.getSession(parts.id)
    const now = clock()
    if (session === undefined || session.expiresAt <= now) return ANONYMOUS_STATE
    if (!(await verifier.verify(parts, session.secretHash))) return ANONYMOUS_STATE
    const user = await storage.access.getUser(session.userId)
    if (user === undefined || user.disabledAt !== null) return ANONYMOUS_STATE
    if (now - session.lastSeenAt > SESSION_TOUCH_MS) {
      const expiresAt = Math.min(now + SESSION_IDLE_MS, session.createdAt + SESSION_MAX_MS)
      await storage.access.touchSession(session.id, now, expiresAt)
    }
    return {
      principal: { kind: 'user', id: user.id, role: user.role, sites: user.sites, scopes: null },
      session,
      user,
    }
  }

  async function resolve(headers: { authorization?: string | undefined; cookie?: string | undefined }) {
    if (headers.authorization !== undefined) {
      const bearer = BEARER.exec(headers.authorization)?.[1]
      if (bearer === undefined) throw invalidTokenProblem('use Authorization: Bearer <token>')
      return fromToken(bearer)
    }
    const cookie = readCookie(headers.cookie, SESSION_COOKIE)
    return cookie === undefined ? ANONYMOUS_STATE : fromSession(cookie)
  }

  return {
    resolve,
    middleware: async (req, _res, next) => {
      states.set(req, await resolve({ authorization: req.get('authorization'), cookie: req.get('cookie') }))
      next()
    },
    csrf: (req, _res, next) => {
      const { session } = authOf(req)
      const safe = req.method === 'GET' || req.method === 'HEAD' || req.method === 'OPTIONS'
      if (safe || session === null) {
        next()
        return
      }
      const given = req.get(CSRF_HEADER)
      if (given === undefined || !sameSecret(given, session.csrfToken)) {
        throw new HttpProblem({
          status: 403,
          code: 'csrf_failed',
          title: 'Forbidden',
          detail: `a state-changing request with a session cookie needs the header X-CSRF-Token (from GET /api/v1/auth/session)`,
        })
      }
      next()
    },
  }
}

function refuse(principal: Principal, what: string): HttpProblem {
  if (principal.kind === 'anonymous') {
    return new HttpProblem({
      status: 401,
      code: 'unauthorized',
      title: 'Unauthorized',
      detail: `${what} needs a log-in or an API token`,
      headers: { 'WWW-Authenticate': 'Bearer realm="skolluft"' },
    })
  }
  return new HttpProblem({
    status: 403,
    code: 'forbidden',
    title: 'Forbidden',
    detail: `role ${principal.role}${principal.kind === 'token' ? ' (token scopes)' : ''} may not ${what}`,
  })
}

/** Throws 401/403 unless the caller holds `permission` for some site. */
export function requirePermission(req: Request, ctx: ApiContext, permission: Permission, what: string): Principal {
  const { principal } = authOf(req)
  if (!holds(principal, permission, ctx.options)) throw refuse(principal, what)
  return principal
}

/** Throws 401/403 unless the caller holds `permission` on `siteId`. */
export function requireSitePermission(
  req: Request,
  ctx: ApiContext,
  permission: Permission,
  siteId: string,
  what: string,
): Principal {
  const { principal } = authOf(req)
  const sites = sitesFor(principal, permission, ctx.options)
  if (sites !== 'all' && !sites.has(siteId)) throw refuse(principal, what)
  return principal
}

/**
 * Data everyone may read is cached publicly; anything that depends on who asks is private to the
 * browser and varies with the credentials.
 */
export function cacheFor(res: Response, isPublic: boolean, maxAgeS: number): void {
  if (isPublic) res.set('Cache-Control', `public, max-age=${maxAgeS}`)
  else {
    res.set('Cache-Control', `private, max-age=${maxAgeS}`)
    res.vary('Cookie')
    res.vary('Authorization')
  }
}
