import { type Principal, SiteId, sitesFor } from '@skolluft/core'
import { type IncidentComment, IncidentId, type IncidentRecord, MAX_COMMENT_CHARS } from '@skolluft/storage'
import { type Request, Router } from 'express'
import { z } from 'zod'
import { actorOf, audit } from '../auth/audit.ts'
import { requirePermission, requireSitePermission } from '../auth/authenticate.ts'
import { cacheNever } from '../http-headers.ts'
import type { ApiContext } from '../options.ts'
import { HttpProblem, methodNotAllowed, notFoundProblem, validationProblem } from '../problem.ts'

/** Most incidents in one response (the same cap as the reject log and the audit log). */
export const MAX_BREACHES_LIMIT = 1_000
export const DEFAULT_BREACHES_LIMIT = 100

export const BREACH_STATES = ['open', 'closed', 'all'] as const

const isoDateTime = (name: string) =>
  z.iso.datetime({
    offset: true,
    error: `${name} must be an ISO 8601 date-time with Z or an offset, e.g. 2026-11-29T07:00:00Z`,
  })

/** `GET /breaches` query. `from`/`to`: incidents overlapping [from, to) (BreachStore.listIncidents). */
export const BreachesQuery = z.strictObject(
  {
    site: SiteId.optional(),
    state: z.enum(BREACH_STATES, { error: `state must be one of ${BREACH_STATES.join(', ')}` }).default('all'),
    from: isoDateTime('from').optional(),
    to: isoDateTime('to').optional(),
    limit: z.coerce
      .number({ error: 'limit must be a whole number' })
      .int('limit must be a whole number')
      .min(1, 'limit must be at least 1')
      .max(MAX_BREACHES_LIMIT, `limit must be at most ${MAX_BREACHES_LIMIT}`)
      .default(DEFAULT_BREACHES_LIMIT),
  },
  {
    error: (issue) =>
      issue.code === 'unrecognized_keys' ? `unknown query parameter: ${issue.keys.join(', ')}` : undefined,
  },
)

/** `POST /breaches/:id/comments` body; the same limits as storage's IncidentComment, checked here for a 400. */
export const CommentBody = z.strictObject({
  text: z
    .string({ error: 'text must be a string' })
    .refine((t) => t.trim().length > 0, { message: 'text is empty' })
    .refine((t) => [...t].length <= MAX_COMMENT_CHARS, {
      message: `text is over ${MAX_COMMENT_CHARS} characters`,
    }),
})

const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString())

const IsoTime = z.iso.datetime()
/** One incident as the API sends it (documented in openapi.ts from this schema). */
export const BreachResponse = z.object({
  id: z.string(),
  site: z.string(),
  pollutant: z.string(),
  rule: z.string(),
  profile: z.object({ id: z.string(), version: z.string() }),
  severity: z.string(),
  /** µg/m³ */
  threshold: z.number(),
  start: IsoTime,
  end: IsoTime.nullable(),
  opened_at: IsoTime,
  closed_at: IsoTime.nullable(),
  peak: z.number(),
  peak_at: IsoTime,
  escalations: z.array(z.object({ level: z.number(), at: IsoTime, value: z.number() })),
  retrospective: z.boolean(),
  /** `by` is null for anonymous callers (public map): who acknowledged is not public. */
  acknowledged: z.object({ at: IsoTime, by: z.string().nullable() }).nullable(),
  /** Set when late data showed the incident did not happen; only GET /breaches/{id} returns such incidents. */
  withdrawn_at: IsoTime.nullable(),
})
export const BreachComment = z.object({ at: IsoTime, actor: z.string(), text: z.string() })
export const BreachListResponse = z.object({ incidents: z.array(BreachResponse) })
/** `comments` is absent for anonymous callers: staff notes are not public. */
export const BreachDetailResponse = BreachResponse.extend({ comments: z.array(BreachComment).optional() })

export function publicIncident(r: IncidentRecord, principal: Principal): z.infer<typeof BreachResponse> {
  return {
    id: r.id,
    site: r.siteId,
    pollutant: r.pollutant,
    rule: r.ruleId,
    profile: { id: r.profileId, version: r.profileVersion },
    severity: r.severity,
    threshold: r.threshold,
    start: new Date(r.start).toISOString(),
    end: iso(r.end),
    opened_at: new Date(r.openedAt).toISOString(),
    closed_at: iso(r.closedAt),
    peak: r.peak,
    peak_at: new Date(r.peakAt).toISOString(),
    escalations: r.escalations.map((e) => ({ level: e.level, at: new Date(e.at).toISOString(), value: e.value })),
    retrospective: r.retrospective,
    acknowledged:
      r.acknowledgedAt === null
        ? null
        : {
            at: new Date(r.acknowledgedAt).toISOString(),
            by: principal.kind === 'anonymous' ? null : r.acknowledgedBy,
          },
    withdrawn_at: iso(r.withdrawnAt),
  }
}

function publicComment(c: IncidentComment): z.infer<typeof BreachComment> {
  return { at: new Date(c.at).toISOString(), actor: c.actor, text: c.text }
}

/** Newest start first; equal starts keep the store's order (newest created first within one site). */
function byStartDesc(a: IncidentRecord, b: IncidentRecord): number {
  return b.start - a.start
}

/**
 * Breach incidents (issue 4). Reading them is part of the map (map:read on the incident's site; a principal
 * sees their own sites' incidents unless the map is public); acknowledging and commenting needs
 * breaches:manage (admin, staff) and is audited.
 *   GET  /breaches?site=&state=open|closed|all&from=&to=&limit=   newest first
 *   GET  /breaches/:id                    the incident and its comments
 *   POST /breaches/:id/acknowledge        → the incident (a second acknowledgement keeps the first)
 *   POST /breaches/:id/comments {text}    → 201 the comment
 */
