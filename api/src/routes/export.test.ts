import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { request as httpRequest } from 'node:http'
import { join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import {
  DATA_DICTIONARY,
  DAY_MS,
  type ExportColumn,
  FINAL_GRACE_MS,
  HOUR_MS,
  METRIC_INFO,
  METRICS,
  type Metric,
  type Role,
} from '@skolluft/core'
import { ExportEnv, Manifest } from '@skolluft/export'
import { startQualityChecks } from '@skolluft/ingest'
import { hashSecret, silentLogger } from '@skolluft/runtime'
import { EXPORT_BATCH_ROWS, openSqliteStorage, type Storage, type StoredReading } from '@skolluft/storage'
import { pythonCsv, tempDir, waitFor } from '@skolluft/testkit'
import { tableFromIPC } from 'apache-arrow'
import { readParquet } from 'parquet-wasm/node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { type RunningApi, startApi } from '../server.ts'
import { addTestUsers, type Caller, call, createToken, logIn } from '../test-http.ts'
import { EXPORT_QUOTA } from './export.ts'

/**
 * GET /api/v1/export over real HTTP against a real SQLite file. Readings are written through
 * storage.readings.writeReadings; the CSV is read back by an independent reader (Python's csv module) and every
 * value compared with what was written; expected hourly and daily numbers are computed here from the written
 * readings, without core.
 */
const NOW = Date.parse('2026-11-30T12:00:00Z')
const clock = () => NOW
/** 2026-01-12T00:00Z, a Monday; the UTC+1 day containing it starts 2026-01-11T23:00Z. */
const T0 = Date.UTC(2026, 0, 12)
const MINUTE_MS = 60_000
const FROM = new Date(T0 - DAY_MS).toISOString()
const TO = new Date(T0 + 2 * DAY_MS).toISOString()

const SITES = [
  { id: 'site-a', lat: 55.7, lon: 13.19 },
  { id: 'site-b', lat: 55.71, lon: 13.2 },
  { id: 'site-c', lat: 59.33, lon: 18.07 },
]

/** Values with awkward decimals, negatives, tiny and large numbers: they must come back exactly. */
function value(i: number, metric: Metric): number {
  switch (metric) {
    case 'no2':
      return i % 7 === 0 ? -(i / 3) - 0.25 : i * 0.1 + 0.2
    case 'pm25':
      return i % 11 === 0 ? 1e-7 * i : Math.round(i * 1.337 * 1000) / 1000
    case 'temp':
      return -5 + i / 9
    default:
      return i * 0.7 + 1e-3
  }
}

/** Written readings: a1 at A (20 hours, every metric), a2 at A (pm25, 3 hours), b at B (no2, pm10), c at C, and one without a site. */
function written(): StoredReading[] {
  const out: StoredReading[] = []
  const series = (deviceId: string, siteId: string | null, count: number, metrics: readonly Metric[]) => {
    for (let i = 0; i < count; i++) {
      const ts = T0 - 4 * HOUR_MS + i * MINUTE_MS + (i % 3) // not whole minutes: ms must survive
      const values = Object.fromEntries(metrics.map((m) => [m, value(i, m)]))
      out.push({ deviceId, siteId, ts, seq: i, values, receivedAt: ts + 1000, expectedPerHour: 60 })
    }
  }
  series('dev-a1', 'site-a', 20 * 60, METRICS)
  series('dev-a2', 'site-a', 3 * 60 - 20, ['pm25'])
  series('dev-b', 'site-b', 150, ['no2', 'pm10'])
  series('dev-c', 'site-c', 30, ['pm25'])
  series('dev-x', null, 10, ['pm25'])
  return out
}
const WRITTEN = written()

let dir: Awaited<ReturnType<typeof tempDir>>
let storage: Storage
let publicOff: RunningApi
let publicOn: RunningApi
const auth = new Map<string, Record<string, string>>()

const USERS: readonly { who: string; role: Role; sites: string[] }[] = [
  { who: 'admin', role: 'admin', sites: [] },
  { who: 'principal', role: 'principal', sites: ['site-a'] },
]

beforeAll(async () => {
  dir = await tempDir('skolluft-export-')
  storage = openSqliteStorage({ path: join(dir.path, 'skolluft.db') })
  await storage.registry.upsertSites(
    SITES.map((s) => ({ ...s, name: `Skola ${s.id}`, kind: 'school' as const, municipality: 'Lund' })),
  )
  await storage.readings.writeReadings(WRITTEN)
  await addTestUsers(storage, USERS, NOW - DAY_MS)
  const base = { log: silentLogger(), storage, clock, host: '127.0.0.1', port: 0 }
  publicOff = await startApi({ ...base, options: { publicMap: false } })
  publicOn = await startApi({ ...base, options: { publicMap: true } })
  let csrf = ''
  for (const user of USERS) {
    const res = await fetch(`http://127.0.0.1:${publicOff.port}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ email: `${user.who}@example.org`, password: `password of ${user.who}` }),
    })
    expect(res.status).toBe(200)
    const login = z.object({ csrfToken: z.string() }).parse(await res.json())
    const cookie = res.headers
      .getSetCookie()
      .map((c) => /^skolluft_session=([^;]+)/.exec(c)?.[1])
      .find((v) => v !== undefined)
    if (cookie === undefined) throw new Error('no session cookie')
    auth.set(user.who, { Cookie: `skolluft_session=${cookie}` })
    if (user.who === 'admin') csrf = login.csrfToken
  }
  const created = await fetch(`http://127.0.0.1:${publicOff.port}/api/v1/tokens`, {
    method: 'POST',
    headers: { ...auth.get('admin'), 'Content-Type': 'application/json', 'X-CSRF-Token': csrf },
    body: JSON.stringify({ name: 'study', role: 'researcher' }),
  })
  expect(created.status).toBe(201)
  const { token } = z.object({ token: z.string() }).parse(await created.json())
  auth.set('researcher', { Authorization: `Bearer ${token}` })
})

afterAll(async () => {
  await publicOff?.close()
  await publicOn?.close()
  await storage?.close()
  await dir?.cleanup()
})

interface Raw {
  readonly status: number
  readonly headers: Record<string, string | string[] | undefined>
  readonly body: Buffer
}

/** A GET with node:http, so the body arrives as sent (fetch would decompress gzip itself). */
function get(server: RunningApi, path: string, headers: Record<string, string> = {}): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: server.port, path: `/api/v1${path}`, headers }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

const SITE_ORDER = ['', 'site-a', 'site-b', 'site-c']

/** The raw rows the written readings should give, in the documented order, cells as CSV text. */
function expectedRaw(filter: (r: StoredReading) => boolean, metrics: readonly Metric[] = METRICS): string[][] {
  const rows = WRITTEN.filter(filter).sort(
    (a, b) =>
      SITE_ORDER.indexOf(a.siteId ?? '') - SITE_ORDER.indexOf(b.siteId ?? '') ||
      a.deviceId.localeCompare(b.deviceId) ||
      a.ts - b.ts,
  )
  return rows.flatMap((r) =>
    METRICS.filter((m) => metrics.includes(m) && r.values[m] !== undefined).map((m) => [
      new Date(r.ts).toISOString(),
      r.siteId ?? '',
      r.deviceId,
      m,
      String(r.values[m]),
      METRIC_INFO[m].unit,
    ]),
  )
}

function query(params: Record<string, string>): string {
  // Pinned to schema 1: these tests keep checking that a schema=1 export is exactly what it was before schema 2.
  return `/export?${new URLSearchParams({ from: FROM, to: TO, schema: '1', ...params }).toString()}`
}

