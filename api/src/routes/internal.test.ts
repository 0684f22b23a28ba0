import { join } from 'node:path'
import { METRICS } from '@skolluft/core'
import { hashSecret, silentLogger } from '@skolluft/runtime'
import {
  MAX_REJECTS_PER_REQUEST,
  openSqliteStorage,
  RegistrySnapshot,
  type RejectEntry,
  type Storage,
} from '@skolluft/storage'
import { tempDir } from '@skolluft/testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type RunningApi, startApi } from '../server.ts'
import { ANONYMOUS_CALLER, type Caller, call } from '../test-http.ts'
import { CreateTokenBody, createToken } from './tokens.ts'

/**
 * The service endpoints over real HTTP against a real SQLite file: who may call them (a token of role service only),
 * what the registry answer holds (never a secret hash), the bounds of POST /internal/rejects, and the rate limits
 * (a service token is not held to the per-address limit; other callers are).
 */
const NOW = Date.parse('2026-11-30T12:00:00Z')
const clock = () => NOW + (Date.now() - STARTED)
const STARTED = Date.now()
/** A per-address limit small enough to meet in a test: 5 requests, then one every 100 s. */
const TIGHT_LIMIT = { ratePerS: 0.01, burst: 5 }

let dir: Awaited<ReturnType<typeof tempDir>>
let storage: Storage
let api: RunningApi
const callers: Record<'service' | 'admin' | 'researcher' | 'caretaker' | 'readOnlyService', Caller> = {
  service: ANONYMOUS_CALLER,
  admin: ANONYMOUS_CALLER,
  researcher: ANONYMOUS_CALLER,
  caretaker: ANONYMOUS_CALLER,
  readOnlyService: ANONYMOUS_CALLER,
}

async function token(body: unknown): Promise<Caller> {
  const { token: value } = await createToken({ storage, clock }, CreateTokenBody.parse(body), null)
  return { headers: { Authorization: `Bearer ${value}` }, csrf: null }
}

function reject(overrides: Partial<RejectEntry> = {}): RejectEntry {
  return {
    at: NOW,
    deviceId: 'dev-x',
    topic: 'aq/v1/devices/dev-x/telemetry',
    code: 'unknown_device',
    message: 'device dev-x is not registered',
    index: null,
    messageKey: 'k-1',
    redelivery: false,
    ...overrides,
  }
}

beforeAll(async () => {
  dir = await tempDir('skolluft-internal-')
  storage = openSqliteStorage({ path: join(dir.path, 'skolluft.db') })
  await storage.registry.upsertSites([
    { id: 'site-a', name: 'Site A (demo)', kind: 'school', municipality: 'Lund', lat: 55.7, lon: 13.19, demo: true },
  ])
  for (const id of ['dev-1', 'dev-2']) {
    await storage.registry.addDevice(
      {
        id,
        model: 'test',
        sensors: [...METRICS],
        intervalS: 60,
        secretHash: await hashSecret(`secret-of-${id}`),
        placement: { siteId: 'site-a', from: 0, indoor: false, heightM: 2 },
      },
      NOW,
    )
  }
  await storage.registry.revokeDevice('dev-2', NOW)
  callers.service = await token({ name: 'ingest on host b', role: 'service' })
  callers.readOnlyService = await token({ name: 'registry only', role: 'service', scopes: ['registry:read'] })
  callers.admin = await token({ name: 'admin', role: 'admin', scopes: ['users:manage', 'tokens:manage', 'audit:read'] })
  callers.researcher = await token({ name: 'research', role: 'researcher' })
  callers.caretaker = await token({ name: 'caretaker', role: 'caretaker' })
  api = await startApi({ log: silentLogger(), storage, clock, host: '127.0.0.1', port: 0 })
})

afterAll(async () => {
  await api?.close()
  await storage?.close()
  await dir?.cleanup()
})

describe('service tokens', () => {
  it('are created for role service with registry:read and rejects:write, and refused for people', async () => {
    const created = CreateTokenBody.parse({ name: 'x', role: 'service' })
    const { record } = await createToken({ storage, clock }, created, null)
    expect(record.scopes.sort()).toEqual(['registry:read', 'rejects:write'])
    // No other role may carry the service permissions, admin included.
    expect(CreateTokenBody.safeParse({ name: 'x', role: 'admin', scopes: ['registry:read'] }).success).toBe(false)
  })
})

