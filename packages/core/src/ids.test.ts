import { describe, expect, it } from 'vitest'
import { DeviceId, ID_PATTERN, isValidId, SiteId } from './ids.ts'

const VALID = ['a', '7', 'lund-01', 'vikingaskolan', 'dev-0a1b2c3d4e', 'a--b', 'x'.repeat(64), `a${'-'.repeat(62)}b`]
const INVALID: readonly (readonly [string, string])[] = [
  ['', 'empty'],
  ['Lund-01', 'uppercase'],
  ['x'.repeat(65), '65 characters'],
  ['-lund', 'leading hyphen'],
  ['lund-', 'trailing hyphen'],
  ['-', 'only a hyphen'],
  ['lund_01', 'underscore'],
  ['lund.01', 'dot'],
  ['lund 01', 'space'],
  ['lund/01', 'topic separator'],
  ['+', 'single-level wildcard'],
  ['#', 'multi-level wildcard'],
  ['$sys', 'dollar'],
  ['förskola', 'non-ASCII letter'],
  ['lund\n', 'trailing newline'],
  ['\nlund', 'leading newline'],
  ['ｌｕｎｄ', 'fullwidth letters'],
]

describe('ids', () => {
  it.each(VALID)('accepts %j', (id) => {
    expect(isValidId(id)).toBe(true)
    expect(SiteId.safeParse(id).success).toBe(true)
    expect(DeviceId.safeParse(id).success).toBe(true)
  })

  it.each(INVALID)('rejects %j (%s)', (id) => {
    expect(isValidId(id)).toBe(false)
    expect(ID_PATTERN.test(id)).toBe(false)
    expect(SiteId.safeParse(id).success).toBe(false)
    expect(DeviceId.safeParse(id).success).toBe(false)
  })

  it('explains the rule in the validation message', () => {
    expect(DeviceId.safeParse('Bad').error?.issues[0]?.message).toMatch(/device id is 1–64 lowercase/)
    expect(SiteId.safeParse('Bad').error?.issues[0]?.message).toMatch(/site id is 1–64 lowercase/)
  })

  it('rejects non-strings', () => {
    for (const value of [7, null, undefined, ['a'], { id: 'a' }]) expect(DeviceId.safeParse(value).success).toBe(false)
  })

  it('is stateless (no global regex flag), so repeated tests agree', () => {
    expect(ID_PATTERN.global).toBe(false)
    expect(ID_PATTERN.sticky).toBe(false)
    for (let i = 0; i < 3; i += 1) expect(isValidId('lund-01')).toBe(true)
  })
})
