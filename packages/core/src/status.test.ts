import { describe, expect, it } from 'vitest'
import { DeviceConfig, DeviceStatus } from './status.ts'

describe('DeviceStatus', () => {
  it('accepts the last will and a full online status', () => {
    expect(DeviceStatus.parse({ state: 'offline' })).toEqual({ state: 'offline' })
    const online = { state: 'online', ts: '2026-11-29T07:45:00Z', fw: '1.4.2', uptime_s: 86_400 }
    expect(DeviceStatus.parse(online)).toEqual(online)
    expect(DeviceStatus.safeParse({ state: 'online', ts: '2026-11-29T08:45:00+01:00' }).success).toBe(true)
  })

  it('drops fields v1 does not define', () => {
    expect(DeviceStatus.parse({ state: 'online', rssi: -67 })).toEqual({ state: 'online' })
  })

  it.each([
    ['unknown state', { state: 'sleeping' }],
    ['state in capitals', { state: 'ONLINE' }],
    ['no state', { fw: '1.4.2' }],
    ['ts without a zone', { state: 'online', ts: '2026-11-29T07:45:00' }],
    ['ts as epoch', { state: 'online', ts: 1_764_402_300_000 }],
    ['fw over 64 characters', { state: 'online', fw: 'x'.repeat(65) }],
    ['negative uptime', { state: 'online', uptime_s: -1 }],
    ['fractional uptime', { state: 'online', uptime_s: 1.5 }],
  ])('rejects a status with %s', (_what, status) => {
    expect(DeviceStatus.safeParse(status).success).toBe(false)
  })

  it('accepts fw of exactly 64 characters', () => {
    expect(DeviceStatus.safeParse({ state: 'online', fw: 'x'.repeat(64) }).success).toBe(true)
  })
})

describe('DeviceConfig', () => {
  it('accepts intervals from 10 s to 1 h', () => {
    for (const interval_s of [10, 60, 145, 3600]) expect(DeviceConfig.parse({ interval_s })).toEqual({ interval_s })
  })

  it('rejects other intervals', () => {
    for (const interval_s of [9, 0, -60, 3601, 60.5, '60', null]) {
      expect(DeviceConfig.safeParse({ interval_s }).success, String(interval_s)).toBe(false)
    }
    expect(DeviceConfig.safeParse({}).success).toBe(false)
  })
})
