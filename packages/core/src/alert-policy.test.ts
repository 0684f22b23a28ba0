import { describe, expect, it } from 'vitest'
import {
  ALERT_TIME_ZONE,
  AlertPolicyError,
  DEFAULT_QUIET_HOURS,
  DEFAULT_RATE_LIMIT,
  DEFAULT_REMINDER_INTERVAL_MS,
  decideDelivery,
  easterSunday,
  isQuiet,
  QuietHours,
  quietEnd,
  reminderIndex,
  swedishHolidays,
  swedishPublicHolidays,
} from './alert-policy.ts'

const MIN = 60_000
const HOUR = 60 * MIN
/** UTC epoch ms; every local time below is written next to it (CET = UTC+1, CEST = UTC+2). */
const utc = (y: number, mo: number, d: number, h = 0, mi = 0): number => Date.UTC(y, mo - 1, d, h, mi)

/** Quiet only in the given windows: no weekend, holiday or extra-day rules. */
function windowsOnly(...windows: [string, string][]): QuietHours {
  return QuietHours.parse({ windows: windows.map(([from, to]) => ({ from, to })), weekends: false, holidays: false })
}

function issues(input: unknown): string[] {
  const result = QuietHours.safeParse(input)
  return result.success ? [] : result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`)
}

describe('QuietHours schema', () => {
  it('accepts the default (reference §5.2: 18:00–07:00, weekends) and fills extraDays', () => {
    expect(QuietHours.parse({ windows: [{ from: '18:00', to: '07:00' }], weekends: true, holidays: true })).toEqual(
      DEFAULT_QUIET_HOURS,
    )
    expect(ALERT_TIME_ZONE).toBe('Europe/Stockholm')
  })

  it('refuses overlapping windows with a clear message, including across midnight', () => {
    const q = (windows: [string, string][]) => ({
      windows: windows.map(([from, to]) => ({ from, to })),
      weekends: false,
      holidays: false,
    })
    expect(
      issues(
        q([
          ['08:00', '10:00'],
          ['09:30', '11:00'],
        ]),
      ),
    ).toEqual(['windows.1: quiet windows 08:00–10:00 and 09:30–11:00 overlap; merge them into one window'])
    // 22:00–06:00 wraps midnight and covers 05:00–06:00 of the second window.
    expect(
      issues(
        q([
          ['22:00', '06:00'],
          ['05:00', '08:00'],
        ]),
      ),
    ).toEqual(['windows.1: quiet windows 22:00–06:00 and 05:00–08:00 overlap; merge them into one window'])
    // Two wrapping windows always overlap (both contain midnight).
    expect(
      issues(
        q([
          ['23:00', '01:00'],
          ['22:00', '00:30'],
        ]),
      ),
    ).toHaveLength(1)
    // Touching is not overlapping.
    expect(
      issues(
        q([
          ['18:00', '07:00'],
          ['07:00', '08:00'],
          ['12:00', '13:00'],
        ]),
      ),
    ).toEqual([])
  })

  it('refuses a window that starts and ends at the same time', () => {
    expect(issues({ windows: [{ from: '07:00', to: '07:00' }], weekends: true, holidays: true })).toEqual([
      'windows.0.to: a quiet window must not start and end at the same time; for a whole day off use weekends, holidays or extraDays',
    ])
  })

  it('refuses windows that together cover the whole day', () => {
    const all = issues({
      windows: [
        { from: '00:00', to: '12:00' },
        { from: '12:00', to: '00:00' },
      ],
      weekends: false,
      holidays: false,
    })
    expect(all).toEqual([
      'windows: quiet windows cover the whole day, so only top-level alerts would ever arrive; leave a gap',
    ])
  })

  it('refuses bad times, bad dates and too many windows', () => {
    expect(issues({ windows: [{ from: '24:00', to: '07:00' }], weekends: true, holidays: true })[0]).toMatch(/HH:MM/)
    expect(issues({ windows: [{ from: '7:00', to: '08:00' }], weekends: true, holidays: true })[0]).toMatch(/HH:MM/)
    expect(issues({ windows: [], weekends: true, holidays: true, extraDays: ['2025-02-30'] })).toHaveLength(1)
    const nine = Array.from({ length: 9 }, (_, i) => ({ from: `0${i}:00`, to: `0${i}:30` }))
    expect(issues({ windows: nine, weekends: true, holidays: true })).toEqual(['windows: at most 8 quiet windows'])
  })
})

describe('Swedish public holidays', () => {
  it('computes Easter Sunday (Gregorian computus) for known years', () => {
    expect(easterSunday(2024)).toBe('2024-03-31')
    expect(easterSunday(2025)).toBe('2025-04-20')
    expect(easterSunday(2026)).toBe('2026-04-05')
    expect(easterSunday(2027)).toBe('2027-03-28')
    expect(easterSunday(2019)).toBe('2019-04-21')
    expect(easterSunday(2038)).toBe('2038-04-25') // latest possible
    expect(easterSunday(2285)).toBe('2285-03-22') // earliest possible
    expect(() => easterSunday(1500)).toThrow(AlertPolicyError)
  })

  it('lists the holidays of 2024 in order', () => {
    expect(swedishHolidays(2024)).toEqual([
      { date: '2024-01-01', name: 'nyårsdagen' },
      { date: '2024-01-06', name: 'trettondedag jul' },
      { date: '2024-03-29', name: 'långfredagen' },
      { date: '2024-03-31', name: 'påskdagen' },
      { date: '2024-04-01', name: 'annandag påsk' },
      { date: '2024-05-01', name: 'första maj' },
      { date: '2024-05-09', name: 'Kristi himmelsfärdsdag' },
      { date: '2024-05-19', name: 'pingstdagen' },
      { date: '2024-06-06', name: 'Sveriges nationaldag' },
      { date: '2024-06-21', name: 'midsommarafton' },
      { date: '2024-06-22', name: 'midsommardagen' },
      { date: '2024-11-02', name: 'alla helgons dag' },
      { date: '2024-12-24', name: 'julafton' },
      { date: '2024-12-25', name: 'juldagen' },
      { date: '2024-12-26', name: 'annandag jul' },
      { date: '2024-12-31', name: 'nyårsafton' },
    ])
  })

  it.each([
    // year, långfredag, annandag påsk, Kristi himmelsfärd, pingst, midsommarafton, alla helgons dag
    [2025, '2025-04-18', '2025-04-21', '2025-05-29', '2025-06-08', '2025-06-20', '2025-11-01'],
    [2026, '2026-04-03', '2026-04-06', '2026-05-14', '2026-05-24', '2026-06-19', '2026-10-31'],
    [2027, '2027-03-26', '2027-03-29', '2027-05-06', '2027-05-16', '2027-06-25', '2027-11-06'],
  ])('moves the Easter-dependent days, midsommar and alla helgon in %i', (year, ...dates) => {
    const holidays = swedishPublicHolidays(year)
    for (const date of dates) expect(holidays).toContain(date)
    expect(holidays).toHaveLength(16)
    // midsommardagen is the Saturday after midsommarafton
    const afton = swedishHolidays(year).find((h) => h.name === 'midsommarafton')
    const dagen = swedishHolidays(year).find((h) => h.name === 'midsommardagen')
    expect(new Date(`${afton?.date}T00:00:00Z`).getUTCDay()).toBe(5)
    expect(new Date(`${dagen?.date}T00:00:00Z`).getUTCDay()).toBe(6)
  })

  it('keeps one entry when Kristi himmelsfärdsdag falls on 1 May (2008)', () => {
    const may1 = swedishHolidays(2008).filter((h) => h.date === '2008-05-01')
    expect(may1).toEqual([{ date: '2008-05-01', name: 'första maj, Kristi himmelsfärdsdag' }])
    expect(swedishPublicHolidays(2008)).toHaveLength(15)
  })
})

describe('isQuiet', () => {
  it('handles a window that wraps midnight (local time, winter CET)', () => {
    const q = windowsOnly(['22:00', '06:00'])
    // Wednesday 2025-01-15, CET = UTC+1
    expect(isQuiet(utc(2025, 1, 15, 20, 59), q)).toBe(false) // 21:59
    expect(isQuiet(utc(2025, 1, 15, 21, 0), q)).toBe(true) // 22:00
    expect(isQuiet(utc(2025, 1, 15, 22, 59), q)).toBe(true) // 23:59
    expect(isQuiet(utc(2025, 1, 15, 23, 0), q)).toBe(true) // 00:00 Thursday
    expect(isQuiet(utc(2025, 1, 16, 4, 59), q)).toBe(true) // 05:59
    expect(isQuiet(utc(2025, 1, 16, 5, 0), q)).toBe(false) // 06:00
  })

  it('treats a window ending at 00:00 as ending at midnight', () => {
    const q = windowsOnly(['18:00', '00:00'])
    expect(isQuiet(utc(2025, 1, 15, 22, 59), q)).toBe(true) // 23:59
    expect(isQuiet(utc(2025, 1, 15, 23, 0), q)).toBe(false) // 00:00
  })

  it('follows the wall clock across DST: 07:00 is 06:00 UTC in winter and 05:00 UTC in summer', () => {
    const q = windowsOnly(['18:00', '07:00'])
    // Sunday 2024-03-31: clocks go from 02:00 CET to 03:00 CEST at 01:00 UTC
    expect(isQuiet(utc(2024, 3, 31, 4, 59), q)).toBe(true) // 06:59 CEST
    expect(isQuiet(utc(2024, 3, 31, 5, 0), q)).toBe(false) // 07:00 CEST
    // Sunday 2024-10-27: clocks go from 03:00 CEST back to 02:00 CET at 01:00 UTC
    expect(isQuiet(utc(2024, 10, 27, 5, 59), q)).toBe(true) // 06:59 CET
    expect(isQuiet(utc(2024, 10, 27, 6, 0), q)).toBe(false) // 07:00 CET
    expect(isQuiet(utc(2024, 10, 27, 16, 59), q)).toBe(false) // 17:59 CET
    expect(isQuiet(utc(2024, 10, 27, 17, 0), q)).toBe(true) // 18:00 CET
  })

  it('is quiet all day on weekends, holidays and extra days when asked, and not otherwise', () => {
    const midsommarafton = utc(2025, 6, 20, 8) // Friday 10:00 CEST
    expect(isQuiet(midsommarafton, DEFAULT_QUIET_HOURS)).toBe(true)
    expect(isQuiet(midsommarafton, { ...DEFAULT_QUIET_HOURS, holidays: false })).toBe(false)
    const saturday = utc(2025, 6, 14, 10) // 12:00 CEST
    expect(isQuiet(saturday, DEFAULT_QUIET_HOURS)).toBe(true)
    expect(isQuiet(saturday, { ...DEFAULT_QUIET_HOURS, weekends: false })).toBe(false)
    const studyDay = utc(2025, 3, 12, 10) // Wednesday 11:00 CET
    expect(isQuiet(studyDay, DEFAULT_QUIET_HOURS)).toBe(false)
    expect(isQuiet(studyDay, { ...DEFAULT_QUIET_HOURS, extraDays: ['2025-03-12'] })).toBe(true)
    // The local date decides: 23:30 UTC on 5 June is 01:30 on the national day (6 June) in Sweden.
    const q = { ...DEFAULT_QUIET_HOURS, windows: [] }
    expect(isQuiet(utc(2025, 6, 5, 21, 30), q)).toBe(false) // 23:30 CEST 5 June
    expect(isQuiet(utc(2025, 6, 5, 22, 30), q)).toBe(true) // 00:30 CEST 6 June
  })
})

describe('quietEnd', () => {
  it('returns the instant itself when it is not quiet', () => {
    const at = utc(2025, 1, 15, 9, 17) + 123
    expect(quietEnd(at, DEFAULT_QUIET_HOURS)).toBe(at)
  })

  it('ends a weekday evening at 07:00 the next morning', () => {
    // Wednesday 2025-01-15 19:12:30 CET → Thursday 07:00 CET
    expect(quietEnd(utc(2025, 1, 15, 18, 12) + 30_000, DEFAULT_QUIET_HOURS)).toBe(utc(2025, 1, 16, 6))
  })

  it('moves a Friday evening to Monday 07:00, in winter and across both DST changes', () => {
    // Friday 2025-01-17 19:00 CET → Monday 2025-01-20 07:00 CET
    expect(quietEnd(utc(2025, 1, 17, 18), DEFAULT_QUIET_HOURS)).toBe(utc(2025, 1, 20, 6))
    // Friday 2025-03-28 19:00 CET → (DST Sunday 30 March) → Monday 31 March 07:00 CEST
    expect(quietEnd(utc(2025, 3, 28, 18), DEFAULT_QUIET_HOURS)).toBe(utc(2025, 3, 31, 5))
    // Friday 2024-10-25 19:00 CEST → (back to CET Sunday 27 October) → Monday 28 October 07:00 CET
    expect(quietEnd(utc(2024, 10, 25, 17), DEFAULT_QUIET_HOURS)).toBe(utc(2024, 10, 28, 6))
  })

  it('carries on over holidays: Easter 2024 with DST, Easter 2025, Ascension 2026, midsommar, Christmas, New Year', () => {
    // Thursday 2024-03-28 19:00 CET → långfredag, weekend (DST), annandag påsk → Tuesday 2 April 07:00 CEST
    expect(quietEnd(utc(2024, 3, 28, 18), DEFAULT_QUIET_HOURS)).toBe(utc(2024, 4, 2, 5))
    // Thursday 2025-04-17 18:30 CEST → Tuesday 2025-04-22 07:00 CEST
    expect(quietEnd(utc(2025, 4, 17, 16, 30), DEFAULT_QUIET_HOURS)).toBe(utc(2025, 4, 22, 5))
    // Wednesday 2026-05-13 20:00 CEST → Kristi himmelsfärdsdag Thursday 14 May → Friday 15 May 07:00 CEST
    expect(quietEnd(utc(2026, 5, 13, 18), DEFAULT_QUIET_HOURS)).toBe(utc(2026, 5, 15, 5))
    // Thursday 2025-06-19 19:00 CEST → midsommarafton, midsommardagen, Sunday → Monday 23 June 07:00 CEST
    expect(quietEnd(utc(2025, 6, 19, 17), DEFAULT_QUIET_HOURS)).toBe(utc(2025, 6, 23, 5))
    // Tuesday 2025-12-23 19:00 CET → julafton … annandag jul, weekend → Monday 29 December 07:00 CET
    expect(quietEnd(utc(2025, 12, 23, 18), DEFAULT_QUIET_HOURS)).toBe(utc(2025, 12, 29, 6))
    // Wednesday 2026-12-30 19:00 CET → nyårsafton, nyårsdagen (2027), weekend → Monday 2027-01-04 07:00 CET
    expect(quietEnd(utc(2026, 12, 30, 18), DEFAULT_QUIET_HOURS)).toBe(utc(2027, 1, 4, 6))
  })

  it('skips extra days (a sportlov week) as well', () => {
    const q = {
      ...DEFAULT_QUIET_HOURS,
      extraDays: ['2025-02-17', '2025-02-18', '2025-02-19', '2025-02-20', '2025-02-21'],
    }
    // Friday 2025-02-14 19:00 CET → Monday 2025-02-24 07:00 CET
    expect(quietEnd(utc(2025, 2, 14, 18), q)).toBe(utc(2025, 2, 24, 6))
  })

  it('ends a window that ends inside the skipped spring hour at the DST change', () => {
    // 2024-03-31 (weekends not quiet here): 02:30 local does not exist; the clock jumps 02:00 CET → 03:00 CEST.
    const q = windowsOnly(['22:00', '02:30'])
    expect(isQuiet(utc(2024, 3, 31, 0, 59), q)).toBe(true) // 01:59 CET
    expect(isQuiet(utc(2024, 3, 31, 1, 0), q)).toBe(false) // 03:00 CEST
    expect(quietEnd(utc(2024, 3, 30, 22), q)).toBe(utc(2024, 3, 31, 1)) // from 23:00 CET Saturday
  })

  it('ends a window across the spring change at the right wall time', () => {
    const q = windowsOnly(['01:00', '03:30'])
    // 01:30 CET → 03:30 CEST = 01:30 UTC (only one hour of real time passes)
    expect(quietEnd(utc(2024, 3, 31, 0, 30), q)).toBe(utc(2024, 3, 31, 1, 30))
  })

  it('judges the repeated autumn hour by the wall clock', () => {
    // 2024-10-27: 02:00–03:00 local happens twice (CEST, then CET).
    const q = windowsOnly(['22:00', '02:30'])
    // First 02:10 (CEST, 00:10 UTC) → first 02:30 (CEST, 00:30 UTC)
    expect(quietEnd(utc(2024, 10, 27, 0, 10), q)).toBe(utc(2024, 10, 27, 0, 30))
    // Second 02:10 (CET, 01:10 UTC) is quiet again → second 02:30 (CET, 01:30 UTC)
    expect(isQuiet(utc(2024, 10, 27, 1, 10), q)).toBe(true)
    expect(quietEnd(utc(2024, 10, 27, 1, 10), q)).toBe(utc(2024, 10, 27, 1, 30))
    // Across the change: a window 02:50–03:30 from 02:55 CEST ends when the clock falls back to 02:00 CET.
    const late = windowsOnly(['02:50', '03:30'])
    expect(quietEnd(utc(2024, 10, 27, 0, 55), late)).toBe(utc(2024, 10, 27, 1))
    // From 23:00 CEST Saturday, the whole night with the default window: 07:00 CET Sunday.
    expect(quietEnd(utc(2024, 10, 26, 21), windowsOnly(['18:00', '07:00']))).toBe(utc(2024, 10, 27, 6))
  })

  it('refuses quiet hours that never end (not constructible through the schema)', () => {
    const always: QuietHours = {
      windows: [
        { from: '00:00', to: '12:00' },
        { from: '12:00', to: '00:00' },
      ],
      weekends: false,
      holidays: false,
      extraDays: [],
    }
    expect(() => quietEnd(utc(2025, 1, 15, 10), always)).toThrow(
      expect.objectContaining({ code: 'ALWAYS_QUIET' }) as Error,
    )
  })
})

describe('decideDelivery', () => {
  const wednesday10 = utc(2025, 1, 15, 9) // 10:00 CET
  const base = {
    now: wednesday10,
    urgent: false,
    quiet: DEFAULT_QUIET_HOURS,
    sentInWindow: 0,
    rateLimit: DEFAULT_RATE_LIMIT,
    oldestSentInWindow: null,
  }

  it('sends immediately outside quiet hours and under the limit', () => {
    expect(decideDelivery(base)).toEqual({ action: 'send', at: wednesday10, reason: 'immediate' })
    expect(decideDelivery({ ...base, sentInWindow: 5, oldestSentInWindow: wednesday10 - 10 * MIN })).toEqual({
      action: 'send',
      at: wednesday10,
      reason: 'immediate',
    })
  })

  it('defers into the morning digest in quiet hours', () => {
    const friday19 = utc(2025, 1, 17, 18)
    expect(decideDelivery({ ...base, now: friday19 })).toEqual({
      action: 'defer',
      at: utc(2025, 1, 20, 6),
      reason: 'quiet_hours',
    })
    // No quiet hours: sent at once.
    expect(decideDelivery({ ...base, now: friday19, quiet: null }).action).toBe('send')
  })

  it('lets an urgent alert through quiet hours and over the rate limit', () => {
    const friday19 = utc(2025, 1, 17, 18)
    expect(
      decideDelivery({ ...base, now: friday19, urgent: true, sentInWindow: 99, oldestSentInWindow: friday19 - MIN }),
    ).toEqual({ action: 'send', at: friday19, reason: 'urgent' })
  })

  it('defers over the rate limit until the window frees, never drops', () => {
    expect(DEFAULT_RATE_LIMIT).toEqual({ max: 6, windowMs: HOUR })
    expect(decideDelivery({ ...base, sentInWindow: 6, oldestSentInWindow: wednesday10 - 20 * MIN })).toEqual({
      action: 'defer',
      at: wednesday10 + 40 * MIN,
      reason: 'rate_limited',
    })
    // Inconsistent input (count without an oldest time) still defers by one window.
    expect(decideDelivery({ ...base, sentInWindow: 6, oldestSentInWindow: null }).at).toBe(wednesday10 + HOUR)
  })

  it('moves a rate-limit deferral that frees inside quiet hours to the end of them', () => {
    const now = utc(2025, 1, 15, 16, 50) // Wednesday 17:50 CET
    expect(decideDelivery({ ...base, now, sentInWindow: 6, oldestSentInWindow: utc(2025, 1, 15, 16, 10) })).toEqual({
      action: 'defer',
      at: utc(2025, 1, 16, 6),
      reason: 'rate_limited',
    })
  })

  it('refuses a nonsensical rate limit', () => {
    expect(() => decideDelivery({ ...base, rateLimit: { max: 0, windowMs: HOUR } })).toThrow(AlertPolicyError)
    expect(() => decideDelivery({ ...base, rateLimit: { max: 1, windowMs: 0 } })).toThrow(/windowMs/)
  })
})

describe('reminderIndex', () => {
  it('counts whole re-notify intervals (reference §5.2: 24 h)', () => {
    expect(DEFAULT_REMINDER_INTERVAL_MS).toBe(24 * HOUR)
    const since = utc(2025, 1, 15, 9)
    expect(reminderIndex(since, since)).toBe(0)
    expect(reminderIndex(since, since + 24 * HOUR - 1)).toBe(0)
    expect(reminderIndex(since, since + 24 * HOUR)).toBe(1)
    expect(reminderIndex(since, since + 73 * HOUR)).toBe(3)
    expect(reminderIndex(since, since - HOUR)).toBe(0)
    expect(reminderIndex(since, since + 3 * HOUR, HOUR)).toBe(3)
  })
})
