import type {
  AggregatePoint,
  Calibration,
  Device,
  ExportHourSums,
  ExportReading,
  Measure,
  Metric,
  MetricValues,
  NewCalibration,
  Permission,
  Placement,
  QcSample,
  RejectCode,
  Role,
  Site,
  SiteInput,
} from '@skolluft/core'
import {
  ALERT_CHANNELS,
  ALERT_KINDS,
  ALERT_LANGUAGES,
  DeviceId,
  EAQI_POLLUTANTS,
  MAX_SUBSCRIPTION_SITES,
  Measure as MeasureSchema,
  QuietHours,
  SEVERITIES,
  SiteId,
  SUBSCRIPTION_TOPICS,
  ThresholdProfile,
  ThresholdRule,
} from '@skolluft/core'
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
 * - Raw readings are stored unmodified and never rewritten (their quality flags, stored beside them, are).
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
   * One site's hourly aggregates of several metrics at once: per metric exactly what
   * `aggregateSeries({ siteId, metric, every: '1h', from, to, limit })` returns with a limit that cuts nothing
   * (every metric asked for is a key, [] without data). For reports that need five metrics of a year per site:
   * one read instead of five (SQLite: one scan of the site's hours, ~1.6 times faster than five).
   */
  siteHourly(query: SiteHourlyQuery): Promise<Map<Metric, AggregatePoint[]>>
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
  /**
   * Bulk export: every reading in [from, to) that carries one of `metrics`, in batches (at most
   * EXPORT_BATCH_ROWS readings each), ordered by site (readings without a site first, siteId null), device, time.
   * `siteIds`/`deviceIds` filter when given (undefined = all; an empty list = nothing, and `siteIds` given
   * leaves out readings without a site). Memory stays flat whatever the range: each batch is its own query
   * (keyset on the key), and the event loop gets a turn between batches. Writes may run between batches;
   * a reading committed meanwhile shows or not, depending on where the stream is.
   * Each reading carries `qc`: its flag mask (0 = none) once its device-hour is checked (see `checkQuality`), null
   * while that hour is dirty or was never checked. Which hours are unchecked is read once per (site, device) at the
   * start of its readings.
   */
  streamReadings(query: ExportQuery): AsyncIterable<readonly ExportReading[]>
  /**
   * Bulk export: each site's hourly sums per metric over the hours whose start lies in [hourStart(from), to),
   * combined over the site's devices as `aggregateSeries` does, in batches ordered by site, hour, then metric
   * (METRICS order). Hours without a sample of a metric are absent; readings without a site are left out.
   * With `deviceIds` only those devices' readings count.
   */
  streamHourly(query: ExportQuery): AsyncIterable<readonly ExportHourSums[]>
  /**
   * Quality flags (issue 5): device-hours waiting for their check, oldest first (then by device): those marked dirty
   * (a reading landed in them since their last check, or they were never checked) whose hour ended by
   * `finalBefore` (hourStart + 1 h ≤ finalBefore), at most `limit`. `after` pages on past the last entry of the
   * previous page (keyset on hourStart, deviceId), so an entry that keeps failing cannot block the ones behind it.
   */
  qualityBacklog(finalBefore: number, limit: number, after?: QualityBacklogEntry): Promise<QualityBacklogEntry[]>
  /**
   * Recomputes the quality flags around one device-hour in ONE (immediate) transaction, so a reading committed
   * meanwhile re-dirties its hour after this commit and is never lost. Late data in hour H can change the flags of
   * readings from H − `check.contextAfterMs` to H + 1 h + `check.contextBeforeMs` (the rules look that far around a
   * reading); that span, widened to whole hours and cut at the last hour that is final (ended by `finalBefore`), is
   * recomputed: the device's readings over it plus the context on both sides go to `check.run`, `qc` is written where
   * it changes (the values never), and every final hour of the span is marked checked with `check.version`.
   * Does nothing (zeros) when the device-hour is already checked with `check.version` (a backlog entry an earlier
   * call covered), or is not final. StorageError CLOSED, INVALID_QUERY (a mask that is not a non-negative safe
   * integer).
   */
  checkQuality(
    deviceId: string,
    hourStart: number,
    check: QualityCheck,
    finalBefore: number,
  ): Promise<QualityCheckResult>
  /**
   * Makes every device-hour checked with a version below `version` dirty again, so new rules recheck the history.
   * Remembers the highest version asked for: a repeat (every worker start) costs one key lookup, not a scan.
   * Returns how many device-hour rows it marked.
   */
  requireQualityVersion(version: number): Promise<number>
}

