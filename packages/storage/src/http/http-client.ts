import { z } from 'zod'
import { StorageError } from '../errors.ts'

/** Where the API is and the credential a service presents (a `skolluft token create --role service` token). */
export interface HttpStoreOptions {
  /** Base URL of the API (REGISTRY_URL), e.g. `https://luft.lund.se`; a path prefix is kept (`https://host/skolluft`). */
  readonly url: string
  /** The bearer token (REGISTRY_TOKEN); never logged. */
  readonly token: string
  /** Per request; a hung connection counts as unavailable after this long. */
  readonly timeoutMs?: number
  /** For tests and proxies; default the global fetch. */
  readonly fetch?: typeof fetch
}

/**
 * One request to the API gives up after this long. The registry of a country (~10 000 devices, ~3 MB of JSON, read
 * only when it changed) arrives in well under a second on any link an ingest runs on; a stuck connection must not
 * hold acknowledgements for longer than the ingest's own back-off (ingest WRITE_RETRY_MAX_MS, 5 s) by much.
 */
export const HTTP_STORE_TIMEOUT_MS = 10_000

/** Longest error detail from the API quoted in an error message. */
const MAX_DETAIL_CHARS = 300

const Problem = z.object({ code: z.string().optional(), detail: z.string().optional() })

export interface HttpCaller {
  /** The parsed JSON answer, or undefined for 204. Throws StorageError (see `statusError`). */
  call(method: 'GET' | 'POST', path: string, body?: unknown): Promise<unknown>
}

/** Joins the API's base URL and an absolute API path, keeping a path prefix of the base. */
export function apiUrl(base: string, path: string): URL {
  const root = new URL(base)
  if (!root.pathname.endsWith('/')) root.pathname = `${root.pathname}/`
  return new URL(path.replace(/^\/+/, ''), root)
}

export function createHttpCaller(options: HttpStoreOptions): HttpCaller {
  const doFetch = options.fetch ?? fetch
  const timeoutMs = options.timeoutMs ?? HTTP_STORE_TIMEOUT_MS
  // Validated once: a bad REGISTRY_URL is a configuration error, not a failure of every request.
  apiUrl(options.url, '/')
  return {
    async call(method, path, body) {
      const url = apiUrl(options.url, path)
      let response: Response
      try {
        response = await doFetch(url, {
          method,
          headers: {
            authorization: `Bearer ${options.token}`,
            accept: 'application/json',
            ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
          signal: AbortSignal.timeout(timeoutMs),
          redirect: 'error',
        })
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error)
        throw new StorageError('STORAGE_UNAVAILABLE', `${method} ${url.origin}${url.pathname} failed: ${reason}`, {
          cause: error,
        })
      }
      if (response.status === 204) return undefined
      let text: string
      try {
        text = await response.text()
      } catch (error) {
        throw new StorageError('STORAGE_UNAVAILABLE', `${method} ${url.pathname}: the answer broke off`, {
          cause: error,
        })
      }
      if (!response.ok) throw statusError(method, url, response.status, text)
      try {
        return JSON.parse(text)
      } catch (error) {
        throw new StorageError('CORRUPT_ROW', `${method} ${url.pathname} answered ${response.status} without JSON`, {
          cause: error,
        })
      }
    },
  }
}

/**
 * What a refused request means to the caller. The request itself is wrong (400, 413, 422: a client and an API of
 * different versions): INVALID_QUERY, which the ingest does not retry. Everything else (5xx, 429, 408, and 401, 403,
 * 404: a revoked, expired or wrong token, a wrong URL) is STORAGE_UNAVAILABLE, which the ingest retries while holding
 * the device's acknowledgement: the broker keeps the telemetry until an operator fixes the credential, and nothing
 * is dropped. `skolluft ingest` checks the credential once at start, so a wrong one stops it there, loudly.
 */
export function statusError(method: string, url: URL, status: number, body: string): StorageError {
  const parsed = (() => {
    try {
      return Problem.safeParse(JSON.parse(body))
    } catch {
      return undefined
    }
  })()
  const problem = parsed?.success ? parsed.data : {}
  const detail = [problem.code, problem.detail?.slice(0, MAX_DETAIL_CHARS)].filter((p) => p !== undefined).join(': ')
  const hint =
    status === 401 || status === 403
      ? ' (REGISTRY_TOKEN must be a valid token of role service: skolluft token create --role service)'
      : status === 404
        ? ' (is REGISTRY_URL the API, and is the API of this version?)'
        : ''
  const message = `${method} ${url.pathname} answered ${status}${detail === '' ? '' : ` ${detail}`}${hint}`
  const refusedRequest = status === 400 || status === 413 || status === 422
  return new StorageError(refusedRequest ? 'INVALID_QUERY' : 'STORAGE_UNAVAILABLE', message)
}
