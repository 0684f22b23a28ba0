import { createHash } from 'node:crypto'
import { access, readFile, writeFile } from 'node:fs/promises'
import { request as httpRequest } from 'node:http'
import { join } from 'node:path'
import { startApi } from '@skolluft/api'
import { DAY_MS, HOUR_MS, type SiteInput } from '@skolluft/core'
import { Manifest } from '@skolluft/export'
import { silentLogger } from '@skolluft/runtime'
import type { StoredReading } from '@skolluft/storage'
import { tempDir } from '@skolluft/testkit'
import { tableFromIPC } from 'apache-arrow'
import { readParquet } from 'parquet-wasm/node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { openDataDir, withDataDir } from '../data-dir.ts'
import { runCli } from '../main.ts'
import { capture } from '../test-io.ts'

/** `skolluft export` in process on a real SQLite data directory. */
const T0 = Date.UTC(2026, 0, 12)
/** dev-2's readings: a day later. */
const T1 = T0 + DAY_MS
let dir: Awaited<ReturnType<typeof tempDir>>
let env: NodeJS.ProcessEnv

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
  await withDataDir({ DATA_DIR: dir.path }, async (storage) => {
    await storage.registry.upsertSites([site])
    await storage.readings.writeReadings(readings)
    // A registered SDS011 with its own RH, a day later (the tests above never see it).
    await storage.registry.addDevice(
      {
        id: 'dev-2',
        model: 'SDS011',
        sensors: ['pm25', 'pm10', 'rh'],
        intervalS: 60,
        secretHash: 'x',
        placement: { siteId: 'site-a', from: T0, indoor: false, heightM: null },
      },
      T0,
    )
    await storage.readings.writeReadings(
      Array.from({ length: 120 }, (_, i) => ({
        deviceId: 'dev-2',
        siteId: 'site-a',
        ts: T1 + i * 60_000 + (i % 3),
        seq: i,
        values: { pm25: 4 + (i % 13) * 0.7, pm10: 9 + (i % 5) * 1.1, rh: 60 + (i % 35) },
        receivedAt: T1,
        expectedPerHour: 60,
      })),
    )
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
    // Pinned to schema 1: these tests keep checking that a schema=1 export is exactly what it was before schema 2.
    '--schema',
    '1',
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
    expect(c.stderr()).toMatch(/metrics/)
    const d = capture()
    expect(await runCli(['export', '--resolution', 'raw'], env, d.io)).toBe(2)
    expect(d.stderr()).toMatch(/--out/)
  })
})

