import { z } from 'zod'
import { DEFAULT_FAULT_RATE, type FaultRates, scaleFaultRates } from './faults.ts'
import { DEFAULT_SIM_INTERVAL_S } from './fleet.ts'

/**
 * Environment of a standalone simulator (`loadConfig(SimConfig, process.env)` from @skolluft/runtime).
 * The CLI composes its own from the same names.
 *
 *   MQTT_URL               broker to publish to (mqtt:// or mqtts://, ws:// or wss://)
 *   SIM_INTERVAL_S         seconds between readings until a device's config says otherwise (device contract: 60)
 *   SIM_SEED               seeds weather, episodes and faults; the same seed gives the same data
 *   SIM_BACKFILL_DAYS      days of history to publish at start; 0 = none
 *   SIM_TIME_SCALE         simulated seconds per second (tests, demos without an ingest: > 1 stamps the future)
 *   SIM_FAULT_RATE         overall fault rate 0–1, scales every default rate; 0 = clean data (default 0.02)
 *   SIM_FAULT_NOISE, SIM_FAULT_DRIFT, SIM_FAULT_STUCK, SIM_FAULT_SPIKE, SIM_FAULT_HUMIDITY, SIM_FAULT_OUTAGE
 *                          single rates over that (units in faults.ts FaultRates)
 */
const share = z.coerce.number().min(0).max(1)
const perDay = z.coerce.number().min(0).max(1440)

export const SimConfig = z.object({
  MQTT_URL: z.url({ protocol: /^(mqtts?|wss?)$/ }).default('mqtt://127.0.0.1:1883'),
  SIM_INTERVAL_S: z.coerce.number().int().min(1).max(3600).default(DEFAULT_SIM_INTERVAL_S),
  SIM_SEED: z.coerce.number().int().default(1),
  /** Parsed readings older than 400 days are refused (core MAX_READING_AGE_MS); 60 days is plenty for a demo. */
  SIM_BACKFILL_DAYS: z.coerce.number().min(0).max(60).default(0),
  SIM_TIME_SCALE: z.coerce.number().positive().max(100_000).default(1),
  SIM_FAULT_RATE: z.coerce.number().min(0).max(1).default(DEFAULT_FAULT_RATE),
  SIM_FAULT_NOISE: share.optional(),
  SIM_FAULT_DRIFT: share.optional(),
  SIM_FAULT_STUCK: perDay.optional(),
  SIM_FAULT_SPIKE: share.optional(),
  SIM_FAULT_HUMIDITY: share.optional(),
  SIM_FAULT_OUTAGE: perDay.optional(),
})
export type SimConfig = z.infer<typeof SimConfig>

/** The fault rates a configuration asks for: SIM_FAULT_RATE scaled defaults, single rates over them. */
export function faultRatesFromConfig(config: SimConfig): FaultRates {
  const base = scaleFaultRates(config.SIM_FAULT_RATE)
  return {
    noise: config.SIM_FAULT_NOISE ?? base.noise,
    drift: config.SIM_FAULT_DRIFT ?? base.drift,
    stuck: config.SIM_FAULT_STUCK ?? base.stuck,
    spike: config.SIM_FAULT_SPIKE ?? base.spike,
    humidity: config.SIM_FAULT_HUMIDITY ?? base.humidity,
    outage: config.SIM_FAULT_OUTAGE ?? base.outage,
  }
}
