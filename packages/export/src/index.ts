export * from './corrections.ts'
export * from './manifest.ts'
export * from './pipeline.ts'
export * from './query.ts'