export function breachesRouter(ctx: ApiContext): Router {
  const { storage, clock, options } = ctx
  const router = Router()

  async function incidentById(id: unknown): Promise<IncidentRecord | undefined> {
    const parsed = IncidentId.safeParse(id)
    return parsed.success ? storage.breaches.getIncident(parsed.data) : undefined
  }

  function notFound(id: unknown): HttpProblem {
    return notFoundProblem(`no breach incident with id ${JSON.stringify(id)}`, 'breach_not_found')
  }

  /**
   * The incident if `principal` may read it. Unknown and invisible answer the same 404, so that a caller who
   * may not see a site cannot learn whether it had a breach.
   */
  async function visibleIncident(req: Request, principal: Principal): Promise<IncidentRecord> {
    const incident = await incidentById(req.params.id)
    const sites = sitesFor(principal, 'map:read', options)
    if (incident === undefined || (sites !== 'all' && !sites.has(incident.siteId))) {
      throw notFound(req.params.id)
    }
    return incident
  }

  /** For changes: the caller must hold breaches:manage first, so that a refusal says nothing about the id. */
  async function manageableIncident(
    req: Request,
    what: string,
  ): Promise<{ principal: Principal; incident: IncidentRecord }> {
    const principal = requirePermission(req, ctx, 'breaches:manage', what)
    // Managing needs reading too: a token scoped to breaches:manage alone sees (and changes) nothing.
    const incident = await visibleIncident(req, principal)
    requireSitePermission(req, ctx, 'breaches:manage', incident.siteId, what)
    return { principal, incident }
  }

  router
    .route('/breaches')
    .get(async (req, res) => {
      const principal = requirePermission(req, ctx, 'map:read', 'read breaches')
      const parsed = BreachesQuery.safeParse(req.query)
      if (!parsed.success) throw validationProblem(parsed.error, 'breaches query')
      const { site, state, limit } = parsed.data
      const from = parsed.data.from === undefined ? undefined : Date.parse(parsed.data.from)
      const to = parsed.data.to === undefined ? undefined : Date.parse(parsed.data.to)
      if (from !== undefined && to !== undefined && from >= to) {
        throw new HttpProblem({
          status: 400,
          code: 'invalid_request',
          title: 'Invalid breaches query',
          detail: `from (${new Date(from).toISOString()}) must be before to (${new Date(to).toISOString()})`,
          errors: [{ path: 'from', message: 'from must be before to' }],
        })
      }
      if (site !== undefined) {
        if (!(await storage.registry.getSite(site))) {
          throw notFoundProblem(`no site with id ${JSON.stringify(site)}`, 'site_not_found')
        }
        requireSitePermission(req, ctx, 'map:read', site, 'read breaches of this site')
      }
      const query = {
        state,
        limit,
        ...(from === undefined ? {} : { from }),
        ...(to === undefined ? {} : { to }),
      }
      const visible = sitesFor(principal, 'map:read', options)
      let incidents: IncidentRecord[]
      if (site !== undefined || visible === 'all') {
        incidents = await storage.breaches.listIncidents({ ...query, ...(site === undefined ? {} : { siteId: site }) })
      } else {
        // A site-bound caller: one query per own site (a principal has a few), merged newest first.
        const perSite = await Promise.all(
          [...visible].sort().map((siteId) => storage.breaches.listIncidents({ ...query, siteId })),
        )
        incidents = perSite.flat().sort(byStartDesc).slice(0, limit)
      }
      cacheNever(res)
      res.json({ incidents: incidents.map((r) => publicIncident(r, principal)) })
    })
    .all(methodNotAllowed(['GET', 'HEAD']))

  router
    .route('/breaches/:id')
    .get(async (req, res) => {
      const principal = requirePermission(req, ctx, 'map:read', 'read breaches')
      const incident = await visibleIncident(req, principal)
      const comments =
        principal.kind === 'anonymous'
          ? undefined
          : (await storage.breaches.listComments(incident.id)).map(publicComment)
      cacheNever(res)
      res.json({ ...publicIncident(incident, principal), ...(comments === undefined ? {} : { comments }) })
    })
    .all(methodNotAllowed(['GET', 'HEAD']))

  router
    .route('/breaches/:id/acknowledge')
    .post(async (req, res) => {
      const { principal, incident } = await manageableIncident(req, 'acknowledge breaches')
      const actor = actorOf(principal)
      const first = incident.acknowledgedAt === null
      await storage.breaches.acknowledge(incident.id, actor, clock())
      const updated = await storage.breaches.getIncident(incident.id)
      if (updated === undefined) throw new Error(`incident ${incident.id} vanished while being acknowledged`)
      await audit(ctx, actor, 'breach.acknowledge', incident.id, { site: incident.siteId, first })
      cacheNever(res)
      res.json(publicIncident(updated, principal))
    })
    .all(methodNotAllowed(['POST']))

  router
    .route('/breaches/:id/comments')
    .post(async (req, res) => {
      const { principal, incident } = await manageableIncident(req, 'comment on breaches')
      const parsed = CommentBody.safeParse(req.body)
      if (!parsed.success) throw validationProblem(parsed.error, 'comment')
      const actor = actorOf(principal)
      const comment = await storage.breaches.addComment(incident.id, actor, clock(), parsed.data.text)
      // The text may name people or pupils; the audit log keeps only that a comment was made and its size.
      await audit(ctx, actor, 'breach.comment', incident.id, {
        site: incident.siteId,
        chars: [...parsed.data.text].length,
      })
      cacheNever(res)
      res.status(201).json(publicComment(comment))
    })
    .all(methodNotAllowed(['POST']))

  return router
}
