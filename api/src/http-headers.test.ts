import { request } from 'node:http'
import { join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { DAY_MS, defaultScopes, SiteFeatureCollection } from '@skolluft/core'
import { silentLogger } from '@skolluft/runtime'
import { openSqliteStorage, type Storage } from '@skolluft/storage'
import { tempDir } from '@skolluft/testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { issueApiToken } from './auth/credentials.ts'
import { SECURITY_HEADERS } from './http-headers.ts'
import type { StaticFile } from './options.ts'
import { API_BURST, API_RATE_PER_S } from './rate-limit.ts'
import { type RunningApi, type StartApiOptions, startApi } from './server.ts'

/**
 * What every response carries besides its body: compression, cache rules (public only when the public map
 * is on and the answer is the same for everyone), security headers, the dashboard's own content security
 * policy, the body limit and the API rate limit. Raw HTTP (node:http) where fetch would hide a header or
 * decode the body by itself.
 */
const NOW = Date.parse('2026-11-30T12:00:00Z')
const SITE_COUNT = 30

let dir: Awaited<ReturnType<typeof tempDir>>
let storage: Storage
let publicOn: RunningApi
let publicOff: RunningApi
let staffToken: string
const servers: RunningApi[] = []

interface RawResponse {
  readonly status: number
  readonly headers: Record<string, string | string[] | undefined>
  readonly body: Buffer
}

/** One request with exactly the given headers; the body as sent (not decompressed). */
function raw(
  server: RunningApi,
  path: string,
  headers: Record<string, string> = {},
  method = 'GET',
  body?: string,
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: server.port, path, method, headers }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(body)
  })
}

const staff = () => ({ Authorization: `Bearer ${staffToken}` })

async function start(extra: Partial<StartApiOptions>): Promise<RunningApi> {
  const server = await startApi({
    log: silentLogger(),
    storage,
    clock: () => NOW,
    host: '127.0.0.1',
    port: 0,
    ...extra,
    options: { mapSnapshotMaxAgeMs: 0, ...extra.options },
  })
  servers.push(server)
  return server
}

beforeAll(async () => {
  dir = await tempDir('skolluft-headers-')
  storage = openSqliteStorage({ path: join(dir.path, 'skolluft.db') })
  // Enough sites that the map is worth compressing (compression skips bodies under 1 kB).
  await storage.registry.upsertSites(
    Array.from({ length: SITE_COUNT }, (_, i) => ({
      id: `site-${i}`,
      name: `Skola ${i}`,
      kind: 'school' as const,
      municipality: 'Lund',
      lat: 55.7 + i / 1000,
      lon: 13.2,
    })),
  )
  const issued = await issueApiToken()
  await storage.access.createToken({
    id: issued.id,
    name: 'staff',
    role: 'staff',
    scopes: defaultScopes('staff'),
    sites: [],
    userId: null,
    secretHash: issued.secretHash,
    createdAt: NOW - DAY_MS,
    expiresAt: null,
  })
  staffToken = issued.value
  publicOn = await start({ options: { publicMap: true } })
  publicOff = await start({ options: { publicMap: false } })
})

afterAll(async () => {
  for (const server of servers) await server.close()
  await storage?.close()
  await dir?.cleanup()
})

describe('compression', () => {
  it('sends the map gzipped when the client accepts gzip, and plain otherwise', async () => {
    const zipped = await raw(publicOn, '/api/v1/sites', { 'Accept-Encoding': 'gzip' })
    expect(zipped.status).toBe(200)
    expect(zipped.headers['content-encoding']).toBe('gzip')
    expect(zipped.headers.vary).toContain('Accept-Encoding')
    const plain = await raw(publicOn, '/api/v1/sites', { 'Accept-Encoding': 'identity' })
    expect(plain.headers['content-encoding']).toBeUndefined()
    const unzipped = gunzipSync(zipped.body)
    expect(unzipped.toString('utf8')).toBe(plain.body.toString('utf8'))
    expect(zipped.body.length).toBeLessThan(plain.body.length / 3)
    const parsed = SiteFeatureCollection.safeParse(JSON.parse(unzipped.toString('utf8')))
    expect(parsed.data?.features).toHaveLength(SITE_COUNT)
    // Without Accept-Encoding at all: identity.
    expect((await raw(publicOn, '/api/v1/sites')).headers['content-encoding']).toBeUndefined()
  })

  it('gzips the map for a logged-in caller, and other large responses too', async () => {
    const map = await raw(publicOff, '/api/v1/sites', { 'Accept-Encoding': 'gzip', ...staff() })
    expect(map.status).toBe(200)
    expect(map.headers['content-encoding']).toBe('gzip')
    expect(JSON.parse(gunzipSync(map.body).toString('utf8'))).toMatchObject({ type: 'FeatureCollection' })
    const openapi = await raw(publicOn, '/api/v1/openapi.json', { 'Accept-Encoding': 'gzip' })
    expect(openapi.headers['content-encoding']).toBe('gzip')
    expect(JSON.parse(gunzipSync(openapi.body).toString('utf8'))).toMatchObject({ openapi: '3.1.0' })
  })

  it('answers a repeated map request with 304 Not Modified while the snapshot is the same', async () => {
    const cached = await start({ options: { publicMap: true, mapSnapshotMaxAgeMs: 60_000 } })
    const first = await raw(cached, '/api/v1/sites', { 'Accept-Encoding': 'gzip' })
    const etag = first.headers.etag
    expect(typeof etag).toBe('string')
    const again = await raw(cached, '/api/v1/sites', { 'Accept-Encoding': 'gzip', 'If-None-Match': String(etag) })
    expect(again.status).toBe(304)
    expect(again.body.length).toBe(0)
  })
})

