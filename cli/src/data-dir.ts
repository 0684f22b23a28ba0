import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { openSqliteSpool, openSqliteStorage, type Storage, type TelemetrySpool } from '@skolluft/storage'

export const DATABASE_FILE = 'skolluft.db'
/** The gateway's telemetry spool: its own file, so the gateway's writes never wait on the ingest's. */
export const SPOOL_FILE = 'gateway-spool.db'

/** What opening the store needs from a command's configuration (CommonConfig). */
export interface DataDirConfig {
  readonly DATA_DIR: string
}

/** Opens (creating if needed) the embedded store in a data directory. */
export async function openDataDir(config: DataDirConfig): Promise<Storage> {
  await mkdir(config.DATA_DIR, { recursive: true, mode: 0o700 })
  return openSqliteStorage({ path: join(config.DATA_DIR, DATABASE_FILE) })
}

/** Opens (creating if needed) the gateway's telemetry spool in a data directory. */
export async function openGatewaySpool(dataDir: string): Promise<TelemetrySpool> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 })
  return openSqliteSpool({ path: join(dataDir, SPOOL_FILE) })
}

/** Runs `fn` with the store open and always closes it. */
export async function withDataDir<T>(config: DataDirConfig, fn: (storage: Storage) => Promise<T>): Promise<T> {
  const storage = await openDataDir(config)
  try {
    return await fn(storage)
  } finally {
    await storage.close()
  }
}
