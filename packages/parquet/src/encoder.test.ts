import type { ExportCell } from '@skolluft/core'
import { tableFromIPC } from 'apache-arrow'
import { parquetMetadata, parquetReadObjects } from 'hyparquet'
import { readParquet } from 'parquet-wasm/node'
import { describe, expect, it } from 'vitest'
import {
  createDatetimeConverter,
  createParquetEncoder,
  type ParquetColumn,
  ParquetEncodeError,
  type ParquetEncoderOptions,
} from './encoder.ts'

/** What a reader should give back for a pushed cell: epoch ms for datetime, bigint for integer. */
type Expected = string | number | bigint | boolean | null

const COLUMNS: readonly ParquetColumn[] = [
  { name: 'time', type: 'datetime' },
  { name: 'site_id', type: 'string' },
  { name: 'device_id', type: 'string' },
  { name: 'metric', type: 'string' },
  { name: 'value', type: 'number' },
  { name: 'unit', type: 'string' },
  { name: 'n', type: 'integer' },
  { name: 'valid', type: 'boolean' },
]

/** Arrow's names of the Parquet types we write (TIMESTAMP(MILLIS, UTC) read by arrow-rs). */
const ARROW_TYPES = ['Timestamp<MILLISECOND, UTC>', 'Utf8', 'Utf8', 'Utf8', 'Float64', 'Utf8', 'Int64', 'Bool']

const SITES = ['lund-fladen', 'förskola-åäö-ÅÄÖ', '', 'emoji-🌍-site', 'quote "q", comma, CRLF\r\n']
const METRICS = ['pm1', 'pm25', 'pm10', 'no2', 'temp', 'rh']
const UNITS = ['µg/m³', '°C', '%']
const SPECIAL_DOUBLES = [
  0,
  5e-324,
  -5e-324,
  2.2250738585072014e-308,
  1.7976931348623157e308,
  -1.7976931348623157e308,
  1e-300,
  0.1 + 0.2,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  -12.3,
]
const SPECIAL_INTEGERS = [0, -1, 2 ** 53 - 1, -(2 ** 53 - 1), 60, -0]
const BASE_MS = Date.UTC(2026, 0, 12, 7)
const GROUP_ROWS = 1000
/** 10.5 groups: the last one partial. */
const ROWS = 10_500
/** Row group whose `value` cells are all null. */
const NULL_VALUE_GROUP = 4

function timeOf(i: number): number {
  if (i === 0) return -1 // 1969-12-31T23:59:59.999Z
  if (i === 1) return Date.UTC(2024, 1, 29, 23, 59, 59, 999) // leap day
  return BASE_MS + i * 1_037
}

/** A row as pushed (ISO strings and epoch ms mixed) and as a reader should return it. */
function row(i: number): { cells: ExportCell[]; expected: Expected[] } {
  const group = Math.floor(i / GROUP_ROWS)
  const ms = timeOf(i)
  const time = i % 7 === 3 ? null : i % 2 === 0 ? new Date(ms).toISOString() : ms
  const site = i % 11 === 5 ? null : (SITES[i % SITES.length] ?? null)
  const device = i % 13 === 0 ? null : `sim-${i}` // distinct per row: the PLAIN (non-dictionary) path
  const metric = i % 17 === 1 ? null : (METRICS[i % METRICS.length] ?? null)
  let value: number | null
  if (group === NULL_VALUE_GROUP || i % 19 === 2) value = null
  else if (i % 50 < SPECIAL_DOUBLES.length) value = SPECIAL_DOUBLES[i % 50] ?? null
  // -0 only in groups 0, 3, 6, 9: the others keep the dictionary encoding
  else if (i % 50 === 20 && group % 3 === 0) value = -0
  else value = (i % 97) / 10 // repeats: dictionary-encoded
  const unit = i % 5 === 4 ? null : (UNITS[i % UNITS.length] ?? null)
  const n = i % 23 === 4 ? null : i % 10 < SPECIAL_INTEGERS.length ? (SPECIAL_INTEGERS[i % 10] ?? null) : i
  const valid = i % 3 === 0 ? true : i % 3 === 1 ? false : null
  return {
    cells: [time, site, device, metric, value, unit, n, valid],
    expected: [time === null ? null : ms, site, device, metric, value, unit, n === null ? null : BigInt(n), valid],
  }
}

