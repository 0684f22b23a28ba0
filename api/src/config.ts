import { ExportEnv } from '@skolluft/export'
import { envFlag, unsetIfEmpty } from '@skolluft/runtime'
import { z } from 'zod'
import type { ApiOptions } from './options.ts'

const flag = envFlag()

/** OpenStreetMap's standard tiles; their usage policy asks for the attribution and modest use. */
export const DEFAULT_TILE_URL = 'https://tile.openstreetmap.org/{z}/{x}/{y}.png'
export const DEFAULT_TILE_ATTRIBUTION = '© OpenStreetMap contributors'

/** The API's environment variables; the CLI validates them with loadConfig and passes the result on. */
export const ApiEnv = z.object({
  PORT: z.preprocess(unsetIfEmpty, z.coerce.number().int().min(0).max(65_535).default(8080)),
  HOST: z.preprocess(unsetIfEmpty, z.string().min(1).default('0.0.0.0')),
  /** 24 characters is 144 bits of base64url randomness at least (generateSecret gives 32). */
  OPERATOR_TOKEN: z.preprocess(
    unsetIfEmpty,
    z.string().min(24, 'OPERATOR_TOKEN must be at least 24 characters (e.g. `openssl rand -base64 24`)').optional(),
  ),
  /** The map and hourly values without log-in. Unset: on for the demo (`skolluft start`), off for `skolluft api`. */
  PUBLIC_MAP: z.preprocess(unsetIfEmpty, flag.optional()),
  /** Map tiles (`{z}/{x}/{y}`, optional `{s}`); `none` for a plain background. */
  TILE_URL: z.preprocess(
    unsetIfEmpty,
    z
      .union([z.literal('none'), z.url({ protocol: /^https?$/, error: 'TILE_URL must be an http(s) URL or none' })])
      .default(DEFAULT_TILE_URL),
  ),
  TILE_ATTRIBUTION: z.preprocess(unsetIfEmpty, z.string().max(500).default(DEFAULT_TILE_ATTRIBUTION)),
  /** `Secure` session cookies; on when TLS ends at a reverse proxy that talks plain http to us. */
  SECURE_COOKIES: z.preprocess(unsetIfEmpty, flag.default(false)),
  /** express `trust proxy` (e.g. `loopback`), so rate limits see client addresses behind a proxy. */
  TRUST_PROXY: z.preprocess(unsetIfEmpty, z.string().max(200).optional()),
  /** `production` makes alert webhooks https-only (the alerts service reads the same variable). */
  NODE_ENV: z.preprocess(unsetIfEmpty, z.string().max(100).default('development')),
  /** Joins several API instances for live events (live/cluster.ts); unset: one instance, no Redis. */
  REDIS_URL: z.preprocess(
    unsetIfEmpty,
    z.url({ protocol: /^rediss?$/, error: 'REDIS_URL must be a redis:// or rediss:// URL' }).optional(),
  ),
  /** Licence, attribution and threshold profiles in export manifests (@skolluft/export ExportEnv). */
  ...ExportEnv.shape,
})
export type ApiEnv = z.infer<typeof ApiEnv>

export function apiListenOptions(
  env: ApiEnv,
  defaults: { readonly publicMap: boolean } = { publicMap: false },
): {
  host: string
  port: number
  redisUrl: string | undefined
  options: Partial<ApiOptions>
} {
  return {
    host: env.HOST,
    port: env.PORT,
    redisUrl: env.REDIS_URL,
    options: {
      operatorToken: env.OPERATOR_TOKEN,
      publicMap: env.PUBLIC_MAP ?? defaults.publicMap,
      tileUrl: env.TILE_URL === 'none' ? null : env.TILE_URL,
      tileAttribution: env.TILE_ATTRIBUTION,
      secureCookies: env.SECURE_COOKIES,
      trustProxy: env.TRUST_PROXY ?? false,
      production: env.NODE_ENV === 'production',
      exportEnv: {
        EXPORT_LICENCE: env.EXPORT_LICENCE,
        EXPORT_ATTRIBUTION: env.EXPORT_ATTRIBUTION,
        ALERT_PROFILES: env.ALERT_PROFILES,
      },
    },
  }
}
