/// <reference lib="dom" />
import type { EaqiLevel } from '@skolluft/core'
import * as L from 'leaflet'
import { bandColour, bandSymbol, bandTextColour } from './bands.ts'

/**
 * The map: Leaflet for tiles, panning and zooming, and ONE canvas for every site marker, drawn and
 * hit-tested here. 10 000 DOM or SVG markers would take seconds to create and make every pan slow;
 * one canvas redraws 10 000 circles in a few milliseconds. The canvas sits over Leaflet's panes
 * (below the controls), ignores the pointer, and is redrawn on every move; during an animated zoom it
 * is scaled with the same CSS transition Leaflet gives its own layers.
 */

export interface MarkerItem {
  readonly id: string
  readonly lat: number
  readonly lon: number
  readonly band: EaqiLevel | null
  readonly offline: boolean
  readonly suspect: boolean
  readonly breach: boolean
  /** Shown when the pointer rests on the marker. */
  readonly title: string
}

export interface MarkerStyle {
  readonly band: EaqiLevel | null
  readonly offline: boolean
  readonly suspect: boolean
  readonly breach: boolean
}

export const OFFLINE_RING = '#4d4d4d'
export const SUSPECT_RING = '#8a4b00'
const OUTLINE = 'rgba(0, 0, 0, 0.6)'
const FULL_CIRCLE = 2 * Math.PI
/** A transparent 1×1 GIF: a tile that fails shows the plain background, not a broken-image icon. */
export const BLANK_TILE = 'data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7'
/** Tile errors before the map says its background is missing (one lost tile is not worth a notice). */
const TILE_ERRORS_BEFORE_NOTICE = 3
/** Extra pixels around a marker that still count as a hit: fingers are less precise than pointers. */
const HIT_SLOP_PX = 4
/** A revealed site stays this share of the visible map away from its edges. */
const REVEAL_MARGIN = 0.1

/**
 * Marker radius in CSS pixels by zoom: the band number must be readable at the municipality-wide view
 * (zoom 10–11), where the committee works, not only from street level: colour alone fails colour-blind
 * readers. Below zoom 10 (a whole region) markers are dots.
 */
export function markerRadius(zoom: number): number {
  if (zoom >= 14) return 12
  if (zoom >= 12) return 10
  if (zoom >= 10) return 8
  return 4
}

/** A number fits in the marker from this radius on (a 9 px bold digit in a 16 px circle). */
const LABEL_MIN_RADIUS = 8
/**
 * Above this many markers in view they are drawn in batches without numbers: 10 000 separate fills
 * and texts took ~50 ms a frame in headless Chromium (software rendering), batched a few ms.
 */
const DETAIL_MAX_MARKERS = 1500
const CROWDED_RADIUS = 6

function drawRing(ctx: CanvasRenderingContext2D, x: number, y: number, r: number, style: MarkerStyle): void {
  if (!style.offline && !style.suspect) return
  ctx.beginPath()
  ctx.arc(x, y, r + 3, 0, FULL_CIRCLE)
  ctx.setLineDash(style.offline ? [3, 2] : [1, 2])
  ctx.lineWidth = 2
  ctx.strokeStyle = style.offline ? OFFLINE_RING : SUSPECT_RING
  ctx.stroke()
  ctx.setLineDash([])
}

function drawBreach(ctx: CanvasRenderingContext2D, x: number, y: number, r: number): void {
  // A warning triangle at the top right, outlined in white so it reads on every band colour.
  const s = Math.max(5, r * 0.75)
  const cx = x + r * 0.8
  const cy = y - r * 0.8
  ctx.beginPath()
  ctx.moveTo(cx, cy - s)
  ctx.lineTo(cx + s, cy + s * 0.75)
  ctx.lineTo(cx - s, cy + s * 0.75)
  ctx.closePath()
  ctx.fillStyle = '#111111'
  ctx.fill()
  ctx.lineWidth = 1.5
  ctx.strokeStyle = '#ffffff'
  ctx.stroke()
  if (s >= 6) {
    ctx.fillStyle = '#ffffff'
    ctx.font = `bold ${Math.round(s * 1.1)}px system-ui, sans-serif`
    ctx.textAlign = 'center'
    ctx.textBaseline = 'middle'
    ctx.fillText('!', cx, cy + s * 0.2)
  }
}

