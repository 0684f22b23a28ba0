import { describe, expect, it } from 'vitest'
import {
  INDEX_MAX_AGE_MS,
  LatestSummary,
  latestIndex,
  latestSummary,
  NO_DEVICES,
  NO_INDEX,
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
        // Without a status, a feature says "nothing known" rather than inventing an index or health.
        index: NO_INDEX,
        health: NO_DEVICES,
        breaches: { open: 0 },
      },
    })
    expect(SiteFeature.parse(feature)).toEqual(feature)
  })

  it('carries the index, health and breaches it is given', () => {
    const latest = latestSummary({ ts: NOW - 60_000, values: { pm25: 60, no2: 5 } }, NOW)
    const index = latestIndex(latest, NOW)
    const health = { devices: 2, ok: 1, suspect: 0, offline: 1, never: 0, last_seen: latest.ts }
    const feature = siteFeature(school, { latest, index, health, breaches: { open: 3 } })
    expect(feature.properties.index).toEqual({ band: 4, pollutant: 'pm25', bands: { pm25: 4, no2: 1 } })
    expect(feature.properties.health).toEqual(health)
    expect(feature.properties.breaches).toEqual({ open: 3 })
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
      index: NO_INDEX,
      health: NO_DEVICES,
      breaches: { open: 0 },
    })
  })

  it('rejects swapped or out-of-range coordinates and bad ids', () => {
    const base = siteFeature(school, null)
    expect(SiteFeature.safeParse({ ...base, geometry: { type: 'Point', coordinates: [13.2, 95] } }).success).toBe(false)
    expect(SiteFeature.safeParse({ ...base, geometry: { type: 'Point', coordinates: [13.2] } }).success).toBe(false)
    expect(SiteFeature.safeParse({ ...base, id: 'Not An Id' }).success).toBe(false)
  })
})

describe('latestIndex', () => {
  it('uses only values measured within INDEX_MAX_AGE_MS', () => {
    const latest = latestSummary(
      {
        ts: NOW - 60_000,
        values: { pm25: 100, pm10: 20 },
        metricTs: { pm25: NOW - INDEX_MAX_AGE_MS - 1, pm10: NOW - 60_000 },
      },
      NOW,
    )
    // PM2.5 100 would be "very poor", but it is older than the limit; PM10 20 is "fair".
    expect(latestIndex(latest, NOW)).toEqual({ band: 2, pollutant: 'pm10', bands: { pm10: 2 } })
    expect(latestIndex(latest, NOW - 2)).toEqual({ band: 5, pollutant: 'pm25', bands: { pm25: 5, pm10: 2 } })
  })

  it('is empty without a latest reading or without index pollutants', () => {
    expect(latestIndex(null, NOW)).toEqual(NO_INDEX)
    expect(latestIndex(latestSummary({ ts: NOW, values: { temp: 4, rh: 80 } }, NOW), NOW)).toEqual(NO_INDEX)
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
