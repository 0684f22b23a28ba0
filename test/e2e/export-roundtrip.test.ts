import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { type RunningApi, startApi } from '@skolluft/api'
import { silentLogger } from '@skolluft/runtime'
import { openSqliteStorage, type Storage } from '@skolluft/storage'
import { tableFromIPC } from 'apache-arrow'
import { readParquet } from 'parquet-wasm/node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import {
  csvRecords,
  type HttpResult,
  httpGet,
  type ImportedDataDir,
  importArchive,
  importedDataDir,
  ndjsonRecords,
  pythonCsv,
  readArchive,
  researcherToken,
  runCli,
  SC_FROM,
  SC_SITE,
  SC_TO,
  type SourceValue,
} from '../support/export-fixtures.ts'

/**
 * Issue 5 round trip on real data: the vendored Sensor.Community archive files (Aberdeen, 5–11 November 2018,
 * an SDS011 and a BME280) imported with the real CLI into a fresh DATA_DIR, exported over real HTTP by a real
 * API with a researcher token (CSV and NDJSON, raw and hourly) and by `skolluft export --out`, read back with
 * independent readers (Python's csv module, JSON.parse per line) and compared with the source rows split here
 * from the archive text. Columns are looked up by header name, so columns appended by a later schema version
 * (v2: qc, flags, corrected, …) do not break these checks.
 */

/** Units by metric, as docs/export.md's data dictionary spells them (not taken from core). */
const UNITS: Readonly<Record<string, string>> = { pm10: 'µg/m³', pm25: 'µg/m³', temp: '°C', rh: '%' }
/** Documented metric order within a time: pm1, pm25, pm10, no2, temp, rh. */
const METRIC_ORDER = ['pm1', 'pm25', 'pm10', 'no2', 'temp', 'rh']
/** Hourly validity (docs/export.md): coverage ≥ 0.75 (2008/50/EC Annex VII). */
const HOURLY_MIN_COVERAGE = 0.75
const HOUR_MS = 3_600_000
/**
 * Means are compared within a relative 1e-12: the order in which storage adds the readings of an hour is not part
 * of the contract, and a different order may change the last bits of a double sum. n, min, max are exact.
 */
const MEAN_RELATIVE_TOLERANCE = 1e-12

const source = readArchive()
const key = (deviceId: string, time: string, metric: string) => `${deviceId} ${time} ${metric}`

let data: ImportedDataDir
let storage: Storage
let api: RunningApi
let token: string

function exportPath(params: Record<string, string>): string {
  return `/api/v1/export?${new URLSearchParams({ from: SC_FROM, to: SC_TO, ...params }).toString()}`
}

async function exported(params: Record<string, string>): Promise<HttpResult> {
  const res = await httpGet(api.port, exportPath(params), { Authorization: `Bearer ${token}` })
  expect(res.status, res.body.toString('utf8').slice(0, 500)).toBe(200)
  return res
}

/** Checks exported raw rows (records by column name) against the source: each value once, same double, right unit. */
function expectRawMatchesSource(rows: readonly Readonly<Record<string, unknown>>[], number: (v: unknown) => number) {
  const expected = new Map<string, SourceValue>(source.values.map((v) => [key(v.deviceId, v.time, v.metric), v]))
  expect(expected.size).toBe(source.values.length) // the source itself has no duplicate (device, time, metric)
  const seen = new Set<string>()
  const problems: string[] = []
  for (const row of rows) {
    const k = key(String(row.device_id), String(row.time), String(row.metric))
    const want = expected.get(k)
    if (want === undefined) problems.push(`extra row ${k}`)
    else if (seen.has(k)) problems.push(`row twice: ${k}`)
    else if (number(row.value) !== want.value) problems.push(`${k}: ${String(row.value)} ≠ ${want.value}`)
    else if (row.unit !== UNITS[want.metric]) problems.push(`${k}: unit ${String(row.unit)}`)
    else if (row.site_id !== SC_SITE) problems.push(`${k}: site ${String(row.site_id)}`)
    seen.add(k)
    if (problems.length > 10) break
  }
  expect(problems).toEqual([])
  expect(rows).toHaveLength(source.values.length)
  expect(seen.size).toBe(expected.size)
  // Documented order: site, device, time, metric.
  const order = rows.map((r) => [String(r.device_id), String(r.time), METRIC_ORDER.indexOf(String(r.metric))] as const)
  const sorted = [...order].sort((a, b) => a[0].localeCompare(b[0]) || a[1].localeCompare(b[1]) || a[2] - b[2])
  expect(order).toEqual(sorted)
}

