import { describe, expect, it } from 'vitest'
import { createRateLimiter } from './rate-limiter.ts'

describe('createRateLimiter', () => {
  it('allows a burst, refuses beyond it, and refills at the sustained rate', () => {
    let now = 1_000_000
    const limiter = createRateLimiter({ ratePerS: 2, burst: 3, clock: () => now, maxKeys: 10 })
    expect([limiter.take('a'), limiter.take('a'), limiter.take('a')]).toEqual([true, true, true])
    expect(limiter.take('a')).toBe(false)
    // Another key has its own bucket.
    expect(limiter.take('b')).toBe(true)
    now += 499
    expect(limiter.take('a')).toBe(false)
    now += 1
    expect(limiter.take('a')).toBe(true)
    expect(limiter.take('a')).toBe(false)
    // A long pause refills to the burst, not beyond.
    now += 60_000
    expect([limiter.take('a'), limiter.take('a'), limiter.take('a'), limiter.take('a')]).toEqual([
      true,
      true,
      true,
      false,
    ])
  })

  it('stays bounded, dropping full buckets first so an emptied one is remembered', () => {
    let now = 0
    const limiter = createRateLimiter({ ratePerS: 1, burst: 2, clock: () => now, maxKeys: 3 })
    limiter.take('flooder')
    limiter.take('flooder')
    for (let i = 0; i < 50; i++) {
      now += 1
      limiter.take(`idle-${i}`)
      expect(limiter.size).toBeLessThanOrEqual(3)
    }
    // 50 ms have passed: the flooder's bucket has refilled only 0.05 tokens, so it was kept and is still empty.
    expect(limiter.take('flooder')).toBe(false)
  })

  it('tells an empty bucket without taking from it', () => {
    let now = 0
    const limiter = createRateLimiter({ ratePerS: 1, burst: 2, clock: () => now, maxKeys: 10 })
    expect(limiter.isEmpty('a')).toBe(false)
    expect(limiter.size).toBe(0)
    limiter.take('a')
    expect(limiter.isEmpty('a')).toBe(false)
    limiter.take('a')
    expect(limiter.isEmpty('a')).toBe(true)
    expect(limiter.isEmpty('a')).toBe(true)
    now = 1_000
    expect(limiter.isEmpty('a')).toBe(false)
    expect(limiter.take('a')).toBe(true)
    expect(limiter.isEmpty('a')).toBe(true)
  })
})
