export * from './config.ts'
export * from './ingest.ts'
export * from './leave.ts'
export * from './quality-checks.ts'
