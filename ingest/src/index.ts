export * from './config.ts'
export * from './ingest.ts'
