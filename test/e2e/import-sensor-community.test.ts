import { readFileSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Metric } from '@skolluft/core'
import { openSqliteStorage } from '@skolluft/storage'
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
 * Issue 5 "Proof": the real Sensor.Community archive files in test/fixtures/sensor-community (Aberdeen, 5–11
 * November 2018, an SDS011 and a BME280 at one station, 7 day files each) imported with the real CLI into a fresh
 * data directory; every source row must come back from storage with the same time and value. The source is read
 * here with its own tiny splitter, not with core's parser. A second import must store nothing.
 */

const ALL_TIME = { from: 0, to: Date.UTC(2100, 0, 1), limit: 1_000_000 }

const ImportReport = z.object({
  site: z.string(),
  devices: z.array(
    z.object({
      deviceId: z.string(),
      sensorId: z.string(),
      model: z.string(),
      intervalS: z.number(),
      created: z.boolean(),
    }),
  ),
  files: z.array(
    z.object({
      file: z.string(),
      rows: z.number(),
      inserted: z.number(),
      duplicates: z.number(),
      rejected: z.number(),
      errors: z.array(z.object({ line: z.number(), reason: z.string() })),
    }),
  ),
})

interface SourceFile {
  readonly path: string
  readonly deviceId: string
  /** metric → [time ISO, value] in file order. */
  readonly series: Map<Metric, [string, number][]>
  readonly rows: number
}

/** Reads one archive file with a plain split: header names the columns, `;` separates, times are UTC. */
function readSource(name: string): SourceFile {
  const type = /_(sds011|bme280)_sensor_(\d+)\.csv$/.exec(name)
  const columns = SC_ARCHIVE_COLUMNS[type?.[1] ?? '']
  if (!type || !columns) throw new Error(`unexpected fixture ${name}`)
  const [head = '', ...lines] = readFileSync(join(SC_FIXTURES, name), 'utf8').split('\n')
  const names = head.split(';')
  const series = new Map<Metric, [string, number][]>()
  let rows = 0
  for (const line of lines) {
    if (line === '') continue
    rows += 1
    const cells = line.split(';')
    const cell = (column: string) => cells[names.indexOf(column)] ?? ''
    const t = new Date(`${cell('timestamp')}Z`).toISOString()
    for (const [column, metric] of columns) {
      const list = series.get(metric) ?? []
      list.push([t, Number(cell(column))])
      series.set(metric, list)
    }
  }
  return { path: join(SC_FIXTURES, name), deviceId: `sc-${type[2]}`, series, rows }
}

