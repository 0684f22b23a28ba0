import type { DictionaryEntry, ExportCell } from '@skolluft/core'
import { ByteWriter, ParquetWriter } from 'hyparquet-writer'

/**
 * Streaming Parquet encoder for bulk exports (issue 5): rows of export cells in, file bytes out, one row group at
 * a time, so memory stays bounded by one row group whatever the number of rows.
 *
 * Column types follow the export data dictionary (core export-schema.ts), every column OPTIONAL (null = missing):
 * - datetime -> INT64, logical TIMESTAMP(MILLIS, isAdjustedToUTC=true) (+ legacy converted type TIMESTAMP_MILLIS).
 *   Cells are epoch ms (safe integers) or ISO strings exactly as the export writes them,
 *   `YYYY-MM-DDTHH:MM:SS.sssZ` (anything else is refused rather than guessed at).
 * - string -> BYTE_ARRAY, logical STRING (UTF-8); dictionary-encoded when it pays (ids, metrics, units repeat).
 * - number -> DOUBLE (the exact IEEE value, -0, NaN and ±Infinity included).
 * - integer -> INT64 (n and expected fit INT32, but a bitmask such as reading-qc's 48-bit flags does not).
 * - boolean -> BOOLEAN.
 * Compression SNAPPY (hyparquet-writer's built-in, pure JS).
 */

export type ParquetColumnType = DictionaryEntry['type']

export interface ParquetColumn {
  readonly name: string
  readonly type: ParquetColumnType
}

export interface ParquetEncoderOptions {
  /** In file order; every row passed to `push` has one cell per column, in this order. */
  readonly columns: readonly ParquetColumn[]
  /** Rows per row group (the memory bound); default DEFAULT_ROW_GROUP_ROWS. */
  readonly rowGroupRows?: number
  /** File key-value metadata (e.g. the export schema id and the column list). */
  readonly keyValue?: Readonly<Record<string, string>>
  /** The file's `created_by`, e.g. `skolluft 0.1.0`. */
  readonly createdBy: string
  /** Default SNAPPY. */
  readonly codec?: ParquetCodec
}

export type ParquetCodec = 'SNAPPY' | 'UNCOMPRESSED'

export interface ParquetEncoder {
  /**
   * Buffers the rows; returns the bytes to write next when at least one row group was completed (the first
   * bytes include the `PAR1` magic), undefined otherwise. At most one partial row group stays buffered, so callers
   * that push bounded batches keep bounded memory; write the bytes (awaiting 'drain') before the next push.
   */
  push(rows: readonly (readonly ExportCell[])[]): Uint8Array | undefined
  /** The last bytes of the file (remaining rows, indexes, footer). The encoder is done afterwards. */
  end(): Uint8Array
  /** Rows pushed so far. */
  readonly rows: number
}

/**
 * 64 Ki rows: a raw-export row group is ~160 kB encoded (measured 2.5 B/row) and the encoder's heap stayed at
 * 11-16 MB over 12 M rows; large enough for dictionaries and statistics to pay, small enough to stream
 * (engineering choice; arrow-rs and DuckDB default to 1 Mi / 122 880 rows).
 */
export const DEFAULT_ROW_GROUP_ROWS = 65_536

/** IANA media type of Parquet (registered 2024). */
export const PARQUET_CONTENT_TYPE = 'application/vnd.apache.parquet'

export type ParquetEncodeErrorCode = 'parquet_bad_cell' | 'parquet_bad_row' | 'parquet_ended' | 'parquet_bad_options'

export class ParquetEncodeError extends Error {
  readonly code: ParquetEncodeErrorCode
  constructor(code: ParquetEncodeErrorCode, message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'ParquetEncodeError'
    this.code = code
  }
}

type SchemaElement = ConstructorParameters<typeof ParquetWriter>[0]['schema'][number]
type ColumnSource = Parameters<ParquetWriter['write']>[0]['columnData'][number]
type Physical = string | number | bigint | boolean | null

