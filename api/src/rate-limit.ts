import { createRateLimiter } from '@skolluft/core'
import type { Request, RequestHandler } from 'express'
import { HttpProblem } from './problem.ts'

/**
 * Request rate limits, per client address (req.ip; set TRUST_PROXY behind a reverse proxy, or every
 * client shares the proxy's address):
 * - every API request: API_RATE_PER_S sustained with a burst of API_BURST. Opening the map costs ~10
 *   requests and a panel 4 more, so a person never meets the limit; a scraper loop does.
 * - failed log-in and setup attempts: LOGIN_BURST, then one per LOGIN_REFILL_S, per address and, separately,
 *   per account, so guessing one password from many addresses is as slow as from one (OWASP
 *   Authentication Cheat Sheet, "Protect against automated attacks"). Only failures count: a school's
 *   staff behind one address all logging in at 8:00 are never refused.
 */
export const API_RATE_PER_S = 20
export const API_BURST = 300
export const LOGIN_BURST = 10
export const LOGIN_REFILL_S = 60
/** Addresses or accounts remembered; past it, full buckets are dropped first (see core rate-limiter). */
const MAX_KEYS = 50_000

export interface RateLimits {
  readonly api: RequestHandler
  /** Throws 429 when this address has made too many failed log-in attempts. */
  login(req: Request): void
  /** Throws 429 when this account has had too many failed log-in attempts. */
  loginAccount(email: string): void
  /** Counts a failed attempt against the address and, when given, the account. */
  loginFailed(req: Request, email?: string): void
}

function tooMany(detail: string, retryAfterS: number): HttpProblem {
  return new HttpProblem({
    status: 429,
    code: 'rate_limited',
    title: 'Too many requests',
    detail,
    headers: { 'Retry-After': String(retryAfterS) },
  })
}

export function createRateLimits(
  clock: () => number,
  apiLimit: { readonly ratePerS: number; readonly burst: number } = { ratePerS: API_RATE_PER_S, burst: API_BURST },
): RateLimits {
  const api = createRateLimiter({ ...apiLimit, clock, maxKeys: MAX_KEYS })
  const loginOptions = { ratePerS: 1 / LOGIN_REFILL_S, burst: LOGIN_BURST, clock, maxKeys: MAX_KEYS }
  const byAddress = createRateLimiter(loginOptions)
  const byAccount = createRateLimiter(loginOptions)
  const address = (req: Request) => req.ip ?? req.socket.remoteAddress ?? 'unknown'
  return {
    api(req, _res, next) {
      if (!api.take(address(req))) {
        throw tooMany(`more than ${apiLimit.ratePerS} requests per second from this address`, 1)
      }
      next()
    },
    login(req) {
      if (byAddress.isEmpty(address(req))) {
        throw tooMany('too many failed log-in attempts from this address; wait a minute', LOGIN_REFILL_S)
      }
    },
    loginAccount(email) {
      if (byAccount.isEmpty(email)) {
        throw tooMany('too many failed log-in attempts for this account; wait a minute', LOGIN_REFILL_S)
      }
    },
    loginFailed(req, email) {
      byAddress.take(address(req))
      if (email !== undefined) byAccount.take(email)
    },
  }
}