describe('skolluft import sensor-community (real archive files)', () => {
  let dir: { path: string; cleanup: () => Promise<void> }
  let env: Record<string, string>
  const sources = scFixtureNames().map(readSource)
  const totalRows = sources.reduce((sum, s) => sum + s.rows, 0)

  beforeAll(async () => {
    ;({ dir, env } = await dataDirWithScSite())
  })

  afterAll(async () => {
    await dir?.cleanup()
  })

  it('stores every source row with its time and value, once, even when imported twice', {
    timeout: 60_000,
  }, async () => {
    expect(sources).toHaveLength(14)
    expect(totalRows).toBe(8133)
    const files = sources.map((s) => s.path)

    const first = await runCli(['import', 'sensor-community', ...files, '--site', SC_SITE, '--json'], env)
    expect(first.code, first.output).toBe(0)
    const report = ImportReport.parse(JSON.parse(first.output))
    expect(report.files.map((f) => [f.file, f.rows, f.inserted, f.duplicates, f.rejected])).toEqual(
      sources.map((s) => [s.path, s.rows, s.rows, 0, 0]),
    )
    // Two sensors of one station → two devices at the site; the interval is the data's median spacing.
    expect(report.devices).toEqual([
      { deviceId: 'sc-15092', sensorId: '15092', model: 'SDS011', intervalS: 148, created: true },
      { deviceId: 'sc-15093', sensorId: '15093', model: 'BME280', intervalS: 148, created: true },
    ])

    const storage = openSqliteStorage({ path: join(dir.path, 'skolluft.db') })
    try {
      for (const deviceId of ['sc-15092', 'sc-15093']) {
        const own = sources.filter((s) => s.deviceId === deviceId)
        const metrics = [...new Set(own.flatMap((s) => [...s.series.keys()]))]
        expect(metrics).toHaveLength(2)
        for (const metric of metrics) {
          const expected = own.flatMap((s) => s.series.get(metric) ?? []).sort((a, b) => a[0].localeCompare(b[0]))
          const stored = await storage.readings.rawSeries({ deviceId, metric, ...ALL_TIME })
          expect(stored.map((p) => [p.t, p.value])).toEqual(expected)
          // The same rows belong to the site (site-level queries, e.g. humidity for QC, see them).
          const atSite = await storage.readings.rawSeries({ siteId: SC_SITE, metric, ...ALL_TIME })
          expect(atSite.map((p) => [p.t, p.value, p.deviceId])).toEqual(expected.map(([t, v]) => [t, v, deviceId]))
        }
      }
      expect(await storage.readings.countReadings()).toBe(totalRows)
      const devices = await storage.registry.listDevices()
      expect(devices.map((d) => [d.id, d.model, d.sensors, d.placements[0]?.siteId, d.placements[0]?.from])).toEqual([
        ['sc-15092', 'SDS011', ['pm10', 'pm25'], SC_SITE, Date.parse('2018-11-05T00:02:11Z')],
        ['sc-15093', 'BME280', ['temp', 'rh'], SC_SITE, Date.parse('2018-11-05T00:02:12Z')],
      ])
    } finally {
      await storage.close()
    }

    const second = await runCli(['import', 'sensor-community', ...files, '--site', SC_SITE, '--json'], env)
    expect(second.code, second.output).toBe(0)
    const again = ImportReport.parse(JSON.parse(second.output))
    expect(again.files.map((f) => [f.inserted, f.duplicates, f.rejected])).toEqual(sources.map((s) => [0, s.rows, 0]))
    expect(again.devices.map((d) => d.created)).toEqual([false, false])

    const after = openSqliteStorage({ path: join(dir.path, 'skolluft.db') })
    try {
      expect(await after.readings.countReadings()).toBe(totalRows)
      const audit = await after.access.listAudit({ limit: 10 })
      expect(audit.map((e) => [e.actor, e.action, e.target])).toEqual([
        ['cli', 'readings.import', SC_SITE],
        ['cli', 'readings.import', SC_SITE],
        ['cli', 'device.add', 'sc-15093'],
        ['cli', 'device.add', 'sc-15092'],
        ['cli', 'sites.import', null],
      ])
    } finally {
      await after.close()
    }
  })

  it('reports bad rows by file and line, stores the good ones, and exits 1', { timeout: 30_000 }, async () => {
    const file = join(dir.path, 'broken.csv')
    await writeFile(
      file,
      '\uFEFFsensor_id;sensor_type;location;lat;lon;timestamp;P1;durP1;ratioP1;P2;durP2;ratioP2\r\n' +
        '555;SDS011;1;56.9;-2.2;2019-01-01T00:00:00;10.5;;;4.25;;\r\n' +
        '555;SDS011;1;56.9;-2.2;2019-01-01T00:02:30;;;;;;\r\n' +
        '555;SDS011;1;56.9;-2.2;2019-01-01T00:05:00;3000;;;4;;\r\n',
    )
    const result = await runCli(['import', 'sensor-community', file, '--site', SC_SITE, '--device-prefix', 'x'], env)
    expect(result.code, result.output).toBe(1)
    expect(result.output).toContain('3 row(s), 1 inserted, 0 duplicate(s), 2 rejected')
    expect(result.output).toContain(`${file}:3: no value in the row`)
    expect(result.output).toContain(`${file}:4: P1 = 3000 is outside the physical range`)
    const storage = openSqliteStorage({ path: join(dir.path, 'skolluft.db') })
    try {
      const points = await storage.readings.rawSeries({ deviceId: 'x-555', metric: 'pm25', ...ALL_TIME })
      expect(points.map((p) => [p.t, p.value])).toEqual([['2019-01-01T00:00:00.000Z', 4.25]])
    } finally {
      await storage.close()
    }
    // The device keeps the placement of its first import: older rows imported later have no honest site.
    const older = join(dir.path, 'older.csv')
    await writeFile(
      older,
      'sensor_id;sensor_type;location;lat;lon;timestamp;P1;durP1;ratioP1;P2;durP2;ratioP2\n' +
        '555;SDS011;1;56.9;-2.2;2018-12-31T23:57:30;7;;;3;;\n',
    )
    const late = await runCli(['import', 'sensor-community', older, '--site', SC_SITE, '--device-prefix', 'x'], env)
    expect(late.code).toBe(1)
    expect(late.output).toContain(`${older}:2: device x-555 was placed nowhere at 2018-12-31T23:57:30.000Z`)
    const noSite = await runCli(['import', 'sensor-community', file, '--site', 'nowhere'], env)
    expect(noSite.code).toBe(1)
    expect(noSite.output).toContain('no site "nowhere"')
  })
})
