import * as z from 'zod/mini'

/**
 * What the dashboard reads from the API, validated where it enters the browser. zod/mini keeps the
 * bundle small (the full zod that core's schemas use would add ~450 kB). The schemas are lenient
 * where the API grows (index, health, breaches, devices may be absent) and strict where the map needs
 * a value (id, coordinates, name). A site that fails is left out, not the whole map.
 */

const Count = z.number().check(z.nonnegative())
const Values = z.record(z.string(), z.number())
const Times = z.record(z.string(), z.string())

export const LatestSchema = z.object({
  ts: z.string(),
  values: Values,
  times: z.optional(Times),
  age_s: z.number(),
})

export const IndexSchema = z.object({
  band: z.nullable(z.number()),
  pollutant: z.optional(z.nullable(z.string())),
  bands: z.optional(z.record(z.string(), z.number())),
})

export const HealthSchema = z.object({
  devices: Count,
  ok: z.optional(Count),
  offline: Count,
  suspect: Count,
  never: z.optional(Count),
  last_seen: z.optional(z.nullable(z.string())),
})

export const DeviceSchema = z.object({
  id: z.string(),
  model: z.optional(z.string()),
  sensors: z.optional(z.array(z.string())),
  interval_s: z.optional(z.number()),
  indoor: z.optional(z.boolean()),
  last_seen: z.optional(z.nullable(z.string())),
  health: z.optional(z.string()),
  coverage_24h: z.optional(z.nullable(z.number())),
})
export type DeviceData = z.infer<typeof DeviceSchema>

export const SiteFeatureSchema = z.object({
  type: z.literal('Feature'),
  id: z.string(),
  geometry: z.object({
    type: z.literal('Point'),
    coordinates: z.tuple([z.number(), z.number()], z.number()),
  }),
  properties: z.object({
    name: z.string(),
    kind: z.string(),
    address: z.optional(z.nullable(z.string())),
    locality: z.optional(z.nullable(z.string())),
    municipality: z.optional(z.nullable(z.string())),
    demo: z.optional(z.boolean()),
    latest: z.optional(z.nullable(LatestSchema)),
    index: z.optional(z.nullable(IndexSchema)),
    health: z.optional(z.nullable(HealthSchema)),
    breaches: z.optional(z.nullable(z.object({ open: Count }))),
    devices: z.optional(z.array(DeviceSchema)),
  }),
})
export type SiteFeatureData = z.infer<typeof SiteFeatureSchema>

/** The collection's outer shape; each feature is checked on its own (parseFeatures). */
export const FeatureCollectionSchema = z.object({
  type: z.literal('FeatureCollection'),
  features: z.array(z.unknown()),
})

export const UserSchema = z.object({
  id: z.string(),
  email: z.string(),
  name: z.optional(z.nullable(z.string())),
  role: z.string(),
  sites: z.optional(z.array(z.string())),
})
export type UserData = z.infer<typeof UserSchema>

export const SessionSchema = z.object({
  user: z.nullable(UserSchema),
  csrfToken: z.nullable(z.string()),
  publicMap: z.boolean(),
  /** No admin yet and the API takes the one-time setup value (POST /auth/setup); absent from older APIs. */
  setupOpen: z.optional(z.boolean()),
})
export type SessionData = z.infer<typeof SessionSchema>

export const LoginResponseSchema = z.object({ user: UserSchema, csrfToken: z.string() })

export const ConfigSchema = z.object({
  tileUrl: z.nullable(z.string()),
  tileAttribution: z.optional(z.nullable(z.string())),
  publicMap: z.optional(z.boolean()),
  center: z.tuple([z.number(), z.number()]),
  zoom: z.number(),
})
export type ConfigData = z.infer<typeof ConfigSchema>

export const RawPointSchema = z.object({ t: z.string(), value: z.number(), device: z.optional(z.string()) })
export const AggregatePointSchema = z.object({
  t: z.string(),
  mean: z.nullable(z.number()),
  min: z.optional(z.nullable(z.number())),
  max: z.optional(z.nullable(z.number())),
  n: z.optional(z.number()),
  coverage: z.optional(z.number()),
  valid: z.optional(z.boolean()),
})

export const SeriesSchema = z.object({
  site: z.string(),
  metric: z.string(),
  unit: z.optional(z.string()),
  every: z.string(),
  from: z.string(),
  to: z.string(),
  points: z.array(z.union([RawPointSchema, AggregatePointSchema])),
})
export type SeriesData = z.infer<typeof SeriesSchema>

export const ReplaySchema = z.object({
  metric: z.string(),
  from: z.string(),
  to: z.string(),
  hours: z.array(z.string()),
  sites: z.record(z.string(), z.array(z.nullable(z.number()))),
})
export type ReplayData = z.infer<typeof ReplaySchema>

