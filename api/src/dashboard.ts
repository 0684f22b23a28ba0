import { type RequestHandler, Router } from 'express'
import type { ApiOptions, StaticFile } from './options.ts'

/**
 * Serves the dashboard bundle (built in memory by @skolluft/dashboard, handed over by the composition
 * root: the API does not import the dashboard) with a content security policy that allows only our own
 * scripts and styles, the map tiles' origin for images, and same-origin connections (fetch, socket.io).
 * Asset names carry a content hash, so they are cached for a year; the page itself is revalidated.
 */
export function tileOrigin(tileUrl: string | null): string | null {
  if (tileUrl === null) return null
  try {
    // `{s}` subdomains become a wildcard; other placeholders ({z}/{x}/{y}) sit in the path.
    const url = new URL(tileUrl.replace('{s}.', 'subdomain-placeholder.').replace(/\{[^}]*\}/g, '0'))
    const host = url.host.replace('subdomain-placeholder.', '*.')
    return `${url.protocol}//${host}`
  } catch {
    return null
  }
}

export function dashboardCsp(options: Pick<ApiOptions, 'tileUrl'>): string {
  const tiles = tileOrigin(options.tileUrl)
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    `img-src 'self' data:${tiles === null ? '' : ` ${tiles}`}`,
    "connect-src 'self'",
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ')
}

export function dashboardRouter(files: ReadonlyMap<string, StaticFile>, options: ApiOptions): Router {
  const router = Router()
  const csp = dashboardCsp(options)
  const serve: RequestHandler = (req, res, next) => {
    const file = files.get(req.path)
    if (file === undefined || (req.method !== 'GET' && req.method !== 'HEAD')) {
      next()
      return
    }
    res.set('Content-Security-Policy', csp)
    res.set('Cache-Control', req.path.startsWith('/assets/') ? 'public, max-age=31536000, immutable' : 'no-cache')
    res.set('ETag', file.etag)
    res.type(file.contentType)
    if (req.fresh) {
      res.status(304).end()
      return
    }
    res.send(file.body)
  }
  router.use(serve)
  return router
}
