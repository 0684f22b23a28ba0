import type {
  AggregatePoint,
  Device,
  Metric,
  MetricValues,
  Permission,
  Placement,
  RejectCode,
  Role,
  Site,
  SiteInput,
} from '@skolluft/core'
import { EAQI_POLLUTANTS, SEVERITIES, SiteId, ThresholdProfile, ThresholdRule } from '@skolluft/core'
import { z } from 'zod'

/**
 * The storage interface every backend implements (embedded SQLite now, InfluxDB 2 for readings later).
 * Callers never see SQL or line protocol. All methods are async so that a networked backend fits
 * without changing callers; the SQLite implementation resolves right after its commit (writes issued in the
 * same event-loop turn share one commit).
 *
 * Contract (checked by the shared contract tests in contract-suite.ts):
 * - Readings are idempotent on (deviceId, ts): writing the same reading twice stores it once.
 *   The first stored values win; a later write with the same key is counted as a duplicate.
 * - Raw readings are stored unmodified and never rewritten.
 * - A write resolves only after the readings are durable (committed); until then the caller must
 *   not acknowledge them to the device.
 * - Hourly aggregates are updated in the same commit as the raw readings, including for late data.
 */
export interface StoredReading {
  readonly deviceId: string
  /** Site where the device stood at `ts` (from the placement history); null if it stood nowhere. */
  readonly siteId: string | null
  /** Measurement time, epoch ms UTC. */
  readonly ts: number
  readonly seq: number | null
  readonly values: MetricValues
  /** When the platform received it, epoch ms. */
  readonly receivedAt: number
  /** Samples the device is expected to send per hour (3600 / interval); used for coverage. */
  readonly expectedPerHour: number
}

export interface WriteResult {
  readonly inserted: number
  /** Readings whose (deviceId, ts) was already stored. */
  readonly duplicates: number
}

export interface RawPoint {
  /** ISO 8601 UTC. */
  readonly t: string
  readonly value: number
  readonly deviceId: string
}

export interface SeriesQuery {
  readonly siteId?: string
  readonly deviceId?: string
  readonly metric: Metric
  /** Inclusive, epoch ms. */
  readonly from: number
  /** Exclusive, epoch ms. */
  readonly to: number
  /** Most points returned; callers enforce their own documented caps. */
  readonly limit: number
}

export interface LatestReading {
  readonly deviceId: string
  readonly siteId: string | null
  /** Measurement time of the newest value (the newest of `metricTs`). */
  readonly ts: number
  readonly values: MetricValues
  /** Measurement time of each value: a metric a device stopped reporting keeps an older time. */
  readonly metricTs: Partial<Record<Metric, number>>
  readonly receivedAt: number
}

export interface ReadingStore {
  writeReadings(readings: readonly StoredReading[]): Promise<WriteResult>
  /**
   * Raw points in time order. A query names a site, a device, or both (StorageError INVALID_QUERY
   * otherwise); a site query returns readings written with that siteId, from every device.
   */
  rawSeries(query: SeriesQuery): Promise<RawPoint[]>
  /**
   * Hourly (`1h`) or UTC+1 daily (`1d`) aggregates in time order, with n, coverage and validity.
   * `1h` returns the hours overlapping [from, to); `1d` the days from the one containing `from`, built from
   * the hours before `to`. A site's expected samples add up over the devices that measured there.
   */
  aggregateSeries(query: SeriesQuery & { readonly every: '1h' | '1d' }): Promise<AggregatePoint[]>
  /**
   * Latest reading per device (newest `ts` wins; late data never moves it backwards).
   * Each metric keeps its own newest value, so a device that sends PM and NO2 in separate
   * messages still shows both.
   */
  latestByDevice(): Promise<LatestReading[]>
  /**
   * Latest per site, merged over the devices currently at the site whose newest reading was taken there
   * (right after a move the new site shows nothing measured at the old one); newest value per metric wins.
   */
  latestBySite(): Promise<Map<string, LatestReading>>
  countReadings(filter?: { readonly deviceId?: string; readonly siteId?: string }): Promise<number>
  /**
   * Readings per device over the hours whose start lies in [from, to) (so `from` and `to` are meant to be
   * hour-aligned), from the hourly aggregates: per device-hour the largest sample count of any metric (one
   * reading usually carries several metrics), summed over the hours. Devices without readings are absent.
   * Feeds the 24 h coverage of device health.
   */
  sampleCounts(range: { readonly from: number; readonly to: number }): Promise<Map<string, number>>
  /**
   * Every site's hourly aggregate of one metric, for the hours overlapping [from, to), ordered by siteId then
   * t. A site combines its devices as `aggregateSeries` does (samples and expected samples add up over the
   * devices that measured the metric there). Hours without a sample of the metric are absent. Readings that
   * belong to no site are left out.
   */
  hourlyBySite(query: { readonly metric: Metric; readonly from: number; readonly to: number }): Promise<SiteHour[]>
}

