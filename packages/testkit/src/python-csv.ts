import { spawnSync } from 'node:child_process'
import { z } from 'zod'

const CsvRows = z.array(z.array(z.string()))

/**
 * Parses CSV with Python's csv module (an independent RFC 4180 reader, strict), after checking there is no BOM
 * and every line ends in CRLF. Fails clearly without python3.
 */
export function pythonCsv(body: Buffer): string[][] {
  const script = [
    'import csv, io, json, sys',
    'data = sys.stdin.buffer.read()',
    "assert not data.startswith(b'\\xef\\xbb\\xbf'), 'BOM'",
    "text = data.decode('utf-8')",
    "lines = text.split('\\r\\n')",
    "assert lines[-1] == '' and all('\\n' not in l for l in lines), 'line ends are not CRLF'",
    "json.dump(list(csv.reader(io.StringIO(text, newline=''), strict=True)), sys.stdout)",
  ].join('\n')
  const run = spawnSync('python3', ['-c', script], { input: body, maxBuffer: 256 * 1024 * 1024 })
  if (run.error !== undefined) {
    throw new Error(`python3 is needed to read the CSV back independently (${run.error.message}); install python3`)
  }
  if (run.status !== 0) throw new Error(`python3 csv reader failed: ${run.stderr.toString()}`)
  return CsvRows.parse(JSON.parse(run.stdout.toString()))
}
