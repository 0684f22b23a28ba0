import type { CliIo } from './main.ts'

/** Epoch ms as ISO 8601 UTC, null when there is no time. */
export function isoOrNull(ms: number | null | undefined): string | null {
  return ms === null || ms === undefined ? null : new Date(ms).toISOString()
}

/**
 * Prints a list as the `list` commands do: one JSON array with --json, otherwise a tab-separated table
 * with a header line, or `empty` when there is nothing to show.
 */
export function printRows<R>(
  io: CliIo,
  rows: readonly R[],
  table: {
    readonly json: boolean
    readonly empty: string
    readonly header: readonly string[]
    readonly cells: (row: R) => readonly string[]
  },
): number {
  if (table.json) io.out(JSON.stringify(rows))
  else if (rows.length === 0) io.out(table.empty)
  else {
    io.out(table.header.join('\t'))
    for (const row of rows) io.out(table.cells(row).join('\t'))
  }
  return 0
}
