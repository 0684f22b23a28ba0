import { join } from 'node:path'
import { DEFAULT_MEASURES } from '@skolluft/core'
import { createLogger, silentLogger } from '@skolluft/runtime'
import { openSqliteStorage } from '@skolluft/storage'
import { tempDir } from '@skolluft/testkit'
import Database from 'better-sqlite3'
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { readMeasureCatalogue } from './measure-catalogue.ts'

describe('readMeasureCatalogue', () => {
  it('gives the default catalogue until one is saved, then the saved one', async () => {
    const dir = await tempDir('skolluft-measure-catalogue-')
    const storage = openSqliteStorage({ path: join(dir.path, 'skolluft.db') })
    try {
      expect(await readMeasureCatalogue(storage, silentLogger())).toEqual(DEFAULT_MEASURES)
      const edited = DEFAULT_MEASURES.slice(1)
      await storage.measures.saveCatalogue(edited, { expectedRevision: 0, by: 'test', at: 1 })
      expect(await readMeasureCatalogue(storage, silentLogger())).toEqual(edited)
    } finally {
      await storage.close()
      await dir.cleanup()
    }
  })

  it('falls back to the default catalogue, and logs why, when the stored one fails this version’s checks', async () => {
    const dir = await tempDir('skolluft-measure-catalogue-')
    const path = join(dir.path, 'skolluft.db')
    const storage = openSqliteStorage({ path })
    const lines: string[] = []
    const log = createLogger({ level: 'debug', destination: { write: (line: string) => void lines.push(line) } })
    try {
      await storage.measures.saveCatalogue(DEFAULT_MEASURES.slice(1), { expectedRevision: 0, by: 'test', at: 1 })
      // As a catalogue saved by an older version would look to a newer one with a longer list of forbidden words:
      // written straight into the file, past the checks.
      const stale = DEFAULT_MEASURES.slice(1).map((m, i) =>
        i === 0 ? { ...m, name: { sv: 'Detta bevisar allt', en: m.name.en } } : m,
      )
      const raw = new Database(path)
      raw.prepare('UPDATE measure_catalogue SET measures = ? WHERE id = 1').run(JSON.stringify(stale))
      raw.close()
      await expect(storage.measures.catalogue()).rejects.toMatchObject({ code: 'CORRUPT_ROW' })
      expect(await readMeasureCatalogue(storage, log)).toEqual(DEFAULT_MEASURES)
      const LogLine = z.object({ level: z.number(), msg: z.string(), code: z.string().optional() })
      const logged = lines.map((line) => LogLine.parse(JSON.parse(line)))
      expect(logged).toContainEqual(
        expect.objectContaining({ level: 50, code: 'CORRUPT_ROW', msg: expect.stringMatching(/default catalogue/) }),
      )
    } finally {
      await storage.close()
      await dir.cleanup()
    }
  })
})
