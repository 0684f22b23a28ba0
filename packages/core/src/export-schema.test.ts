import { describe, expect, it } from 'vitest'
import { expectTablesInDoc } from './doc-tables.testing.ts'
import {
  AGGREGATE_EXPORT_COLUMNS,
  AGGREGATE_EXPORT_COLUMNS_V2,
  aggregateCells,
  createCorrectedHourFolder,
  createDailyFolder,
  createIsoTimeFormatter,
  createLineFormatter,
  createRawTextWriter,
  csvLine,
  dataDictionaryMarkdown,
  EXPORT_COLUMNS,
  EXPORT_SCHEMA_ID,
  type ExportHourSums,
  exportColumns,
  exportHeader,
  exportSchemaId,
  hourlyRow,
  ndjsonLine,
  RAW_EXPORT_COLUMNS,
  RAW_EXPORT_COLUMNS_V2,
  rawRows,
  type ValueCorrector,
} from './export-schema.ts'
import { METRICS, type Metric } from './metrics.ts'
import { flagBit } from './reading-qc.ts'

const T0 = Date.UTC(2026, 0, 12)
const HOUR = 3_600_000

describe('export schema v1', () => {
  it('pins the schema id and the column order of every resolution', () => {
    // Changing any of these is a new schema version (skolluft-export/2), never an edit of v1.
    expect(EXPORT_SCHEMA_ID).toBe('skolluft-export/1')
    expect([...RAW_EXPORT_COLUMNS]).toEqual(['time', 'site_id', 'device_id', 'metric', 'value', 'unit'])
    const aggregate = ['time', 'site_id', 'metric', 'mean', 'min', 'max', 'n', 'expected', 'coverage', 'valid']
    expect([...AGGREGATE_EXPORT_COLUMNS]).toEqual(aggregate)
    expect(EXPORT_COLUMNS).toEqual({ raw: [...RAW_EXPORT_COLUMNS], hourly: aggregate, daily: aggregate })
    expect(exportHeader('csv', 'raw')).toBe('time,site_id,device_id,metric,value,unit\r\n')
    expect(exportHeader('ndjson', 'raw')).toBe('')
  })

  it('quotes CSV fields per RFC 4180 and prints numbers as JavaScript does', () => {
    expect(csvLine(['a', 'b,c', 'say "hi"', 'two\nlines', 'cr\r', null, 0.1 + 0.2, -0, 1e21, true])).toBe(
      'a,"b,c","say ""hi""","two\nlines","cr\r",,0.30000000000000004,0,1e+21,true\r\n',
    )
    expect(csvLine([])).toBe('\r\n')
  })

  it('writes NDJSON with the columns as keys in order and null for no value', () => {
    const line = ndjsonLine(RAW_EXPORT_COLUMNS, ['2026-01-12T00:00:00.000Z', null, 'd"1', 'pm25', 12.5, 'µg/m³'])
    expect(line).toBe(
      '{"time":"2026-01-12T00:00:00.000Z","site_id":null,"device_id":"d\\"1","metric":"pm25","value":12.5,"unit":"µg/m³"}\n',
    )
    expect(Object.keys(JSON.parse(line))).toEqual([...RAW_EXPORT_COLUMNS])
    // Strings that need escaping come back intact.
    const odd = ['a"b', 'back\\slash', 'tab\there', '\u0001', 'µg/m³ ✓', 'line\nbreak']
    for (const text of odd) {
      expect(JSON.parse(ndjsonLine(RAW_EXPORT_COLUMNS, [text, null, null, null, -0.5, null])).time).toBe(text)
    }
  })

  it('explodes a reading into one raw row per asked metric, in METRICS order', () => {
    const rows = rawRows({ siteId: 's', deviceId: 'd', ts: T0 + 1, values: { no2: -1.5, pm25: 3, temp: 2 } }, [
      'pm25',
      'no2',
      'rh',
    ])
    expect(rows).toEqual([
      [T0 + 1, 's', 'd', 'pm25', 3, 'µg/m³'],
      [T0 + 1, 's', 'd', 'no2', -1.5, 'µg/m³'],
    ])
    const line = createLineFormatter('csv', 'raw')
    expect(rows.map(line)).toEqual([
      '2026-01-12T00:00:00.001Z,s,d,pm25,3,µg/m³\r\n',
      '2026-01-12T00:00:00.001Z,s,d,no2,-1.5,µg/m³\r\n',
    ])
  })

  it('computes hourly coverage and validity as the series API does', () => {
    const hour = (n: number): ExportHourSums => ({
      siteId: 's',
      t: T0,
      metric: 'pm25',
      n,
      sum: n * 2,
      min: 1,
      max: 3,
      expected: 60,
    })
    expect(aggregateCells(hourlyRow(hour(45)))).toEqual([T0, 's', 'pm25', 2, 1, 3, 45, 60, 0.75, true])
    expect(hourlyRow(hour(44)).valid).toBe(false)
  })

  it('folds hours into UTC+1 days per site: mean of valid hourly means, n = valid hours of 24', () => {
    const folder = createDailyFolder(['pm25', 'no2'])
    const out = []
    // Site a: the day starting 2026-01-11T23:00Z; 18 valid hours of pm25 (mean 10), one invalid (n 10, mean 100).
    const dayStart = T0 - HOUR
    for (let h = 0; h < 19; h++) {
      const n = h < 18 ? 60 : 10
      const mean = h < 18 ? 10 : 100
      out.push(
        ...folder.push(
          hourlyRow({
            siteId: 'a',
            t: dayStart + h * HOUR,
            metric: 'pm25',
            n,
            sum: n * mean,
            min: h,
            max: mean,
            expected: 60,
          }),
        ),
      )
      if (h === 0)
        out.push(
          ...folder.push(
            hourlyRow({ siteId: 'a', t: dayStart, metric: 'no2', n: 60, sum: 60, min: 1, max: 1, expected: 60 }),
          ),
        )
    }
    // 22:59 → the next day; then another site.
    out.push(
      ...folder.push(
        hourlyRow({ siteId: 'a', t: dayStart + 24 * HOUR, metric: 'pm25', n: 5, sum: 5, min: 1, max: 1, expected: 60 }),
      ),
    )
    out.push(
      ...folder.push(
        hourlyRow({ siteId: 'b', t: dayStart, metric: 'pm25', n: 60, sum: 60, min: 1, max: 1, expected: 60 }),
      ),
    )
    out.push(...folder.end())
    const line = createLineFormatter('ndjson', 'daily')
    expect(out.map((r) => JSON.parse(line(aggregateCells(r))))).toEqual(
      [
        ['2026-01-11T23:00:00.000Z', 'a', 'pm25', 10, 0, 100, 18, 24, 0.75, true],
        ['2026-01-11T23:00:00.000Z', 'a', 'no2', 1, 1, 1, 1, 24, 1 / 24, false],
        ['2026-01-12T23:00:00.000Z', 'a', 'pm25', null, 1, 1, 0, 24, 0, false],
        ['2026-01-11T23:00:00.000Z', 'b', 'pm25', 1, 1, 1, 1, 24, 1 / 24, false],
      ].map((cells) => Object.fromEntries(AGGREGATE_EXPORT_COLUMNS.map((c, i) => [c, cells[i]]))),
    )
    expect(out.map((r) => aggregateCells(r))).toEqual([
      [dayStart, 'a', 'pm25', 10, 0, 100, 18, 24, 0.75, true],
      [dayStart, 'a', 'no2', 1, 1, 1, 1, 24, 1 / 24, false],
      [dayStart + 24 * HOUR, 'a', 'pm25', null, 1, 1, 0, 24, 0, false],
      [dayStart, 'b', 'pm25', 1, 1, 1, 1, 24, 1 / 24, false],
    ])
  })

  it('formats times exactly like toISOString', () => {
    const iso = createIsoTimeFormatter()
    const times = [
      T0,
      T0 + 5 * HOUR,
      T0 + 23 * HOUR,
      T0 + 24 * HOUR + 1,
      Date.UTC(1999, 11, 31, 23, 59, 59, 999),
      -1,
      0,
    ]
    // Deterministic spread over centuries, every millisecond digit position.
    for (let i = 0, x = 12_345; i < 5000; i++) {
      x = (x * 1_103_515_245 + 12_345) % 2 ** 31
      times.push(T0 + (x - 2 ** 30) * 1009 + (i % 1000))
    }
    for (const ms of times) expect(iso(ms)).toBe(new Date(ms).toISOString())
  })

  it('has its data dictionary in docs/export.md, unchanged', () => {
    expectTablesInDoc(new URL('../../../docs/export.md', import.meta.url), [dataDictionaryMarkdown()])
  })
})

