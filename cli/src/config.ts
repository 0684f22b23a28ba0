import { resolve } from 'node:path'
import { envFlag } from '@skolluft/runtime'
import { z } from 'zod'

/**
 * Environment variables shared by every command. Each service adds its own schema
 * (gateway, ingest, api, sim) and the command that runs it merges them, so one process reads
 * its configuration once, at start, and reports every problem at once.
 */
const flag = (fallback: boolean) => envFlag().default(fallback)

export const CommonConfig = z.object({
  DATA_DIR: z
    .string()
    .min(1)
    .default('./data')
    .transform((p) => resolve(p)),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
})

export const SimEnv = z.object({
  SIM: flag(true),
  DEMO_SITES: flag(true),
  SIM_INTERVAL_S: z.coerce.number().int().min(1).max(3600).default(60),
  SIM_FAULT_RATE: z.coerce.number().min(0).max(1).default(0.02),
  SIM_SEED: z.coerce.number().int().default(1),
  /** Days of history the simulator backfills when the store is empty; 0 disables. */
  SIM_BACKFILL_DAYS: z.coerce.number().int().min(0).max(60).default(1),
})
