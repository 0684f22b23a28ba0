import { readFileSync } from 'node:fs'
import { expect } from 'vitest'

/**
 * Test support (imported by tests only): a Markdown table that the code generates must stand in a doc unchanged.
 * Compared cell by cell, because the formatter (biome) realigns the columns of tables in the docs.
 */

/** Every table row of `markdown` as its trimmed cells joined by '|' (separator rows left out). */
export function markdownRows(markdown: string): string[] {
  return markdown
    .split('\n')
    .filter((line) => line.startsWith('|') && !/^\|\s*-/.test(line))
    .map((line) =>
      line
        .split('|')
        .slice(1, -1)
        .map((cell) => cell.trim())
        .join('|'),
    )
}

/** Reads the doc at `docUrl` and expects each generated `tables` to appear in it, row for row. Returns the doc. */
export function expectTablesInDoc(docUrl: URL, tables: readonly string[]): string {
  const doc = readFileSync(docUrl, 'utf8')
  const inDoc = markdownRows(doc)
  for (const table of tables) {
    const expected = markdownRows(table)
    const start = inDoc.indexOf(expected[0] ?? '')
    expect(start, `${docUrl.pathname} has the table starting ${expected[0]}`).toBeGreaterThanOrEqual(0)
    expect(inDoc.slice(start, start + expected.length)).toEqual(expected)
  }
  return doc
}