/** A device-hour waiting for its quality check (see `ReadingStore.qualityBacklog`). */
export interface QualityBacklogEntry {
  readonly deviceId: string
  /** Epoch ms, hour-aligned. */
  readonly hourStart: number
}

/** The rules `checkQuality` applies: core's checkReadings bound to one device, with its version and reach. */
export interface QualityCheck {
  /** Stored with every device-hour checked (core READING_QC_VERSION). */
  readonly version: number
  /** How far back the rules look from a reading (core QC_CONTEXT_BEFORE_MS). */
  readonly contextBeforeMs: number
  /** How far ahead the rules look from a reading (core QC_CONTEXT_AFTER_MS). */
  readonly contextAfterMs: number
  /**
   * Masks for the readings whose ts lies in [range.from, range.to), given the device's samples in time order over
   * [from − contextBeforeMs, to + contextAfterMs); ts → mask, only masks ≠ 0. Must be deterministic.
   */
  readonly run: (
    samples: readonly QcSample[],
    range: { readonly from: number; readonly to: number },
  ) => ReadonlyMap<number, number>
}

export interface QualityCheckResult {
  /** Device-hours marked checked. */
  readonly hours: number
  /** Readings whose flags were recomputed. */
  readonly checked: number
  /** Of those, readings with at least one flag. */
  readonly flagged: number
  /** Of those recomputed, readings whose stored mask changed (the rows written). */
  readonly changed: number
}

/** Filters of a bulk export stream (see `ReadingStore.streamReadings`). */
export interface ExportQuery {
  readonly siteIds?: readonly string[]
  readonly deviceIds?: readonly string[]
  readonly metrics: readonly Metric[]
  /** Inclusive, epoch ms. */
  readonly from: number
  /** Exclusive, epoch ms. */
  readonly to: number
  /**
   * Resume: start at this position of the stream's order, inclusive (the caller drops what it already has).
   * streamReadings: the reading of `deviceId` at `ts` at `siteId` (null = no site); streamHourly: the hour `ts`
   * of `siteId` (`deviceId` ignored).
   */
  readonly after?: { readonly siteId: string | null; readonly deviceId: string | null; readonly ts: number }
  /**
   * streamHourly only: one entry per device-hour instead of per site-hour, ordered by site, hour, device, then
   * metric, each with `deviceId` and the device-hour's mean RH (`rh`, when it measured RH), so corrections can
   * be applied per device.
   */
  readonly byDevice?: boolean
}

/**
 * Most readings (or site-hours) per batch of an export stream, ~1 ms of work before the event loop runs again.
 * Small enough that a batch and its formatted text die young in V8's small young generation (cli/bin/skolluft.js):
 * 5 000 promoted every batch to the old generation and halved the export rate under that setting (measured,
 * bench/export.ts: 10 million raw rows at 130 000 rows/s with 5 000, 263 000 rows/s and a 130 MB peak with 1 000).
 */
export const EXPORT_BATCH_ROWS = 1_000

