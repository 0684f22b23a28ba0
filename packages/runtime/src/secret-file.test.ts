import { chmod, readdir, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { tempDir } from '@skolluft/testkit'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { parseSecretJson, readSecretFile, writeSecretFile } from './secret-file.ts'

describe('secret files (real files in a temp dir)', () => {
  let dir: { path: string; cleanup: () => Promise<void> }
  beforeEach(async () => {
    dir = await tempDir()
  })
  afterEach(async () => {
    await dir.cleanup()
  })

  it('writes with mode 0600 and leaves no temporary file behind', async () => {
    const path = join(dir.path, 'creds.json')
    await writeSecretFile(path, '{"a":1}')
    await writeSecretFile(path, '{"a":2}')
    expect((await stat(path)).mode & 0o777).toBe(0o600)
    expect(await readdir(dir.path)).toEqual(['creds.json'])
    expect(await readSecretFile(path)).toBe('{"a":2}')
  })

  it('tightens a file with looser permissions when it reads it, and reports a missing one as undefined', async () => {
    const path = join(dir.path, 'restored.json')
    await writeFile(path, '{}')
    await chmod(path, 0o644)
    await readSecretFile(path)
    expect((await stat(path)).mode & 0o777).toBe(0o600)
    expect(await readSecretFile(join(dir.path, 'absent.json'))).toBeUndefined()
  })

  it('says which file is broken and how to recover', () => {
    expect(() => parseSecretJson('/data/creds.json', '{"trunc')).toThrow(/\/data\/creds\.json .*delete it/)
  })
})
