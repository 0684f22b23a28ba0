import {
  checkReadings,
  FINAL_GRACE_MS,
  flagsOf,
  HOUR_MS,
  type MetricValues,
  type QcSample,
  READING_QC_VERSION,
} from '@skolluft/core'
import { createLogger, silentLogger } from '@skolluft/runtime'
import { openSqliteStorage, type Storage, type StoredReading } from '@skolluft/storage'
import { tempDir, waitFor } from '@skolluft/testkit'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { type QualityChecks, type QualityChecksOptions, startQualityChecks } from './quality-checks.ts'

const T0 = Date.parse('2026-11-30T00:00:00Z')
const MINUTE_MS = 60_000
/** Passes run only when a test asks (runOnce), unless it sets a short interval. */
const NEVER_MS = 24 * HOUR_MS

describe('quality checks worker (real SQLite)', () => {
  let storage: Storage
  let cleanup: () => Promise<void>
  let now: number
  const workers: QualityChecks[] = []
  const clock = () => now

  beforeEach(async () => {
    const dir = await tempDir()
    cleanup = dir.cleanup
    storage = openSqliteStorage({ path: `${dir.path}/skolluft.db` })
    await storage.registry.upsertSites([
      { id: 'site-a', name: 'Site A (demo)', kind: 'school', municipality: 'Lund', lat: 55.7, lon: 13.19, demo: true },
    ])
    for (const id of ['dev-1', 'dev-2', 'dev-3']) {
      await storage.registry.addDevice(
        {
          id,
          model: 'test',
          sensors: ['pm1', 'pm25', 'pm10', 'no2', 'temp', 'rh'],
          intervalS: 60,
          secretHash: 'not-used-here',
          placement: { siteId: 'site-a', from: 0, indoor: false, heightM: 2 },
        },
        0,
      )
    }
    now = T0
  })

  afterEach(async () => {
    for (const worker of workers.splice(0)) await worker.close()
    await storage.close()
    await cleanup()
  })

  function start(options: Partial<QualityChecksOptions> = {}): QualityChecks {
    const worker = startQualityChecks({ storage, log: silentLogger(), clock, intervalMs: NEVER_MS, ...options })
    workers.push(worker)
    return worker
  }

  function reading(deviceId: string, ts: number, values: MetricValues): StoredReading {
    return { deviceId, siteId: 'site-a', ts, seq: null, values, receivedAt: ts, expectedPerHour: 60 }
  }

  /** One reading a minute for `hours` hours from T0, pm25 = value(minute); minutes in `skip` left out. */
  function series(deviceId: string, hours: number, value: (minute: number) => number, skip: number[] = []) {
    return Array.from({ length: hours * 60 }, (_, m) => m)
      .filter((m) => !skip.includes(m))
      .map((m) => reading(deviceId, T0 + m * MINUTE_MS, { pm25: value(m) }))
  }

  /** Noise around 10 µg/m³ that no rule flags (not flat, no jumps) but warm-up at the very first reading. */
  const calm = (m: number) => 10 + ((m * 7) % 5) / 10

  /** minute after T0 -> stored qc of one device. */
  async function stored(deviceId = 'dev-1'): Promise<Map<number, number | null | undefined>> {
    const out = new Map<number, number | null | undefined>()
    for await (const batch of storage.readings.streamReadings({
      metrics: ['pm25'],
      deviceIds: [deviceId],
      from: T0,
      to: T0 + 2 * 24 * HOUR_MS,
    })) {
      for (const r of batch) out.set((r.ts - T0) / MINUTE_MS, r.qc)
    }
    return out
  }

  /** What core's rules say about the whole stored series (it fits in one context window). */
  async function expectedMasks(deviceId = 'dev-1', to: number): Promise<Map<number, number>> {
    const samples: QcSample[] = []
    for await (const batch of storage.readings.streamReadings({
      metrics: ['pm25'],
      deviceIds: [deviceId],
      from: T0,
      to: T0 + 2 * 24 * HOUR_MS,
    })) {
      for (const r of batch) samples.push({ ts: r.ts, values: r.values })
    }
    const masks = new Map<number, number>()
    for (const s of samples) masks.set((s.ts - T0) / MINUTE_MS, 0)
    for (const [ts, mask] of checkReadings(samples, { from: T0, to }, { intervalS: 60 })) {
      masks.set((ts - T0) / MINUTE_MS, mask)
    }
    return masks
  }

  it("stores core's flags for the final hours and leaves the rest unchecked until they are final", async () => {
    await storage.readings.writeReadings(series('dev-1', 3, (m) => (m === 90 ? 600 : calm(m))))
    // Hours 0 and 1 are final; hour 2 ends at T0 + 3 h and is final only FINAL_GRACE_MS later.
    now = T0 + 3 * HOUR_MS + FINAL_GRACE_MS - 1
    const worker = start()
    expect(await worker.runOnce()).toEqual({
      entries: 2,
      hours: 2,
      checked: 120,
      flagged: expect.any(Number),
      changed: expect.any(Number),
      failed: 0,
      skipped: 0,
    })
    const first = await stored()
    const wanted = await expectedMasks('dev-1', T0 + 2 * HOUR_MS)
    for (let m = 0; m < 180; m++) expect(first.get(m), `minute ${m}`).toBe(m < 120 ? wanted.get(m) : null)
    expect(flagsOf(first.get(90) ?? 0, 'pm25')).toContain('out_of_range')
    expect([...first.values()].filter((q) => q !== 0 && q !== null).length).toBeLessThan(10)

    now += 1
    expect(await worker.runOnce()).toMatchObject({ entries: 1, hours: 1, checked: 120, failed: 0 })
    expect(await stored()).toEqual(await expectedMasks('dev-1', T0 + 3 * HOUR_MS))
    // Idempotent: nothing left, and another pass changes nothing.
    expect(await worker.runOnce()).toMatchObject({ entries: 0, hours: 0, changed: 0 })
  })

  it('recomputes later hours when late data lands in a checked hour (stuck looks back)', async () => {
    // Flat at 7 µg/m³ for 4 h with minute 60 missing: one run, stuck (≥ 2 h, reference §4.1) from minute 120.
    await storage.readings.writeReadings(series('dev-1', 4, () => 7, [60]))
    now = T0 + 4 * HOUR_MS + FINAL_GRACE_MS
    const worker = start()
    await worker.runOnce()
    const before = await stored()
    expect(flagsOf(before.get(150) ?? 0, 'pm25')).toContain('stuck')
    expect(flagsOf(before.get(200) ?? 0, 'pm25')).toContain('stuck')
    expect(before.get(100)).toBe(0)

    // Minute 60 arrives late with another value: the run restarts at minute 61, stuck only from minute 181.
    await storage.readings.writeReadings([reading('dev-1', T0 + 60 * MINUTE_MS, { pm25: 8 })])
    expect((await stored()).get(60)).toBeNull()
    expect(await worker.runOnce()).toMatchObject({ entries: 1, hours: 1, failed: 0 })
    const after = await stored()
    expect(after.get(150)).toBe(0)
    expect(flagsOf(after.get(200) ?? 0, 'pm25')).toContain('stuck')
    expect(after).toEqual(await expectedMasks('dev-1', T0 + 4 * HOUR_MS))
  })

  it('rechecks the stored history when the rules version goes up', async () => {
    await storage.readings.writeReadings(series('dev-1', 2, calm))
    now = T0 + 2 * HOUR_MS + FINAL_GRACE_MS
    const v1 = start()
    expect(await v1.runOnce()).toMatchObject({ hours: 2 })
    await v1.close()
    const v2 = start({ version: READING_QC_VERSION + 1 })
    expect(await v2.runOnce()).toMatchObject({ entries: 2, hours: 2, checked: 120, changed: 0 })
    expect(await v2.runOnce()).toMatchObject({ entries: 0 })
  })

  it('takes a bounded batch per pass and sweeps on from where the last one stopped', async () => {
    for (const id of ['dev-1', 'dev-2', 'dev-3']) await storage.readings.writeReadings(series(id, 1, calm))
    await storage.readings.writeReadings(series('dev-x', 1, calm))
    now = T0 + HOUR_MS + FINAL_GRACE_MS
    const worker = start({ batchHours: 2 })
    expect(await worker.runOnce()).toMatchObject({ entries: 2, hours: 2, skipped: 0 })
    expect(await worker.runOnce()).toMatchObject({ entries: 2, hours: 1, skipped: 1 })
    // The sweep ended; the next pass starts from the oldest again. An unknown device stays unchecked (no interval
    // to judge it by) and does not block the others.
    expect(await worker.runOnce()).toMatchObject({ entries: 0 })
    expect(await worker.runOnce()).toMatchObject({ entries: 1, hours: 0, skipped: 1 })
    expect(await stored('dev-3')).toEqual(await expectedMasks('dev-3', T0 + HOUR_MS))
    expect([...(await stored('dev-x')).values()].every((q) => q === null)).toBe(true)
  })

  it('logs failures and keeps its timer going', async () => {
    await storage.readings.writeReadings([...series('dev-1', 1, calm), ...series('dev-2', 1, calm)])
    now = T0 + HOUR_MS + FINAL_GRACE_MS
    const lines: string[] = []
    const log = createLogger({ level: 'info', destination: { write: (line: string) => lines.push(line) } })
    let backlogFailures = 1
    let checkFailures = 2
    const readings: Storage['readings'] = {
      ...storage.readings,
      qualityBacklog: (...args) =>
        backlogFailures-- > 0
          ? Promise.reject(new Error('database is locked'))
          : storage.readings.qualityBacklog(...args),
      checkQuality: (...args) =>
        checkFailures-- > 0 ? Promise.reject(new Error('check exploded')) : storage.readings.checkQuality(...args),
    }
    start({ storage: { readings, registry: storage.registry }, log, intervalMs: 5 })
    await waitFor(
      async () => [...(await stored('dev-1')).values(), ...(await stored('dev-2')).values()].every((q) => q !== null),
      'both devices checked after the failures',
    )
    expect(lines.filter((line) => line.includes('"msg":"quality pass failed"'))).toHaveLength(1)
    const failed = lines.filter((line) => line.includes('"msg":"quality check failed"'))
    expect(failed).toHaveLength(2)
    expect(failed[0]).toContain('"deviceId":"dev-1"')
    expect(failed[0]).toContain('check exploded')
  })

  it('stops its timer on close and waits for a running pass', async () => {
    await storage.readings.writeReadings(series('dev-1', 1, calm))
    now = T0 + HOUR_MS + FINAL_GRACE_MS
    const worker = start({ intervalMs: 5 })
    await worker.runOnce()
    let finished = false
    const pass = worker.runOnce().then(() => {
      finished = true
    })
    await worker.close()
    expect(finished).toBe(true)
    await pass
    // A late reading after close: no pass runs any more, so its hour stays unchecked.
    await storage.readings.writeReadings([reading('dev-1', T0 + 30_000, { pm25: 10 })])
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect((await stored()).get(0.5)).toBeNull()
  })
})
