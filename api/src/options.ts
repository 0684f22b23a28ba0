import type { Logger } from '@skolluft/runtime'
import type { Storage } from '@skolluft/storage'

export interface ApiOptions {
  /** Bearer token for operator endpoints (rejects log); those endpoints do not exist without it. */
  readonly operatorToken: string | undefined
  /** `max-age` of public data responses (sites, series), seconds. */
  readonly publicMaxAgeS: number
  /** Largest JSON request body; no route reads one yet, the limit is there before the first does. */
  readonly jsonBodyLimit: string
  /** Health check gives up on storage after this long and reports 503. */
  readonly healthTimeoutMs: number
}

export const DEFAULT_API_OPTIONS: ApiOptions = {
  operatorToken: undefined,
  // Devices send every 60 s by default (DEFAULT_INTERVAL_S); 10 s keeps the map within one interval of live.
  publicMaxAgeS: 10,
  // Far above any request body the API will take (small JSON commands), far below memory trouble.
  jsonBodyLimit: '100kb',
  // A local SQLite query answers in well under a millisecond; 2 s only trips on a hung backend.
  healthTimeoutMs: 2_000,
}

export interface ApiDeps {
  readonly log: Logger
  readonly storage: Storage
  /** Epoch ms; defaults to Date.now. */
  readonly clock?: () => number
  readonly options?: Partial<ApiOptions>
}

/** What every route module receives: the dependencies with defaults filled in. */
export interface ApiContext {
  readonly log: Logger
  readonly storage: Storage
  readonly clock: () => number
  readonly options: ApiOptions
}
