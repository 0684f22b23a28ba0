import { spawnSync } from 'node:child_process'

/**
 * Running the loading examples of docs/export.md: the fenced code blocks of the Markdown, and the interpreters
 * that run them (python3 with pandas, Rscript with readr and jsonlite; Debian packages python3-pandas,
 * r-base-core, r-cran-readr, r-cran-jsonlite, installed by .ci/run).
 *
 * Without them the tests are skipped with the reason printed, so `npm test` stays usable on a machine without
 * R, unless SKOLLUFT_REQUIRE_DOC_EXAMPLES=1 (set by .ci/run), where a missing interpreter fails the run instead
 * of skipping silently past the proof (the same rule as SKOLLUFT_REQUIRE_BROWSER, test/support/browser.ts).
 */

export interface FencedBlock {
  /** The info string's first word, lower case ('' when none). */
  readonly lang: string
  readonly code: string
  /** The `## ` heading the block stands under ('' before the first). */
  readonly section: string
  /** 1-based line of the opening fence. */
  readonly line: number
}

const FENCE_OPEN = /^ {0,3}(`{3,}|~{3,})[ \t]*([^\s`]*)[^`]*$/

/** The fenced code blocks of a CommonMark document (backtick or tilde fences; indented code blocks are not read). */
export function fencedBlocks(markdown: string): FencedBlock[] {
  const lines = markdown.split(/\r?\n/)
  const blocks: FencedBlock[] = []
  let section = ''
  let open: { fence: string; lang: string; line: number; indent: number; body: string[] } | undefined
  for (const [i, line] of lines.entries()) {
    if (open !== undefined) {
      const close = /^ {0,3}(`{3,}|~{3,})[ \t]*$/.exec(line)
      const fence = close?.[1]
      if (fence !== undefined && fence[0] === open.fence[0] && fence.length >= open.fence.length) {
        blocks.push({ lang: open.lang, code: `${open.body.join('\n')}\n`, section, line: open.line })
        open = undefined
      } else {
        // CommonMark: up to the opening fence's indentation is removed from each content line.
        open.body.push(line.replace(new RegExp(`^ {0,${open.indent}}`), ''))
      }
      continue
    }
    const start = FENCE_OPEN.exec(line)
    if (start?.[1] !== undefined) {
      open = {
        fence: start[1],
        lang: (start[2] ?? '').toLowerCase(),
        line: i + 1,
        indent: line.length - line.trimStart().length,
        body: [],
      }
      continue
    }
    const heading = /^ {0,3}## +(.*?)[ #]*$/.exec(line)
    if (heading !== null) section = heading[1] ?? ''
  }
  if (open !== undefined) throw new Error(`unclosed code fence opened at line ${open.line}`)
  return blocks
}

function runs(command: string, args: readonly string[]): boolean {
  const result = spawnSync(command, args, { stdio: 'ignore', timeout: 60_000 })
  return result.error === undefined && result.status === 0
}

function unavailable(what: string, reason: string): undefined {
  if (process.env.SKOLLUFT_REQUIRE_DOC_EXAMPLES === '1') {
    throw new Error(`docs/export.md ${what} examples required but ${reason}`)
  }
  console.warn(`SKIPPING docs/export.md ${what} examples: ${reason}`)
  return undefined
}

/**
 * A python3 that imports pandas: SKOLLUFT_PYTHON if set, else `python3` on PATH, else Debian's /usr/bin/python3
 * (where python3-pandas installs, when PATH leads to another Python first, e.g. pyenv's).
 */
export function pythonWithPandas(): string | undefined {
  const candidates = process.env.SKOLLUFT_PYTHON ? [process.env.SKOLLUFT_PYTHON] : ['python3', '/usr/bin/python3']
  const found = candidates.find((python) => runs(python, ['-c', 'import pandas']))
  return (
    found ??
    unavailable(
      'Python',
      `no python3 with pandas (tried ${candidates.join(', ')}; Debian: apt-get install -y python3-pandas, or set SKOLLUFT_PYTHON)`,
    )
  )
}

/** An Rscript with readr and jsonlite: SKOLLUFT_RSCRIPT if set, else `Rscript` on PATH. */
export function rscriptWithPackages(): string | undefined {
  const rscript = process.env.SKOLLUFT_RSCRIPT ?? 'Rscript'
  if (runs(rscript, ['-e', 'library(readr); library(jsonlite)'])) return rscript
  return unavailable(
    'R',
    `no ${rscript} with readr and jsonlite (Debian: apt-get install -y r-base-core r-cran-readr r-cran-jsonlite, or set SKOLLUFT_RSCRIPT)`,
  )
}
