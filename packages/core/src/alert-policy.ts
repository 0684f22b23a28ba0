import { z } from 'zod'
import { DAY_MS, HOUR_MS } from './aggregation.ts'

/**
 * When an alert may be delivered: quiet hours (evenings, weekends, Swedish public holidays, extra days off)
 * with a morning digest instead, a per-recipient rate limit, and the re-notify interval of long incidents.
 * Design guidance of air-quality reference §5.2: "principals' push notifications 18:00–07:00 and weekends
 * suppressed and batched into a morning digest, except top-level alerts"; "updates re-notify only on escalation
 * to a higher level or after a re-notify interval (e.g. 24 h)". Pure: time comes in as epoch ms; local time is
 * computed with Intl in the deployment's time zone (Europe/Stockholm), so daylight saving is handled by the
 * tz database, never by fixed offsets.
 */

/** Quiet hours, holidays and digests are judged in Swedish local time (CET/CEST). */
export const ALERT_TIME_ZONE = 'Europe/Stockholm'

export class AlertPolicyError extends Error {
  readonly code: 'ALWAYS_QUIET' | 'BAD_YEAR' | 'BAD_RATE_LIMIT'
  constructor(code: AlertPolicyError['code'], message: string) {
    super(message)
    this.name = 'AlertPolicyError'
    this.code = code
  }
}

const MINUTES_PER_DAY = 24 * 60
const MINUTE_MS = 60_000

/** A local time of day, 'HH:MM' on a 24-hour clock. */
export const TimeOfDay = z
  .string()
  .regex(/^(?:[01]\d|2[0-3]):[0-5]\d$/, { message: 'a time of day is HH:MM on a 24-hour clock (00:00–23:59)' })
export type TimeOfDay = z.infer<typeof TimeOfDay>

function minutesOf(hhmm: string): number {
  return Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5))
}

/**
 * A quiet window [from, to) in local time. A window with `to` before `from` wraps midnight (18:00–07:00 is
 * quiet from 18:00 until 07:00 the next morning); `from` === `to` is refused (empty or the whole day?).
 */
export const QuietWindow = z.object({ from: TimeOfDay, to: TimeOfDay }).refine((w) => w.from !== w.to, {
  message:
    'a quiet window must not start and end at the same time; for a whole day off use weekends, holidays or extraDays',
  path: ['to'],
})
export type QuietWindow = z.infer<typeof QuietWindow>

/** The window as one or two half-open minute ranges of the day. */
function segments(w: QuietWindow): [number, number][] {
  const from = minutesOf(w.from)
  const to = minutesOf(w.to)
  if (from < to) return [[from, to]]
  const wrapped: [number, number][] = [[from, MINUTES_PER_DAY]]
  if (to > 0) wrapped.push([0, to])
  return wrapped
}

function overlaps(a: QuietWindow, b: QuietWindow): boolean {
  return segments(a).some(([s1, e1]) => segments(b).some(([s2, e2]) => s1 < e2 && s2 < e1))
}

export const QuietHours = z
  .object({
    windows: z.array(QuietWindow).max(8, { message: 'at most 8 quiet windows' }),
    /** Saturday and Sunday are quiet all day. */
    weekends: z.boolean(),
    /** Swedish public holidays (and midsommarafton, julafton, nyårsafton) are quiet all day. */
    holidays: z.boolean(),
    /** Further local days that are quiet all day (study days, school holidays), ISO dates. */
    extraDays: z.array(z.iso.date()).max(400, { message: 'at most 400 extra quiet days' }).default([]),
  })
  .superRefine((q, ctx) => {
    q.windows.forEach((b, j) => {
      for (let i = 0; i < j; i++) {
        const a = q.windows[i]
        if (a === undefined || a.from === a.to || b.from === b.to) continue
        if (overlaps(a, b)) {
          ctx.addIssue({
            code: 'custom',
            path: ['windows', j],
            message: `quiet windows ${a.from}–${a.to} and ${b.from}–${b.to} overlap; merge them into one window`,
          })
        }
      }
    })
    const covered = q.windows
      .filter((w) => w.from !== w.to)
      .flatMap(segments)
      .reduce((sum, [s, e]) => sum + (e - s), 0)
    if (covered >= MINUTES_PER_DAY) {
      ctx.addIssue({
        code: 'custom',
        path: ['windows'],
        message: 'quiet windows cover the whole day, so only top-level alerts would ever arrive; leave a gap',
      })
    }
  })
export type QuietHours = z.infer<typeof QuietHours>

