import { ExportEnv } from '@skolluft/export'
import type { Logger } from '@skolluft/runtime'
import type { Storage } from '@skolluft/storage'
import type { AccessChanges } from './live/access-changes.ts'
import { REVALIDATE_MS } from './live/hub.ts'
import { API_BURST, API_RATE_PER_S } from './rate-limit.ts'

export interface ApiOptions {
  /** Bearer token for operator endpoints (rejects log), besides admin and caretaker log-ins. */
  readonly operatorToken: string | undefined
  /** The public-map switch: the map and hourly values readable without log-in (core access.ts). */
  readonly publicMap: boolean
  /** `max-age` of data responses (sites, series), seconds. */
  readonly publicMaxAgeS: number
  /** Largest JSON request body. */
  readonly jsonBodyLimit: string
  /** Health check gives up on storage after this long and reports 503. */
  readonly healthTimeoutMs: number
  /** Session cookies get `Secure` even on plain-http requests (set when TLS ends at a proxy). */
  readonly secureCookies: boolean
  /** scrypt hash of the one-time setup value that creates the first admin; undefined = no web setup. */
  readonly setupTokenHash: string | undefined
  /** Map tile URL template (`{z}/{x}/{y}`); null = plain background. */
  readonly tileUrl: string | null
  readonly tileAttribution: string
  /** [lat, lon] and zoom the map opens at. */
  readonly mapCenter: readonly [number, number]
  readonly mapZoom: number
  /** How old the shared map snapshot may get (map-snapshot.ts); 0 rebuilds for every request (tests). */
  readonly mapSnapshotMaxAgeMs: number
  /** express `trust proxy`: false, or e.g. 'loopback' behind nginx on the same host. */
  readonly trustProxy: boolean | string
  /** Requests per second and burst per client address on /api/v1 (rate-limit.ts). Benchmarks raise it. */
  readonly rateLimit: { readonly ratePerS: number; readonly burst: number }
  /** How often live sockets' credentials are checked again (live/hub.ts). */
  readonly liveRevalidateMs: number
  /** NODE_ENV=production: alert webhooks must be https, even to localhost (core subscriptions.ts). */
  readonly production: boolean
  /** Licence, attribution and threshold profiles named in export manifests (@skolluft/export ExportEnv). */
  readonly exportEnv: ExportEnv
}

export const DEFAULT_API_OPTIONS: ApiOptions = {
  operatorToken: undefined,
  // Off unless a deployment says otherwise: schools' data is not public by accident.
  publicMap: false,
  // Devices send every 60 s by default (DEFAULT_INTERVAL_S); 5 s matches the map snapshot's age.
  publicMaxAgeS: 5,
  // Far above any request body the API takes (small JSON commands), far below memory trouble.
  jsonBodyLimit: '100kb',
  // A local SQLite query answers in well under a millisecond; 2 s only trips on a hung backend.
  healthTimeoutMs: 2_000,
  secureCookies: false,
  setupTokenHash: undefined,
  tileUrl: null,
  tileAttribution: '',
  // Lund, Sweden.
  mapCenter: [55.7047, 13.191],
  mapZoom: 11,
  mapSnapshotMaxAgeMs: 5_000,
  trustProxy: false,
  rateLimit: { ratePerS: API_RATE_PER_S, burst: API_BURST },
  liveRevalidateMs: REVALIDATE_MS,
  production: false,
  exportEnv: ExportEnv.parse({}),
}

/** One file the API serves as it is (the dashboard's bundle). */
export interface StaticFile {
  readonly contentType: string
  readonly body: Buffer
  readonly etag: string
}

export interface ApiDeps {
  readonly log: Logger
  readonly storage: Storage
  /** Epoch ms; defaults to Date.now. */
  readonly clock?: () => number
  readonly options?: Partial<ApiOptions>
  /** The dashboard, by URL path; served at `/` with its own content security policy. */
  readonly dashboard?: ReadonlyMap<string, StaticFile>
  /**
   * The deployment's alerts key (runtime derived-keys.ts, the same one the alerts service holds): webhook signing
   * secrets and unsubscribe links are derived from it. Without it, new subscriptions and unsubscribe links answer 503.
   */
  readonly alertsKey?: Buffer
}

/** What every route module receives: the dependencies with defaults filled in. */
export interface ApiContext {
  readonly log: Logger
  readonly storage: Storage
  readonly clock: () => number
  readonly options: ApiOptions
  readonly alertsKey: Buffer | null
  /** Routes report ended sessions, changed users and revoked tokens here; the live hub re-checks its sockets. */
  readonly accessChanges: AccessChanges
}