function encode(
  rows: readonly (readonly ExportCell[])[],
  options: Partial<ParquetEncoderOptions> = {},
  batchRows = 333,
): { file: Uint8Array; chunks: Uint8Array[] } {
  const encoder = createParquetEncoder({ columns: COLUMNS, createdBy: 'skolluft test', ...options })
  const chunks: Uint8Array[] = []
  for (let i = 0; i < rows.length; i += batchRows) {
    const bytes = encoder.push(rows.slice(i, i + batchRows))
    if (bytes !== undefined) chunks.push(bytes)
  }
  chunks.push(encoder.end())
  return { file: new Uint8Array(Buffer.concat(chunks)), chunks }
}

function arrayBuffer(bytes: Uint8Array): ArrayBuffer {
  return bytes.slice().buffer
}

/** Reads with parquet-wasm (Apache arrow-rs): field names, arrow type names, nullability and rows. */
function readWithArrow(file: Uint8Array): {
  fields: string[]
  types: string[]
  nullable: boolean[]
  rows: unknown[][]
} {
  const table = tableFromIPC(readParquet(file).intoIPCStream())
  const fields = table.schema.fields
  const columns = fields.map((f) => table.getChild(f.name))
  const rows: unknown[][] = []
  for (let r = 0; r < table.numRows; r++) rows.push(columns.map((c) => c?.get(r)))
  return {
    fields: fields.map((f) => f.name),
    types: fields.map((f) => String(f.type)),
    nullable: fields.map((f) => f.nullable),
    rows,
  }
}

/** Reads with hyparquet: rows as arrays in column order, timestamps back to epoch ms. */
async function readWithHyparquet(file: Uint8Array, names: readonly string[]): Promise<unknown[][]> {
  const objects = await parquetReadObjects({ file: arrayBuffer(file) })
  return objects.map((o) => names.map((n) => (o[n] instanceof Date ? o[n].getTime() : o[n])))
}

/** Cells that differ (Object.is for numbers: -0 ≠ 0, NaN = NaN), at most 10, as readable strings. */
function mismatches(actual: readonly unknown[][], expected: readonly Expected[][]): string[] {
  const out: string[] = []
  if (actual.length !== expected.length) out.push(`rows: ${actual.length} read, ${expected.length} written`)
  for (let r = 0; r < Math.min(actual.length, expected.length) && out.length < 10; r++) {
    const a = actual[r] ?? []
    const e = expected[r] ?? []
    for (let c = 0; c < e.length; c++) {
      if (!Object.is(a[c] ?? null, e[c])) out.push(`row ${r} column ${c}: read ${String(a[c])}, wrote ${String(e[c])}`)
    }
  }
  return out
}

