export * from './config.ts'
export * from './logger.ts'
export * from './secret-file.ts'
export * from './secrets.ts'
