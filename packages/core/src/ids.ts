import { z } from 'zod'

/**
 * Site and device ids: lowercase letters, digits and inner hyphens, 1–64 characters.
 * The pattern keeps ids safe inside an MQTT topic level (no `/`, `+`, `#`, `$`),
 * in URLs and in file names, and makes them case-insensitive in practice.
 */
export const ID_PATTERN = /^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$/

export const SiteId = z.string().regex(ID_PATTERN, 'a site id is 1–64 lowercase letters, digits or inner hyphens')
export type SiteId = z.infer<typeof SiteId>

export const DeviceId = z.string().regex(ID_PATTERN, 'a device id is 1–64 lowercase letters, digits or inner hyphens')
export type DeviceId = z.infer<typeof DeviceId>

export function isValidId(value: string): boolean {
  return ID_PATTERN.test(value)
}
