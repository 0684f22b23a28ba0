/**
 * Child process for the multi-process claim test in sqlite-storage.test.ts: opens the database at the epoch ms
 * `openAt` (so that all children race), claims due outbox rows `batch` at a time until none is left, and prints
 * the claimed ids as one JSON array on stdout.
 * Usage: node --import tsx concurrent-claimer.fixture.ts <path> <now> <batch> <openAt>
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { openSqliteStorage } from '../index.ts'

const [path, nowText, batchText, openAtText] = process.argv.slice(2)
if (path === undefined || nowText === undefined || batchText === undefined || openAtText === undefined) {
  throw new Error('usage: concurrent-claimer.fixture.ts <path> <now> <batch> <openAt>')
}
const storage = openSqliteStorage({ path })
await sleep(Math.max(0, Number(openAtText) - Date.now() - 5))
while (Date.now() < Number(openAtText)) {
  // Spin the last few milliseconds: timers are too coarse to line the processes up.
}
const claimed: number[] = []
for (;;) {
  const rows = await storage.alerts.claimDue(Number(nowText), Number(batchText), 3_600_000)
  if (rows.length === 0) break
  claimed.push(...rows.map((row) => row.id))
}
await storage.close()
process.stdout.write(`${JSON.stringify(claimed)}\n`)
