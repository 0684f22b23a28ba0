import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { type RunningApi, startApi } from '@skolluft/api'
import { silentLogger } from '@skolluft/runtime'
import { openSqliteStorage, type Storage } from '@skolluft/storage'
import { tempDir } from '@skolluft/testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { CLI_BIN, spawnCli, TEST_SITES, waitForExit } from '../support/platform.ts'

/**
 * `npx skolluft user …` and `token …` as an operator runs them: real child processes on a real data
 * directory, and the credentials they print used against a real API (public map off) over that directory.
 */
const TokenOutput = z.strictObject({
  token: z.string().regex(/^skl_[0-9a-f]{24}_[A-Za-z0-9_-]{43}$/),
  id: z.string(),
  role: z.literal('researcher'),
  scopes: z.array(z.string()),
  sites: z.array(z.string()),
  expires_at: z.iso.datetime(),
})

let dir: Awaited<ReturnType<typeof tempDir>>
let storage: Storage
let api: RunningApi
let env: Record<string, string>
const base = () => `http://127.0.0.1:${api.port}/api/v1`

beforeAll(async () => {
  dir = await tempDir()
  // LOG_LEVEL=info: the audit log line must not end up in the JSON on stdout.
  env = { DATA_DIR: dir.path, LOG_LEVEL: 'info' }
  storage = openSqliteStorage({ path: join(dir.path, 'skolluft.db') })
  await storage.registry.upsertSites(TEST_SITES.map((s) => ({ ...s })))
  api = await startApi({
    log: silentLogger(),
    storage,
    host: '127.0.0.1',
    port: 0,
    options: { publicMap: false, mapSnapshotMaxAgeMs: 0 },
  })
})

afterAll(async () => {
  await api.close()
  await storage.close()
  await dir.cleanup()
})

describe('skolluft people commands end to end', () => {
  it('token create --role researcher --json prints a token the API accepts', async () => {
    const child = spawnCli(['token', 'create', '--role', 'researcher', '--json'], env)
    let stdout = ''
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString()
    })
    expect(await waitForExit(child), child.output()).toBe(0)
    const created = TokenOutput.parse(JSON.parse(stdout))
    expect(created.scopes).toContain('series:raw')
    expect(child.output()).toContain('"action":"token.create"')

    const series = `${base()}/sites/site-a/series?metric=pm25&every=raw`
    const authorised = await fetch(series, { headers: { authorization: `Bearer ${created.token}` } })
    expect(authorised.status).toBe(200)
    expect(await authorised.json()).toMatchObject({ site: 'site-a', metric: 'pm25', every: 'raw', points: [] })
    expect((await fetch(series)).status).toBe(401)
    const [entry] = await storage.access.listAudit({ limit: 5 })
    expect(entry).toMatchObject({ actor: 'cli', action: 'token.create', target: created.id })
  })

  it('user add --password-stdin reads the password piped in, and it logs in', async () => {
    const password = 'piped in from a password manager'
    const child = spawn(
      process.execPath,
      [CLI_BIN, 'user', 'add', '--role', 'staff', '--email', 'e2e@lund.se', '--password-stdin'],
      {
        env: { PATH: process.env.PATH ?? '', ...env },
        stdio: ['pipe', 'pipe', 'pipe'],
      },
    )
    let output = ''
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString()
    })
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString()
    })
    child.stdin.end(`${password}\n`)
    expect(await waitForExit(child), output).toBe(0)
    expect(output).toContain('user e2e@lund.se added: role staff')
    expect(output).not.toContain(password)

    const login = await fetch(`${base()}/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'e2e@lund.se', password }),
    })
    expect(login.status).toBe(200)
  })
})
