import { defaultScopes, Role, rolePermissions, Scope, SiteId } from '@skolluft/core'
import type { ApiTokenRecord } from '@skolluft/storage'
import { Router } from 'express'
import { z } from 'zod'
import { actorOf, audit } from '../auth/audit.ts'
import { requirePermission } from '../auth/authenticate.ts'
import { issueApiToken } from '../auth/credentials.ts'
import { cacheNever } from '../http-headers.ts'
import type { ApiContext } from '../options.ts'
import { HttpProblem, methodNotAllowed, notFoundProblem, validationProblem } from '../problem.ts'

/** Tokens expire; a year is the longest a forgotten researcher token stays usable. */
export const MAX_TOKEN_DAYS = 366

export const CreateTokenBody = z
  .strictObject({
    name: z.string().trim().min(1).max(200),
    role: Role.default('researcher'),
    scopes: z.array(Scope).max(20).optional(),
    sites: z.array(SiteId).max(1000).default([]),
    expiresInDays: z.number().int().min(1).max(MAX_TOKEN_DAYS).default(90),
  })
  .refine((t) => t.scopes === undefined || t.scopes.every((s) => rolePermissions(t.role).includes(s)), {
    message: 'a token cannot have a scope its role does not have',
    path: ['scopes'],
  })
  .refine((t) => (t.role === 'principal' ? t.sites.length > 0 : t.sites.length === 0), {
    message: 'only principal tokens are bound to sites, and they need at least one',
    path: ['sites'],
  })
export type CreateTokenBody = z.infer<typeof CreateTokenBody>

export function publicToken(token: ApiTokenRecord) {
  const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString())
  return {
    id: token.id,
    name: token.name,
    role: token.role,
    scopes: [...token.scopes],
    sites: [...token.sites],
    created_at: new Date(token.createdAt).toISOString(),
    expires_at: iso(token.expiresAt),
    revoked_at: iso(token.revokedAt),
    last_used_at: iso(token.lastUsedAt),
  }
}

/** Creates a token; the plain value is returned once and never stored. */
export async function createToken(
  ctx: Pick<ApiContext, 'storage' | 'clock'>,
  body: CreateTokenBody,
  userId: string | null,
): Promise<{ token: string; record: ApiTokenRecord }> {
  const issued = await issueApiToken()
  const now = ctx.clock()
  await ctx.storage.access.createToken({
    id: issued.id,
    name: body.name,
    role: body.role,
    scopes: body.scopes ?? defaultScopes(body.role),
    sites: body.sites,
    userId,
    secretHash: issued.secretHash,
    createdAt: now,
    expiresAt: now + body.expiresInDays * 86_400_000,
  })
  const record = await ctx.storage.access.getToken(issued.id)
  if (record === undefined) throw new Error(`token ${issued.id} vanished after it was created`)
  return { token: issued.value, record }
}

/**
 * API tokens (admin only; audited). The token value is shown once, in the answer to POST.
 *   GET    /tokens        every token (no secrets)
 *   POST   /tokens        {name, role?, scopes?, sites?, expiresInDays?} → {token, ...}
 *   DELETE /tokens/:id    revokes
 */
export function tokensRouter(ctx: ApiContext): Router {
  const router = Router()
  const manage = 'manage API tokens'

  router
    .route('/tokens')
    .get(async (req, res) => {
      requirePermission(req, ctx, 'tokens:manage', manage)
      cacheNever(res)
      res.json({ tokens: (await ctx.storage.access.listTokens()).map(publicToken) })
    })
    .post(async (req, res) => {
      const admin = requirePermission(req, ctx, 'tokens:manage', manage)
      const parsed = CreateTokenBody.safeParse(req.body)
      if (!parsed.success) throw validationProblem(parsed.error, 'token')
      // As for users (createUser): an unknown site is the caller's mistake, not a storage failure (500).
      for (const site of parsed.data.sites) {
        if (!(await ctx.storage.registry.getSite(site))) {
          throw new HttpProblem({
            status: 400,
            code: 'site_not_found',
            title: 'Unknown site',
            detail: `no site ${site}`,
          })
        }
      }
      const { token, record } = await createToken(ctx, parsed.data, admin.kind === 'user' ? admin.id : null)
      await audit(ctx, actorOf(admin), 'token.create', record.id, { role: record.role, scopes: record.scopes })
      cacheNever(res)
      res.status(201).json({ token, ...publicToken(record) })
    })
    .all(methodNotAllowed(['GET', 'HEAD', 'POST']))

  router
    .route('/tokens/:id')
    .delete(async (req, res) => {
      const admin = requirePermission(req, ctx, 'tokens:manage', manage)
      if (!(await ctx.storage.access.revokeToken(req.params.id, ctx.clock()))) {
        throw notFoundProblem('no such token', 'token_not_found')
      }
      ctx.accessChanges.notify({ kind: 'token', id: req.params.id })
      await audit(ctx, actorOf(admin), 'token.revoke', req.params.id)
      res.status(204).end()
    })
    .all(methodNotAllowed(['DELETE']))

  return router
}