/** Reference §5.2: 18:00–07:00 and weekends; holidays added because a school is closed on them too. */
export const DEFAULT_QUIET_HOURS: QuietHours = {
  windows: [{ from: '18:00', to: '07:00' }],
  weekends: true,
  holidays: true,
  extraDays: [],
}

/**
 * Per recipient: at most 6 messages per rolling hour, the rest deferred into one digest when the window frees
 * (never dropped). One incident sends at most opened + two escalations (EEA rule, thresholds.ts) + closed = 4,
 * so a single site's full story gets through; a region-wide episode (long-range PM2.5, reference §6.2) that
 * breaches at every school at once reaches a staff member subscribed to all sites as one digest, not 40 mails
 * (user-needs D: "notification every second while an alarm is active"). Engineering choice, not sourced.
 */
export const DEFAULT_RATE_LIMIT: Readonly<RateLimit> = { max: 6, windowMs: HOUR_MS }

/** Re-notify interval for a long incident: reference §5.2 "after a re-notify interval (e.g. 24 h)". */
export const DEFAULT_REMINDER_INTERVAL_MS = 24 * HOUR_MS

export interface RateLimit {
  /** Messages allowed per window, ≥ 1. */
  readonly max: number
  readonly windowMs: number
}

// ---------------------------------------------------------------------------------------------------------
// Swedish public holidays

export interface SwedishHoliday {
  /** ISO date 'YYYY-MM-DD'. */
  readonly date: string
  /** Swedish name. */
  readonly name: string
}

function iso(year: number, month: number, day: number): string {
  const d = new Date(Date.UTC(year, month - 1, day))
  // setUTCFullYear keeps years below 100 from being read as 19xx.
  d.setUTCFullYear(year)
  return d.toISOString().slice(0, 10)
}

function checkYear(year: number): void {
  // The Gregorian computus holds from 1583; four-digit years keep ISO dates four-digit.
  if (!Number.isInteger(year) || year < 1583 || year > 9999) {
    throw new AlertPolicyError('BAD_YEAR', `year must be an integer in 1583–9999, got ${year}`)
  }
}

/** Easter Sunday (Gregorian), ISO date. Anonymous Gregorian algorithm (Meeus/Jones/Butcher). */
export function easterSunday(year: number): string {
  checkYear(year)
  const a = year % 19
  const b = Math.floor(year / 100)
  const c = year % 100
  const d = Math.floor(b / 4)
  const e = b % 4
  const f = Math.floor((b + 8) / 25)
  const g = Math.floor((b - f + 1) / 3)
  const h = (19 * a + b - d - g + 15) % 30
  const i = Math.floor(c / 4)
  const k = c % 4
  const l = (32 + 2 * e + 2 * i - h - k) % 7
  const m = Math.floor((a + 11 * h + 22 * l) / 451)
  const month = Math.floor((h + l - 7 * m + 114) / 31)
  const day = ((h + l - 7 * m + 114) % 31) + 1
  return iso(year, month, day)
}

/** The Saturday in [day, day + 6] of a month (midsommardagen, alla helgons dag). */
function saturdayFrom(year: number, month: number, day: number): number {
  const weekday = new Date(Date.UTC(year, month - 1, day)).getUTCDay()
  return day + ((6 - weekday + 7) % 7)
}

/**
 * Swedish public holidays of a year, sorted by date: the "allmänna helgdagar" of Lag (1989:253) om allmänna
 * helgdagar, plus midsommarafton, julafton and nyårsafton, which Arbetstidslagen (1982:673) treats as holidays
 * and on which schools and preschools are closed. Easter-dependent days follow the Gregorian computus.
 * Source: the statutes (not the air-quality reference). Sundays that are holidays (påskdagen, pingstdagen)
 * are listed too, so the list is complete when weekends are not quiet.
 */