function schemaElement(column: ParquetColumn): SchemaElement {
  const base = { name: column.name, repetition_type: 'OPTIONAL' } as const
  switch (column.type) {
    case 'datetime':
      return {
        ...base,
        type: 'INT64',
        converted_type: 'TIMESTAMP_MILLIS',
        logical_type: { type: 'TIMESTAMP', isAdjustedToUTC: true, unit: 'MILLIS' },
      }
    case 'string':
      return { ...base, type: 'BYTE_ARRAY', converted_type: 'UTF8', logical_type: { type: 'STRING' } }
    case 'number':
      return { ...base, type: 'DOUBLE' }
    case 'integer':
      return { ...base, type: 'INT64' }
    case 'boolean':
      return { ...base, type: 'BOOLEAN' }
  }
}

export function createParquetEncoder(options: ParquetEncoderOptions): ParquetEncoder {
  const { columns, createdBy } = options
  const rowGroupRows = options.rowGroupRows ?? DEFAULT_ROW_GROUP_ROWS
  if (!Number.isSafeInteger(rowGroupRows) || rowGroupRows < 1) {
    throw new ParquetEncodeError('parquet_bad_options', `rowGroupRows must be a positive integer, got ${rowGroupRows}`)
  }
  if (columns.length === 0) throw new ParquetEncodeError('parquet_bad_options', 'a Parquet file needs a column')
  const names = new Set(columns.map((c) => c.name))
  if (names.size !== columns.length) {
    throw new ParquetEncodeError('parquet_bad_options', 'column names must be unique')
  }

  const schema = [{ name: 'root', num_children: columns.length }, ...columns.map(schemaElement)]
  const kvMetadata = Object.entries(options.keyValue ?? {}).map(([key, value]) => ({ key, value }))
  const out = new ByteWriter()
  const writer = new ParquetWriter({
    writer: out,
    schema,
    codec: options.codec ?? 'SNAPPY',
    // An empty list would be written with an untyped header (see emptyRowGroupsFix): omit it instead.
    ...(kvMetadata.length > 0 ? { kvMetadata } : {}),
    createdBy,
  })
  const toDatetime = createDatetimeConverter()
  const sinks = columns.map((c) => createSink(c, toDatetime))
  const width = columns.length
  let buffered = 0
  let total = 0
  let state: 'open' | 'ended' | 'failed' = 'open'

  function flushGroup(): void {
    const columnData: ColumnSource[] = sinks.map((sink) => {
      const column: ColumnSource = {
        name: sink.column.name,
        data: sink.values,
        // min/max statistics of strings cost a third of the encoding time (measured, 1M raw rows: 290k vs
        // 400k rows per CPU second) for little use: readers prune exports by time, which keeps its statistics.
        statistics: sink.column.type !== 'string',
      }
      // hyparquet-writer's dictionary is a Map (SameValueZero: -0 and 0 are one key), so a group with a -0
      // is written PLAIN to keep the sign; such groups are rare (a reading that rounds to -0).
      if (sink.negativeZero) column.encoding = 'PLAIN'
      sink.reset()
      return column
    })
    // ByteWriter has no flush(), so write (and finish) run synchronously and return no promise.
    void writer.write({ columnData, rowGroupSize: buffered })
    buffered = 0
  }

  function take(): Uint8Array {
    // `offset` (the file position) keeps counting; only the buffer index is reset, as hyparquet-writer's own
    // fileWriter does. The copy lets the caller hold the bytes while the buffer is reused.
    const bytes = out.getBytes().slice()
    out.index = 0
    return bytes
  }

  function ensureOpen(): void {
    if (state === 'ended') throw new ParquetEncodeError('parquet_ended', 'the Parquet encoder has ended')
    if (state === 'failed') throw new ParquetEncodeError('parquet_ended', 'the Parquet encoder failed earlier')
  }

  return {
    push(rows) {
      ensureOpen()
      let groups = 0
      try {
        for (const row of rows) {
          if (row.length !== width) {
            throw new ParquetEncodeError('parquet_bad_row', `row ${total} has ${row.length} cells, expected ${width}`)
          }
          let i = 0
          for (const sink of sinks) sink.add(row[i++] ?? null, total)
          buffered++
          total++
          if (buffered === rowGroupRows) {
            flushGroup()
            groups++
          }
        }
      } catch (error) {
        // A row may be half buffered: the file cannot be completed consistently.
        state = 'failed'
        throw error
      }
      return groups > 0 ? take() : undefined
    },
    end() {
      ensureOpen()
      state = 'ended'
      if (buffered > 0) flushGroup()
      const footerStart = out.index
      void writer.finish()
      const bytes = take()
      if (total === 0) emptyRowGroupsFix(bytes, footerStart, schema)
      return bytes
    },
    get rows() {
      return total
    },
  }
}