describe('GET /api/v1/internal/registry', () => {
  it('gives a service token every device with model, sensors, interval, revocation and placements', async () => {
    const res = await call(api, callers.service, 'GET', '/internal/registry')
    expect(res.status).toBe(200)
    expect(res.headers.get('cache-control')).toMatch(/no-store/)
    const snapshot = RegistrySnapshot.parse(res.body)
    expect(snapshot.changed).toBe(true)
    expect(snapshot.revision).toBe(await storage.registry.revision())
    const devices = snapshot.changed ? snapshot.devices : []
    expect(devices.map((d) => [d.id, d.model, d.intervalS, d.revokedAt])).toEqual([
      ['dev-1', 'test', 60, null],
      ['dev-2', 'test', 60, NOW],
    ])
    expect(devices[0]?.sensors).toEqual([...METRICS])
    expect(devices[0]?.placements).toEqual([
      { deviceId: 'dev-1', siteId: 'site-a', from: 0, to: null, indoor: false, heightM: 2 },
    ])
  })

  it('never carries a secret hash', async () => {
    const res = await fetch(`http://127.0.0.1:${api.port}/api/v1/internal/registry`, {
      headers: callers.service.headers,
    })
    const text = await res.text()
    expect(res.status).toBe(200)
    const hashes = (await storage.registry.listDevices()).map((d) => d.secretHash)
    expect(hashes.every((h) => h.length > 20)).toBe(true)
    for (const hash of hashes) expect(text).not.toContain(hash)
    expect(text).not.toMatch(/secret|hash/i)
  })

  it('answers "unchanged" while the registry is at `since`, and everything once it changed', async () => {
    const revision = await storage.registry.revision()
    const same = await call(api, callers.service, 'GET', `/internal/registry?since=${revision}`)
    expect(same.body).toEqual({ revision, changed: false })
    await storage.registry.setDeviceInterval('dev-1', 30)
    const after = RegistrySnapshot.parse(
      (await call(api, callers.service, 'GET', `/internal/registry?since=${revision}`)).body,
    )
    expect(after.revision).toBeGreaterThan(revision)
    expect(after.changed && after.devices.find((d) => d.id === 'dev-1')?.intervalS).toBe(30)
    expect((await call(api, callers.service, 'GET', '/internal/registry?since=-1')).status).toBe(400)
    expect((await call(api, callers.service, 'GET', '/internal/registry?since=x')).status).toBe(400)
  })

  it('refuses everyone but a service token: 401 without or with a bad token, 403 for other roles', async () => {
    expect((await call(api, ANONYMOUS_CALLER, 'GET', '/internal/registry')).status).toBe(401)
    const bad = { headers: { Authorization: `Bearer skl_${'0'.repeat(24)}_${'A'.repeat(43)}` }, csrf: null }
    expect((await call(api, bad, 'GET', '/internal/registry')).status).toBe(401)
    for (const who of ['admin', 'researcher', 'caretaker'] as const) {
      const res = await call(api, callers[who], 'GET', '/internal/registry')
      expect(res.status, who).toBe(403)
      expect(res.body).toMatchObject({ code: 'forbidden' })
    }
  })
})

