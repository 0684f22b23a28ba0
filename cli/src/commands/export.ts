import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { createWriteStream } from 'node:fs'
import { readFile, rename, rm, writeFile } from 'node:fs/promises'
import { buildExportRequest, ExportQueryParams, type ExportRequest, exportChunks } from '@skolluft/api'
import { EXPORT_COLUMNS, EXPORT_SCHEMA_ID } from '@skolluft/core'
import { loadConfig } from '@skolluft/runtime'
import { z } from 'zod'
import { CommonConfig } from '../config.ts'
import { withDataDir } from '../data-dir.ts'
import type { CliIo } from '../main.ts'

/**
 * `skolluft export`: the same bytes as GET /api/v1/export for the same query (it runs the API's own
 * exportChunks), written to a file on DATA_DIR's machine, plus `<file>.manifest.json` so a study can cite what
 * it used: query, schema, software version, row count, SHA-256 of the file, licence and attribution.
 * The operator owns DATA_DIR: every site, no window limit.
 */

/** Licence and attribution in the manifest until the deployment sets them (EXPORT_LICENCE, EXPORT_ATTRIBUTION). */
export const DEFAULT_EXPORT_LICENCE = 'not specified: set EXPORT_LICENCE (e.g. CC-BY-4.0) for your deployment'
export const DEFAULT_EXPORT_ATTRIBUTION =
  'skolluft air quality measurements; set EXPORT_ATTRIBUTION for your deployment'

export const ExportEnv = z.object({
  EXPORT_LICENCE: z.string().min(1).default(DEFAULT_EXPORT_LICENCE),
  EXPORT_ATTRIBUTION: z.string().min(1).default(DEFAULT_EXPORT_ATTRIBUTION),
})

/** Command-line spelling of the query: the API's parameter names, as flags. */
export interface ExportCliOptions {
  readonly out: string
  readonly params: Readonly<Record<string, string | undefined>>
}

const PackageJson = z.object({ name: z.string(), version: z.string() })

export const Manifest = z.object({
  schema: z.literal(EXPORT_SCHEMA_ID),
  file: z.string(),
  format: z.enum(['csv', 'ndjson']),
  resolution: z.enum(['raw', 'hourly', 'daily']),
  columns: z.array(z.string()),
  query: z.record(z.string(), z.string()),
  rows: z.number().int().min(0),
  bytes: z.number().int().min(0),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  software: z.object({ name: z.string(), version: z.string() }),
  /** Planned for schema v2: none are applied in v1 (values are as stored). */
  corrections: z.array(z.string()),
  threshold_profile: z.null(),
  licence: z.string(),
  attribution: z.string(),
  generated_at: z.iso.datetime(),
})
export type Manifest = z.infer<typeof Manifest>

export class ExportCommandError extends Error {
  readonly code: string

  constructor(code: string, message: string) {
    super(message)
    this.name = 'ExportCommandError'
    this.code = code
  }
}

async function softwareVersion(): Promise<z.infer<typeof PackageJson>> {
  const parsed = PackageJson.safeParse(
    JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')),
  )
  return parsed.success ? parsed.data : { name: 'skolluft', version: 'unknown' }
}

export async function runExport(
  env: NodeJS.ProcessEnv,
  io: CliIo,
  options: ExportCliOptions,
  clock: () => number = Date.now,
): Promise<number> {
  const { DATA_DIR } = loadConfig(CommonConfig, env)
  const { EXPORT_LICENCE, EXPORT_ATTRIBUTION } = loadConfig(ExportEnv, env)
  const given = Object.fromEntries(
    Object.entries(options.params).filter((e): e is [string, string] => e[1] !== undefined),
  )
  const parsed = ExportQueryParams.safeParse(given)
  if (!parsed.success) {
    const detail = parsed.error.issues.map((i) => `--${i.path.join('.') || '?'}: ${i.message}`).join('; ')
    throw new ExportCommandError('INVALID_EXPORT', detail)
  }
  const software = await softwareVersion()
  const { rows, bytes, sha256 } = await withDataDir(DATA_DIR, async (storage) => {
    let request: ExportRequest
    try {
      request = buildExportRequest(parsed.data, await storage.registry.listSites(), 'all', () => undefined)
    } catch (error) {
      throw new ExportCommandError('INVALID_EXPORT', error instanceof Error ? error.message : String(error))
    }
    return writeExport(options.out, exportChunks(storage.readings, request))
  })
  const manifest: Manifest = {
    schema: EXPORT_SCHEMA_ID,
    file: options.out.split(/[\\/]/).at(-1) ?? options.out,
    format: parsed.data.format,
    resolution: parsed.data.resolution,
    columns: [...EXPORT_COLUMNS[parsed.data.resolution]],
    query: given,
    rows,
    bytes,
    sha256,
    software,
    corrections: [],
    threshold_profile: null,
    licence: EXPORT_LICENCE,
    attribution: EXPORT_ATTRIBUTION,
    generated_at: new Date(clock()).toISOString(),
  }
  await writeFile(`${options.out}.manifest.json`, `${JSON.stringify(manifest, null, 2)}\n`)
  io.out(`${options.out}: ${rows} rows, ${bytes} bytes, sha256 ${sha256}`)
  return 0
}

/** Streams the chunks to `<out>.partial` (hashing as it goes, waiting on 'drain'), then renames it to `out`. */
async function writeExport(
  out: string,
  chunks: AsyncIterable<{ readonly text: string; readonly rows: number }>,
): Promise<{ rows: number; bytes: number; sha256: string }> {
  const partial = `${out}.partial`
  const file = createWriteStream(partial)
  const hash = createHash('sha256')
  let rows = 0
  let bytes = 0
  try {
    for await (const chunk of chunks) {
      const buffer = Buffer.from(chunk.text, 'utf8')
      hash.update(buffer)
      rows += chunk.rows
      bytes += buffer.length
      if (!file.write(buffer)) await once(file, 'drain')
    }
    file.end()
    await once(file, 'close')
    await rename(partial, out)
  } catch (error) {
    file.destroy()
    await rm(partial, { force: true })
    throw error
  }
  return { rows, bytes, sha256: hash.digest('hex') }
}
