// Worker entry for bench/publishers.ts: a worker thread does not inherit the main thread's tsx loader on Node 20.
import { register } from 'tsx/esm/api'

register()
await import('./publishers.ts')
