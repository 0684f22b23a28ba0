import { describe, expect, it } from 'vitest'
import { checkPublish, checkSubscribe, checkWill, mayReceive, type Principal } from './permissions.ts'

const device: Principal = { kind: 'device', id: 'dev-1' }
const ingest: Principal = { kind: 'service', username: 'svc.ingest', role: 'ingest' }
const api: Principal = { kind: 'service', username: 'svc.api', role: 'api' }
const admin: Principal = { kind: 'service', username: 'svc.admin', role: 'admin' }
const sim: Principal = { kind: 'service', username: 'svc.sim', role: 'sim' }
const alerts: Principal = { kind: 'service', username: 'svc.alerts', role: 'alerts' }
const COMMITTED = 'aq/v1/events/readings-committed'
const LEVELS = 5

describe('checkPublish', () => {
  it.each([
    [device, 'aq/v1/devices/dev-1/telemetry', null],
    [device, 'aq/v1/devices/dev-1/status', null],
    [device, 'aq/v1/devices/dev-1/config', 'not_permitted'],
    [device, 'aq/v1/devices/dev-2/telemetry', 'other_device'],
    [device, 'aq/v1/devices/+/telemetry', 'wildcard_in_topic'],
    [device, 'aq/v1/devices/#', 'wildcard_in_topic'],
    [device, '$SYS/broker/heartbeat', 'reserved_topic'],
    [device, 'aq/v1/devices/dev-1/telemetry/extra', 'topic_too_deep'],
    [device, 'aq/v1/devices/DEV-1/telemetry', 'not_a_device_topic'],
    [device, 'aq/v2/devices/dev-1/telemetry', 'not_a_device_topic'],
    [device, 'anything', 'not_a_device_topic'],
    [ingest, 'aq/v1/devices/dev-1/config', null],
    [ingest, 'aq/v1/devices/dev-1/telemetry', 'not_permitted'],
    [api, 'aq/v1/devices/dev-1/config', 'not_permitted'],
    [admin, 'aq/v1/devices/dev-1/config', null],
    [admin, 'aq/v1/devices/dev-1/status', 'not_permitted'],
    [sim, 'aq/v1/devices/dev-1/telemetry', 'not_permitted'],
    [ingest, COMMITTED, null],
    [alerts, COMMITTED, 'not_permitted'],
    [device, COMMITTED, 'not_permitted'],
    [api, COMMITTED, 'not_permitted'],
    [ingest, 'aq/v1/events/something-else', 'not_a_device_topic'],
    [alerts, 'aq/v1/devices/dev-1/config', 'not_permitted'],
  ] as const)('%o publishing %s → %s', (principal, topic, expected) => {
    expect(checkPublish(principal, topic, LEVELS)).toBe(expected)
  })
})

describe('checkSubscribe', () => {
  it.each([
    [device, 'aq/v1/devices/dev-1/config', null],
    [device, 'aq/v1/devices/dev-2/config', 'other_device'],
    [device, 'aq/v1/devices/+/config', 'other_device'],
    [device, 'aq/v1/devices/dev-1/telemetry', 'not_permitted'],
    [device, 'aq/v1/devices/dev-1/#', 'multi_level_wildcard'],
    [device, '#', 'multi_level_wildcard'],
    [device, '$SYS/#', 'reserved_topic'],
    [ingest, 'aq/v1/devices/+/telemetry', null],
    [ingest, 'aq/v1/devices/+/status', null],
    [ingest, 'aq/v1/devices/dev-1/telemetry', null],
    [ingest, 'aq/v1/devices/+/config', 'not_permitted'],
    [ingest, 'aq/v1/devices/#', 'multi_level_wildcard'],
    [ingest, 'aq/v1/+/+/telemetry', 'not_a_device_topic'],
    [ingest, '$share/group/aq/v1/devices/+/telemetry', 'reserved_topic'],
    [api, 'aq/v1/devices/+/telemetry', null],
    [api, 'aq/v1/devices/+/status', null],
    [api, 'aq/v1/devices/+/config', 'not_permitted'],
    [admin, 'aq/v1/devices/+/telemetry', 'not_permitted'],
    [sim, 'aq/v1/devices/+/status', 'not_permitted'],
    [ingest, 'a/b/c/d/e/f', 'topic_too_deep'],
    [alerts, COMMITTED, null],
    [alerts, 'aq/v1/events/+', 'not_a_device_topic'],
    [alerts, 'aq/v1/devices/+/telemetry', 'not_permitted'],
    [ingest, COMMITTED, 'not_permitted'],
    [device, COMMITTED, 'not_permitted'],
    [api, COMMITTED, 'not_permitted'],
  ] as const)('%o subscribing %s → %s', (principal, filter, expected) => {
    expect(checkSubscribe(principal, filter, LEVELS)).toBe(expected)
  })
})

describe('mayReceive', () => {
  it('lets a device receive only its own config', () => {
    expect(mayReceive(device, 'aq/v1/devices/dev-1/config')).toBe(true)
    expect(mayReceive(device, 'aq/v1/devices/dev-2/config')).toBe(false)
    expect(mayReceive(device, 'aq/v1/devices/dev-2/telemetry')).toBe(false)
    expect(mayReceive(device, 'aq/v1/devices/dev-1/telemetry')).toBe(false)
  })

  it('lets services receive what their role may subscribe to', () => {
    expect(mayReceive(ingest, 'aq/v1/devices/dev-2/telemetry')).toBe(true)
    expect(mayReceive(api, 'aq/v1/devices/dev-2/status')).toBe(true)
    expect(mayReceive(api, 'aq/v1/devices/dev-2/config')).toBe(false)
    expect(mayReceive(admin, 'aq/v1/devices/dev-2/telemetry')).toBe(false)
    expect(mayReceive(ingest, '$SYS/x/heartbeat')).toBe(false)
    expect(mayReceive(alerts, COMMITTED)).toBe(true)
    expect(mayReceive(ingest, COMMITTED)).toBe(false)
    expect(mayReceive(device, COMMITTED)).toBe(false)
    expect(mayReceive(alerts, 'aq/v1/devices/dev-2/telemetry')).toBe(false)
  })
})

describe('checkWill', () => {
  it('accepts a device will only on its own status topic', () => {
    expect(checkWill(device, 'aq/v1/devices/dev-1/status')).toBeNull()
    expect(checkWill(device, 'aq/v1/devices/dev-1/telemetry')).toBe('will_not_permitted')
    expect(checkWill(device, 'aq/v1/devices/dev-2/status')).toBe('will_not_permitted')
    expect(checkWill(device, 'aq/v1/devices/dev-1/config')).toBe('will_not_permitted')
  })

  it('refuses every will from a service', () => {
    expect(checkWill(ingest, 'aq/v1/devices/dev-1/status')).toBe('will_not_permitted')
  })
})
