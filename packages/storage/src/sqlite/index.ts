export { BUSY_TIMEOUT_MS, openSqliteStorage, type SqliteStorageOptions } from './sqlite-storage.ts'
