import { z } from 'zod'
import { HOUR_MS } from './aggregation.ts'
import { SiteId } from './ids.ts'

/**
 * Payloads of the platform's own events (topics.ts EVENT_KINDS). Validated on receipt like any other edge.
 */

/** Sites in one event; a larger commit is split over several events (ingest commits ≤ 500 messages at once). */
export const MAX_EVENT_SITES = 1_000
/** Hours per site in one event; a device replaying a week-long buffer touches 168. */
export const MAX_EVENT_HOURS = 24 * 31

/**
 * `aq/v1/events/readings-committed`: after a commit, which hours of which sites got new readings. The alerts
 * service re-evaluates exactly those; it also sweeps on a timer, so a lost event delays evaluation but loses
 * nothing.
 */
export const ReadingsCommitted = z.object({
  v: z.literal(1),
  /** Commit time, epoch ms. */
  at: z.number().int().min(0),
  sites: z
    .array(
      z.object({
        siteId: SiteId,
        /** Hour starts (epoch ms, whole hours). */
        hours: z
          .array(
            z
              .number()
              .int()
              .min(0)
              .refine((t) => t % HOUR_MS === 0, 'an hour start is a whole hour'),
          )
          .min(1)
          .max(MAX_EVENT_HOURS),
      }),
    )
    .min(1)
    .max(MAX_EVENT_SITES),
})
export type ReadingsCommitted = z.infer<typeof ReadingsCommitted>

/** Touched (site, hour) pairs as events within the limits above (a site with more hours gets several entries). */
export function readingsCommittedEvents(
  touched: ReadonlyMap<string, ReadonlySet<number>>,
  at: number,
): ReadingsCommitted[] {
  const entries: { siteId: string; hours: number[] }[] = []
  for (const [siteId, hours] of touched) {
    const sorted = [...hours].sort((a, b) => a - b)
    for (let i = 0; i < sorted.length; i += MAX_EVENT_HOURS) {
      entries.push({ siteId, hours: sorted.slice(i, i + MAX_EVENT_HOURS) })
    }
  }
  const events: ReadingsCommitted[] = []
  for (let i = 0; i < entries.length; i += MAX_EVENT_SITES) {
    events.push({ v: 1, at, sites: entries.slice(i, i + MAX_EVENT_SITES) })
  }
  return events
}
