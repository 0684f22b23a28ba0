/// <reference lib="dom" />

/**
 * The report's profile charts (hour of day, day of week, season) as SVG, made for paper: readable in black and
 * white, so each series has its own dash pattern and marker shape and its name written at the end of its line (no
 * legend to match by colour), axes carry their labels and units. SVG scales to A4 without blurring and prints
 * without a canvas. Presentation attributes only (the CSP allows no inline style).
 *
 * `profileChartModel` is the pure geometry (tested); `renderProfileChart` turns it into elements.
 */

export type MarkerShape = 'circle' | 'square' | 'triangle' | 'diamond'

export interface SeriesStyle {
  /** SVG stroke-dasharray; '' = solid. */
  readonly dash: string
  readonly marker: MarkerShape
  /** Filled or open marker: a second cue besides the shape. */
  readonly filled: boolean
  /** Okabe–Ito colours (distinct for colour-blind readers); never the only cue. */
  readonly colour: string
}

/** In series order: solid + filled square, long dashes + open circle, dots + open triangle, dash-dot + filled diamond. */
export const SERIES_STYLES: readonly SeriesStyle[] = [
  { dash: '', marker: 'square', filled: true, colour: '#000000' },
  { dash: '8 4', marker: 'circle', filled: false, colour: '#0072B2' },
  { dash: '2 3', marker: 'triangle', filled: false, colour: '#D55E00' },
  { dash: '9 3 2 3', marker: 'diamond', filled: true, colour: '#009E73' },
]

export interface ChartSeries {
  readonly id: string
  readonly label: string
  /** One per category; null = no counted hour. */
  readonly values: readonly (number | null)[]
}

export const CHART_WIDTH = 640
export const CHART_HEIGHT = 260
const MARGIN = { left: 56, right: 92, top: 14, bottom: 46 }
/** Direct labels closer than this (px) are pushed apart, so two lines ending together stay legible. */
export const LABEL_GAP_PX = 13

export interface ChartPoint {
  readonly x: number
  readonly y: number
  readonly value: number
  readonly index: number
}

export interface SeriesGeometry {
  readonly id: string
  readonly label: string
  readonly style: SeriesStyle
  /** Runs of consecutive points; a null value breaks the line. */
  readonly segments: readonly (readonly ChartPoint[])[]
  /** Where the name is written (right of the plot), null when the series has no value. */
  readonly labelY: number | null
}

export interface ChartModel {
  readonly width: number
  readonly height: number
  readonly plot: { readonly left: number; readonly top: number; readonly right: number; readonly bottom: number }
  readonly yTicks: readonly { readonly value: number; readonly y: number }[]
  readonly xTicks: readonly { readonly label: string; readonly x: number }[]
  readonly series: readonly SeriesGeometry[]
}

/** A "nice" axis: 0 to a round maximum covering `max`, ticks at 1, 2, 2.5 or 5 × 10^k, at most 6 ticks. */
export function niceTicks(max: number): number[] {
  const top = max > 0 && Number.isFinite(max) ? max : 1
  const raw = top / 5
  const magnitude = 10 ** Math.floor(Math.log10(raw))
  const step = ([1, 2, 2.5, 5, 10].find((m) => m * magnitude >= raw) ?? 10) * magnitude
  const count = Math.ceil(top / step - 1e-9)
  return Array.from({ length: count + 1 }, (_, i) => Math.round(i * step * 1e6) / 1e6)
}

/** Pushes label positions apart to at least `gap`, keeping their order, within [min, max] where possible. */
export function spreadLabels(ys: readonly number[], gap: number, min: number, max: number): number[] {
  const order = ys.map((y, i) => ({ y, i })).sort((a, b) => a.y - b.y)
  const placed = order.map((o) => o.y)
  for (let k = 1; k < placed.length; k++) {
    const prev = placed[k - 1] ?? min
    if ((placed[k] ?? 0) < prev + gap) placed[k] = prev + gap
  }
  // Overflowing the bottom: shift the run back up.
  const last = placed[placed.length - 1]
  if (last !== undefined && last > max) {
    const shift = last - max
    for (let k = 0; k < placed.length; k++) placed[k] = Math.max(min, (placed[k] ?? 0) - shift)
  }
  const out = new Array<number>(ys.length)
  order.forEach((o, k) => {
    out[o.i] = placed[k] ?? o.y
  })
  return out
}

