export * from './config.ts'
export * from './ingest.ts'
export * from './quality-checks.ts'