/** One site's hourly aggregate of one metric (see `ReadingStore.hourlyBySite`). */
export interface SiteHour {
  readonly siteId: string
  /** Hour start, epoch ms UTC. */
  readonly t: number
  readonly mean: number
  /** Samples in the hour, over all devices at the site. */
  readonly n: number
  /** At least 75 % of the expected samples arrived (as `AggregatePoint.valid`). */
  readonly valid: boolean
}

export interface NewDevice {
  readonly id: string
  readonly model: string
  readonly sensors: readonly Metric[]
  readonly intervalS: number
  /** scrypt hash from @skolluft/runtime hashSecret; the plain secret is never stored. */
  readonly secretHash: string
  readonly placement: Omit<Placement, 'deviceId' | 'to'>
}

export interface DeviceRecord extends Device {
  readonly secretHash: string
  readonly placements: readonly Placement[]
}

export interface ServiceAccount {
  readonly username: string
  readonly secretHash: string
  /** What the account may do on the broker. */
  readonly role: 'ingest' | 'api' | 'sim' | 'admin'
}

export interface RegistryStore {
  /**
   * Validates, then inserts new sites and updates existing ones by id; never duplicates.
   * `updated` counts existing sites whose stored fields actually changed.
   */
  upsertSites(sites: readonly SiteInput[]): Promise<{ inserted: number; updated: number }>
  listSites(): Promise<Site[]>
  getSite(id: string): Promise<Site | undefined>
  addDevice(device: NewDevice, now: number): Promise<DeviceRecord>
  getDevice(id: string): Promise<DeviceRecord | undefined>
  listDevices(): Promise<DeviceRecord[]>
  /** Marks the device revoked; it can no longer connect. Returns false if unknown. */
  revokeDevice(id: string, now: number): Promise<boolean>
  /** Ends the current placement at `from` and starts a new one. */
  moveDevice(id: string, placement: Omit<Placement, 'deviceId' | 'to'>): Promise<DeviceRecord>
  /** Replaces a device's secret hash (credential rotation). */
  setDeviceSecret(id: string, secretHash: string): Promise<boolean>
  /** Records the reading interval the device was configured for (drives expected counts). False if unknown. */
  setDeviceInterval(id: string, intervalS: number): Promise<boolean>
  upsertServiceAccount(account: ServiceAccount): Promise<void>
  getServiceAccount(username: string): Promise<ServiceAccount | undefined>
  /**
   * Increases on every change to devices, placements, accounts or sites; lets other processes notice
   * changes cheaply.
   */
  revision(): Promise<number>
}

export interface RejectRecord {
  readonly at: number
  readonly deviceId: string | null
  readonly topic: string
  readonly code: RejectCode
  readonly message: string
  /** Index of the reading in a batch, when the rejection concerns one reading. */
  readonly index: number | null
  /** Identifies the MQTT message the rejection came from (e.g. a hash of topic and payload); optional. */
  readonly messageKey?: string | null
}

export interface RejectCount {
  readonly deviceId: string | null
  readonly code: RejectCode
  readonly count: number
  readonly lastAt: number
}

/** Rows the reject log keeps; older entries roll off (their totals stay in `counts`). */
export const REJECT_LOG_CAPACITY = 10_000

/** Bounded log of rejected telemetry, readable by operators; counts are kept even after entries roll off. */
export interface RejectLog {
  /**
   * Appends rejections and counts them. With `redelivery` (the broker sent the message again, MQTT DUP
   * flag), rejections whose messageKey is already in the log are skipped, so a message handled before a
   * crash is not counted twice; identical messages that a device really sent twice are both counted.
   */
  record(rejects: readonly RejectRecord[], options?: { readonly redelivery?: boolean }): Promise<void>
  /** Newest first. */
  list(query: { readonly limit: number; readonly deviceId?: string }): Promise<RejectRecord[]>
  counts(): Promise<RejectCount[]>
}

