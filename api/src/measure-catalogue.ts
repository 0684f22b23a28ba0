import type { Measure } from '@skolluft/core'
import type { Storage } from '@skolluft/storage'

/**
 * The catalogue of measures the reports suggest from (issue 7): the edited one when the municipality has saved one
 * (PUT /measures), otherwise core DEFAULT_MEASURES (the store answers with those at revision 0). Stored catalogues
 * are validated with core MeasureCatalogue on write and on read (storage/src/sqlite/measures.ts).
 */
export async function readMeasureCatalogue(storage: Pick<Storage, 'measures'>): Promise<readonly Measure[]> {
  return (await storage.measures.catalogue()).measures
}
