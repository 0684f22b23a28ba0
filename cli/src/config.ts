import { resolve } from 'node:path'
import { envFlag, unsetIfEmpty } from '@skolluft/runtime'
import { z } from 'zod'

/**
 * Environment variables shared by every command. Each service adds its own schema
 * (gateway, ingest, api, sim) and the command that runs it merges them, so one process reads
 * its configuration once, at start, and reports every problem at once.
 */
const flag = (fallback: boolean) => envFlag().default(fallback)

const optionalText = () => z.preprocess(unsetIfEmpty, z.string().min(1).optional())

/**
 * Where readings live (issue 6). `sqlite` (default): everything in DATA_DIR/skolluft.db, no server. `influxdb`: the
 * readings and their quality flags in an InfluxDB 2 bucket (INFLUX_URL, INFLUX_TOKEN, INFLUX_ORG, INFLUX_BUCKET, all
 * required then: data-dir.ts says which are missing), everything else still in DATA_DIR/skolluft.db. While InfluxDB
 * is unreachable the readings wait in the writing process's spool (DATA_DIR/influx-spool-<writer>.db, data-dir.ts;
 * INFLUX_SPOOL_PATH overrides it for one process).
 */
export const StoreEnv = z.object({
  STORE: z.enum(['sqlite', 'influxdb'], { error: 'STORE is sqlite (the default) or influxdb' }).default('sqlite'),
  INFLUX_URL: z.preprocess(
    unsetIfEmpty,
    z.url({ protocol: /^https?$/, error: 'INFLUX_URL must be an http:// or https:// URL' }).optional(),
  ),
  INFLUX_TOKEN: optionalText(),
  INFLUX_ORG: optionalText(),
  INFLUX_BUCKET: optionalText(),
  INFLUX_SPOOL_PATH: z.preprocess(
    unsetIfEmpty,
    z
      .string()
      .min(1)
      .transform((p) => resolve(p))
      .optional(),
  ),
})
export type StoreEnv = z.infer<typeof StoreEnv>

export const CommonConfig = z
  .object({
    DATA_DIR: z
      .string()
      .min(1)
      .default('./data')
      .transform((p) => resolve(p)),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  })
  .extend(StoreEnv.shape)

export const SimEnv = z.object({
  SIM: flag(true),
  DEMO_SITES: flag(true),
  SIM_INTERVAL_S: z.coerce.number().int().min(1).max(3600).default(60),
  SIM_FAULT_RATE: z.coerce.number().min(0).max(1).default(0.02),
  SIM_SEED: z.coerce.number().int().default(1),
  /** Days of history the simulator backfills when the store is empty; 0 disables. */
  SIM_BACKFILL_DAYS: z.coerce.number().int().min(0).max(60).default(1),
})