interface HourExpectation {
  readonly time: string
  readonly metric: string
  readonly mean: number
  readonly min: number
  readonly max: number
  readonly n: number
  readonly expected: number
}

/**
 * Hourly rows recomputed from the source values: per (UTC hour, metric) the readings of every device at the site,
 * mean = sum / n (summed in time order), expected = Σ 3600 / interval over the devices that measured the metric
 * in that hour (interval as the import registered it).
 */
function expectedHours(intervals: ReadonlyMap<string, number>): HourExpectation[] {
  const buckets = new Map<string, { values: number[]; devices: Set<string> }>()
  const sorted = [...source.values].sort((a, b) => a.ts - b.ts)
  for (const v of sorted) {
    const hour = new Date(Math.floor(v.ts / HOUR_MS) * HOUR_MS).toISOString()
    const k = `${hour} ${v.metric}`
    const bucket = buckets.get(k) ?? { values: [], devices: new Set<string>() }
    bucket.values.push(v.value)
    bucket.devices.add(v.deviceId)
    buckets.set(k, bucket)
  }
  const out: HourExpectation[] = []
  for (const [k, { values, devices }] of buckets) {
    const [time = '', metric = ''] = k.split(' ')
    let sum = 0
    for (const v of values) sum += v
    let expected = 0
    for (const d of devices) expected += 3600 / (intervals.get(d) ?? Number.NaN)
    out.push({
      time,
      metric,
      mean: sum / values.length,
      min: Math.min(...values),
      max: Math.max(...values),
      n: values.length,
      expected,
    })
  }
  return out.sort(
    (a, b) => a.time.localeCompare(b.time) || METRIC_ORDER.indexOf(a.metric) - METRIC_ORDER.indexOf(b.metric),
  )
}

function expectHoursMatch(
  rows: readonly Readonly<Record<string, unknown>>[],
  number: (v: unknown) => number,
  bool: (v: unknown) => boolean,
) {
  const intervals = new Map(data.report.devices.map((d) => [d.deviceId, d.intervalS]))
  const want = expectedHours(intervals)
  expect(rows.map((r) => [r.time, r.site_id, r.metric])).toEqual(want.map((h) => [h.time, SC_SITE, h.metric]))
  const problems: string[] = []
  want.forEach((h, i) => {
    const row = rows[i] ?? {}
    const where = `${h.time} ${h.metric}`
    const mean = number(row.mean)
    if (Math.abs(mean - h.mean) > MEAN_RELATIVE_TOLERANCE * Math.abs(h.mean))
      problems.push(`${where}: mean ${mean} ≠ ${h.mean}`)
    if (number(row.min) !== h.min || number(row.max) !== h.max)
      problems.push(`${where}: min/max ${String(row.min)}/${String(row.max)}`)
    if (number(row.n) !== h.n) problems.push(`${where}: n ${String(row.n)} ≠ ${h.n}`)
    if (number(row.expected) !== h.expected) problems.push(`${where}: expected ${String(row.expected)} ≠ ${h.expected}`)
    const coverage = Math.min(1, h.n / h.expected)
    if (number(row.coverage) !== coverage) problems.push(`${where}: coverage ${String(row.coverage)} ≠ ${coverage}`)
    if (bool(row.valid) !== coverage >= HOURLY_MIN_COVERAGE) problems.push(`${where}: valid ${String(row.valid)}`)
  })
  expect(problems).toEqual([])
  // Every source value is in exactly one hour.
  expect(rows.reduce((sum, r) => sum + number(r.n), 0)).toBe(source.values.length)
}

