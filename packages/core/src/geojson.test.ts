import { describe, expect, it } from 'vitest'
import {
  LatestSummary,
  latestSummary,
  SiteFeature,
  SiteFeatureCollection,
  siteFeature,
  siteFeatureCollection,
} from './geojson.ts'
import { Site } from './registry.ts'

const NOW = Date.parse('2026-11-30T08:00:00Z')

const school = Site.parse({
  id: 'vikingaskolan',
  name: 'Vikingaskolan',
  kind: 'school',
  stages: ['f-3', '4-6'],
  address: 'Vikingavägen 1',
  locality: 'Lund',
  municipality: 'Lund',
  lat: 55.7135,
  lon: 13.2051,
})
const preschool = Site.parse({
  id: 'demo-forskola',
  name: 'Demoförskolan',
  kind: 'preschool',
  municipality: 'Lund',
  lat: 55.7,
  lon: 13.19,
  demo: true,
})

describe('latestSummary', () => {
  it('gives the ISO time, the known metrics and the age in whole seconds', () => {
    const summary = latestSummary(
      { ts: NOW - 90_400, values: { pm25: 7.4, no2: 18.2 }, metricTs: { pm25: NOW - 90_400, no2: NOW - 3_600_000 } },
      NOW,
    )
    expect(summary).toEqual({
      ts: '2026-11-30T07:58:29.600Z',
      values: { pm25: 7.4, no2: 18.2 },
      // NO2 stopped an hour ago: its value keeps its own, older time.
      times: { pm25: '2026-11-30T07:58:29.600Z', no2: '2026-11-30T07:00:00.000Z' },
      age_s: 90,
    })
    expect(LatestSummary.safeParse(summary).success).toBe(true)
  })

  it('clamps the age at 0 when the device clock runs ahead', () => {
    expect(latestSummary({ ts: NOW + 5_000, values: { rh: 40 } }, NOW).age_s).toBe(0)
  })
})

describe('siteFeature', () => {
  it('puts longitude first and copies the site properties', () => {
    const latest = latestSummary({ ts: NOW - 60_000, values: { pm25: 3 } }, NOW)
    const feature = siteFeature(school, latest)
    expect(feature).toEqual({
      type: 'Feature',
      id: 'vikingaskolan',
      geometry: { type: 'Point', coordinates: [13.2051, 55.7135] },
      properties: {
        name: 'Vikingaskolan',
        kind: 'school',
        stages: ['f-3', '4-6'],
        address: 'Vikingavägen 1',
        locality: 'Lund',
        municipality: 'Lund',
        demo: false,
        latest: {
          ts: '2026-11-30T07:59:00.000Z',
          values: { pm25: 3 },
          times: { pm25: '2026-11-30T07:59:00.000Z' },
          age_s: 60,
        },
      },
    })
    expect(SiteFeature.parse(feature)).toEqual(feature)
  })

  it('reads a site file feature without latest (import) and keeps defaults', () => {
    const parsed = SiteFeature.safeParse({
      type: 'Feature',
      id: 'backaskolan',
      geometry: { type: 'Point', coordinates: [13.2, 55.72, 40] },
      properties: { name: 'Backaskolan', kind: 'school', municipality: 'Lund' },
    })
    expect(parsed.success).toBe(true)
    expect(parsed.data?.properties).toEqual({
      name: 'Backaskolan',
      kind: 'school',
      stages: [],
      address: null,
      locality: null,
      municipality: 'Lund',
      demo: false,
      latest: null,
    })
  })

  it('rejects swapped or out-of-range coordinates and bad ids', () => {
    const base = siteFeature(school, null)
    expect(SiteFeature.safeParse({ ...base, geometry: { type: 'Point', coordinates: [13.2, 95] } }).success).toBe(false)
    expect(SiteFeature.safeParse({ ...base, geometry: { type: 'Point', coordinates: [13.2] } }).success).toBe(false)
    expect(SiteFeature.safeParse({ ...base, id: 'Not An Id' }).success).toBe(false)
  })
})

describe('siteFeatureCollection', () => {
  it('has every site, with latest or null', () => {
    const latest = new Map([['vikingaskolan', latestSummary({ ts: NOW - 1000, values: { pm10: 12 } }, NOW)]])
    const collection = siteFeatureCollection([school, preschool], latest)
    expect(SiteFeatureCollection.safeParse(collection).success).toBe(true)
    expect(collection.features.map((f) => [f.id, f.properties.latest?.values ?? null])).toEqual([
      ['vikingaskolan', { pm10: 12 }],
      ['demo-forskola', null],
    ])
    expect(collection.features[1]?.properties.demo).toBe(true)
  })
})