/** `ReadingStore.siteHourly`: a site, the metrics (each at most once) and the span [from, to), epoch ms. */
export interface SiteHourlyQuery {
  readonly siteId: string
  readonly metrics: readonly Metric[]
  readonly from: number
  readonly to: number
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
  readonly role: 'ingest' | 'api' | 'alerts' | 'sim' | 'admin'
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

/*
 * Alerts (issue 4): alert events, subscriptions, the delivery outbox with its attempt log, in-app notifications and
 * the device health memory. The vocabularies are core's; their values are stored in the database.
 */
/** Every kind of alert event: the ones with a message (core ALERT_KINDS) and the two that are only recorded. */
const ALERT_EVENT_KINDS = [...ALERT_KINDS, 'changed', 'withdrawn'] as const
const StoredQuietHours = QuietHours

/** Longest dedupe key of an alert event, in characters. */
export const MAX_ALERT_KEY_CHARS = 200
/** Largest `data` of an event as JSON text, in characters (an alert's message data is well under 1 KB). */
export const MAX_ALERT_DATA_CHARS = 64 * 1024
/** Longest subscription target (an e-mail address is at most 254, RFC 5321; 2048 is the common practical URL limit). */
export const MAX_TARGET_CHARS = 2048
/** Longest subject (RFC 5322 §2.1.1: a header line is at most 998 characters). */
export const MAX_SUBJECT_CHARS = 998
/** Largest text, HTML or payload JSON of one outbox message; a digest of a long holiday stays far below. */
export const MAX_MESSAGE_CHARS = 1024 * 1024
/** Longest stored delivery error; longer ones are cut, not refused (SMTP puts the code first). */
export const MAX_ATTEMPT_ERROR_CHARS = 2000
/** Most ids one `markRead` call takes. */
export const MAX_MARK_READ_IDS = 1000
/** Longest device health state name. */
export const MAX_HEALTH_STATE_CHARS = 64

/** A row id (events and outbox rows): a positive integer, growing. */
const RowId = z.number().int().positive()

/**
 * An alert event: something to tell subscribers about (an incident opened, escalated, closed …; a device went
 * offline …). Appended in the same transaction as the evaluation that produced it; never updated except for
 * `fannedOutAt`.
 */
export const NewAlertEvent = z.object({
  /**
   * Unique over all events: evaluating the same data again produces the same key, and the duplicate is ignored,
   * so a re-evaluation never doubles an alert (e.g. `opened:<incidentId>`, `escalated:<incidentId>:<level>`).
   */
  key: z.string().min(1).max(MAX_ALERT_KEY_CHARS),
  kind: z.enum(ALERT_EVENT_KINDS),
  topic: z.enum(SUBSCRIPTION_TOPICS),
  siteId: SiteId.nullable(),
  deviceId: DeviceId.nullable(),
  /** Must exist when the event is stored; a new incident saved in the same `commitEvaluation` needs its id set. */
  incidentId: IncidentId.nullable(),
  severity: z.enum(SEVERITIES),
  /** The highest level: sent even in quiet hours and over the rate limit. */
  urgent: z.boolean(),
  /** False = retrospective (late data): stored for the record, never fanned out. */
  live: z.boolean(),
  /** Data time the event is about (epoch ms), e.g. the period that completed the condition. */
  at: EpochMs,
  /** What the templates need (core AlertMessageData); stored as JSON.stringify gives it, at most MAX_ALERT_DATA_CHARS. */
  data: z.unknown(),
})
export type NewAlertEvent = Readonly<z.input<typeof NewAlertEvent>>

export const AlertEventRecord = NewAlertEvent.extend({
  id: RowId,
  createdAt: EpochMs,
  /** When the fan-out turned it into outbox rows; null while pending (and forever for retrospective events). */
  fannedOutAt: EpochMs.nullable(),
})
export type AlertEventRecord = Readonly<z.infer<typeof AlertEventRecord>>

/** `sub_` + random (the store uses a UUID). */
export const SubscriptionId = z
  .string()
  .regex(/^sub_[A-Za-z0-9_-]{1,60}$/, 'a subscription id is sub_ followed by 1–60 letters, digits, _ or -')

const Target = z.string().min(1).max(MAX_TARGET_CHARS)

/** in_app has no target; e-mail and webhook need one. */
function checkTarget(s: { channel: string; target: string | null }, ctx: z.RefinementCtx): void {
  if (s.channel === 'in_app' && s.target !== null) {
    ctx.addIssue({ code: 'custom', path: ['target'], message: 'an in_app subscription has no target' })
  }
  if (s.channel !== 'in_app' && s.target === null) {
    ctx.addIssue({ code: 'custom', path: ['target'], message: `a ${s.channel} subscription needs a target` })
  }
}

const SubscriptionFields = z.object({
  userId: z.string().min(1).max(256),
  topic: z.enum(SUBSCRIPTION_TOPICS),
  channel: z.enum(ALERT_CHANNELS),
  /** E-mail address or webhook URL (checked at the API edge by core's subscription schema); null for in_app. */
  target: Target.nullable(),
  /** Stored sorted and without duplicates. */
  sites: z.union([z.literal('all'), z.array(SiteId).min(1).max(MAX_SUBSCRIPTION_SITES).readonly()]),
  /** Events below this severity are not sent (urgent ones included). */
  minSeverity: z.enum(SEVERITIES),
  language: z.enum(ALERT_LANGUAGES),
  /** Null = no quiet hours: everything is sent at once (still rate limited). */
  quietHours: StoredQuietHours.nullable(),
  createdAt: EpochMs,
})

export const NewSubscription = SubscriptionFields.extend({
  /** Normally left out: the store generates `sub_` + random. */
  id: SubscriptionId.optional(),
  /** Hash of the unsubscribe token (the plain token is never stored). */
  unsubscribeHash: z.string().min(1).max(1024),
}).superRefine(checkTarget)
export type NewSubscription = Readonly<z.input<typeof NewSubscription>>

export const SubscriptionRecord = SubscriptionFields.extend({
  id: SubscriptionId,
  /** Set = unsubscribed; kept so the outbox rows keep their meaning. */
  disabledAt: EpochMs.nullable(),
}).superRefine(checkTarget)
export type SubscriptionRecord = Readonly<z.infer<typeof SubscriptionRecord>>

/**
 * Life of an outbox row:
 * - pending: waiting for the dispatcher (`claimDue`) from `nextAttemptAt` on;
 * - sending: claimed, with a lease; a row whose lease ran out (its process crashed) is claimable again;
 * - sent / failed (gave up): final, `finishAttempt`;
 * - deferred: held back (quiet hours, rate limit) until `deliverAfter`, then gathered into a digest;
 * - digested: part of the digest row `digestId` (final);
 * - cancelled: the subscription was disabled before the row went out (final).
 * in_app rows are delivered by being stored: pending ones are stored as sent (see `fanOut`).
 */
export const OUTBOX_STATUSES = ['pending', 'sending', 'sent', 'failed', 'deferred', 'digested', 'cancelled'] as const
export type OutboxStatus = (typeof OUTBOX_STATUSES)[number]

const OutboxFields = z.object({
  subscriptionId: SubscriptionId,
  /** The subscription's user (checked). */
  userId: z.string().min(1).max(256),
  /** The subscription's channel (checked). */
  channel: z.enum(ALERT_CHANNELS),
  /** The subscription's target when the message was made (kept as it was then). */
  target: Target.nullable(),
  language: z.enum(ALERT_LANGUAGES),
  /** Not before this time (epoch ms): now when sent at once, the end of quiet hours or of the rate window when deferred. */
  deliverAfter: EpochMs,
  subject: z.string().min(1).max(MAX_SUBJECT_CHARS),
  text: z.string().max(MAX_MESSAGE_CHARS),
  html: z.string().max(MAX_MESSAGE_CHARS),
  /** The webhook body (JSON); stored as JSON.stringify gives it, at most MAX_MESSAGE_CHARS. */
  payload: z.unknown(),
})

export const NewOutboxMessage = OutboxFields.extend({
  status: z.enum(['pending', 'deferred']),
}).superRefine(checkTarget)
export type NewOutboxMessage = Readonly<z.input<typeof NewOutboxMessage>>

export const OutboxRecord = OutboxFields.extend({
  id: RowId,
  /** RFC 5322 Message-ID `<o{id}.{uuid}@skolluft>`, made at insert and never changed: a resend after a crash repeats it. */
  messageId: z.string().min(1),
  /** The event it tells about; null for a digest. */
  eventId: RowId.nullable(),
  /** The event's site; for a digest the members' site when they share one, else null. */
  siteId: SiteId.nullable(),
  status: z.enum(OUTBOX_STATUSES),
  nextAttemptAt: EpochMs,
  /** While `sending`: the claim holds until then. Null otherwise. */
  leaseUntil: EpochMs.nullable(),
  /** Delivery attempts logged (`finishAttempt`). */
  attempts: z.number().int().min(0),
  createdAt: EpochMs,
  sentAt: EpochMs.nullable(),
  lastError: z.string().nullable(),
  /** Set on `digested` rows: the digest that carried them. */
  digestId: RowId.nullable(),
  /** in_app: when the user marked it read. */
  readAt: EpochMs.nullable(),
}).superRefine(checkTarget)
export type OutboxRecord = Readonly<z.infer<typeof OutboxRecord>>

/** One delivery attempt of an outbox row, kept for staff to see. */
export const DeliveryAttempt = z.object({
  outboxId: RowId,
  at: EpochMs,
  ok: z.boolean(),
  /** Cut to MAX_ATTEMPT_ERROR_CHARS; never a secret (the caller's duty). */
  error: z.string().nullable(),
  /** Stored rounded to whole ms. */
  durationMs: z.number().min(0),
})
export type DeliveryAttempt = Readonly<z.infer<typeof DeliveryAttempt>>

/** Where `finishAttempt` moves the row: sent, back to pending for a retry, or failed (gave up). */
export const AttemptOutcome = z.discriminatedUnion('status', [
  z.object({ status: z.literal('sent') }),
  z.object({ status: z.literal('pending'), nextAttemptAt: EpochMs }),
  z.object({ status: z.literal('failed') }),
])
export type AttemptOutcome = Readonly<z.infer<typeof AttemptOutcome>>

/** One evaluation's result, stored in one transaction by `commitEvaluation`. */
export interface EvaluationCommit {
  /** Saved in order, as `BreachStore.saveIncident`. */
  readonly incidents: readonly IncidentInput[]
  /** Incidents that late data showed did not happen (as `BreachStore.withdrawIncident`; unknown id refused). */
  readonly withdrawals: readonly { readonly id: string; readonly at: number }[]
  /** Appended after the incidents; duplicate keys (stored before, or twice here) are ignored. */
  readonly events: readonly NewAlertEvent[]
  /** Stored as the events' createdAt. */
  readonly now: number
}

export interface AlertEventQuery {
  readonly incidentId?: string
  readonly siteId?: string
  /** Most events returned; callers enforce their own documented caps. */
  readonly limit: number
  /** Pages on from the last id of the previous page. */
  readonly beforeId?: number
}

export interface SubscriptionQuery {
  readonly userId?: string
  readonly topic?: (typeof SUBSCRIPTION_TOPICS)[number]
  /** Only subscriptions that cover this site (their list names it, or 'all'). */
  readonly siteId?: string
  /** Disabled subscriptions are left out unless this is true. */
  readonly includeDisabled?: boolean
}

export interface OutboxQuery {
  readonly userId?: string
  readonly status?: OutboxStatus
  /** Most rows returned; callers enforce their own documented caps. */
  readonly limit: number
  readonly beforeId?: number
}

export interface NotificationQuery {
  readonly limit: number
  readonly unreadOnly?: boolean
  readonly beforeId?: number
}

/** What the device health check remembers per device, to alert on transitions only. */
export interface DeviceHealthState {
  readonly state: string
  readonly since: number
}

/**
 * Alert events, subscriptions, the durable outbox and in-app notifications (issue 4). None of these changes moves
 * the registry revision.
 *
 * Delivery is at least once, made as close to exactly once as the channels allow: a row is claimed with a lease
 * (`claimDue`), and its attempt and new status are stored together (`finishAttempt`). If the process dies between
 * sending and `finishAttempt`, the lease runs out and the row is sent again, with the same Message-ID (receivers
 * and webhook consumers can drop the repeat by it); choose the lease longer than a send can take.
 */
export interface AlertStore {
  /**
   * ONE transaction: saves the incidents (as `BreachStore.saveIncident`), withdraws, and appends the events
   * (ignoring duplicate keys). Any refusal (invalid input, UNKNOWN_SITE/INCIDENT/DEVICE, CONFLICT) rolls back all of
   * it. Returns the saved incidents in input order and how many events were new.
   */
  commitEvaluation(change: EvaluationCommit): Promise<{ incidents: IncidentRecord[]; eventsInserted: number }>
  /** ONE transaction: appends events (duplicate keys ignored); returns how many were new. */
  appendEvents(events: readonly NewAlertEvent[], now: number): Promise<number>
  getEvent(id: number): Promise<AlertEventRecord | undefined>
  /** Newest first. StorageError INVALID_QUERY for a malformed query. */
  listEvents(query: AlertEventQuery): Promise<AlertEventRecord[]>
  /** Live events not yet fanned out, oldest first. */
  pendingFanOut(limit: number): Promise<AlertEventRecord[]>
  /**
   * ONE transaction: inserts outbox rows for a live event (at most one per (event, subscription): a repeat is
   * ignored) and sets the event's fannedOutAt (the first time kept). An empty list only marks the event.
   * in_app rows given as pending are delivered by being stored: status sent, sentAt = now; deferred ones wait
   * for the digest like any other. Returns how many rows were new. StorageError UNKNOWN_ALERT_EVENT,
   * INVALID_ALERT (a retrospective event, or a message that does not match its subscription),
   * UNKNOWN_SUBSCRIPTION.
   */
  fanOut(eventId: number, messages: readonly NewOutboxMessage[], now: number): Promise<number>