/** A person who logs in to the dashboard or API. */
export interface UserRecord {
  /** `usr_` + random, chosen by the store unless the caller passes one. */
  readonly id: string
  /** The login name, stored lower-case; unique regardless of case. */
  readonly email: string
  readonly name: string | null
  readonly role: Role
  /** Bound sites (principals), sorted, without duplicates. */
  readonly sites: string[]
  /** scrypt hash from @skolluft/runtime hashSecret; null = no password login (not set yet). */
  readonly passwordHash: string | null
  readonly createdAt: number
  /** Set = the user can no longer log in (users are disabled rather than deleted, so audit entries keep meaning). */
  readonly disabledAt: number | null
}

export type NewUser = Omit<UserRecord, 'id' | 'sites' | 'createdAt' | 'disabledAt'> & {
  /** Normally left out: the store generates `usr_` + random. */
  readonly id?: string
  readonly sites: readonly string[]
}

export interface UserPatch {
  readonly role?: Role
  readonly sites?: readonly string[]
  readonly name?: string | null
  readonly passwordHash?: string | null
  readonly disabledAt?: number | null
}

/** A bearer token for the API (`skl_<id>_<secret>`); only the secret's hash is stored. */
export interface ApiTokenRecord {
  /** Chosen by the caller (it is part of the token the caller hands out). */
  readonly id: string
  readonly name: string
  readonly role: Role
  /** What the token may do (intersected with its role's permissions by the caller). */
  readonly scopes: Permission[]
  /** Bound sites, sorted, without duplicates. */
  readonly sites: string[]
  /** The user the token was issued to, if any. */
  readonly userId: string | null
  readonly secretHash: string
  readonly createdAt: number
  readonly expiresAt: number | null
  readonly revokedAt: number | null
  readonly lastUsedAt: number | null
}

export type NewApiToken = Omit<ApiTokenRecord, 'scopes' | 'sites' | 'revokedAt' | 'lastUsedAt'> & {
  readonly scopes: readonly Permission[]
  readonly sites: readonly string[]
}

/** A logged-in browser session (cookie). Valid while `now < expiresAt`; the caller checks that. */
export interface SessionRecord {
  /** Chosen by the caller. */
  readonly id: string
  readonly userId: string
  readonly secretHash: string
  readonly csrfToken: string
  readonly createdAt: number
  readonly expiresAt: number
  readonly lastSeenAt: number
}

export interface AuditEntry {
  /** Grows with every entry; the paging key of `listAudit`. */
  readonly id: number
  readonly at: number
  /** Who did it: a user id, a token id, or e.g. 'cli'. */
  readonly actor: string
  /** What, e.g. 'user.create'. */
  readonly action: string
  /** The object acted on (a user or token id), if any. */
  readonly target: string | null
  /** JSON-serialisable details; never secrets. */
  readonly detail: Record<string, unknown>
}

/**
 * Users, API tokens, sessions and the audit log. None of these changes moves the registry revision (that
 * one wakes the MQTT gateway, which does not care about people).
 */
export interface AccessStore {
  /**
   * Adds a user; the email is stored lower-case. StorageError CONFLICT if a user with that email (in any
   * case) or id exists, INVALID_USER for a malformed email, role or site id, UNKNOWN_SITE for a site that
   * does not exist.
   */
  addUser(user: NewUser, now: number): Promise<UserRecord>
  getUser(id: string): Promise<UserRecord | undefined>
  /** Case-insensitive. */
  getUserByEmail(email: string): Promise<UserRecord | undefined>
  /** Sorted by email; disabled users included. */
  listUsers(): Promise<UserRecord[]>
  /** Changes the given fields (`sites` replaces the list); undefined if the user does not exist. */
  updateUser(id: string, patch: UserPatch): Promise<UserRecord | undefined>
  /** Users that are not disabled, of one role or of all. */
  countUsers(role?: Role): Promise<number>

  /** StorageError CONFLICT if the id exists, UNKNOWN_USER if the user does not. */
  createSession(session: SessionRecord): Promise<void>
  /** Returned even when expired: the caller compares `expiresAt` with its clock. */
  getSession(id: string): Promise<SessionRecord | undefined>
  /** False if the session does not exist. */
  touchSession(id: string, lastSeenAt: number, expiresAt: number): Promise<boolean>
  deleteSession(id: string): Promise<boolean>
  /** Logs a user out everywhere; returns how many sessions ended. */
  deleteUserSessions(userId: string): Promise<number>
  /** Removes sessions with `expiresAt <= now`; returns how many. */
  deleteExpiredSessions(now: number): Promise<number>