/**
 * The geometry of a category chart: `categories` along x (band centres), 0 to a nice maximum along y.
 * `tickEvery` labels only every n-th category (24 hours: every 3rd).
 */
export function profileChartModel(
  categories: readonly string[],
  series: readonly ChartSeries[],
  tickEvery = 1,
): ChartModel {
  const plot = {
    left: MARGIN.left,
    top: MARGIN.top,
    right: CHART_WIDTH - MARGIN.right,
    bottom: CHART_HEIGHT - MARGIN.bottom,
  }
  const n = Math.max(1, categories.length)
  const band = (plot.right - plot.left) / n
  const xOf = (i: number) => plot.left + (i + 0.5) * band
  const max = Math.max(0, ...series.flatMap((s) => s.values.filter((v): v is number => v !== null)))
  const ticks = niceTicks(max)
  const top = ticks[ticks.length - 1] ?? 1
  const yOf = (v: number) => plot.bottom - (v / top) * (plot.bottom - plot.top)
  const geometry = series.map((s, k) => {
    const segments: ChartPoint[][] = []
    let run: ChartPoint[] = []
    s.values.forEach((value, index) => {
      if (value === null) {
        if (run.length > 0) segments.push(run)
        run = []
        return
      }
      run.push({ x: xOf(index), y: yOf(value), value, index })
    })
    if (run.length > 0) segments.push(run)
    const lastSegment = segments[segments.length - 1]
    const lastPoint = lastSegment?.[lastSegment.length - 1]
    return {
      id: s.id,
      label: s.label,
      style: SERIES_STYLES[k % SERIES_STYLES.length] ?? { dash: '', marker: 'circle', filled: true, colour: '#000' },
      segments,
      labelY: lastPoint === undefined ? null : lastPoint.y,
    }
  })
  const withLabel = geometry.filter((g) => g.labelY !== null)
  const spread = spreadLabels(
    withLabel.map((g) => g.labelY ?? 0),
    LABEL_GAP_PX,
    plot.top + 4,
    plot.bottom,
  )
  const labelOf = new Map(withLabel.map((g, i) => [g.id, spread[i] ?? g.labelY]))
  return {
    width: CHART_WIDTH,
    height: CHART_HEIGHT,
    plot,
    yTicks: ticks.map((value) => ({ value, y: yOf(value) })),
    xTicks: categories.flatMap((label, i) => (i % tickEvery === 0 ? [{ label, x: xOf(i) }] : [])),
    series: geometry.map((g) => ({ ...g, labelY: labelOf.get(g.id) ?? null })),
  }
}

const SVG_NS = 'http://www.w3.org/2000/svg'

function svg<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attrs: Readonly<Record<string, string | number>>,
  ...children: (SVGElement | string)[]
): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG_NS, tag)
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, String(value))
  for (const child of children) el.append(typeof child === 'string' ? document.createTextNode(child) : child)
  return el
}

function marker(shape: MarkerShape, x: number, y: number, style: SeriesStyle): SVGElement {
  const paint = { fill: style.filled ? style.colour : '#ffffff', stroke: style.colour, 'stroke-width': 1.5 }
  const r = 3.5
  if (shape === 'circle') return svg('circle', { cx: x, cy: y, r, ...paint })
  if (shape === 'square') return svg('rect', { x: x - r, y: y - r, width: 2 * r, height: 2 * r, ...paint })
  const points =
    shape === 'triangle'
      ? [
          [x, y - r - 1],
          [x + r + 0.5, y + r],
          [x - r - 0.5, y + r],
        ]
      : [
          [x, y - r - 1],
          [x + r + 1, y],
          [x, y + r + 1],
          [x - r - 1, y],
        ]
  return svg('polygon', { points: points.map((p) => p.join(',')).join(' '), ...paint })
}

