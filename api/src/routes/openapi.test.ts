import { join } from 'node:path'
import { METRICS } from '@skolluft/core'
import { silentLogger } from '@skolluft/runtime'
import { openSqliteStorage, type Storage } from '@skolluft/storage'
import { tempDir } from '@skolluft/testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { API_V1_PREFIX, createApi } from '../app.ts'
import { SERIES_RESOLUTIONS, SeriesQueryParams } from '../series-query.ts'
import { type RunningApi, startApi } from '../server.ts'

/**
 * The OpenAPI document as a client downloads it: valid JSON, OpenAPI 3.1, and complete: every route the
 * express app really mounts under /api/v1 is in it (found by walking the app's router, so a new route
 * without documentation fails here), with the series query parameters and the request bodies the routes
 * validate with.
 */
let dir: Awaited<ReturnType<typeof tempDir>>
let storage: Storage
let api: RunningApi
let document: z.infer<typeof OpenApi>

const Schema = z.record(z.string(), z.unknown())
const Parameter = z.object({ name: z.string(), in: z.string(), required: z.boolean(), schema: Schema })
const Operation = z.object({
  summary: z.string().min(1),
  tags: z.array(z.string()).min(1),
  'x-permission': z.string(),
  security: z.array(z.unknown()).optional(),
  parameters: z.array(Parameter).optional(),
  requestBody: z
    .object({ required: z.boolean(), content: z.object({ 'application/json': z.object({ schema: Schema }) }) })
    .optional(),
  responses: z.record(z.string(), z.object({ description: z.string() })),
})
const OpenApi = z.object({
  openapi: z.string(),
  info: z.object({ title: z.string(), version: z.string() }),
  servers: z.array(z.object({ url: z.string() })),
  components: z.object({ schemas: z.record(z.string(), Schema), securitySchemes: z.record(z.string(), Schema) }),
  paths: z.record(z.string(), z.record(z.string(), Operation)),
})

/** Routes found by walking express's router stack (the layers carry `route` or a nested router's `stack`). */
function mountedRoutes(stack: unknown, prefix: string): string[] {
  if (!Array.isArray(stack)) return []
  const found: string[] = []
  for (const layer of stack) {
    if (typeof layer !== 'object' || layer === null) continue
    const route = 'route' in layer ? z.object({ path: z.string(), methods: z.record(z.string(), z.boolean()) }) : null
    const parsedRoute = route?.safeParse('route' in layer ? layer.route : undefined)
    if (parsedRoute?.success) {
      for (const method of Object.keys(parsedRoute.data.methods)) {
        if (method !== '_all') found.push(`${method} ${prefix}${parsedRoute.data.path}`)
      }
      continue
    }
    const handle = 'handle' in layer ? layer.handle : undefined
    if (typeof handle !== 'function' || !('stack' in handle)) continue
    // A nested router: where it is mounted is what its layer matches of a probe path.
    const match = 'match' in layer && typeof layer.match === 'function' ? layer.match(`${API_V1_PREFIX}/probe`) : null
    const mount = z.object({ path: z.string() }).safeParse(match)
    found.push(...mountedRoutes(handle.stack, `${prefix}${mount.success ? mount.data.path : ''}`))
  }
  return found
}

beforeAll(async () => {
  dir = await tempDir('skolluft-openapi-')
  storage = openSqliteStorage({ path: join(dir.path, 'skolluft.db') })
  api = await startApi({ log: silentLogger(), storage, host: '127.0.0.1', port: 0 })
  const res = await fetch(`http://127.0.0.1:${api.port}/api/v1/openapi.json`)
  expect(res.status).toBe(200)
  expect(res.headers.get('content-type')).toMatch(/^application\/json/)
  document = OpenApi.parse(JSON.parse(await res.text()))
})

afterAll(async () => {
  await api?.close()
  await storage?.close()
  await dir?.cleanup()
})

