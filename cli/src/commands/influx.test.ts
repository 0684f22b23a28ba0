import { randomBytes } from 'node:crypto'
import { readFile, stat, writeFile } from 'node:fs/promises'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { tempDir } from '@skolluft/testkit'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { runCli } from '../main.ts'
import { type Captured, capture } from '../test-io.ts'
import { tokenDescription } from './influx.ts'

/**
 * `skolluft influx setup|check` in process (runCli with captured output) against a FAKE of the InfluxDB 2 HTTP API:
 * there is no InfluxDB 2 server on this machine. The fake is a real HTTP server on 127.0.0.1 port 0 that implements
 * the endpoints the command uses, with the request and response shapes of the InfluxDB 2 OpenAPI
 * (influxdata/openapi: src/oss/paths/setup.yml, src/common/paths/{orgs,buckets}.yml, src/oss/paths/authorizations.yml)
 * and the error bodies of the server ({"code":"unauthorized","message":"unauthorized access"}, 404 for an unknown
 * organisation name, "write:orgs is unauthorized" for a token without the permission). It checks the token on
 * every request but /api/v2/setup, as InfluxDB does, and records every request so the tests can assert what was
 * sent (and that a second run sends no change at all).
 */

const OPERATOR_TOKEN = `op-${randomBytes(16).toString('hex')}`
const PASSWORD = `pw-${randomBytes(12).toString('hex')}`

interface FakeBucket {
  id: string
  orgID: string
  name: string
  type: 'user' | 'system'
  retentionRules: { type: 'expire'; everySeconds: number; shardGroupDurationSeconds: number }[]
}
interface FakeAuth {
  id: string
  orgID: string
  token: string
  description: string
  status: 'active' | 'inactive'
  permissions: { action: string; resource: { type: string; id?: string; orgID?: string } }[]
}
interface Recorded {
  method: string
  path: string
  query: Record<string, string>
  body: unknown
}

interface Reply {
  readonly status: number
  readonly body?: unknown
}
const reply = (status: number, body?: unknown): Reply => ({ status, body })

function send(res: ServerResponse, { status, body }: Reply): void {
  if (body === undefined) res.writeHead(status).end()
  else res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify(body))
}

/** The InfluxDB 2 API, faked: the state a real server keeps for these endpoints, in memory. */
class FakeInflux {
  onboardingAllowed = false
  readonly users: { id: string; name: string; password: string }[] = []
  readonly orgs: { id: string; name: string; description?: string }[] = []
  readonly buckets: FakeBucket[] = []
  readonly auths: FakeAuth[] = []
  /** token → may it create organisations (an operator token) or only work in its own organisation. */
  readonly tokens = new Map<string, { operator: boolean; orgID?: string }>()
  readonly requests: Recorded[] = []
  private next = 0x0a1b2c3d4e5f0000n
  readonly server: Server