describe('GET /export raw', () => {
  it('streams every written value as RFC 4180 CSV that Python reads back exactly', async () => {
    const res = await get(publicOff, query({ resolution: 'raw', format: 'csv' }), auth.get('researcher'))
    expect(res.status).toBe(200)
    expect(res.headers['content-type']).toBe('text/csv; charset=utf-8; header=present')
    expect(res.headers['x-skolluft-export-schema']).toBe('skolluft-export/1')
    expect(res.headers['content-disposition']).toBe(
      'attachment; filename="skolluft-raw-20260111T000000Z-20260114T000000Z.csv"',
    )
    const rows = pythonCsv(res.body)
    expect(rows[0]).toEqual(['time', 'site_id', 'device_id', 'metric', 'value', 'unit'])
    const expected = expectedRaw(() => true)
    expect(rows.length - 1).toBe(expected.length)
    expect(rows.slice(1)).toEqual(expected)
    // Every number reads back to the double that was written.
    const byKey = new Map(WRITTEN.map((r) => [`${r.deviceId}@${new Date(r.ts).toISOString()}`, r]))
    for (const [time, , device, metric, cell] of rows.slice(1)) {
      const m = z.enum(METRICS).parse(metric)
      expect(Number(cell)).toBe(byKey.get(`${device}@${time}`)?.values[m])
    }
  })

  it('gives the same rows as NDJSON, keys in column order', async () => {
    const res = await get(publicOff, query({ resolution: 'raw', format: 'ndjson' }), auth.get('researcher'))
    expect(res.status).toBe(200)
    expect(res.headers['content-type']).toBe('application/x-ndjson')
    const text = res.body.toString('utf8')
    expect(text.endsWith('\n')).toBe(true)
    const lines = text.slice(0, -1).split('\n')
    const expected = expectedRaw(() => true)
    expect(lines).toHaveLength(expected.length)
    lines.forEach((line, i) => {
      const object = z.record(z.string(), z.unknown()).parse(JSON.parse(line))
      expect(Object.keys(object)).toEqual(['time', 'site_id', 'device_id', 'metric', 'value', 'unit'])
      const [time, site, device, metric, v, unit] = expected[i] ?? []
      expect(object).toEqual({
        time,
        site_id: site === '' ? null : site,
        device_id: device,
        metric,
        value: Number(v),
        unit,
      })
    })
  })

  it('filters by sites, devices, bbox, metrics and [from, to)', async () => {
    const from = T0 - 3 * HOUR_MS
    const to = T0 - 2 * HOUR_MS
    const res = await get(
      publicOff,
      `/export?${new URLSearchParams({
        resolution: 'raw',
        from: new Date(from).toISOString(),
        to: new Date(to).toISOString(),
        bbox: '13.1,55.6,13.3,55.8',
        devices: 'dev-a2,dev-b',
        metrics: 'pm10,pm25',
        schema: '1',
      })}`,
      auth.get('researcher'),
    )
    expect(res.status).toBe(200)
    const rows = pythonCsv(res.body).slice(1)
    const expected = expectedRaw(
      (r) => (r.deviceId === 'dev-a2' || r.deviceId === 'dev-b') && r.ts >= from && r.ts < to,
      ['pm25', 'pm10'],
    )
    expect(rows).toEqual(expected)
    expect(new Set(rows.map((r) => r[2]))).toEqual(new Set(['dev-a2', 'dev-b']))
    const siteB = await get(publicOff, query({ resolution: 'raw', sites: 'site-b' }), auth.get('researcher'))
    expect(pythonCsv(siteB.body).slice(1)).toEqual(expectedRaw((r) => r.siteId === 'site-b'))
    const nowhere = await get(publicOff, query({ resolution: 'raw', bbox: '0,0,1,1' }), auth.get('researcher'))
    expect(nowhere.body.toString()).toBe('time,site_id,device_id,metric,value,unit\r\n')
  })

  it('gzips on request, and a repeated request returns identical bytes', async () => {
    const path = query({ resolution: 'raw' })
    const plain = await get(publicOff, path, auth.get('researcher'))
    const again = await get(publicOff, path, auth.get('researcher'))
    expect(plain.headers['content-encoding']).toBeUndefined()
    expect(again.body.equals(plain.body)).toBe(true)
    const zipped = await get(publicOff, path, { ...auth.get('researcher'), 'Accept-Encoding': 'gzip' })
    const zippedAgain = await get(publicOff, path, { ...auth.get('researcher'), 'Accept-Encoding': 'gzip' })
    expect(zipped.headers['content-encoding']).toBe('gzip')
    expect(zipped.body.length).toBeLessThan(plain.body.length / 3)
    expect(gunzipSync(zipped.body).equals(plain.body)).toBe(true)
    expect(zippedAgain.body.equals(zipped.body)).toBe(true)
    const ndjson = await get(publicOff, query({ resolution: 'raw', format: 'ndjson' }), {
      ...auth.get('researcher'),
      'Accept-Encoding': 'gzip',
    })
    expect(ndjson.headers['content-encoding']).toBe('gzip')
    expect(gunzipSync(ndjson.body).toString().split('\n')).toHaveLength(expectedRaw(() => true).length + 1)
  })
})

