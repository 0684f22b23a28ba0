import { describe, expect, it } from 'vitest'
import { estimateIntervalS, parseSensorCommunityCsv, parseSensorCommunityTime } from './sensor-community.ts'

// Header and first rows copied from the real archive files in test/fixtures/sensor-community.
const SDS_HEADER = 'sensor_id;sensor_type;location;lat;lon;timestamp;P1;durP1;ratioP1;P2;durP2;ratioP2'
const BME_HEADER =
  'sensor_id;sensor_type;location;lat;lon;timestamp;pressure;altitude;pressure_sealevel;temperature;humidity'

describe('parseSensorCommunityCsv', () => {
  it('reads SDS011 rows: P1 = PM10, P2 = PM2.5, UTC times, position', () => {
    const csv = `${SDS_HEADER}\n15092;SDS011;7647;56.963;-2.211;2018-11-05T00:02:11;9.83;;;5.07;;\n15092;SDS011;7647;56.963;-2.211;2018-11-05T00:04:39;13.27;;;5.03;;\n`
    const result = parseSensorCommunityCsv(csv)
    expect(result.errors).toEqual([])
    expect(result.rows).toBe(2)
    expect(result.readings).toEqual([
      {
        line: 2,
        sensorId: '15092',
        sensorType: 'SDS011',
        ts: Date.parse('2018-11-05T00:02:11Z'),
        values: { pm10: 9.83, pm25: 5.07 },
        location: '7647',
        lat: 56.963,
        lon: -2.211,
      },
      expect.objectContaining({ line: 3, ts: Date.parse('2018-11-05T00:04:39Z'), values: { pm10: 13.27, pm25: 5.03 } }),
    ])
  })

  it('reads BME280 temperature and humidity and ignores pressure', () => {
    const csv = `${BME_HEADER}\n15093;BME280;7647;56.963;-2.211;2018-11-05T00:02:12;100830.19;;;9.92;91.53\n`
    const { readings, errors } = parseSensorCommunityCsv(csv)
    expect(errors).toEqual([])
    expect(readings[0]?.values).toEqual({ temp: 9.92, rh: 91.53 })
  })

  it('reads PM1 from P0 (PMS / SPS30) and finds columns by name, not position', () => {
    const csv =
      'sensor_id;sensor_type;location;lat;lon;timestamp;P1;P4;P2;P0;N05\n' +
      '100;SPS30;1;55.7;13.19;2024-01-01T10:00:00;12.5;11;9.25;6;40\n' +
      'sensor_id;timestamp;sensor_type;P2;P0;P1\n'
    const { readings, errors } = parseSensorCommunityCsv(csv)
    expect(readings[0]?.values).toEqual({ pm1: 6, pm25: 9.25, pm10: 12.5 })
    // The repeated header in the middle is a row like any other: an error, not a silent skip.
    expect(errors).toEqual([{ line: 3, reason: 'expected 11 fields, found 6' }])
    const reordered = parseSensorCommunityCsv(
      'sensor_id;timestamp;sensor_type;P2;P0;P1\n7;2024-01-01T10:00:00;PMS5003;2;1;3\n',
    )
    expect(reordered.readings[0]?.values).toEqual({ pm1: 1, pm25: 2, pm10: 3 })
    expect(reordered.readings[0]?.lat).toBeNull()
    expect(reordered.readings[0]?.location).toBeNull()
  })

  it('treats empty cells as no value, and a row without any value as an error', () => {
    const csv =
      `${SDS_HEADER}\n` +
      '15092;SDS011;7647;56.963;-2.211;2018-11-05T00:02:11;;;;5.07;;\n' +
      '15092;SDS011;7647;;;2018-11-05T00:04:39;9.5;;;;;\n' +
      '15092;SDS011;7647;56.963;-2.211;2018-11-05T00:07:00;;;;;;\n'
    const { readings, errors, rows } = parseSensorCommunityCsv(csv)
    expect(readings.map((r) => r.values)).toEqual([{ pm25: 5.07 }, { pm10: 9.5 }])
    expect(readings[1]?.lat).toBeNull()
    expect(errors).toEqual([{ line: 4, reason: 'no value in the row' }])
    expect(rows).toBe(3)
  })

  it('gives every malformed row an error with its line number and reason, and keeps the good rows', () => {
    const csv = [
      SDS_HEADER,
      '15092;SDS011;7647;56.963;-2.211;2018-11-05T00:02:11;9.83;;;5.07;;', // 2: good
      '15092;SDS011;7647;56.963;-2.211;2018-11-05T00:02:11;9.83;;;5.07', // 3: short
      'abc;SDS011;7647;56.963;-2.211;2018-11-05T00:02:11;9.83;;;5.07;;', // 4: id
      '15092;PPD42NS;7647;56.963;-2.211;2018-11-05T00:02:11;9.83;;;5.07;;', // 5: type (counts, not µg/m³)
      '15092;SDS011;7647;56.963;-2.211;05.11.2018 00:02;9.83;;;5.07;;', // 6: time format
      '15092;SDS011;7647;56.963;-2.211;2018-02-30T00:02:11;9.83;;;5.07;;', // 7: no such day
      '15092;SDS011;7647;56.963;-2.211;2018-11-05T00:02:11;nan;;;5.07;;', // 8: not a number
      '15092;SDS011;7647;56.963;-2.211;2018-11-05T00:02:11;1e3;;;5.07;;', // 9: exponent not archive format
      '15092;SDS011;7647;56.963;-2.211;2018-11-05T00:02:11;2500;;;5.07;;', // 10: PM10 > 2000
      '15092;SDS011;7647;56.963;-2.211;2018-11-05T00:02:11;9.5;;;-1;;', // 11: negative PM2.5
      '', // blank: skipped
      '15092;sds011;7647;56.963;-2.211;2018-11-05T00:09:00;1;;;1;;', // 13: type case-insensitive
    ].join('\n')
    const { readings, errors, rows } = parseSensorCommunityCsv(csv)
    expect(readings.map((r) => r.line)).toEqual([2, 13])
    expect(readings[1]?.sensorType).toBe('SDS011')
    expect(errors).toEqual([
      { line: 3, reason: 'expected 12 fields, found 10' },
      { line: 4, reason: 'sensor_id "abc" is not a number' },
      { line: 5, reason: 'sensor type "PPD42NS" is not supported' },
      { line: 6, reason: 'timestamp "05.11.2018 00:02" is not a date-time' },
      { line: 7, reason: 'timestamp "2018-02-30T00:02:11" is not a date-time' },
      { line: 8, reason: 'P1 "nan" is not a number' },
      { line: 9, reason: 'P1 "1e3" is not a number' },
      { line: 10, reason: 'P1 = 2500 is outside the physical range 0–2000 µg/m³' },
      { line: 11, reason: 'P2 = -1 is outside the physical range 0–1000 µg/m³' },
    ])
    expect(rows).toBe(readings.length + errors.length)
  })

  it('accepts a BOM and CRLF line ends', () => {
    const csv = `\uFEFF${SDS_HEADER}\r\n15092;SDS011;7647;56.963;-2.211;2018-11-05T00:02:11;9.83;;;5.07;;\r\n\r\n`
    const { readings, errors, rows } = parseSensorCommunityCsv(csv)
    expect(errors).toEqual([])
    expect(rows).toBe(1)
    expect(readings[0]?.values).toEqual({ pm10: 9.83, pm25: 5.07 })
  })

  it('refuses a file without the archive header as a whole (line 1)', () => {
    expect(parseSensorCommunityCsv('id,name\n1,x\n')).toEqual({
      readings: [],
      errors: [
        {
          line: 1,
          reason: 'not a Sensor.Community archive header: missing column(s) sensor_id, sensor_type, timestamp',
        },
      ],
      rows: 0,
    })
    expect(parseSensorCommunityCsv('').errors).toHaveLength(1)
    // A supported type whose metric column the header lacks is a row error.
    const noHumidity = parseSensorCommunityCsv(
      'sensor_id;sensor_type;timestamp;temperature\n1;DHT22;2024-01-01T00:00:00;5\n',
    )
    expect(noHumidity.errors).toEqual([{ line: 2, reason: 'column humidity (rh) is missing for DHT22' }])
  })
})

