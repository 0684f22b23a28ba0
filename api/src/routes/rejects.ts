import { DeviceId } from '@skolluft/core'
import { type RequestHandler, Router } from 'express'
import { z } from 'zod'
import { requirePermission } from '../auth/authenticate.ts'
import { cacheNever } from '../http-headers.ts'
import type { ApiContext } from '../options.ts'
import { methodNotAllowed, validationProblem } from '../problem.ts'

/** Most reject entries in one response; the log itself is bounded by storage. */
export const MAX_REJECTS_LIMIT = 1_000
export const DEFAULT_REJECTS_LIMIT = 100

export const RejectsQuery = z.strictObject({
  limit: z.coerce
    .number({ error: 'limit must be a whole number' })
    .int('limit must be a whole number')
    .min(1, 'limit must be at least 1')
    .max(MAX_REJECTS_LIMIT, `limit must be at most ${MAX_REJECTS_LIMIT}`)
    .default(DEFAULT_REJECTS_LIMIT),
  device: DeviceId.optional(),
})

/**
 * Operator view of rejected telemetry (why a device's data is not on the map):
 *   GET /rejects?limit=&device=   newest first
 *   GET /rejects/counts           totals per device and code, kept after entries roll off
 * Needs rejects:read: admin and caretaker log-ins or tokens, or the static OPERATOR_TOKEN.
 */
export function rejectsRouter(ctx: ApiContext): Router {
  const { storage } = ctx
  const router = Router()
  const guard: RequestHandler = (req, _res, next) => {
    requirePermission(req, ctx, 'rejects:read', 'read the reject log')
    next()
  }

  router
    .route('/rejects')
    .all(guard)
    .get(async (req, res) => {
      const parsed = RejectsQuery.safeParse(req.query)
      if (!parsed.success) throw validationProblem(parsed.error, 'rejects query')
      const { limit, device } = parsed.data
      const rejects = await storage.rejects.list({ limit, ...(device === undefined ? {} : { deviceId: device }) })
      cacheNever(res)
      res.json({
        rejects: rejects.map((r) => ({
          at: new Date(r.at).toISOString(),
          device: r.deviceId,
          topic: r.topic,
          code: r.code,
          message: r.message,
          index: r.index,
        })),
      })
    })
    .all(methodNotAllowed(['GET', 'HEAD']))

  router
    .route('/rejects/counts')
    .all(guard)
    .get(async (_req, res) => {
      const counts = await storage.rejects.counts()
      cacheNever(res)
      res.json({
        counts: counts.map((c) => ({
          device: c.deviceId,
          code: c.code,
          count: c.count,
          last_at: new Date(c.lastAt).toISOString(),
        })),
      })
    })
    .all(methodNotAllowed(['GET', 'HEAD']))

  return router
}
