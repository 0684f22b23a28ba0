import { METRICS, type Metric } from '@skolluft/core'
import { StorageError } from './errors.ts'
import type { ExportQuery } from './types.ts'

/** The asked metrics in METRICS order (every backend streams them so); StorageError INVALID_QUERY for an unknown one. */
export function exportMetrics(query: ExportQuery): Metric[] {
  for (const m of query.metrics) {
    if (!METRICS.includes(m)) throw new StorageError('INVALID_QUERY', `unknown metric ${String(m)}`)
  }
  return METRICS.filter((m) => query.metrics.includes(m))
}

/**
 * The export streams' order of (site, device) pairs: byte order of the ids (ASCII), as SQLite's BINARY collation
 * sorts them; a reading without a site sorts as the empty site id, first.
 */
export function comparePair(siteA: string, deviceA: string, siteB: string, deviceB: string): number {
  if (siteA !== siteB) return siteA < siteB ? -1 : 1
  if (deviceA !== deviceB) return deviceA < deviceB ? -1 : 1
  return 0
}
