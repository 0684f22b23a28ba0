import { join } from 'node:path'
import { silentLogger } from '@skolluft/runtime'
import { closedPort, tempDir } from '@skolluft/testkit'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { StoredReading } from '../types.ts'
import { openInfluxStorage } from './index.ts'

const READING: StoredReading = {
  deviceId: 'dev-1',
  siteId: null,
  ts: Date.UTC(2026, 0, 12),
  seq: null,
  values: { pm25: 4.2 },
  receivedAt: Date.UTC(2026, 0, 12),
  expectedPerHour: 60,
}

describe('openInfluxStorage: closing with readings InfluxDB has not taken', () => {
  let dir: { path: string; cleanup: () => Promise<void> }
  let url: string
  beforeEach(async () => {
    dir = await tempDir()
    // Nothing listens there: every write goes to the spool.
    url = `http://127.0.0.1:${await closedPort()}`
  })
  afterEach(async () => {
    await dir.cleanup()
  })

  const open = (oneShot: boolean) =>
    openInfluxStorage({
      sqlite: { path: join(dir.path, 'skolluft.db') },
      influx: { url, token: 't', org: 'o', bucket: 'b' },
      spoolPath: join(dir.path, 'influx-spool-import.db'),
      log: silentLogger(),
      oneShot,
      closeDrainMs: 300,
    })

  it('fails a one-shot command (import), naming the spool, and keeps the readings there for the next run', async () => {
    const storage = open(true)
    expect(await storage.readings.writeReadings([READING])).toEqual({ inserted: 1, duplicates: 0 })
    const closing = storage.close()
    await expect(closing).rejects.toMatchObject({ code: 'STORAGE_UNAVAILABLE' })
    await expect(closing).rejects.toThrow(/influx-spool-import\.db/)
    const next = open(true)
    try {
      expect(next.writer?.stats().spoolDepth).toBeGreaterThan(0)
    } finally {
      await next.close().catch(() => undefined)
    }
  })

  it('lets a service close (its next start replays the spool)', async () => {
    const storage = open(false)
    await storage.readings.writeReadings([READING])
    await expect(storage.close()).resolves.toBeUndefined()
  })
})
