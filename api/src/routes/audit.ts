import { Router } from 'express'
import { z } from 'zod'
import { requirePermission } from '../auth/authenticate.ts'
import { cacheNever } from '../http-headers.ts'
import type { ApiContext } from '../options.ts'
import { methodNotAllowed, validationProblem } from '../problem.ts'

export const MAX_AUDIT_LIMIT = 1_000

export const AuditQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(MAX_AUDIT_LIMIT).default(100),
  /** Entries older than this id (the `id` of the last entry of the previous page). */
  before: z.coerce.number().int().min(1).optional(),
})

/** `GET /audit?limit&before`: admin actions, newest first (admin only). */
export function auditRouter(ctx: ApiContext): Router {
  const router = Router()
  router
    .route('/audit')
    .get(async (req, res) => {
      requirePermission(req, ctx, 'audit:read', 'read the audit log')
      const parsed = AuditQuery.safeParse(req.query)
      if (!parsed.success) throw validationProblem(parsed.error, 'audit query')
      const entries = await ctx.storage.access.listAudit({
        limit: parsed.data.limit,
        ...(parsed.data.before === undefined ? {} : { beforeId: parsed.data.before }),
      })
      cacheNever(res)
      res.json({
        entries: entries.map((e) => ({
          id: e.id,
          at: new Date(e.at).toISOString(),
          actor: e.actor,
          action: e.action,
          target: e.target,
          detail: e.detail,
        })),
      })
    })
    .all(methodNotAllowed(['GET', 'HEAD']))
  return router
}