  constructor() {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => {
        let answer: Reply
        try {
          answer = this.handle(req, Buffer.concat(chunks).toString('utf8'))
        } catch (error) {
          answer = reply(400, { code: 'invalid', message: (error as Error).message })
        }
        send(res, answer)
      })
    })
  }

  id(): string {
    this.next += 1n
    return this.next.toString(16).padStart(16, '0')
  }

  /** A server that was onboarded earlier (by hand or by the compose file's DOCKER_INFLUXDB_INIT_*). */
  onboarded(): this {
    const orgID = this.id()
    this.orgs.push({ id: orgID, name: 'primary' })
    this.auths.push(this.auth(orgID, OPERATOR_TOKEN, 'admin token', [{ action: 'write', resource: { type: 'orgs' } }]))
    this.tokens.set(OPERATOR_TOKEN, { operator: true })
    return this
  }

  auth(orgID: string, token: string, description: string, permissions: FakeAuth['permissions']): FakeAuth {
    return { id: this.id(), orgID, token, description, status: 'active', permissions }
  }

  addBucket(orgID: string, name: string, everySeconds: number): FakeBucket {
    const bucket: FakeBucket = {
      id: this.id(),
      orgID,
      name,
      type: 'user',
      retentionRules: [{ type: 'expire', everySeconds, shardGroupDurationSeconds: 604_800 }],
    }
    this.buckets.push(bucket)
    return bucket
  }

  /** Requests that change something. */
  changes(): Recorded[] {
    return this.requests.filter((r) => r.method !== 'GET')
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve))
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`
  }

  async close(): Promise<void> {
    this.server.closeAllConnections()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }

  private handle(req: IncomingMessage, text: string): Reply {
    const url = new URL(req.url ?? '/', 'http://fake')
    const query = Object.fromEntries(url.searchParams)
    const body: unknown = text === '' ? undefined : JSON.parse(text)
    const method = req.method ?? 'GET'
    this.requests.push({ method, path: url.pathname, query, body })
    const route = `${method} ${url.pathname}`
    const b = (body ?? {}) as Record<string, unknown>

    if (route === 'GET /api/v2/setup') return reply(200, { allowed: this.onboardingAllowed })
    if (route === 'POST /api/v2/setup') {
      if (!this.onboardingAllowed)
        return reply(422, { code: 'conflict', message: 'onboarding has already been completed' })
      const orgID = this.id()
      const user = { id: this.id(), name: String(b.username), password: String(b.password) }
      this.users.push(user)
      this.orgs.push({ id: orgID, name: String(b.org) })
      const bucket = this.addBucket(orgID, String(b.bucket), Number(b.retentionPeriodSeconds ?? 0))
      const token = typeof b.token === 'string' ? b.token : `generated-${this.id()}`
      const auth = this.auth(orgID, token, `${user.name}'s Token`, [{ action: 'write', resource: { type: 'orgs' } }])
      this.auths.push(auth)
      this.tokens.set(token, { operator: true })
      this.onboardingAllowed = false
      return reply(201, { user: { id: user.id, name: user.name }, org: this.orgs.at(-1), bucket, auth })
    }

    const header = req.headers.authorization ?? ''
    const caller = header.startsWith('Token ') ? this.tokens.get(header.slice(6)) : undefined
    if (caller === undefined) return reply(401, { code: 'unauthorized', message: 'unauthorized access' })
    const visible = (orgID: string) => caller.operator || caller.orgID === orgID

    if (route === 'GET /api/v2/orgs') {
      const orgs = this.orgs.filter((o) => visible(o.id) && (query.org === undefined || o.name === query.org))
      if (query.org !== undefined && orgs.length === 0) {
        return reply(404, { code: 'not found', message: `organization name "${query.org}" not found` })
      }
      return reply(200, { links: { self: '/api/v2/orgs' }, orgs })
    }
    if (route === 'POST /api/v2/orgs') {
      if (!caller.operator) return reply(401, { code: 'unauthorized', message: 'write:orgs is unauthorized' })
      const org = { id: this.id(), name: String(b.name), description: String(b.description ?? '') }
      this.orgs.push(org)
      return reply(201, org)
    }
    if (route === 'GET /api/v2/buckets') {
      const found = this.buckets.filter(
        (x) =>
          visible(x.orgID) &&
          (query.orgID === undefined || x.orgID === query.orgID) &&
          (query.name === undefined || x.name === query.name),
      )
      if (query.name !== undefined && found.length === 0) {
        return reply(404, { code: 'not found', message: `bucket "${query.name}" not found` })
      }
      return reply(200, { links: { self: '/api/v2/buckets' }, buckets: found })
    }
    if (route === 'POST /api/v2/buckets') {
      const orgID = String(b.orgID)
      if (!visible(orgID))
        return reply(401, { code: 'unauthorized', message: `write:orgs/${orgID}/buckets is unauthorized` })
      const rules = z
        .array(z.object({ type: z.literal('expire'), everySeconds: z.number().int().min(0) }))
        .parse(b.retentionRules)
      return reply(201, this.addBucket(orgID, String(b.name), rules[0]?.everySeconds ?? 0))
    }
    const bucketMatch = /^\/api\/v2\/buckets\/([0-9a-f]{16})$/.exec(url.pathname)
    if (method === 'PATCH' && bucketMatch) {
      const bucket = this.buckets.find((x) => x.id === bucketMatch[1])
      if (bucket === undefined) return reply(404, { code: 'not found', message: 'bucket not found' })
      const rules = z
        .array(z.object({ type: z.literal('expire'), everySeconds: z.number().int().min(0) }))
        .parse(b.retentionRules)
      const first = rules[0]
      if (first !== undefined)
        bucket.retentionRules = [
          { type: 'expire', everySeconds: first.everySeconds, shardGroupDurationSeconds: 604_800 },
        ]
      return reply(200, bucket)
    }
    if (route === 'GET /api/v2/authorizations') {
      const list = this.auths.filter((a) => visible(a.orgID) && (query.orgID === undefined || a.orgID === query.orgID))
      return reply(200, { links: { self: '/api/v2/authorizations' }, authorizations: list })
    }
    if (route === 'POST /api/v2/authorizations') {
      const parsed = z
        .object({
          orgID: z.string(),
          description: z.string(),
          permissions: z
            .array(
              z.object({
                action: z.enum(['read', 'write']),
                resource: z.object({ type: z.string(), id: z.string().optional(), orgID: z.string().optional() }),
              }),
            )
            .min(1),
        })
        .safeParse(body)
      if (!parsed.success) return reply(400, { code: 'invalid', message: 'invalid authorization' })
      const auth = this.auth(
        parsed.data.orgID,
        `scoped-${randomBytes(20).toString('hex')}`,
        parsed.data.description,
        parsed.data.permissions,
      )
      this.auths.push(auth)
      this.tokens.set(auth.token, { operator: false, orgID: auth.orgID })
      return reply(201, auth)
    }
    const authMatch = /^\/api\/v2\/authorizations\/([0-9a-f]{16})$/.exec(url.pathname)
    if (method === 'DELETE' && authMatch) {
      const at = this.auths.findIndex((a) => a.id === authMatch[1])
      if (at < 0) return reply(404, { code: 'not found', message: 'authorization not found' })
      const [gone] = this.auths.splice(at, 1)
      if (gone) this.tokens.delete(gone.token)
      return reply(204)
    }
    return reply(404, { code: 'not found', message: 'path not found' })
  }
}

