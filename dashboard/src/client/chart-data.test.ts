import { describe, expect, it } from 'vitest'
import { chartData, groupLines, yMax } from './chart-data.ts'
import { chartLines, lineLabel, seriesRequest, seriesUrl } from './chart-lines.ts'
import { translate } from './i18n.ts'

const HOUR_MS = 3_600_000

describe('guideline lines per chart', () => {
  it('shows the hour and day lines on an hourly chart, not the annual ones', () => {
    const lines = chartLines('no2', '1h', '7d')
    expect(lines.map((l) => `${l.source}:${l.period}:${l.value}`).sort()).toEqual(
      ['eu2008:hour:200', 'eu2030:day:50', 'eu2030:hour:200', 'who2021:day:25'].sort(),
    )
  })

  it('shows day lines on a daily chart, and the annual lines on the year chart', () => {
    expect(chartLines('pm25', '1d', '30d').every((l) => l.period === 'day')).toBe(true)
    const year = chartLines('pm25', '1d', '1y')
    expect(year.some((l) => l.period === 'year' && l.value === 5)).toBe(true)
    expect(year.some((l) => l.period === 'hour')).toBe(false)
  })

  it('has no lines for quantities without guidelines', () => {
    expect(chartLines('temp', '1h', '24h')).toEqual([])
    expect(chartLines('pm1', '1d', '1y')).toEqual([])
  })

  it('labels a line with its source and period in the page language', () => {
    const [line] = chartLines('pm10', '1d', '30d').filter((l) => l.source === 'who2021')
    expect(line).toBeDefined()
    if (line === undefined) return
    expect(lineLabel((k, p) => translate('sv', k, p), line)).toBe('WHO 2021 dygn')
    expect(lineLabel((k, p) => translate('en', k, p), line)).toBe('WHO 2021 24 h')
  })

  it('draws lines with the same value once, with both labels', () => {
    const groups = groupLines(chartLines('pm10', '1h', '24h'), (l) => l.source)
    const at45 = groups.find((g) => g.value === 45)
    expect(at45?.label).toBe('who2021 · eu2030')
    expect(groups.map((g) => g.value).sort((a, b) => a - b)).toEqual([45, 50])
  })
})

describe('series requests', () => {
  const now = Date.parse('2026-11-30T12:00:00Z')

  it('asks for raw readings over 24 h only when wanted, hourly or daily means otherwise', () => {
    expect(seriesRequest('24h', now, true)).toEqual({ from: now - 24 * HOUR_MS, to: now, every: 'raw' })
    expect(seriesRequest('24h', now, false).every).toBe('1h')
    expect(seriesRequest('7d', now, true).every).toBe('1h')
    expect(seriesRequest('1y', now, true)).toEqual({ from: now - 365 * 24 * HOUR_MS, to: now, every: '1d' })
  })

  it('builds the series URL with ISO times and an escaped site id', () => {
    const url = seriesUrl('a b', 'pm25', { from: now - HOUR_MS, to: now, every: '1h' })
    expect(url).toBe(
      '/api/v1/sites/a%20b/series?metric=pm25&every=1h&from=2026-11-30T11%3A00%3A00.000Z&to=2026-11-30T12%3A00%3A00.000Z',
    )
  })
})

describe('chart data', () => {
  const base = { site: 's', metric: 'pm25', from: '2026-11-30T00:00:00Z', to: '2026-11-30T03:00:00Z' }

  it('takes the means of an aggregate series, gaps as null', () => {
    const data = chartData(
      {
        ...base,
        every: '1h',
        points: [
          { t: '2026-11-30T00:00:00Z', mean: 4, min: 1, max: 8, n: 60, coverage: 1, valid: true },
          { t: '2026-11-30T01:00:00Z', mean: null, min: null, max: null, n: 0, coverage: 0, valid: false },
        ],
      },
      'Mean',
      (id) => id,
    )
    expect(data.xs).toEqual([Date.parse('2026-11-30T00:00:00Z') / 1000, Date.parse('2026-11-30T01:00:00Z') / 1000])
    expect(data.series).toEqual([{ label: 'Mean', values: [4, null] }])
    expect(data.to - data.from).toBe(3 * 3600)
  })

  it('aligns raw readings of several devices on the union of their times', () => {
    const data = chartData(
      {
        ...base,
        every: 'raw',
        points: [
          { t: '2026-11-30T00:00:00Z', value: 1, device: 'a' },
          { t: '2026-11-30T00:01:00Z', value: 2, device: 'b' },
          { t: '2026-11-30T00:02:00Z', value: 3, device: 'a' },
        ],
      },
      'Mean',
      (id) => `dev ${id}`,
    )
    expect(data.xs).toHaveLength(3)
    expect(data.series).toEqual([
      { label: 'dev a', values: [1, null, 3] },
      { label: 'dev b', values: [null, 2, null] },
    ])
  })

  it('lets the y scale reach the lowest short-term guideline, not an annual one', () => {
    const data = { from: 0, to: 1, xs: [0], series: [{ label: 'm', values: [3] }] }
    const lines = chartLines('pm25', '1d', '1y')
    expect(yMax(data, lines)).toBeCloseTo(15 * 1.12)
    expect(yMax({ ...data, series: [{ label: 'm', values: [40] }] }, lines)).toBeCloseTo(40 * 1.12)
    expect(yMax(data, [])).toBeCloseTo(3 * 1.12)
  })
})
