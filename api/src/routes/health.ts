import { Router } from 'express'
import { cacheNever } from '../http-headers.ts'
import type { ApiContext } from '../options.ts'
import { HttpProblem, methodNotAllowed } from '../problem.ts'

class HealthTimeoutError extends Error {
  readonly code = 'HEALTH_TIMEOUT'
  constructor(ms: number) {
    super(`storage did not answer within ${ms} ms`)
    this.name = 'HealthTimeoutError'
  }
}

async function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new HealthTimeoutError(ms)), ms)
  })
  try {
    return await Promise.race([work, timeout])
  } finally {
    clearTimeout(timer)
  }
}

/** `GET /healthz`: 200 when storage answers a cheap query, 503 problem otherwise. For load balancers. */
export function healthRouter(ctx: ApiContext): Router {
  const router = Router()
  router
    .route('/healthz')
    .get(async (_req, res) => {
      cacheNever(res)
      try {
        await withTimeout(ctx.storage.registry.revision(), ctx.options.healthTimeoutMs)
      } catch (error) {
        ctx.log.warn({ err: error }, 'health check failed: storage did not answer')
        throw new HttpProblem({
          status: 503,
          code: 'storage_unavailable',
          title: 'Service unavailable',
          detail: 'storage is not answering',
          cause: error,
        })
      }
      res.json({ status: 'ok' })
    })
    .all(methodNotAllowed(['GET', 'HEAD']))
  return router
}
