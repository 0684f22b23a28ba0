import { z } from 'zod'
import { DeviceId, SiteId } from './ids.ts'
import { METRICS } from './metrics.ts'

/**
 * Sites and devices. A site is a school or preschool, or an urban background station (`background`: a site
 * away from local sources such as a roof or a park, not a school, measured for comparison: a school's mean minus
 * the background's is its local increment, issue 7). A device stands at one site at a time, and its placement
 * history says where it stood when. A reading belongs to the site where its device stood at the reading's time.
 */
export const SITE_KINDS = ['preschool', 'school', 'background'] as const
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

/** Mean Earth radius, km (IUGG mean radius R1 = 6371.0088 km; a sphere is within 0.5 % of WGS84 distances). */
const EARTH_RADIUS_KM = 6371.0088

/** Great-circle (haversine) distance between two WGS84 points, km. */
export function distanceKm(a: Pick<Site, 'lat' | 'lon'>, b: Pick<Site, 'lat' | 'lon'>): number {
  const rad = Math.PI / 180
  const dLat = (b.lat - a.lat) * rad
  const dLon = (b.lon - a.lon) * rad
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) ** 2
  return 2 * EARTH_RADIUS_KM * Math.asin(Math.min(1, Math.sqrt(h)))
}

/**
 * Farthest an urban background site may be from a school to serve as its background (editorial choice, stated in
 * every report that uses it): an urban background level is representative of a town and its surroundings, not of
 * a region (EU 2008/50 Annex III B: urban background points represent "several square kilometres"); 20 km spans
 * Lund municipality from its centre and reaches Malmö Rådhuset (roof, urban background, ~17 km from Lund), the
 * nearest official one. Farther away the two places' backgrounds differ (coast, inland) and a difference would no
 * longer be the school's local increment.
 */
export const MAX_BACKGROUND_DISTANCE_KM = 20

/**
 * The nearest site of kind `background` to `site` within `maxKm` (inclusive), not the site itself; equal
 * distances go to the smaller id. Undefined when there is none.
 */
export function nearestBackgroundSite<S extends Pick<Site, 'id' | 'kind' | 'lat' | 'lon'>>(
  site: Pick<Site, 'id' | 'lat' | 'lon'>,
  sites: readonly S[],
  maxKm: number = MAX_BACKGROUND_DISTANCE_KM,
): { readonly site: S; readonly distanceKm: number } | undefined {
  let best: { site: S; distanceKm: number } | undefined
  for (const candidate of sites) {
    if (candidate.kind !== 'background' || candidate.id === site.id) continue
    const d = distanceKm(site, candidate)
    if (d > maxKm) continue
    if (best === undefined || d < best.distanceKm || (d === best.distanceKm && candidate.id < best.site.id)) {
      best = { site: candidate, distanceKm: d }
    }
  }
  return best
}