describe('GET /export streaming', () => {
  it('resumes with a byte range: 206 with the rest of the identical body, its length and a SHA-256 ETag', async () => {
    for (const params of [
      { resolution: 'raw', format: 'csv', schema: '2' },
      { resolution: 'hourly', format: 'parquet', schema: '2' },
    ]) {
      const path = `/export?${new URLSearchParams({ from: FROM, to: TO, ...params }).toString()}`
      const whole = await get(publicOff, path, auth.get('researcher'))
      expect(whole.status).toBe(200)
      expect(whole.headers['accept-ranges']).toBe('bytes')
      const etag = `"sha256-${createHash('sha256').update(whole.body).digest('hex')}"`
      const total = whole.body.length
      for (const start of [0, 1, Math.floor(total / 3), total - 1]) {
        // Asked gzipped too: a range is of the identity body, so the answer is not compressed.
        const rest = await get(publicOff, path, {
          ...auth.get('researcher'),
          Range: `bytes=${start}-`,
          'Accept-Encoding': 'gzip',
        })
        expect(rest.status, `${params.format} from byte ${start}`).toBe(206)
        expect(rest.headers['content-encoding']).toBeUndefined()
        expect(rest.headers['content-range']).toBe(`bytes ${start}-${total - 1}/${total}`)
        expect(rest.headers['content-length']).toBe(String(total - start))
        expect(rest.headers.etag).toBe(etag)
        expect(Buffer.concat([whole.body.subarray(0, start), rest.body]).equals(whole.body)).toBe(true)
      }
      // If-Range with the same ETag resumes; another one gets the whole body again (200).
      const same = await get(publicOff, path, { ...auth.get('researcher'), Range: 'bytes=10-', 'If-Range': etag })
      expect(same.status).toBe(206)
      const changed = await get(publicOff, path, {
        ...auth.get('researcher'),
        Range: 'bytes=10-',
        'If-Range': '"sha256-0"',
      })
      expect(changed.status).toBe(200)
      expect(changed.body.equals(whole.body)).toBe(true)
      // Past the end: 416 with the length; a form it does not serve (several ranges): the whole body.
      const past = await get(publicOff, path, { ...auth.get('researcher'), Range: `bytes=${total}-` })
      expect(past.status).toBe(416)
      expect(past.headers['content-range']).toBe(`bytes */${total}`)
      const multi = await get(publicOff, path, { ...auth.get('researcher'), Range: 'bytes=0-1,5-' })
      expect(multi.status).toBe(200)
      expect(multi.body.equals(whole.body)).toBe(true)
    }
  })

  it('delivers every byte to a client that stops reading for a while, and survives one that hangs up', async () => {
    const path = query({ resolution: 'raw' })
    const whole = await get(publicOff, path, auth.get('researcher'))
    // A slow reader: paused after the first chunk, so the server has to wait for 'drain'.
    const slow = await new Promise<Buffer>((resolve, reject) => {
      const req = httpRequest(
        { host: '127.0.0.1', port: publicOff.port, path: `/api/v1${path}`, headers: auth.get('researcher') },
        (res) => {
          const chunks: Buffer[] = []
          res.once('data', (first: Buffer) => {
            chunks.push(first)
            res.pause()
            setTimeout(() => {
              res.on('data', (c: Buffer) => chunks.push(c))
              res.resume()
            }, 300)
          })
          res.on('end', () => resolve(Buffer.concat(chunks)))
          res.on('error', reject)
        },
      )
      req.on('error', reject)
      req.end()
    })
    expect(slow.equals(whole.body)).toBe(true)
    // A client that goes away after the first chunk.
    await new Promise<void>((resolve, reject) => {
      const req = httpRequest(
        { host: '127.0.0.1', port: publicOff.port, path: `/api/v1${path}`, headers: auth.get('researcher') },
        (res) => {
          res.once('data', () => {
            req.destroy()
            resolve()
          })
        },
      )
      req.on('error', (error) => (req.destroyed ? undefined : reject(error)))
      req.end()
    })
    const after = await get(publicOff, path, auth.get('researcher'))
    expect(after.body.equals(whole.body)).toBe(true)
  })

  it('answers HEAD with the headers and no body', async () => {
    const res = await new Promise<{ status: number; schema: unknown; length: number }>((resolve, reject) => {
      const req = httpRequest(
        {
          method: 'HEAD',
          host: '127.0.0.1',
          port: publicOff.port,
          path: `/api/v1${query({ resolution: 'raw' })}`,
          headers: auth.get('researcher'),
        },
        (r) => {
          let length = 0
          r.on('data', (c: Buffer) => {
            length += c.length
          })
          r.on('end', () =>
            resolve({ status: r.statusCode ?? 0, schema: r.headers['x-skolluft-export-schema'], length }),
          )
        },
      )
      req.on('error', reject)
      req.end()
    })
    expect(res).toEqual({ status: 200, schema: 'skolluft-export/1', length: 0 })
  })
})

/** Hourly numbers per site, metric and hour, computed here from the written readings. */
function expectedHourly(): string[][] {
  interface Acc {
    n: number
    sum: number
    min: number
    max: number
    devices: Set<string>
  }
  const acc = new Map<string, Acc>()
  for (const r of WRITTEN) {
    if (r.siteId === null) continue
    const hour = Math.floor(r.ts / HOUR_MS) * HOUR_MS
    for (const m of METRICS) {
      const v = r.values[m]
      if (v === undefined) continue
      const key = `${r.siteId}|${hour}|${m}`
      const a = acc.get(key) ?? { n: 0, sum: 0, min: v, max: v, devices: new Set() }
      a.n += 1
      a.sum += v
      a.min = Math.min(a.min, v)
      a.max = Math.max(a.max, v)
      a.devices.add(r.deviceId)
      acc.set(key, a)
    }
  }
  return [...acc]
    .map(([key, a]) => {
      const [site = '', hour = '', metric = ''] = key.split('|')
      const expected = 60 * a.devices.size
      const coverage = Math.min(1, a.n / expected)
      return { site, hour: Number(hour), metric, a, expected, coverage }
    })
    .sort(
      (x, y) =>
        x.site.localeCompare(y.site) ||
        x.hour - y.hour ||
        METRICS.indexOf(z.enum(METRICS).parse(x.metric)) - METRICS.indexOf(z.enum(METRICS).parse(y.metric)),
    )
    .map((h) => [
      new Date(h.hour).toISOString(),
      h.site,
      h.metric,
      h.a.sum / h.a.n,
      h.a.min,
      h.a.max,
      h.a.n,
      h.expected,
      h.coverage,
      h.coverage >= 0.75,
    ])
    .map((cells) => cells.map((c) => String(c)))
}

function expectHourly(rows: readonly string[][]): void {
  const expected = expectedHourly()
  expect(rows).toHaveLength(expected.length)
  rows.forEach((row, i) => {
    const want = expected[i] ?? []
    // Means are sums added in another order: equal but for the last bits; everything else exactly.
    expect([...row.slice(0, 3), ...row.slice(4)]).toEqual([...want.slice(0, 3), ...want.slice(4)])
    expect(Number(row[3])).toBeCloseTo(Number(want[3]), 9)
  })
}

describe('GET /export hourly and daily', () => {
  it('gives each site-hour n, mean, min, max, expected and coverage as computed from the readings', async () => {
    const res = await get(publicOff, query({ resolution: 'hourly' }), auth.get('researcher'))
    expect(res.status).toBe(200)
    const rows = pythonCsv(res.body)
    expect(rows[0]).toEqual(['time', 'site_id', 'metric', 'mean', 'min', 'max', 'n', 'expected', 'coverage', 'valid'])
    expectHourly(rows.slice(1))
  })

  it('folds valid hours into UTC+1 days: n valid hours of 24, valid from 18', async () => {
    const res = await get(
      publicOff,
      query({ resolution: 'daily', sites: 'site-a', metrics: 'pm25' }),
      auth.get('researcher'),
    )
    const rows = pythonCsv(res.body).slice(1)
    // dev-a1 sends 20 full hours from 20:00Z on the 11th: 3 on the UTC+1 day that started at 23:00Z on the 10th
    // (dev-a2's 2 h 40 min double their expectation; 22Z still has 100 of 120), 17 on the next: never 18.
    expect(rows.map((r) => [r[0], r[1], r[2], r[6], r[7], r[9]])).toEqual([
      ['2026-01-10T23:00:00.000Z', 'site-a', 'pm25', '3', '24', 'false'],
      ['2026-01-11T23:00:00.000Z', 'site-a', 'pm25', '17', '24', 'false'],
    ])
  })
})

