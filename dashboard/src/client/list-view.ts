/// <reference lib="dom" />
import type { EaqiLevel } from '@skolluft/core'
import { bandColour, bandSymbol, bandTextColour } from './bands.ts'
import { h, openSiteRows } from './dom.ts'
import type { MessageKey } from './messages.ts'
import type { MarkerReading, SiteState, SortDir, SortKey } from './model.ts'

/**
 * The accessible list: an HTML table of exactly the sites the map shows, sortable by each column
 * (a button in each header, aria-sort on the sorted one). Rows are focusable; Enter or Space opens
 * the site like a click on its marker. Live readings update a row's cells in place; the order
 * changes only when the person sorts or filters, so rows do not jump under the keyboard.
 */

export interface RowContext {
  readonly t: (key: MessageKey, params?: Readonly<Record<string, string | number>>) => string
  readonly pollutantLabel: string
  readonly reading: (site: SiteState) => MarkerReading
  readonly formatValue: (value: number) => string
  /** "5 minutes ago", or null when there is no value. */
  readonly age: (site: SiteState) => string | null
  readonly kindLabel: (kind: string) => string
  readonly status: (site: SiteState) => string
}

export interface ListViewOptions {
  readonly onOpen: (id: string) => void
  readonly onSort: (key: SortKey) => void
}

export interface ListView {
  readonly element: HTMLElement
  render(sites: readonly SiteState[], ctx: RowContext, sort: { key: SortKey; dir: SortDir }): void
  /** Refreshes one site's cells, if its row is shown. */
  update(site: SiteState, ctx: RowContext): void
  /** Refreshes the relative ages of all rows. */
  refreshAges(ctx: RowContext): void
  focusRow(id: string): boolean
  /** Rows in the DOM now: all shown sites, or the window of them for a large set. */
  rowCount(): number
}

/**
 * Up to this many sites every row is in the DOM. Above it the table is windowed: only the rows in
 * view (plus OVERSCAN_ROWS) exist, between two spacer rows, with aria-rowcount and aria-rowindex
 * telling assistive technology the full size. Measured in headless Chromium on two shared cores: a
 * bare 10 000 × 7 table takes ~2 s to lay out, ours 4–8 s; 1 000 rows take a few hundred ms.
 */
export const FULL_TABLE_MAX_ROWS = 1000
/** Fixed row height in windowed mode (CSS .site-table.windowed), so a row's offset is index × height. */
export const ROW_HEIGHT_PX = 44
export const OVERSCAN_ROWS = 20

const COLUMNS: readonly { key: SortKey; label: MessageKey; numeric: boolean }[] = [
  { key: 'name', label: 'colName', numeric: false },
  { key: 'kind', label: 'colKind', numeric: false },
  { key: 'locality', label: 'colLocality', numeric: false },
  { key: 'value', label: 'colValue', numeric: true },
  { key: 'band', label: 'colBand', numeric: false },
  { key: 'age', label: 'colAge', numeric: false },
  { key: 'status', label: 'colStatus', numeric: false },
]

interface RowCells {
  readonly row: HTMLTableRowElement
  readonly value: HTMLTableCellElement
  readonly band: HTMLTableCellElement
  readonly age: HTMLTableCellElement
  readonly status: HTMLTableCellElement
  site: SiteState
}

export function bandChip(band: EaqiLevel | null, label: string): HTMLElement {
  const chip = h('span', { class: 'band-chip', 'aria-hidden': 'true' }, bandSymbol(band))
  chip.style.backgroundColor = bandColour(band)
  chip.style.color = bandTextColour(band)
  return h('span', { class: 'band' }, chip, h('span', { class: 'band-name' }, label))
}

export function bandLabel(t: RowContext['t'], band: EaqiLevel | null): string {
  return band === null ? t('bandNone') : t(`band_${band}`)
}

