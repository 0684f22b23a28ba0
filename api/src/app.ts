import compression from 'compression'
import express from 'express'
import { type Authenticator, createAuthenticator } from './auth/authenticate.ts'
import { dashboardRouter } from './dashboard.ts'
import { requestLog, securityHeaders } from './http-headers.ts'
import { createAccessChanges } from './live/access-changes.ts'
import { createMapSnapshots, type MapSnapshots } from './map-snapshot.ts'
import { type ApiContext, type ApiDeps, DEFAULT_API_OPTIONS } from './options.ts'
import { problemHandler, unmatchedRoute } from './problem.ts'
import { createRateLimits } from './rate-limit.ts'
import { alertsRouter, unsubscribeRouter } from './routes/alerts.ts'
import { auditRouter } from './routes/audit.ts'
import { authRouter } from './routes/auth.ts'
import { breachesRouter } from './routes/breaches.ts'
import { calibrationsRouter } from './routes/calibrations.ts'
import { exceedancesRouter } from './routes/exceedances.ts'
import { exportRouter } from './routes/export.ts'
import { healthRouter } from './routes/health.ts'
import { internalRouter } from './routes/internal.ts'
import { measuresRouter } from './routes/measures.ts'
import { municipalReportRouter } from './routes/municipal-report.ts'
import { openApiRouter } from './routes/openapi.ts'
import { publicInfoRouter } from './routes/public-info.ts'
import { rejectsRouter } from './routes/rejects.ts'
import { reportsRouter } from './routes/reports.ts'
import { sitesRouter } from './routes/sites.ts'
import { tokensRouter } from './routes/tokens.ts'
import { usersRouter } from './routes/users.ts'

/** Version prefix of the public API; a breaking change gets /api/v2 beside it. */
export const API_V1_PREFIX = '/api/v1'

export interface Api {
  readonly app: express.Express
  readonly ctx: ApiContext
  /** Shared with the live hub, so socket.io connections authenticate like requests. */
  readonly auth: Authenticator
  readonly snapshots: MapSnapshots
}

/**
 * Builds the HTTP API as an express app (no listening; see server.ts). Layout:
 * request log → security headers → compression → dashboard (its own CSP) → /api/v1: the service endpoints
 * (/internal/*, their own authentication and limits, routes/internal.ts) → rate limit →
 * body limit → the unsubscribe link (its token is the credential) → authentication → CSRF check → routes per
 * domain (routes/*.ts) → 404 → the one problem+json error handler.
 */
export function createApi(deps: ApiDeps): Api {
  const ctx: ApiContext = {
    log: deps.log,
    storage: deps.storage,
    clock: deps.clock ?? Date.now,
    options: { ...DEFAULT_API_OPTIONS, ...deps.options },
    alertsKey: deps.alertsKey ?? null,
    accessChanges: createAccessChanges(),
  }
  const auth = createAuthenticator(ctx)
  const limits = createRateLimits(ctx.clock, ctx.options.rateLimit)
  const snapshots = createMapSnapshots({
    storage: ctx.storage,
    clock: ctx.clock,
    log: ctx.log,
    maxAgeMs: ctx.options.mapSnapshotMaxAgeMs,
  })
  const app = express()
  app.disable('x-powered-by')
  app.set('trust proxy', ctx.options.trustProxy)
  // Flat key=value queries only (node:querystring); nested objects in a query are never needed here.
  app.set('query parser', 'simple')

  app.use(requestLog(ctx.log))
  app.use(securityHeaders)
  // zlib level 1: a year of hourly points (1.2 MB of JSON) gzips in ~15 ms instead of ~30 ms at the
  // default level 6, for a body only ~9 % larger (measured on this machine, bench/map-api.ts).
  app.use(compression({ level: 1 }))

  app.use(healthRouter(ctx))
  if (deps.dashboard !== undefined) app.use(dashboardRouter(deps.dashboard, ctx.options))

  const v1 = express.Router()
  // Before the per-address limit: service tokens have their own (routes/internal.ts explains why).
  v1.use(internalRouter(ctx, auth, limits))
  v1.use(limits.api)
  v1.use(express.json({ limit: ctx.options.jsonBodyLimit }))
  v1.use(openApiRouter())
  // Before authentication: the link's token is its credential, and a browser posting the page's form sends the
  // session cookie, which the CSRF check would otherwise refuse (routes/alerts.ts).
  v1.use(unsubscribeRouter(ctx))
  v1.use(auth.middleware)
  v1.use(auth.csrf)
  v1.use(authRouter(ctx, limits))
  v1.use(publicInfoRouter(ctx))
  v1.use(sitesRouter(ctx, snapshots))
  v1.use(exceedancesRouter(ctx))
  v1.use(reportsRouter(ctx))
  v1.use(municipalReportRouter(ctx))
  v1.use(measuresRouter(ctx))
  v1.use(exportRouter(ctx))
  v1.use(calibrationsRouter(ctx))
  v1.use(breachesRouter(ctx))
  v1.use(alertsRouter(ctx))
  v1.use(usersRouter(ctx))
  v1.use(tokensRouter(ctx))
  v1.use(auditRouter(ctx))
  v1.use(rejectsRouter(ctx))
  app.use(API_V1_PREFIX, v1)

  app.use(unmatchedRoute)
  app.use(problemHandler(ctx.log))
  return { app, ctx, auth, snapshots }
}
