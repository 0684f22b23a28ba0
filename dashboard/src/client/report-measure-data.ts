/// <reference lib="dom" />
import * as z from 'zod/mini'
import { ApiError } from './api.ts'
import { type ProblemIssue, ProblemSchema, problemIssues } from './schemas.ts'

/**
 * The catalogue of measures as the dashboard reads and writes it (issue 7; api/src/routes/measures.ts
 * `MeasureCatalogueResponse`, core measures.ts `Measure`), and who may change measures.
 */

export const CATALOGUE_PATH = '/api/v1/measures'

/**
 * Roles holding measures:write (packages/core/src/access.ts: admin and staff only, "the environment committee
 * decides on measures"). The API checks it again; this only decides which controls the page offers.
 */
const MEASURE_WRITER_ROLES: readonly string[] = ['admin', 'staff']

export function mayWriteMeasures(role: string | null | undefined): boolean {
  return role !== null && role !== undefined && MEASURE_WRITER_ROLES.includes(role)
}

const Localized = z.object({ sv: z.string(), en: z.string() })

/** One catalogue measure, leniently (the page shows what it knows; the API validates edits). */
export const CatalogueMeasureSchema = z.object({
  id: z.string(),
  name: Localized,
  description: Localized,
  metrics: z.array(z.string()),
  suggestedBy: z.array(z.object({ pattern: z.string(), evidence: Localized })),
  sources: z.array(z.object({ text: z.string(), url: z.optional(z.string()), reliability: z.string() })),
})
export type CatalogueMeasureData = z.infer<typeof CatalogueMeasureSchema>

/** `GET|PUT /measures`. `measures` stays raw: the JSON editor shows it exactly as the API sent it. */
export const CatalogueResponseSchema = z.object({
  revision: z.number(),
  source: z.string(),
  updated_at: z.nullable(z.string()),
  measures: z.array(z.unknown()),
})
export type CatalogueResponseData = z.infer<typeof CatalogueResponseSchema>

/** The measures of a catalogue response that parse; an odd item is left out of the list (not of the editor). */
export function catalogueMeasures(body: CatalogueResponseData): CatalogueMeasureData[] {
  return body.measures.flatMap((item) => {
    const parsed = CatalogueMeasureSchema.safeParse(item)
    return parsed.success ? [parsed.data] : []
  })
}

export type SaveCatalogueResult =
  | { readonly kind: 'saved'; readonly catalogue: CatalogueResponseData }
  /** 400: what the API refused, path and message each. */
  | { readonly kind: 'invalid'; readonly detail: string; readonly errors: readonly ProblemIssue[] }
  /** 412: someone saved in between; `current` is the revision now (the problem's ETag), null if not sent. */
  | { readonly kind: 'conflict'; readonly current: number | null }

/** The revision of a strong entity tag `"<n>"`, as measures.ts sends it. */
export function revisionOfEtag(etag: string | null): number | null {
  const match = etag === null ? null : /^\s*"([0-9]{1,15})"\s*$/.exec(etag)
  return match?.[1] === undefined ? null : Number(match[1])
}

/** As api.ts FETCH_TIMEOUT_MS: a save that hangs longer is given up so the page can say so. */
export const CATALOGUE_TIMEOUT_MS = 15_000

/**
 * PUT /measures with `If-Match: "<revision>"` (the revision the edit started from) and the CSRF token. The
 * dashboard's Api has no PUT; this is the one place that needs it. Other failures throw ApiError as Api does.
 */
export async function saveCatalogue(
  measures: unknown,
  revision: number,
  csrf: string | null,
  fetchImpl: typeof fetch = (input, init) => fetch(input, init),
): Promise<SaveCatalogueResult> {
  const headers: Record<string, string> = {
    'Content-Type': 'application/json',
    Accept: 'application/json',
    'If-Match': `"${revision}"`,
  }
  if (csrf !== null) headers['X-CSRF-Token'] = csrf
  let res: Response
  try {
    res = await fetchImpl(CATALOGUE_PATH, {
      method: 'PUT',
      headers,
      body: JSON.stringify(measures),
      credentials: 'same-origin',
      signal: AbortSignal.timeout(CATALOGUE_TIMEOUT_MS),
    })
  } catch (error) {
    throw new ApiError('network', 'no response from the server', null, null, { cause: error })
  }
  let body: unknown = null
  try {
    body = await res.json()
  } catch {
    // Not JSON: the status says enough.
  }
  if (res.ok) {
    const parsed = CatalogueResponseSchema.safeParse(body)
    if (!parsed.success) {
      throw new ApiError('invalid', `${CATALOGUE_PATH}: unexpected response`, res.status, null, {
        cause: parsed.error,
      })
    }
    return { kind: 'saved', catalogue: parsed.data }
  }
  const problem = ProblemSchema.safeParse(body)
  const detail = problem.success ? (problem.data.detail ?? problem.data.title ?? `HTTP ${res.status}`) : ''
  if (res.status === 412) return { kind: 'conflict', current: revisionOfEtag(res.headers.get('etag')) }
  if (res.status === 400) {
    return { kind: 'invalid', detail, errors: problem.success ? problemIssues(problem.data.errors) : [] }
  }
  throw new ApiError('http', detail === '' ? `HTTP ${res.status}` : detail, res.status, null)
}