export function createListView(options: ListViewOptions): ListView {
  const caption = h('caption')
  const headRow = h('tr')
  const tbody = h('tbody')
  const table = h(
    'table',
    { class: 'site-table', 'data-testid': 'site-table' },
    caption,
    h('thead', {}, headRow),
    tbody,
  )
  const element = h('div', { class: 'list-scroll', 'data-testid': 'list-view', id: 'site-list', tabindex: '-1' }, table)
  const rows = new Map<string, RowCells>()
  const topSpacer = h('tr', { class: 'spacer', 'aria-hidden': 'true' }, h('td', { colspan: String(COLUMNS.length) }))
  const bottomSpacer = h('tr', { class: 'spacer', 'aria-hidden': 'true' }, h('td', { colspan: String(COLUMNS.length) }))
  let shown: readonly SiteState[] = []
  let rowCtx: RowContext | null = null
  let windowed = false
  let start = 0
  let end = 0
  let frame = 0

  /** Builds the rows [from, to) of `shown` (windowed: between the spacers). */
  function renderRange(from: number, to: number): void {
    if (rowCtx === null) return
    const ctx = rowCtx
    const keep = new Map<string, RowCells>()
    const fragment = document.createDocumentFragment()
    for (let i = from; i < to; i += 1) {
      const site = shown[i]
      if (site === undefined) continue
      const cells = rows.get(site.id) ?? makeRow(site, ctx)
      cells.row.setAttribute('aria-rowindex', String(i + 2))
      keep.set(site.id, cells)
      fragment.append(cells.row)
    }
    rows.clear()
    for (const [id, cells] of keep) rows.set(id, cells)
    if (windowed) {
      setSpacer(topSpacer, from * ROW_HEIGHT_PX)
      setSpacer(bottomSpacer, (shown.length - to) * ROW_HEIGHT_PX)
      tbody.replaceChildren(topSpacer, fragment, bottomSpacer)
    } else {
      tbody.replaceChildren(fragment)
    }
    start = from
    end = to
  }

  function setSpacer(row: HTMLTableRowElement, heightPx: number): void {
    row.hidden = heightPx === 0
    const cell = row.firstElementChild
    if (cell instanceof HTMLElement) cell.style.height = `${heightPx}px`
  }

  /** Offset of the first data row from the top of the scrolled content. */
  function rowsTop(): number {
    return tbody.getBoundingClientRect().top - element.getBoundingClientRect().top + element.scrollTop
  }

  function visibleRange(): [number, number] {
    const top = element.scrollTop - rowsTop()
    const first = Math.max(0, Math.floor(top / ROW_HEIGHT_PX) - OVERSCAN_ROWS)
    const count = Math.ceil(element.clientHeight / ROW_HEIGHT_PX) + 2 * OVERSCAN_ROWS
    return [first, Math.min(shown.length, first + count)]
  }

  function onScroll(): void {
    frame = 0
    if (!windowed) return
    const [from, to] = visibleRange()
    if (from !== start || to !== end) {
      const focusedId =
        document.activeElement instanceof HTMLTableRowElement ? document.activeElement.dataset.siteId : undefined
      renderRange(from, to)
      if (focusedId !== undefined) rows.get(focusedId)?.row.focus({ preventScroll: true })
    }
  }

  element.addEventListener(
    'scroll',
    () => {
      if (frame === 0) frame = requestAnimationFrame(onScroll)
    },
    { passive: true },
  )

  /** Scrolls so row `index` is rendered and in view, then focuses it. */
  function focusIndex(index: number): boolean {
    const site = shown[index]
    if (site === undefined) return false
    if (windowed && (index < start || index >= end || !rows.has(site.id))) {
      element.scrollTop = rowsTop() + index * ROW_HEIGHT_PX - element.clientHeight / 2
      const [from, to] = visibleRange()
      renderRange(Math.min(from, index), Math.max(to, index + 1))
    }
    const cells = rows.get(site.id)
    if (cells === undefined) return false
    cells.row.focus()
    return true
  }

  function fillCells(cells: RowCells, ctx: RowContext): void {
    const reading = ctx.reading(cells.site)
    cells.value.textContent = reading.value === null ? '–' : ctx.formatValue(reading.value)
    cells.band.replaceChildren(bandChip(reading.band, bandLabel(ctx.t, reading.band)))
    cells.age.textContent = ctx.age(cells.site) ?? '–'
    cells.status.textContent = ctx.status(cells.site)
    cells.row.dataset.band = reading.band === null ? '' : String(reading.band)
  }

  function makeRow(site: SiteState, ctx: RowContext): RowCells {
    const name = h(
      'th',
      { scope: 'row' },
      site.name,
      site.demo ? h('span', { class: 'badge badge-demo' }, ctx.t('demo')) : null,
    )
    const cells: RowCells = {
      row: h('tr', { 'data-testid': 'site-row', 'data-site-id': site.id, tabindex: '0' }),
      value: h('td', { class: 'num' }),
      band: h('td'),
      age: h('td'),
      status: h('td'),
      site,
    }
    cells.row.append(
      name,
      h('td', {}, ctx.kindLabel(site.kind)),
      h('td', {}, site.locality ?? '–'),
      cells.value,
      cells.band,
      cells.age,
      cells.status,
    )
    fillCells(cells, ctx)
    return cells
  }

  // One listener for all rows (10 000 rows, 2 listeners instead of 20 000).
  openSiteRows(tbody, options.onOpen, (e, _row, id) => {
    // Arrow keys move between rows (in a windowed table the next row may not exist yet for Tab).
    const step = { ArrowDown: 1, ArrowUp: -1, PageDown: 10, PageUp: -10 }[e.key]
    const jump = e.key === 'Home' ? 0 : e.key === 'End' ? shown.length - 1 : null
    if (step === undefined && jump === null) return
    const index = shown.findIndex((site) => site.id === id)
    const target = jump ?? Math.min(shown.length - 1, Math.max(0, index + (step ?? 0)))
    if (focusIndex(target)) e.preventDefault()
  })

  return {
    element,
    render(sites, ctx, sort) {
      caption.textContent = ctx.t('listCaption', { n: sites.length })
      headRow.replaceChildren(
        ...COLUMNS.map((col) => {
          const label = ctx.t(col.label, { pollutant: ctx.pollutantLabel })
          const button = h(
            'button',
            {
              type: 'button',
              class: 'sort',
              'data-testid': `sort-${col.key}`,
              title: ctx.t('sortBy', { column: label }),
            },
            label,
          )
          button.addEventListener('click', () => options.onSort(col.key))
          return h(
            'th',
            {
              scope: 'col',
              class: `col-${col.key}${col.numeric ? ' num' : ''}`,
              'aria-sort': col.key === sort.key ? sort.dir : null,
            },
            button,
          )
        }),
      )
      rows.clear()
      shown = sites
      rowCtx = ctx
      windowed = sites.length > FULL_TABLE_MAX_ROWS
      table.classList.toggle('windowed', windowed)
      table.setAttribute('aria-rowcount', String(sites.length + 1))
      headRow.setAttribute('aria-rowindex', '1')
      if (windowed) {
        element.scrollTop = Math.min(element.scrollTop, rowsTop() + sites.length * ROW_HEIGHT_PX)
        const [from, to] = visibleRange()
        renderRange(from, to)
      } else {
        renderRange(0, sites.length)
      }
    },
    update(site, ctx) {
      const cells = rows.get(site.id)
      if (cells !== undefined) fillCells(cells, ctx)
    },
    refreshAges(ctx) {
      for (const cells of rows.values()) cells.age.textContent = ctx.age(cells.site) ?? '–'
    },
    focusRow(id) {
      return focusIndex(shown.findIndex((site) => site.id === id))
    },
    rowCount: () => rows.size,
  }
}
