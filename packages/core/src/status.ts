import { z } from 'zod'

/** Retained device status, v1. The device sets `{"state":"offline"}` as its last will. */
export const DeviceStatus = z.object({
  state: z.enum(['online', 'offline']),
  ts: z.iso.datetime({ offset: true }).optional(),
  fw: z.string().max(64).optional(),
  uptime_s: z.number().int().nonnegative().optional(),
})
export type DeviceStatus = z.infer<typeof DeviceStatus>

/** Retained configuration the platform publishes to a device, v1. */
export const DeviceConfig = z.object({
  interval_s: z.number().int().min(10).max(3600),
})
export type DeviceConfig = z.infer<typeof DeviceConfig>
