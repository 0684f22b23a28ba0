import { join } from 'node:path'
import { DAY_MS, HOUR_MS, type Metric } from '@skolluft/core'
import { EXPORT_BATCH_ROWS, openSqliteStorage, type Storage, type StoredReading } from '@skolluft/storage'
import { tempDir } from '@skolluft/testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadExportCorrections } from './corrections.ts'
import { type ExportSources, exportChunks } from './pipeline.ts'
import { buildExportRequest, ExportQueryParams, type ExportRequest } from './query.ts'

/**
 * Resuming (`after`) through the real pipeline on a real SQLite store: for every row of a small export, the
 * export resumed after that row is exactly the rows that follow it in the full export (no header), for raw,
 * hourly and daily rows, raw and corrected values; and at the storage's batch edges of a long series.
 */
const MINUTE_MS = 60_000
/** 2026-01-12T00:00Z; its UTC+1 day starts at 23:00Z the day before. */
const S0 = Date.UTC(2026, 0, 12)
/** One reading every 20 minutes for three days per device. */
const STEP_MS = 20 * MINUTE_MS
const READINGS = (3 * DAY_MS) / STEP_MS
/** dev-3 moves from site-a to site-b after this many readings (36 h). */
const MOVE_AT = READINGS / 2
/** The long series: one reading an hour at site-c, two more than a storage batch. */
const L0 = Date.UTC(2025, 0, 1)
const LONG_HOURS = EXPORT_BATCH_ROWS + 2

let dir: Awaited<ReturnType<typeof tempDir>>
let storage: Storage
let plain: ExportSources
let corrected: ExportSources

function written(): StoredReading[] {
  const out: StoredReading[] = []
  const push = (deviceId: string, siteId: string | null, i: number, values: StoredReading['values']) => {
    const ts = S0 + i * STEP_MS + (i % 3) // not whole minutes
    out.push({ deviceId, siteId, ts, seq: i, values, receivedAt: ts, expectedPerHour: 3 })
  }
  for (let i = 0; i < READINGS; i++) {
    const pm25 = 5 + (i % 17) * 0.3
    push('dev-1', 'site-a', i, { pm25, pm10: pm25 * 1.5, rh: 60 + (i % 35) })
    push('dev-2', 'site-a', i, { pm1: pm25 / 2, pm25: pm25 + 1, pm10: pm25 * 2, temp: -3 + i / 50, rh: 55 + (i % 41) })
    push('dev-3', i < MOVE_AT ? 'site-a' : 'site-b', i, { no2: (i % 11) - 3.25 })
    push('dev-x', null, i, { pm25: i / 7, no2: 1e-7 * i })
  }
  for (let h = 0; h < LONG_HOURS; h++) {
    const ts = L0 + h * HOUR_MS + 17 * MINUTE_MS
    out.push({
      deviceId: 'dev-long',
      siteId: 'site-c',
      ts,
      seq: h,
      values: { pm25: 3 + (h % 29) * 0.5 },
      receivedAt: ts,
      expectedPerHour: 1,
    })
  }
  return out
}

beforeAll(async () => {
  dir = await tempDir('skolluft-export-pipeline-')
  storage = openSqliteStorage({ path: join(dir.path, 'skolluft.db') })
  await storage.registry.upsertSites(
    ['site-a', 'site-b', 'site-c'].map((id, i) => ({
      id,
      name: id,
      kind: 'school' as const,
      municipality: 'Lund',
      lat: 55.7 + i / 100,
      lon: 13.2,
    })),
  )
  const devices: { id: string; model: string; sensors: Metric[]; site: string }[] = [
    { id: 'dev-1', model: 'SDS011', sensors: ['pm25', 'pm10', 'rh'], site: 'site-a' },
    { id: 'dev-2', model: 'PMS5003', sensors: ['pm1', 'pm25', 'pm10', 'temp', 'rh'], site: 'site-a' },
    { id: 'dev-3', model: 'alphasense-no2', sensors: ['no2'], site: 'site-a' },
  ]
  for (const d of devices) {
    await storage.registry.addDevice(
      {
        id: d.id,
        model: d.model,
        sensors: d.sensors,
        intervalS: 1200,
        secretHash: 'x',
        placement: { siteId: d.site, from: S0 - DAY_MS, indoor: false, heightM: null },
      },
      S0 - DAY_MS,
    )
  }
  await storage.calibrations.add({
    deviceId: 'dev-1',
    metric: 'pm25',
    slope: 0.8,
    intercept: 1.5,
    validFrom: S0 + 30 * HOUR_MS,
    basis: { kind: 'manual', after: 'rh-hackair@1', note: null },
    createdAt: S0,
    createdBy: 'test',
  })
  await storage.readings.writeReadings(written())
  plain = { readings: storage.readings }
  corrected = { readings: storage.readings, correctorFor: (await loadExportCorrections(storage)).correctorFor }
})