describe('POST /api/v1/internal/rejects', () => {
  it('appends to the reject log (read back with GET /rejects), skipping logged redeliveries', async () => {
    const first = await call(api, callers.service, 'POST', '/internal/rejects', {
      body: {
        rejects: [reject({ messageKey: 'k-a' }), reject({ messageKey: 'k-b', deviceId: null, code: 'bad_topic' })],
      },
    })
    expect(first.status).toBe(204)
    // The same message again as a redelivery is skipped; a new one with the flag is logged.
    const again = await call(api, callers.service, 'POST', '/internal/rejects', {
      body: {
        rejects: [reject({ messageKey: 'k-a', redelivery: true }), reject({ messageKey: 'k-c', redelivery: true })],
      },
    })
    expect(again.status).toBe(204)
    const listed = await call(api, callers.caretaker, 'GET', '/rejects')
    expect(listed.status).toBe(200)
    const keys = (await storage.rejects.list({ limit: 10 })).map((r) => r.messageKey)
    expect(keys).toEqual(['k-c', 'k-b', 'k-a'])
    expect(listed.body).toMatchObject({
      rejects: [
        { device: 'dev-x', code: 'unknown_device' },
        { device: null, code: 'bad_topic' },
        { device: 'dev-x', code: 'unknown_device' },
      ],
    })
  })

  it('validates the body and bounds its size', async () => {
    const post = (body: unknown) => call(api, callers.service, 'POST', '/internal/rejects', { body })
    expect((await post({ rejects: [] })).status).toBe(400)
    expect((await post({ rejects: [reject({ code: 'made_up' as RejectEntry['code'] })] })).status).toBe(400)
    expect((await post({ rejects: [{ ...reject(), secretHash: 'x' }] })).status).toBe(400)
    expect((await post({ rejects: [reject({ deviceId: 'Not An Id' })] })).status).toBe(400)
    expect((await post({ rejects: [reject({ message: 'x'.repeat(501) })] })).status).toBe(400)
    const tooMany = Array.from({ length: MAX_REJECTS_PER_REQUEST + 1 }, (_, i) => reject({ messageKey: `m-${i}` }))
    expect((await post({ rejects: tooMany })).status).toBe(400)
    const huge = await post({ rejects: [reject()], padding: 'x'.repeat(1_100_000) })
    expect(huge.status).toBe(413)
    expect(await storage.rejects.list({ limit: 100 })).toHaveLength(3)
  })

  it('needs rejects:write: 403 for other roles and for a service token without that scope', async () => {
    for (const who of ['admin', 'caretaker', 'readOnlyService'] as const) {
      const res = await call(api, callers[who], 'POST', '/internal/rejects', { body: { rejects: [reject()] } })
      expect(res.status, who).toBe(403)
    }
    expect((await call(api, callers.readOnlyService, 'GET', '/internal/registry')).status).toBe(200)
  })
})

describe('rate limits', () => {
  it('hold a service token to its own limit, not to the per-address one', async () => {
    const tight = await startApi({
      log: silentLogger(),
      storage,
      clock,
      host: '127.0.0.1',
      port: 0,
      options: { rateLimit: TIGHT_LIMIT },
    })
    try {
      // Far past the per-address burst: a service token is not counted there …
      for (let i = 0; i < 3 * TIGHT_LIMIT.burst; i += 1) {
        expect((await call(tight, callers.service, 'GET', '/internal/registry')).status).toBe(200)
      }
      // … while other callers at the same address are, on these routes as on the rest.
      const statuses: number[] = []
      for (let i = 0; i < TIGHT_LIMIT.burst + 1; i += 1) {
        statuses.push((await call(tight, callers.researcher, 'GET', '/internal/registry')).status)
      }
      expect(statuses.slice(0, TIGHT_LIMIT.burst)).toEqual(Array(TIGHT_LIMIT.burst).fill(403))
      expect(statuses.at(-1)).toBe(429)
      expect((await call(tight, callers.researcher, 'GET', '/sites')).status).toBe(429)
      expect((await call(tight, callers.service, 'GET', '/internal/registry')).status).toBe(200)
    } finally {
      await tight.close()
    }
  })

  it('count invalid tokens as failed log-ins of the address, then refuse it before checking any token', async () => {
    const tight = await startApi({ log: silentLogger(), storage, clock, host: '127.0.0.1', port: 0 })
    try {
      const bad = { headers: { Authorization: `Bearer skl_${'1'.repeat(24)}_${'B'.repeat(43)}` }, csrf: null }
      const statuses: number[] = []
      // LOGIN_BURST (10) failures, then refused.
      for (let i = 0; i < 11; i += 1) statuses.push((await call(tight, bad, 'GET', '/internal/registry')).status)
      expect(statuses.slice(0, 10)).toEqual(Array(10).fill(401))
      expect(statuses[10]).toBe(429)
    } finally {
      await tight.close()
    }
  })
})
