import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { HOUR_MS, type SiteInput } from '@skolluft/core'
import type { StoredReading } from '@skolluft/storage'
import { tempDir } from '@skolluft/testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { withDataDir } from '../data-dir.ts'
import { type CliIo, runCli } from '../main.ts'
import { Manifest } from './export.ts'

/** `skolluft export` in process on a real SQLite data directory. */
const T0 = Date.UTC(2026, 0, 12)
let dir: Awaited<ReturnType<typeof tempDir>>
let env: NodeJS.ProcessEnv

function capture(): { io: CliIo; out: string[]; err: string[] } {
  const out: string[] = []
  const err: string[] = []
  return { io: { out: (t) => out.push(t), err: (t) => err.push(t) }, out, err }
}

beforeAll(async () => {
  dir = await tempDir()
  env = { DATA_DIR: dir.path, LOG_LEVEL: 'silent', EXPORT_LICENCE: 'CC-BY-4.0' }
  const site: SiteInput = { id: 'site-a', name: 'A', kind: 'school', municipality: 'Lund', lat: 55.7, lon: 13.19 }
  const readings: StoredReading[] = Array.from({ length: 120 }, (_, i) => ({
    deviceId: 'dev-1',
    siteId: 'site-a',
    ts: T0 + i * 60_000,
    seq: i,
    values: { pm25: i / 3, no2: -i / 7 },
    receivedAt: T0,
    expectedPerHour: 60,
  }))
  await withDataDir(dir.path, async (storage) => {
    await storage.registry.upsertSites([site])
    await storage.readings.writeReadings(readings)
  })
})

afterAll(async () => {
  await dir?.cleanup()
})

describe('skolluft export', () => {
  const args = (out: string, extra: string[] = []) => [
    'export',
    '--resolution',
    'raw',
    '--from',
    new Date(T0).toISOString(),
    '--to',
    new Date(T0 + 2 * HOUR_MS).toISOString(),
    '--out',
    out,
    ...extra,
  ]

  it('writes the file and a manifest whose checksum and row count match it; twice the same bytes', async () => {
    const out = join(dir.path, 'raw.csv')
    const c = capture()
    expect(await runCli(args(out), env, c.io)).toBe(0)
    const bytes = await readFile(out)
    const lines = bytes.toString('utf8').split('\r\n')
    expect(lines[0]).toBe('time,site_id,device_id,metric,value,unit')
    expect(lines[1]).toBe('2026-01-12T00:00:00.000Z,site-a,dev-1,pm25,0,µg/m³')
    expect(lines.at(-1)).toBe('')
    const manifest = Manifest.parse(JSON.parse(await readFile(`${out}.manifest.json`, 'utf8')))
    expect(manifest).toMatchObject({
      schema: 'skolluft-export/1',
      file: 'raw.csv',
      format: 'csv',
      resolution: 'raw',
      rows: 240,
      bytes: bytes.length,
      sha256: createHash('sha256').update(bytes).digest('hex'),
      licence: 'CC-BY-4.0',
      software: { name: 'skolluft', version: expect.stringMatching(/^\d+\.\d+\.\d+/) },
      query: { resolution: 'raw', from: new Date(T0).toISOString() },
    })
    expect(lines).toHaveLength(manifest.rows + 2)
    const again = join(dir.path, 'again.csv')
    expect(await runCli(args(again), env, capture().io)).toBe(0)
    expect((await readFile(again)).equals(bytes)).toBe(true)
  })

  it('writes NDJSON of the asked metrics', async () => {
    const out = join(dir.path, 'no2.ndjson')
    expect(await runCli(args(out, ['--format', 'ndjson', '--metrics', 'no2']), env, capture().io)).toBe(0)
    const lines = (await readFile(out, 'utf8')).trimEnd().split('\n')
    expect(lines).toHaveLength(120)
    expect(JSON.parse(lines[7] ?? '')).toMatchObject({ metric: 'no2', value: -1 })
  })

  it('refuses a bad query or a missing --out with the reason', async () => {
    const c = capture()
    expect(await runCli(args(join(dir.path, 'x.csv'), ['--metrics', 'co2']), env, c.io)).toBe(1)
    expect(c.err.join('')).toMatch(/metrics/)
    const d = capture()
    expect(await runCli(['export', '--resolution', 'raw'], env, d.io)).toBe(2)
    expect(d.err.join('')).toMatch(/--out/)
  })
})