export const ReadingSchema = z.object({
  site: z.string(),
  device: z.optional(z.string()),
  ts: z.string(),
  values: Values,
})
export type ReadingData = z.infer<typeof ReadingSchema>
export const ReadingBatchSchema = z.array(z.unknown())

/**
 * One breach incident (api/src/routes/breaches.ts BreachResponse). Strict where the page computes with a
 * value (times, numbers); `acknowledged.by` is null for anonymous callers. A list item that fails is left
 * out (parseIncidents), not the whole list.
 */
export const BreachSchema = z.object({
  id: z.string(),
  site: z.string(),
  pollutant: z.string(),
  rule: z.string(),
  profile: z.object({ id: z.string(), version: z.string() }),
  severity: z.string(),
  threshold: z.number(),
  start: z.string(),
  end: z.nullable(z.string()),
  opened_at: z.optional(z.string()),
  closed_at: z.optional(z.nullable(z.string())),
  peak: z.number(),
  peak_at: z.string(),
  retrospective: z.optional(z.boolean()),
  acknowledged: z.nullable(z.object({ at: z.string(), by: z.nullable(z.string()) })),
  withdrawn_at: z.optional(z.nullable(z.string())),
})
export type BreachData = z.infer<typeof BreachSchema>

/** `GET /breaches`: the outer shape; each incident is checked on its own (parseIncidents). */
export const BreachListSchema = z.object({ incidents: z.array(z.unknown()) })

export const BreachCommentSchema = z.object({ at: z.string(), actor: z.string(), text: z.string() })
export type BreachCommentData = z.infer<typeof BreachCommentSchema>

/** `GET /breaches/:id`: the incident and, for a logged-in caller, its comments (oldest first). */
export const BreachDetailSchema = z.extend(BreachSchema, { comments: z.optional(z.array(BreachCommentSchema)) })

/**
 * One in-app notification (`GET /notifications?unread=true` items, issue 4 plan section D). `siteId` links
 * it to a site on the map when set.
 */
export const NotificationSchema = z.object({
  id: z.number(),
  at: z.string(),
  subject: z.string(),
  text: z.string(),
  siteId: z.nullable(z.string()),
  read: z.boolean(),
})
export type NotificationData = z.infer<typeof NotificationSchema>

/** The outer shape; each item is checked on its own (parseNotifications). */
export const NotificationListSchema = z.object({ items: z.array(z.unknown()) })

/** Quiet hours of a subscription (core alert-policy.ts QuietHours): windows in Swedish local time, whole days off. */
export const QuietHoursSchema = z.object({
  windows: z.array(z.object({ from: z.string(), to: z.string() })),
  weekends: z.boolean(),
  holidays: z.boolean(),
  extraDays: z.optional(z.array(z.string())),
})
export type QuietHoursData = z.infer<typeof QuietHoursSchema>

/**
 * One alert subscription of the logged-in user (api/src/routes/alerts.ts SubscriptionResponse). Topic, channel
 * and severity stay strings: a newer API's values are shown as they come, not a reason to drop the list.
 */
export const SubscriptionSchema = z.object({
  id: z.string(),
  topic: z.string(),
  channel: z.string(),
  target: z.nullable(z.string()),
  sites: z.union([z.literal('all'), z.array(z.string())]),
  min_severity: z.string(),
  language: z.string(),
  quiet_hours: z.nullable(QuietHoursSchema),
  created_at: z.string(),
  disabled_at: z.optional(z.nullable(z.string())),
})
export type SubscriptionData = z.infer<typeof SubscriptionSchema>

/** `GET /subscriptions`: the outer shape; each subscription is checked on its own (parseSubscriptions). */
export const SubscriptionListSchema = z.object({ subscriptions: z.array(z.unknown()) })

/** `POST /subscriptions` → 201: the new subscription and, for a webhook, its signing secret (shown once). */
export const CreatedSubscriptionSchema = z.extend(SubscriptionSchema, { signing_secret: z.optional(z.string()) })
export type CreatedSubscriptionData = z.infer<typeof CreatedSubscriptionSchema>

/** One outbox row (api/src/routes/alerts.ts DeliveryResponse), as far as the deliveries view shows it. */
export const DeliverySchema = z.object({
  id: z.number(),
  created_at: z.string(),
  channel: z.string(),
  target: z.nullable(z.string()),
  status: z.string(),
  subject: z.string(),
  attempts: z.number(),
  last_error: z.nullable(z.string()),
  sent_at: z.optional(z.nullable(z.string())),
  user: z.optional(z.string()),
  site: z.optional(z.nullable(z.string())),
})
export type DeliveryData = z.infer<typeof DeliverySchema>

