/// <reference lib="dom" />
import { h } from './dom.ts'
import { formatNumber, formatPercent } from './format.ts'
import type { Translate } from './i18n.ts'
import type { Lang, MessageKey } from './messages.ts'

/**
 * Shared pieces of the printed reports: how numbers, coverage, periods and times are written, and the small
 * table and section builders. Times are shown in the zones the report is computed in, not the reader's: days in
 * fixed UTC+1 (the regulatory day), hours in Europe/Stockholm (the profiles' zone), so a report printed abroad
 * says the same as one printed in Lund.
 */

/** IANA name of fixed UTC+1 (POSIX sign convention: Etc/GMT-1 is UTC+1). */
export const REGULATORY_ZONE = 'Etc/GMT-1'
export const LOCAL_ZONE = 'Europe/Stockholm'

export interface ReportFormat {
  readonly t: Translate
  readonly lang: Lang
}

export function num(lang: Lang, value: number | null | undefined, decimals = 1): string {
  return value === null || value === undefined ? '–' : formatNumber(lang, value, decimals)
}

export function pct(lang: Lang, share: number | null | undefined): string {
  return share === null || share === undefined ? '–' : formatPercent(lang, share)
}

/** 'YYYY-MM-DD' as a date for people (no zone shift: it is a calendar date). */
export function dateText(lang: Lang, day: string): string {
  const t = Date.parse(`${day}T12:00:00Z`)
  if (Number.isNaN(t)) return day
  return new Intl.DateTimeFormat(lang, { dateStyle: 'medium', timeZone: 'UTC' }).format(t)
}

/** The UTC+1 day that starts at an instant (worst days). */
export function dayText(lang: Lang, iso: string): string {
  const t = Date.parse(iso)
  return Number.isNaN(t)
    ? iso
    : new Intl.DateTimeFormat(lang, { dateStyle: 'medium', timeZone: REGULATORY_ZONE }).format(t)
}

/** An hour that starts at an instant, in local time (worst hours). */
export function hourText(lang: Lang, iso: string): string {
  const t = Date.parse(iso)
  if (Number.isNaN(t)) return iso
  return new Intl.DateTimeFormat(lang, {
    dateStyle: 'medium',
    timeStyle: 'short',
    timeZone: LOCAL_ZONE,
  }).format(t)
}

/** An instant with its zone named, e.g. the generation time. */
export function instantText(lang: Lang, iso: string): string {
  const t = Date.parse(iso)
  if (Number.isNaN(t)) return iso
  // dateStyle/timeStyle cannot be combined with timeZoneName (ECMA-402), so the fields are named one by one.
  return new Intl.DateTimeFormat(lang, {
    year: 'numeric',
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    timeZone: LOCAL_ZONE,
    timeZoneName: 'short',
  }).format(t)
}

export function metricName(t: Translate, metric: string): string {
  return metric === 'pm1' ||
    metric === 'pm25' ||
    metric === 'pm10' ||
    metric === 'no2' ||
    metric === 'temp' ||
    metric === 'rh'
    ? t(`metric_${metric}`)
    : metric
}

/** A number with its coverage beside it: "12,3 µg/m³ (täckning 88 %)". */
export function withCoverage(f: ReportFormat, text: string, coverage: number | null | undefined): string {
  return `${text} (${f.t('reportCoverageShort', { coverage: pct(f.lang, coverage) })})`
}

export type Cell = Node | string | null

/** A table that prints well: a caption, a header row repeated on each page, rows that do not split. */
export function table(
  caption: string,
  head: readonly string[],
  rows: readonly (readonly Cell[] | HTMLTableRowElement)[],
  testId?: string,
): HTMLTableElement {
  return h(
    'table',
    { class: 'report-table', 'data-testid': testId },
    h('caption', {}, caption),
    h('thead', {}, h('tr', {}, ...head.map((label) => h('th', { scope: 'col' }, label)))),
    h(
      'tbody',
      {},
      ...rows.map((row) =>
        row instanceof HTMLTableRowElement
          ? row
          : h('tr', {}, ...row.map((cell, i) => (i === 0 ? h('th', { scope: 'row' }, cell) : h('td', {}, cell)))),
      ),
    ),
  )
}

/** A numeric cell whose raw value is kept in `data-value` (the browser test compares it with the API). */
export function numCell(text: string, value: number | null, testId?: string): HTMLTableCellElement {
  return h('td', { class: 'num', 'data-value': value === null ? '' : String(value), 'data-testid': testId }, text)
}

export function section(key: MessageKey, f: ReportFormat, testId: string, ...children: (Node | null)[]): HTMLElement {
  return h('section', { class: 'report-section', 'data-testid': testId }, h('h2', {}, f.t(key)), ...children)
}

/** A headed list (a `report-block`), or null when there is nothing to list. */
export function listBlock(title: string, items: readonly string[]): HTMLElement | null {
  if (items.length === 0) return null
  return h('div', { class: 'report-block' }, h('h3', {}, title), h('ul', {}, ...items.map((text) => h('li', {}, text))))
}

export function note(text: string, className = 'report-note'): HTMLParagraphElement {
  return h('p', { class: className }, text)
}
