import { createHash, type Hash } from 'node:crypto'
import { once } from 'node:events'
import { createReadStream, createWriteStream } from 'node:fs'
import { open, rename, rm, stat, writeFile } from 'node:fs/promises'
import { READING_QC_VERSION } from '@skolluft/core'
import {
  buildExportRequest,
  buildManifest,
  type ExportChunk,
  ExportEnv,
  ExportQueryParams,
  type ExportRequest,
  type ExportSources,
  exportChunks,
  loadExportCorrections,
  newExportStats,
  softwareVersion,
} from '@skolluft/export'
import { loadConfig } from '@skolluft/runtime'
import { CommonConfig } from '../config.ts'
import { withDataDir } from '../data-dir.ts'
import type { CliIo } from '../main.ts'

/**
 * `skolluft export`: the same bytes as GET /api/v1/export for the same query (both run @skolluft/export's
 * pipeline), written to a file on DATA_DIR's machine, plus `<file>.manifest.json` so a study can cite what it
 * used: query, schema, software version, row count, SHA-256 of the file, corrections, licence and attribution.
 * The operator owns DATA_DIR: every site, no window limit.
 *
 * The file grows as `<file>.partial` and is renamed when complete. An interrupted run leaves the partial file;
 * `--resume` keeps its complete lines and continues after the last one (the export's `after`), so the finished
 * file is identical to an uninterrupted run's. Parquet cannot be appended to: it starts over.
 */

/** Command-line spelling of the query: the API's parameter names, as flags. */
export interface ExportCliOptions {
  readonly out: string
  readonly params: Readonly<Record<string, string | undefined>>
  /** Continue `<out>.partial` instead of starting over. */
  readonly resume?: boolean
}

export class ExportCommandError extends Error {
  readonly code: string

  constructor(code: string, message: string) {
    super(message)
    this.name = 'ExportCommandError'
    this.code = code
  }
}

/** What a resumed file already holds: its complete lines, hashed, and the key of the last row. */
interface Resumed {
  readonly bytes: number
  readonly rows: number
  readonly hash: Hash
  /** `after` for the export: the first cells of the last row; undefined when the file holds no row yet. */
  readonly after: string | undefined
}

export async function runExport(
  env: NodeJS.ProcessEnv,
  io: CliIo,
  options: ExportCliOptions,
  clock: () => number = Date.now,
): Promise<number> {
  const config = loadConfig(CommonConfig, env)
  const exportEnv = loadConfig(ExportEnv, env)
  const given = Object.fromEntries(
    Object.entries(options.params).filter((e): e is [string, string] => e[1] !== undefined),
  )
  const parsed = ExportQueryParams.safeParse(given)
  if (!parsed.success) {
    const detail = parsed.error.issues.map((i) => `--${i.path.join('.') || '?'}: ${i.message}`).join('; ')
    throw new ExportCommandError('INVALID_EXPORT', detail)
  }
  if (parsed.data.after !== undefined) {
    throw new ExportCommandError('INVALID_EXPORT', '--after is not an option here: use --resume')
  }
  const software = await softwareVersion()
  const partial = `${options.out}.partial`
  const resumed =
    options.resume === true && parsed.data.format !== 'parquet' ? await readPartial(partial, parsed.data) : undefined
  const result = await withDataDir(config, async (storage) => {
    let request: ExportRequest
    try {
      request = buildExportRequest(
        resumed?.after === undefined ? parsed.data : { ...parsed.data, after: resumed.after },
        await storage.registry.listSites(),
        'all',
        () => undefined,
      )
    } catch (error) {
      throw new ExportCommandError('INVALID_EXPORT', error instanceof Error ? error.message : String(error))
    }
    const corrections = request.values === 'corrected' ? await loadExportCorrections(storage) : undefined
    const sources: ExportSources = {
      readings: storage.readings,
      ...(corrections === undefined ? {} : { correctorFor: corrections.correctorFor }),
    }
    const stats = newExportStats()
    const chunks = exportChunks(sources, request, { createdBy: `${software.name} ${software.version}`, stats })
    const written = await writeExport(partial, chunks, resumed)
    return { ...written, stats, corrections: corrections?.describe(stats.corrections) ?? [], request }
  })
  await rename(partial, options.out)
  const manifest = buildManifest({
    request: result.request,
    // The query as given: a resumed file is the same file as an uninterrupted run's.
    query: given,
    file: options.out.split(/[\\/]/).at(-1) ?? options.out,
    rows: result.rows,
    bytes: result.bytes,
    sha256: result.sha256,
    software,
    corrections: result.corrections,
    qualityChecks: `skolluft reading QC v${READING_QC_VERSION} (docs/quality-flags.md)`,
    env: exportEnv,
    generatedAt: clock(),
  })
  await writeFile(`${options.out}.manifest.json`, `${JSON.stringify(manifest, null, 2)}\n`)
  const note = resumed === undefined ? '' : ` (resumed after ${resumed.rows} rows)`
  io.out(`${options.out}: ${result.rows} rows, ${result.bytes} bytes, sha256 ${result.sha256}${note}`)
  return 0
}

