import { DAY_MS, HOUR_MS } from '@skolluft/core'
import type { Storage, StoredReading } from '@skolluft/storage'
import { tempDir } from '@skolluft/testkit'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { openDataDir } from '../data-dir.ts'
import { runCli } from '../main.ts'
import { type Captured, capture } from '../test-io.ts'

/**
 * The calibration commands in process (runCli with captured output) on a real SQLite data directory: a hand-made
 * line, a colocation fit on stored hourly data (a device without RH: fitted on raw values), the list, retirement,
 * and the refusals with their reasons and exit codes.
 */
const P0 = Date.parse('2026-11-01T00:00:00Z')
const HOURS = 26
/** Reference = 0.5 · device + 2 in every hour. */
const deviceValue = (h: number) => 20 + 3 * h + (h % 4)

const Calibration = z.object({
  id: z.string(),
  ref: z.string(),
  device: z.string(),
  metric: z.string(),
  version: z.number(),
  slope: z.number(),
  intercept: z.number(),
  applied_after: z.string().nullable(),
  valid_from: z.string(),
  valid_to: z.string().nullable(),
  basis: z.record(z.string(), z.unknown()),
  created_by: z.string(),
})

let dir: Awaited<ReturnType<typeof tempDir>>
let env: NodeJS.ProcessEnv
let storage: Storage

async function cli(...argv: string[]): Promise<{ code: number } & Captured> {
  const c = capture()
  const code = await runCli(argv, env, c.io)
  return { code, ...c }
}

beforeEach(async () => {
  dir = await tempDir()
  env = { DATA_DIR: dir.path, LOG_LEVEL: 'info' }
  storage = await openDataDir({ DATA_DIR: dir.path })
  await storage.registry.upsertSites([
    { id: 'site-a', name: 'Skola A (demo)', kind: 'school', municipality: 'Lund', lat: 55.7, lon: 13.2, demo: true },
  ])
  const placement = { siteId: 'site-a', from: P0 - DAY_MS, indoor: false, heightM: 2 }
  for (const [id, model, sensors] of [
    ['dev-a', 'SDS011', ['pm25', 'pm10']],
    ['ref-1', 'reference', ['pm25', 'pm10']],
    ['dev-n', 'no2-cell', ['no2']],
  ] as const) {
    await storage.registry.addDevice(
      { id, model, sensors: [...sensors], intervalS: 3600, secretHash: 'x', placement },
      P0 - DAY_MS,
    )
  }
  const readings: StoredReading[] = []
  for (let h = 0; h < HOURS; h++) {
    const ts = P0 + h * HOUR_MS
    const base = { siteId: 'site-a', ts, seq: null, receivedAt: ts, expectedPerHour: 1 }
    readings.push({ ...base, deviceId: 'dev-a', values: { pm25: deviceValue(h) } })
    readings.push({ ...base, deviceId: 'ref-1', values: { pm25: 0.5 * deviceValue(h) + 2 } })
  }
  await storage.readings.writeReadings(readings)
})

afterEach(async () => {
  await storage.close()
  await dir.cleanup()
})

const iso = (ms: number) => new Date(ms).toISOString()

describe('skolluft calibration fit', () => {
  it('fits the reference on the device over the whole hours [from, to) and prints the fit', async () => {
    const args = ['--device', 'dev-a', '--metric', 'pm25', '--reference', 'ref-1', '--from', iso(P0)]
    const fitted = await cli('calibration', 'fit', ...args, '--to', iso(P0 + HOURS * HOUR_MS), '--json')
    expect(fitted.code, fitted.stderr()).toBe(0)
    const c = Calibration.parse(JSON.parse(fitted.stdout()))
    expect(c.slope).toBeCloseTo(0.5, 10)
    expect(c.intercept).toBeCloseTo(2, 9)
    // No RH sensor: no humidity correction, the line is fitted on and applied to raw values.
    expect(c).toMatchObject({
      device: 'dev-a',
      version: 1,
      applied_after: null,
      valid_from: iso(P0),
      created_by: 'cli',
    })
    expect(c.basis).toMatchObject({ kind: 'colocation', reference: 'ref-1', n: HOURS })
    expect(fitted.stderr()).toContain('"actor":"cli"')

    const text = await cli('calibration', 'fit', ...args, '--to', iso(P0 + HOURS * HOUR_MS))
    expect(text.code).toBe(0)
    expect(text.stdout()).toMatch(
      /^cal-\d+@2: dev-a pm25 = 0\.[45]\d* · x \+ [12](\.\d+)? \(raw values\), valid from 2026-11-01T00:00:00\.000Z\n/,
    )
    expect(text.stdout()).toMatch(/fitted on 26 hours against ref-1 .* r² 1\.0000, RMSE 0\.000/)
  })

  it('refuses fewer than 24 paired hours with the reason (exit 1)', async () => {
    const res = await cli(
      'calibration',
      'fit',
      ...['--device', 'dev-a', '--metric', 'pm25', '--reference', 'ref-1'],
      ...['--from', iso(P0), '--to', iso(P0 + 20 * HOUR_MS)],
    )
    expect(res.code).toBe(1)
    expect(res.stderr()).toMatch(/at least 24 hourly pairs .*found 20.*\[too_few_pairs\]/)
    expect(await storage.calibrations.list()).toEqual([])
  })

  it('names the flag of a bad argument (exit 2)', async () => {
    const res = await cli(
      'calibration',
      'fit',
      ...['--device', 'dev-a', '--metric', 'pm25', '--reference', 'ref-1'],
      ...['--from', '2026-11-01T00:30:00Z', '--to', iso(P0 + HOURS * HOUR_MS)],
    )
    expect(res.code).toBe(2)
    expect(res.stderr()).toContain('--from: from must be a whole hour (UTC)')
  })
})

