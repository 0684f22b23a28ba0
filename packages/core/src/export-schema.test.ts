import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import {
  AGGREGATE_EXPORT_COLUMNS,
  aggregateCells,
  createDailyFolder,
  createIsoTimeFormatter,
  csvLine,
  dataDictionaryMarkdown,
  EXPORT_COLUMNS,
  EXPORT_SCHEMA_ID,
  type ExportHourSums,
  exportHeader,
  hourlyRow,
  ndjsonLine,
  RAW_EXPORT_COLUMNS,
  rawRows,
} from './export-schema.ts'

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
      ['2026-01-12T00:00:00.001Z', 's', 'd', 'pm25', 3, 'µg/m³'],
      ['2026-01-12T00:00:00.001Z', 's', 'd', 'no2', -1.5, 'µg/m³'],
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
    expect(aggregateCells(hourlyRow(hour(45)))).toEqual([
      '2026-01-12T00:00:00.000Z',
      's',
      'pm25',
      2,
      1,
      3,
      45,
      60,
      0.75,
      true,
    ])
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
        ...folder.push({
          siteId: 'a',
          t: dayStart + h * HOUR,
          metric: 'pm25',
          n,
          sum: n * mean,
          min: h,
          max: mean,
          expected: 60,
        }),
      )
      if (h === 0)
        out.push(
          ...folder.push({ siteId: 'a', t: dayStart, metric: 'no2', n: 60, sum: 60, min: 1, max: 1, expected: 60 }),
        )
    }
    // 22:59 → the next day; then another site.
    out.push(
      ...folder.push({
        siteId: 'a',
        t: dayStart + 24 * HOUR,
        metric: 'pm25',
        n: 5,
        sum: 5,
        min: 1,
        max: 1,
        expected: 60,
      }),
    )
    out.push(...folder.push({ siteId: 'b', t: dayStart, metric: 'pm25', n: 60, sum: 60, min: 1, max: 1, expected: 60 }))
    out.push(...folder.end())
    const iso = createIsoTimeFormatter()
    expect(out.map((r) => aggregateCells(r, iso))).toEqual([
      ['2026-01-11T23:00:00.000Z', 'a', 'pm25', 10, 0, 100, 18, 24, 0.75, true],
      ['2026-01-11T23:00:00.000Z', 'a', 'no2', 1, 1, 1, 1, 24, 1 / 24, false],
      ['2026-01-12T23:00:00.000Z', 'a', 'pm25', null, 1, 1, 0, 24, 0, false],
      ['2026-01-11T23:00:00.000Z', 'b', 'pm25', 1, 1, 1, 1, 24, 1 / 24, false],
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
    const doc = readFileSync(new URL('../../../docs/export.md', import.meta.url), 'utf8')
    // Cell by cell, so the formatter may realign the table's columns (biome formats the docs).
    const rows = (markdown: string) =>
      markdown
        .split('\n')
        .filter((line) => line.startsWith('|') && !/^\|\s*-/.test(line))
        .map((line) =>
          line
            .split('|')
            .slice(1, -1)
            .map((cell) => cell.trim())
            .join('|'),
        )
    const expected = rows(dataDictionaryMarkdown())
    const inDoc = rows(doc)
    const start = inDoc.indexOf(expected[0] ?? '')
    expect(start).toBeGreaterThanOrEqual(0)
    expect(inDoc.slice(start, start + expected.length)).toEqual(expected)
  })
})