describe('Cache-Control', () => {
  it('is public for the public map and hourly series, private for anything that depends on the caller', async () => {
    const map = await raw(publicOn, '/api/v1/sites')
    expect(map.headers['cache-control']).toBe('public, max-age=5')
    expect(map.headers.vary).not.toContain('Cookie')
    const hourly = await raw(publicOn, '/api/v1/sites/site-1/series?metric=pm25')
    expect(hourly.headers['cache-control']).toBe('public, max-age=5')
    const replay = await raw(publicOn, '/api/v1/replay?metric=pm25')
    expect(replay.headers['cache-control']).toBe('public, max-age=60')

    // Staff see devices in a site's detail: that answer is theirs alone.
    const detail = await raw(publicOn, '/api/v1/sites/site-1', staff())
    expect(detail.headers['cache-control']).toBe('private, max-age=5')
    expect(detail.headers.vary).toContain('Cookie')
    expect(detail.headers.vary).toContain('Authorization')
    const rawSeries = await raw(publicOn, '/api/v1/sites/site-1/series?metric=pm25&every=raw', staff())
    expect(rawSeries.status).toBe(200)
    expect(rawSeries.headers['cache-control']).toBe('private, max-age=5')
  })

  it('is private for everything when the map is not public', async () => {
    for (const path of [
      '/api/v1/sites',
      '/api/v1/sites/site-1',
      '/api/v1/sites/site-1/series?metric=pm25',
      '/api/v1/replay?metric=pm25',
    ]) {
      const res = await raw(publicOff, path, staff())
      expect(res.status).toBe(200)
      expect(res.headers['cache-control']).toMatch(/^private, max-age=\d+$/)
      expect(res.headers.vary).toContain('Cookie')
      expect(res.headers.vary).toContain('Authorization')
    }
  })

  it('is no-store for sessions, configuration, people and errors, and long for reference data', async () => {
    expect((await raw(publicOn, '/api/v1/auth/session')).headers['cache-control']).toBe('no-store')
    expect((await raw(publicOn, '/api/v1/config')).headers['cache-control']).toBe('no-store')
    expect((await raw(publicOn, '/api/v1/me')).headers['cache-control']).toBe('no-store')
    expect((await raw(publicOff, '/api/v1/sites')).headers['cache-control']).toBe('no-store')
    expect((await raw(publicOn, '/api/v1/guidelines')).headers['cache-control']).toBe('public, max-age=3600')
  })
})

describe('security headers', () => {
  it('go on data, problems, health, the OpenAPI document and the session endpoint; x-powered-by never', async () => {
    for (const path of [
      '/api/v1/sites',
      '/api/v1/nope',
      '/healthz',
      '/api/v1/openapi.json',
      '/api/v1/auth/session',
      '/',
    ]) {
      const res = await raw(publicOn, path)
      for (const [name, value] of Object.entries(SECURITY_HEADERS)) {
        expect({ path, [name]: res.headers[name.toLowerCase()] }).toEqual({ path, [name]: value })
      }
      expect(res.headers['x-powered-by']).toBeUndefined()
    }
    expect(SECURITY_HEADERS['Content-Security-Policy']).toBe("default-src 'none'; frame-ancestors 'none'")
  })
})