export function swedishHolidays(year: number): SwedishHoliday[] {
  checkYear(year)
  const easter = new Date(`${easterSunday(year)}T00:00:00Z`)
  const fromEaster = (days: number): string => new Date(easter.getTime() + days * DAY_MS).toISOString().slice(0, 10)
  const midsommardagen = saturdayFrom(year, 6, 20)
  const allaHelgon = saturdayFrom(year, 10, 31)
  const days: SwedishHoliday[] = [
    { date: iso(year, 1, 1), name: 'nyårsdagen' },
    { date: iso(year, 1, 6), name: 'trettondedag jul' },
    { date: fromEaster(-2), name: 'långfredagen' },
    { date: fromEaster(0), name: 'påskdagen' },
    { date: fromEaster(1), name: 'annandag påsk' },
    { date: iso(year, 5, 1), name: 'första maj' },
    { date: fromEaster(39), name: 'Kristi himmelsfärdsdag' },
    { date: fromEaster(49), name: 'pingstdagen' },
    { date: iso(year, 6, 6), name: 'Sveriges nationaldag' },
    { date: iso(year, 6, midsommardagen - 1), name: 'midsommarafton' },
    { date: iso(year, 6, midsommardagen), name: 'midsommardagen' },
    // 31 Oct + n days may fall in November; Date.UTC normalises the day overflow.
    { date: iso(year, 10, allaHelgon), name: 'alla helgons dag' },
    { date: iso(year, 12, 24), name: 'julafton' },
    { date: iso(year, 12, 25), name: 'juldagen' },
    { date: iso(year, 12, 26), name: 'annandag jul' },
    { date: iso(year, 12, 31), name: 'nyårsafton' },
  ]
  // Kristi himmelsfärdsdag can fall on 1 May (e.g. 2008): one entry per date, both names kept.
  const byDate = new Map<string, string>()
  for (const { date, name } of days) byDate.set(date, byDate.has(date) ? `${byDate.get(date)}, ${name}` : name)
  return [...byDate].map(([date, name]) => ({ date, name })).sort((a, b) => a.date.localeCompare(b.date))
}

/** ISO dates of `swedishHolidays(year)`. */
export function swedishPublicHolidays(year: number): string[] {
  return swedishHolidays(year).map((h) => h.date)
}

// ---------------------------------------------------------------------------------------------------------
// Local time

interface LocalTime {
  /** ISO date of the local day. */
  readonly date: string
  readonly year: number
  /** 0 = Sunday … 6 = Saturday. */
  readonly weekday: number
  /** Minutes since local midnight. */
  readonly minute: number
  /** The local wall-clock reading as if it were UTC, in ms (differences of walls are wall-clock durations). */
  readonly wall: number
  /** Start of the next local day as a wall reading. */
  readonly nextMidnightWall: number
}

/** One formatter per call chain (creating an Intl formatter is the expensive part). */
function zoneClock(timeZone: string): (at: number) => LocalTime {
  const format = new Intl.DateTimeFormat('en-US', {
    timeZone,
    hourCycle: 'h23',
    year: 'numeric',
    month: 'numeric',
    day: 'numeric',
    hour: 'numeric',
    minute: 'numeric',
    second: 'numeric',
  })
  return (at) => {
    const part: Record<string, number> = {}
    for (const p of format.formatToParts(at)) if (p.type !== 'literal') part[p.type] = Number(p.value)
    const year = part.year ?? Number.NaN
    const month = part.month ?? Number.NaN
    const day = part.day ?? Number.NaN
    const hour = part.hour ?? Number.NaN
    const minute = part.minute ?? Number.NaN
    const ms = ((at % 1000) + 1000) % 1000
    const midnight = Date.UTC(year, month - 1, day)
    return {
      date: iso(year, month, day),
      year,
      weekday: new Date(midnight).getUTCDay(),
      minute: hour * 60 + minute,
      wall: Date.UTC(year, month - 1, day, hour, minute, part.second ?? 0) + ms,
      nextMidnightWall: midnight + DAY_MS,
    }
  }
}

function windowAt(minute: number, quiet: QuietHours): QuietWindow | undefined {
  return quiet.windows.find((w) => segments(w).some(([s, e]) => s <= minute && minute < e))
}

function quietCalendar(quiet: QuietHours): (lt: LocalTime) => boolean {
  const holidays = new Map<number, Set<string>>()
  const extra = new Set(quiet.extraDays)
  return (lt) => {
    if (quiet.weekends && (lt.weekday === 0 || lt.weekday === 6)) return true
    if (extra.has(lt.date)) return true
    if (!quiet.holidays) return false
    let set = holidays.get(lt.year)
    if (set === undefined) {
      set = new Set(swedishPublicHolidays(lt.year))
      holidays.set(lt.year, set)
    }
    return set.has(lt.date)
  }
}

/** Whether `at` falls in quiet time: a quiet window, a weekend, a holiday or an extra day (local time). */
export function isQuiet(at: number, quiet: QuietHours, timeZone: string = ALERT_TIME_ZONE): boolean {
  const lt = zoneClock(timeZone)(at)
  return quietCalendar(quiet)(lt) || windowAt(lt.minute, quiet) !== undefined
}

/**
 * More steps than any valid QuietHours needs: 400 extra days + weekends + holidays + one window per day, each a
 * step or two, plus DST transitions.
 */
const MAX_QUIET_STEPS = 4000

