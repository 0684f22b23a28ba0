import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { type ExportReading, flagsOf, type Metric } from '@skolluft/core'
import { exportChunks, loadExportCorrections } from '@skolluft/export'
import { startQualityChecks } from '@skolluft/ingest'
import { silentLogger } from '@skolluft/runtime'
import { openSqliteStorage, type Storage } from '@skolluft/storage'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import {
  dataDirWithScSite,
  runCli,
  SC_ARCHIVE_COLUMNS,
  SC_FIXTURES,
  SC_SITE,
  scFixtureNames,
} from '../support/sensor-community.ts'

/**
 * `skolluft import sensor-community --merge-station` on the real Aberdeen archive files (test/fixtures/
 * sensor-community: an SDS011 and a BME280 of location 7647, 5–11 November 2018): the station becomes one device
 * whose PM readings carry the RH of their measuring cycle. Checked against an independent reading of the files
 * (own splitter, own join): every source value stored exactly once, the joined readings as computed here, nothing
 * stored by a second import, and then what the join is for: the real quality pass flags high_humidity on the PM
 * values of humid readings, and a values=corrected export applies rh-hackair@1 with the reading's own RH.
 */

const DEVICE = 'sc-loc-7647'
/** The importer's join tolerance (core STATION_JOIN_TOLERANCE_MS), restated: a change there must show here. */
const TOLERANCE_MS = 30_000
/** reading-qc.ts high_humidity threshold (air-quality §4.1 humidity gate), restated. */
const HUMID_PERCENT = 70
/** hackAIR growth factor, air-quality.md §4.2: PM / (1 + a · (RH/100)^b). */
const HACKAIR: Readonly<Record<'pm25' | 'pm10', readonly [number, number]>> = {
  pm25: [0.48756, 8.60068],
  pm10: [0.81559, 5.83411],
}
const ALL_METRICS: Metric[] = ['pm1', 'pm25', 'pm10', 'no2', 'temp', 'rh']
const ALL_TIME = { from: 0, to: Date.UTC(2100, 0, 1) }

interface Row {
  readonly file: string
  readonly ts: number
  readonly values: Partial<Record<Metric, number>>
}

/** One archive file with a plain split: header names the columns, `;` separates, times are UTC. */
function readRows(name: string): { kind: 'pm' | 'climate'; rows: Row[]; location: Set<string> } {
  const type = /_(sds011|bme280)_sensor_\d+\.csv$/.exec(name)?.[1] ?? ''
  const columns = SC_ARCHIVE_COLUMNS[type]
  if (columns === undefined) throw new Error(`unexpected fixture ${name}`)
  const [head = '', ...lines] = readFileSync(join(SC_FIXTURES, name), 'utf8').split('\n')
  const names = head.split(';')
  const rows: Row[] = []
  const location = new Set<string>()
  for (const line of lines) {
    if (line === '') continue
    const cells = line.split(';')
    const cell = (column: string) => cells[names.indexOf(column)] ?? ''
    location.add(cell('location'))
    const values: Partial<Record<Metric, number>> = {}
    for (const [column, metric] of columns) values[metric] = Number(cell(column))
    rows.push({ file: name, ts: Date.parse(`${cell('timestamp')}Z`), values })
  }
  return { kind: type === 'sds011' ? 'pm' : 'climate', rows, location }
}

/**
 * The station's readings as this test understands the rule: pairs within the tolerance, closest first (ties: the
 * earlier PM row, then the earlier climate row), each row in at most one pair; the rest alone at their own time.
 */
function expectedReadings(pm: readonly Row[], climate: readonly Row[]): { ts: number; values: Row['values'] }[] {
  const pairs: [number, number, number][] = []
  for (let i = 0; i < pm.length; i += 1) {
    for (let j = 0; j < climate.length; j += 1) {
      const gap = Math.abs((pm[i]?.ts ?? 0) - (climate[j]?.ts ?? 0))
      if (gap <= TOLERANCE_MS) pairs.push([gap, i, j])
    }
  }
  const time = (rows: readonly Row[], i: number) => rows[i]?.ts ?? 0
  pairs.sort((a, b) => a[0] - b[0] || time(pm, a[1]) - time(pm, b[1]) || time(climate, a[2]) - time(climate, b[2]))
  const pmUsed = new Set<number>()
  const climateUsed = new Set<number>()
  const out: { ts: number; values: Row['values'] }[] = []
  for (const [, i, j] of pairs) {
    if (pmUsed.has(i) || climateUsed.has(j)) continue
    pmUsed.add(i)
    climateUsed.add(j)
    out.push({ ts: time(pm, i), values: { ...pm[i]?.values, ...climate[j]?.values } })
  }
  pm.forEach((r, i) => {
    if (!pmUsed.has(i)) out.push({ ts: r.ts, values: r.values })
  })
  climate.forEach((r, j) => {
    if (!climateUsed.has(j)) out.push({ ts: r.ts, values: r.values })
  })
  return out.sort((a, b) => a.ts - b.ts)
}

