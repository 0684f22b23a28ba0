import { join } from 'node:path'
import { DEFAULT_MEASURES } from '@skolluft/core'
import { openSqliteStorage } from '@skolluft/storage'
import { tempDir } from '@skolluft/testkit'
import { describe, expect, it } from 'vitest'
import { readMeasureCatalogue } from './measure-catalogue.ts'

describe('readMeasureCatalogue', () => {
  it('gives the default catalogue until one is saved, then the saved one', async () => {
    const dir = await tempDir('skolluft-measure-catalogue-')
    const storage = openSqliteStorage({ path: join(dir.path, 'skolluft.db') })
    try {
      expect(await readMeasureCatalogue(storage)).toEqual(DEFAULT_MEASURES)
      const edited = DEFAULT_MEASURES.slice(1)
      await storage.measures.saveCatalogue(edited, { expectedRevision: 0, by: 'test', at: 1 })
      expect(await readMeasureCatalogue(storage)).toEqual(edited)
    } finally {
      await storage.close()
      await dir.cleanup()
    }
  })
})