/**
 * hyparquet-writer 0.17 writes an empty thrift list with element type 0 (thrift.js getCompactTypeForList: its
 * `?? BYTE` fallback never applies), and arrow-rs refuses such a footer ("Expected list element type of Struct
 * but got Byte"). The one empty list of our files is `row_groups` of a file without rows; this sets its element
 * type to STRUCT (compact type 12, size 0: byte 0x0C).
 *
 * FileMetaData is written as version (field 1), schema (2), num_rows (3), row_groups (4), key_value_metadata (5),
 * created_by (6), column_orders (7), STOP. A probe footer of the same schema without key-value metadata and with
 * an empty created_by has the same bytes up to row_groups, which there reads `16 00 19 00` (num_rows 0, empty
 * list) then `28 00` (created_by ''): the last such run (column_orders holds only 19, 1C, 00 and a count) gives
 * the offset of the list header in the real footer.
 */
function emptyRowGroupsFix(file: Uint8Array, footerStart: number, schema: SchemaElement[]): void {
  const probe = new ByteWriter()
  void new ParquetWriter({ writer: probe, schema, createdBy: '' }).finish()
  const bytes = probe.getBytes()
  const pattern = [0x16, 0x00, 0x19, 0x00, 0x28, 0x00]
  let found = -1
  for (let i = bytes.length - pattern.length; i >= 0 && found < 0; i--) {
    if (pattern.every((b, j) => bytes[i + j] === b)) found = i
  }
  // probe metadata starts after its 4-byte PAR1, as the real footer starts at footerStart
  const at = footerStart + (found + 3 - 4)
  if (found < 0 || file[at - 3] !== 0x16 || file[at - 2] !== 0x00 || file[at - 1] !== 0x19 || file[at] !== 0x00) {
    throw new ParquetEncodeError('parquet_bad_options', 'unexpected footer layout of an empty Parquet file')
  }
  file[at] = 0x0c
}

/** One column's buffered values of the current row group, in the writer's input form. */
interface Sink {
  readonly column: ParquetColumn
  values: Physical[]
  /** The group holds a -0 (DOUBLE only). */
  negativeZero: boolean
  add(cell: ExportCell, row: number): void
  reset(): void
}

