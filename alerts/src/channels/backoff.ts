/**
 * Retry schedule for failed deliveries: exponential, capped, jitter-free.
 *
 * Why these numbers:
 * - First retry after 30 s: most transient failures we meet are a relay or receiver restarting, or an SMTP
 *   greylisting 451, which typically lets the same message through after a few minutes (greylisting
 *   implementations wait 1–5 min); doubling from 30 s reaches that range by the 3rd–4th retry.
 * - Cap 1 h: an alert is time-critical, so during a longer outage we still try every hour, and delivery follows
 *   within an hour of the receiver coming back. One attempt per hour per row is negligible load.
 * - Give up after 30 attempts: 30 s + 1 + 2 + 4 + 8 + 16 + 32 min (≈ 1 h 3.5 min) and then 22 × 1 h ≈ 23 h of
 *   retrying, just under the 24 h reminder interval (reference air-quality.md §5.2 "re-notify interval (e.g. 24 h)"):
 *   by then a reminder about a still-open incident supersedes the undelivered message, and an alert older than a
 *   day no longer helps anyone decide whether the children play outdoors. (RFC 5321 §4.5.4.1 asks MTAs to keep
 *   trying for 4–5 days; that is for relaying mail, where our SMTP relay takes over once it accepted the message.)
 * - No jitter: rows fail at spread-out times already (each has its own claim time), and a deterministic schedule
 *   can be asserted in tests and explained to an operator.
 */

/** Delay before the first retry (see above). */
export const RETRY_BASE_DELAY_MS = 30_000
/** Longest wait between two attempts (see above). */
export const RETRY_MAX_DELAY_MS = 3_600_000
/** Attempts (the first one included) after which a transiently failing message is marked failed (≈ 23 h, see above). */
export const MAX_DELIVERY_ATTEMPTS = 30

/**
 * Delay before the next attempt, after `attempt` failed attempts (1 = the first attempt failed):
 * 30 s, 1 min, 2 min, 4 min, 8 min, 16 min, 32 min, then 1 h. Values below 1 (and NaN) are treated as 1.
 */
export function retryDelayMs(attempt: number): number {
  const n = Number.isNaN(attempt) ? 1 : Math.max(1, Math.floor(attempt))
  // 2^7 × 30 s is already past the cap; avoid large exponents altogether.
  if (n > 8) return RETRY_MAX_DELAY_MS
  return Math.min(RETRY_BASE_DELAY_MS * 2 ** (n - 1), RETRY_MAX_DELAY_MS)
}

/** What to do with an outbox row after a failed attempt; the shape AlertStore.finishAttempt takes. */
export type RetryPlan = { readonly status: 'pending'; readonly nextAttemptAt: number } | { readonly status: 'failed' }

/**
 * Plans the row's next step after a failed attempt. `attempts` counts every attempt made so far, the failed one
 * included. A permanent error or the last allowed attempt → failed; otherwise retry after retryDelayMs, or after
 * the receiver's Retry-After when that is longer (capped at RETRY_MAX_DELAY_MS so a receiver cannot park a row
 * for days).
 */
export function planRetry(input: {
  readonly attempts: number
  readonly now: number
  readonly error: { readonly permanent: boolean; readonly retryAfterMs: number | null }
}): RetryPlan {
  if (input.error.permanent || input.attempts >= MAX_DELIVERY_ATTEMPTS) return { status: 'failed' }
  const retryAfter = Math.min(Math.max(0, input.error.retryAfterMs ?? 0), RETRY_MAX_DELAY_MS)
  return { status: 'pending', nextAttemptAt: input.now + Math.max(retryDelayMs(input.attempts), retryAfter) }
}