describe('createParquetEncoder', () => {
  const rows = Array.from({ length: ROWS }, (_, i) => row(i))
  const cells = rows.map((r) => r.cells)
  const expected = rows.map((r) => r.expected)
  const keyValue = { 'skolluft.schema': 'skolluft-export/2', 'skolluft.columns': COLUMNS.map((c) => c.name).join(',') }
  const { file, chunks } = encode(cells, { rowGroupRows: GROUP_ROWS, keyValue })

  it('writes every value, type and null so that arrow-rs (parquet-wasm) reads them back exactly', () => {
    const read = readWithArrow(file)
    expect(read.fields).toEqual(COLUMNS.map((c) => c.name))
    expect(read.types).toEqual(ARROW_TYPES)
    expect(read.nullable).toEqual(COLUMNS.map(() => true))
    expect(mismatches(read.rows, expected)).toEqual([])
  })

  it('writes every value so that hyparquet reads them back exactly, with the declared schema', async () => {
    expect(
      mismatches(
        await readWithHyparquet(
          file,
          COLUMNS.map((c) => c.name),
        ),
        expected,
      ),
    ).toEqual([])
    const meta = parquetMetadata(arrayBuffer(file))
    expect(meta.created_by).toBe('skolluft test')
    expect(meta.key_value_metadata).toEqual(Object.entries(keyValue).map(([key, value]) => ({ key, value })))
    expect(meta.schema.slice(1).map((e) => [e.name, e.repetition_type, e.type, e.logical_type?.type ?? null])).toEqual([
      ['time', 'OPTIONAL', 'INT64', 'TIMESTAMP'],
      ['site_id', 'OPTIONAL', 'BYTE_ARRAY', 'STRING'],
      ['device_id', 'OPTIONAL', 'BYTE_ARRAY', 'STRING'],
      ['metric', 'OPTIONAL', 'BYTE_ARRAY', 'STRING'],
      ['value', 'OPTIONAL', 'DOUBLE', null],
      ['unit', 'OPTIONAL', 'BYTE_ARRAY', 'STRING'],
      ['n', 'OPTIONAL', 'INT64', null],
      ['valid', 'OPTIONAL', 'BOOLEAN', null],
    ])
    expect(meta.schema[1]?.logical_type).toEqual({ type: 'TIMESTAMP', isAdjustedToUTC: true, unit: 'MILLIS' })
  })

  it('cuts row groups of rowGroupRows rows, the last one partial, SNAPPY-compressed', () => {
    const meta = parquetMetadata(arrayBuffer(file))
    expect(meta.row_groups.map((g) => Number(g.num_rows))).toEqual([...Array(10).fill(GROUP_ROWS), 500])
    expect(Number(meta.num_rows)).toBe(ROWS)
    expect(meta.row_groups[0]?.columns.map((c) => c.meta_data?.codec)).toEqual(COLUMNS.map(() => 'SNAPPY'))
  })

  it('keeps the sign of -0 (PLAIN groups) and dictionary-encodes doubles elsewhere', () => {
    const encodings = parquetMetadata(arrayBuffer(file)).row_groups.map((g) => g.columns[4]?.meta_data?.encodings ?? [])
    expect(encodings[0]).not.toContain('RLE_DICTIONARY') // has a -0
    expect(encodings[1]).toContain('RLE_DICTIONARY')
    expect(expected.filter((r) => Object.is(r[4], -0)).length).toBeGreaterThan(0)
  })

  it('streams: bytes come out as row groups complete, concatenated they are the file', () => {
    expect(chunks.length).toBeGreaterThan(5)
    expect(Buffer.from(chunks[0]?.subarray(0, 4) ?? []).toString()).toBe('PAR1')
    const last = chunks.at(-1) ?? new Uint8Array()
    expect(Buffer.from(last.subarray(last.length - 4)).toString()).toBe('PAR1')

    const encoder = createParquetEncoder({ columns: COLUMNS, createdBy: 't', rowGroupRows: 100 })
    expect(encoder.push(cells.slice(0, 99))).toBeUndefined()
    const first = encoder.push(cells.slice(99, 100))
    expect(first).toBeInstanceOf(Uint8Array)
    expect(encoder.push(cells.slice(100, 150))).toBeUndefined()
    // 230 rows in one push: the groups of rows 100-199 and 200-299 complete, rows 300-379 stay buffered
    const two = encoder.push(cells.slice(150, 380))
    expect(two?.length ?? 0).toBeGreaterThan(first?.length ?? 0)
    expect(encoder.rows).toBe(380)
    const whole = new Uint8Array(Buffer.concat([first ?? new Uint8Array(), two ?? new Uint8Array(), encoder.end()]))
    expect(parquetMetadata(arrayBuffer(whole)).row_groups.map((g) => Number(g.num_rows))).toEqual([100, 100, 100, 80])
    expect(mismatches(readWithArrow(whole).rows, expected.slice(0, 380))).toEqual([])
  })

  it('gives the same bytes for the same rows, whatever the batch sizes', () => {
    expect(Buffer.compare(encode(cells, { rowGroupRows: GROUP_ROWS, keyValue }, 7_000).file, file)).toBe(0)
  })

  it('writes an uncompressed file when asked', async () => {
    const plain = encode(cells.slice(0, 2_500), { rowGroupRows: GROUP_ROWS, codec: 'UNCOMPRESSED' }).file
    expect(parquetMetadata(arrayBuffer(plain)).row_groups[0]?.columns[0]?.meta_data?.codec).toBe('UNCOMPRESSED')
    expect(mismatches(readWithArrow(plain).rows, expected.slice(0, 2_500))).toEqual([])
    const names = COLUMNS.map((c) => c.name)
    expect(mismatches(await readWithHyparquet(plain, names), expected.slice(0, 2_500))).toEqual([])
  })
})

describe('an empty export', () => {
  it('is a valid Parquet file with the schema and metadata, no row group, for both readers', async () => {
    const encoder = createParquetEncoder({ columns: COLUMNS, createdBy: 't', keyValue: { 'skolluft.schema': 's/2' } })
    expect(encoder.push([])).toBeUndefined()
    const file = encoder.end()
    const arrow = readWithArrow(file)
    expect(arrow.fields).toEqual(COLUMNS.map((c) => c.name))
    expect(arrow.types).toEqual(ARROW_TYPES)
    expect(arrow.rows).toEqual([])
    expect(await readWithHyparquet(file, arrow.fields)).toEqual([])
    const meta = parquetMetadata(arrayBuffer(file))
    expect(meta.row_groups).toEqual([])
    expect(meta.key_value_metadata).toEqual([{ key: 'skolluft.schema', value: 's/2' }])
  })

  it('is readable without key-value metadata and with a single column too', () => {
    const file = createParquetEncoder({ columns: [{ name: 'a', type: 'boolean' }], createdBy: '' }).end()
    expect(readWithArrow(file)).toEqual({ fields: ['a'], types: ['Bool'], nullable: [true], rows: [] })
  })
})