describe('export schema v2', () => {
  it('pins the v2 columns: the v1 columns in the same order, then quality and corrections', () => {
    expect(exportSchemaId(2)).toBe('skolluft-export/2')
    expect([...RAW_EXPORT_COLUMNS_V2]).toEqual([
      'time',
      'site_id',
      'device_id',
      'metric',
      'value',
      'unit',
      'qc',
      'flags',
      'corrected',
      'correction',
    ])
    expect([...AGGREGATE_EXPORT_COLUMNS_V2]).toEqual([
      ...['time', 'site_id', 'metric', 'mean', 'min', 'max', 'n', 'expected', 'coverage', 'valid'],
      'corrected_mean',
      'correction',
    ])
    expect(exportColumns(2, 'daily')).toEqual(exportColumns(2, 'hourly'))
    expect(exportColumns(1, 'raw')).toEqual([...RAW_EXPORT_COLUMNS])
    expect(exportHeader('csv', 'raw', 2)).toBe(
      'time,site_id,device_id,metric,value,unit,qc,flags,corrected,correction\r\n',
    )
  })

  it('says per metric whether a reading was checked and which flags it has', () => {
    const reading = { siteId: 's', deviceId: 'd', ts: T0, values: { pm25: 80, pm10: 60, rh: 95 } }
    const cells = (qc: number | null) =>
      rawRows({ ...reading, qc }, ['pm25', 'pm10'], 2).map((row) => [row[3], row[6], row[7]])
    expect(cells(null)).toEqual([
      ['pm25', 'unchecked', null],
      ['pm10', 'unchecked', null],
    ])
    expect(cells(0)).toEqual([
      ['pm25', 'ok', null],
      ['pm10', 'ok', null],
    ])
    const mask = flagBit('pm25', 'pm_order') + flagBit('pm25', 'high_humidity') + flagBit('pm10', 'stuck')
    expect(cells(mask)).toEqual([
      ['pm25', 'suspect', 'pm_order;high_humidity'],
      ['pm10', 'invalid', 'stuck'],
    ])
    // v1 rows never grow.
    expect(rawRows({ ...reading, qc: mask }, ['pm25'], 1)).toEqual([[T0, 's', 'd', 'pm25', 80, 'µg/m³']])
  })

  it('adds the corrected value and its chain with values=corrected, and nothing with values=raw', () => {
    const seen: unknown[] = []
    const corrector: ValueCorrector = (metric, ts, value, rh) => {
      seen.push([metric, ts, value, rh])
      return metric === 'pm25' ? { value: value / 2, correction: 'rh-test@1' } : null
    }
    const reading = { siteId: null, deviceId: 'd', ts: T0, values: { pm25: 10, no2: 20, rh: 80 }, qc: 0 }
    expect(rawRows(reading, ['pm25', 'no2'], 2, corrector).map((row) => row.slice(8))).toEqual([
      [5, 'rh-test@1'],
      [20, 'none'],
    ])
    // The RH of the same reading feeds the correction although rh was not asked for.
    expect(seen).toEqual([
      ['pm25', T0, 10, 80],
      ['no2', T0, 20, 80],
    ])
    expect(rawRows(reading, ['pm25'], 2).map((row) => row.slice(8))).toEqual([[null, null]])
  })

  it('corrects each device-hour with its own corrector and RH, weighting devices by readings', () => {
    const correctors: Record<string, ValueCorrector> = {
      a: (_m, _t, value, rh) => ({ value: value - (rh ?? 0) / 10, correction: 'rh-test@1' }),
      b: (_m, _t, value) => ({ value: value * 2, correction: 'cal-1@1' }),
      c: () => null,
    }
    const folder = createCorrectedHourFolder(['pm25', 'no2'], (id) => correctors[id] ?? (() => null))
    const dh = (deviceId: string, t: number, metric: 'pm25' | 'no2', n: number, mean: number, rh?: number) => ({
      siteId: 's',
      deviceId,
      t,
      metric,
      n,
      sum: n * mean,
      min: mean - 1,
      max: mean + 1,
      expected: 60,
      ...(rh === undefined ? {} : { rh }),
    })
    const out = [
      ...folder.push(dh('a', T0, 'no2', 60, 5)),
      ...folder.push(dh('a', T0, 'pm25', 60, 10, 50)),
      ...folder.push(dh('b', T0, 'pm25', 30, 4)),
      ...folder.push(dh('c', T0 + HOUR, 'pm25', 60, 7)),
      ...folder.end(),
    ]
    expect(out.map((r) => aggregateCells(r, 2))).toEqual([
      // pm25 first (METRICS order): (60 × (10 − 5) + 30 × 8) / 90 = 6; plain mean (600 + 120) / 90 = 8.
      [T0, 's', 'pm25', 8, 3, 11, 90, 120, 0.75, true, 6, 'rh-test@1;cal-1@1'],
      [T0, 's', 'no2', 5, 4, 6, 60, 60, 1, true, 5, 'rh-test@1'],
      [T0 + HOUR, 's', 'pm25', 7, 6, 8, 60, 60, 1, true, 7, 'none'],
    ])
    // Corrected days: the mean of the corrected valid hourly means, the distinct chains.
    const daily = createDailyFolder(['pm25'])
    const days = [...out.flatMap((r) => daily.push(r)), ...daily.end()]
    expect(days.map((r) => aggregateCells(r, 2).slice(3))).toEqual([
      [7.5, 3, 11, 2, 24, 2 / 24, false, 6.5, 'rh-test@1;cal-1@1;none'],
    ])
  })
})