export interface ProfileChartText {
  /** The chart's accessible name (also its <title>). */
  readonly title: string
  readonly xLabel: string
  /** With the unit, e.g. "µg/m³". */
  readonly yLabel: string
  readonly formatTick: (value: number) => string
}

const fmt = (n: number) => String(Math.round(n * 10) / 10)

export function renderProfileChart(model: ChartModel, text: ProfileChartText, testId: string): SVGSVGElement {
  const { plot } = model
  const root = svg('svg', {
    viewBox: `0 0 ${model.width} ${model.height}`,
    class: 'report-chart',
    role: 'img',
    'aria-label': text.title,
    'data-testid': testId,
    'font-size': 11,
    'font-family': 'system-ui, sans-serif',
  })
  root.append(svg('title', {}, text.title))
  for (const tick of model.yTicks) {
    root.append(
      svg('line', {
        x1: plot.left,
        x2: plot.right,
        y1: fmt(tick.y),
        y2: fmt(tick.y),
        stroke: '#c9cfd5',
        'stroke-width': 0.75,
      }),
      svg(
        'text',
        { x: plot.left - 6, y: fmt(tick.y + 4), 'text-anchor': 'end', fill: '#15191d' },
        text.formatTick(tick.value),
      ),
    )
  }
  root.append(
    svg('line', { x1: plot.left, x2: plot.left, y1: plot.top, y2: plot.bottom, stroke: '#15191d' }),
    svg('line', { x1: plot.left, x2: plot.right, y1: plot.bottom, y2: plot.bottom, stroke: '#15191d' }),
  )
  for (const tick of model.xTicks) {
    root.append(
      svg('line', { x1: fmt(tick.x), x2: fmt(tick.x), y1: plot.bottom, y2: plot.bottom + 4, stroke: '#15191d' }),
      svg('text', { x: fmt(tick.x), y: plot.bottom + 16, 'text-anchor': 'middle', fill: '#15191d' }, tick.label),
    )
  }
  root.append(
    svg(
      'text',
      { x: fmt((plot.left + plot.right) / 2), y: model.height - 6, 'text-anchor': 'middle', fill: '#15191d' },
      text.xLabel,
    ),
    svg(
      'text',
      {
        x: 0,
        y: 0,
        transform: `translate(14 ${fmt((plot.top + plot.bottom) / 2)}) rotate(-90)`,
        'text-anchor': 'middle',
        fill: '#15191d',
      },
      text.yLabel,
    ),
  )
  for (const s of model.series) {
    const group = svg('g', { 'data-series': s.id })
    for (const segment of s.segments) {
      if (segment.length > 1) {
        group.append(
          svg('polyline', {
            points: segment.map((p) => `${fmt(p.x)},${fmt(p.y)}`).join(' '),
            fill: 'none',
            stroke: s.style.colour,
            'stroke-width': 2,
            'stroke-dasharray': s.style.dash === '' ? 'none' : s.style.dash,
            'stroke-linejoin': 'round',
          }),
        )
      }
      for (const p of segment) group.append(marker(s.style.marker, p.x, p.y, s.style))
    }
    if (s.labelY !== null) {
      // The series' name at the end of its line, with a sample of its dash and marker.
      const x = plot.right + 6
      group.append(
        svg('line', {
          x1: x,
          x2: x + 16,
          y1: fmt(s.labelY),
          y2: fmt(s.labelY),
          stroke: s.style.colour,
          'stroke-width': 2,
          'stroke-dasharray': s.style.dash === '' ? 'none' : s.style.dash,
        }),
        marker(s.style.marker, x + 8, s.labelY, s.style),
        svg('text', { x: x + 20, y: fmt(s.labelY + 4), fill: '#15191d' }, s.label),
      )
    }
    root.append(group)
  }
  return root
}
