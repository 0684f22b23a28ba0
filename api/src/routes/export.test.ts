import { spawnSync } from 'node:child_process'
import { request as httpRequest } from 'node:http'
import { join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { DAY_MS, HOUR_MS, METRIC_INFO, METRICS, type Metric, type Role } from '@skolluft/core'
import { hashSecret, silentLogger } from '@skolluft/runtime'
import { openSqliteStorage, type Storage, type StoredReading } from '@skolluft/storage'
import { tempDir } from '@skolluft/testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { type RunningApi, startApi } from '../server.ts'

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
  for (const user of USERS) {
    await storage.access.addUser(
      {
        email: `${user.who}@example.org`,
        name: user.who,
        role: user.role,
        sites: user.sites,
        passwordHash: await hashSecret(`password of ${user.who}`),
      },
      NOW - DAY_MS,
    )
  }
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

const CsvRows = z.array(z.array(z.string()))

/** Parses CSV with Python's csv module (an independent RFC 4180 reader); fails clearly without python3. */
function pythonCsv(body: Buffer): string[][] {
  const script = [
    'import csv, io, json, sys',
    'data = sys.stdin.buffer.read()',
    "assert not data.startswith(b'\\xef\\xbb\\xbf'), 'BOM'",
    "text = data.decode('utf-8')",
    "lines = text.split('\\r\\n')",
    "assert lines[-1] == '' and all('\\n' not in l for l in lines), 'line ends are not CRLF'",
    "json.dump(list(csv.reader(io.StringIO(text, newline=''), strict=True)), sys.stdout)",
  ].join('\n')
  const run = spawnSync('python3', ['-c', script], { input: body, maxBuffer: 256 * 1024 * 1024 })
  if (run.error !== undefined) {
    throw new Error(`python3 is needed to read the CSV back independently (${run.error.message}); install python3`)
  }
  if (run.status !== 0) throw new Error(`python3 csv reader failed: ${run.stderr.toString()}`)
  return CsvRows.parse(JSON.parse(run.stdout.toString()))
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
  return `/export?${new URLSearchParams({ from: FROM, to: TO, ...params }).toString()}`
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
    const long = { resolution: 'hourly', from: '2020-01-01T00:00:00Z', to: '2026-01-20T00:00:00Z' }
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
