import type { GuidelineLine } from '@skolluft/core'
import { scaleLines } from './chart-lines.ts'
import type { SeriesData } from './schemas.ts'

/**
 * What a panel chart shows, free of uPlot and the DOM (testable in Node): series aligned on one time
 * axis, guideline lines grouped by value, the top of the y scale, and the look of each line source.
 */

export interface ChartSeries {
  readonly label: string
  readonly values: (number | null)[]
}

export interface ChartData {
  /** The window asked for, seconds since the epoch: the x axis spans it even where data is missing. */
  readonly from: number
  readonly to: number
  /** Seconds since the epoch (uPlot's time unit). */
  readonly xs: number[]
  readonly series: ChartSeries[]
}

export const SERIES_COLOURS = ['#1f4e9c', '#c2410c', '#6d28d9', '#0f766e'] as const
const LINE_STYLES: Readonly<Record<GuidelineLine['source'], { colour: string; dash: number[] }>> = {
  who2021: { colour: '#1b7837', dash: [6, 4] },
  eu2008: { colour: '#762a83', dash: [2, 3] },
  eu2030: { colour: '#9a3412', dash: [10, 3, 2, 3] },
}
export const CHART_HEIGHT_PX = 220

export function lineStyle(line: GuidelineLine): { colour: string; dash: number[] } {
  return LINE_STYLES[line.source]
}

/** Chart data from a series response: one line of means, or one line per device for raw readings. */
export function chartData(series: SeriesData, meanLabel: string, deviceLabel: (id: string) => string): ChartData {
  const raw = series.every === 'raw'
  const from = Date.parse(series.from) / 1000
  const to = Date.parse(series.to) / 1000
  if (!raw) {
    const xs: number[] = []
    const values: (number | null)[] = []
    for (const p of series.points) {
      if (!('mean' in p)) continue
      xs.push(Date.parse(p.t) / 1000)
      values.push(p.mean)
    }
    return { from, to, xs, series: [{ label: meanLabel, values }] }
  }
  // Raw readings of several devices have different times: align them on the union of times.
  const byDevice = new Map<string, Map<number, number>>()
  const times = new Set<number>()
  for (const p of series.points) {
    if (!('value' in p)) continue
    const t = Date.parse(p.t) / 1000
    times.add(t)
    const device = p.device ?? ''
    let points = byDevice.get(device)
    if (points === undefined) {
      points = new Map()
      byDevice.set(device, points)
    }
    points.set(t, p.value)
  }
  const xs = [...times].sort((a, b) => a - b)
  const many = byDevice.size > 1
  return {
    from,
    to,
    xs,
    series: [...byDevice].map(([device, points]) => ({
      label: many ? deviceLabel(device) : meanLabel,
      values: xs.map((t) => points.get(t) ?? null),
    })),
  }
}

export interface LineGroup {
  readonly value: number
  label: string
  /** The first line of the group; its source sets colour and dash. */
  readonly line: GuidelineLine
}

/** Guideline lines with the same value share one line and one label ("WHO 2021 dygn · EU 2030 dygn"). */
export function groupLines(lines: readonly GuidelineLine[], label: (line: GuidelineLine) => string): LineGroup[] {
  const groups = new Map<number, LineGroup>()
  for (const line of lines) {
    const group = groups.get(line.value)
    if (group === undefined) groups.set(line.value, { value: line.value, label: label(line), line })
    else group.label = `${group.label} · ${label(line)}`
  }
  return [...groups.values()]
}

/** Top of the y scale: the data's maximum or the lowest short-term guideline, whichever is higher, plus headroom. */
export function yMax(data: ChartData, lines: readonly GuidelineLine[]): number {
  let max = 1
  for (const s of data.series) for (const v of s.values) if (v !== null && v > max) max = v
  const lowest = scaleLines(lines).reduce((m, l) => Math.min(m, l.value), Number.POSITIVE_INFINITY)
  if (Number.isFinite(lowest) && lowest > max) max = lowest
  return max * 1.12
}
