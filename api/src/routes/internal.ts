import { createRateLimiter, holds, type Permission } from '@skolluft/core'
import {
  type DeviceRecord,
  REJECTS_BODY_LIMIT_BYTES,
  type RegistryDevice,
  RegistryQuery,
  RegistrySnapshot,
  type RejectRecord,
  RejectsBody,
} from '@skolluft/storage'
import express, { type RequestHandler, Router } from 'express'
import type { Authenticator } from '../auth/authenticate.ts'
import { cacheNever } from '../http-headers.ts'
import type { ApiContext } from '../options.ts'
import { HttpProblem, methodNotAllowed, validationProblem } from '../problem.ts'
import type { RateLimits } from '../rate-limit.ts'

/**
 * Endpoints for the platform's own services on other machines (issue 6): an ingest that has no SQLite file reads the
 * device registry and records rejects here (REGISTRY_URL; the client is @skolluft/storage http/). Bearer tokens of
 * role service only (`skolluft token create --role service`, scopes registry:read and rejects:write, which no other
 * role holds); session cookies are not looked at, so no CSRF question arises.
 *   GET  /internal/registry?since=<revision>   {revision, changed:false} or {revision, changed:true, devices}
 *                                              (model, sensors, interval, revocation, placements; no secret hash)
 *   POST /internal/rejects {rejects:[…]}       appends to the reject log → 204 once committed
 *
 * Rate limits. These routes are mounted before the per-address limit of /api/v1 (API_RATE_PER_S): several ingest
 * workers may sit behind one address, and a burst of rejected telemetry must not make an ingest hold its devices'
 * acknowledgements behind 429s. Instead:
 * - a valid service token has its own bucket, SERVICE_RATE_PER_S with a burst of SERVICE_BURST, far above what an
 *   ingest sends (one registry poll per 2 s; one reject request at a time, which carries every reject that arrived
 *   meanwhile), and low enough that a leaked token cannot flood the reject log unnoticed;
 * - a token that is not valid counts as a failed log-in of the address (LOGIN_BURST, then one per LOGIN_REFILL_S), so
 *   guessing costs as much as at the log-in; an address with too many failures is refused before any scrypt;
 * - any other caller (no token, a valid token of another role) pays the ordinary per-address limit, then gets 401/403.
 */

/** Requests per second per service token, and the burst (see above). */
export const SERVICE_RATE_PER_S = 100
export const SERVICE_BURST = 1_000
/** Service tokens remembered by the per-token limiter (one per ingest worker; far more than any deployment has). */
const MAX_SERVICE_KEYS = 1_000

function wireDevice(device: DeviceRecord): RegistryDevice {
  // Named fields only: the secret hash never leaves (RegistrySnapshot.parse would strip it too).
  const { id, model, sensors, intervalS, createdAt, revokedAt, placements } = device
  return { id, model, sensors, intervalS, createdAt, revokedAt, placements: [...placements] }
}

export function internalRouter(ctx: ApiContext, auth: Authenticator, limits: RateLimits): Router {
  const { storage } = ctx
  const router = Router()
  const perToken = createRateLimiter({
    ratePerS: SERVICE_RATE_PER_S,
    burst: SERVICE_BURST,
    clock: ctx.clock,
    maxKeys: MAX_SERVICE_KEYS,
  })

  const service =
    (permission: Permission, what: string): RequestHandler =>
    async (req, res, next) => {
      limits.login(req)
      const authorization = req.get('authorization')
      if (authorization === undefined) {
        limits.api(req, res, () => undefined)
        throw new HttpProblem({
          status: 401,
          code: 'unauthorized',
          title: 'Unauthorized',
          detail: `${what} needs an API token of role service`,
          headers: { 'WWW-Authenticate': 'Bearer realm="skolluft"' },
        })
      }
      let principal: Awaited<ReturnType<Authenticator['resolve']>>['principal']
      try {
        ;({ principal } = await auth.resolve({ authorization }))
      } catch (error) {
        limits.loginFailed(req)
        throw error
      }
      if (principal.kind !== 'token' || !holds(principal, permission, ctx.options)) {
        limits.api(req, res, () => undefined)
        throw new HttpProblem({
          status: 403,
          code: 'forbidden',
          title: 'Forbidden',
          detail: `only a token of role service with scope ${permission} may ${what}`,
        })
      }
      if (!perToken.take(principal.id)) {
        throw new HttpProblem({
          status: 429,
          code: 'rate_limited',
          title: 'Too many requests',
          detail: `more than ${SERVICE_RATE_PER_S} requests per second with this service token`,
          headers: { 'Retry-After': '1' },
        })
      }
      next()
    }

  router
    .route('/internal/registry')
    .get(service('registry:read', 'read the registry'), async (req, res) => {
      const parsed = RegistryQuery.safeParse(req.query)
      if (!parsed.success) throw validationProblem(parsed.error, 'registry query')
      // Revision first: the devices read after it are at least that new (see RegistrySnapshot).
      const revision = await storage.registry.revision()
      cacheNever(res)
      if (parsed.data.since === revision) {
        res.json(RegistrySnapshot.parse({ revision, changed: false }))
        return
      }
      const devices = (await storage.registry.listDevices()).map(wireDevice)
      res.json(RegistrySnapshot.parse({ revision, changed: true, devices }))
    })
    .all(methodNotAllowed(['GET', 'HEAD']))

  router
    .route('/internal/rejects')
    .post(
      service('rejects:write', 'record rejects'),
      // Parsed only after the token is checked: nobody else makes the API read a body this large.
      express.json({ limit: REJECTS_BODY_LIMIT_BYTES }),
      async (req, res) => {
        const parsed = RejectsBody.safeParse(req.body)
        if (!parsed.success) throw validationProblem(parsed.error, 'rejects')
        const fresh: RejectRecord[] = []
        const redelivered: RejectRecord[] = []
        for (const { redelivery, ...reject } of parsed.data.rejects) (redelivery ? redelivered : fresh).push(reject)
        if (fresh.length > 0) await storage.rejects.record(fresh)
        if (redelivered.length > 0) await storage.rejects.record(redelivered, { redelivery: true })
        res.status(204).end()
      },
    )
    .all(methodNotAllowed(['POST']))

  return router
}
