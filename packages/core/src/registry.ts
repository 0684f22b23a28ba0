import { z } from 'zod'
import { DeviceId, SiteId } from './ids.ts'
import { METRICS } from './metrics.ts'

/**
 * Sites and devices. A site is a school or preschool; a device stands at one site at a time, and its
 * placement history says where it stood when. A reading belongs to the site where its device stood at
 * the reading's time.
 */
export const SITE_KINDS = ['preschool', 'school'] as const
export const SiteKind = z.enum(SITE_KINDS)
export type SiteKind = z.infer<typeof SiteKind>

/** School stages as Skolverket names them; optional. */
export const SCHOOL_STAGES = ['fklass', 'f-3', '4-6', '7-9', 'gymnasium'] as const
export const SchoolStage = z.enum(SCHOOL_STAGES)

export const Site = z.object({
  id: SiteId,
  name: z.string().trim().min(1).max(200),
  kind: SiteKind,
  stages: z.array(SchoolStage).default([]),
  address: z.string().trim().max(300).nullable().default(null),
  locality: z.string().trim().max(100).nullable().default(null),
  municipality: z.string().trim().min(1).max(100),
  /** WGS84 latitude, degrees. */
  lat: z.number().min(-90).max(90),
  /** WGS84 longitude, degrees. */
  lon: z.number().min(-180).max(180),
  /** True for invented demo sites; shown as demo data everywhere. */
  demo: z.boolean().default(false),
})
export type Site = z.infer<typeof Site>
export type SiteInput = z.input<typeof Site>

export const Sensors = z.array(z.enum(METRICS)).min(1)

export const Placement = z.object({
  deviceId: DeviceId,
  siteId: SiteId,
  /** Epoch ms, inclusive. */
  from: z.number().int(),
  /** Epoch ms, exclusive; null while the device still stands there. */
  to: z.number().int().nullable(),
  indoor: z.boolean(),
  /** Height of the inlet above ground, metres. */
  heightM: z.number().min(0).max(200).nullable(),
})
export type Placement = z.infer<typeof Placement>

export const Device = z.object({
  id: DeviceId,
  model: z.string().min(1).max(100),
  sensors: Sensors,
  /** Seconds between readings the device is configured for; drives expected counts and coverage. */
  intervalS: z.number().int().min(1).max(3600),
  createdAt: z.number().int(),
  revokedAt: z.number().int().nullable(),
})
export type Device = z.infer<typeof Device>

/** Returns the placement in force at `ts`, if any. Placements of one device never overlap. */
export function placementAt(placements: readonly Placement[], ts: number): Placement | undefined {
  return placements.find((p) => p.from <= ts && (p.to === null || ts < p.to))
}

/** The placement that has not ended: where the device stands now (a future-dated move included). */
export function currentPlacement(placements: readonly Placement[]): Placement | undefined {
  return placements.find((p) => p.to === null)
}