afterAll(async () => {
  await storage?.close()
  await dir?.cleanup()
})

async function request(params: Record<string, string>): Promise<ExportRequest> {
  const parsed = ExportQueryParams.safeParse(params)
  if (!parsed.success) throw new Error(parsed.error.message)
  return buildExportRequest(parsed.data, await storage.registry.listSites(), 'all', () => undefined)
}

/** The whole text an export writes, and the rows its chunks count. */
async function run(sources: ExportSources, req: ExportRequest): Promise<{ text: string; rows: number }> {
  let text = ''
  let rows = 0
  for await (const chunk of exportChunks(sources, req, { createdBy: 'test' })) {
    if (typeof chunk.data !== 'string') throw new Error('a text export gave bytes')
    text += chunk.data
    rows += chunk.rows
  }
  return { text, rows }
}

/** The CSV lines of a text export, each with its CRLF. */
function linesOf(text: string): string[] {
  return text.split(/(?<=\r\n)/).filter((l) => l !== '')
}

/**
 * Resumes `params` after each of the rows at `cuts` (1-based; default every row) and compares with the full export.
 * Returns how many rows the full export has.
 */
async function expectResumes(sources: ExportSources, params: Record<string, string>, cuts?: number[]): Promise<number> {
  const full = await run(sources, await request(params))
  const [header = '', ...rows] = linesOf(full.text)
  expect(header.startsWith('time,site_id,')).toBe(true)
  expect(full.rows).toBe(rows.length)
  const keyCells = params.resolution === 'raw' ? 4 : 3
  for (const k of cuts ?? rows.map((_, i) => i + 1)) {
    const line = rows[k - 1] ?? ''
    const after = line.split(',').slice(0, keyCells).join(',')
    const rest = await run(sources, await request({ ...params, after }))
    // Compared as text so that a failure shows the first differing row; rows() counts what was written.
    expect({ k, after, text: rest.text }).toEqual({ k, after, text: rows.slice(k).join('') })
    expect(rest.rows).toBe(rows.length - k)
  }
  return rows.length
}

const iso = (ms: number) => new Date(ms).toISOString()

describe('exportChunks resumed with after', () => {
  it('raw: after every row, the remaining rows (sites, devices without a site, a device that moved)', async () => {
    for (const [values, sources] of [
      ['raw', plain],
      ['corrected', corrected],
    ] as const) {
      const rows = await expectResumes(sources, {
        resolution: 'raw',
        values,
        from: iso(S0 + 35 * HOUR_MS),
        to: iso(S0 + 37 * HOUR_MS),
      })
      // dev-x (no site) 6 readings × 2, dev-1 × 3, dev-2 × 5, dev-3 6 readings (at two sites).
      expect(rows).toBe(6 * 2 + 6 * 3 + 6 * 5 + 6)
    }
  })

  it('hourly: after every row, the remaining site-hours', async () => {
    for (const [values, sources] of [
      ['raw', plain],
      ['corrected', corrected],
    ] as const) {
      const rows = await expectResumes(sources, {
        resolution: 'hourly',
        values,
        from: iso(S0 + 24 * HOUR_MS),
        to: iso(S0 + 48 * HOUR_MS),
      })
      // site-a: 24 h × pm1, pm25, pm10, temp, rh, plus no2 for the 12 h before dev-3 moved; site-b: 12 h of no2.
      expect(rows).toBe(24 * 5 + 12 + 12)
    }
  })

  it('daily: after every row, the remaining days, each folded from all its hours', async () => {
    for (const [values, sources] of [
      ['raw', plain],
      ['corrected', corrected],
    ] as const) {
      const rows = await expectResumes(sources, {
        resolution: 'daily',
        values,
        from: iso(S0),
        to: iso(S0 + 4 * DAY_MS),
      })
      // site-a: 4 UTC+1 days × 5 metrics + no2 on the 2 days before the move; site-b: no2 on 3 days.
      expect(rows).toBe(4 * 5 + 2 + 3)
    }
  })

  it('across the storage batch edge of a long series: raw, hourly and daily', async () => {
    const long = { from: iso(L0), to: iso(L0 + (LONG_HOURS + 5) * HOUR_MS), sites: 'site-c' }
    const edge = [1, EXPORT_BATCH_ROWS - 1, EXPORT_BATCH_ROWS, EXPORT_BATCH_ROWS + 1, LONG_HOURS]
    expect(await expectResumes(plain, { ...long, resolution: 'raw' }, edge)).toBe(LONG_HOURS)
    expect(await expectResumes(plain, { ...long, resolution: 'hourly' }, edge)).toBe(LONG_HOURS)
    // Day rows around the day that holds the batch edge's hour: the series ends two hours after it.
    const days = Math.ceil((LONG_HOURS + 1) / 24)
    expect(await expectResumes(plain, { ...long, resolution: 'daily' }, [1, days - 3, days - 2, days - 1, days])).toBe(
      days,
    )
  })
})