/** CSV cell → double: a number as text; an empty cell would be NaN (and fail every comparison). */
const csvNumber = (v: unknown) => (typeof v === 'string' && v !== '' ? Number(v) : Number.NaN)
const csvBool = (v: unknown) => {
  if (v === 'true') return true
  if (v === 'false') return false
  throw new Error(`not a CSV boolean: ${String(v)}`)
}
const jsonNumber = (v: unknown) => (typeof v === 'number' ? v : Number.NaN)
const jsonBool = (v: unknown) => {
  if (typeof v !== 'boolean') throw new Error(`not a JSON boolean: ${String(v)}`)
  return v
}

const ManifestFields = z.object({
  schema: z.string(),
  file: z.string(),
  format: z.string(),
  resolution: z.string(),
  columns: z.array(z.string()),
  query: z.record(z.string(), z.string()),
  rows: z.number(),
  bytes: z.number(),
  sha256: z.string(),
})

beforeAll(async () => {
  data = await importedDataDir(source.files)
  token = await researcherToken(data.env)
  storage = openSqliteStorage({ path: join(data.path, 'skolluft.db') })
  api = await startApi({ log: silentLogger(), storage, host: '127.0.0.1', port: 0, options: { publicMap: false } })
}, 60_000)

afterAll(async () => {
  await api?.close()
  await storage?.close()
  await data?.cleanup()
})