  /**
   * StorageError CONFLICT if the id exists, UNKNOWN_USER if `userId` names no user, INVALID_TOKEN for an
   * unknown role or scope or a malformed site id, UNKNOWN_SITE for a site that does not exist.
   */
  createToken(token: NewApiToken): Promise<ApiTokenRecord>
  getToken(id: string): Promise<ApiTokenRecord | undefined>
  /** Ordered by createdAt (then id); revoked and expired tokens included. */
  listTokens(): Promise<ApiTokenRecord[]>
  /** Marks the token revoked (a second revoke keeps the first time). False if unknown. */
  revokeToken(id: string, now: number): Promise<boolean>
  /** Records a use. False if unknown. */
  touchToken(id: string, now: number): Promise<boolean>

  appendAudit(entry: Omit<AuditEntry, 'id'>): Promise<AuditEntry>
  /** Newest first; `beforeId` pages on from the last id of the previous page. */
  listAudit(query: { readonly limit: number; readonly beforeId?: number }): Promise<AuditEntry[]>
}

/** `inc_` + random (the store uses a UUID); URL-safe, so the API can put it in a path. */
export const IncidentId = z
  .string()
  .regex(/^inc_[A-Za-z0-9_-]{1,60}$/, 'an incident id is inc_ followed by 1–60 letters, digits, _ or -')

/** Epoch ms. */
const EpochMs = z.number().int().min(0)

/** One escalation level an incident passed (core `Escalation`); stored as a JSON array, validated on read too. */
export const IncidentEscalation = z
  .object({
    /** The `escalateAt` level that was exceeded (µg/m³). */
    level: z.number().positive(),
    /** Start of the period whose value first exceeded it. */
    at: EpochMs,
    value: z.number().min(0),
  })
  .readonly()
export type IncidentEscalation = z.infer<typeof IncidentEscalation>
export const IncidentEscalations = z.array(IncidentEscalation).readonly()

/** What the evaluator writes (core `Incident` plus where, which rule, and under which profile version). */
const IncidentFields = z.object({
  siteId: SiteId,
  pollutant: z.enum(EAQI_POLLUTANTS),
  ruleId: ThresholdRule.shape.id,
  profileId: ThresholdProfile.shape.id,
  /** The profile version that produced the incident, so a report stays reproducible when rules change (issue 4). */
  profileVersion: ThresholdProfile.shape.version,
  severity: z.enum(SEVERITIES),
  /** The rule's value (µg/m³) when the incident was evaluated. */
  threshold: z.number().positive(),
  /** First period of the breaching run (epoch ms). */
  start: EpochMs,
  /** First period of the clearing run; null while open. */
  end: EpochMs.nullable(),
  /** Period that completed the persistence condition. */
  openedAt: EpochMs,
  /** Period that completed the clearing run; null while open. */
  closedAt: EpochMs.nullable(),
  peak: z.number().min(0),
  peakAt: EpochMs,
  escalations: IncidentEscalations,
  /** Opened by late data: recorded, not sent as a live alert. */
  retrospective: z.boolean(),
  /** Last change (epoch ms), set by the caller on save and by `acknowledge`/`withdrawIncident`. */
  updatedAt: EpochMs,
})

type IncidentShape = Pick<z.infer<typeof IncidentFields>, 'start' | 'end' | 'openedAt' | 'closedAt' | 'peakAt'>

/** Consistency of the times; the same for input and stored records. */
function checkIncidentTimes(r: IncidentShape, ctx: z.RefinementCtx): void {
  if ((r.end === null) !== (r.closedAt === null)) {
    ctx.addIssue({ code: 'custom', path: ['closedAt'], message: 'end and closedAt are both set or both null' })
  }
  if (r.openedAt < r.start) ctx.addIssue({ code: 'custom', path: ['openedAt'], message: 'openedAt is before start' })
  if (r.peakAt < r.start) ctx.addIssue({ code: 'custom', path: ['peakAt'], message: 'peakAt is before start' })
  if (r.end !== null && r.end <= r.start) {
    ctx.addIssue({ code: 'custom', path: ['end'], message: 'end is not after start' })
  }
  if (r.end !== null && r.closedAt !== null && r.closedAt < r.end) {
    ctx.addIssue({ code: 'custom', path: ['closedAt'], message: 'closedAt is before end' })
  }
}

