import { z } from 'zod'
import type { ApiOptions } from './options.ts'

/** `VAR=` in an env file means "not set", not "empty string". */
const unsetIfEmpty = (value: unknown) => (value === '' ? undefined : value)

/** The API's environment variables; the CLI validates them with loadConfig and passes the result on. */
export const ApiEnv = z.object({
  PORT: z.preprocess(unsetIfEmpty, z.coerce.number().int().min(0).max(65_535).default(8080)),
  HOST: z.preprocess(unsetIfEmpty, z.string().min(1).default('0.0.0.0')),
  /** 24 characters is 144 bits of base64url randomness at least (generateSecret gives 32). */
  OPERATOR_TOKEN: z.preprocess(
    unsetIfEmpty,
    z.string().min(24, 'OPERATOR_TOKEN must be at least 24 characters (e.g. `openssl rand -base64 24`)').optional(),
  ),
})
export type ApiEnv = z.infer<typeof ApiEnv>

export function apiListenOptions(env: ApiEnv): {
  host: string
  port: number
  options: Partial<ApiOptions>
} {
  return { host: env.HOST, port: env.PORT, options: { operatorToken: env.OPERATOR_TOKEN } }
}
