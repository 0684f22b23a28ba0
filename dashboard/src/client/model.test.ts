import { INDEX_MAX_AGE_MS as CORE_INDEX_MAX_AGE_MS } from '@skolluft/core'
import { describe, expect, it } from 'vitest'
import {
  allDemo,
  applyReading,
  clockOffsetMs,
  distinctSorted,
  filterSites,
  INDEX_MAX_AGE_MS,
  keepNewerLatest,
  liveReading,
  NO_FILTERS,
  normalizeText,
  replayReading,
  type SiteState,
  type SortContext,
  siteFromFeature,
  sortSites,
  valueTime,
} from './model.ts'
import type { SiteFeatureData } from './schemas.ts'

const NOW = Date.parse('2026-11-30T12:00:00Z')
const iso = (ms: number) => new Date(ms).toISOString()

function feature(id: string, props: Partial<SiteFeatureData['properties']> = {}): SiteFeatureData {
  return {
    type: 'Feature',
    id,
    geometry: { type: 'Point', coordinates: [13.19, 55.7] },
    properties: { name: id, kind: 'school', locality: 'Lund', demo: false, latest: null, ...props },
  }
}

function site(id: string, props: Partial<SiteFeatureData['properties']> = {}): SiteState {
  return siteFromFeature(feature(id, props))
}

const withPm25 = (id: string, pm25: number, ageMs = 0, props: Partial<SiteFeatureData['properties']> = {}) =>
  site(id, {
    latest: { ts: iso(NOW - ageMs), values: { pm25 }, times: { pm25: iso(NOW - ageMs) }, age_s: 0 },
    ...props,
  })

describe('sites from GeoJSON', () => {
  it('reads coordinates longitude first (RFC 7946) and leaves absent summaries empty', () => {
    const s = site('a')
    expect([s.lat, s.lon]).toEqual([55.7, 13.19])
    expect(s.health).toBeNull()
    expect(s.openBreaches).toBe(0)
    expect(s.devices).toBeNull()
  })

  it('keeps only known metrics and parses their times', () => {
    const s = site('a', {
      latest: { ts: iso(NOW), values: { pm25: 4, bogus: 1 }, times: { pm25: iso(NOW - 1000) }, age_s: 3 },
    })
    expect(s.latest?.values).toEqual({ pm25: 4 })
    expect(s.latest?.times.pm25).toBe(NOW - 1000)
  })

  it('derives the clock offset from a served age', () => {
    const f = feature('a', { latest: { ts: iso(NOW - 10_000), values: { pm25: 1 }, age_s: 10 } })
    expect(clockOffsetMs([f], NOW - 5_000)).toBe(5_000)
    expect(clockOffsetMs([feature('b')], NOW)).toBe(0)
  })
})

describe('marker values', () => {
  it('mirrors the core constant for when a value is too old to colour', () => {
    expect(INDEX_MAX_AGE_MS).toBe(CORE_INDEX_MAX_AGE_MS)
  })

  it('bands the latest value, with a cut-point in the lower band', () => {
    expect(liveReading(withPm25('a', 15), 'pm25', NOW)).toEqual({ value: 15, band: 2 })
    expect(liveReading(withPm25('a', 15.1), 'pm25', NOW)).toEqual({ value: 15.1, band: 3 })
    expect(liveReading(withPm25('a', 15), 'no2', NOW)).toEqual({ value: null, band: null })
  })

  it('shows nothing for a value older than the index allows', () => {
    expect(liveReading(withPm25('a', 40, INDEX_MAX_AGE_MS + 1), 'pm25', NOW)).toEqual({ value: null, band: null })
    expect(liveReading(withPm25('a', 40, INDEX_MAX_AGE_MS), 'pm25', NOW).band).toBe(3)
  })

  it('takes replay values per hour', () => {
    const replay = { sites: { a: [3, null, 200] } }
    expect(replayReading(replay, 'a', 0, 'pm25')).toEqual({ value: 3, band: 1 })
    expect(replayReading(replay, 'a', 1, 'pm25')).toEqual({ value: null, band: null })
    expect(replayReading(replay, 'a', 2, 'pm25').band).toBe(6)
    expect(replayReading(replay, 'missing', 0, 'pm25').band).toBeNull()
  })
})

