import { describe, expect, it } from 'vitest'
import { MAX_DELIVERY_ATTEMPTS, planRetry, RETRY_MAX_DELAY_MS, retryDelayMs } from './backoff.ts'

const MIN = 60_000
const HOUR = 3_600_000

describe('retryDelayMs', () => {
  it('doubles from 30 s and caps at 1 h', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8, 9, 30].map(retryDelayMs)).toEqual([
      30_000,
      MIN,
      2 * MIN,
      4 * MIN,
      8 * MIN,
      16 * MIN,
      32 * MIN,
      HOUR,
      HOUR,
      HOUR,
    ])
  })

  it('treats nonsense attempts as the first and huge ones as the cap', () => {
    expect(retryDelayMs(0)).toBe(30_000)
    expect(retryDelayMs(-3)).toBe(30_000)
    expect(retryDelayMs(Number.NaN)).toBe(30_000)
    expect(retryDelayMs(2.9)).toBe(MIN)
    expect(retryDelayMs(10_000)).toBe(RETRY_MAX_DELAY_MS)
    expect(retryDelayMs(Number.POSITIVE_INFINITY)).toBe(RETRY_MAX_DELAY_MS)
  })

  it('keeps retrying for just under a day, the reminder interval', () => {
    let total = 0
    for (let attempt = 1; attempt < MAX_DELIVERY_ATTEMPTS; attempt++) total += retryDelayMs(attempt)
    expect(total).toBeGreaterThan(20 * HOUR)
    expect(total).toBeLessThan(24 * HOUR)
  })
})

describe('planRetry', () => {
  const now = 1_700_000_000_000
  const transient = { permanent: false, retryAfterMs: null }

  it('retries a transient failure after the backoff delay', () => {
    expect(planRetry({ attempts: 1, now, error: transient })).toEqual({
      status: 'pending',
      nextAttemptAt: now + 30_000,
    })
    expect(planRetry({ attempts: 3, now, error: transient })).toEqual({
      status: 'pending',
      nextAttemptAt: now + 2 * MIN,
    })
  })

  it('gives up on a permanent error at once, and on a transient one after the last attempt', () => {
    expect(planRetry({ attempts: 1, now, error: { permanent: true, retryAfterMs: null } })).toEqual({
      status: 'failed',
    })
    expect(planRetry({ attempts: MAX_DELIVERY_ATTEMPTS - 1, now, error: transient }).status).toBe('pending')
    expect(planRetry({ attempts: MAX_DELIVERY_ATTEMPTS, now, error: transient })).toEqual({ status: 'failed' })
  })

  it('honours a longer Retry-After, but never beyond the cap', () => {
    expect(planRetry({ attempts: 1, now, error: { permanent: false, retryAfterMs: 5 * MIN } })).toEqual({
      status: 'pending',
      nextAttemptAt: now + 5 * MIN,
    })
    expect(planRetry({ attempts: 1, now, error: { permanent: false, retryAfterMs: 1_000 } })).toEqual({
      status: 'pending',
      nextAttemptAt: now + 30_000,
    })
    expect(planRetry({ attempts: 1, now, error: { permanent: false, retryAfterMs: 48 * HOUR } })).toEqual({
      status: 'pending',
      nextAttemptAt: now + HOUR,
    })
  })
})
