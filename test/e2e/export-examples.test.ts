import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { tempDir } from '@skolluft/testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { fencedBlocks, pythonWithPandas, rscriptWithPackages } from '../support/export-doc-examples.ts'
import {
  csvRecords,
  type ImportedDataDir,
  importedDataDir,
  ndjsonRecords,
  pythonCsv,
  readArchive,
  runCli,
  SC_FROM,
  SC_TO,
} from '../support/export-fixtures.ts'

/**
 * The loading examples of docs/export.md run as written: the ```python and ```r blocks are taken from the
 * Markdown (so this test follows the doc), the export files they name (january.csv, hourly.ndjson, …) are written
 * by a real `skolluft export --out` of the real Sensor.Community fixtures, and the snippets run in python3
 * (pandas) and Rscript (readr, jsonlite) with a few checks of ours appended: row counts and values must equal what
 * the files hold, read here independently (Python's csv module, JSON.parse). Skipped with the reason printed when
 * an interpreter is missing, failing instead under SKOLLUFT_REQUIRE_DOC_EXAMPLES=1 (.ci/run).
 */

const DOC = fileURLToPath(new URL('../../docs/export.md', import.meta.url))
const blocks = fencedBlocks(readFileSync(DOC, 'utf8'))
/** All blocks of a language in document order, as one script (later blocks may use what earlier ones loaded). */
const script = (lang: string) =>
  blocks
    .filter((b) => b.lang === lang)
    .map((b) => b.code)
    .join('\n')
const PYTHON_SNIPPETS = script('python')
const R_SNIPPETS = script('r')

