import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { ConfigError, createLogger, type Logger } from '@skolluft/runtime'
import { openSqliteSpool, openSqliteStorage, type Storage, type TelemetrySpool } from '@skolluft/storage'
import type { StoreEnv } from './config.ts'

export const DATABASE_FILE = 'skolluft.db'
/** The gateway's telemetry spool: its own file, so the gateway's writes never wait on the ingest's. */
export const SPOOL_FILE = 'gateway-spool.db'

/**
 * What opening the store needs from a command's configuration (CommonConfig; STORE unset = sqlite), and with
 * STORE=influxdb: `log` for the write path's reports (outages, spool replays; default: stderr), and `writer`, the
 * name of a process that writes readings. Only such a process gets a spool (DATA_DIR/influx-spool-<writer>.db, or
 * INFLUX_SPOOL_PATH); one process at a time may hold a spool, so every writer on a shared data directory needs its
 * own name (the ingest uses its client id). Without `writer` the readings are read-only (API, alerts, export).
 */
export interface DataDirConfig extends Partial<StoreEnv> {
  readonly DATA_DIR: string
  readonly LOG_LEVEL?: string
}

export interface OpenDataDirOptions {
  readonly log?: Logger
  readonly writer?: string
  /** A command that ends when its work is done (import): closing fails if InfluxDB did not take everything. */
  readonly oneShot?: boolean
}

/** The spool of a process that writes readings to InfluxDB, unless INFLUX_SPOOL_PATH names one. */
export function influxSpoolFile(writer: string): string {
  return `influx-spool-${writer.replace(/[^A-Za-z0-9._-]/g, '_')}.db`
}

/** Opens (creating if needed) the store of a data directory: the SQLite file, and the InfluxDB bucket if STORE says. */
export async function openDataDir(config: DataDirConfig, options: OpenDataDirOptions = {}): Promise<Storage> {
  await mkdir(config.DATA_DIR, { recursive: true, mode: 0o700 })
  const sqlite = { path: join(config.DATA_DIR, DATABASE_FILE) }
  if (config.STORE !== 'influxdb') return openSqliteStorage(sqlite)
  const { INFLUX_URL: url, INFLUX_TOKEN: token, INFLUX_ORG: org, INFLUX_BUCKET: bucket } = config
  if (url === undefined || token === undefined || org === undefined || bucket === undefined) {
    const missing = Object.entries({ INFLUX_URL: url, INFLUX_TOKEN: token, INFLUX_ORG: org, INFLUX_BUCKET: bucket })
      .filter(([, value]) => value === undefined)
      .map(([name]) => `${name}: required with STORE=influxdb (not set)`)
    throw new ConfigError(missing)
  }
  // Loaded only here: a SQLite deployment never loads the InfluxDB client.
  const { openInfluxStorage } = await import('@skolluft/storage/influx')
  const { writer } = options
  return openInfluxStorage({
    sqlite,
    influx: { url, token, org, bucket },
    ...(writer === undefined
      ? {}
      : { spoolPath: config.INFLUX_SPOOL_PATH ?? join(config.DATA_DIR, influxSpoolFile(writer)) }),
    ...(options.oneShot === true ? { oneShot: true } : {}),
    // A command without a logger of its own (export, import, …) reports on stderr: its stdout may be data.
    log:
      options.log ??
      createLogger({
        level: config.LOG_LEVEL ?? 'info',
        name: 'skolluft-cli',
        destination: { write: (line: string) => process.stderr.write(line) },
      }),
  })
}

/** Opens (creating if needed) the gateway's telemetry spool in a data directory. */
export async function openGatewaySpool(dataDir: string): Promise<TelemetrySpool> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 })
  return openSqliteSpool({ path: join(dataDir, SPOOL_FILE) })
}

/** Runs `fn` with the store open and always closes it. */
export async function withDataDir<T>(
  config: DataDirConfig & OpenDataDirOptions,
  fn: (storage: Storage) => Promise<T>,
): Promise<T> {
  const storage = await openDataDir(config, config)
  try {
    return await fn(storage)
  } finally {
    await storage.close()
  }
}
