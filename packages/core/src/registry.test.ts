import { describe, expect, it } from 'vitest'
import {
  currentPlacement,
  Device,
  distanceKm,
  MAX_BACKGROUND_DISTANCE_KM,
  nearestBackgroundSite,
  Placement,
  placementAt,
  Sensors,
  Site,
  type SiteInput,
} from './registry.ts'

const MINIMAL_SITE: SiteInput = {
  id: 'vikingaskolan',
  name: 'Vikingaskolan',
  kind: 'school',
  municipality: 'Lund',
  lat: 55.7135,
  lon: 13.2051,
}

function placement(siteId: string, from: number, to: number | null): Placement {
  return { deviceId: 'lund-01', siteId, from, to, indoor: false, heightM: 2.5 }
}

describe('currentPlacement', () => {
  it('is the placement that has not ended, or none', () => {
    expect(currentPlacement([placement('a', 1_000, 2_000), placement('c', 7_000, null)])?.siteId).toBe('c')
    expect(currentPlacement([placement('a', 1_000, 2_000)])).toBeUndefined()
  })
})

describe('placementAt', () => {
  const history = [placement('a', 1_000, 2_000), placement('b', 2_000, 5_000), placement('c', 7_000, null)]

  it('includes the start and excludes the end of a placement', () => {
    expect(placementAt(history, 999)).toBeUndefined()
    expect(placementAt(history, 1_000)?.siteId).toBe('a')
    expect(placementAt(history, 1_999)?.siteId).toBe('a')
    expect(placementAt(history, 2_000)?.siteId).toBe('b') // a move hands over at exactly `from`
    expect(placementAt(history, 4_999)?.siteId).toBe('b')
  })

  it('has no placement in a gap, and an open-ended one from its start on', () => {
    expect(placementAt(history, 5_000)).toBeUndefined()
    expect(placementAt(history, 6_999)).toBeUndefined()
    expect(placementAt(history, 7_000)?.siteId).toBe('c')
    expect(placementAt(history, Number.MAX_SAFE_INTEGER)?.siteId).toBe('c')
  })

  it('does not depend on the order of the history, and copes with none', () => {
    const reversed = [...history].reverse()
    for (const ts of [999, 1_000, 2_000, 4_999, 5_000, 7_000, 10_000]) {
      expect(placementAt(reversed, ts)).toEqual(placementAt(history, ts))
    }
    expect(placementAt([], 1_000)).toBeUndefined()
  })

  it('never matches an empty placement (from === to)', () => {
    expect(placementAt([placement('x', 3_000, 3_000)], 3_000)).toBeUndefined()
  })
})

describe('Site', () => {
  it('fills the defaults', () => {
    expect(Site.parse(MINIMAL_SITE)).toEqual({
      ...MINIMAL_SITE,
      stages: [],
      address: null,
      locality: null,
      demo: false,
    })
  })

  it('trims text and keeps what was given', () => {
    const site = Site.parse({
      ...MINIMAL_SITE,
      name: '  Vikingaskolan  ',
      address: ' Vikingavägen 1 ',
      locality: ' Lund ',
      stages: ['f-3', '4-6'],
      demo: true,
    })
    expect(site).toMatchObject({ name: 'Vikingaskolan', address: 'Vikingavägen 1', locality: 'Lund', demo: true })
    expect(site.stages).toEqual(['f-3', '4-6'])
  })

  it('accepts the edges of the coordinate ranges', () => {
    for (const [lat, lon] of [
      [90, 180],
      [-90, -180],
      [0, 0],
    ] as const) {
      expect(Site.safeParse({ ...MINIMAL_SITE, lat, lon }).success).toBe(true)
    }
  })

  it.each([
    ['id in capitals', { id: 'Vikingaskolan' }],
    ['blank name', { name: '   ' }],
    ['name over 200 characters', { name: 'x'.repeat(201) }],
    ['unknown kind', { kind: 'university' }],
    ['unknown stage', { stages: ['k'] }],
    ['latitude above 90', { lat: 90.0001 }],
    ['longitude below -180', { lon: -180.0001 }],
    ['latitude as a string', { lat: '55.7' }],
    ['latitude NaN', { lat: Number.NaN }],
    ['blank municipality', { municipality: ' ' }],
    ['address over 300 characters', { address: 'x'.repeat(301) }],
    ['demo as a string', { demo: 'yes' }],
  ])('rejects a site with %s', (_what, change) => {
    const result = Site.safeParse({ ...MINIMAL_SITE, ...change })
    expect(result.success).toBe(false)
    expect(result.error?.issues[0]?.path[0]).toBe(Object.keys(change)[0])
  })

  it('requires the fields without defaults', () => {
    for (const key of ['id', 'name', 'kind', 'municipality', 'lat', 'lon'] as const) {
      const { [key]: _dropped, ...rest } = MINIMAL_SITE
      expect(Site.safeParse(rest).success, key).toBe(false)
    }
  })
})