describe('who may export', () => {
  const cases: readonly [
    string,
    RunningApi | (() => RunningApi),
    string | undefined,
    Record<string, string>,
    number,
  ][] = [
    ['anonymous raw, public map off', () => publicOff, undefined, { resolution: 'raw' }, 401],
    ['anonymous hourly, public map off', () => publicOff, undefined, { resolution: 'hourly' }, 401],
    ['anonymous raw, public map on', () => publicOn, undefined, { resolution: 'raw' }, 401],
    ['anonymous hourly, public map on', () => publicOn, undefined, { resolution: 'hourly' }, 200],
    ['principal raw', () => publicOff, 'principal', { resolution: 'raw' }, 403],
    ['principal hourly of another site', () => publicOff, 'principal', { resolution: 'hourly', sites: 'site-b' }, 403],
    ['principal hourly of the own site', () => publicOff, 'principal', { resolution: 'hourly', sites: 'site-a' }, 200],
    ['admin raw', () => publicOff, 'admin', { resolution: 'raw' }, 200],
  ]
  it.each(cases)('%s', async (_name, server, who, params, status) => {
    const srv = typeof server === 'function' ? server() : server
    const res = await get(srv, query(params), who === undefined ? {} : auth.get(who))
    expect(res.status).toBe(status)
    if (status >= 400) {
      expect(res.headers['content-type']).toContain('application/problem+json')
      expect(JSON.parse(res.body.toString())).toMatchObject({ code: status === 401 ? 'unauthorized' : 'forbidden' })
    }
  })

  it('gives a principal only the own sites when none are named', async () => {
    const res = await get(publicOff, query({ resolution: 'hourly' }), auth.get('principal'))
    expect(
      new Set(
        pythonCsv(res.body)
          .slice(1)
          .map((r) => r[1]),
      ),
    ).toEqual(new Set(['site-a']))
  })

  it('caps the window for callers without the export permission, not for token holders', async () => {
    const long = { resolution: 'hourly', from: '2020-01-01T00:00:00Z', to: '2026-01-20T00:00:00Z', schema: '1' }
    const anonymous = await get(publicOn, `/export?${new URLSearchParams(long)}`)
    expect(anonymous.status).toBe(400)
    expect(JSON.parse(anonymous.body.toString())).toMatchObject({ code: 'span_too_long' })
    const researcher = await get(publicOn, `/export?${new URLSearchParams(long)}`, auth.get('researcher'))
    expect(researcher.status).toBe(200)
    expectHourly(pythonCsv(researcher.body).slice(1))
  })

  it('refuses malformed queries with a 400 that names the problem', async () => {
    const malformed: Record<string, string>[] = [
      { resolution: 'weekly' },
      { resolution: 'raw', metrics: 'pm25,co2' },
      { resolution: 'raw', bbox: '13,56,12,55' },
      { resolution: 'raw', from: TO, to: FROM },
      { resolution: 'raw', page: '2' },
    ]
    for (const params of malformed) {
      const res = await get(publicOff, query(params), auth.get('researcher'))
      expect({ params, status: res.status }).toEqual({ params, status: 400 })
    }
    const unknown = await get(publicOff, query({ resolution: 'raw', sites: 'nowhere' }), auth.get('researcher'))
    expect(unknown.status).toBe(404)
  })
})

// ---------------------------------------------------------------------------------------------------------------
// Schema 2 (quality flags, corrected values), Parquet, resume, quotas and the manifest, on a storage of its own
// with registered devices. Expected flags and corrected numbers are derived here from the documented rules
// (docs/quality-flags.md) and the reference formulas (air-quality.md §4.2), never by calling the project's code.

/** 2026-03-02T06:00Z: three hours of one reading a minute per device. */
const Q0 = Date.UTC(2026, 2, 2, 6)
const Q_READINGS = 180
const Q_FROM = new Date(Q0).toISOString()
const Q_TO = new Date(Q0 + 3 * HOUR_MS).toISOString()
/** dev-sds reading with PM2.5 600 and PM10 650 µg/m³: above the 500 µg/m³ sensor range. */
const OUT_OF_RANGE_I = 30
/** dev-sds reading with PM2.5 12 > PM10 8. */
const PM_ORDER_I = 75
/** Bulk readings (one a second, every metric, no site, an unregistered device) from 2026-04-01: ~23 MB of NDJSON. */
const B0 = Date.UTC(2026, 3, 1)
const BULK_READINGS = 20_000
const V2_RAW_COLUMNS = [
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
]
const V2_AGGREGATE_COLUMNS = [
  'time',
  'site_id',
  'metric',
  'mean',
  'min',
  'max',
  'n',
  'expected',
  'coverage',
  'valid',
  'corrected_mean',
  'correction',
]

/** RH of dev-sds (dev-pms reads 1 % more): 50–59 % in the first hour, 60–69 % in the second, 85–89.5 % in the third. */
function rhOf(i: number): number {
  const hour = Math.floor(i / 60)
  return hour === 2 ? 85 + (i % 10) * 0.5 : 50 + hour * 10 + (i % 10)
}

function qReadings(): StoredReading[] {
  const out: StoredReading[] = []
  const reading = (deviceId: string, siteId: string, i: number, values: StoredReading['values']): StoredReading => {
    const ts = Q0 + i * MINUTE_MS
    return { deviceId, siteId, ts, seq: i, values, receivedAt: ts + 1000, expectedPerHour: 60 }
  }
  for (let i = 0; i < Q_READINGS; i++) {
    let pm25 = 6 + (i % 7) * 0.37 + i / 100
    let pm10 = pm25 * 1.6 + 0.3
    if (i === OUT_OF_RANGE_I) [pm25, pm10] = [600, 650]
    if (i === PM_ORDER_I) [pm25, pm10] = [12, 8]
    out.push(reading('dev-sds', 'site-q', i, { pm25, pm10, temp: 3 + (i % 11) * 0.1, rh: rhOf(i) }))
    // A slow ramp from 5 to ~50 µg/m³: crosses the EPA correction's 30 µg/m³ break.
    const pa = 5 + i * 0.25
    out.push(
      reading('dev-pms', 'site-q', i, {
        pm1: pa * 0.6,
        pm25: pa,
        pm10: pa * 1.3 + 1,
        temp: 4 + (i % 9) * 0.1,
        rh: rhOf(i) + 1,
      }),
    )
    out.push(reading('dev-no2', 'site-r', i, { no2: -2 + (i % 13) * 1.5 }))
  }
  return out
}
const Q_WRITTEN = qReadings()

function bulkReadings(): StoredReading[] {
  return Array.from({ length: BULK_READINGS }, (_, i) => {
    const ts = B0 + i * 1000
    const values = Object.fromEntries(METRICS.map((m, j) => [m, value(i + j, m)]))
    return { deviceId: 'dev-bulk', siteId: null, ts, seq: i, values, receivedAt: ts, expectedPerHour: 3600 }
  })
}

const PM_METRICS: readonly Metric[] = ['pm1', 'pm25', 'pm10']

/**
 * The flags docs/quality-flags.md gives the fixture's readings, in the documented order: the out-of-range
 * reading is also a spike (far above 5 × the previous 30 min's median, neighbours normal) and a jump of more than
 * 100 µg/m³ in a minute, as is the reading after it (the drop back); RH above 70 % flags optical PM; the first
 * reading after power-on is warming up (PM 60 s, NO2 30 min).
 */
function expectedFlags(deviceId: string, i: number, metric: Metric): string[] {
  const pm = PM_METRICS.includes(metric)
  const sdsPm = deviceId === 'dev-sds' && (metric === 'pm25' || metric === 'pm10')
  const flags: string[] = []
  if (sdsPm && i === OUT_OF_RANGE_I) flags.push('out_of_range')
  if (sdsPm && i === PM_ORDER_I) flags.push('pm_order')
  if (sdsPm && i === OUT_OF_RANGE_I) flags.push('spike')
  if (sdsPm && (i === OUT_OF_RANGE_I || i === OUT_OF_RANGE_I + 1)) flags.push('rate_of_change')
  const rh = deviceId === 'dev-sds' ? rhOf(i) : deviceId === 'dev-pms' ? rhOf(i) + 1 : undefined
  if (pm && rh !== undefined && rh > 70) flags.push('high_humidity')
  if ((pm && i === 0) || (metric === 'no2' && i < 30)) flags.push('warm_up')
  return flags
}