describe('live readings', () => {
  it('merges a newer reading per metric and ignores an older one', () => {
    const s = withPm25('a', 10, 60_000)
    expect(applyReading(s, { site: 'a', ts: iso(NOW), values: { pm25: 80, no2: 30, nope: 1 } })).toBe(true)
    expect(liveReading(s, 'pm25', NOW)).toEqual({ value: 80, band: 4 })
    expect(s.latest?.ts).toBe(NOW)
    expect(applyReading(s, { site: 'a', ts: iso(NOW - 120_000), values: { pm25: 1 } })).toBe(false)
    expect(s.latest?.values.pm25).toBe(80)
  })

  it('gives a site without data its first values', () => {
    const s = site('a')
    expect(applyReading(s, { site: 'a', ts: iso(NOW), values: { pm10: 50 } })).toBe(true)
    expect(valueTime(s, 'pm10')).toBe(NOW)
    expect(applyReading(s, { site: 'a', ts: 'not a time', values: { pm10: 1 } })).toBe(false)
  })

  it('keeps live values newer than a refetched snapshot', () => {
    const fresh = withPm25('a', 5, 30_000)
    const old = withPm25('a', 70, 0)
    keepNewerLatest(fresh, old)
    expect(fresh.latest?.values.pm25).toBe(70)
    const newer = withPm25('a', 6, 0)
    keepNewerLatest(newer, withPm25('a', 99, 60_000))
    expect(newer.latest?.values.pm25).toBe(6)
  })
})

describe('filters', () => {
  const sites = [
    site('ängen', { kind: 'preschool', locality: 'Dalby', name: 'Förskolan Ängen' }),
    site('b', { kind: 'school', locality: 'Lund', breaches: { open: 1 } }),
    site('c', {
      kind: 'school',
      locality: 'Lund',
      health: { devices: 2, ok: 1, offline: 1, suspect: 0, last_seen: null },
    }),
  ]

  it('filters by kind, locality, breaches and offline sensors', () => {
    const ids = (f: typeof NO_FILTERS) => filterSites(sites, f).map((s) => s.id)
    expect(ids(NO_FILTERS)).toEqual(['ängen', 'b', 'c'])
    expect(ids({ ...NO_FILTERS, kind: 'school' })).toEqual(['b', 'c'])
    expect(ids({ ...NO_FILTERS, locality: 'Dalby' })).toEqual(['ängen'])
    expect(ids({ ...NO_FILTERS, breachesOnly: true })).toEqual(['b'])
    expect(ids({ ...NO_FILTERS, offlineOnly: true })).toEqual(['c'])
    expect(ids({ ...NO_FILTERS, kind: 'school', offlineOnly: true, breachesOnly: true })).toEqual([])
  })

  it('searches names without regard to case or diacritics', () => {
    expect(normalizeText('  Förskolan ÄNGEN ')).toBe('forskolan angen')
    expect(filterSites(sites, { ...NO_FILTERS, query: 'angen' }).map((s) => s.id)).toEqual(['ängen'])
  })

  it('lists distinct localities in Swedish order', () => {
    expect(distinctSorted(['Östra', 'Lund', null, 'Åkarp', 'Lund', ''], new Intl.Collator('sv'))).toEqual([
      'Lund',
      'Åkarp',
      'Östra',
    ])
  })

  it('says when every site is demo data', () => {
    expect(allDemo([site('a', { demo: true })])).toBe(true)
    expect(allDemo([site('a', { demo: true }), site('b')])).toBe(false)
    expect(allDemo([])).toBe(false)
  })
})

describe('sorting the list', () => {
  const ctx: SortContext = {
    collator: new Intl.Collator('sv', { numeric: true }),
    reading: (s) => liveReading(s, 'pm25', NOW),
    time: (s) => valueTime(s, 'pm25'),
    kindLabel: (k) => k,
  }
  const sites = [withPm25('b', 30), site('none'), withPm25('a', 30), withPm25('c', 4)]

  it('sorts by value with ties in name order and sites without data last, both ways', () => {
    expect(sortSites(sites, 'value', 'ascending', ctx).map((s) => s.id)).toEqual(['c', 'a', 'b', 'none'])
    expect(sortSites(sites, 'value', 'descending', ctx).map((s) => s.id)).toEqual(['a', 'b', 'c', 'none'])
  })

  it('sorts names numerically and by status with breaches first when descending', () => {
    const named = [site('x', { name: 'Skola 10' }), site('y', { name: 'Skola 9' })]
    expect(sortSites(named, 'name', 'ascending', ctx).map((s) => s.name)).toEqual(['Skola 9', 'Skola 10'])
    const status = [
      site('ok', { health: { devices: 1, ok: 1, offline: 0, suspect: 0 } }),
      site('breach', { breaches: { open: 2 } }),
      site('off', { health: { devices: 1, ok: 0, offline: 1, suspect: 0 } }),
    ]
    expect(sortSites(status, 'status', 'descending', ctx).map((s) => s.id)).toEqual(['breach', 'off', 'ok'])
  })

  it('does not change the input', () => {
    const copy = [...sites]
    sortSites(sites, 'band', 'descending', ctx)
    expect(sites).toEqual(copy)
  })
})
