import { DAY_MS, HOUR_MS } from '@skolluft/core'
import { describe, expect, it } from 'vitest'
import { HttpProblem } from './problem.ts'
import { MAX_SERIES_SPAN, parseSeriesQuery } from './series-query.ts'

const NOW = Date.parse('2026-11-30T12:00:00Z')

function problemOf(query: Record<string, string>): HttpProblem {
  try {
    parseSeriesQuery(query, NOW)
  } catch (error) {
    if (error instanceof HttpProblem) return error
    throw error
  }
  throw new Error('expected a problem')
}

describe('parseSeriesQuery', () => {
  it('defaults to the last 24 h of hourly means', () => {
    expect(parseSeriesQuery({ metric: 'pm25' }, NOW)).toEqual({
      metric: 'pm25',
      every: '1h',
      from: NOW - DAY_MS,
      to: NOW,
      deviceId: undefined,
    })
  })

  it('takes offsets and puts from 24 h before a given to', () => {
    const q = parseSeriesQuery({ metric: 'no2', to: '2026-11-30T09:00:00+01:00', every: 'raw', device: 'aq-1' }, NOW)
    expect(q.to).toBe(Date.parse('2026-11-30T08:00:00Z'))
    expect(q.from).toBe(q.to - DAY_MS)
    expect(q.deviceId).toBe('aq-1')
  })

  it('names each bad parameter', () => {
    const problem = problemOf({ metric: 'co2', from: 'yesterday', every: '5m' })
    expect(problem.status).toBe(400)
    expect(problem.errors?.map((e) => e.path).sort()).toEqual(['every', 'from', 'metric'])
    expect(problem.detail).toContain('metric must be one of pm1, pm25, pm10, no2, temp, rh')
    expect(problem.detail).toContain('from must be an ISO 8601 date-time')
  })

  it('requires metric, refuses impossible dates and unknown parameters', () => {
    expect(problemOf({}).detail).toContain('metric is required')
    expect(problemOf({ metric: 'pm25', from: '2026-02-31T00:00:00Z' }).errors?.[0]?.path).toBe('from')
    expect(problemOf({ metric: 'pm25', metrc: 'pm10' }).detail).toContain('unknown query parameter: metrc')
  })

  it('refuses from at or after to', () => {
    const problem = problemOf({ metric: 'pm25', from: '2026-11-30T10:00:00Z', to: '2026-11-30T10:00:00Z' })
    expect(problem.code).toBe('invalid_request')
    expect(problem.detail).toContain('must be before to')
  })

  it('allows exactly the span cap and refuses one hour more, saying how to split', () => {
    for (const every of ['raw', '1h', '1d'] as const) {
      const span = MAX_SERIES_SPAN[every].ms
      const to = new Date(NOW).toISOString()
      expect(parseSeriesQuery({ metric: 'pm25', every, from: new Date(NOW - span).toISOString(), to }, NOW).every).toBe(
        every,
      )
      const problem = problemOf({ metric: 'pm25', every, from: new Date(NOW - span - HOUR_MS).toISOString(), to })
      expect(problem.code).toBe('span_too_long')
      expect(problem.detail).toContain(`at most ${MAX_SERIES_SPAN[every].label}`)
      expect(problem.detail).toContain('split')
    }
  })
})
