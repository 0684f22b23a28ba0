import { readdirSync, readFileSync } from 'node:fs'
import { request as httpRequest } from 'node:http'
import { join } from 'node:path'
import { openSqliteStorage } from '@skolluft/storage'
import { pythonCsv, tempDir } from '@skolluft/testkit'
import { z } from 'zod'
import { runCli, SC_ARCHIVE_COLUMNS, SC_FIXTURES, SC_SITE, SC_SITE_RECORD } from './sensor-community.ts'

/**
 * Shared by the export system tests (test/e2e/export-*.test.ts): the vendored Sensor.Community archive files
 * (test/fixtures/sensor-community, Aberdeen 5–11 November 2018) read INDEPENDENTLY of the project's parser, imported
 * into a fresh DATA_DIR with the real CLI, and independent readers for what comes back (Python's csv module).
 */

export { SC_FIXTURES, SC_SITE } from './sensor-community.ts'

/** The week the fixtures cover (UTC day files 2018-11-05 … 2018-11-11). */
export const SC_FROM = '2018-11-05T00:00:00Z'
export const SC_TO = '2018-11-12T00:00:00Z'

/** One (device, time, metric, value) of the source, as the archive file has it. */
export interface SourceValue {
  readonly deviceId: string
  /** ISO 8601 UTC with milliseconds (the export's spelling). */
  readonly time: string
  readonly ts: number
  readonly metric: string
  readonly value: number
}

export interface ArchiveSource {
  /** Absolute paths, sorted by name. */
  readonly files: readonly string[]
  /** Data lines over all files. */
  readonly rows: number
  readonly values: readonly SourceValue[]
}

/**
 * Reads the archive files with a plain split, without any project code: the header names the `;`-separated
 * columns, timestamps are UTC without a zone, an empty cell is no value. Device ids are `sc-<sensor id>`, the
 * importer's default prefix.
 */
export function readArchive(filter: (name: string) => boolean = () => true): ArchiveSource {
  const names = readdirSync(SC_FIXTURES)
    .filter((f) => f.endsWith('.csv') && filter(f))
    .sort()
  const values: SourceValue[] = []
  let rows = 0
  for (const name of names) {
    const match = /_(sds011|bme280)_sensor_(\d+)\.csv$/.exec(name)
    const columns = SC_ARCHIVE_COLUMNS[match?.[1] ?? '']
    if (match === null || columns === undefined) throw new Error(`unexpected fixture ${name}`)
    const [head = '', ...lines] = readFileSync(join(SC_FIXTURES, name), 'utf8').split('\n')
    const header = head.split(';')
    for (const line of lines) {
      if (line === '') continue
      rows += 1
      const cells = line.split(';')
      const cell = (column: string) => cells[header.indexOf(column)] ?? ''
      const ts = Date.parse(`${cell('timestamp')}Z`)
      if (Number.isNaN(ts)) throw new Error(`${name}: bad timestamp in ${line}`)
      for (const [column, metric] of columns) {
        const text = cell(column)
        if (text === '') continue
        values.push({ deviceId: `sc-${match[2]}`, time: new Date(ts).toISOString(), ts, metric, value: Number(text) })
      }
    }
  }
  return { files: names.map((n) => join(SC_FIXTURES, n)), rows, values }
}

export { type CliRun, runCli } from './sensor-community.ts'

const ImportReport = z.object({
  devices: z.array(z.object({ deviceId: z.string(), model: z.string(), intervalS: z.number(), created: z.boolean() })),
  files: z.array(z.object({ file: z.string(), rows: z.number(), inserted: z.number(), duplicates: z.number() })),
})
export type ImportReport = z.infer<typeof ImportReport>

/** `skolluft import sensor-community <files> --site <site> --json`; throws unless it exits 0. */
export async function importArchive(env: Record<string, string>, files: readonly string[]): Promise<ImportReport> {
  const run = await runCli(['import', 'sensor-community', ...files, '--site', SC_SITE, '--json'], env)
  if (run.code !== 0) throw new Error(`import exited ${run.code}: ${run.output}`)
  return ImportReport.parse(JSON.parse(run.stdout))
}

export interface ImportedDataDir {
  readonly path: string
  /** Environment for the CLI: DATA_DIR. */
  readonly env: Record<string, string>
  readonly report: ImportReport
  cleanup(): Promise<void>
}

/**
 * A fresh DATA_DIR holding the Aberdeen site (registered through the storage interface, which saves a CLI start;
 * test/e2e/import-sensor-community.test.ts covers `skolluft sites import`) and the given archive files imported
 * with the real CLI.
 */
export async function importedDataDir(files: readonly string[]): Promise<ImportedDataDir> {
  const dir = await tempDir('skolluft-export-e2e-')
  try {
    const env = { DATA_DIR: dir.path }
    const storage = openSqliteStorage({ path: join(dir.path, 'skolluft.db') })
    try {
      await storage.registry.upsertSites([{ ...SC_SITE_RECORD }])
    } finally {
      await storage.close()
    }
    const report = await importArchive(env, files)
    return { path: dir.path, env, report, cleanup: dir.cleanup }
  } catch (error) {
    await dir.cleanup()
    throw error
  }
}

const TokenOutput = z.object({ token: z.string(), role: z.literal('researcher') })

/** A researcher API token made by `skolluft token create --role researcher --json`. */
export async function researcherToken(env: Record<string, string>): Promise<string> {
  const run = await runCli(['token', 'create', '--role', 'researcher', '--name', 'export e2e', '--json'], env)
  if (run.code !== 0) throw new Error(`token create exited ${run.code}: ${run.output}`)
  return TokenOutput.parse(JSON.parse(run.stdout)).token
}

export interface HttpResult {
  readonly status: number
  readonly headers: Readonly<Record<string, string | string[] | undefined>>
  readonly body: Buffer
}

/** GET with node:http, so the body arrives byte for byte as sent. */
export function httpGet(port: number, path: string, headers: Record<string, string> = {}): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, headers }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

export { pythonCsv }

/** CSV rows (header first) as records keyed by header name, so appended columns (schema v2) change nothing. */
export function csvRecords(rows: readonly (readonly string[])[]): {
  header: string[]
  records: Record<string, string>[]
} {
  const [header = [], ...data] = rows
  return {
    header: [...header],
    records: data.map((cells) => {
      if (cells.length !== header.length) throw new Error(`row of ${cells.length} cells under ${header.length} columns`)
      return Object.fromEntries(header.map((name, i) => [name, cells[i] ?? '']))
    }),
  }
}

const NdjsonObject = z.record(z.string(), z.unknown())

/** NDJSON parsed line by line with JSON.parse (LF line ends, a final LF, no empty line). */
export function ndjsonRecords(body: Buffer): Record<string, unknown>[] {
  const text = body.toString('utf8')
  if (text === '') return []
  if (!text.endsWith('\n')) throw new Error('NDJSON does not end with a line feed')
  return text
    .slice(0, -1)
    .split('\n')
    .map((line) => NdjsonObject.parse(JSON.parse(line)))
}