describe('export round trip on real Sensor.Community data', () => {
  it('imported every source row (the starting point of the round trip)', () => {
    expect(source.files).toHaveLength(14)
    expect(source.rows).toBe(8133)
    expect(source.values).toHaveLength(2 * 8133)
    expect(data.report.files.map((f) => [f.rows, f.inserted, f.duplicates])).toEqual(
      data.report.files.map((f) => [f.rows, f.rows, 0]),
    )
    expect(data.report.devices.map((d) => d.deviceId)).toEqual(['sc-15092', 'sc-15093'])
  })

  it('raw CSV over HTTP: every source value exactly once, the same double, the right unit, nothing extra', async () => {
    const res = await exported({ resolution: 'raw', format: 'csv' })
    expect(res.headers['content-type']).toBe('text/csv; charset=utf-8; header=present')
    const { header, records } = csvRecords(pythonCsv(res.body))
    expect(header.slice(0, 6)).toEqual(['time', 'site_id', 'device_id', 'metric', 'value', 'unit'])
    expectRawMatchesSource(records, csvNumber)
  })

  it('raw NDJSON over HTTP: the same values, keys in CSV column order', async () => {
    const res = await exported({ resolution: 'raw', format: 'ndjson' })
    expect(res.headers['content-type']).toBe('application/x-ndjson')
    const rows = ndjsonRecords(res.body)
    expect(Object.keys(rows[0] ?? {}).slice(0, 6)).toEqual(['time', 'site_id', 'device_id', 'metric', 'value', 'unit'])
    // Every line has the same keys in the same order (the CSV columns).
    expect(new Set(rows.map((r) => Object.keys(r).join(','))).size).toBe(1)
    expectRawMatchesSource(rows, jsonNumber)
  })

  it('raw Parquet over HTTP, read by Apache Arrow (arrow-rs): the same values, typed columns', async () => {
    const res = await exported({ resolution: 'raw', format: 'parquet' })
    expect(res.headers['content-type']).toBe('application/vnd.apache.parquet')
    const table = tableFromIPC(readParquet(new Uint8Array(res.body)).intoIPCStream())
    expect(table.schema.fields.slice(0, 6).map((f) => `${f.name}: ${String(f.type)}`)).toEqual([
      'time: Timestamp<MILLISECOND, UTC>',
      'site_id: Utf8',
      'device_id: Utf8',
      'metric: Utf8',
      'value: Float64',
      'unit: Utf8',
    ])
    const rows = table.toArray().map((row: { toJSON(): Record<string, unknown> }) => {
      const r = row.toJSON()
      // Arrow gives the timestamp as epoch ms; the source's times are ISO 8601 with milliseconds.
      return { ...r, time: new Date(Number(r.time)).toISOString() }
    })
    expectRawMatchesSource(rows, (v) => (typeof v === 'number' ? v : Number.NaN))
  })

  it('hourly CSV and NDJSON: means, min, max, n, expected, coverage and valid recomputed from the source', async () => {
    const csv = csvRecords(pythonCsv((await exported({ resolution: 'hourly', format: 'csv' })).body))
    expect(csv.header.slice(0, 10)).toEqual([
      'time',
      'site_id',
      'metric',
      'mean',
      'min',
      'max',
      'n',
      'expected',
      'coverage',
      'valid',
    ])
    expectHoursMatch(csv.records, csvNumber, csvBool)
    const ndjson = ndjsonRecords((await exported({ resolution: 'hourly', format: 'ndjson' })).body)
    expect(Object.keys(ndjson[0] ?? {})).toEqual(csv.header)
    expectHoursMatch(ndjson, jsonNumber, jsonBool)
    // Both formats carry the same numbers (CSV text reads back to the NDJSON double).
    expect(csv.records.map((r) => csvNumber(r.mean))).toEqual(ndjson.map((r) => jsonNumber(r.mean)))
  })

  it('skolluft export --out writes the bytes the API serves, with a manifest whose sha256, bytes and rows match the file', {
    timeout: 60_000,
  }, async () => {
    const cases = [
      { resolution: 'raw', format: 'csv', file: 'raw.csv' },
      { resolution: 'hourly', format: 'ndjson', file: 'hourly.ndjson' },
    ] as const
    // Read-only on the data directory: the two CLI runs go side by side (each start costs a few seconds).
    const runs = await Promise.all(
      cases.map((c) =>
        runCli(
          [
            'export',
            '--resolution',
            c.resolution,
            '--format',
            c.format,
            '--from',
            SC_FROM,
            '--to',
            SC_TO,
            '--out',
            join(data.path, c.file),
          ],
          data.env,
        ),
      ),
    )
    for (const [i, c] of cases.entries()) {
      const run = runs[i]
      expect(run?.code, run?.output).toBe(0)
      const out = join(data.path, c.file)
      const file = await readFile(out)
      const http = await exported({ resolution: c.resolution, format: c.format })
      expect(file.equals(http.body), `${c.file}: CLI and API bytes differ`).toBe(true)

      const manifest = ManifestFields.parse(JSON.parse(await readFile(`${out}.manifest.json`, 'utf8')))
      expect(manifest.sha256).toBe(createHash('sha256').update(file).digest('hex'))
      expect(manifest.bytes).toBe(file.length)
      const header = c.format === 'csv' ? csvRecords(pythonCsv(file)) : undefined
      const rows = header?.records.length ?? ndjsonRecords(file).length
      expect(manifest.rows).toBe(rows)
      if (c.resolution === 'raw') expect(rows).toBe(source.values.length)
      expect(manifest.columns).toEqual(header?.header ?? Object.keys(ndjsonRecords(file)[0] ?? {}))
      expect(manifest.schema).toBe(http.headers['x-skolluft-export-schema'])
      expect([manifest.file, manifest.format, manifest.resolution]).toEqual([c.file, c.format, c.resolution])
      expect(manifest.query).toMatchObject({ resolution: c.resolution, format: c.format, from: SC_FROM, to: SC_TO })
    }
  })

  it('importing the same files again stores nothing twice: the exports are byte-identical', {
    timeout: 60_000,
  }, async () => {
    const before = await Promise.all(
      (['raw', 'hourly', 'daily'] as const).map(
        async (resolution) => (await exported({ resolution, format: 'csv' })).body,
      ),
    )
    const again = await importArchive(data.env, source.files)
    expect(again.files.map((f) => [f.inserted, f.duplicates])).toEqual(again.files.map((f) => [0, f.rows]))
    expect(again.devices.map((d) => d.created)).toEqual([false, false])
    for (const [i, resolution] of (['raw', 'hourly', 'daily'] as const).entries()) {
      const after = (await exported({ resolution, format: 'csv' })).body
      expect(after.equals(before[i] ?? Buffer.alloc(0)), `${resolution} export changed after a second import`).toBe(
        true,
      )
    }
  })
})