/** Export file names the snippets read ("january.csv", 'hourly.ndjson'). */
function fileNames(code: string): string[] {
  return [...code.matchAll(/["']([\w.-]+\.(?:csv|ndjson))["']/g)].flatMap((m) => (m[1] === undefined ? [] : [m[1]]))
}
const FILES = [...new Set([...fileNames(PYTHON_SNIPPETS), ...fileNames(R_SNIPPETS)])].sort()

/** What a file name asks for: the resolution it names (raw unless it says hourly or daily), the format its extension. */
function exportFor(name: string): { resolution: 'raw' | 'hourly' | 'daily'; format: 'csv' | 'ndjson' } {
  const resolution = name.includes('hourly') ? 'hourly' : name.includes('daily') ? 'daily' : 'raw'
  return { resolution, format: name.endsWith('.ndjson') ? 'ndjson' : 'csv' }
}

const python = pythonWithPandas()
const rscript = rscriptWithPackages()

/** Runs a script file in the export directory; its check line is `SKOLLUFT_CHECK <json>`. */
function runScript(command: string, file: string, cwd: string): unknown {
  const run = spawnSync(command, [file], { cwd, encoding: 'utf8', timeout: 120_000, maxBuffer: 64 * 1024 * 1024 })
  if (run.error !== undefined) throw run.error
  const output = `${run.stdout}\n${run.stderr}`
  expect(run.status, output).toBe(0)
  const line = run.stdout.split('\n').find((l) => l.startsWith('SKOLLUFT_CHECK '))
  if (line === undefined) throw new Error(`no check line in the output:\n${output}`)
  return JSON.parse(line.slice('SKOLLUFT_CHECK '.length))
}

/** Text of a double that reads back exactly (R prints with %.17g; Python's repr is already the shortest). */
const Double = z.union([z.number(), z.string().transform((s) => Number(s))])

let data: ImportedDataDir
let out: { path: string; cleanup: () => Promise<void> }
/** The exported files as independent readers see them, by name. */
const csv = new Map<string, Record<string, string>[]>()
const ndjson = new Map<string, Record<string, unknown>[]>()

describe.runIf(python !== undefined || rscript !== undefined)('docs/export.md loading examples', () => {
  beforeAll(async () => {
    data = await importedDataDir(readArchive().files)
    out = await tempDir('skolluft-doc-examples-')
    // The files the snippets name, written by the real CLI side by side (read-only on DATA_DIR).
    const runs = await Promise.all(
      FILES.map((name) => {
        const { resolution, format } = exportFor(name)
        return runCli(
          [
            'export',
            '--resolution',
            resolution,
            '--format',
            format,
            '--from',
            SC_FROM,
            '--to',
            SC_TO,
            '--out',
            join(out.path, name),
          ],
          data.env,
        )
      }),
    )
    for (const [i, run] of runs.entries()) expect(run.code, `${FILES[i]}: ${run.output}`).toBe(0)
    for (const name of FILES) {
      const body = await readFile(join(out.path, name))
      if (exportFor(name).format === 'csv') csv.set(name, csvRecords(pythonCsv(body)).records)
      else ndjson.set(name, ndjsonRecords(body))
    }
  }, 90_000)

  afterAll(async () => {
    await out?.cleanup()
    await data?.cleanup()
  })

  it('the doc has Python and R loading examples reading real export files', () => {
    expect(blocks.filter((b) => b.lang === 'python').map((b) => b.section)).toContain('Loading an export')
    expect(blocks.filter((b) => b.lang === 'r').map((b) => b.section)).toContain('Loading an export')
    expect(FILES).toEqual(expect.arrayContaining(['january.csv', 'hourly.ndjson', 'hourly.csv']))
  })

  it.runIf(python !== undefined)(
    'the Python (pandas) example loads january.csv and hourly.ndjson as exported',
    async () => {
      const file = join(out.path, 'examples.py')
      await writeFile(
        file,
        `${PYTHON_SNIPPETS}
# --- checks appended by test/e2e/export-examples.test.ts ---
import json as _json
_first_wide = wide.iloc[0]
print("SKOLLUFT_CHECK " + _json.dumps({
    "raw_rows": len(raw),
    "raw_first": [raw["time"].iloc[0].strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z", str(raw["time"].dt.tz),
                  raw["device_id"].iloc[0], raw["metric"].iloc[0], float(raw["value"].iloc[0])],
    "raw_last_value": float(raw["value"].iloc[-1]),
    "id_dtypes": [str(raw["site_id"].dtype), str(raw["device_id"].dtype)],
    "wide_rows": len(wide),
    "wide_first": [_first_wide.name[0].strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z", _first_wide.name[2],
                   {k: float(v) for k, v in _first_wide.items() if v == v}],
    "hourly_rows": len(hourly),
    "hourly_first": [hourly["time"].iloc[0].strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z", str(hourly["time"].dt.tz),
                     hourly["metric"].iloc[0], float(hourly["mean"].iloc[0])],
    "valid_pm25_rows": len(valid_pm25),
}))
`,
      )
      const check = z
        .strictObject({
          raw_rows: z.number(),
          raw_first: z.tuple([z.string(), z.string(), z.string(), z.string(), z.number()]),
          raw_last_value: z.number(),
          id_dtypes: z.tuple([z.string(), z.string()]),
          wide_rows: z.number(),
          wide_first: z.tuple([z.string(), z.string(), z.record(z.string(), z.number())]),
          hourly_rows: z.number(),
          hourly_first: z.tuple([z.string(), z.string(), z.string(), z.number()]),
          valid_pm25_rows: z.number(),
        })
        .parse(runScript(python ?? 'python3', file, out.path))

      const raw = csv.get('january.csv') ?? []
      const hourly = ndjson.get('hourly.ndjson') ?? []
      expect(raw.length).toBeGreaterThan(0)
      const first = raw[0] ?? {}
      expect(check.raw_rows).toBe(raw.length)
      expect(check.raw_first).toEqual([first.time, 'UTC', first.device_id, first.metric, Number(first.value)])
      expect(check.raw_last_value).toBe(Number(raw.at(-1)?.value))
      expect(check.id_dtypes).toEqual(['string', 'string'])
      // The wide table: one row per (time, site, device), its first row the earliest reading with all its metrics.
      const readings = new Map<string, Record<string, number>>()
      for (const r of raw) {
        const k = `${r.time} ${r.site_id} ${r.device_id}`
        readings.set(k, { ...readings.get(k), [r.metric ?? '']: Number(r.value) })
      }
      expect(check.wide_rows).toBe(readings.size)
      const earliest = [...readings.keys()].sort()[0] ?? ''
      const [time, , device] = earliest.split(' ')
      expect(check.wide_first).toEqual([time, device, readings.get(earliest)])

      const h0 = hourly[0] ?? {}
      expect(check.hourly_rows).toBe(hourly.length)
      expect(check.hourly_first).toEqual([h0.time, 'UTC', h0.metric, h0.mean])
      expect(check.valid_pm25_rows).toBe(hourly.filter((h) => h.metric === 'pm25' && h.valid === true).length)
      expect(check.valid_pm25_rows).toBeGreaterThan(0)
    },
  )

  it.runIf(rscript !== undefined)(
    'the R (readr, jsonlite) example loads january.csv, hourly.csv and hourly.ndjson as exported',
    async () => {
      const file = join(out.path, 'examples.R')
      await writeFile(
        file,
        `${R_SNIPPETS}
# --- checks appended by test/e2e/export-examples.test.ts ---
.iso <- function(t) format(t, "%Y-%m-%dT%H:%M:%OS3Z", tz = "UTC")
.num <- function(x) sprintf("%.17g", x)
cat("SKOLLUFT_CHECK", as.character(jsonlite::toJSON(list(
  raw_rows = nrow(raw),
  raw_problems = nrow(problems(raw)),
  raw_na = sum(is.na(raw[, c("time", "site_id", "device_id", "metric", "value", "unit")])),
  raw_first = c(.iso(raw$time[1]), attr(raw$time, "tzone"), raw$device_id[1], raw$metric[1], .num(raw$value[1])),
  raw_last_value = .num(raw$value[nrow(raw)]),
  hourly_rows = nrow(hourly),
  hourly_problems = nrow(problems(hourly)),
  hourly_na = sum(is.na(hourly[, c("time", "site_id", "metric", "min", "max", "n", "expected", "coverage", "valid")])),
  hourly_first = c(.iso(hourly$time[1]), hourly$metric[1], .num(hourly$mean[1]), .num(hourly$expected[1]), hourly$n[1]),
  valid_hours = nrow(valid_hours),
  json_rows = nrow(hourly_json),
  json_first = c(.iso(hourly_json$time[1]), hourly_json$metric[1], .num(hourly_json$mean[1]))
), auto_unbox = TRUE)), "\\n")
`,
      )
      const check = z
        .strictObject({
          raw_rows: z.number(),
          raw_problems: z.number(),
          raw_na: z.number(),
          raw_first: z.tuple([z.string(), z.string(), z.string(), z.string(), Double]),
          raw_last_value: Double,
          hourly_rows: z.number(),
          hourly_problems: z.number(),
          hourly_na: z.number(),
          hourly_first: z.tuple([z.string(), z.string(), Double, Double, z.string()]),
          valid_hours: z.number(),
          json_rows: z.number(),
          json_first: z.tuple([z.string(), z.string(), Double]),
        })
        .parse(runScript(rscript ?? 'Rscript', file, out.path))

      const raw = csv.get('january.csv') ?? []
      const hourly = csv.get('hourly.csv') ?? []
      const hourlyJson = ndjson.get('hourly.ndjson') ?? []
      const first = raw[0] ?? {}
      expect([check.raw_rows, check.raw_problems, check.raw_na]).toEqual([raw.length, 0, 0])
      expect(check.raw_first).toEqual([first.time, 'UTC', first.device_id, first.metric, Number(first.value)])
      expect(check.raw_last_value).toBe(Number(raw.at(-1)?.value))

      const h0 = hourly[0] ?? {}
      // Every column parsed: no readr problem, no missing value where the export has one.
      expect([check.hourly_rows, check.hourly_problems, check.hourly_na]).toEqual([hourly.length, 0, 0])
      expect(check.hourly_first).toEqual([h0.time, h0.metric, Number(h0.mean), Number(h0.expected), h0.n])
      expect(check.valid_hours).toBe(hourly.filter((h) => h.valid === 'true').length)
      expect(check.valid_hours).toBeGreaterThan(0)

      const j0 = hourlyJson[0] ?? {}
      expect(check.json_rows).toBe(hourlyJson.length)
      expect(check.json_first).toEqual([j0.time, j0.metric, j0.mean])
    },
  )
})