/** Draws one marker; the legend uses the same function, so legend and map always look alike. */
export function drawMarker(
  ctx: CanvasRenderingContext2D,
  x: number,
  y: number,
  r: number,
  style: MarkerStyle,
  selected: boolean,
  label: boolean,
): void {
  drawRing(ctx, x, y, r, style)
  if (selected) {
    ctx.beginPath()
    ctx.arc(x, y, r + 4, 0, FULL_CIRCLE)
    ctx.lineWidth = 3
    ctx.strokeStyle = '#000000'
    ctx.stroke()
  }
  ctx.beginPath()
  ctx.arc(x, y, r, 0, FULL_CIRCLE)
  ctx.fillStyle = bandColour(style.band)
  ctx.fill()
  ctx.lineWidth = selected ? 2 : 1
  ctx.strokeStyle = selected ? '#ffffff' : OUTLINE
  ctx.stroke()
  if (label) {
    ctx.fillStyle = bandTextColour(style.band)
    ctx.font = `bold ${Math.round(r * 1.15)}px system-ui, sans-serif`
    ctx.textAlign = 'center'
    ctx.textBaseline = 'middle'
    ctx.fillText(bandSymbol(style.band), x, y + 1)
  }
  if (style.breach) drawBreach(ctx, x, y, r)
}

/** A small canvas with one marker, for the legend and the list. */
export function markerSwatch(style: MarkerStyle, r = 9): HTMLCanvasElement {
  const size = (r + 6) * 2
  const dpr = window.devicePixelRatio || 1
  const canvas = document.createElement('canvas')
  canvas.width = Math.ceil(size * dpr)
  canvas.height = Math.ceil(size * dpr)
  canvas.style.width = `${size}px`
  canvas.style.height = `${size}px`
  canvas.setAttribute('aria-hidden', 'true')
  const ctx = canvas.getContext('2d')
  if (ctx !== null) {
    ctx.scale(dpr, dpr)
    drawMarker(ctx, size / 2, size / 2, r, style, false, true)
  }
  return canvas
}

export interface MapViewOptions {
  readonly container: HTMLElement
  readonly center: readonly [number, number]
  readonly zoom: number
  readonly tileUrl: string | null
  readonly tileAttribution: string | null
  readonly onSelect: (id: string) => void
  /** Called once when tiles keep failing, so the page can say the background is missing. */
  readonly onTileFailure: () => void
}

export interface MapView {
  readonly map: L.Map
  setMarkers(items: readonly MarkerItem[]): void
  setSelected(id: string | null): void
  /**
   * Pans so the site is in view (if it is not), e.g. after opening it from the list. `coveredBottomPx`
   * of the map are hidden behind something (the phone's bottom sheet): the site must show above it.
   */
  reveal(lat: number, lon: number, coveredBottomPx?: number): void
  /** Fits the view to these points, unless one of them is in view already. */
  /** Frames every site (the first view: the configured centre is only where the map starts). */
  fitAll(points: readonly { lat: number; lon: number }[]): void
  setLegend(el: HTMLElement): void
  /** After the container changed size (panel opened, view switched). */
  invalidateSize(): void
  /** Markers drawn in the last frame (for tests and the status line). */
  drawnCount(): number
  /** Where the site's marker was drawn in the last frame, in container pixels; null when not drawn (tests). */
  markerPoint(id: string): { x: number; y: number } | null
}