  /**
   * StorageError INVALID_SUBSCRIPTION, UNKNOWN_USER, UNKNOWN_SITE, CONFLICT (the id exists).
   */
  addSubscription(subscription: NewSubscription): Promise<SubscriptionRecord>
  getSubscription(id: string): Promise<SubscriptionRecord | undefined>
  /** Oldest first. Not limited: the fan-out needs every match; one user's list is short. */
  listSubscriptions(query?: SubscriptionQuery): Promise<SubscriptionRecord[]>
  /**
   * Unsubscribes (a second call keeps the first time) and cancels its pending and deferred outbox rows in the same
   * transaction (rows being sent finish). False if unknown.
   */
  disableSubscription(id: string, at: number): Promise<boolean>
  /** The stored hash of the unsubscribe token, to verify an unsubscribe link; undefined if unknown. */
  getUnsubscribeHash(id: string): Promise<string | undefined>

  /**
   * ONE IMMEDIATE transaction, so concurrent claimers (other connections, other processes) never get the same row:
   * rows `sending` whose lease ran out (their process crashed; oldest lease first), then rows `pending` with
   * deliverAfter ≤ now and nextAttemptAt ≤ now (oldest first), at most `limit`, become `sending` with
   * leaseUntil = now + leaseMs. in_app rows are never claimed.
   */
  claimDue(now: number, limit: number, leaseMs: number): Promise<OutboxRecord[]>
  /**
   * ONE transaction: logs the attempt (attempts + 1) and, if the row is still `sending`, moves it: sent (sentAt =
   * attempt.at), pending (retry at nextAttemptAt) or failed; lastError is the attempt's error. Returns false when
   * the row was no longer `sending` (its lease ran out and another claimer finished it): the attempt is logged,
   * the status kept. StorageError UNKNOWN_OUTBOX, INVALID_ALERT (ok must be true exactly for 'sent').
   */
  finishAttempt(id: number, attempt: Omit<DeliveryAttempt, 'outboxId'>, next: AttemptOutcome): Promise<boolean>
  /**
   * Deferred rows with deliverAfter ≤ now, at most `limit` (the oldest first), grouped per subscription (each group
   * in id order). A subscription cut off by the limit gets the rest in the next call.
   */
  dueDeferred(now: number, limit: number): Promise<Map<string, OutboxRecord[]>>
  /**
   * ONE transaction: inserts the digest row (no event; an in_app digest given as pending is stored as sent) and
   * marks the members `digested` with its id. StorageError UNKNOWN_OUTBOX, INVALID_ALERT (a member of another
   * subscription, no members), CONFLICT (a member is no longer `deferred`: another process made its digest).
   */
  createDigest(members: readonly number[], digest: NewOutboxMessage, now: number): Promise<OutboxRecord>
  /**
   * Rows to one user (of one channel, if given) that went or are going out, created in [since, ∞): status pending,
   * sending or sent (not deferred, digested, failed or cancelled); with the oldest createdAt, for the per-recipient
   * rate limit. Rows are counted when queued, so a burst fanned out at once is counted before it is sent.
   */
  recentDeliveries(
    userId: string,
    since: number,
    channel?: (typeof ALERT_CHANNELS)[number],
  ): Promise<{ count: number; oldest: number | null }>
  /** Newest first. StorageError INVALID_QUERY for a malformed query. */
  listOutbox(query: OutboxQuery): Promise<OutboxRecord[]>
  /** Oldest first (bounded by the dispatcher's retry limit). */
  listAttempts(outboxId: number): Promise<DeliveryAttempt[]>