describe('refusals', () => {
  const good: ExportCell[] = ['2026-01-12T07:00:00.000Z', 's', 'd', 'pm25', 1.5, 'µg/m³', 1, true]
  const codeOf = (f: () => unknown): string | undefined => {
    try {
      f()
    } catch (error) {
      return error instanceof ParquetEncodeError ? error.code : `not a ParquetEncodeError: ${String(error)}`
    }
    return undefined
  }
  const pushOne = (cells: ExportCell[]) => () =>
    createParquetEncoder({ columns: COLUMNS, createdBy: 't' }).push([good, cells])

  it('refuses a cell of the wrong type, naming the row and column', () => {
    expect(codeOf(pushOne(good))).toBeUndefined()
    for (const [index, cell] of [
      [1, 5],
      [4, '1.5'],
      [6, 1.5],
      [6, 2 ** 53],
      [7, 'true'],
      [0, true],
      [0, 1.5],
    ] as const) {
      const cells = [...good]
      cells[index] = cell
      expect(codeOf(pushOne(cells)), `column ${index} = ${String(cell)}`).toBe('parquet_bad_cell')
    }
    expect(() => pushOne([...good.slice(0, 4), 'x', ...good.slice(5)])()).toThrow(/row 1, column value/)
  })

  it('refuses times that are not the export format', () => {
    for (const time of [
      '2026-01-12T07:00:00Z',
      '2026-01-12T07:00:00.000+01:00',
      '2026-01-12 07:00:00.000Z',
      '2026-02-30T07:00:00.000Z',
      '2026-01-12T24:00:00.000Z',
      '0099-01-12T07:00:00.000Z',
      '2026-1-12T07:00:00.0000Z',
    ]) {
      expect(codeOf(pushOne([time, ...good.slice(1)])), time).toBe('parquet_bad_cell')
    }
  })

  it('refuses rows of the wrong width, and any use after end or after a failure', () => {
    expect(codeOf(pushOne(good.slice(1)))).toBe('parquet_bad_row')
    const ended = createParquetEncoder({ columns: COLUMNS, createdBy: 't' })
    ended.end()
    expect(codeOf(() => ended.push([good]))).toBe('parquet_ended')
    expect(codeOf(() => ended.end())).toBe('parquet_ended')
    const failed = createParquetEncoder({ columns: COLUMNS, createdBy: 't' })
    expect(codeOf(() => failed.push([good, [null, 1, null, null, null, null, null, null]]))).toBe('parquet_bad_cell')
    expect(codeOf(() => failed.end())).toBe('parquet_ended')
  })

  it('refuses bad options', () => {
    expect(codeOf(() => createParquetEncoder({ columns: [], createdBy: 't' }))).toBe('parquet_bad_options')
    expect(codeOf(() => createParquetEncoder({ columns: COLUMNS, createdBy: 't', rowGroupRows: 0 }))).toBe(
      'parquet_bad_options',
    )
    const twice = [COLUMNS[0], COLUMNS[0]].filter((c) => c !== undefined)
    expect(codeOf(() => createParquetEncoder({ columns: twice, createdBy: 't' }))).toBe('parquet_bad_options')
  })
})

describe('createDatetimeConverter', () => {
  it('reads the export ISO format as Date.parse does, across years, leap days and milliseconds', () => {
    const toMs = createDatetimeConverter()
    const start = Date.UTC(1970, 0, 1)
    const end = Date.UTC(2100, 0, 1)
    const samples = [Date.UTC(2024, 1, 29, 12), Date.UTC(2000, 1, 29), Date.UTC(2026, 11, 31, 23, 59, 59, 999), 0]
    for (let k = 0; k < 5_000; k++) samples.push(start + Math.floor(((k * 7919) % 5_000) * ((end - start) / 5_000)) + k)
    for (const ms of samples) {
      const iso = new Date(ms).toISOString()
      expect(toMs(iso), iso).toBe(Date.parse(iso))
      expect(toMs(iso), `${iso} again (cached)`).toBe(ms)
    }
    expect(toMs(1_768_201_200_000)).toBe(1_768_201_200_000)
    expect(toMs(1.5)).toBeUndefined()
    expect(toMs('2023-02-29T00:00:00.000Z')).toBeUndefined()
  })
})
