/**
 * Child process for the multi-process test in sqlite-storage.test.ts: opens the database (migrating it if
 * it is new) at the epoch ms `openAt`, so that all children race for it, writes `count` single-reading
 * batches for `deviceId`, registers a service account and closes.
 * Usage: node --import tsx concurrent-writer.fixture.ts <path> <deviceId> <count> <openAt>
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { openSqliteStorage } from '../index.ts'

const [path, deviceId, countText, openAtText] = process.argv.slice(2)
if (path === undefined || deviceId === undefined || countText === undefined || openAtText === undefined) {
  throw new Error('usage: concurrent-writer.fixture.ts <path> <deviceId> <count> <openAt>')
}
await sleep(Math.max(0, Number(openAtText) - Date.now() - 5))
while (Date.now() < Number(openAtText)) {
  // Spin the last few milliseconds: timers are too coarse to line the processes up.
}
const start = Date.UTC(2026, 0, 12)
const storage = openSqliteStorage({ path })
for (let i = 0; i < Number(countText); i++) {
  await storage.readings.writeReadings([
    {
      deviceId,
      siteId: null,
      ts: start + i * 60_000,
      seq: i,
      values: { pm25: i },
      receivedAt: start,
      expectedPerHour: 60,
    },
  ])
}
await storage.registry.upsertServiceAccount({ username: deviceId, secretHash: 'h', role: 'sim' })
await storage.close()
