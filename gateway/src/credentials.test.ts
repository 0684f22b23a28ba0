import { hashSecret, verifySecret } from '@skolluft/runtime'
import { beforeAll, describe, expect, it } from 'vitest'
import { createCredentialChecker } from './credentials.ts'

describe('createCredentialChecker', () => {
  let hash: string
  let otherHash: string
  beforeAll(async () => {
    // Two real scrypt hashes (~40 ms each).
    hash = await hashSecret('right-secret')
    otherHash = await hashSecret('rotated-secret')
  })

  function setup() {
    let now = 1_000_000
    let scryptCalls = 0
    const checker = createCredentialChecker({
      clock: () => now,
      backoffBaseMs: 1000,
      backoffMaxMs: 4000,
      maxPendingVerifications: 2,
      verifySecret: (secret, stored) => {
        scryptCalls += 1
        return verifySecret(secret, stored)
      },
    })
    return {
      checker,
      advance: (ms: number) => {
        now += ms
      },
      scryptCalls: () => scryptCalls,
    }
  }
  const pw = (s: string) => Buffer.from(s)

  it('verifies once with scrypt, then answers the same password from memory', async () => {
    const { checker, scryptCalls } = setup()
    expect(await checker.verify('dev-1', pw('right-secret'), hash)).toBe('verified')
    expect(await checker.verify('dev-1', pw('right-secret'), hash)).toBe('cached')
    expect(await checker.verify('dev-1', pw('right-secret'), hash)).toBe('cached')
    expect(scryptCalls()).toBe(1)
  })

  it('never accepts a different password from the cache', async () => {
    const { checker, advance } = setup()
    expect(await checker.verify('dev-1', pw('right-secret'), hash)).toBe('verified')
    expect(await checker.verify('dev-1', pw('wrong-secret'), hash)).toBe('wrong')
    advance(10_000)
    expect(await checker.verify('dev-1', pw('right-secret'), hash)).toBe('cached')
  })

  it('drops the cached password when the registry hash changes (rotation)', async () => {
    const { checker, advance } = setup()
    expect(await checker.verify('dev-1', pw('right-secret'), hash)).toBe('verified')
    expect(await checker.verify('dev-1', pw('right-secret'), otherHash)).toBe('wrong')
    advance(10_000)
    expect(await checker.verify('dev-1', pw('rotated-secret'), otherHash)).toBe('verified')
  })

  it('backs off after failures without running scrypt, doubling up to the cap', async () => {
    const { checker, advance, scryptCalls } = setup()
    expect(await checker.verify('dev-2', pw('nope'), hash)).toBe('wrong')
    expect(await checker.verify('dev-2', pw('right-secret'), hash)).toBe('backoff')
    expect(scryptCalls()).toBe(1)
    advance(1000)
    expect(await checker.verify('dev-2', pw('nope'), hash)).toBe('wrong')
    advance(1999)
    expect(await checker.verify('dev-2', pw('right-secret'), hash)).toBe('backoff')
    advance(1)
    expect(await checker.verify('dev-2', pw('right-secret'), hash)).toBe('verified')
    // Success resets the back-off.
    expect(await checker.verify('dev-2', pw('nope'), hash)).toBe('wrong')
    advance(1000)
    expect(await checker.verify('dev-2', pw('right-secret'), hash)).toBe('cached')
  })

  it('lets a known-good password through during a back-off someone else caused', async () => {
    const { checker } = setup()
    expect(await checker.verify('dev-3', pw('right-secret'), hash)).toBe('verified')
    expect(await checker.verify('dev-3', pw('guess'), hash)).toBe('wrong')
    expect(await checker.verify('dev-3', pw('guess-2'), hash)).toBe('backoff')
    expect(await checker.verify('dev-3', pw('right-secret'), hash)).toBe('cached')
  })

  it('keeps the back-off per remote address, so guesses from one address do not lock out another', async () => {
    const { checker } = setup()
    expect(await checker.verify('dev-4', pw('guess'), hash, '203.0.113.9')).toBe('wrong')
    expect(await checker.verify('dev-4', pw('guess-2'), hash, '203.0.113.9')).toBe('backoff')
    // The real device, from its school network, after a gateway restart (nothing cached).
    expect(await checker.verify('dev-4', pw('right-secret'), hash, '198.51.100.20')).toBe('verified')
    expect(await checker.verify('dev-4', pw('guess-3'), hash, '203.0.113.9')).toBe('backoff')
  })

  it('answers busy when too many verifications are in flight', async () => {
    const { checker } = setup()
    const results = await Promise.all([
      checker.verify('a', pw('x'), hash),
      checker.verify('b', pw('x'), hash),
      checker.verify('c', pw('x'), hash),
    ])
    expect(results).toEqual(['wrong', 'wrong', 'busy'])
    expect(checker.pending).toBe(0)
  })
})
