import type {
  AggregatePoint,
  Device,
  Metric,
  MetricValues,
  Placement,
  RejectCode,
  Site,
  SiteInput,
} from '@skolluft/core'

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

export interface Storage {
  readonly readings: ReadingStore
  readonly registry: RegistryStore
  readonly rejects: RejectLog
  close(): Promise<void>
}
