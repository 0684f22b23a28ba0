import { Point } from '@influxdata/influxdb-client'
import { describe, expect, it } from 'vitest'
import type { StoredReading } from '../types.ts'
import {
  deviceHourLine,
  escapeKey,
  escapeMeasurement,
  floatField,
  integerField,
  LineProtocolError,
  metaLine,
  qcLine,
  readingLine,
  stringField,
} from './line-protocol.ts'

const reading: StoredReading = {
  deviceId: 'aq-0001',
  siteId: 'lund-fsk-1',
  ts: 1_735_689_600_000,
  seq: 42,
  values: { rh: 55.5, pm25: 7.25, pm10: 12, temp: -3.5 },
  receivedAt: 1_735_689_600_750,
  expectedPerHour: 60,
}

function code(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (error) {
    if (error instanceof LineProtocolError) return error.code
    throw error
  }
  return undefined
}

describe('line protocol encoder', () => {
  it('encodes a reading: tags in key order, metrics in METRICS order, seq and bookkeeping as integers', () => {
    expect(readingLine(reading)).toBe(
      'reading,device=aq-0001,site=lund-fsk-1 pm25=7.25,pm10=12,temp=-3.5,rh=55.5,seq=42i,received_at=1735689600750i,expected_per_hour=60 1735689600000',
    )
  })

  it('omits the site tag for a reading at no site and seq when it is null', () => {
    expect(readingLine({ ...reading, siteId: null, seq: null, values: { no2: 0.5 } })).toBe(
      'reading,device=aq-0001 no2=0.5,received_at=1735689600750i,expected_per_hour=60 1735689600000',
    )
  })

  it('agrees with the InfluxDB client’s own Point serializer', () => {
    const r: StoredReading = { ...reading, deviceId: 'dev ice,a=b', siteId: 's=1 2', values: { pm1: 1e-7, pm25: 1e21 } }
    const point = new Point('reading')
      .tag('device', r.deviceId)
      .tag('site', 's=1 2')
      .floatField('pm1', 1e-7)
      .floatField('pm25', 1e21)
      .intField('seq', 42)
      .intField('received_at', r.receivedAt)
      .floatField('expected_per_hour', 60)
      .timestamp(r.ts)
      .toLineProtocol({ convertTime: (t) => String(t) })
    const parts = (line: string | undefined) => {
      // Neither the key nor the timestamp contains an unescaped space followed by a field here.
      const m = /^(.*[^\\]) (\S+) (\d+)$/.exec(line ?? '')
      if (m === null) throw new Error(`unexpected line ${line}`)
      return { key: m[1], fields: (m[2] ?? '').split(',').sort(), ts: m[3] }
    }
    expect(parts(readingLine(r))).toEqual(parts(point))
  })

  it('encodes quality masks and device-hour bookkeeping', () => {
    expect(qcLine('aq-1', 'site-1', 1000, 5)).toBe('reading,device=aq-1,site=site-1 qc=5i 1000')
    expect(qcLine('aq-1', null, 1000, 0)).toBe('reading,device=aq-1 qc=0i 1000')
    expect(deviceHourLine('aq-1', 3_600_000, { dirty: 123 })).toBe('device_hour,device=aq-1 dirty=123i 3600000')
    expect(deviceHourLine('aq-1', 7_200_000, { checked: 123, qcVersion: 2 })).toBe(
      'device_hour,device=aq-1 checked=123i,qc_version=2i 7200000',
    )
    expect(metaLine({ qcVersion: 3 }, 5_000)).toBe('skolluft_meta qc_version=3i 5000')
  })

  it('escapes measurement names, tag keys and values, field keys and string fields', () => {
    expect(escapeMeasurement('my measure,ment=x')).toBe('my\\ measure\\,ment=x')
    expect(escapeKey('a,b=c d')).toBe('a\\,b\\=c\\ d')
    expect(escapeKey('plain-id_1')).toBe('plain-id_1')
    expect(stringField('say "hi" C:\\dir')).toBe('"say \\"hi\\" C:\\\\dir"')
    expect(readingLine({ ...reading, deviceId: 'a b', siteId: 'x,y=z', values: {} })).toBe(
      'reading,device=a\\ b,site=x\\,y\\=z seq=42i,received_at=1735689600750i,expected_per_hour=60 1735689600000',
    )
  })

  it('never encodes a non-finite number or an inexact integer', () => {
    expect(code(() => floatField('pm25', Number.NaN))).toBe('NON_FINITE')
    expect(code(() => floatField('pm25', Number.POSITIVE_INFINITY))).toBe('NON_FINITE')
    expect(code(() => readingLine({ ...reading, values: { pm25: Number.NaN } }))).toBe('NON_FINITE')
    expect(code(() => readingLine({ ...reading, values: { rh: Number.NEGATIVE_INFINITY } }))).toBe('NON_FINITE')
    expect(code(() => readingLine({ ...reading, expectedPerHour: Number.NaN }))).toBe('NON_FINITE')
    expect(code(() => readingLine({ ...reading, ts: Number.NaN }))).toBe('NON_FINITE')
    expect(code(() => readingLine({ ...reading, ts: 1.5 }))).toBe('NOT_AN_INTEGER')
    expect(code(() => readingLine({ ...reading, seq: 1.5 }))).toBe('NOT_AN_INTEGER')
    expect(code(() => integerField('x', 2 ** 53))).toBe('NOT_AN_INTEGER')
    expect(code(() => qcLine('aq-1', null, 1000, -1))).toBe('NOT_AN_INTEGER')
    expect(code(() => deviceHourLine('aq-1', 3_600_001, { dirty: 1 }))).toBe('NOT_AN_INTEGER')
    expect(code(() => deviceHourLine('aq-1', 3_600_000, { dirty: Number.NaN }))).toBe('NON_FINITE')
  })

  it('refuses text line protocol cannot carry and points without fields', () => {
    expect(code(() => readingLine({ ...reading, deviceId: 'a\nb' }))).toBe('INVALID_TEXT')
    expect(code(() => readingLine({ ...reading, deviceId: '' }))).toBe('INVALID_TEXT')
    expect(code(() => readingLine({ ...reading, siteId: 'ends\\' }))).toBe('INVALID_TEXT')
    expect(code(() => stringField('a\r\nb'))).toBe('INVALID_TEXT')
    expect(code(() => deviceHourLine('aq-1', 3_600_000, {}))).toBe('NO_FIELDS')
  })
})
