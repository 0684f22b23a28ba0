/// <reference lib="dom" />
import type { GuidelineLine } from '@skolluft/core'
import uPlot from 'uplot'
import { CHART_HEIGHT_PX, type ChartData, groupLines, lineStyle, SERIES_COLOURS, yMax } from './chart-data.ts'

/**
 * A panel chart: uPlot (canvas, ~50 kB) with guideline lines drawn in a draw hook, each with its
 * label written on the line, so the lines are told apart by text and dash pattern, not by colour
 * alone. The y scale always reaches the lowest guideline, so there is something to compare with.
 */

export interface Chart {
  destroy(): void
}

export interface ChartText {
  readonly unit: string
  readonly timeLabel: string
  readonly lineLabel: (line: GuidelineLine) => string
  /** Axis tick of a time, epoch ms; `span` is the chart's time span in ms (hours or dates). */
  readonly tick: (epochMs: number, spanMs: number) => string
  /** A time in the cursor legend. */
  readonly time: (epochMs: number) => string
}

export function renderChart(
  container: HTMLElement,
  data: ChartData,
  lines: readonly GuidelineLine[],
  text: ChartText,
): Chart {
  const grouped = groupLines(lines, text.lineLabel)
  const top = yMax(data, lines)
  const window: [number, number] =
    Number.isFinite(data.from) && Number.isFinite(data.to) && data.from < data.to
      ? [data.from, data.to]
      : [data.xs[0] ?? 0, data.xs[data.xs.length - 1] ?? 1]
  const span = (window[1] - window[0]) * 1000

  const drawLines = (u: uPlot) => {
    const ctx = u.ctx
    const { left, top, width, height } = u.bbox
    const ratio = uPlot.pxRatio
    for (const g of grouped) {
      const y = Math.round(u.valToPos(g.value, 'y', true))
      if (y < top || y > top + height) continue
      const style = lineStyle(g.line)
      ctx.save()
      ctx.strokeStyle = style.colour
      ctx.lineWidth = 1.5 * ratio
      ctx.setLineDash(style.dash.map((d) => d * ratio))
      ctx.beginPath()
      ctx.moveTo(left, y)
      ctx.lineTo(left + width, y)
      ctx.stroke()
      ctx.fillStyle = style.colour
      ctx.font = `${11 * ratio}px system-ui, sans-serif`
      ctx.textAlign = 'right'
      ctx.textBaseline = 'bottom'
      ctx.fillText(`${g.label}: ${g.value}`, left + width - 4 * ratio, y - 2 * ratio)
      ctx.restore()
    }
  }

  const opts: uPlot.Options = {
    width: Math.max(200, container.clientWidth),
    height: CHART_HEIGHT_PX,
    scales: {
      x: { time: true, range: () => window },
      y: {
        range: (_u, dataMin) => [Math.min(0, dataMin ?? 0), top],
      },
    },
    series: [
      { label: text.timeLabel, value: (_u, v) => (v === null ? '–' : text.time(v * 1000)) },
      ...data.series.map((s, i) => ({
        label: s.label,
        stroke: SERIES_COLOURS[i % SERIES_COLOURS.length],
        width: 1.5,
        spanGaps: data.series.length > 1,
        points: { show: data.xs.length < 60 },
      })),
    ],
    axes: [
      { values: (_u, splits) => splits.map((v) => text.tick(v * 1000, span)), space: 60 },
      { label: text.unit, size: 56 },
    ],
    legend: { show: true, live: true },
    cursor: { drag: { x: false, y: false } },
    hooks: { draw: [drawLines] },
  }
  const plot = new uPlot(opts, [data.xs, ...data.series.map((s) => s.values)], container)
  const observer = new ResizeObserver(() => {
    const width = Math.max(200, container.clientWidth)
    if (width !== plot.width) plot.setSize({ width, height: CHART_HEIGHT_PX })
  })
  observer.observe(container)
  return {
    destroy() {
      observer.disconnect()
      plot.destroy()
    },
  }
}