describe('skolluft calibration add, list, retire', () => {
  it('adds versions, lists them, retires once', async () => {
    const add = (slope: string) =>
      cli(
        'calibration',
        'add',
        ...['--device', 'dev-n', '--metric', 'no2', '--slope', slope, '--intercept=-3'],
        ...['--valid-from', '2026-11-01T00:00:00Z', '--note', 'lab sheet', '--json'],
      )
    const first = Calibration.parse(JSON.parse((await add('1.2')).stdout()))
    const second = Calibration.parse(JSON.parse((await add('1.3')).stdout()))
    expect([first.version, second.version]).toEqual([1, 2])
    expect(first).toMatchObject({
      slope: 1.2,
      intercept: -3,
      applied_after: null,
      basis: { kind: 'manual', note: 'lab sheet' },
    })

    const table = await cli('calibration', 'list', '--device', 'dev-n')
    expect(table.code).toBe(0)
    const lines = table.stdout().trim().split('\n')
    expect(lines[0]?.split('\t')).toEqual([
      'REF',
      'DEVICE',
      'METRIC',
      'SLOPE',
      'INTERCEPT',
      'AFTER',
      'VALID FROM',
      'VALID TO',
      'BASIS',
    ])
    expect(lines.slice(1).map((l) => l.split('\t').slice(0, 5))).toEqual([
      [first.ref, 'dev-n', 'no2', '1.2', '-3'],
      [second.ref, 'dev-n', 'no2', '1.3', '-3'],
    ])
    expect((await cli('calibration', 'list', '--device', 'dev-a')).stdout()).toMatch(/^no calibrations/)
    const json = await cli('calibration', 'list', '--metric', 'no2', '--json')
    expect(z.array(Calibration).parse(JSON.parse(json.stdout()))).toHaveLength(2)

    const retired = await cli('calibration', 'retire', first.id, '--at', '2026-12-01T00:00:00Z')
    expect(retired.code, retired.stderr()).toBe(0)
    expect(retired.stdout()).toContain(`${first.ref} (dev-n no2) retired: valid to 2026-12-01T00:00:00.000Z`)
    expect((await storage.calibrations.get(first.id))?.validTo).toBe(Date.parse('2026-12-01T00:00:00Z'))
    const again = await cli('calibration', 'retire', first.id)
    expect(again.code).toBe(1)
    expect(again.stderr()).toMatch(/retired already.*\[already_retired\]/)
    const audits = await storage.access.listAudit({ limit: 10 })
    expect(audits.map((a) => [a.actor, a.action])).toEqual([
      ['cli', 'calibration.retire'],
      ['cli', 'calibration.create'],
      ['cli', 'calibration.create'],
    ])
  })

  it('refuses bad input with the flag and reason', async () => {
    const bad = await cli(
      'calibration',
      'add',
      ...['--device', 'dev-n', '--metric', 'no2', '--slope', 'steep', '--intercept', '0'],
      ...['--valid-from', 'soon'],
    )
    expect(bad.code).toBe(2)
    expect(bad.stderr()).toContain('--slope: slope must be a number')
    expect(bad.stderr()).toContain('--valid-from: validFrom must be an ISO 8601 date-time')
    const unmeasured = await cli(
      'calibration',
      'add',
      ...['--device', 'dev-a', '--metric', 'no2', '--slope', '1', '--intercept', '0'],
      ...['--valid-from', '2026-11-01T00:00:00Z'],
    )
    expect(unmeasured.code).toBe(1)
    expect(unmeasured.stderr()).toMatch(/device dev-a does not measure no2 \[metric_not_measured\]/)
    expect((await cli('calibration', 'retire', 'cal-77')).stderr()).toMatch(/no calibration with id "cal-77"/)
    expect((await cli('calibration', 'list', '--metric', 'co2')).code).toBe(2)
    expect((await cli('calibration', 'frobnicate')).code).toBe(2)
  })
})
