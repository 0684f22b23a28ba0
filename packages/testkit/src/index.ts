import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'

/** A fresh directory under the OS temp dir; `cleanup` removes it. */
export async function tempDir(prefix = 'skolluft-test-'): Promise<{ path: string; cleanup: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix))
  return { path, cleanup: () => rm(path, { recursive: true, force: true }) }
}

/**
 * Polls `check` until it returns a truthy value or `timeoutMs` passes; then throws with `what`,
 * so a failing integration test says what it was waiting for.
 */
export async function waitFor<T>(
  check: () => T | Promise<T>,
  what: string,
  { timeoutMs = 10_000, intervalMs = 25 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const value = await check()
      if (value) return value as NonNullable<T>
    } catch (error) {
      last = error
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}`,
      )
    }
    await sleep(intervalMs)
  }
}

export { closedPort } from './net.ts'
export * from './python-csv.ts'
export {
  decodeEncodedWords,
  type ParsedMail,
  parseMail,
  type ReceivedMail,
  type SmtpMode,
  type SmtpStage,
  startSmtpServer,
  type TestSmtpServer,
} from './smtp.ts'
