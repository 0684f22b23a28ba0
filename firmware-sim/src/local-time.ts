/**
 * Swedish local time without Intl on the hot path (the backfill computes a few hundred thousand
 * readings). Sweden follows the EU summer-time rule (Directive 2000/84/EC art. 2–3): CEST (UTC+2) from
 * 01:00 UTC on the last Sunday of March to 01:00 UTC on the last Sunday of October, CET (UTC+1)
 * otherwise. The test checks this against Intl's 'Europe/Stockholm'.
 */
const HOUR_MS = 3_600_000
const DAY_MS = 24 * HOUR_MS

/** 01:00 UTC on the last Sunday of `month` (0-based) of `year`. */
function lastSundayAt0100Utc(year: number, month: number): number {
  const lastDay = new Date(Date.UTC(year, month + 1, 0))
  return Date.UTC(year, month, lastDay.getUTCDate() - lastDay.getUTCDay(), 1)
}

export function stockholmOffsetMs(ts: number): number {
  const year = new Date(ts).getUTCFullYear()
  const summer = ts >= lastSundayAt0100Utc(year, 2) && ts < lastSundayAt0100Utc(year, 9)
  return summer ? 2 * HOUR_MS : HOUR_MS
}

export interface LocalTime {
  /** Hour of the local day with fraction, 0 ≤ hour < 24. */
  readonly hour: number
  /** 0 = Sunday … 6 = Saturday. */
  readonly weekday: number
  /** Monday to Friday. */
  readonly workday: boolean
  /** 0 = January. */
  readonly month: number
  /** Day of the year with fraction, 0 at 1 January 00:00 local. */
  readonly dayOfYear: number
  /** Local calendar day as a day count since 1970-01-01 (local); shared by everyone in Sweden that day. */
  readonly day: number
}

export function stockholmTime(ts: number): LocalTime {
  const local = ts + stockholmOffsetMs(ts)
  const date = new Date(local)
  const day = Math.floor(local / DAY_MS)
  const hour = (local - day * DAY_MS) / HOUR_MS
  const weekday = date.getUTCDay()
  const yearStart = Date.UTC(date.getUTCFullYear(), 0, 1)
  return {
    hour,
    weekday,
    workday: weekday >= 1 && weekday <= 5,
    month: date.getUTCMonth(),
    dayOfYear: (local - yearStart) / DAY_MS,
    day,
  }
}

/**
 * Month (0-based) of a local day count from `stockholmTime(...).day`. Arithmetic rather than a Date
 * (H. Hinnant, "chrono-compatible low-level date algorithms", civil_from_days), as it runs per sample.
 */
export function monthOfDay(day: number): number {
  const z = day + 719_468
  const era = Math.floor(z / 146_097)
  const doe = z - era * 146_097
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365)
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100))
  const mp = Math.floor((5 * doy + 2) / 153)
  return mp < 10 ? mp + 2 : mp - 10
}
