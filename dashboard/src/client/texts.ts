/// <reference lib="dom" />

/**
 * Text of the page's fixed elements, bound to a function of the current language: switching the
 * language calls refresh() and every bound element gets its new text without rebuilding the page
 * (which would lose focus, form input and the map's view).
 */
export interface Texts {
  /** Sets `el`'s text (or attribute `attr`) now and on every refresh. */
  bind<E extends Element>(el: E, text: () => string, attr?: string): E
  refresh(): void
}

export function createTexts(): Texts {
  const bindings: { el: Element; text: () => string; attr: string | undefined }[] = []
  const apply = (b: { el: Element; text: () => string; attr: string | undefined }) => {
    if (b.attr === undefined) b.el.textContent = b.text()
    else b.el.setAttribute(b.attr, b.text())
  }
  return {
    bind(el, text, attr) {
      const binding = { el, text, attr }
      bindings.push(binding)
      apply(binding)
      return el
    },
    refresh() {
      for (const b of bindings) apply(b)
    },
  }
}