let fake: FakeInflux
let url: string
let dir: Awaited<ReturnType<typeof tempDir>>
let env: NodeJS.ProcessEnv

beforeEach(async () => {
  fake = new FakeInflux()
  url = await fake.listen()
  dir = await tempDir()
  env = {
    INFLUX_URL: url,
    INFLUX_ORG: 'lund',
    INFLUX_BUCKET: 'readings',
    INFLUX_TOKEN: OPERATOR_TOKEN,
    // Every log line the command has, so the secret checks see all of them.
    LOG_LEVEL: 'trace',
  }
})

afterEach(async () => {
  await fake.close()
  await dir.cleanup()
})

async function cli(...argv: string[]): Promise<{ code: number } & Captured> {
  const c = capture()
  const code = await runCli(argv, env, c.io)
  return { code, ...c }
}

/** Every secret the fake knows (operator token, created tokens, passwords). */
function secrets(): string[] {
  return [OPERATOR_TOKEN, PASSWORD, ...fake.auths.map((a) => a.token), ...fake.users.map((u) => u.password)]
}

function expectNoSecretIn(text: string): void {
  for (const secret of secrets()) expect(text).not.toContain(secret)
}

const tokenOf = (description: string) => fake.auths.find((a) => a.description === description)

describe('skolluft influx setup (InfluxDB 2 API faked: no InfluxDB server here)', () => {
  it('creates the organisation, the bucket (kept forever by default) and two tokens scoped to the bucket', async () => {
    fake.onboarded()
    const r = await cli('influx', 'setup')
    expect(r.stderr()).not.toContain('"level":50')
    expect(r.code).toBe(0)

    const org = fake.orgs.find((o) => o.name === 'lund')
    const bucket = fake.buckets.find((b) => b.name === 'readings')
    expect(org).toBeDefined()
    expect(bucket?.orgID).toBe(org?.id)
    const posts = fake.changes().map((q) => `${q.method} ${q.path}`)
    expect(posts).toEqual([
      'POST /api/v2/orgs',
      'POST /api/v2/buckets',
      'POST /api/v2/authorizations',
      'POST /api/v2/authorizations',
    ])
    const bucketPost = fake.requests.find((q) => q.method === 'POST' && q.path === '/api/v2/buckets')
    expect(bucketPost?.body).toMatchObject({
      orgID: org?.id,
      name: 'readings',
      retentionRules: [{ type: 'expire', everySeconds: 0 }],
    })

    const authPosts = fake.requests.filter((q) => q.method === 'POST' && q.path === '/api/v2/authorizations')
    const resource = { type: 'buckets', id: bucket?.id, orgID: org?.id }
    expect(authPosts.map((q) => q.body)).toEqual([
      {
        orgID: org?.id,
        description: tokenDescription('ingest', 'readings'),
        status: 'active',
        permissions: [
          { action: 'read', resource },
          { action: 'write', resource },
        ],
      },
      {
        orgID: org?.id,
        description: tokenDescription('read', 'readings'),
        status: 'active',
        permissions: [{ action: 'read', resource }],
      },
    ])

    // Each new token is shown once on stdout, as an env line; nothing secret reaches the logs on stderr.
    const ingest = tokenOf(tokenDescription('ingest', 'readings'))
    const read = tokenOf(tokenDescription('read', 'readings'))
    expect(r.stdout()).toContain(`INFLUX_TOKEN=${ingest?.token}`)
    expect(r.stdout()).toContain(`INFLUX_TOKEN=${read?.token}`)
    expect(r.stdout()).not.toContain(OPERATOR_TOKEN)
    expect(r.stderr()).toContain('influxdb token created')
    expectNoSecretIn(r.stderr())
  })

  it('changes nothing on a second run, and says so', async () => {
    fake.onboarded()
    expect((await cli('influx', 'setup')).code).toBe(0)
    const before = fake.requests.length
    const second = await cli('influx', 'setup')
    expect(second.code).toBe(0)
    expect(fake.requests.slice(before).filter((q) => q.method !== 'GET')).toEqual([])
    expect(second.stdout()).toContain('nothing to change')
    expect(second.stdout()).toContain('ingest token (')
    expect(second.stdout()).toContain('exists (not shown again)')
    expect(second.stdout()).not.toContain('INFLUX_TOKEN=')
    expectNoSecretIn(second.stdout() + second.stderr())
    expect((await cli('influx', 'check')).code).toBe(0)
  })

  it('reports a bucket with another retention and changes it only with --apply', async () => {
    fake.onboarded()
    const orgID = fake.id()
    fake.orgs.push({ id: orgID, name: 'lund' })
    const bucket = fake.addBucket(orgID, 'readings', 30 * 86_400)

    const reported = await cli('influx', 'setup')
    expect(reported.code).toBe(1)
    expect(reported.stdout()).toContain('bucket readings: retention is 30 days, wanted kept forever: left as it is')
    expect(fake.requests.some((q) => q.method === 'PATCH')).toBe(false)
    expect(bucket.retentionRules[0]?.everySeconds).toBe(30 * 86_400)
    // The rest was still set up: tokens for the existing bucket.
    expect(tokenOf(tokenDescription('ingest', 'readings'))?.permissions[0]?.resource.id).toBe(bucket.id)

    const check = await cli('influx', 'check', '--retention', '7')
    expect(check.code).toBe(1)
    expect(check.stdout()).toContain('retention is 30 days, wanted 7 days')
    expect(check.stdout()).toContain('shortening it deletes older readings')

    const applied = await cli('influx', 'setup', '--apply')
    expect(applied.code).toBe(0)
    const patch = fake.requests.find((q) => q.method === 'PATCH')
    expect(patch?.path).toBe(`/api/v2/buckets/${bucket.id}`)
    expect(patch?.body).toEqual({ retentionRules: [{ type: 'expire', everySeconds: 0 }] })
    expect(bucket.retentionRules[0]?.everySeconds).toBe(0)
    expect((await cli('influx', 'check')).code).toBe(0)
  })

  it('creates a bucket with --retention in days', async () => {
    fake.onboarded()
    expect((await cli('influx', 'setup', '--retention', '365')).code).toBe(0)
    expect(fake.buckets.find((b) => b.name === 'readings')?.retentionRules[0]?.everySeconds).toBe(365 * 86_400)
    const bad = await cli('influx', 'setup', '--retention', '30d')
    expect(bad.code).toBe(2)
    expect(bad.stderr()).toContain('--retention must be whole days')
  })

  it('replaces a token with other permissions only with --apply', async () => {
    fake.onboarded()
    expect((await cli('influx', 'setup')).code).toBe(0)
    const read = tokenOf(tokenDescription('read', 'readings'))
    // Someone widened the read-only token by hand: read on every bucket of the organisation.
    if (read === undefined) throw new Error('no read token')
    read.permissions = [{ action: 'read', resource: { type: 'buckets', orgID: read.orgID } }]

    const reported = await cli('influx', 'setup')
    expect(reported.code).toBe(1)
    expect(reported.stdout()).toContain(
      'read token (API and Grafana: read-only on the bucket): exists with other permissions',
    )
    expect(fake.changes().filter((q) => q.method === 'DELETE')).toEqual([])

    const applied = await cli('influx', 'setup', '--apply')
    expect(applied.code).toBe(0)
    const replacement = tokenOf(tokenDescription('read', 'readings'))
    expect(replacement?.id).not.toBe(read.id)
    expect(fake.auths.some((a) => a.id === read.id)).toBe(false)
    expect(applied.stdout()).toContain(`INFLUX_TOKEN=${replacement?.token}`)
  })

  it('writes new tokens to env files of mode 0600 with --ingest-env and --read-env, not to stdout', async () => {
    fake.onboarded()
    const ingestFile = join(dir.path, 'ingest.env')
    const readEnvFile = join(dir.path, 'api.env')
    const r = await cli('influx', 'setup', '--ingest-env', ingestFile, '--read-env', readEnvFile)
    expect(r.code).toBe(0)
    const ingestText = await readFile(ingestFile, 'utf8')
    const ingest = tokenOf(tokenDescription('ingest', 'readings'))
    expect(ingestText).toContain(`INFLUX_TOKEN=${ingest?.token}\n`)
    expect(ingestText).toContain(`INFLUX_URL=${url}\n`)
    expect(ingestText).toContain('INFLUX_BUCKET=readings\n')
    expect(await readFile(readEnvFile, 'utf8')).toContain(
      `INFLUX_TOKEN=${tokenOf(tokenDescription('read', 'readings'))?.token}`,
    )
    expect((await stat(ingestFile)).mode & 0o777).toBe(0o600)
    expect((await stat(readEnvFile)).mode & 0o777).toBe(0o600)
    expect(r.stdout()).toContain(`written to ${ingestFile} (mode 0600)`)
    expectNoSecretIn(r.stdout() + r.stderr())
  })

  it('refuses a wrong token (401) clearly, without echoing it', async () => {
    fake.onboarded()
    env = { ...env, INFLUX_TOKEN: 'not-the-token-0123456789' }
    const r = await cli('influx', 'setup')
    expect(r.code).toBe(1)
    expect(r.stderr()).toContain(`InfluxDB at ${url} refused INFLUX_TOKEN (401 unauthorized access)`)
    expect(r.stderr()).toContain('[INFLUX_UNAUTHORIZED]')
    expect(r.stderr()).not.toContain('not-the-token-0123456789')
    expect(fake.changes()).toEqual([])
  })

  it('says so when the organisation is missing and the token may not create it', async () => {
    fake.onboarded()
    const otherOrg = fake.id()
    fake.orgs.push({ id: otherOrg, name: 'malmo' })
    const scoped = `all-access-${randomBytes(8).toString('hex')}`
    fake.tokens.set(scoped, { operator: false, orgID: otherOrg })
    env = { ...env, INFLUX_TOKEN: scoped }
    const r = await cli('influx', 'setup')
    expect(r.code).toBe(1)
    expect(r.stderr()).toContain('INFLUX_TOKEN may not create the organisation lund (401: write:orgs is unauthorized)')
    expect(r.stderr()).toContain('[INFLUX_FORBIDDEN]')
    expect(r.stderr()).not.toContain(scoped)
  })

  it('says so when the server cannot be reached', async () => {
    await fake.close()
    const r = await cli('influx', 'check')
    expect(r.code).toBe(1)
    expect(r.stderr()).toContain(`cannot reach InfluxDB at ${url} (ECONNREFUSED)`)
    // A fresh fake for afterEach to close.
    fake = new FakeInflux()
    await fake.listen()
  })

  it('refuses a missing or invalid environment (exit 2), naming the variables', async () => {
    env = { INFLUX_URL: 'influxdb:8086', INFLUX_TOKEN: OPERATOR_TOKEN }
    const r = await cli('influx', 'setup')
    expect(r.code).toBe(2)
    expect(r.stderr()).toContain('INFLUX_URL')
    expect(r.stderr()).toContain('INFLUX_ORG')
    expect(r.stderr()).toContain('INFLUX_BUCKET')
    expect(r.stderr()).not.toContain(OPERATOR_TOKEN)
  })
})

