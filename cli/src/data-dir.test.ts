import { join } from 'node:path'
import { ConfigError, loadConfig } from '@skolluft/runtime'
import { tempDir } from '@skolluft/testkit'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { CommonConfig } from './config.ts'
import { DATABASE_FILE, influxSpoolFile, openDataDir } from './data-dir.ts'

describe('openDataDir: STORE', () => {
  let dir: { path: string; cleanup: () => Promise<void> }
  beforeEach(async () => {
    dir = await tempDir()
  })
  afterEach(async () => {
    await dir.cleanup()
  })

  it('opens the embedded SQLite store by default', async () => {
    const config = loadConfig(CommonConfig, { DATA_DIR: dir.path })
    expect(config.STORE).toBe('sqlite')
    const storage = await openDataDir(config)
    try {
      expect(await storage.readings.countReadings()).toBe(0)
    } finally {
      await storage.close()
    }
  })

  it('refuses an unknown STORE and a non-http INFLUX_URL with the variable named', () => {
    expect(() => loadConfig(CommonConfig, { DATA_DIR: dir.path, STORE: 'postgres' })).toThrow(/STORE: STORE is sqlite/)
    expect(() => loadConfig(CommonConfig, { DATA_DIR: dir.path, INFLUX_URL: 'ftp://x' })).toThrow(/INFLUX_URL/)
  })

  it('with STORE=influxdb names every missing INFLUX_ setting and opens nothing', async () => {
    const config = loadConfig(CommonConfig, { DATA_DIR: dir.path, STORE: 'influxdb', INFLUX_URL: 'http://127.0.0.1:1' })
    const error = await openDataDir(config).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(ConfigError)
    expect((error as ConfigError).problems).toEqual([
      'INFLUX_TOKEN: required with STORE=influxdb (not set)',
      'INFLUX_ORG: required with STORE=influxdb (not set)',
      'INFLUX_BUCKET: required with STORE=influxdb (not set)',
    ])
  })

  it('with STORE=influxdb gives a spool only to a process that writes readings; the others are read-only', async () => {
    // Nothing listens on port 1: opening makes no request, a write spools, and the read-only store refuses.
    const config = loadConfig(CommonConfig, {
      DATA_DIR: dir.path,
      STORE: 'influxdb',
      INFLUX_URL: 'http://127.0.0.1:1',
      INFLUX_TOKEN: 't',
      INFLUX_ORG: 'o',
      INFLUX_BUCKET: 'b',
      LOG_LEVEL: 'silent',
    })
    const reader = await openDataDir(config)
    try {
      const reading = {
        deviceId: 'dev-1',
        siteId: null,
        ts: Date.UTC(2026, 0, 1),
        seq: null,
        values: { pm25: 1 },
        receivedAt: Date.UTC(2026, 0, 1),
        expectedPerHour: 60,
      }
      await expect(reader.readings.writeReadings([reading])).rejects.toMatchObject({ code: 'READ_ONLY' })
      const writer = await openDataDir(config, { writer: 'ingest-a' })
      try {
        expect(await writer.readings.writeReadings([reading])).toEqual({ inserted: 1, duplicates: 0 })
      } finally {
        await writer.close()
      }
      // The reading waits in the writer's own spool file, beside the SQLite store.
      const { openSpoolFile } = await import('@skolluft/storage/influx')
      const spool = openSpoolFile(join(dir.path, influxSpoolFile('ingest-a')))
      try {
        expect(spool.depth()).toBeGreaterThan(0)
      } finally {
        spool.close()
      }
      expect(influxSpoolFile('svc.ingest/1')).toBe('influx-spool-svc.ingest_1.db')
      expect(DATABASE_FILE).toBe('skolluft.db')
    } finally {
      await reader.close()
    }
  })
})
