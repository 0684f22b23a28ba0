import express from 'express'
import { requestLog, securityHeaders } from './http-headers.ts'
import { type ApiContext, type ApiDeps, DEFAULT_API_OPTIONS } from './options.ts'
import { problemHandler, unmatchedRoute } from './problem.ts'
import { healthRouter } from './routes/health.ts'
import { rejectsRouter } from './routes/rejects.ts'
import { sitesRouter } from './routes/sites.ts'

/** Version prefix of the public API; a breaking change gets /api/v2 beside it. */
export const API_V1_PREFIX = '/api/v1'

/**
 * Builds the HTTP API as an express app (no listening; see server.ts). Layout:
 * security headers and request log → body limit → routes per domain (routes/*.ts) →
 * 404 for everything unmatched → the one problem+json error handler.
 */
export function createApi(deps: ApiDeps): express.Express {
  const ctx: ApiContext = {
    log: deps.log,
    storage: deps.storage,
    clock: deps.clock ?? Date.now,
    options: { ...DEFAULT_API_OPTIONS, ...deps.options },
  }
  const app = express()
  app.disable('x-powered-by')
  // Flat key=value queries only (node:querystring); nested objects in a query are never needed here.
  app.set('query parser', 'simple')

  app.use(requestLog(ctx.log))
  app.use(securityHeaders)
  app.use(express.json({ limit: ctx.options.jsonBodyLimit }))

  app.use(healthRouter(ctx))
  app.use(API_V1_PREFIX, sitesRouter(ctx))
  if (ctx.options.operatorToken !== undefined) {
    app.use(API_V1_PREFIX, rejectsRouter(ctx, ctx.options.operatorToken))
  }

  app.use(unmatchedRoute)
  app.use(problemHandler(ctx.log))
  return app
}
