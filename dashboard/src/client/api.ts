/// <reference lib="dom" />
import type * as z from 'zod/mini'
import { type ProblemIssue, ProblemSchema, problemIssues } from './schemas.ts'

/** A request that hangs longer than this is given up, so the page can offer to try again. */
export const FETCH_TIMEOUT_MS = 15_000

export type ApiErrorCode = 'network' | 'http' | 'invalid'

export class ApiError extends Error {
  readonly code: ApiErrorCode
  /** HTTP status, null when no response arrived. */
  readonly status: number | null
  /** The problem's `code` (RFC 9457 extension member the API sets), if any. */
  readonly problem: string | null
  /** The invalid parameters a 400 problem names (its `errors` member); empty otherwise. */
  readonly errors: readonly ProblemIssue[]

  constructor(
    code: ApiErrorCode,
    message: string,
    status: number | null,
    problem: string | null,
    options: { readonly cause?: unknown; readonly errors?: readonly ProblemIssue[] } = {},
  ) {
    super(message, { cause: options.cause })
    this.name = 'ApiError'
    this.code = code
    this.status = status
    this.problem = problem
    this.errors = options.errors ?? []
  }
}

export interface Api {
  get<T>(path: string, schema: z.ZodMiniType<T>): Promise<T>
  /** POST with a JSON body; `csrf` goes in X-CSRF-Token. A 204 (or a null schema) gives null. */
  post<T>(path: string, body: unknown, schema: z.ZodMiniType<T> | null, csrf: string | null): Promise<T | null>
  /** DELETE; `csrf` goes in X-CSRF-Token. Resolves on any 2xx (the API answers 204). */
  delete(path: string, csrf: string | null): Promise<void>
}

async function problemOf(
  res: Response,
): Promise<{ message: string; code: string | null; errors: readonly ProblemIssue[] }> {
  try {
    const parsed = ProblemSchema.safeParse(await res.json())
    if (parsed.success) {
      return {
        message: parsed.data.detail ?? parsed.data.title ?? `HTTP ${res.status}`,
        code: parsed.data.code ?? null,
        errors: problemIssues(parsed.data.errors),
      }
    }
  } catch {
    // Not JSON: the status says enough.
  }
  return { message: `HTTP ${res.status}`, code: null, errors: [] }
}

export function createApi(fetchImpl: typeof fetch = (input, init) => fetch(input, init)): Api {
  async function request(path: string, init: RequestInit): Promise<Response> {
    let res: Response
    try {
      res = await fetchImpl(path, {
        ...init,
        credentials: 'same-origin',
        signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
      })
    } catch (error) {
      throw new ApiError('network', 'no response from the server', null, null, { cause: error })
    }
    if (!res.ok) {
      const problem = await problemOf(res)
      throw new ApiError('http', problem.message, res.status, problem.code, { errors: problem.errors })
    }
    return res
  }

  async function decode<T>(res: Response, schema: z.ZodMiniType<T>, path: string): Promise<T> {
    let body: unknown
    try {
      body = await res.json()
    } catch (error) {
      throw new ApiError('invalid', `${path}: not JSON`, res.status, null, { cause: error })
    }
    const parsed = schema.safeParse(body)
    if (!parsed.success)
      throw new ApiError('invalid', `${path}: unexpected response`, res.status, null, {
        cause: parsed.error,
      })
    return parsed.data
  }

  return {
    async get(path, schema) {
      const res = await request(path, { headers: { Accept: 'application/json, application/geo+json' } })
      return decode(res, schema, path)
    },
    async post(path, body, schema, csrf) {
      const headers: Record<string, string> = { 'Content-Type': 'application/json', Accept: 'application/json' }
      if (csrf !== null) headers['X-CSRF-Token'] = csrf
      const res = await request(path, { method: 'POST', headers, body: JSON.stringify(body) })
      if (schema === null || res.status === 204) return null
      return decode(res, schema, path)
    },
    async delete(path, csrf) {
      const headers: Record<string, string> = { Accept: 'application/json' }
      if (csrf !== null) headers['X-CSRF-Token'] = csrf
      await request(path, { method: 'DELETE', headers })
    },
  }
}
