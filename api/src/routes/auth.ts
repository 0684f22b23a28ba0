import { Password, type UserInput } from '@skolluft/core'
import { hashSecret, verifySecret } from '@skolluft/runtime'
import type { UserRecord } from '@skolluft/storage'
import { type Request, type Response, Router } from 'express'
import { z } from 'zod'
import { audit } from '../auth/audit.ts'
import { authOf, SESSION_COOKIE, SESSION_IDLE_MS, SESSION_MAX_MS } from '../auth/authenticate.ts'
import { generateCsrfToken, issueSessionCredential } from '../auth/credentials.ts'
import { cacheNever } from '../http-headers.ts'
import type { ApiContext } from '../options.ts'
import { HttpProblem, methodNotAllowed, validationProblem } from '../problem.ts'
import type { RateLimits } from '../rate-limit.ts'
import { createUser, publicUser } from './users.ts'

export const LoginBody = z.strictObject({
  email: z
    .string()
    .trim()
    .min(1)
    .max(254)
    .transform((e) => e.toLowerCase()),
  // Length only: a wrong password must fail as "wrong", not as a validation error that says why.
  password: z.string().min(1).max(256),
})

export const SetupBody = z.strictObject({
  setupToken: z.string().min(1).max(256),
  email: z.email().max(254),
  name: z.string().trim().min(1).max(200).optional(),
  password: Password,
})

export const SessionResponse = z.object({
  user: z
    .object({
      id: z.string(),
      email: z.string(),
      name: z.string().nullable(),
      role: z.string(),
      sites: z.array(z.string()),
    })
    .nullable(),
  csrfToken: z.string().nullable(),
  publicMap: z.boolean(),
  setupOpen: z.boolean(),
})

const wrongCredentials = () =>
  new HttpProblem({ status: 401, code: 'login_failed', title: 'Log-in failed', detail: 'wrong email or password' })

function setSessionCookie(res: Response, value: string, secure: boolean): void {
  res.cookie(SESSION_COOKIE, value, {
    httpOnly: true,
    sameSite: 'strict',
    secure,
    path: '/',
    maxAge: SESSION_MAX_MS,
  })
}

/**
 * Log-in with a session cookie:
 *   POST /auth/login    {email, password} → {user, csrfToken} and the cookie (httpOnly, SameSite=Strict)
 *   POST /auth/logout   ends the session (needs X-CSRF-Token)
 *   GET  /auth/session  who is logged in, the CSRF token, whether the map is public
 *   POST /auth/setup    creates the first admin with the one-time value printed at first start
 * Failed log-ins are slowed per address and per account (rate-limit.ts); an unknown email costs the
 * same scrypt as a wrong password, so timing does not tell which accounts exist.
 */
export function authRouter(ctx: ApiContext, limits: RateLimits): Router {
  const { storage, clock, options, log } = ctx
  const router = Router()
  // A real scrypt hash nobody knows the secret of, so unknown accounts cost the same time as known ones.
  const dummyHash = hashSecret(generateCsrfToken())

  // Two setup requests with the right value at once must not both create an admin: they run one at a time.
  let setupQueue: Promise<unknown> = Promise.resolve()
  function oneAtATime<T>(work: () => Promise<T>): Promise<T> {
    const run = setupQueue.then(work, work)
    setupQueue = run.catch(() => undefined)
    return run
  }

  async function setupOpen(): Promise<boolean> {
    return options.setupTokenHash !== undefined && (await storage.access.countUsers('admin')) === 0
  }

  async function startSession(res: Response, user: UserRecord, secure: boolean) {
    const now = clock()
    const credential = await issueSessionCredential()
    const csrfToken = generateCsrfToken()
    await storage.access.createSession({
      id: credential.id,
      userId: user.id,
      secretHash: credential.secretHash,
      csrfToken,
      createdAt: now,
      lastSeenAt: now,
      expiresAt: now + SESSION_IDLE_MS,
    })
    setSessionCookie(res, credential.value, secure)
    cacheNever(res)
    res.json({ user: publicUser(user), csrfToken })
  }

  router
    .route('/auth/login')
    .post(async (req, res) => {
      limits.login(req)
      const parsed = LoginBody.safeParse(req.body)
      if (!parsed.success) throw validationProblem(parsed.error, 'log-in')
      const { email, password } = parsed.data
      limits.loginAccount(email)
      const user = await storage.access.getUserByEmail(email)
      const ok =
        user !== undefined && user.passwordHash !== null && user.disabledAt === null
          ? await verifySecret(password, user.passwordHash)
          : await verifySecret(password, await dummyHash).then(() => false)
      if (!ok || user === undefined) {
        limits.loginFailed(req, email)
        log.warn({ userId: user?.id ?? null, ip: req.ip }, 'log-in failed')
        throw wrongCredentials()
      }
      await storage.access.deleteExpiredSessions(clock())
      log.info({ userId: user.id }, 'logged in')
      await startSession(res, user, req.secure || options.secureCookies)
    })
    .all(methodNotAllowed(['POST']))

  router
    .route('/auth/logout')
    .post(async (req, res) => {
      const { session } = authOf(req)
      if (session !== null) {
        await storage.access.deleteSession(session.id)
        ctx.accessChanges.notify({ kind: 'session', id: session.id })
      }
      res.clearCookie(SESSION_COOKIE, { path: '/', httpOnly: true, sameSite: 'strict' })
      cacheNever(res)
      res.status(204).end()
    })
    .all(methodNotAllowed(['POST']))

  router
    .route('/auth/session')
    .get(async (req, res) => {
      const { session, user } = authOf(req)
      cacheNever(res)
      res.json({
        user: user === null ? null : publicUser(user),
        csrfToken: session?.csrfToken ?? null,
        publicMap: options.publicMap,
        setupOpen: await setupOpen(),
      })
    })
    .all(methodNotAllowed(['GET', 'HEAD']))

  router
    .route('/auth/setup')
    .post(async (req, res) => {
      limits.login(req)
      const parsed = SetupBody.safeParse(req.body)
      if (!parsed.success) throw validationProblem(parsed.error, 'setup request')
      await oneAtATime(() => setup(req, res, parsed.data))
    })
    .all(methodNotAllowed(['POST']))

  async function setup(req: Request, res: Response, body: z.infer<typeof SetupBody>): Promise<void> {
    const hash = options.setupTokenHash
    if (hash === undefined || !(await setupOpen())) {
      throw new HttpProblem({
        status: 409,
        code: 'setup_closed',
        title: 'Setup closed',
        detail: 'an admin exists already; ask an admin for an account',
      })
    }
    if (!(await verifySecret(body.setupToken, hash))) {
      limits.loginFailed(req)
      throw new HttpProblem({ status: 401, code: 'setup_failed', title: 'Setup failed', detail: 'wrong setup value' })
    }
    const input: UserInput = { email: body.email.toLowerCase(), name: body.name ?? null, role: 'admin', sites: [] }
    const user = await createUser(ctx, input, await hashSecret(body.password))
    await audit(ctx, 'setup', 'user.create', user.id, { role: 'admin', via: 'setup' })
    await startSession(res, user, req.secure || options.secureCookies)
  }

  return router
}
