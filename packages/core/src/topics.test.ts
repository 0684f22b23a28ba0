import { describe, expect, it } from 'vitest'
import { isValidId } from './ids.ts'
import { createRng } from './random.ts'
import {
  ALL_STATUS_FILTER,
  ALL_TELEMETRY_FILTER,
  deviceTopic,
  hasWildcard,
  MAX_TOPIC_LEVELS,
  parseDeviceTopic,
  TOPIC_KINDS,
  TOPIC_PREFIX,
} from './topics.ts'

const IDS = ['a', '0', 'lund-01', 'dev-0a1b2c3d4e', 'x'.repeat(64)]

describe('deviceTopic / parseDeviceTopic', () => {
  it('builds the v1 topics', () => {
    expect(TOPIC_PREFIX).toBe('aq/v1/devices')
    expect(TOPIC_KINDS).toEqual(['telemetry', 'status', 'config'])
    expect(deviceTopic('lund-01', 'telemetry')).toBe('aq/v1/devices/lund-01/telemetry')
    expect(deviceTopic('lund-01', 'status')).toBe('aq/v1/devices/lund-01/status')
    expect(deviceTopic('lund-01', 'config')).toBe('aq/v1/devices/lund-01/config')
  })

  it.each(IDS.flatMap((id) => TOPIC_KINDS.map((kind) => [id, kind] as const)))('round-trips %s/%s', (id, kind) => {
    const topic = deviceTopic(id, kind)
    expect(topic.split('/')).toHaveLength(MAX_TOPIC_LEVELS)
    expect(parseDeviceTopic(topic)).toEqual({ deviceId: id, kind })
  })

  it.each(['', 'Lund-01', 'x'.repeat(65), '+', '#', 'a/b', '-lead', 'trail-', '$SYS'])(
    'refuses to build a topic for the bad id %j',
    (id) => {
      expect(() => deviceTopic(id, 'telemetry')).toThrow(RangeError)
      expect(() => deviceTopic(id, 'telemetry')).toThrow(/invalid device id/)
    },
  )

  it.each([
    ['aq/v2/devices/lund-01/telemetry', 'other version'],
    ['AQ/v1/devices/lund-01/telemetry', 'prefix in capitals'],
    ['aq/v1/device/lund-01/telemetry', 'singular "device"'],
    ['xx/v1/devices/lund-01/telemetry', 'foreign prefix'],
    ['airgradient/readings/ecda3b1eaaaf', 'another firmware’s topic'],
    ['aq/v1/devices/lund-01/telemetry/', 'trailing slash (six levels)'],
    ['/aq/v1/devices/lund-01/telemetry', 'leading slash (six levels)'],
    ['aq/v1/devices/lund-01/telemetry/extra', 'extra level'],
    ['aq/v1/devices/lund-01', 'missing kind'],
    ['aq/v1/devices', 'prefix only'],
    ['', 'empty'],
    ['aq/v1/devices/+/telemetry', 'single-level wildcard as id'],
    ['aq/v1/devices/lund-01/+', 'single-level wildcard as kind'],
    ['aq/v1/devices/#', 'multi-level wildcard'],
    ['aq/v1/devices/lund-01/#', 'multi-level wildcard as kind'],
    ['aq/v1/devices/Lund-01/telemetry', 'uppercase id'],
    [`aq/v1/devices/${'x'.repeat(65)}/telemetry`, 'id too long'],
    ['aq/v1/devices//telemetry', 'empty id'],
    ['aq/v1/devices/-lund/telemetry', 'leading hyphen'],
    ['aq/v1/devices/lund_01/telemetry', 'underscore'],
    ['aq/v1/devices/lund 01/telemetry', 'space'],
    ['aq/v1/devices/lund-01/Telemetry', 'kind in capitals'],
    ['aq/v1/devices/lund-01/command', 'unknown kind'],
    ['aq/v1/devices/lund-01/telemetry ', 'trailing space'],
    ['$SYS/broker/clients/connected', '$SYS'],
    ['$SYS/v1/devices/lund-01/telemetry', '$SYS with five levels'],
    ['aq/v1/devices/$sys/telemetry', 'dollar id'],
  ])('does not parse %j (%s)', (topic) => {
    expect(parseDeviceTopic(topic)).toBeNull()
  })

  it('parses a topic exactly when its id is valid (seeded)', () => {
    const random = createRng(1883)
    const alphabet = 'abcz09-_A/+#$ .å'
    for (let i = 0; i < 2000; i += 1) {
      const length = Math.floor(random() * 70)
      let id = ''
      for (let c = 0; c < length; c += 1) id += alphabet[Math.floor(random() * alphabet.length)] ?? ''
      const parsed = parseDeviceTopic(`aq/v1/devices/${id}/status`)
      if (isValidId(id)) expect(parsed, id).toEqual({ deviceId: id, kind: 'status' })
      else expect(parsed, id).toBeNull()
    }
  })
})

describe('filters and wildcards', () => {
  it('subscribes the platform to every device with one-level wildcards', () => {
    expect(ALL_TELEMETRY_FILTER).toBe('aq/v1/devices/+/telemetry')
    expect(ALL_STATUS_FILTER).toBe('aq/v1/devices/+/status')
    expect(ALL_TELEMETRY_FILTER.split('/')).toHaveLength(MAX_TOPIC_LEVELS)
    expect(hasWildcard(ALL_TELEMETRY_FILTER)).toBe(true)
    expect(parseDeviceTopic(ALL_TELEMETRY_FILTER)).toBeNull()
  })

  it('spots wildcards anywhere', () => {
    expect(hasWildcard('aq/v1/devices/#')).toBe(true)
    expect(hasWildcard('#')).toBe(true)
    expect(hasWildcard('a+b')).toBe(true)
    expect(hasWildcard('aq/v1/devices/lund-01/telemetry')).toBe(false)
    expect(hasWildcard('')).toBe(false)
  })
})