describe('skolluft export, schema 2', () => {
  /** Raw readings of both devices over both days. */
  const params = (extra: Record<string, string> = {}): Record<string, string> => ({
    resolution: 'raw',
    from: new Date(T0).toISOString(),
    to: new Date(T1 + 2 * HOUR_MS).toISOString(),
    ...extra,
  })
  const argv = (out: string, p: Record<string, string>, more: string[] = []) => [
    'export',
    ...Object.entries(p).flatMap(([k, v]) => [`--${k}`, v]),
    '--out',
    out,
    ...more,
  ]
  const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex')
  const manifestOf = async (out: string) => Manifest.parse(JSON.parse(await readFile(`${out}.manifest.json`, 'utf8')))

  it('writes with --format parquet the bytes GET /api/v1/export sends for the same query', async () => {
    const out = join(dir.path, 'raw.parquet')
    const c = capture()
    expect(await runCli(argv(out, params({ format: 'parquet' })), env, c.io), c.stderr()).toBe(0)
    const file = await readFile(out)
    const table = tableFromIPC(readParquet(new Uint8Array(file)).intoIPCStream())
    expect(table.numRows).toBe(240 + 360)
    expect(table.schema.metadata.get('skolluft.schema')).toBe('skolluft-export/2')
    const manifest = await manifestOf(out)
    expect(manifest).toMatchObject({ format: 'parquet', rows: 600, bytes: file.length, sha256: sha256(file) })

    const token = capture()
    expect(await runCli(['token', 'create', '--role', 'researcher', '--json'], env, token.io)).toBe(0)
    const { token: secret } = z.object({ token: z.string() }).parse(JSON.parse(token.stdout()))
    const storage = await openDataDir({ DATA_DIR: dir.path })
    const api = await startApi({ log: silentLogger(), storage, host: '127.0.0.1', port: 0 })
    try {
      const body = await new Promise<Buffer>((resolve, reject) => {
        const req = httpRequest(
          {
            host: '127.0.0.1',
            port: api.port,
            path: `/api/v1/export?${new URLSearchParams(params({ format: 'parquet' }))}`,
            headers: { Authorization: `Bearer ${secret}` },
          },
          (res) => {
            const chunks: Buffer[] = []
            res.on('data', (chunk: Buffer) => chunks.push(chunk))
            res.on('end', () =>
              res.statusCode === 200 ? resolve(Buffer.concat(chunks)) : reject(new Error(`${res.statusCode}`)),
            )
            res.on('error', reject)
          },
        )
        req.on('error', reject)
        req.end()
      })
      expect(body.equals(file)).toBe(true)
    } finally {
      await api.close()
      await storage.close()
    }
  })

  it('--resume continues a partial file cut anywhere into the file an uninterrupted run writes', async () => {
    for (const format of ['csv', 'ndjson']) {
      const full = join(dir.path, `full.${format}`)
      expect(await runCli(argv(full, params({ format })), env, capture().io)).toBe(0)
      const bytes = await readFile(full)
      const fullManifest = await manifestOf(full)
      const ends: number[] = []
      for (let i = bytes.indexOf(0x0a); i >= 0; i = bytes.indexOf(0x0a, i + 1)) ends.push(i + 1)
      const first = ends[0] ?? 0
      const cuts = [
        5, // inside the first line
        first, // exactly after the first line (CSV: the header only)
        (ends[2] ?? 0) + 7, // mid-line
        ends[239] ?? 0, // the last row of dev-1 (a device edge)
        (ends[300] ?? 0) + 1, // just after a line end
        bytes.length - 3, // inside the last line
        bytes.length, // complete but not renamed
      ]
      for (const cut of cuts) {
        const out = join(dir.path, `resumed-${cut}.${format}`)
        await writeFile(`${out}.partial`, bytes.subarray(0, cut))
        const c = capture()
        expect(await runCli(argv(out, params({ format }), ['--resume']), env, c.io), c.stderr()).toBe(0)
        const resumed = await readFile(out)
        expect({ format, cut, same: resumed.equals(bytes) }).toEqual({ format, cut, same: true })
        await expect(access(`${out}.partial`)).rejects.toThrow()
        const manifest = await manifestOf(out)
        expect(manifest).toMatchObject({ rows: fullManifest.rows, bytes: bytes.length, sha256: sha256(bytes) })
        expect(manifest.sha256).toBe(fullManifest.sha256)
        // A partial file with at least one row is continued, not started over.
        const rowsKept = ends.filter((e) => e <= cut).length - (format === 'csv' ? 1 : 0)
        if (rowsKept > 0) expect(c.stdout()).toContain(`resumed after ${rowsKept} rows`)
        else expect(c.stdout()).not.toContain('resumed after')
      }
    }
  })

  it('--values corrected: rows carry the chain, the manifest lists the humidity correction and the calibration', async () => {
    const added = capture()
    const calibration = [
      'calibration',
      'add',
      '--device',
      'dev-2',
      '--metric',
      'pm25',
      '--slope',
      '1.1',
      '--intercept',
      '0.25',
      '--valid-from',
      new Date(T1 + HOUR_MS).toISOString(),
      '--json',
    ]
    expect(await runCli(calibration, env, added.io), added.stderr()).toBe(0)
    const { ref } = z.object({ ref: z.string() }).parse(JSON.parse(added.stdout()))
    const out = join(dir.path, 'corrected.csv')
    expect(await runCli(argv(out, params({ values: 'corrected' })), env, capture().io)).toBe(0)
    const rows = (await readFile(out, 'utf8'))
      .trimEnd()
      .split('\r\n')
      .map((l) => l.split(','))
    expect(rows[0]).toEqual([
      'time',
      'site_id',
      'device_id',
      'metric',
      'value',
      'unit',
      'qc',
      'flags',
      'corrected',
      'correction',
    ])
    const pm25 = rows.filter((r) => r[2] === 'dev-2' && r[3] === 'pm25')
    // rh-hackair@1 (air-quality.md §4.2), then 1.1 · x + 0.25 from T1 + 1 h.
    for (const r of pm25) {
      const time = Date.parse(r[0] ?? '')
      const i = Math.round((time - T1) / 60_000)
      const rh = 60 + (i % 35)
      const humid = Number(r[4]) / (1 + 0.48756 * (rh / 100) ** 8.60068)
      const want = time >= T1 + HOUR_MS ? 1.1 * humid + 0.25 : humid
      expect(r[9]).toBe(time >= T1 + HOUR_MS ? `rh-hackair@1+${ref}` : 'rh-hackair@1')
      expect(Number(r[8])).toBeCloseTo(want, 9)
    }
    expect(
      new Set(
        rows
          .slice(1)
          .filter((r) => r[2] === 'dev-1')
          .map((r) => r[9]),
      ),
    ).toEqual(new Set(['none']))
    const manifest = await manifestOf(out)
    expect(manifest.values).toBe('corrected')
    expect(manifest.corrections.map((c) => c.id)).toEqual([ref, 'rh-hackair@1'].sort())
    expect(manifest.corrections.find((c) => c.id === ref)?.parameters).toMatchObject({
      deviceId: 'dev-2',
      metric: 'pm25',
      slope: 1.1,
      intercept: 0.25,
    })
    expect(manifest.corrections.find((c) => c.id === 'rh-hackair@1')?.description).toContain('8.60068')
  })
})
