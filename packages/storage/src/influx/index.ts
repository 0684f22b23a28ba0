import { InfluxDB } from '@influxdata/influxdb-client'
import { currentPlacement } from '@skolluft/core'
import type { Logger } from '@skolluft/runtime'
import { StorageError } from '../errors.ts'
import { openSqliteStorage, type SqliteStorageOptions } from '../sqlite/sqlite-storage.ts'
import type { Storage } from '../types.ts'
import { createInfluxReadingStore, type LineWriter } from './reading-store.ts'
import { createInfluxWriter, type InfluxWriter } from './writer.ts'

export * from './flux.ts'
export * from './line-protocol.ts'
export type { InfluxReadingStore, InfluxReadingStoreOptions, LineWriter } from './reading-store.ts'
export { createInfluxReadingStore } from './reading-store.ts'
export { openSpoolFile, type SpoolFile } from './spool-file.ts'
export * from './writer.ts'

/** Where the InfluxDB readings live (INFLUX_URL, INFLUX_TOKEN, INFLUX_ORG, INFLUX_BUCKET). */
export interface InfluxConnection {
  readonly url: string
  readonly token: string
  readonly org: string
  readonly bucket: string
}

/**
 * How long closing waits for the spool and the queue to reach InfluxDB: a stop (deploy, restart) should not leave a
 * backlog behind when the server is up, nor hang when it is down (the spool keeps the rest for the next start).
 */
export const CLOSE_DRAIN_MS = 5_000
/** How long a one-shot command waits for InfluxDB to take its readings before it fails (an import's last batch). */
export const ONE_SHOT_DRAIN_MS = 60_000

/** The duplicate lookup before a write gives up after this long; the write then goes on without it. */
export const INFLUX_LOOKUP_TIMEOUT_MS = 5_000

/** Flux queries give up after this long: an export page or a year of hours takes well under it. */
export const INFLUX_QUERY_TIMEOUT_MS = 60_000

export interface InfluxStorageOptions {
  /** The relational store for everything that is not a reading (registry, people, alerts, …). */
  readonly sqlite: SqliteStorageOptions
  readonly influx: InfluxConnection
  /**
   * The on-disk spool that holds readings while InfluxDB is unreachable (a SQLite file, one writer process at a
   * time). Without one the readings are read-only: a process that writes none (API, alerts, export) neither needs
   * nor locks a spool, so any number of them can share a data directory.
   */
  readonly spoolPath?: string
  readonly log: Logger
  /**
   * A one-shot command (import): closing waits up to ONE_SHOT_DRAIN_MS for InfluxDB to take everything and fails
   * (STORAGE_UNAVAILABLE, naming the spool) if it did not, so the command does not report success for readings that
   * only a later run of the same command would deliver. A service (ingest, start) waits CLOSE_DRAIN_MS and leaves
   * the rest to its next start.
   */
  readonly oneShot?: boolean
  /** How long closing waits for the spool to empty (default: ONE_SHOT_DRAIN_MS or CLOSE_DRAIN_MS, see oneShot). */
  readonly closeDrainMs?: number
}

export interface InfluxStorage extends Storage {
  /** The write path's state (for health endpoints and tests); undefined when opened read-only. */
  readonly writer: InfluxWriter | undefined
}

/** The write path of a store opened without a spool. */
const READ_ONLY_WRITER: LineWriter = {
  write: () => Promise.reject(new StorageError('READ_ONLY', 'readings were opened read-only (no InfluxDB spool)')),
  stats: () => ({ state: 'direct' }),
}

/**
 * STORE=influxdb: readings (with their quality flags) in InfluxDB 2, everything else in the SQLite file. The
 * registry stays relational because it is small, changes by hand and needs transactions (a device move closes one
 * placement and opens the next); InfluxDB would give neither.
 */
export function openInfluxStorage(options: InfluxStorageOptions): InfluxStorage {
  const base = openSqliteStorage(options.sqlite)
  const { url, token, org, bucket } = options.influx
  const { spoolPath } = options
  let writer: InfluxWriter | undefined
  try {
    writer =
      spoolPath === undefined ? undefined : createInfluxWriter({ url, token, org, bucket, spoolPath, log: options.log })
  } catch (error) {
    void base.close()
    throw error
  }
  const queryApi = new InfluxDB({ url, token, timeout: INFLUX_QUERY_TIMEOUT_MS }).getQueryApi(org)
  const readings = createInfluxReadingStore({
    queryApi,
    lookupApi: new InfluxDB({ url, token, timeout: INFLUX_LOOKUP_TIMEOUT_MS }).getQueryApi(org),
    bucket,
    writer: writer ?? READ_ONLY_WRITER,
    log: options.log.child({ module: 'influx' }),
    async currentSites() {
      const sites = new Map<string, string>()
      for (const device of await base.registry.listDevices()) {
        const placement = currentPlacement(device.placements)
        // As the SQLite store: a device's open placement, revoked or not (its last readings stay on the map).
        if (placement !== undefined) sites.set(device.id, placement.siteId)
      }
      return sites
    },
  })
  return {
    ...base,
    readings,
    writer,
    async close() {
      await readings.close()
      const drainMs = options.closeDrainMs ?? (options.oneShot === true ? ONE_SHOT_DRAIN_MS : CLOSE_DRAIN_MS)
      const left = writer === undefined || (await writer.drain(drainMs)) ? 0 : writer.stats().spoolDepth
      if (left > 0) {
        options.log.warn(
          { spoolDepth: left, spoolPath },
          'InfluxDB did not take every line before closing: they stay in the spool for the next start',
        )
      }
      await writer?.close()
      await base.close()
      if (left > 0 && options.oneShot === true) {
        throw new StorageError(
          'STORAGE_UNAVAILABLE',
          `InfluxDB did not take ${left} lines within ${drainMs / 1_000} s: they are safe in ${spoolPath} and ` +
            'go out when the same command runs again with this DATA_DIR and InfluxDB answers',
        )
      }
    },
  }
}
