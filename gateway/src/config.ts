import { z } from 'zod'

/**
 * Environment of the gateway. The CLI merges this into the configuration of the command that runs the
 * gateway (stand-alone or all-in-one) and validates it once, at start (runtime loadConfig).
 *
 * MQTT_HOST defaults to every interface: sensors connect from the school networks, not from this host.
 * Tests and single-machine demos pass 127.0.0.1.
 */
export const GatewayConfig = z.object({
  /** 1883 is the IANA-registered port for MQTT without TLS. */
  MQTT_PORT: z.coerce.number().int().min(0).max(65_535).default(1883),
  MQTT_HOST: z.string().trim().min(1).default('0.0.0.0'),
})
export type GatewayConfig = z.infer<typeof GatewayConfig>
