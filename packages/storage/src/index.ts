export * from './errors.ts'
export * from './spool.ts'
export * from './sqlite/index.ts'
export * from './types.ts'