/** `GET /deliveries`: the outer shape; each row is checked on its own (parseDeliveries). */
export const DeliveryListSchema = z.object({ deliveries: z.array(z.unknown()) })

export const AttemptSchema = z.object({
  at: z.string(),
  ok: z.boolean(),
  error: z.nullable(z.string()),
  duration_ms: z.number(),
})
export type AttemptData = z.infer<typeof AttemptSchema>

/** `GET /deliveries/:id/attempts`: the attempts of one row, oldest first. */
export const DeliveryAttemptsSchema = z.object({ attempts: z.array(AttemptSchema) })

/** One invalid parameter of a 400 problem (api/src/problem.ts validationProblem). */
export const ProblemIssueSchema = z.object({ path: z.string(), message: z.string() })
export type ProblemIssue = z.infer<typeof ProblemIssueSchema>

/**
 * RFC 9457 problem details, as far as the dashboard shows them. `errors` items are checked one by one
 * (problemIssues), so one odd item does not cost the problem's code.
 */
export const ProblemSchema = z.object({
  title: z.optional(z.string()),
  detail: z.optional(z.string()),
  code: z.optional(z.string()),
  errors: z.optional(z.array(z.unknown())),
})

/** The well-formed items of a problem's `errors`. */
export function problemIssues(errors: readonly unknown[] | undefined): ProblemIssue[] {
  const out: ProblemIssue[] = []
  for (const item of errors ?? []) {
    const parsed = ProblemIssueSchema.safeParse(item)
    if (parsed.success) out.push(parsed.data)
  }
  return out
}

/** Features that pass SiteFeatureSchema, and how many did not. */
export function parseFeatures(features: readonly unknown[]): { sites: SiteFeatureData[]; invalid: number } {
  const sites: SiteFeatureData[] = []
  let invalid = 0
  for (const feature of features) {
    const parsed = SiteFeatureSchema.safeParse(feature)
    if (parsed.success) sites.push(parsed.data)
    else invalid += 1
  }
  return { sites, invalid }
}

/** Readings of a `readings` event that pass ReadingSchema; the rest are dropped. */
export function parseReadings(batch: unknown): ReadingData[] {
  const outer = ReadingBatchSchema.safeParse(batch)
  if (!outer.success) return []
  const out: ReadingData[] = []
  for (const item of outer.data) {
    const parsed = ReadingSchema.safeParse(item)
    if (parsed.success) out.push(parsed.data)
  }
  return out
}

/** Items that pass `schema`, and how many did not. */
function parseEach<T>(items: readonly unknown[], schema: z.ZodMiniType<T>): { valid: T[]; invalid: number } {
  const valid: T[] = []
  let invalid = 0
  for (const item of items) {
    const parsed = schema.safeParse(item)
    if (parsed.success) valid.push(parsed.data)
    else invalid += 1
  }
  return { valid, invalid }
}

/** Incidents of a `GET /breaches` response that pass BreachSchema (with parseable times), and how many did not. */
export function parseIncidents(items: readonly unknown[]): { incidents: BreachData[]; invalid: number } {
  const { valid, invalid } = parseEach(items, BreachSchema)
  const incidents = valid.filter(hasTimes)
  return { incidents, invalid: invalid + valid.length - incidents.length }
}

function hasTimes(b: BreachData): boolean {
  const times = [b.start, b.end, b.peak_at, b.acknowledged?.at ?? null]
  return times.every((t) => t === null || !Number.isNaN(Date.parse(t)))
}

/** Notifications that pass NotificationSchema with a parseable time, and how many did not. */
export function parseNotifications(items: readonly unknown[]): { items: NotificationData[]; invalid: number } {
  const { valid, invalid } = parseEach(items, NotificationSchema)
  const ok = valid.filter((n) => !Number.isNaN(Date.parse(n.at)))
  return { items: ok, invalid: invalid + valid.length - ok.length }
}

/** Subscriptions that pass SubscriptionSchema, and how many did not. */
export function parseSubscriptions(items: readonly unknown[]): { subscriptions: SubscriptionData[]; invalid: number } {
  const { valid, invalid } = parseEach(items, SubscriptionSchema)
  return { subscriptions: valid, invalid }
}

/** Outbox rows that pass DeliverySchema with a parseable time, and how many did not. */
export function parseDeliveries(items: readonly unknown[]): { deliveries: DeliveryData[]; invalid: number } {
  const { valid, invalid } = parseEach(items, DeliverySchema)
  const ok = valid.filter((d) => !Number.isNaN(Date.parse(d.created_at)))
  return { deliveries: ok, invalid: invalid + valid.length - ok.length }
}
