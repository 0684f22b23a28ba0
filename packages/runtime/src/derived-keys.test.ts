import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { tempDir } from '@skolluft/testkit'
import { afterEach, describe, expect, it } from 'vitest'
import {
  ALERTS_KEY_BYTES,
  deriveSecret,
  loadOrCreateAlertsKey,
  parseAlertsKey,
  verifyDerivedSecret,
} from './derived-keys.ts'

const KEY = Buffer.alloc(ALERTS_KEY_BYTES, 7)

describe('derived secrets', () => {
  it('differ by purpose and id, and verify only the right value', () => {
    const a = deriveSecret(KEY, 'webhook', 'sub_1')
    expect(a).not.toBe(deriveSecret(KEY, 'unsubscribe', 'sub_1'))
    expect(a).not.toBe(deriveSecret(KEY, 'webhook', 'sub_2'))
    expect(a).not.toBe(deriveSecret(Buffer.alloc(ALERTS_KEY_BYTES, 8), 'webhook', 'sub_1'))
    expect(verifyDerivedSecret(KEY, 'webhook', 'sub_1', a)).toBe(true)
    expect(verifyDerivedSecret(KEY, 'unsubscribe', 'sub_1', a)).toBe(false)
    expect(verifyDerivedSecret(KEY, 'webhook', 'sub_1', `${a}x`)).toBe(false)
    expect(verifyDerivedSecret(KEY, 'webhook', 'sub_1', '')).toBe(false)
  })

  it('refuses a short configured key', () => {
    expect(() => parseAlertsKey(Buffer.alloc(16).toString('base64url'))).toThrow(/at least 32 bytes/)
    expect(parseAlertsKey(KEY.toString('base64url')).equals(KEY)).toBe(true)
  })
})

describe('loadOrCreateAlertsKey', () => {
  let cleanup: (() => Promise<void>) | undefined
  afterEach(async () => cleanup?.())

  it('creates one key, 0600, and every concurrent caller gets the same one', async () => {
    const dir = await tempDir()
    cleanup = dir.cleanup
    const path = join(dir.path, 'alerts.key')
    const keys = await Promise.all(Array.from({ length: 8 }, () => loadOrCreateAlertsKey(path)))
    for (const key of keys) expect(key.equals(keys[0] ?? Buffer.alloc(0))).toBe(true)
    expect(parseAlertsKey(await readFile(path, 'utf8')).equals(keys[0] ?? Buffer.alloc(0))).toBe(true)
    expect((await stat(path)).mode & 0o777).toBe(0o600)
    expect((await loadOrCreateAlertsKey(path)).equals(keys[0] ?? Buffer.alloc(0))).toBe(true)
  })
})
