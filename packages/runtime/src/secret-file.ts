import { randomBytes } from 'node:crypto'
import { chmod, open, readFile, rename, rm } from 'node:fs/promises'

/**
 * Files that hold plain-text secrets (service credentials, simulator device secrets): written
 * atomically (temporary file opened 0600, fsync, rename), so a crash never leaves half a file,
 * and re-tightened to 0600 when read, so a copy or restore with looser permissions is fixed.
 */
export async function writeSecretFile(path: string, text: string): Promise<void> {
  const temporary = `${path}.${randomBytes(6).toString('hex')}.tmp`
  const handle = await open(temporary, 'wx', 0o600)
  try {
    await handle.writeFile(text)
    await handle.sync()
  } finally {
    await handle.close()
  }
  try {
    await rename(temporary, path)
  } catch (error) {
    await rm(temporary, { force: true })
    throw error
  }
}

/** Reads a secret file, or returns undefined if it does not exist. */
export async function readSecretFile(path: string): Promise<string | undefined> {
  try {
    const text = await readFile(path, 'utf8')
    await chmod(path, 0o600)
    return text
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw error
  }
}

/** Parses JSON from a secret file with a message that says which file and what to do. */
export function parseSecretJson(path: string, text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    throw new Error(`${path} is not valid JSON; delete it and restart to regenerate it`)
  }
}