describe('raw text writer', () => {
  it('writes exactly the bytes of rawRows + the line formatter, for every format, schema, correction and resume point', () => {
    // Deterministic spread: sites (none, plain), devices, metrics present or not, masks, odd numbers.
    let x = 7
    const next = () => {
      x = (x * 1_103_515_245 + 12_345) % 2 ** 31
      return x
    }
    const numbers = [0, -0, 1.5, -2.25, 0.1 + 0.2, 1e-7, 1e21, 999.9]
    const readings = Array.from({ length: 300 }, (_, i) => {
      const values: Partial<Record<Metric, number>> = {}
      for (const m of METRICS) if (next() % 3 !== 0) values[m] = numbers[next() % numbers.length] ?? 0
      const masks = [null, 0, flagBit('pm25', 'spike'), flagBit('rh', 'out_of_range') + flagBit('pm1', 'warm_up')]
      return {
        siteId: next() % 5 === 0 ? null : `site-${next() % 3}`,
        deviceId: `dev-${next() % 4}`,
        ts: T0 + i * 61_001,
        values,
        qc: masks[next() % masks.length],
      }
    })
    const corrector: ValueCorrector = (metric, _ts, value, rh) =>
      metric === 'pm25' && rh !== undefined ? { value: value / 3, correction: 'rh-test@1' } : null
    const metricSets: Metric[][] = [[...METRICS], ['pm25', 'rh'], ['no2']]
    for (const format of ['csv', 'ndjson'] as const) {
      for (const schema of [1, 2] as const) {
        for (const withCorrector of schema === 2 ? [false, true] : [false]) {
          for (const metrics of metricSets) {
            for (const first of [0, 2, 5]) {
              const writer = createRawTextWriter(format, schema, metrics)
              const line = createLineFormatter(format, 'raw', schema)
              const seenFast: string[] = []
              const seenSlow: string[] = []
              let fast = ''
              let slow = ''
              let rows = 0
              for (const reading of readings) {
                const c = withCorrector ? corrector : undefined
                fast += writer.lines(reading, c, first, (chain) => seenFast.push(chain))
                for (const cells of rawRows(reading, metrics, schema, c)) {
                  if (METRICS.indexOf(cells[3] as Metric) < first) continue
                  if (withCorrector) seenSlow.push(String(cells[9]))
                  slow += line(cells)
                  rows++
                }
              }
              expect(fast, `${format} schema ${schema} ${metrics.join(',')} from ${first}`).toBe(slow)
              expect(writer.rows).toBe(rows)
              expect(seenFast).toEqual(seenSlow)
            }
          }
        }
      }
    }
  })
})