describe('GET /api/v1/openapi.json', () => {
  it('is an OpenAPI 3.1.0 document for the /api/v1 server, readable without log-in', () => {
    expect(document.openapi).toBe('3.1.0')
    expect(document.info.title).toBe('skolluft API')
    expect(document.servers).toEqual([{ url: '/api/v1' }])
    expect(Object.keys(document.components.securitySchemes).sort()).toEqual(['session', 'token'])
    expect(document.components.schemas.Problem).toMatchObject({ type: 'object' })
  })

  it('documents every route the app mounts under /api/v1, and nothing else', () => {
    const app = createApi({ log: silentLogger(), storage }).app
    const mounted = mountedRoutes(app.router.stack, '')
      .filter((r) => r.split(' ')[1]?.startsWith(`${API_V1_PREFIX}/`))
      .map((r) => r.replace(` ${API_V1_PREFIX}`, ' ').replace(/:(\w+)/g, '{$1}'))
      // The document does not describe itself.
      .filter((r) => r !== 'get /openapi.json')
      .sort()
    // The walk itself found the routes (a changed express internals would leave this list empty).
    expect(mounted).toContain('get /sites/{id}/series')
    expect(mounted.length).toBeGreaterThan(15)
    const documented = Object.entries(document.paths)
      .flatMap(([path, operations]) => Object.keys(operations).map((method) => `${method} ${path}`))
      .sort()
    expect(documented).toEqual(mounted)
  })

  it('lists the series query parameters exactly as SeriesQueryParams validates them', () => {
    const parameters = document.paths['/sites/{id}/series']?.get?.parameters ?? []
    expect(parameters.filter((p) => p.in === 'path').map((p) => [p.name, p.required])).toEqual([['id', true]])
    const query = parameters.filter((p) => p.in === 'query')
    expect(query.map((p) => p.name).sort()).toEqual(Object.keys(SeriesQueryParams.shape).sort())
    const byName = new Map(query.map((p) => [p.name, p]))
    // Only the metric is required; the window and resolution have defaults.
    expect(query.filter((p) => p.required).map((p) => p.name)).toEqual(['metric'])
    expect(byName.get('metric')?.schema).toMatchObject({ enum: [...METRICS] })
    expect(byName.get('every')?.schema).toMatchObject({ enum: [...SERIES_RESOLUTIONS], default: '1h' })
    expect(byName.get('from')?.schema).toMatchObject({ type: 'string', format: 'date-time' })
  })

  it('has request body schemas for log-in, new users and new tokens', () => {
    const body = (path: string) => {
      const schema = document.paths[path]?.post?.requestBody?.content['application/json'].schema
      expect(schema, path).toBeDefined()
      return JSON.stringify(schema)
    }
    const login = document.paths['/auth/login']?.post?.requestBody?.content['application/json'].schema
    expect(login).toMatchObject({
      type: 'object',
      properties: { email: { type: 'string' }, password: { type: 'string' } },
      required: expect.arrayContaining(['email', 'password']),
      additionalProperties: false,
    })
    for (const field of ['email', 'role', 'sites', 'password', 'admin', 'researcher']) {
      expect(body('/users')).toContain(`"${field}"`)
    }
    const token = document.paths['/tokens']?.post?.requestBody?.content['application/json'].schema
    expect(token).toMatchObject({
      type: 'object',
      properties: { name: { type: 'string' }, role: { default: 'researcher' }, expiresInDays: { maximum: 366 } },
      required: ['name'],
    })
    expect(body('/tokens')).toContain('"series:raw"')
    expect(body('/auth/setup')).toContain('"setupToken"')
    // Reads have no body.
    expect(document.paths['/sites']?.get?.requestBody).toBeUndefined()
  })

  it('names the permission of each operation, and marks the public and log-in ones as needing no credentials', () => {
    const permission = (path: string, method: string) => document.paths[path]?.[method]?.['x-permission']
    expect(permission('/sites', 'get')).toBe('map:read')
    expect(permission('/sites/{id}/series', 'get')).toBe('series:hourly')
    expect(permission('/users', 'post')).toBe('users:manage')
    expect(permission('/rejects', 'get')).toBe('rejects:read')
    expect(permission('/audit', 'get')).toBe('audit:read')
    expect(permission('/config', 'get')).toBe('public')
    expect(document.paths['/auth/login']?.post).toHaveProperty('security', [])
    expect(document.paths['/tokens']?.post?.responses).toHaveProperty('201')
    expect(document.paths['/tokens/{id}']?.delete?.responses).toHaveProperty('204')
  })
})
