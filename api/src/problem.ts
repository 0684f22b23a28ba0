import type { Logger } from '@skolluft/runtime'
import type { ErrorRequestHandler, Request, RequestHandler, Response } from 'express'
import { z } from 'zod'

/**
 * Error responses are RFC 9457 problem details: `type`, `title`, `status`, `detail`, `instance`,
 * plus our extension members `code` (machine-readable, stable) and, for validation problems,
 * `errors` (one entry per invalid parameter). Every error leaves the API through `problemHandler`.
 */
export const PROBLEM_CONTENT_TYPE = 'application/problem+json'
/**
 * Problem type URIs. RFC 9457 §3.1.1 recommends absolute URIs and allows ones that are not
 * dereferenceable; a URN is stable whatever host serves the API. `code` carries the same name.
 */
export const PROBLEM_TYPE_PREFIX = 'urn:skolluft:problem:'

export interface ProblemIssue {
  /** Dotted path of the offending parameter (`metric`, `from`); empty for the request as a whole. */
  readonly path: string
  readonly message: string
}

export interface ProblemInit {
  readonly status: number
  readonly code: string
  readonly title: string
  readonly detail: string
  readonly errors?: readonly ProblemIssue[]
  /** Extra response headers, e.g. `WWW-Authenticate` on 401 or `Allow` on 405. */
  readonly headers?: Readonly<Record<string, string>>
  readonly cause?: unknown
}

export class HttpProblem extends Error {
  readonly status: number
  readonly code: string
  readonly title: string
  readonly detail: string
  readonly errors: readonly ProblemIssue[] | undefined
  readonly headers: Readonly<Record<string, string>>

  constructor(init: ProblemInit) {
    super(init.detail, init.cause === undefined ? undefined : { cause: init.cause })
    this.name = 'HttpProblem'
    this.status = init.status
    this.code = init.code
    this.title = init.title
    this.detail = init.detail
    this.errors = init.errors
    this.headers = init.headers ?? {}
  }
}

export function notFoundProblem(detail: string, code = 'not_found'): HttpProblem {
  return new HttpProblem({ status: 404, code, title: 'Not found', detail })
}

/** Turns zod issues into a 400 that names every bad parameter and why. */
export function validationProblem(error: z.ZodError, where: string): HttpProblem {
  const errors = error.issues.map((issue) => ({ path: issue.path.map(String).join('.'), message: issue.message }))
  const detail = errors.map((e) => (e.path ? `${e.path}: ${e.message}` : e.message)).join('; ')
  return new HttpProblem({
    status: 400,
    code: 'invalid_request',
    title: `Invalid ${where}`,
    detail: `invalid ${where}: ${detail}`,
    errors,
  })
}

export function methodNotAllowed(allowed: readonly string[]): RequestHandler {
  const allow = allowed.join(', ')
  return (req) => {
    throw new HttpProblem({
      status: 405,
      code: 'method_not_allowed',
      title: 'Method not allowed',
      detail: `${req.method} is not supported here; use ${allow}`,
      headers: { Allow: allow },
    })
  }
}

/** Final handler for paths no route matched. */
export const unmatchedRoute: RequestHandler = (req) => {
  throw notFoundProblem(`no resource at ${req.method} ${req.path}`)
}

/**
 * Errors raised by express's own middleware (body-parser: `entity.too.large`, `entity.parse.failed`)
 * carry a 4xx `status` and `expose: true` when their message is safe to show the client.
 */
const ExposedHttpError = z.object({
  status: z.number().int().min(400).max(499),
  expose: z.literal(true),
  type: z.string().optional(),
  message: z.string(),
})

const BODY_ERROR_CODES: Readonly<Record<string, string>> = {
  'entity.too.large': 'payload_too_large',
  'entity.parse.failed': 'bad_json',
}

function toProblem(error: unknown): HttpProblem | null {
  if (error instanceof HttpProblem) return error
  if (error instanceof z.ZodError) return validationProblem(error, 'request')
  const exposed = ExposedHttpError.safeParse(error)
  if (exposed.success) {
    const { status, type, message } = exposed.data
    return new HttpProblem({
      status,
      code: (type && BODY_ERROR_CODES[type]) ?? 'bad_request',
      title: status === 413 ? 'Payload too large' : 'Bad request',
      detail: message,
      cause: error,
    })
  }
  return null
}

export function sendProblem(req: Request, res: Response, problem: HttpProblem): void {
  res.status(problem.status)
  res.set(problem.headers)
  // Errors describe one request at one moment; never let a cache keep them.
  res.set('Cache-Control', 'no-store')
  res.type(PROBLEM_CONTENT_TYPE)
  res.json({
    type: `${PROBLEM_TYPE_PREFIX}${problem.code}`,
    title: problem.title,
    status: problem.status,
    detail: problem.detail,
    instance: req.originalUrl.split('?')[0],
    code: problem.code,
    ...(problem.errors ? { errors: problem.errors } : {}),
  })
}

/** The one error middleware: known problems go out as they are; anything else is a logged 500. */
export function problemHandler(log: Logger): ErrorRequestHandler {
  return (error: unknown, req, res, next) => {
    if (res.headersSent) {
      // Too late for a problem document; express closes the connection.
      next(error)
      return
    }
    const problem = toProblem(error)
    if (problem) {
      sendProblem(req, res, problem)
      return
    }
    log.error({ err: error, method: req.method, path: req.path }, 'request failed')
    sendProblem(
      req,
      res,
      new HttpProblem({
        status: 500,
        code: 'internal',
        title: 'Internal server error',
        detail: 'the server could not complete the request; the error has been logged',
      }),
    )
  }
}
