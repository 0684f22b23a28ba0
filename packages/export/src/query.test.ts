import type { Site } from '@skolluft/core'
import { describe, expect, it } from 'vitest'
import { buildExportRequest, ExportQueryError, ExportQueryParams, parseAfter } from './query.ts'

const site = (id: string, lon: number, lat: number): Site => ({
  id,
  name: id,
  kind: 'school',
  stages: [],
  address: null,
  locality: null,
  municipality: 'Lund',
  lat,
  lon,
  demo: false,
})
const SITES = [site('a', 13.1, 55.7), site('b', 13.3, 55.8)]

function request(query: Record<string, string>) {
  const parsed = ExportQueryParams.safeParse({
    resolution: 'raw',
    from: '2026-01-01T00:00:00Z',
    to: '2026-01-02T00:00:00Z',
    ...query,
  })
  if (!parsed.success) throw new Error(parsed.error.message)
  return buildExportRequest(parsed.data, SITES, 'all', () => {
    throw new Error('refused')
  })
}

describe('export query', () => {
  it('defaults to the newest schema, raw values and CSV', () => {
    const r = request({})
    expect([r.schema, r.values, r.format]).toEqual([2, 'raw', 'csv'])
    expect(request({ schema: '1' }).schema).toBe(1)
    expect(ExportQueryParams.safeParse({ resolution: 'raw', from: 'x', to: 'y', schema: '3' }).success).toBe(false)
    expect(request({ format: 'parquet' }).format).toBe('parquet')
  })

  it('refuses corrected values in schema 1, which has no column for them', () => {
    expect(() => request({ schema: '1', values: 'corrected' })).toThrow(/values=corrected needs schema=2/)
    expect(request({ values: 'corrected' }).values).toBe('corrected')
  })

  it('reads `after` as the first cells of the last row, per resolution', () => {
    expect(parseAfter('raw', '2026-01-01T00:05:00.000Z,a,dev-1,no2')).toEqual({
      siteId: 'a',
      deviceId: 'dev-1',
      ts: Date.UTC(2026, 0, 1, 0, 5),
      metricIndex: 3,
    })
    // A raw row of a device at no site has an empty site_id.
    expect(parseAfter('raw', '2026-01-01T00:05:00.000Z,,dev-1,pm1').siteId).toBe('')
    expect(parseAfter('hourly', '2026-01-01T05:00:00.000Z,b,rh')).toEqual({
      siteId: 'b',
      deviceId: '',
      ts: Date.UTC(2026, 0, 1, 5),
      metricIndex: 5,
    })
    expect(request({ after: '2026-01-01T00:05:00.000Z,a,dev-1,no2' }).after?.metricIndex).toBe(3)
  })

  it('says what is wrong with a bad `after`', () => {
    const bad: [string, 'raw' | 'daily', RegExp][] = [
      ['2026-01-01T00:05:00.000Z,a,dev-1', 'raw', /expected 4 fields.*time,site_id,device_id,metric/],
      ['yesterday,a,dev-1,no2', 'raw', /not an ISO 8601 date-time/],
      ['2026-01-01T00:05:00.000Z,a,dev-1,ozone', 'raw', /"ozone" is not a metric/],
      ['2026-01-01T00:05:00.000Z,,pm25', 'daily', /site_id is empty/],
      ['2026-01-01T00:05:00.000Z,a,,pm25', 'raw', /device_id is not a device id/],
    ]
    for (const [text, resolution, message] of bad) {
      let error: unknown
      try {
        parseAfter(resolution, text)
      } catch (e) {
        error = e
      }
      expect(error).toBeInstanceOf(ExportQueryError)
      expect(error instanceof ExportQueryError ? [error.code, error.status] : []).toEqual(['invalid_after', 400])
      expect(String(error)).toMatch(message)
    }
  })

  it('resolves sites, bbox and metrics; an unknown site is a 404', () => {
    expect(request({ bbox: '13.0,55.6,13.2,55.75', metrics: 'no2,pm25' }).query).toMatchObject({
      siteIds: ['a'],
      metrics: ['pm25', 'no2'],
    })
    let error: unknown
    try {
      request({ sites: 'a,nope' })
    } catch (e) {
      error = e
    }
    expect(error instanceof ExportQueryError ? [error.code, error.status] : error).toEqual(['site_not_found', 404])
  })
})
