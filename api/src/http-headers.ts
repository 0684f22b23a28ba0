import type { Logger } from '@skolluft/runtime'
import type { RequestHandler, Response } from 'express'

/**
 * Security headers for an API that only returns JSON (OWASP REST Security Cheat Sheet,
 * "Security Headers"): no sniffing, no framing, no referrer, and a CSP that forbids every
 * resource load, so a JSON body opened in a browser can never run as a page. The dashboard,
 * when it is served from here, sets its own CSP on its own routes.
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
  'Content-Security-Policy': "default-src 'none'; frame-ancestors 'none'",
}

export const securityHeaders: RequestHandler = (_req, res, next) => {
  res.set(SECURITY_HEADERS)
  next()
}

/** Public, anonymous data that changes at most once a minute per device; a short cache absorbs map refreshes. */
export function cachePublic(res: Response, maxAgeS: number): void {
  res.set('Cache-Control', `public, max-age=${maxAgeS}`)
}

export function cacheNever(res: Response): void {
  res.set('Cache-Control', 'no-store')
}

/** One debug line per finished request: method, path (no query string), status and duration. */
export function requestLog(log: Logger): RequestHandler {
  return (req, res, next) => {
    const started = performance.now()
    const method = req.method
    const path = req.originalUrl.split('?')[0]
    res.on('finish', () => {
      log.debug({ method, path, status: res.statusCode, ms: Math.round(performance.now() - started) }, 'request')
    })
    next()
  }
}
