/**
 * The report's period picker as pure functions: a month, a school term, a calendar year or custom dates, each
 * turned into whole days `from`–`to` (both included, 'YYYY-MM-DD'), as the report routes take them. A period that
 * reaches past today ends today: later days have no data yet and would only lower the coverage.
 */

export const PERIOD_KINDS = ['month', 'term', 'year', 'custom'] as const
export type PeriodKind = (typeof PERIOD_KINDS)[number]

export interface Period {
  readonly from: string
  readonly to: string
}

export const TERMS = ['ht', 'vt'] as const
export type Term = (typeof TERMS)[number]

/**
 * School term dates, month-day, both included. SETTINGS, not facts: Swedish municipalities decide their own term
 * dates each year (roughly mid-August to just before Christmas, early January to mid-June); a deployment whose dates
 * differ picks "custom". The page states that.
 */
export const SCHOOL_TERM_DATES: Readonly<Record<Term, { readonly from: string; readonly to: string }>> = {
  ht: { from: '08-15', to: '12-22' },
  vt: { from: '01-08', to: '06-14' },
}

/** The API's longest period (api/src/routes/reports.ts MAX_REPORT_DAYS). */
export const MAX_PERIOD_DAYS = 400

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/
const MONTH = /^(\d{4})-(\d{2})$/
const DAY_MS = 86_400_000
/** Days are fixed UTC+1 days (docs/reports.md "The period"), so "today" is the UTC+1 date. */
const UTC_PLUS_1_MS = 3_600_000

const pad = (n: number, width = 2) => String(n).padStart(width, '0')

export function isDate(value: string): boolean {
  const m = DATE.exec(value)
  if (m === null) return false
  const d = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])))
  return d.toISOString().slice(0, 10) === value
}

/** Today's date in fixed UTC+1. */
export function todayOf(nowMs: number): string {
  return new Date(nowMs + UTC_PLUS_1_MS).toISOString().slice(0, 10)
}

function lastDayOfMonth(year: number, month1: number): number {
  return new Date(Date.UTC(year, month1, 0)).getUTCDate()
}

function endAtToday(period: Period, today: string): Period {
  return period.to > today && period.from <= today ? { from: period.from, to: today } : period
}

/** 'YYYY-MM' → its first to last day (or today). Null for a malformed month. */
export function monthPeriod(month: string, today: string): Period | null {
  const m = MONTH.exec(month)
  if (m === null) return null
  const year = Number(m[1])
  const month1 = Number(m[2])
  if (month1 < 1 || month1 > 12) return null
  return endAtToday({ from: `${month}-01`, to: `${month}-${pad(lastDayOfMonth(year, month1))}` }, today)
}

export function termPeriod(term: Term, year: number, today: string): Period {
  const dates = SCHOOL_TERM_DATES[term]
  return endAtToday({ from: `${pad(year, 4)}-${dates.from}`, to: `${pad(year, 4)}-${dates.to}` }, today)
}

export function yearPeriod(year: number, today: string): Period {
  return endAtToday({ from: `${pad(year, 4)}-01-01`, to: `${pad(year, 4)}-12-31` }, today)
}

/** Whole days from `from` to `to`, both included. */
export function periodDays(period: Period): number {
  return Math.round((Date.parse(`${period.to}T00:00:00Z`) - Date.parse(`${period.from}T00:00:00Z`)) / DAY_MS) + 1
}

export type PeriodProblem = 'invalid' | 'reversed' | 'too_long'

export function checkPeriod(period: Period): PeriodProblem | null {
  if (!isDate(period.from) || !isDate(period.to)) return 'invalid'
  if (period.to < period.from) return 'reversed'
  if (periodDays(period) > MAX_PERIOD_DAYS) return 'too_long'
  return null
}

/** The default: the last whole calendar month before today. */
export function defaultPeriod(today: string): Period {
  const year = Number(today.slice(0, 4))
  const month1 = Number(today.slice(5, 7))
  const prev = month1 === 1 ? `${pad(year - 1, 4)}-12` : `${pad(year, 4)}-${pad(month1 - 1)}`
  return monthPeriod(prev, today) ?? { from: today, to: today }
}

/** The preset a period matches (for the picker's initial state): a whole month, a term, a year, else custom. */
export function periodKindOf(period: Period, today: string): PeriodKind {
  const year = Number(period.from.slice(0, 4))
  const same = (p: Period | null) => p !== null && p.from === period.from && p.to === period.to
  if (same(monthPeriod(period.from.slice(0, 7), today))) return 'month'
  if (TERMS.some((term) => same(termPeriod(term, year, today)))) return 'term'
  if (same(yearPeriod(year, today))) return 'year'
  return 'custom'
}

/** The term a date falls in or last fell in, for the picker's default: vt before August, ht from August. */
export function termOf(date: string): { term: Term; year: number } {
  const year = Number(date.slice(0, 4))
  return { term: Number(date.slice(5, 7)) >= 8 ? 'ht' : 'vt', year }
}
