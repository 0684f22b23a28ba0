import { DAY_MS, DeviceId, METRICS, type Metric, type Resolution } from '@skolluft/core'
import { z } from 'zod'
import { HttpProblem, validationProblem } from './problem.ts'

/**
 * Query of `GET /api/v1/sites/:id/series` and its documented caps.
 *
 *   ?metric=pm25            required, one of METRICS
 *   &from=ISO&to=ISO        ISO 8601 date-times (Z or offset); to defaults to now, from to `to` − 24 h
 *   &every=raw|1h|1d        resolution; default 1h (validated hourly means, see core/aggregation.ts)
 *   &device=id              only this device's readings at the site
 *
 * A request never gets a silently shortened answer: a window longer than the resolution allows, or
 * one holding more than MAX_SERIES_POINTS points, is refused with a 400 that names the cap.
 */

/** Most points in one series response: ~200 kB of JSON for raw points, fine for one chart. */
export const MAX_SERIES_POINTS = 10_000

export const SERIES_RESOLUTIONS = ['raw', '1h', '1d'] as const satisfies readonly Resolution[]

/**
 * Longest window per resolution:
 * - raw: 7 days, one device at the default 60 s interval sends 10 080 readings a week, about the point cap;
 * - 1h: 400 days = 9 600 hourly points, under the point cap, and the same horizon as MAX_READING_AGE_MS;
 * - 1d: 10 years (3 653 days incl. leap days), 3 653 daily points.
 */
export const MAX_SERIES_SPAN: Readonly<Record<Resolution, { readonly ms: number; readonly label: string }>> = {
  raw: { ms: 7 * DAY_MS, label: '7 days' },
  '1h': { ms: 400 * DAY_MS, label: '400 days' },
  '1d': { ms: 3653 * DAY_MS, label: '10 years' },
}

/** Window when the client does not give `from`. */
export const DEFAULT_SERIES_SPAN_MS = DAY_MS

const isoDateTime = (name: string) =>
  z.iso.datetime({
    offset: true,
    error: `${name} must be an ISO 8601 date-time with Z or an offset, e.g. 2026-11-29T07:00:00Z`,
  })

export const SeriesQueryParams = z.strictObject(
  {
    metric: z.enum(METRICS, {
      error: (issue) =>
        `${issue.input === undefined ? 'metric is required; ' : ''}metric must be one of ${METRICS.join(', ')}`,
    }),
    from: isoDateTime('from').optional(),
    to: isoDateTime('to').optional(),
    every: z.enum(SERIES_RESOLUTIONS, { error: `every must be one of ${SERIES_RESOLUTIONS.join(', ')}` }).default('1h'),
    device: DeviceId.optional(),
  },
  {
    error: (issue) =>
      issue.code === 'unrecognized_keys' ? `unknown query parameter: ${issue.keys.join(', ')}` : undefined,
  },
)

export interface SeriesRequest {
  readonly metric: Metric
  readonly every: Resolution
  /** Inclusive, epoch ms. */
  readonly from: number
  /** Exclusive, epoch ms. */
  readonly to: number
  readonly deviceId: string | undefined
}

/** Validates the query and resolves the window; throws HttpProblem (400) on anything wrong. */
export function parseSeriesQuery(query: unknown, now: number): SeriesRequest {
  const parsed = SeriesQueryParams.safeParse(query)
  if (!parsed.success) throw validationProblem(parsed.error, 'series query')
  const { metric, every, device } = parsed.data
  const to = parsed.data.to === undefined ? now : Date.parse(parsed.data.to)
  const from = parsed.data.from === undefined ? to - DEFAULT_SERIES_SPAN_MS : Date.parse(parsed.data.from)
  if (from >= to) {
    const message = `from (${new Date(from).toISOString()}) must be before to (${new Date(to).toISOString()})`
    throw new HttpProblem({
      status: 400,
      code: 'invalid_request',
      title: 'Invalid series query',
      detail: `invalid series query: ${message}`,
      errors: [{ path: 'from', message }],
    })
  }
  const cap = MAX_SERIES_SPAN[every]
  if (to - from > cap.ms) {
    const days = ((to - from) / DAY_MS).toFixed(1)
    const coarser = every === 'raw' ? ' or use every=1h' : every === '1h' ? ' or use every=1d' : ''
    throw new HttpProblem({
      status: 400,
      code: 'span_too_long',
      title: 'Time span too long',
      detail:
        `every=${every} allows at most ${cap.label} between from and to (requested ${days} days); ` +
        `split the window into consecutive requests of at most ${cap.label}${coarser}`,
    })
  }
  return { metric, every, from, to, deviceId: device }
}

/** The 400 for a window that holds more points than MAX_SERIES_POINTS. */
export function seriesTooLargeProblem(every: Resolution): HttpProblem {
  const coarser = every === 'raw' ? ', or use every=1h' : ''
  return new HttpProblem({
    status: 400,
    code: 'series_too_large',
    title: 'Series too large',
    detail:
      `the series has more than ${MAX_SERIES_POINTS} points, the cap per request; ` +
      `split from–to into shorter consecutive windows (e.g. halves), or add device=<id> for one device${coarser}`,
  })
}