describe('Sensors, Placement and Device', () => {
  it('needs at least one known sensor', () => {
    expect(Sensors.safeParse(['pm25']).success).toBe(true)
    expect(Sensors.safeParse([]).success).toBe(false)
    expect(Sensors.safeParse(['co2']).success).toBe(false)
    expect(Sensors.safeParse(['no2_ppb']).success).toBe(false)
  })

  it('checks placements', () => {
    const ok = placement('vikingaskolan', 1_000, null)
    expect(Placement.parse(ok)).toEqual(ok)
    expect(Placement.safeParse({ ...ok, to: 2_000 }).success).toBe(true)
    expect(Placement.safeParse({ ...ok, heightM: null }).success).toBe(true)
    expect(Placement.safeParse({ ...ok, heightM: 200 }).success).toBe(true)
    expect(Placement.safeParse({ ...ok, heightM: 200.5 }).success).toBe(false)
    expect(Placement.safeParse({ ...ok, heightM: -1 }).success).toBe(false)
    expect(Placement.safeParse({ ...ok, from: 1.5 }).success).toBe(false)
    expect(Placement.safeParse({ ...ok, siteId: 'Bad Site' }).success).toBe(false)
    expect(Placement.safeParse({ ...ok, indoor: undefined }).success).toBe(false)
  })

  it('checks devices', () => {
    const ok = {
      id: 'lund-01',
      model: 'skolluft-node-1',
      sensors: ['pm25', 'pm10', 'no2'],
      intervalS: 60,
      createdAt: 1_764_400_000_000,
      revokedAt: null,
    }
    expect(Device.parse(ok)).toEqual(ok)
    expect(Device.safeParse({ ...ok, intervalS: 1 }).success).toBe(true)
    expect(Device.safeParse({ ...ok, intervalS: 3600 }).success).toBe(true)
    for (const intervalS of [0, 3601, 1.5])
      expect(Device.safeParse({ ...ok, intervalS }).success, `${intervalS}`).toBe(false)
    expect(Device.safeParse({ ...ok, model: '' }).success).toBe(false)
    expect(Device.safeParse({ ...ok, id: 'dev_01' }).success).toBe(false)
    expect(Device.safeParse({ ...ok, revokedAt: 1_764_400_000_001 }).success).toBe(true)
    expect(Device.safeParse({ ...ok, revokedAt: undefined }).success).toBe(false)
  })
})

describe('background sites', () => {
  it("accepts kind 'background' (an urban background station)", () => {
    expect(Site.parse({ ...MINIMAL_SITE, id: 'tak', kind: 'background' }).kind).toBe('background')
  })

  it('measures great-circle distances in km', () => {
    // One degree of latitude on the mean sphere: π/180 × 6371.0088 km.
    expect(distanceKm({ lat: 55, lon: 13 }, { lat: 56, lon: 13 })).toBeCloseTo((Math.PI / 180) * 6371.0088, 9)
    // Lund (cathedral) to Malmö Rådhuset: about 16.5 km (OpenStreetMap measure tool).
    expect(distanceKm({ lat: 55.7047, lon: 13.1936 }, { lat: 55.6066, lon: 13.0002 })).toBeGreaterThan(16)
    expect(distanceKm({ lat: 55.7047, lon: 13.1936 }, { lat: 55.6066, lon: 13.0002 })).toBeLessThan(17)
    expect(distanceKm({ lat: 10, lon: 20 }, { lat: 10, lon: 20 })).toBe(0)
  })

  it('finds the nearest background site within the maximum distance, never a school or the site itself', () => {
    const school = { id: 's', kind: 'school' as const, lat: 55.7, lon: 13.2 }
    const sites = [
      school,
      { id: 'near-school', kind: 'school' as const, lat: 55.7001, lon: 13.2 },
      { id: 'bg-far', kind: 'background' as const, lat: 55.75, lon: 13.2 },
      { id: 'bg-near', kind: 'background' as const, lat: 55.72, lon: 13.2 },
      { id: 'bg-out', kind: 'background' as const, lat: 56, lon: 13.2 },
    ]
    expect(nearestBackgroundSite(school, sites)?.site.id).toBe('bg-near')
    expect(nearestBackgroundSite(school, sites)?.distanceKm).toBeCloseTo(distanceKm(school, sites[3] ?? school), 12)
    expect(nearestBackgroundSite(school, sites, 1)).toBeUndefined()
    expect(nearestBackgroundSite(school, [school, sites[4] ?? school])).toBeUndefined()
    expect(MAX_BACKGROUND_DISTANCE_KM).toBe(20)
    // A background site is not its own background.
    const bg = sites[3] ?? school
    expect(nearestBackgroundSite(bg, sites)?.site.id).toBe('bg-far')
    // Equal distances: the smaller id.
    const twins = [
      { id: 'bg-b', kind: 'background' as const, lat: 0, lon: 0.1 },
      { id: 'bg-a', kind: 'background' as const, lat: 0, lon: -0.1 },
    ]
    expect(distanceKm({ lat: 0, lon: 0 }, twins[0] ?? school)).toBe(distanceKm({ lat: 0, lon: 0 }, twins[1] ?? school))
    expect(nearestBackgroundSite({ id: 'x', lat: 0, lon: 0 }, twins)?.site.id).toBe('bg-a')
  })
})
