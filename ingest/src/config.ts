import { z } from 'zod'

/** Environment of a stand-alone ingest process. Credentials may also come from the data directory. */
export const IngestConfig = z.object({
  MQTT_URL: z
    .url({ protocol: /^mqtts?$/, error: 'MQTT_URL must be an mqtt:// or mqtts:// URL' })
    .default('mqtt://127.0.0.1:1883'),
  MQTT_USERNAME: z.string().min(1).optional(),
  MQTT_PASSWORD: z.string().min(1).optional(),
})
export type IngestConfig = z.infer<typeof IngestConfig>
