import { isDate, type Period } from './report-period.ts'

/**
 * Which report a page URL asks for (report-view.ts draws it). Apart from report-view.ts so that the map's script can
 * tell a report URL without loading the report pages, which it loads only when asked (app.ts).
 */

export type PeriodReportRequest =
  | { readonly kind: 'site'; readonly site: string; readonly period: Period | null }
  | { readonly kind: 'municipality'; readonly period: Period | null }

/** `/?report=measures` is the catalogue of measures (report-catalogue.ts), a page without a period. */
export type ReportRequest = PeriodReportRequest | { readonly kind: 'measures' }

/** The report a page URL asks for, or null for the map. */
export function reportRequestOf(search: string): ReportRequest | null {
  const params = new URLSearchParams(search)
  const report = params.get('report')
  if (report === null) return null
  const from = params.get('from')
  const to = params.get('to')
  const period = from !== null && to !== null && isDate(from) && isDate(to) ? { from, to } : null
  if (report === 'municipality') return { kind: 'municipality', period }
  if (report === 'measures') return { kind: 'measures' }
  const site = params.get('site')
  if (report === 'site' && site !== null && site !== '') return { kind: 'site', site, period }
  return null
}