describe('skolluft influx setup --init (InfluxDB 2 onboarding API faked: no InfluxDB server here)', () => {
  beforeEach(() => {
    fake.onboardingAllowed = true
  })

  it('asks for --init on a server that is not set up, and check reports it', async () => {
    const r = await cli('influx', 'setup')
    expect(r.code).toBe(1)
    expect(r.stderr()).toContain('is not set up yet; onboard it with: skolluft influx setup --init --username')
    const check = await cli('influx', 'check')
    expect(check.code).toBe(1)
    expect(check.stdout()).toContain('server: not set up yet')
    expect(fake.changes()).toEqual([])
  })

  it('onboards with the password from a file and INFLUX_TOKEN as the operator token, then makes the tokens', async () => {
    const passwordFile = join(dir.path, 'influx-password')
    await writeFile(passwordFile, `${PASSWORD}\n`, { mode: 0o600 })
    const r = await cli(
      'influx',
      'setup',
      '--init',
      '--username',
      'admin',
      '--password-file',
      passwordFile,
      '--retention',
      '3650',
    )
    expect(r.stderr()).not.toContain('"level":50')
    expect(r.code).toBe(0)

    const onboarding = fake.requests.find((q) => q.method === 'POST' && q.path === '/api/v2/setup')
    expect(onboarding?.body).toEqual({
      username: 'admin',
      password: PASSWORD,
      org: 'lund',
      bucket: 'readings',
      retentionPeriodSeconds: 3650 * 86_400,
      token: OPERATOR_TOKEN,
    })
    // Onboarding made the org and the bucket; then only the two tokens were created, with the operator token.
    expect(fake.changes().map((q) => `${q.method} ${q.path}`)).toEqual([
      'POST /api/v2/setup',
      'POST /api/v2/authorizations',
      'POST /api/v2/authorizations',
    ])
    expect(r.stdout()).toContain('onboarded: user admin, organisation lund, bucket readings (3650 days)')
    expect(r.stdout()).not.toContain(PASSWORD)
    expect(r.stderr()).not.toContain(PASSWORD)
    expectNoSecretIn(r.stderr())

    const again = await cli(
      'influx',
      'setup',
      '--init',
      '--username',
      'admin',
      '--password-file',
      passwordFile,
      '--retention',
      '3650',
    )
    expect(again.code).toBe(0)
    expect(again.stdout()).toContain('onboarding: already done')
    expect(again.stdout()).toContain('nothing to change')
    expect(fake.changes()).toHaveLength(3)
  })

  it('refuses --init without a password file, and a short password, before any request', async () => {
    const missing = await cli('influx', 'setup', '--init', '--username', 'admin')
    expect(missing.code).toBe(2)
    expect(missing.stderr()).toContain('--init needs --username <name> and --password-file <file>')
    const short = join(dir.path, 'short')
    await writeFile(short, 'abc\n')
    const tooShort = await cli('influx', 'setup', '--init', '--username', 'admin', '--password-file', short)
    expect(tooShort.code).toBe(2)
    expect(tooShort.stderr()).toContain('at least 8 characters')
    expect(fake.changes()).toEqual([])
    const noPasswordFlag = await cli('influx', 'setup', '--init', '--username', 'admin', '--password', 'x')
    expect(noPasswordFlag.code).toBe(2)
  })
})
