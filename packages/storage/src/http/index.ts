export { apiUrl, HTTP_STORE_TIMEOUT_MS, type HttpStoreOptions } from './http-client.ts'
export * from './http-registry.ts'
export * from './http-rejects.ts'
export * from './wire.ts'
