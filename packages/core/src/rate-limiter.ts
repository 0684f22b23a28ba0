/**
 * Per-key token buckets: each key may take `burst` tokens back to back, refilled at `ratePerS`. State
 * outlives a connection, so a device cannot reset its bucket by reconnecting. Memory is bounded: past
 * `maxKeys`, buckets that have refilled completely (and so carry no state worth keeping) are dropped, and
 * if none has, the fullest one: an emptied bucket (a flooding device) is the last to be forgotten.
 */
export interface RateLimiter {
  /** Takes one token for `key`; false if the bucket is empty. */
  take(key: string): boolean
  /** Whether `key`'s bucket is empty now (takes nothing): for limits that count only failures. */
  isEmpty(key: string): boolean
  readonly size: number
}

export function createRateLimiter(options: {
  readonly ratePerS: number
  readonly burst: number
  readonly clock: () => number
  readonly maxKeys: number
}): RateLimiter {
  const { ratePerS, burst, clock, maxKeys } = options
  const buckets = new Map<string, { tokens: number; at: number }>()

  function refill(bucket: { tokens: number; at: number }, now: number): void {
    const elapsedS = Math.max(0, now - bucket.at) / 1000
    bucket.tokens = Math.min(burst, bucket.tokens + elapsedS * ratePerS)
    bucket.at = now
  }

  function makeRoom(now: number): void {
    let fullest: string | undefined
    let most = -1
    for (const [key, bucket] of buckets) {
      refill(bucket, now)
      if (bucket.tokens >= burst) buckets.delete(key)
      else if (bucket.tokens > most) {
        most = bucket.tokens
        fullest = key
      }
    }
    if (buckets.size >= maxKeys && fullest !== undefined) buckets.delete(fullest)
  }

  return {
    take(key) {
      const now = clock()
      let bucket = buckets.get(key)
      if (bucket === undefined) {
        if (buckets.size >= maxKeys) makeRoom(now)
        bucket = { tokens: burst, at: now }
        buckets.set(key, bucket)
      } else {
        refill(bucket, now)
      }
      if (bucket.tokens < 1) return false
      bucket.tokens -= 1
      return true
    },
    isEmpty(key) {
      const bucket = buckets.get(key)
      if (bucket === undefined) return false
      refill(bucket, clock())
      return bucket.tokens < 1
    },
    get size() {
      return buckets.size
    },
  }
}