/**
 * The first instant ≥ `at` that is not quiet: when the morning digest goes out. `at` itself when it is not
 * quiet. Walks from boundary to boundary (end of a quiet day, end of a window) in wall-clock time; when a step
 * crosses a daylight-saving change, it stops at the change and looks again, so a window ending in the skipped
 * spring hour ends at the change, and the repeated autumn hour is judged by the wall clock like any other.
 */
export function quietEnd(at: number, quiet: QuietHours, timeZone: string = ALERT_TIME_ZONE): number {
  const clock = zoneClock(timeZone)
  const quietDay = quietCalendar(quiet)
  const offset = (t: number): number => clock(t).wall - t
  let t = at
  for (let step = 0; step < MAX_QUIET_STEPS; step++) {
    const lt = clock(t)
    let targetWall: number
    if (quietDay(lt)) {
      targetWall = lt.nextMidnightWall
    } else {
      const w = windowAt(lt.minute, quiet)
      if (w === undefined) return t
      const to = minutesOf(w.to)
      targetWall = lt.nextMidnightWall - DAY_MS + to * MINUTE_MS + (to <= lt.minute ? DAY_MS : 0)
    }
    const next = t + (targetWall - lt.wall)
    const before = offset(t)
    if (offset(next) === before) {
      t = next
      continue
    }
    // A DST change lies in (t, next]: find the first instant with the new offset and continue from there.
    let lo = t
    let hi = next
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2)
      if (offset(mid) === before) lo = mid
      else hi = mid
    }
    t = hi
  }
  throw new AlertPolicyError('ALWAYS_QUIET', 'no end of quiet time found; check the quiet hours')
}

// ---------------------------------------------------------------------------------------------------------
// Delivery decision

export interface DeliveryDecision {
  readonly action: 'send' | 'defer'
  /** When to send: `now` for 'send', the deferral time (digest) for 'defer'. */
  readonly at: number
  readonly reason: 'immediate' | 'quiet_hours' | 'rate_limited' | 'urgent'
}

export interface DeliveryInput {
  readonly now: number
  /** A top-level alert (reference §5.2 "except top-level alerts"): bypasses quiet hours and the rate limit. */
  readonly urgent: boolean
  /** The subscription's quiet hours; null = never quiet. */
  readonly quiet: QuietHours | null
  /** Messages sent (or claimed) to this recipient within the rate-limit window ending at `now`. */
  readonly sentInWindow: number
  readonly rateLimit: RateLimit
  /** Send time of the oldest of those messages; null when none. */
  readonly oldestSentInWindow: number | null
  readonly timeZone?: string
}

/**
 * Send now, or defer (into a digest) until when. Urgent → send now, even in quiet hours and over the limit.
 * Quiet → defer to the end of quiet time (the morning digest). Over the rate limit → defer until the window
 * frees (oldest send + window), moved on to the end of quiet time if that falls in it. Nothing is dropped.
 */
export function decideDelivery(input: DeliveryInput): DeliveryDecision {
  const { now, urgent, quiet, sentInWindow, rateLimit, oldestSentInWindow } = input
  const timeZone = input.timeZone ?? ALERT_TIME_ZONE
  if (!Number.isInteger(rateLimit.max) || rateLimit.max < 1 || !(rateLimit.windowMs > 0)) {
    throw new AlertPolicyError(
      'BAD_RATE_LIMIT',
      `rate limit needs max ≥ 1 and windowMs > 0, got ${rateLimit.max}/${rateLimit.windowMs}`,
    )
  }
  if (urgent) return { action: 'send', at: now, reason: 'urgent' }
  if (quiet !== null && isQuiet(now, quiet, timeZone)) {
    return { action: 'defer', at: quietEnd(now, quiet, timeZone), reason: 'quiet_hours' }
  }
  if (sentInWindow >= rateLimit.max) {
    const frees = Math.max(now, (oldestSentInWindow ?? now) + rateLimit.windowMs)
    const at = quiet !== null ? quietEnd(frees, quiet, timeZone) : frees
    return { action: 'defer', at, reason: 'rate_limited' }
  }
  return { action: 'send', at: now, reason: 'immediate' }
}

// ---------------------------------------------------------------------------------------------------------
// Reminders

/**
 * How many re-notify intervals have passed since `since` (an incident's open or last escalation): 0 before the
 * first is due. The n-th reminder is due at `since + n × interval`; (incident, n) makes a stable dedupe key, so
 * a service that was down for three days sends one reminder (the latest n), not three.
 */
export function reminderIndex(since: number, now: number, intervalMs: number = DEFAULT_REMINDER_INTERVAL_MS): number {
  if (!(intervalMs > 0) || now < since) return 0
  return Math.floor((now - since) / intervalMs)
}