const Report = z.object({
  site: z.string(),
  mergeStation: z.literal(true),
  stations: z.array(
    z.object({
      location: z.string(),
      deviceId: z.string(),
      model: z.string(),
      intervalS: z.number(),
      created: z.boolean(),
      sensors: z.array(z.object({ sensorId: z.string(), sensorType: z.string() })),
      joined: z.number(),
      pmOnly: z.number(),
      climateOnly: z.number(),
      inserted: z.number(),
      duplicates: z.number(),
    }),
  ),
  files: z.array(
    z.object({
      file: z.string(),
      rows: z.number(),
      inserted: z.number(),
      duplicates: z.number(),
      rejected: z.number(),
    }),
  ),
})

const ExportLine = z.object({
  time: z.string(),
  device_id: z.string(),
  metric: z.string(),
  value: z.number(),
  flags: z.string().nullable(),
  corrected: z.number().nullable(),
  correction: z.string().nullable(),
})

async function storedReadings(storage: Storage, deviceId = DEVICE): Promise<ExportReading[]> {
  const out: ExportReading[] = []
  for await (const batch of storage.readings.streamReadings({
    deviceIds: [deviceId],
    metrics: ALL_METRICS,
    ...ALL_TIME,
  })) {
    out.push(...batch)
  }
  return out
}

