import { Password, Role, SiteId, UserInput } from '@skolluft/core'
import { generateSecret, hashSecret } from '@skolluft/runtime'
import type { UserRecord } from '@skolluft/storage'
import { Router } from 'express'
import { z } from 'zod'
import { actorOf, audit } from '../auth/audit.ts'
import { authOf, requirePermission } from '../auth/authenticate.ts'
import { cacheNever } from '../http-headers.ts'
import type { ApiContext } from '../options.ts'
import { HttpProblem, methodNotAllowed, notFoundProblem, validationProblem } from '../problem.ts'

/** A user as the API shows it: never the password hash. */
export function publicUser(user: UserRecord) {
  return {
    id: user.id,
    email: user.email,
    name: user.name,
    role: user.role,
    sites: [...user.sites],
    created_at: new Date(user.createdAt).toISOString(),
    disabled: user.disabledAt !== null,
  }
}

export const CreateUserBody = z.intersection(UserInput, z.object({ password: Password.optional() }))

export const UpdateUserBody = z.strictObject({
  role: Role.optional(),
  sites: z.array(SiteId).max(1000).optional(),
  name: z.string().trim().min(1).max(200).nullable().optional(),
  disabled: z.boolean().optional(),
  password: Password.optional(),
})

function selfDisableProblem(): HttpProblem {
  return new HttpProblem({
    status: 409,
    code: 'self_disable',
    title: 'Conflict',
    detail: 'an admin cannot disable their own account',
  })
}

/** Creates a user; 409 when the email is taken, 400 when a bound site does not exist. */
export async function createUser(
  ctx: Pick<ApiContext, 'storage' | 'clock'>,
  input: UserInput,
  passwordHash: string | null,
): Promise<UserRecord> {
  for (const site of input.sites) {
    if (!(await ctx.storage.registry.getSite(site))) {
      throw new HttpProblem({ status: 400, code: 'site_not_found', title: 'Unknown site', detail: `no site ${site}` })
    }
  }
  if (await ctx.storage.access.getUserByEmail(input.email)) {
    throw new HttpProblem({
      status: 409,
      code: 'email_taken',
      title: 'Conflict',
      detail: `a user with that email exists`,
    })
  }
  return ctx.storage.access.addUser({ id: `usr_${crypto.randomUUID()}`, ...input, passwordHash }, ctx.clock())
}

/**
 * User administration (admin only; every change is audited):
 *   GET    /users            all users
 *   POST   /users            {email, role, sites?, name?, password?} → the user, and a generated password
 *                            once when none was given
 *   PATCH  /users/:id        {role?, sites?, name?, disabled?, password?}
 *   DELETE /users/:id        disables the account and ends its sessions (history in the audit log stays)
 */
export function usersRouter(ctx: ApiContext): Router {
  const { storage } = ctx
  const router = Router()
  const manage = 'manage users'

  router
    .route('/users')
    .get(async (req, res) => {
      requirePermission(req, ctx, 'users:manage', manage)
      cacheNever(res)
      res.json({ users: (await storage.access.listUsers()).map(publicUser) })
    })
    .post(async (req, res) => {
      const admin = requirePermission(req, ctx, 'users:manage', manage)
      const parsed = CreateUserBody.safeParse(req.body)
      if (!parsed.success) throw validationProblem(parsed.error, 'user')
      const { password, ...input } = parsed.data
      const generated = password === undefined ? generateSecret() : undefined
      const user = await createUser(ctx, input, await hashSecret(password ?? generated ?? ''))
      await audit(ctx, actorOf(admin), 'user.create', user.id, { role: user.role, sites: user.sites })
      cacheNever(res)
      res.status(201).json({ user: publicUser(user), ...(generated === undefined ? {} : { password: generated }) })
    })
    .all(methodNotAllowed(['GET', 'HEAD', 'POST']))

  router
    .route('/users/:id')
    .patch(async (req, res) => {
      const admin = requirePermission(req, ctx, 'users:manage', manage)
      const parsed = UpdateUserBody.safeParse(req.body)
      if (!parsed.success) throw validationProblem(parsed.error, 'user update')
      const current = await storage.access.getUser(req.params.id)
      if (current === undefined) throw notFoundProblem('no such user', 'user_not_found')
      const { password, disabled, ...rest } = parsed.data
      // The same rule as DELETE: PATCH {disabled: true} must not be a way round it.
      if (disabled === true && admin.kind === 'user' && admin.id === current.id) throw selfDisableProblem()
      const role = rest.role ?? current.role
      const sites = rest.sites ?? current.sites
      const check = UserInput.safeParse({ email: current.email, name: current.name, role, sites })
      if (!check.success) throw validationProblem(check.error, 'user update')
      const updated = await storage.access.updateUser(current.id, {
        ...rest,
        ...(password === undefined ? {} : { passwordHash: await hashSecret(password) }),
        ...(disabled === undefined ? {} : { disabledAt: disabled ? ctx.clock() : null }),
      })
      if (updated === undefined) throw notFoundProblem('no such user', 'user_not_found')
      // A changed role, site binding, password or a disabled account must not live on in open sessions.
      await storage.access.deleteUserSessions(current.id)
      ctx.accessChanges.notify({ kind: 'user', id: current.id })
      await audit(ctx, actorOf(admin), 'user.update', current.id, {
        fields: Object.keys(parsed.data).filter((k) => k !== 'password'),
        passwordChanged: password !== undefined,
      })
      cacheNever(res)
      res.json({ user: publicUser(updated) })
    })
    .delete(async (req, res) => {
      const admin = requirePermission(req, ctx, 'users:manage', manage)
      const current = await storage.access.getUser(req.params.id)
      if (current === undefined) throw notFoundProblem('no such user', 'user_not_found')
      if (admin.kind === 'user' && admin.id === current.id) throw selfDisableProblem()
      await storage.access.updateUser(current.id, { disabledAt: ctx.clock() })
      await storage.access.deleteUserSessions(current.id)
      ctx.accessChanges.notify({ kind: 'user', id: current.id })
      await audit(ctx, actorOf(admin), 'user.disable', current.id)
      res.status(204).end()
    })
    .all(methodNotAllowed(['PATCH', 'DELETE']))

  router
    .route('/me')
    .get(async (req, res) => {
      const principal = requirePermission(req, ctx, 'map:read', 'read their account')
      const { user } = authOf(req)
      cacheNever(res)
      if (user !== null) {
        res.json({ kind: 'user', user: publicUser(user) })
        return
      }
      if (principal.kind === 'token') {
        res.json({
          kind: 'token',
          token: { id: principal.id, role: principal.role, scopes: principal.scopes, sites: principal.sites },
        })
        return
      }
      res.json({ kind: 'anonymous' })
    })
    .all(methodNotAllowed(['GET', 'HEAD']))

  return router
}
