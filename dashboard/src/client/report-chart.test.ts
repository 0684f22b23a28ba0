import { describe, expect, it } from 'vitest'
import { LABEL_GAP_PX, niceTicks, profileChartModel, SERIES_STYLES, spreadLabels } from './report-chart.ts'

describe('report charts', () => {
  it('tells every series apart without colour: its own dash pattern, marker shape or fill', () => {
    const cues = SERIES_STYLES.map((s) => `${s.dash}|${s.marker}`)
    expect(new Set(cues).size).toBe(SERIES_STYLES.length)
    expect(new Set(SERIES_STYLES.map((s) => s.dash)).size).toBe(SERIES_STYLES.length)
    expect(new Set(SERIES_STYLES.map((s) => s.marker)).size).toBe(SERIES_STYLES.length)
  })

  it('makes a round axis from 0 that covers the largest value', () => {
    expect(niceTicks(22.4)).toEqual([0, 5, 10, 15, 20, 25])
    expect(niceTicks(3)).toEqual([0, 1, 2, 3])
    expect(niceTicks(0)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1])
    expect(niceTicks(180)).toEqual([0, 50, 100, 150, 200])
  })

  it('pushes direct labels apart, in order, and keeps them inside', () => {
    expect(spreadLabels([100, 101, 50], LABEL_GAP_PX, 0, 200)).toEqual([100, 100 + LABEL_GAP_PX, 50])
    const low = spreadLabels([199, 199], LABEL_GAP_PX, 0, 200)
    expect(Math.max(...low)).toBeLessThanOrEqual(200)
    expect(Math.abs((low[0] ?? 0) - (low[1] ?? 0))).toBe(LABEL_GAP_PX)
  })

  it('breaks a line where a bucket has no counted hour, and labels it at its last point', () => {
    const model = profileChartModel(['a', 'b', 'c', 'd'], [{ id: 'pm25', label: 'PM2.5', values: [1, 2, null, 4] }])
    const series = model.series[0]
    expect(series?.segments.map((seg) => seg.map((p) => p.index))).toEqual([[0, 1], [3]])
    const last = series?.segments[1]?.[0]
    expect(series?.labelY).toBe(last?.y)
    // 0 at the bottom of the plot, the top tick at its top.
    expect(model.yTicks[0]?.y).toBe(model.plot.bottom)
    expect(model.yTicks[model.yTicks.length - 1]?.y).toBe(model.plot.top)
  })

  it('labels every n-th category only', () => {
    const hours = Array.from({ length: 24 }, (_, h) => String(h))
    expect(profileChartModel(hours, [], 3).xTicks.map((t) => t.label)).toEqual([
      '0',
      '3',
      '6',
      '9',
      '12',
      '15',
      '18',
      '21',
    ])
  })
})