function levelOf(flags: readonly string[]): string {
  if (flags.includes('out_of_range') || flags.includes('stuck')) return 'invalid'
  return flags.length > 0 ? 'suspect' : 'ok'
}

/** rh-hackair@1, air-quality.md §4.2: PM2.5 / (1 + 0.48756 · (RH/100)^8.60068); PM10 / (1 + 0.81559 · (RH/100)^5.83411). */
function hackair(metric: 'pm25' | 'pm10', pm: number, rh: number): number {
  return metric === 'pm25' ? pm / (1 + 0.48756 * (rh / 100) ** 8.60068) : pm / (1 + 0.81559 * (rh / 100) ** 5.83411)
}

/** rh-epa-2021@1, the piecewise table of air-quality.md §4.2 (PA = raw PM2.5), clamped at 0. */
function epa2021(pa: number, rh: number): number {
  let pm: number
  if (pa < 30) pm = 0.524 * pa - 0.0862 * rh + 5.75
  else if (pa < 50) {
    const f = pa / 20 - 1.5
    pm = (0.786 * f + 0.524 * (1 - f)) * pa - 0.0862 * rh + 5.75
  } else if (pa < 210) pm = 0.786 * pa - 0.0862 * rh + 5.75
  else if (pa < 260) {
    const f = pa / 50 - 4.2
    pm = (0.69 * f + 0.786 * (1 - f)) * pa - 0.0862 * rh * (1 - f) + 2.966 * f + 5.75 * (1 - f) + 8.84e-4 * pa * pa * f
  } else pm = 2.966 + 0.69 * pa + 8.84e-4 * pa * pa
  return Math.max(0, pm)
}

/** The manual calibration the tests post for dev-sds PM2.5 (applied after its humidity correction). */
const CALIBRATION = { slope: 1.25, intercept: -0.75, validFrom: Q0 + HOUR_MS }

/** The corrected value and chain of one value, per docs/corrections.md: humidity step by model, then calibration. */
function expectedCorrection(
  deviceId: string,
  metric: Metric,
  ts: number,
  raw: number,
  rh: number,
  calibrationRef: string | undefined,
): { value: number; chain: string } {
  let v = raw
  const steps: string[] = []
  if (deviceId === 'dev-sds' && (metric === 'pm25' || metric === 'pm10')) {
    v = hackair(metric, v, rh)
    steps.push('rh-hackair@1')
  }
  if (deviceId === 'dev-pms' && metric === 'pm25') {
    v = epa2021(v, rh)
    steps.push('rh-epa-2021@1')
  }
  if (calibrationRef !== undefined && deviceId === 'dev-sds' && metric === 'pm25' && ts >= CALIBRATION.validFrom) {
    v = CALIBRATION.slope * v + CALIBRATION.intercept
    steps.push(calibrationRef)
  }
  return { value: v, chain: steps.length === 0 ? 'none' : steps.join('+') }
}

/** Equal but for the last bits of a double (sums and formulas evaluated in another order). */
function near(actual: number, expected: number): boolean {
  return Math.abs(actual - expected) <= 1e-9 * Math.max(1, Math.abs(expected))
}

/** Byte offsets just past each LF of a body: the ends of its lines. */
function lineEnds(body: Buffer): number[] {
  const ends: number[] = []
  for (let i = body.indexOf(0x0a); i >= 0; i = body.indexOf(0x0a, i + 1)) ends.push(i + 1)
  return ends
}

const ProblemBody = z.object({ code: z.string() })

/**
 * CSV of the schema-2 fixture: no field needs quoting, so a plain split reads it (Python's reader, used once
 * below, takes ~0.2 s to start).
 */
function plainCsv(body: Buffer): string[][] {
  const text = body.toString('utf8')
  expect(text.includes('"')).toBe(false)
  expect(text.endsWith('\r\n')).toBe(true)
  return text
    .slice(0, -2)
    .split('\r\n')
    .map((line) => line.split(','))
}