describe('the dashboard', () => {
  const html = Buffer.from('<!doctype html><title>skolluft</title><script src="/assets/app-1a2b3c.js"></script>')
  const js = Buffer.from('console.log("map")')
  const dashboard = new Map<string, StaticFile>([
    ['/', { contentType: 'text/html; charset=utf-8', body: html, etag: '"index-1"' }],
    ['/assets/app-1a2b3c.js', { contentType: 'text/javascript; charset=utf-8', body: js, etag: '"app-1a2b3c"' }],
  ])

  it('is served with its own CSP: own scripts, styles and connections, images from the tile origin', async () => {
    const server = await start({
      dashboard,
      options: { publicMap: true, tileUrl: 'https://{s}.tile.example.org/{z}/{x}/{y}.png' },
    })
    const page = await raw(server, '/')
    expect(page.status).toBe(200)
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8')
    expect(page.body.equals(html)).toBe(true)
    const csp = String(page.headers['content-security-policy'])
      .split(';')
      .map((d) => d.trim())
    expect(csp).toContain("default-src 'self'")
    expect(csp).toContain("script-src 'self'")
    expect(csp).toContain("style-src 'self'")
    expect(csp).toContain("connect-src 'self'")
    expect(csp).toContain("img-src 'self' data: https://*.tile.example.org")
    expect(csp).toContain("frame-ancestors 'none'")
    expect(csp).toContain("object-src 'none'")
    expect(csp.join(';')).not.toContain('unsafe')
    expect(page.headers['x-content-type-options']).toBe('nosniff')
    // The page is revalidated; hashed assets are cached for a year.
    expect(page.headers['cache-control']).toBe('no-cache')
    expect((await raw(server, '/', { 'If-None-Match': '"index-1"' })).status).toBe(304)
    const asset = await raw(server, '/assets/app-1a2b3c.js')
    expect(asset.status).toBe(200)
    expect(asset.headers['cache-control']).toBe('public, max-age=31536000, immutable')
    expect(asset.body.equals(js)).toBe(true)

    // The API beside it keeps its own, stricter policy; unknown paths and other methods are 404 problems.
    const api = await raw(server, '/api/v1/sites')
    expect(api.headers['content-security-policy']).toBe("default-src 'none'; frame-ancestors 'none'")
    expect((await raw(server, '/assets/missing.js')).status).toBe(404)
    expect((await raw(server, '/', {}, 'POST')).status).toBe(404)
  })

  it('names one tile host without a wildcard, and no tile origin when tiles are off', async () => {
    const single = await start({ dashboard, options: { tileUrl: 'https://tiles.example.net/osm/{z}/{x}/{y}.png' } })
    expect(String((await raw(single, '/')).headers['content-security-policy'])).toContain(
      "img-src 'self' data: https://tiles.example.net;",
    )
    const none = await start({ dashboard, options: { tileUrl: null } })
    expect(String((await raw(none, '/')).headers['content-security-policy'])).toContain("img-src 'self' data:;")
  })
})

describe('request limits', () => {
  it('refuses a JSON body over the limit with a 413 problem, and bad JSON with a 400 problem', async () => {
    const body = JSON.stringify({ email: 'a@example.org', password: 'x'.repeat(200 * 1024) })
    const big = await raw(publicOn, '/api/v1/auth/login', { 'Content-Type': 'application/json' }, 'POST', body)
    expect(big.status).toBe(413)
    expect(big.headers['content-type']).toMatch(/^application\/problem\+json/)
    expect(JSON.parse(big.body.toString('utf8'))).toMatchObject({ status: 413, code: 'payload_too_large' })
    const bad = await raw(publicOn, '/api/v1/auth/login', { 'Content-Type': 'application/json' }, 'POST', '{"email":')
    expect(bad.status).toBe(400)
    expect(JSON.parse(bad.body.toString('utf8'))).toMatchObject({ status: 400, code: 'bad_json' })
  })

  it(`allows a burst of ${API_BURST} API requests per address, then 429 with Retry-After until it refills`, async () => {
    let now = NOW
    const limited = await start({ clock: () => now, options: { publicMap: true } })
    const statuses: number[] = []
    // In parallel batches: the limiter must count concurrent requests too.
    for (let sent = 0; sent < API_BURST; sent += 25) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(25, API_BURST - sent) }, () => raw(limited, '/api/v1/config')),
      )
      statuses.push(...batch.map((r) => r.status))
    }
    expect(statuses.filter((s) => s === 200)).toHaveLength(API_BURST)
    const over = await raw(limited, '/api/v1/config')
    expect(over.status).toBe(429)
    expect(over.headers['retry-after']).toBe('1')
    expect(JSON.parse(over.body.toString('utf8'))).toMatchObject({ status: 429, code: 'rate_limited' })
    // The health check is outside the API and never limited.
    expect((await raw(limited, '/healthz')).status).toBe(200)
    // One second refills API_RATE_PER_S requests.
    now += 1_000
    const refilled = await Promise.all(Array.from({ length: API_RATE_PER_S }, () => raw(limited, '/api/v1/config')))
    expect(refilled.map((r) => r.status)).toEqual(Array.from({ length: API_RATE_PER_S }, () => 200))
    expect((await raw(limited, '/api/v1/config')).status).toBe(429)
  })
})