describe('skolluft import sensor-community --merge-station (real archive files)', () => {
  let dir: { path: string; cleanup: () => Promise<void> }
  let env: Record<string, string>
  const names = scFixtureNames()
  const sources = names.map((name) => ({ name, ...readRows(name) }))
  const pmRows = sources.filter((s) => s.kind === 'pm').flatMap((s) => s.rows)
  const climateRows = sources.filter((s) => s.kind === 'climate').flatMap((s) => s.rows)
  const expected = expectedReadings(pmRows, climateRows)
  const joinedRh = new Map(expected.filter((r) => r.values.pm25 !== undefined).map((r) => [r.ts, r.values.rh]))

  beforeAll(async () => {
    ;({ dir, env } = await dataDirWithScSite())
  })

  afterAll(async () => {
    await dir?.cleanup()
  })

  it('stores one device whose readings join PM and climate rows, each value once, even when imported twice', {
    timeout: 60_000,
  }, async () => {
    // The fixtures: one station (location 7647), 4065 SDS011 and 4068 BME280 rows.
    expect(new Set(sources.flatMap((s) => [...s.location]))).toEqual(new Set(['7647']))
    expect([pmRows.length, climateRows.length]).toEqual([4065, 4068])
    const joined = expected.filter((r) => r.values.pm25 !== undefined && r.values.rh !== undefined).length
    const pmOnly = expected.filter((r) => r.values.rh === undefined).length
    const climateOnly = expected.filter((r) => r.values.pm25 === undefined).length
    // Nearly every cycle joins (archive rows of one cycle are 0–8 s apart); a few rows have no partner.
    expect(joined).toBeGreaterThan(4000)
    expect(joined + pmOnly).toBe(pmRows.length)
    expect(joined + climateOnly).toBe(climateRows.length)

    const files = names.map((n) => join(SC_FIXTURES, n))
    const first = await runCli(
      ['import', 'sensor-community', ...files, '--site', SC_SITE, '--merge-station', '--json'],
      env,
    )
    expect(first.code, first.output).toBe(0)
    const report = Report.parse(JSON.parse(first.output))
    expect(report.stations).toEqual([
      {
        location: '7647',
        deviceId: DEVICE,
        model: 'SDS011+BME280',
        intervalS: 148,
        created: true,
        sensors: [
          { sensorId: '15092', sensorType: 'SDS011' },
          { sensorId: '15093', sensorType: 'BME280' },
        ],
        joined,
        pmOnly,
        climateOnly,
        inserted: expected.length,
        duplicates: 0,
      },
    ])
    expect(report.files.map((f) => [f.file, f.rows, f.inserted, f.duplicates, f.rejected])).toEqual(
      sources.map((s) => [join(SC_FIXTURES, s.name), s.rows.length, s.rows.length, 0, 0]),
    )

    const storage = openSqliteStorage({ path: join(dir.path, 'skolluft.db') })
    try {
      const devices = await storage.registry.listDevices()
      expect(devices.map((d) => [d.id, d.model, d.sensors, d.placements[0]?.siteId])).toEqual([
        [DEVICE, 'SDS011+BME280', ['pm10', 'pm25', 'temp', 'rh'], SC_SITE],
      ])
      const stored = await storedReadings(storage)
      expect(stored.map((r) => ({ ts: r.ts, values: r.values }))).toEqual(expected)
      expect(stored.every((r) => r.siteId === SC_SITE)).toBe(true)
      // Every source value exactly once: per metric, the stored values are the source values.
      for (const metric of ['pm10', 'pm25', 'temp', 'rh'] as const) {
        const source = [...pmRows, ...climateRows].flatMap((r) =>
          r.values[metric] === undefined ? [] : [r.values[metric]],
        )
        const values = stored.flatMap((r) => (r.values[metric] === undefined ? [] : [r.values[metric]]))
        expect(values.length, metric).toBe(source.length)
        expect(
          [...values].sort((a, b) => a - b),
          metric,
        ).toEqual([...source].sort((a, b) => a - b))
      }
      // PM values keep their own times.
      const pmStored = stored
        .filter((r) => r.values.pm25 !== undefined)
        .map((r) => [r.ts, r.values.pm25, r.values.pm10])
      expect(pmStored).toEqual([...pmRows].sort((a, b) => a.ts - b.ts).map((r) => [r.ts, r.values.pm25, r.values.pm10]))
      expect(await storage.readings.countReadings()).toBe(expected.length)
    } finally {
      await storage.close()
    }

    const second = await runCli(
      ['import', 'sensor-community', ...files, '--site', SC_SITE, '--merge-station', '--json'],
      env,
    )
    expect(second.code, second.output).toBe(0)
    const again = Report.parse(JSON.parse(second.output))
    expect(again.stations.map((s) => [s.created, s.joined, s.inserted, s.duplicates])).toEqual([
      [false, joined, 0, expected.length],
    ])
    expect(again.files.map((f) => [f.inserted, f.duplicates, f.rejected])).toEqual(
      sources.map((s) => [0, s.rows.length, 0]),
    )
    const after = openSqliteStorage({ path: join(dir.path, 'skolluft.db') })
    try {
      expect(await after.readings.countReadings()).toBe(expected.length)
      const audit = await after.access.listAudit({ limit: 10 })
      expect(audit.map((e) => [e.action, e.target])).toEqual([
        ['readings.import', SC_SITE],
        ['readings.import', SC_SITE],
        ['device.add', DEVICE],
        ['sites.import', null],
      ])
    } finally {
      await after.close()
    }
  })

  it('gives the PM readings high_humidity flags and rh-hackair@1 corrections from their own RH', {
    timeout: 60_000,
  }, async () => {
    const storage = openSqliteStorage({ path: join(dir.path, 'skolluft.db') })
    // Clock far in the future: every hour is final.
    const checks = startQualityChecks({
      storage,
      log: silentLogger(),
      clock: () => Date.UTC(2100, 0, 1),
      intervalMs: 3_600_000,
    })
    try {
      let pass = await checks.runOnce()
      for (let i = 0; i < 10 && pass.entries > 0; i += 1) pass = await checks.runOnce()
      expect(pass.entries).toBe(0)

      const stored = await storedReadings(storage)
      const pm = stored.filter((r) => r.values.pm25 !== undefined)
      expect(pm).toHaveLength(4065)
      let humid = 0
      for (const r of pm) {
        expect(r.qc, new Date(r.ts).toISOString()).not.toBeNull()
        const rh = joinedRh.get(r.ts)
        expect(r.values.rh).toBe(rh)
        const flagged = flagsOf(r.qc ?? 0, 'pm25').includes('high_humidity')
        expect(flagged, `${new Date(r.ts).toISOString()} rh ${rh}`).toBe(rh !== undefined && rh > HUMID_PERCENT)
        expect(flagsOf(r.qc ?? 0, 'pm10').includes('high_humidity')).toBe(flagged)
        if (flagged) humid += 1
      }
      // A wet Aberdeen November: every joined PM reading is above 70 % RH; the PM-only ones cannot be flagged.
      expect(humid).toBe([...joinedRh.values()].filter((rh) => rh !== undefined && rh > HUMID_PERCENT).length)
      expect(humid).toBeGreaterThan(4000)

      const corrections = await loadExportCorrections(storage)
      let text = ''
      const chunks = exportChunks(
        { readings: storage.readings, correctorFor: corrections.correctorFor },
        {
          resolution: 'raw',
          format: 'ndjson',
          schema: 2,
          values: 'corrected',
          query: { metrics: ['pm25', 'pm10'], deviceIds: [DEVICE], ...ALL_TIME },
        },
        { createdBy: 'test' },
      )
      for await (const chunk of chunks) text += String(chunk.data)
      const rows = text
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => ExportLine.parse(JSON.parse(l)))
      expect(rows).toHaveLength(2 * 4065)
      let corrected = 0
      for (const row of rows) {
        const metric = row.metric === 'pm25' ? 'pm25' : 'pm10'
        const rh = joinedRh.get(Date.parse(row.time))
        if (rh === undefined) {
          expect([row.correction, row.corrected]).toEqual(['none', row.value])
          continue
        }
        const [a, b] = HACKAIR[metric]
        expect(row.correction).toBe('rh-hackair@1')
        expect(row.corrected).toBeCloseTo(row.value / (1 + a * (rh / 100) ** b), 9)
        expect(row.flags?.split(';')).toContain('high_humidity') // export-schema: flags joined by ';'
        corrected += 1
      }
      expect(corrected).toBe(2 * [...joinedRh.values()].filter((rh) => rh !== undefined).length)
    } finally {
      await checks.close()
      await storage.close()
    }
  })

  it('repeats no value when a station comes in parts, and reports the rows it cannot add', {
    timeout: 60_000,
  }, async () => {
    const prefix = ['--site', SC_SITE, '--merge-station', '--device-prefix', 'part', '--json']
    const pmFiles = sources.filter((s) => s.kind === 'pm')
    const climateFiles = sources.filter((s) => s.kind === 'climate')
    const [pmDay1, pmDay2] = pmFiles
    const [climateDay1, climateDay2] = climateFiles
    if (!pmDay1 || !pmDay2 || !climateDay1 || !climateDay2) throw new Error('fixtures missing')
    // 5 November, both sensors (registers the station as SDS011+BME280); then the PM file of 6 November alone.
    for (const part of [[pmDay1, climateDay1], [pmDay2]]) {
      const result = await runCli(
        ['import', 'sensor-community', ...part.map((s) => join(SC_FIXTURES, s.name)), ...prefix],
        env,
      )
      expect(result.code, result.output).toBe(0)
    }
    // Then every file, twice. The climate rows of 6 November cannot join the stored PM-only readings; they are
    // stored at their own time, except those stamped in the very second of a stored PM reading: that (device,
    // time) already holds a reading without them, so they are refused, by line, never silently dropped.
    const pmTimes = new Set(pmDay2.rows.map((r) => r.ts))
    const refused = climateDay2.rows.filter((r) => pmTimes.has(r.ts))
    expect(refused.length).toBeGreaterThan(0)
    const before = pmDay1.rows.length + climateDay1.rows.length + pmDay2.rows.length
    const total = pmRows.length + climateRows.length
    const files = names.map((n) => join(SC_FIXTURES, n))
    for (const round of [0, 1]) {
      const all = await runCli(['import', 'sensor-community', ...files, ...prefix], env)
      expect(all.code, all.output).toBe(1)
      const report = Report.parse(JSON.parse(all.output))
      expect(report.files.map((f) => f.rejected)).toEqual(sources.map((s) => (s === climateDay2 ? refused.length : 0)))
      expect(report.files.reduce((sum, f) => sum + f.inserted, 0)).toBe(
        round === 0 ? total - before - refused.length : 0,
      )
      expect(report.files.reduce((sum, f) => sum + f.duplicates, 0)).toBe(round === 0 ? before : total - refused.length)
    }
    const storage = openSqliteStorage({ path: join(dir.path, 'skolluft.db') })
    try {
      const stored = await storedReadings(storage, 'part-loc-7647')
      for (const metric of ['pm10', 'pm25', 'temp', 'rh'] as const) {
        const of = (rows: readonly { values: Row['values'] }[]) =>
          rows.flatMap((r) => (r.values[metric] === undefined ? [] : [r.values[metric]])).sort((a, b) => a - b)
        // Stored once, plus refused, is every source value.
        expect(
          [...of(stored), ...of(refused)].sort((a, b) => a - b),
          metric,
        ).toEqual(of([...pmRows, ...climateRows]))
      }
      // From 7 November on, the station's PM readings are joined as in a single import.
      const from = Date.UTC(2018, 10, 7) + TOLERANCE_MS
      const joinedFrom = (rows: readonly { ts: number; values: Row['values'] }[]) =>
        rows.filter((r) => r.ts >= from && r.values.pm25 !== undefined && r.values.rh !== undefined).map((r) => r.ts)
      expect(joinedFrom(stored)).toEqual(joinedFrom(expected))
    } finally {
      await storage.close()
    }
  })
})