  /** One user's in-app notifications (in_app rows, status sent), newest first. */
  listNotifications(userId: string, query: NotificationQuery): Promise<OutboxRecord[]>
  unreadCount(userId: string): Promise<number>
  /** Sets readAt on the user's unread in_app rows among `ids` (at most MAX_MARK_READ_IDS); returns how many changed. */
  markRead(userId: string, ids: readonly number[], at: number): Promise<number>

  /** Device health memory for transitions (offline / quality / recovered), per device. */
  deviceHealthStates(): Promise<Map<string, DeviceHealthState>>
  /** StorageError UNKNOWN_DEVICE, INVALID_ALERT for an empty or over-long state. */
  setDeviceHealthState(deviceId: string, state: string, since: number): Promise<void>
}

export interface CalibrationQuery {
  readonly deviceId?: string
  readonly metric?: Metric
}

/**
 * Per-device linear calibrations (issue 5; core corrections.ts, docs/corrections.md). Rows never change except
 * that `retire` sets validTo once; raw readings are never touched (corrections are applied when data is read).
 */
export interface CalibrationStore {
  /**
   * Stores a calibration as the next version for its (device, metric): 1, 2, … in creation order, also across
   * processes. The id (`cal-<n>`) is the store's. StorageError INVALID_CALIBRATION (fails core NewCalibration),
   * UNKNOWN_DEVICE.
   */
  add(calibration: NewCalibration): Promise<Calibration>
  /** Ordered by device, metric (by name), version. StorageError INVALID_QUERY for a malformed query. */
  list(query?: CalibrationQuery): Promise<Calibration[]>
  get(id: string): Promise<Calibration | undefined>
  /**
   * Ends the calibration's validity at `at` (readings with ts ≥ at no longer get it); undefined if unknown.
   * StorageError CONFLICT if it was retired already, INVALID_CALIBRATION if `at` is before its validFrom.
   */
  retire(id: string, at: number): Promise<Calibration | undefined>
}

/**
 * The catalogue of measures as stored (issue 7; core measures.ts). Revision 0 = never edited: the measures are
 * core DEFAULT_MEASURES and updatedAt/updatedBy are null. Every save increases the revision by one.
 */
export interface StoredMeasureCatalogue {
  readonly revision: number
  readonly measures: readonly Measure[]
  readonly updatedAt: number | null
  readonly updatedBy: string | null
}

/** Longest title and note of a measure taken (a title is a line; a note a paragraph or two). */
export const MAX_SITE_MEASURE_TITLE_CHARS = 200
export const MAX_SITE_MEASURE_NOTE_CHARS = 2_000

/** A measure taken at a site, as recorded (validated by `add`). */
export const NewSiteMeasure = z.strictObject({
  siteId: SiteId,
  /** The catalogue measure it carries out; null for a measure outside the catalogue. */
  measureId: MeasureSchema.shape.id.nullable(),
  title: z.string().trim().min(1).max(MAX_SITE_MEASURE_TITLE_CHARS),
  /** The UTC+1 calendar day it was taken (core measure-follow-up.ts: the after window starts on it). */
  takenOn: z.iso.date(),
  note: z.string().trim().max(MAX_SITE_MEASURE_NOTE_CHARS).nullable(),
  recordedBy: z.string().min(1).max(200),
  recordedAt: z.number().int().min(0),
})
export type NewSiteMeasure = z.input<typeof NewSiteMeasure>

export interface SiteMeasure extends z.output<typeof NewSiteMeasure> {
  /** `sm-<n>`, the store's. */
  readonly id: string
}

/**
 * The catalogue of measures and the measures taken at sites (issue 7). The catalogue is one document with a
 * revision for optimistic concurrency: two editors who loaded the same revision cannot overwrite each other.
 */
export interface MeasureStore {
  catalogue(): Promise<StoredMeasureCatalogue>
  /**
   * Replaces the catalogue when the stored revision is still `expectedRevision` (checked and written in one
   * transaction, also across processes) and returns it with revision + 1. StorageError CONFLICT when the revision
   * moved on (someone saved in between), INVALID_MEASURE when `measures` fails core MeasureCatalogue.
   */
  saveCatalogue(
    measures: readonly Measure[],
    change: { readonly expectedRevision: number; readonly by: string; readonly at: number },
  ): Promise<StoredMeasureCatalogue>
  /** StorageError INVALID_MEASURE (fails NewSiteMeasure), UNKNOWN_SITE. */
  add(measure: NewSiteMeasure): Promise<SiteMeasure>
  /** A site's measures taken, by takenOn, then in the order recorded. */
  list(siteId: string): Promise<SiteMeasure[]>
  get(id: string): Promise<SiteMeasure | undefined>
  /** False when there is no such measure. */
  delete(id: string): Promise<boolean>
}

export interface Storage {
  readonly readings: ReadingStore
  readonly registry: RegistryStore
  readonly rejects: RejectLog
  readonly access: AccessStore
  readonly breaches: BreachStore
  readonly alerts: AlertStore
  readonly calibrations: CalibrationStore
  readonly measures: MeasureStore
  close(): Promise<void>
}