describe('parseSensorCommunityTime', () => {
  it('reads zone-less archive times as UTC and honours an explicit zone', () => {
    expect(parseSensorCommunityTime('2018-11-05T00:02:11')).toBe(Date.UTC(2018, 10, 5, 0, 2, 11))
    expect(parseSensorCommunityTime('2018-11-05 00:02:11')).toBe(Date.UTC(2018, 10, 5, 0, 2, 11))
    expect(parseSensorCommunityTime('2018-11-05T00:02:11.250Z')).toBe(Date.UTC(2018, 10, 5, 0, 2, 11, 250))
    expect(parseSensorCommunityTime('2018-11-05T01:02:11+01:00')).toBe(Date.UTC(2018, 10, 5, 0, 2, 11))
    expect(parseSensorCommunityTime('2018-11-04T23:02:11-01:00')).toBe(Date.UTC(2018, 10, 5, 0, 2, 11))
    // Leap day exists in 2020, not in 2019; hour 24 and offsets beyond ±14 h do not exist.
    expect(parseSensorCommunityTime('2020-02-29T12:00:00')).toBe(Date.UTC(2020, 1, 29, 12))
    expect(parseSensorCommunityTime('2019-02-29T12:00:00')).toBeUndefined()
    expect(parseSensorCommunityTime('2019-01-01T24:00:00')).toBeUndefined()
    expect(parseSensorCommunityTime('2019-01-01T10:00:00+15:00')).toBeUndefined()
    expect(parseSensorCommunityTime('2019-01-01')).toBeUndefined()
  })
})

describe('estimateIntervalS', () => {
  it('is the median spacing in whole seconds, robust to an outage and duplicates', () => {
    const t0 = Date.UTC(2018, 10, 5)
    const times = [0, 148_000, 296_400, 296_400, 444_000, 4_000_000, 4_147_000].map((t) => t0 + t)
    // Gaps: 148, 148.4, 147.6, 3556, 147 s → median 148.
    expect(estimateIntervalS(times)).toBe(148)
    expect(estimateIntervalS([t0, t0 + 145_600])).toBe(146)
    expect(estimateIntervalS([t0, t0 + 10 * 3_600_000])).toBe(3600)
    expect(estimateIntervalS([t0, t0 + 100])).toBe(1)
    expect(estimateIntervalS([t0, t0])).toBeUndefined()
    expect(estimateIntervalS([])).toBeUndefined()
  })
})