/**
 * The complete part of an interrupted text export: everything up to its last line end (the tail after it is cut
 * off), hashed, with the key of its last row as the export's `after`. Undefined when there is no partial file.
 */
async function readPartial(partial: string, q: ExportQueryParams): Promise<Resumed | undefined> {
  const size = await stat(partial).then(
    (s) => s.size,
    () => undefined,
  )
  if (size === undefined) return undefined
  const hash = createHash('sha256')
  let bytes = 0
  let lineStart = 0
  let lastLine = ''
  let lines = 0
  let carry: Buffer<ArrayBufferLike> = Buffer.alloc(0)
  for await (const piece of createReadStream(partial)) {
    const buffer = Buffer.concat([carry, piece as Buffer])
    let start = 0
    for (let i = buffer.indexOf(0x0a); i >= 0; i = buffer.indexOf(0x0a, start)) {
      const line = buffer.subarray(start, i + 1)
      hash.update(line)
      bytes += line.length
      lines++
      lastLine = line.toString('utf8')
      start = i + 1
      lineStart = bytes
    }
    carry = buffer.subarray(start)
  }
  // Cut an incomplete last line: it is written again.
  const handle = await open(partial, 'r+')
  try {
    await handle.truncate(lineStart)
  } finally {
    await handle.close()
  }
  const headerLines = q.format === 'csv' ? 1 : 0
  const rows = Math.max(0, lines - headerLines)
  if (rows === 0) {
    // Nothing worth keeping but (maybe) a header: start over.
    await rm(partial, { force: true })
    return undefined
  }
  const keyCells = q.resolution === 'raw' ? 4 : 3
  let after: string
  if (q.format === 'csv') {
    // Key cells (a time, ids and a metric) never need quoting (RFC 4180 quotes only commas, quotes, line breaks).
    after = lastLine
      .replace(/\r?\n$/, '')
      .split(',')
      .slice(0, keyCells)
      .join(',')
  } else {
    const row: unknown = JSON.parse(lastLine)
    if (typeof row !== 'object' || row === null) {
      throw new ExportCommandError('BAD_PARTIAL', `${partial}: the last line is not an export row; remove the file`)
    }
    after = Object.values(row)
      .slice(0, keyCells)
      .map((v) => (v === null ? '' : String(v)))
      .join(',')
  }
  return { bytes, rows, hash, after }
}

/**
 * Streams the chunks to `partial` (hashing as it goes, waiting on 'drain'), appending to what a resumed run kept.
 * On failure the partial file stays for --resume.
 */
async function writeExport(
  partial: string,
  chunks: AsyncIterable<ExportChunk>,
  resumed: Resumed | undefined,
): Promise<{ rows: number; bytes: number; sha256: string }> {
  const file = createWriteStream(partial, { flags: resumed === undefined ? 'w' : 'a' })
  const hash = resumed?.hash ?? createHash('sha256')
  let rows = resumed?.rows ?? 0
  let bytes = resumed?.bytes ?? 0
  try {
    for await (const chunk of chunks) {
      const buffer = typeof chunk.data === 'string' ? Buffer.from(chunk.data, 'utf8') : chunk.data
      hash.update(buffer)
      rows += chunk.rows
      bytes += buffer.length
      if (!file.write(buffer)) await once(file, 'drain')
    }
    file.end()
    await once(file, 'close')
  } catch (error) {
    file.destroy()
    throw new ExportCommandError(
      'EXPORT_INTERRUPTED',
      `${error instanceof Error ? error.message : String(error)}; the rows written so far are in ${partial}: run the same command with --resume to continue`,
    )
  }
  return { rows, bytes, sha256: hash.digest('hex') }
}