function createSink(column: ParquetColumn, toDatetime: (cell: string | number) => number | undefined): Sink {
  const bad = (cell: unknown, row: number, expected: string): never => {
    throw new ParquetEncodeError(
      'parquet_bad_cell',
      `row ${row}, column ${column.name}: expected ${expected}, got ${typeof cell} ${JSON.stringify(cell)}`,
    )
  }
  const sink: Sink = {
    column,
    values: [],
    negativeZero: false,
    add: () => {},
    reset() {
      sink.values = []
      sink.negativeZero = false
    },
  }
  switch (column.type) {
    case 'string':
      sink.add = (cell, row) => {
        sink.values.push(cell === null || typeof cell === 'string' ? cell : bad(cell, row, 'a string'))
      }
      break
    case 'number':
      sink.add = (cell, row) => {
        if (cell === 0 && Object.is(cell, -0)) sink.negativeZero = true
        sink.values.push(cell === null || typeof cell === 'number' ? cell : bad(cell, row, 'a number'))
      }
      break
    case 'integer':
      sink.add = (cell, row) => {
        sink.values.push(
          cell === null ? null : Number.isSafeInteger(cell) ? BigInt(cell) : bad(cell, row, 'a safe integer'),
        )
      }
      break
    case 'boolean':
      sink.add = (cell, row) => {
        sink.values.push(cell === null || typeof cell === 'boolean' ? cell : bad(cell, row, 'a boolean'))
      }
      break
    case 'datetime':
      sink.add = (cell, row) => {
        if (cell === null) {
          sink.values.push(null)
          return
        }
        const ms = typeof cell === 'boolean' ? undefined : toDatetime(cell)
        sink.values.push(ms ?? bad(cell, row, 'epoch ms or an ISO time YYYY-MM-DDTHH:MM:SS.sssZ'))
      }
      break
  }
  return sink
}

/**
 * Epoch ms from a cell: a safe integer as is, or an ISO string in the export's one format. Parsed by arithmetic
 * with the date part cached (cells of a reading share one string, and a day has many readings); Date.parse would
 * also accept forms the schema does not allow (no milliseconds, offsets, local time).
 */
export function createDatetimeConverter(): (cell: string | number) => number | undefined {
  let lastIso = ''
  let lastMs = 0
  let dayKey = -1
  let dayMs = 0
  return (cell) => {
    if (typeof cell === 'number') return Number.isSafeInteger(cell) ? cell : undefined
    if (cell === lastIso) return lastMs
    if (cell.length !== 24 || cell.charCodeAt(23) !== 90 /* Z */) return undefined
    const y = digits(cell, 0, 4)
    const mo = digits(cell, 5, 2)
    const d = digits(cell, 8, 2)
    const h = digits(cell, 11, 2)
    const mi = digits(cell, 14, 2)
    const s = digits(cell, 17, 2)
    const ms = digits(cell, 20, 3)
    if (
      cell.charCodeAt(4) !== 45 /* - */ ||
      cell.charCodeAt(7) !== 45 ||
      cell.charCodeAt(10) !== 84 /* T */ ||
      cell.charCodeAt(13) !== 58 /* : */ ||
      cell.charCodeAt(16) !== 58 ||
      cell.charCodeAt(19) !== 46 /* . */ ||
      y < 0 ||
      mo < 1 ||
      mo > 12 ||
      d < 1 ||
      h < 0 ||
      h > 23 ||
      mi < 0 ||
      mi > 59 ||
      s < 0 ||
      s > 59 ||
      ms < 0
    ) {
      return undefined
    }
    const key = y * 10_000 + mo * 100 + d
    if (key !== dayKey) {
      const start = Date.UTC(y, mo - 1, d)
      const check = new Date(start)
      // Date.UTC rolls 02-30 over into March; a real date reads back the same day. Years 0-99 are mapped to
      // 1900-1999 by Date.UTC, also caught here.
      if (check.getUTCFullYear() !== y || check.getUTCMonth() !== mo - 1 || check.getUTCDate() !== d) return undefined
      dayKey = key
      dayMs = start
    }
    lastIso = cell
    lastMs = dayMs + h * 3_600_000 + mi * 60_000 + s * 1000 + ms
    return lastMs
  }
}

/** The decimal number of `length` ASCII digits at `from`, or -1 if any is not a digit. */
function digits(text: string, from: number, length: number): number {
  let n = 0
  for (let i = from; i < from + length; i++) {
    const c = text.charCodeAt(i) - 48
    if (c < 0 || c > 9) return -1
    n = n * 10 + c
  }
  return n
}