export function createMapView(options: MapViewOptions): MapView {
  const { container } = options
  const map = L.map(container, {
    center: L.latLng(options.center[0], options.center[1]),
    zoom: options.zoom,
    zoomControl: true,
    keyboard: true,
    attributionControl: true,
  })
  map.attributionControl.setPrefix('<a href="https://leafletjs.com">Leaflet</a>')

  if (options.tileUrl !== null) {
    const tiles = L.tileLayer(options.tileUrl, {
      attribution: options.tileAttribution ?? '',
      errorTileUrl: BLANK_TILE,
      maxZoom: 19,
    })
    let errors = 0
    let loaded = 0
    tiles.on('tileload', () => {
      loaded += 1
    })
    tiles.on('tileerror', () => {
      errors += 1
      if (errors === TILE_ERRORS_BEFORE_NOTICE && loaded === 0) options.onTileFailure()
    })
    tiles.addTo(map)
  }

  const canvas = document.createElement('canvas')
  canvas.className = 'site-canvas'
  canvas.setAttribute('aria-hidden', 'true')
  container.append(canvas)
  const tip = document.createElement('div')
  tip.className = 'map-tip'
  tip.hidden = true
  container.append(tip)
  const ctx = canvas.getContext('2d')

  let items: readonly MarkerItem[] = []
  /** Web-Mercator pixels at zoom 0 per item; at zoom z a pixel position is this times 2^z. */
  let px = new Float64Array(0)
  let py = new Float64Array(0)
  let order: number[] = []
  const projected = new Map<string, [number, number]>()
  let selectedId: string | null = null
  // Screen positions of the markers drawn last, in draw order, for hit testing.
  let hitX = new Float32Array(0)
  let hitY = new Float32Array(0)
  let hitIndex = new Int32Array(0)
  let hitCount = 0
  let hitRadius = 0
  let frame = 0
  let animating = false

  function project(item: MarkerItem): [number, number] {
    const key = `${item.id}@${item.lat},${item.lon}`
    let p = projected.get(key)
    if (p === undefined) {
      const pt = map.project(L.latLng(item.lat, item.lon), 0)
      p = [pt.x, pt.y]
      projected.set(key, p)
    }
    return p
  }

  function draw(): void {
    frame = 0
    if (ctx === null || animating) return
    const size = map.getSize()
    const dpr = window.devicePixelRatio || 1
    const w = Math.round(size.x * dpr)
    const hgt = Math.round(size.y * dpr)
    if (canvas.width !== w || canvas.height !== hgt) {
      canvas.width = w
      canvas.height = hgt
      canvas.style.width = `${size.x}px`
      canvas.style.height = `${size.y}px`
    }
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0)
    ctx.clearRect(0, 0, size.x, size.y)
    const zoom = map.getZoom()
    const scale = map.getZoomScale(zoom, 0)
    const min = map.getPixelBounds().min
    if (min === undefined) return
    let r = markerRadius(zoom)
    const label = r >= LABEL_MIN_RADIUS
    const margin = r + 8
    if (hitX.length < items.length) {
      hitX = new Float32Array(items.length)
      hitY = new Float32Array(items.length)
      hitIndex = new Int32Array(items.length)
    }
    hitCount = 0
    hitRadius = r + 3 + HIT_SLOP_PX
    // Pass 1: which markers are in view, in draw order (the selected one last, on top).
    let selected = -1
    for (const i of order) {
      const item = items[i]
      if (item === undefined) continue
      const x = (px[i] ?? 0) * scale - min.x
      const y = (py[i] ?? 0) * scale - min.y
      if (x < -margin || y < -margin || x > size.x + margin || y > size.y + margin) continue
      if (item.id === selectedId) {
        selected = i
        continue
      }
      hitX[hitCount] = x
      hitY[hitCount] = y
      hitIndex[hitCount] = i
      hitCount += 1
    }
    const crowded = hitCount > DETAIL_MAX_MARKERS
    if (crowded) {
      // Smaller dots so a crowded view shows more than a carpet of overlapping circles.
      r = Math.min(r, CROWDED_RADIUS)
      hitRadius = r + 3 + HIT_SLOP_PX
      drawBatched(ctx, r)
    } else {
      for (let k = 0; k < hitCount; k += 1) {
        const item = items[hitIndex[k] ?? -1]
        if (item !== undefined) drawMarker(ctx, hitX[k] ?? 0, hitY[k] ?? 0, r, item, false, label)
      }
    }
    const sel = items[selected]
    if (sel !== undefined) {
      const x = (px[selected] ?? 0) * scale - min.x
      const y = (py[selected] ?? 0) * scale - min.y
      drawMarker(ctx, x, y, r, sel, true, label && !crowded)
      hitX[hitCount] = x
      hitY[hitCount] = y
      hitIndex[hitCount] = selected
      hitCount += 1
    }
  }

  /**
   * Many markers in view: one path per band colour (markers are sorted by band, so a band is one run)
   * and no numbers, which could not be read on overlapping markers anyway; rings and triangles stay.
   */
  function drawBatched(ctx: CanvasRenderingContext2D, r: number): void {
    let k = 0
    while (k < hitCount) {
      const band = items[hitIndex[k] ?? -1]?.band ?? null
      ctx.beginPath()
      for (; k < hitCount; k += 1) {
        const item = items[hitIndex[k] ?? -1]
        if (item === undefined) continue
        if (item.band !== band) break
        const x = hitX[k] ?? 0
        const y = hitY[k] ?? 0
        ctx.moveTo(x + r, y)
        ctx.arc(x, y, r, 0, FULL_CIRCLE)
      }
      ctx.fillStyle = bandColour(band)
      ctx.fill()
      ctx.lineWidth = 1
      ctx.strokeStyle = OUTLINE
      ctx.stroke()
    }
    for (let j = 0; j < hitCount; j += 1) {
      const item = items[hitIndex[j] ?? -1]
      if (item === undefined || !(item.offline || item.suspect || item.breach)) continue
      drawRing(ctx, hitX[j] ?? 0, hitY[j] ?? 0, r, item)
      if (item.breach) drawBreach(ctx, hitX[j] ?? 0, hitY[j] ?? 0, r)
    }
  }

  function schedule(): void {
    if (frame === 0) frame = requestAnimationFrame(draw)
  }

  /** The top-most marker within reach of a container point. */
  function hit(x: number, y: number): MarkerItem | undefined {
    const reach = hitRadius * hitRadius
    for (let k = hitCount - 1; k >= 0; k -= 1) {
      const dx = (hitX[k] ?? 0) - x
      const dy = (hitY[k] ?? 0) - y
      if (dx * dx + dy * dy <= reach) return items[hitIndex[k] ?? -1]
    }
    return undefined
  }

  map.on('move resize zoom viewreset', schedule)
  map.on('zoomanim', (e: L.ZoomAnimEvent) => {
    // Where each current container point lands at the target zoom: c' = k·c + (k·min − newMin).
    const k = map.getZoomScale(e.zoom, map.getZoom())
    const min = map.getPixelBounds().min
    if (min === undefined) return
    const newMin = map.project(e.center, e.zoom).subtract(map.getSize().divideBy(2))
    const t = min.multiplyBy(k).subtract(newMin)
    animating = true
    canvas.classList.add('zooming')
    canvas.style.transform = `translate(${t.x}px, ${t.y}px) scale(${k})`
    tip.hidden = true
  })
  map.on('zoomend', () => {
    animating = false
    canvas.classList.remove('zooming')
    canvas.style.transform = ''
    draw()
  })
  map.on('click', (e: L.LeafletMouseEvent) => {
    const item = hit(e.containerPoint.x, e.containerPoint.y)
    if (item !== undefined) options.onSelect(item.id)
  })
  map.on('mousemove', (e: L.LeafletMouseEvent) => {
    const item = hit(e.containerPoint.x, e.containerPoint.y)
    container.classList.toggle('over-marker', item !== undefined)
    if (item === undefined) {
      tip.hidden = true
      return
    }
    tip.textContent = item.title
    tip.hidden = false
    tip.style.left = `${e.containerPoint.x + 14}px`
    tip.style.top = `${e.containerPoint.y + 14}px`
  })
  map.on('mouseout', () => {
    tip.hidden = true
  })

  // Banners, the panel and the filters change the map's size without a window resize.
  const resizeObserver = new ResizeObserver(() => {
    map.invalidateSize({ pan: false })
    schedule()
  })
  resizeObserver.observe(container)

  let legend: L.Control | null = null

  return {
    map,
    setMarkers(next) {
      items = next
      px = new Float64Array(items.length)
      py = new Float64Array(items.length)
      items.forEach((item, i) => {
        const [x, y] = project(item)
        px[i] = x
        py[i] = y
      })
      // Worse bands are drawn last, on top; sites without a value first, below everything.
      order = items.map((_, i) => i)
      order.sort((a, b) => (items[a]?.band ?? 0) - (items[b]?.band ?? 0))
      schedule()
    },
    setSelected(id) {
      selectedId = id
      schedule()
    },
    reveal(lat, lon, coveredBottomPx = 0) {
      const size = map.getSize()
      const visibleY = Math.max(0, size.y - coveredBottomPx)
      const p = map.latLngToContainerPoint(L.latLng(lat, lon))
      // In view: inside the visible part less a 10 % margin on each side.
      const mx = size.x * REVEAL_MARGIN
      const my = visibleY * REVEAL_MARGIN
      if (p.x >= mx && p.x <= size.x - mx && p.y >= my && p.y <= visibleY - my) return
      // Otherwise to the middle of the visible part.
      map.panBy(L.point(p.x - size.x / 2, p.y - visibleY / 2))
    },
    fitAll(points) {
      if (points.length === 0) return
      map.fitBounds(L.latLngBounds(points.map((p) => L.latLng(p.lat, p.lon))), {
        padding: [20, 20],
        maxZoom: 14,
        // No animation: the map is ready (and its markers placed) once this returns.
        animate: false,
      })
    },
    setLegend(el) {
      if (legend !== null) legend.remove()
      const control = new L.Control({ position: 'bottomleft' })
      control.onAdd = () => {
        L.DomEvent.disableClickPropagation(el)
        L.DomEvent.disableScrollPropagation(el)
        return el
      }
      control.addTo(map)
      legend = control
    },
    invalidateSize() {
      map.invalidateSize({ pan: false })
      schedule()
    },
    drawnCount: () => hitCount,
    markerPoint(id) {
      for (let k = 0; k < hitCount; k += 1) {
        if (items[hitIndex[k] ?? -1]?.id === id) return { x: hitX[k] ?? 0, y: hitY[k] ?? 0 }
      }
      return null
    },
  }
}
