import { randomUUID } from 'node:crypto'
import {
  type AlertMessageData,
  HOUR_MS,
  type MetricValues,
  type Role,
  type Severity,
  type SiteInput,
} from '@skolluft/core'
import { silentLogger } from '@skolluft/runtime'
import {
  type NewAlertEvent,
  type NewSubscription,
  openSqliteStorage,
  type Storage,
  type StoredReading,
  type SubscriptionRecord,
} from '@skolluft/storage'
import { tempDir } from '@skolluft/testkit'
import { createLinks } from './links.ts'

/**
 * Shared set-up for the alerts tests (not a test file itself): a real SQLite file in a temp dir, three sites,
 * readings written the way ingest writes them, users and subscriptions, and alert events with valid message data.
 */

/** Tuesday 10 March 2026, 00:00 UTC = 01:00 in Stockholm (UTC+1: summer time starts on 29 March). */
export const T0 = Date.UTC(2026, 2, 10, 0, 0)
export const MINUTE_MS = 60_000

/** Start of hour `i` after T0. */
export const hourAt = (i: number): number => T0 + i * HOUR_MS

export const SITES: readonly SiteInput[] = [
  { id: 'school-a', name: 'Skola A', kind: 'school', municipality: 'Lund', lat: 55.7, lon: 13.19 },
  { id: 'preschool-b', name: 'Förskola B', kind: 'preschool', municipality: 'Lund', lat: 55.71, lon: 13.2 },
  { id: 'school-c', name: 'Skola C', kind: 'school', municipality: 'Lund', lat: 55.72, lon: 13.21 },
]

export const MASTER_KEY = Buffer.alloc(32, 7)
export const LINKS = createLinks('https://skolluft.test')
export const log = silentLogger()

export interface Fixture {
  readonly storage: Storage
  readonly path: string
  close(): Promise<void>
}

/** A fresh SQLite database file with the three sites. */
export async function openFixture(): Promise<Fixture> {
  const dir = await tempDir('skolluft-alerts-')
  const path = `${dir.path}/alerts.db`
  const storage = openSqliteStorage({ path })
  await storage.registry.upsertSites(SITES)
  return {
    storage,
    path,
    async close() {
      await storage.close()
      await dir.cleanup()
    },
  }
}

/** Samples per hour of the test device (a 15-minute interval keeps the tests small). */
export const SAMPLES_PER_HOUR = 4

export interface HourOptions {
  readonly siteId?: string
  readonly deviceId?: string
  /** Samples written into the hour (SAMPLES_PER_HOUR = complete, hence final at once). */
  readonly samples?: number
  readonly rh?: number
  /** Every sample exactly `pm25`: a flat line, as a stuck sensor reports. */
  readonly flat?: boolean
  /** When the platform received the readings (late data: long after the hour). */
  readonly receivedAt?: number
}

/**
 * Writes hour `t` with a PM2.5 hourly mean of exactly `pm25`. The samples go ±1 around it, so the hour is never a
 * flat line (which the quality checks would flag as a stuck sensor). Only PM2.5 (and RH when given) is written, so
 * only the PM2.5 rules can breach.
 */
export async function writeHour(storage: Storage, t: number, pm25: number, options: HourOptions = {}): Promise<void> {
  const samples = options.samples ?? SAMPLES_PER_HOUR
  const offsets = Array.from({ length: samples }, (_, i) =>
    options.flat === true || (samples % 2 === 1 && i === samples - 1) ? 0 : i % 2 === 0 ? -1 : 1,
  )
  const readings: StoredReading[] = offsets.map((offset, i) => {
    const values: MetricValues = { pm25: pm25 + offset }
    const ts = t + i * (HOUR_MS / SAMPLES_PER_HOUR)
    return {
      // One device per site: readings are idempotent on (device, time).
      deviceId: options.deviceId ?? `dev-${options.siteId ?? 'school-a'}`,
      siteId: options.siteId ?? 'school-a',
      ts,
      seq: null,
      values: options.rh === undefined ? values : { ...values, rh: options.rh },
      receivedAt: options.receivedAt ?? ts + 1_000,
      expectedPerHour: SAMPLES_PER_HOUR,
    }
  })
  await storage.readings.writeReadings(readings)
}

/** Writes consecutive hours from `first` with the given PM2.5 means. */
export async function writeHours(
  storage: Storage,
  first: number,
  means: readonly number[],
  options: HourOptions = {},
): Promise<void> {
  for (const [i, mean] of means.entries()) await writeHour(storage, first + i * HOUR_MS, mean, options)
}

export async function addUser(
  storage: Storage,
  email: string,
  role: Role,
  sites: readonly string[] = [],
): Promise<string> {
  const user = await storage.access.addUser({ email, name: null, role, sites, passwordHash: null }, T0)
  return user.id
}

export async function subscribe(
  storage: Storage,
  userId: string,
  overrides: Partial<NewSubscription> = {},
): Promise<SubscriptionRecord> {
  return storage.alerts.addSubscription({
    userId,
    topic: 'breaches',
    channel: 'email',
    target: 'someone@skola.test',
    sites: 'all',
    minSeverity: 'warning',
    language: 'sv',
    quietHours: null,
    unsubscribeHash: 'unsubscribe-hash',
    createdAt: T0,
    ...overrides,
  })
}

/** A live 'opened' breach event (PM2.5 over the EEA "poor" boundary) with valid message data. */
export function breachEvent(
  siteId: string,
  at: number,
  overrides: Partial<NewAlertEvent> & { severity?: Severity } = {},
): NewAlertEvent {
  const severity = overrides.severity ?? 'warning'
  const siteName = SITES.find((s) => s.id === siteId)?.name ?? siteId
  const data: AlertMessageData = {
    kind: 'opened',
    siteId,
    siteName,
    pollutant: 'pm25',
    ruleId: 'eea-pm25-poor',
    profileName: 'European Air Quality Index (EEA, 2024 revision) bands',
    legal: false,
    period: 'hour',
    threshold: 50,
    start: at - HOUR_MS,
    peak: 72,
    peakAt: at,
    value: 72,
    valueAt: at,
    severity,
  }
  return {
    key: `test-event-${randomUUID()}`,
    kind: 'opened',
    topic: 'breaches',
    siteId,
    deviceId: null,
    incidentId: null,
    severity,
    urgent: false,
    live: true,
    at,
    data,
    ...overrides,
  }
}

/** A live 'device-offline' event for caretakers (topic device-health). */
export function offlineEvent(siteId: string, deviceId: string | null, at: number): NewAlertEvent {
  const siteName = SITES.find((s) => s.id === siteId)?.name ?? siteId
  return {
    key: `test-event-${randomUUID()}`,
    kind: 'device-offline',
    topic: 'device-health',
    siteId,
    deviceId,
    incidentId: null,
    severity: 'warning',
    urgent: false,
    live: true,
    at,
    data: { kind: 'device-offline', siteId, siteName, since: at, severity: 'warning' } satisfies AlertMessageData,
  }
}