/**
 * Input of `BreachStore.saveIncident`. Without `id` the store creates a new incident (`inc_` + random); with one
 * it inserts under that id or updates the stored incident. Acknowledgement and withdrawal are not part of it:
 * only `acknowledge` and `withdrawIncident` change them, so a re-evaluation cannot erase a staff action.
 */
export const IncidentInput = IncidentFields.extend({ id: IncidentId.optional() }).superRefine(checkIncidentTimes)
export type IncidentInput = Readonly<z.input<typeof IncidentInput>>

/** A stored breach incident: one per site, pollutant and rule, with start, peak and end (issue 4). */
export const IncidentRecord = IncidentFields.extend({
  id: IncidentId,
  /** Set = late data showed the incident did not happen (core 'withdrawn' event); kept for the record. */
  withdrawnAt: EpochMs.nullable(),
  acknowledgedAt: EpochMs.nullable(),
  /** Who acknowledged, named as in the audit log (`user:<id>`, `token:<id>`, `cli`); null until acknowledged. */
  acknowledgedBy: z.string().min(1).nullable(),
}).superRefine(checkIncidentTimes)
export type IncidentRecord = Readonly<z.infer<typeof IncidentRecord>>

/** Longest comment text, in characters (code points) (issue 4 storage brief). */
export const MAX_COMMENT_CHARS = 2000

export const IncidentComment = z.object({
  incidentId: IncidentId,
  at: EpochMs,
  /** A user id, a token id or e.g. 'cli'. */
  actor: z.string().min(1).max(256),
  text: z
    .string()
    .refine((t) => t.trim().length > 0, { message: 'comment text is empty' })
    .refine((t) => [...t].length <= MAX_COMMENT_CHARS, {
      message: `comment text is over ${MAX_COMMENT_CHARS} characters`,
    }),
})
export type IncidentComment = Readonly<z.infer<typeof IncidentComment>>

export interface IncidentQuery {
  readonly siteId?: string
  readonly ruleId?: string
  /** open = end null; closed = end set; all (default). */
  readonly state?: 'open' | 'closed' | 'all'
  /** Incidents overlapping [from, to): start < to and (end null or end > from). Epoch ms. */
  readonly from?: number
  readonly to?: number
  /** Withdrawn incidents are left out unless this is true. */
  readonly includeWithdrawn?: boolean
  /** Most incidents returned; callers enforce their own documented caps. */
  readonly limit: number
}

/**
 * Breach incidents (issue 4), with staff acknowledgements and comments. No change here moves the registry revision.
 *
 * Invariant: at most one OPEN incident (end null, not withdrawn) per (site, rule); a save that would make a second
 * one is refused with StorageError CONFLICT, also across processes (a partial unique index in SQLite).
 */
export interface BreachStore {
  /**
   * Inserts, or updates by id, and returns the stored record. StorageError INVALID_INCIDENT for a record that
   * fails validation, UNKNOWN_SITE for a site that does not exist, CONFLICT for a second open incident of the
   * same (site, rule) or for an update that changes siteId, pollutant, ruleId, profileId or profileVersion
   * (a different rule or profile version is a different incident).
   */
  saveIncident(incident: IncidentInput): Promise<IncidentRecord>
  getIncident(id: string): Promise<IncidentRecord | undefined>
  /**
   * Newest `start` first; equal starts (a regional episode opens the same day at many sites) newest-created
   * first. StorageError INVALID_QUERY for a malformed query.
   */
  listIncidents(query: IncidentQuery): Promise<IncidentRecord[]>
  /** Marks the incident withdrawn (a second call keeps the first time). False if unknown. */
  withdrawIncident(id: string, at: number): Promise<boolean>
  /** Open incidents (end null, not withdrawn) per site; sites without any are absent. */
  openCountBySite(): Promise<Map<string, number>>
  /** Records who acknowledged it (a second call keeps the first). False if unknown. */
  acknowledge(id: string, actor: string, at: number): Promise<boolean>
  /**
   * StorageError UNKNOWN_INCIDENT if the incident does not exist, INVALID_COMMENT for an empty actor or a text
   * that is blank or over MAX_COMMENT_CHARS.
   */
  addComment(incidentId: string, actor: string, at: number, text: string): Promise<IncidentComment>
  /** Oldest first (equal times in the order added); empty for an unknown incident. */
  listComments(incidentId: string): Promise<IncidentComment[]>
}

export interface Storage {
  readonly readings: ReadingStore
  readonly registry: RegistryStore
  readonly rejects: RejectLog
  readonly access: AccessStore
  readonly breaches: BreachStore
  close(): Promise<void>
}
