/// <reference lib="dom" />
/// <reference lib="dom.iterable" />

/**
 * A small element builder. Text goes in as text nodes, never as HTML, so site names and server
 * messages cannot inject markup; the CSP forbids inline scripts and styles as a second line.
 */
export type Attrs = Readonly<Record<string, string | number | boolean | null | undefined>>
export type Child = Node | string | null | undefined | false

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag)
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue
    if (name === 'class') el.className = String(value)
    else el.setAttribute(name, value === true ? '' : String(value))
  }
  append(el, children)
  return el
}

export function append(el: Element, children: readonly Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue
    el.append(typeof child === 'string' ? document.createTextNode(child) : child)
  }
}

/** Replaces an element's children. */
export function replaceChildren(el: Element, ...children: Child[]): void {
  el.replaceChildren()
  append(el, children)
}

let nextId = 0
/** A unique id for label/aria wiring. */
export function uid(prefix: string): string {
  nextId += 1
  return `${prefix}-${nextId}`
}

/**
 * Site rows of a table (`tr[data-site-id]`) open their site on a click or on Enter/Space when focused; one
 * listener per table, not per row (the list view has 10 000 rows). Other keys on a focused row go to `onKey`.
 */
export function openSiteRows(
  tbody: HTMLElement,
  onOpen: (siteId: string) => void,
  onKey: (event: KeyboardEvent, row: HTMLTableRowElement, siteId: string) => void,
): void {
  tbody.addEventListener('click', (e) => {
    if (!(e.target instanceof Element)) return
    const id = e.target.closest<HTMLTableRowElement>('tr[data-site-id]')?.dataset.siteId
    if (id !== undefined) onOpen(id)
  })
  tbody.addEventListener('keydown', (e) => {
    if (!(e.target instanceof HTMLTableRowElement)) return
    const id = e.target.dataset.siteId
    if (id === undefined) return
    if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault()
      onOpen(id)
      return
    }
    onKey(e, e.target, id)
  })
}
