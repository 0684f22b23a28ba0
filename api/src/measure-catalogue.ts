import { DEFAULT_MEASURES, type Measure } from '@skolluft/core'
import type { Logger } from '@skolluft/runtime'
import { type Storage, StorageError } from '@skolluft/storage'

/**
 * The catalogue of measures the reports suggest from (issue 7): the edited one when the municipality has saved one
 * (PUT /measures), otherwise core DEFAULT_MEASURES (the store answers with those at revision 0). Stored catalogues
 * are validated with core MeasureCatalogue on write and on read (storage/src/sqlite/measures.ts).
 *
 * A stored catalogue this version's checks refuse (a catalogue saved before a check was added, e.g. a new forbidden
 * word) does not take the reports down with it: they suggest from the default catalogue, and the error is logged
 * for the operator, until an admin saves a catalogue again (GET /measures keeps answering 500, logged with the reason).
 */
export async function readMeasureCatalogue(
  storage: Pick<Storage, 'measures'>,
  log: Pick<Logger, 'error'>,
): Promise<readonly Measure[]> {
  try {
    return (await storage.measures.catalogue()).measures
  } catch (error) {
    if (!(error instanceof StorageError && error.code === 'CORRUPT_ROW')) throw error
    log.error(
      { code: error.code, reason: error.message },
      'the stored catalogue of measures fails this version’s checks; reports suggest from the default catalogue until an admin saves the catalogue again',
    )
    return DEFAULT_MEASURES
  }
}
