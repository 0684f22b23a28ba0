import { describe, expect, it } from 'vitest'
import {
  BreachDetailSchema,
  FeatureCollectionSchema,
  parseFeatures,
  parseIncidents,
  parseReadings,
  problemIssues,
  SessionSchema,
} from './schemas.ts'

describe('API responses', () => {
  it('keeps valid sites and leaves out the ones it cannot draw', () => {
    const ok = {
      type: 'Feature',
      id: 'a',
      geometry: { type: 'Point', coordinates: [13.2, 55.7] },
      properties: {
        name: 'A',
        kind: 'school',
        latest: null,
        index: { band: 2, pollutant: 'pm25', bands: { pm25: 2 } },
        health: { devices: 1, ok: 1, suspect: 0, offline: 0, never: 0, last_seen: null },
        breaches: { open: 0 },
      },
    }
    const noFields = { ...ok, id: 'b', properties: { name: 'B', kind: 'preschool' } }
    const noCoordinates = { ...ok, id: 'c', geometry: { type: 'Point', coordinates: [13.2] } }
    const collection = FeatureCollectionSchema.safeParse({
      type: 'FeatureCollection',
      features: [ok, noFields, noCoordinates, 7],
    })
    expect(collection.success).toBe(true)
    if (!collection.success) return
    const { sites, invalid } = parseFeatures(collection.data.features)
    expect(sites.map((s) => s.id)).toEqual(['a', 'b'])
    expect(invalid).toBe(2)
  })

  it('keeps the well-formed readings of a batch', () => {
    expect(
      parseReadings([
        { site: 'a', device: 'd', ts: '2026-11-30T12:00:00Z', values: { pm25: 3 } },
        { site: 'b', values: { pm25: 3 } },
        'junk',
      ]),
    ).toEqual([{ site: 'a', device: 'd', ts: '2026-11-30T12:00:00Z', values: { pm25: 3 } }])
    expect(parseReadings({ not: 'an array' })).toEqual([])
  })

  it('reads a session with or without a user', () => {
    expect(SessionSchema.safeParse({ user: null, csrfToken: null, publicMap: true, setupOpen: false }).success).toBe(
      true,
    )
    expect(SessionSchema.safeParse({ user: null, csrfToken: null }).success).toBe(false)
  })

  it("keeps the well-formed items of a problem's errors", () => {
    expect(problemIssues([{ path: 'email', message: 'Invalid email address' }, { path: 3 }, 'junk'])).toEqual([
      { path: 'email', message: 'Invalid email address' },
    ])
    expect(problemIssues(undefined)).toEqual([])
  })

  it('keeps the breach incidents it can show and leaves out the rest', () => {
    // The shape of api/src/routes/breaches.ts publicIncident.
    const ok = {
      id: 'inc_a',
      site: 'site-a',
      pollutant: 'pm25',
      rule: 'who2021-aqg-pm25-day',
      profile: { id: 'who2021-aqg', version: '2026-11-30' },
      severity: 'info',
      threshold: 15,
      start: '2026-11-28T23:00:00.000Z',
      end: null,
      opened_at: '2026-11-28T23:00:00.000Z',
      closed_at: null,
      peak: 31.5,
      peak_at: '2026-11-29T23:00:00.000Z',
      escalations: [],
      retrospective: false,
      acknowledged: null,
      withdrawn_at: null,
    }
    const anonymousAck = { ...ok, id: 'inc_b', acknowledged: { at: '2026-11-30T08:00:00.000Z', by: null } }
    const badTime = { ...ok, id: 'inc_c', start: 'yesterday' }
    const noPeak = { ...ok, id: 'inc_d', peak: null }
    const { incidents, invalid } = parseIncidents([ok, anonymousAck, badTime, noPeak, 'junk'])
    expect(incidents.map((i) => i.id)).toEqual(['inc_a', 'inc_b'])
    expect(invalid).toBe(3)
    const detail = BreachDetailSchema.safeParse({
      ...ok,
      comments: [{ at: ok.start, actor: 'user:u1', text: 'Vädrat' }],
    })
    expect(detail.success && detail.data.comments).toEqual([{ at: ok.start, actor: 'user:u1', text: 'Vädrat' }])
    expect(BreachDetailSchema.safeParse(ok).success).toBe(true)
  })
})
