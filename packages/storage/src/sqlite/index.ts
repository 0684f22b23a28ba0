export { openSqliteSpool, type SqliteSpoolOptions } from './sqlite-spool.ts'
export { BUSY_TIMEOUT_MS, openSqliteStorage, type SqliteStorageOptions } from './sqlite-storage.ts'