describe('schema 2', () => {
  let v2Dir: Awaited<ReturnType<typeof tempDir>>
  let v2Storage: Storage
  let api: RunningApi
  let admin: Caller
  let staff: Caller
  const researchers: Caller[] = []
  let calibrationRef: Promise<string> | undefined

  const researcher = (i = 0): Record<string, string> => {
    const caller = researchers[i]
    if (caller === undefined) throw new Error(`no researcher ${i}`)
    return caller.headers
  }
  const path = (params: Record<string, string>, route = '/export'): string =>
    `${route}?${new URLSearchParams({ from: Q_FROM, to: Q_TO, ...params }).toString()}`

  /** Posts the manual calibration once (as staff) and gives its chain name, e.g. `cal-1@1`. */
  function calibrate(): Promise<string> {
    calibrationRef ??= (async () => {
      const created = await call(api, staff, 'POST', '/calibrations', {
        body: {
          kind: 'manual',
          deviceId: 'dev-sds',
          metric: 'pm25',
          slope: CALIBRATION.slope,
          intercept: CALIBRATION.intercept,
          validFrom: new Date(CALIBRATION.validFrom).toISOString(),
          note: 'lab sheet 7',
        },
      })
      expect(created.status).toBe(201)
      return z.object({ ref: z.string().regex(/^cal-\d+@1$/) }).parse(created.body).ref
    })()
    return calibrationRef
  }

  beforeAll(async () => {
    v2Dir = await tempDir('skolluft-export-v2-')
    v2Storage = openSqliteStorage({ path: join(v2Dir.path, 'skolluft.db') })
    await v2Storage.registry.upsertSites(
      [
        { id: 'site-q', lat: 55.7, lon: 13.19 },
        { id: 'site-r', lat: 55.72, lon: 13.21 },
      ].map((s) => ({ ...s, name: `Skola ${s.id}`, kind: 'school' as const, municipality: 'Lund' })),
    )
    const devices = [
      { id: 'dev-pms', model: 'PMS5003', sensors: ['pm1', 'pm25', 'pm10', 'temp', 'rh'] as Metric[], site: 'site-q' },
      { id: 'dev-sds', model: 'SDS011', sensors: ['pm25', 'pm10', 'temp', 'rh'] as Metric[], site: 'site-q' },
      { id: 'dev-no2', model: 'alphasense-no2', sensors: ['no2'] as Metric[], site: 'site-r' },
    ]
    for (const d of devices) {
      await v2Storage.registry.addDevice(
        {
          id: d.id,
          model: d.model,
          sensors: d.sensors,
          intervalS: 60,
          secretHash: 'x',
          placement: { siteId: d.site, from: Q0 - DAY_MS, indoor: false, heightM: 2 },
        },
        Q0 - DAY_MS,
      )
    }
    await v2Storage.readings.writeReadings(Q_WRITTEN)
    await v2Storage.readings.writeReadings(bulkReadings())
    for (const role of ['admin', 'staff'] as const) {
      await v2Storage.access.addUser(
        { email: `${role}@example.org`, name: role, role, sites: [], passwordHash: await hashSecret(`pw ${role}`) },
        NOW - DAY_MS,
      )
    }
    api = await startApi({
      log: silentLogger(),
      storage: v2Storage,
      clock,
      host: '127.0.0.1',
      port: 0,
      options: {
        publicMap: false,
        // Resume and quota tests make hundreds of requests from one address; the clock is fixed.
        rateLimit: { ratePerS: 1_000, burst: 100_000 },
        exportEnv: ExportEnv.parse({ EXPORT_LICENCE: 'CC-BY-4.0', EXPORT_ATTRIBUTION: 'Lund municipality, test' }),
      },
    })
    admin = await logIn(api, 'admin@example.org', 'pw admin')
    staff = await logIn(api, 'staff@example.org', 'pw staff')
    // One researcher for the tests, and as many more as the quota test needs distinct callers.
    for (let i = 0; i < 2 + EXPORT_QUOTA.total - EXPORT_QUOTA.perCaller; i++) {
      researchers.push((await createToken(api, admin, { name: `study ${i}`, role: 'researcher' })).caller)
    }
  })

  afterAll(async () => {
    await api?.close()
    await v2Storage?.close()
    await v2Dir?.cleanup()
  })

  it('is the default: v1 columns then qc, flags, corrected, correction; flags appear once the QC pass ran, values never change', async () => {
    const query = path({ resolution: 'raw', sites: 'site-q,site-r' })
    const before = await get(api, query, researcher())
    expect(before.status).toBe(200)
    expect(before.headers['x-skolluft-export-schema']).toBe('skolluft-export/2')
    const rowsBefore = plainCsv(before.body)
    expect(rowsBefore[0]).toEqual(V2_RAW_COLUMNS)
    // Expected rows: site, device, time, metric order; values as written.
    const order = ['dev-pms', 'dev-sds', 'dev-no2']
    const written = [...Q_WRITTEN].sort((a, b) => order.indexOf(a.deviceId) - order.indexOf(b.deviceId) || a.ts - b.ts)
    const expected = written.flatMap((r) =>
      METRICS.filter((m) => r.values[m] !== undefined).map((m) => ({
        cells: [new Date(r.ts).toISOString(), r.siteId ?? '', r.deviceId, m, String(r.values[m]), METRIC_INFO[m].unit],
        flags: expectedFlags(r.deviceId, (r.ts - Q0) / MINUTE_MS, m),
      })),
    )
    expect(rowsBefore.slice(1)).toEqual(expected.map((e) => [...e.cells, 'unchecked', '', '', '']))

    const quality = startQualityChecks({
      storage: v2Storage,
      log: silentLogger(),
      // Past the last hour's end and its grace: every hour is final.
      clock: () => Q0 + 3 * HOUR_MS + FINAL_GRACE_MS + MINUTE_MS,
      intervalMs: 3_600_000,
    })
    try {
      const pass = await quality.runOnce()
      expect(pass.failed).toBe(0)
      expect(pass.hours).toBeGreaterThanOrEqual(9)
    } finally {
      await quality.close()
    }
    const after = await get(api, query, researcher())
    const rowsAfter = pythonCsv(after.body)
    expect(rowsAfter[0]).toEqual(V2_RAW_COLUMNS)
    expect(rowsAfter.slice(1)).toEqual(expected.map((e) => [...e.cells, levelOf(e.flags), e.flags.join(';'), '', '']))
    // The rows the fixture was built for, spelled out.
    const row = (device: string, i: number, metric: Metric) =>
      rowsAfter.find((r) => r[2] === device && r[0] === new Date(Q0 + i * MINUTE_MS).toISOString() && r[3] === metric)
    expect(row('dev-sds', OUT_OF_RANGE_I, 'pm25')?.slice(4, 8)).toEqual([
      '600',
      'µg/m³',
      'invalid',
      'out_of_range;spike;rate_of_change',
    ])
    expect(row('dev-sds', PM_ORDER_I, 'pm10')?.slice(4, 8)).toEqual(['8', 'µg/m³', 'suspect', 'pm_order'])
    expect(row('dev-sds', PM_ORDER_I, 'temp')?.slice(6, 8)).toEqual(['ok', ''])
    expect(rowsAfter.filter((r) => r[6] === 'ok').length).toBeGreaterThan(rowsAfter.length / 2)
    // Values never change: the v1 columns are the same bytes before and after.
    expect(rowsAfter.map((r) => r.slice(0, 6))).toEqual(rowsBefore.map((r) => r.slice(0, 6)))
    // Schema 1 of the same query is still the v1 file.
    const v1 = plainCsv(
      (await get(api, path({ resolution: 'raw', sites: 'site-q,site-r', schema: '1' }), researcher())).body,
    )
    expect(v1).toEqual(rowsAfter.map((r) => r.slice(0, 6)))
  })

  it("values=corrected: humidity correction by model with the reading's own RH, then the calibration once posted", async () => {
    const query = path({ resolution: 'raw', sites: 'site-q', values: 'corrected' })
    const check = async (ref: string | undefined) => {
      const res = await get(api, query, researcher())
      expect(res.status).toBe(200)
      const rows = plainCsv(res.body).slice(1)
      const byKey = new Map(Q_WRITTEN.map((r) => [`${r.deviceId}@${new Date(r.ts).toISOString()}`, r]))
      const wrong: string[] = []
      for (const [time = '', , device = '', metric = '', cell = '', , , , corrected = '', chain = ''] of rows) {
        const m = z.enum(METRICS).parse(metric)
        const reading = byKey.get(`${device}@${time}`)
        const raw = reading?.values[m]
        const rh = reading?.values.rh
        if (raw === undefined || rh === undefined) throw new Error(`no written reading for ${device}@${time}`)
        expect(Number(cell)).toBe(raw)
        const want = expectedCorrection(device, m, Date.parse(time), raw, rh, ref)
        if (chain !== want.chain || !near(Number(corrected), want.value)) {
          wrong.push(`${device} ${time} ${metric}: ${corrected} ${chain}, expected ${want.value} ${want.chain}`)
        }
        // No correction: the corrected value is the value, as written.
        if (want.chain === 'none') expect(corrected).toBe(cell)
      }
      expect(wrong.slice(0, 10)).toEqual([])
      return rows
    }
    const before = await check(undefined)
    expect(new Set(before.map((r) => r[9]))).toEqual(new Set(['none', 'rh-hackair@1', 'rh-epa-2021@1']))
    // A humid reading is corrected noticeably (dev-sds, 89.5 % RH).
    const humid = before.find(
      (r) => r[2] === 'dev-sds' && r[3] === 'pm25' && r[0] === new Date(Q0 + 179 * MINUTE_MS).toISOString(),
    )
    expect(Number(humid?.[8])).toBeLessThan(Number(humid?.[4]) * 0.85)

    const ref = await calibrate()
    const after = await check(ref)
    const chains = new Set(after.map((r) => r[9]))
    expect(chains).toEqual(new Set(['none', 'rh-hackair@1', 'rh-epa-2021@1', `rh-hackair@1+${ref}`]))
    // Before validFrom the calibration does not apply.
    expect(after.find((r) => r[2] === 'dev-sds' && r[3] === 'pm25')?.[9]).toBe('rh-hackair@1')
  })

  it('values=corrected hourly: each device-hour corrected with its hourly mean RH, weighted by readings', async () => {
    const ref = await calibrate()
    const res = await get(api, path({ resolution: 'hourly', sites: 'site-q', values: 'corrected' }), researcher())
    expect(res.status).toBe(200)
    const rows = plainCsv(res.body)
    expect(rows[0]).toEqual(V2_AGGREGATE_COLUMNS)
    // Expected, from the written readings: per hour and metric, each device's n, mean and mean RH.
    const expected: string[][] = []
    for (let h = 0; h < 3; h++) {
      const t = Q0 + h * HOUR_MS
      for (const m of METRICS) {
        let n = 0
        let sum = 0
        let correctedSum = 0
        const chains: string[] = []
        for (const device of ['dev-pms', 'dev-sds']) {
          const hour = Q_WRITTEN.filter((r) => r.deviceId === device && r.ts >= t && r.ts < t + HOUR_MS)
          const values = hour.map((r) => r.values[m]).filter((v): v is number => v !== undefined)
          if (values.length === 0) continue
          const mean = values.reduce((a, b) => a + b, 0) / values.length
          const rhs = hour.map((r) => r.values.rh ?? Number.NaN)
          const rh = rhs.reduce((a, b) => a + b, 0) / rhs.length
          const corrected = expectedCorrection(device, m, t, mean, rh, ref)
          n += values.length
          sum += mean * values.length
          correctedSum += corrected.value * values.length
          if (!chains.includes(corrected.chain)) chains.push(corrected.chain)
        }
        if (n === 0) continue
        expected.push([new Date(t).toISOString(), m, String(sum / n), String(correctedSum / n), chains.join(';')])
      }
    }
    const got = rows.slice(1).map((r) => [r[0] ?? '', r[2] ?? '', r[3] ?? '', r[10] ?? '', r[11] ?? ''])
    expect(got.map((r) => [r[0], r[1], r[4]])).toEqual(expected.map((r) => [r[0], r[1], r[4]]))
    got.forEach((r, i) => {
      expect(near(Number(r[2]), Number(expected[i]?.[2])), `mean ${r.join(' ')}`).toBe(true)
      expect(near(Number(r[3]), Number(expected[i]?.[3])), `corrected_mean ${r.join(' ')} vs ${expected[i]?.[3]}`).toBe(
        true,
      )
    })
    expect(got.find((r) => r[1] === 'pm25' && r[0] === new Date(Q0 + HOUR_MS).toISOString())?.[4]).toBe(
      `rh-epa-2021@1;rh-hackair@1+${ref}`,
    )
  })

  it('format=parquet: the same values as the CSV of the same query, typed as the data dictionary says; same bytes twice', async () => {
    await calibrate()
    const arrowType = {
      datetime: 'Timestamp<MILLISECOND, UTC>',
      string: 'Utf8',
      number: 'Float64',
      integer: 'Int64',
      boolean: 'Bool',
    }
    const cases: Record<string, string>[] = [
      { resolution: 'raw', sites: 'site-q,site-r', values: 'corrected' },
      { resolution: 'hourly', values: 'corrected' },
      { resolution: 'daily', from: new Date(Q0 - DAY_MS).toISOString() },
    ]
    for (const params of cases) {
      const parquet = await get(api, path({ ...params, format: 'parquet' }), researcher())
      expect(parquet.status).toBe(200)
      expect(parquet.headers['content-type']).toBe('application/vnd.apache.parquet')
      expect(parquet.body.subarray(0, 4).toString()).toBe('PAR1')
      const csv = plainCsv((await get(api, path({ ...params, format: 'csv' }), researcher())).body)
      const table = tableFromIPC(readParquet(new Uint8Array(parquet.body)).intoIPCStream())
      const names = table.schema.fields.map((f) => f.name)
      expect(names).toEqual(params.resolution === 'raw' ? V2_RAW_COLUMNS : V2_AGGREGATE_COLUMNS)
      expect(csv[0]).toEqual(names)
      expect(table.schema.fields.map((f) => String(f.type))).toEqual(
        names.map(
          (n) => arrowType[DATA_DICTIONARY[z.enum(Object.keys(DATA_DICTIONARY) as [ExportColumn]).parse(n)].type],
        ),
      )
      expect(table.schema.metadata.get('skolluft.schema')).toBe('skolluft-export/2')
      expect(table.schema.metadata.get('skolluft.columns')).toBe(names.join(','))
      expect(table.numRows).toBe(csv.length - 1)
      expect(table.numRows).toBeGreaterThan(0)
      const columns = names.map((n) => table.getChild(n))
      const wrong: string[] = []
      for (let r = 0; r < table.numRows; r++) {
        const line = csv[r + 1] ?? []
        columns.forEach((column, c) => {
          const v: unknown = column?.get(r)
          const cell = line[c]
          const same = c === 0 ? v === Date.parse(cell ?? '') : v === null ? cell === '' : String(v) === cell
          if (!same && wrong.length < 10) wrong.push(`row ${r} ${names[c]}: parquet ${String(v)}, csv ${cell}`)
        })
      }
      expect(wrong).toEqual([])
      const again = await get(api, path({ ...params, format: 'parquet' }), researcher())
      expect(again.body.equals(parquet.body)).toBe(true)
    }
  })

  it('resumes a raw CSV export after any row: the rest without header completes the file byte for byte', async () => {
    const cases: [Record<string, string>, number[]][] = [
      // Site q: dev-pms 900 rows, dev-sds 720; site r: dev-no2 180. First, mid-reading, device and site edges, last.
      [{ resolution: 'raw' }, [1, 2, 3, 450, 899, 900, 901, 1619, 1620, 1621, 1799, 1800]],
      // The bulk device (no site): two rows a reading, 5 000 readings a storage batch: rows 10 000 | 10 001.
      [
        {
          resolution: 'raw',
          metrics: 'pm25,no2',
          from: new Date(B0).toISOString(),
          to: new Date(B0 + (EXPORT_BATCH_ROWS + 100) * 1000).toISOString(),
        },
        [1, 2 * EXPORT_BATCH_ROWS - 1, 2 * EXPORT_BATCH_ROWS, 2 * EXPORT_BATCH_ROWS + 1, 2 * (EXPORT_BATCH_ROWS + 100)],
      ],
    ]
    for (const [params, cuts] of cases) {
      const full = await get(api, path(params), researcher())
      expect(full.status).toBe(200)
      const ends = lineEnds(full.body)
      const rows = ends.length - 1
      expect(rows).toBe(cuts.at(-1))
      for (const k of cuts) {
        // Line 0 is the header; row k ends at ends[k].
        const start = ends[k - 1] ?? 0
        const line = full.body.subarray(start, ends[k]).toString('utf8')
        const after = line.split(',').slice(0, 4).join(',')
        const rest = await get(api, path({ ...params, after }), researcher())
        expect({ k, status: rest.status }).toEqual({ k, status: 200 })
        expect(rest.body.toString('utf8').startsWith('time,')).toBe(false)
        const joined = Buffer.concat([full.body.subarray(0, ends[k]), rest.body])
        expect({ k, after, same: joined.equals(full.body) }).toEqual({ k, after, same: true })
      }
    }
  })

  it('resumes an hourly NDJSON export after every row, raw and corrected values', async () => {
    for (const values of ['raw', 'corrected']) {
      const params = { resolution: 'hourly', format: 'ndjson', values }
      const full = await get(api, path(params), researcher())
      const ends = lineEnds(full.body)
      expect(ends).toHaveLength(3 * 5 + 3)
      for (let k = 1; k <= ends.length; k++) {
        const row = z
          .object({ time: z.string(), site_id: z.string(), metric: z.string() })
          .parse(JSON.parse(full.body.subarray(ends[k - 2] ?? 0, ends[k - 1]).toString('utf8')))
        const after = `${row.time},${row.site_id},${row.metric}`
        const rest = await get(api, path({ ...params, after }), researcher())
        expect(rest.status).toBe(200)
        const joined = Buffer.concat([full.body.subarray(0, ends[k - 1]), rest.body])
        expect({ values, k, same: joined.equals(full.body) }).toEqual({ values, k, same: true })
      }
    }
  })

  it('refuses a malformed after with 400 invalid_after', async () => {
    const bad: Record<string, string>[] = [
      { resolution: 'raw', after: 'garbage' },
      { resolution: 'raw', after: `${Q_FROM},site-q,dev-sds` },
      { resolution: 'raw', after: 'yesterday,site-q,dev-sds,pm25' },
      { resolution: 'raw', after: `${Q_FROM},site-q,dev-sds,co2` },
      { resolution: 'raw', after: `${Q_FROM},site-q,,pm25` },
      { resolution: 'hourly', after: `${Q_FROM},site-q,dev-sds,pm25` },
      { resolution: 'hourly', after: `${Q_FROM},,pm25` },
    ]
    for (const params of bad) {
      const res = await get(api, path(params), researcher())
      expect({ params, status: res.status, code: ProblemBody.parse(JSON.parse(res.body.toString())).code }).toEqual({
        params,
        status: 400,
        code: 'invalid_after',
      })
    }
  })

  it(`runs at most ${EXPORT_QUOTA.perCaller} exports per caller and ${EXPORT_QUOTA.total} in all; 429 export_quota beyond`, async () => {
    // ~23 MB of NDJSON: far more than the socket buffers hold, so an unread export keeps running.
    const big = path({
      resolution: 'raw',
      format: 'ndjson',
      from: new Date(B0).toISOString(),
      to: new Date(B0 + DAY_MS).toISOString(),
    })
    const small = path({ resolution: 'hourly', sites: 'site-r' })
    const held: (() => void)[] = []
    const hold = (headers: Record<string, string>) =>
      new Promise<number>((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port: api.port, path: `/api/v1${big}`, headers }, (res) => {
          res.on('error', () => undefined)
          // Not read: the server's writes back up and the export stays running until the request is closed.
          resolve(res.statusCode ?? 0)
        })
        req.on('error', (error) => (req.destroyed ? undefined : reject(error)))
        req.end()
        held.push(() => req.destroy())
      })
    const expectQuota = async (headers: Record<string, string>) => {
      const refused = await get(api, small, headers)
      expect(refused.status).toBe(429)
      expect(refused.headers['retry-after']).toBe('10')
      expect(ProblemBody.parse(JSON.parse(refused.body.toString())).code).toBe('export_quota')
    }
    try {
      for (let i = 0; i < EXPORT_QUOTA.perCaller; i++) expect(await hold(researcher(0))).toBe(200)
      await expectQuota(researcher(0))
      // Other callers are served until the server's total is reached.
      for (let i = 1; i <= EXPORT_QUOTA.total - EXPORT_QUOTA.perCaller; i++) expect(await hold(researcher(i))).toBe(200)
      await expectQuota(researcher(EXPORT_QUOTA.total - EXPORT_QUOTA.perCaller + 1))
      await expectQuota(researcher(0))
    } finally {
      for (const close of held) close()
    }
    // Closed downloads free their slots.
    await waitFor(
      async () => (await get(api, small, researcher(0))).status === 200,
      'an export after the held ones closed',
      {
        timeoutMs: 5_000,
      },
    )
    await waitFor(
      async () => (await get(api, small, researcher(EXPORT_QUOTA.total - EXPORT_QUOTA.perCaller + 1))).status === 200,
      'the other caller served again',
      { timeoutMs: 5_000 },
    )
  })

  it('GET /export/manifest describes exactly the body GET /export sends for the same query', async () => {
    const ref = await calibrate()
    const software = z
      .object({ version: z.string() })
      .parse(JSON.parse(await readFile(new URL('../../../package.json', import.meta.url), 'utf8')))
    const cases: Record<string, string>[] = [
      { resolution: 'raw', sites: 'site-q', values: 'corrected' },
      { resolution: 'raw', format: 'ndjson', sites: 'site-r' },
      { resolution: 'hourly', format: 'parquet', values: 'corrected' },
      { resolution: 'daily', schema: '1' },
    ]
    for (const params of cases) {
      const body = await get(api, path(params), researcher())
      const res = await get(api, path(params, '/export/manifest'), researcher())
      expect(res.status).toBe(200)
      const manifest = Manifest.parse(JSON.parse(res.body.toString()))
      const format = params.format ?? 'csv'
      const lines = format === 'parquet' ? undefined : lineEnds(body.body).length - (format === 'csv' ? 1 : 0)
      expect(manifest).toMatchObject({
        schema: params.schema === '1' ? 'skolluft-export/1' : 'skolluft-export/2',
        format,
        resolution: params.resolution,
        values: params.values ?? 'raw',
        bytes: body.body.length,
        sha256: createHash('sha256').update(body.body).digest('hex'),
        software: { name: 'skolluft', version: software.version },
        licence: 'CC-BY-4.0',
        attribution: 'Lund municipality, test',
        query: { from: Q_FROM, to: Q_TO, ...params },
      })
      if (lines !== undefined) expect(manifest.rows).toBe(lines)
      else expect(manifest.rows).toBe(tableFromIPC(readParquet(new Uint8Array(body.body)).intoIPCStream()).numRows)
      expect(manifest.columns).toEqual(
        params.schema === '1'
          ? params.resolution === 'raw'
            ? V2_RAW_COLUMNS.slice(0, 6)
            : V2_AGGREGATE_COLUMNS.slice(0, 10)
          : params.resolution === 'raw'
            ? V2_RAW_COLUMNS
            : V2_AGGREGATE_COLUMNS,
      )
      const ids = manifest.corrections.map((c) => c.id)
      if (params.values === 'corrected') {
        expect(ids).toEqual(
          ['cal-1@1', 'rh-epa-2021@1', 'rh-hackair@1'].map((id) => (id === 'cal-1@1' ? ref : id)).sort(),
        )
        expect(manifest.corrections.find((c) => c.id === ref)?.parameters).toMatchObject({
          deviceId: 'dev-sds',
          metric: 'pm25',
          slope: CALIBRATION.slope,
          intercept: CALIBRATION.intercept,
          validFrom: new Date(CALIBRATION.validFrom).toISOString(),
        })
        expect(manifest.corrections.find((c) => c.id === 'rh-hackair@1')?.description).toContain('0.48756')
      } else expect(ids).toEqual([])
    }
  })

  it('GET /export/manifest answers whom GET /export answers', async () => {
    const cases: [string, RunningApi, string | undefined, Record<string, string>, number][] = [
      ['anonymous raw, public map on', publicOn, undefined, { resolution: 'raw' }, 401],
      ['anonymous hourly, public map off', publicOff, undefined, { resolution: 'hourly' }, 401],
      ['principal raw', publicOff, 'principal', { resolution: 'raw' }, 403],
      ['principal hourly of another site', publicOff, 'principal', { resolution: 'hourly', sites: 'site-b' }, 403],
      ['anonymous hourly, public map on', publicOn, undefined, { resolution: 'hourly' }, 200],
      ['researcher raw', publicOff, 'researcher', { resolution: 'raw' }, 200],
    ]
    for (const [name, server, who, params, status] of cases) {
      const headers = who === undefined ? {} : auth.get(who)
      const exported = await get(server, query(params), headers)
      const manifest = await get(server, query(params).replace('/export?', '/export/manifest?'), headers)
      expect({ name, export: exported.status, manifest: manifest.status }).toEqual({
        name,
        export: status,
        manifest: status,
      })
      if (status === 200) {
        expect(Manifest.parse(JSON.parse(manifest.body.toString())).sha256).toBe(
          createHash('sha256').update(exported.body).digest('hex'),
        )
      }
    }
  })
})
