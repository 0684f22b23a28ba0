import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { deviceTopic, SiteFeatureCollection } from '@skolluft/core'
import { openSqliteStorage } from '@skolluft/storage'
import { tempDir, waitFor } from '@skolluft/testkit'
import mqtt from 'mqtt'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { spawnCli, waitForExit } from '../support/platform.ts'

/** The `skolluft` command as a user runs it: real child processes on a real data directory. */
async function run(args: string[], env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const child = spawnCli(args, env)
  const code = await waitForExit(child)
  return { code, output: child.output() }
}

/** Reads a field from the JSON log line whose msg is `msg`. */
function logField(output: string, msg: string, field: string): unknown {
  for (const line of output.split('\n')) {
    if (!line.startsWith('{')) continue
    const entry: unknown = JSON.parse(line)
    if (typeof entry === 'object' && entry !== null && 'msg' in entry && entry.msg === msg && field in entry) {
      return (entry as Record<string, unknown>)[field]
    }
  }
  return undefined
}

const SITES_CSV = `id,name,kind,stages,address,locality,municipality,lat,lon,demo
test-f-1,"Testförskolan Ett (demo)",preschool,,,Lund,Lund,55.70,13.19,true
test-s-1,"Testskolan Två, F-6 (demo)",school,f-3;4-6,,Dalby,Lund,55.66,13.35,true
`

describe('skolluft CLI', () => {
  let dir: { path: string; cleanup: () => Promise<void> }
  let env: Record<string, string>
  const children: ReturnType<typeof spawnCli>[] = []

  beforeEach(async () => {
    dir = await tempDir()
    env = { DATA_DIR: dir.path, LOG_LEVEL: 'info' }
  })

  afterEach(async () => {
    for (const child of children.splice(0)) {
      if (child.exitCode === null) child.kill('SIGKILL')
      await waitForExit(child)
    }
    await dir.cleanup()
  })

  it('imports sites from CSV, updates them on a second import, and refuses an invalid file', async () => {
    const csv = join(dir.path, 'sites.csv')
    await writeFile(csv, SITES_CSV)
    const first = await run(['sites', 'import', csv], env)
    expect(first.code, first.output).toBe(0)
    expect(first.output).toContain('2 new, 0 updated')
    await writeFile(csv, SITES_CSV.replace('Testförskolan Ett', 'Testförskolan Ettan'))
    const second = await run(['sites', 'import', csv], env)
    expect(second.output).toContain('0 new, 1 updated')
    const bad = join(dir.path, 'bad.csv')
    await writeFile(bad, `${SITES_CSV}test-x,"No position (demo)",preschool,,,Lund,Lund,,,true\n`)
    const refused = await run(['sites', 'import', bad], env)
    expect(refused.code).toBe(1)
    expect(refused.output).toMatch(/row 4/)
    expect(refused.output).toContain('nothing imported')
  })

  it('adds a device with a one-time secret stored only as a hash, lists it and revokes it', async () => {
    const csv = join(dir.path, 'sites.csv')
    await writeFile(csv, SITES_CSV)
    await run(['sites', 'import', csv], env)
    const added = await run(['device', 'add', '--site', 'test-f-1', '--id', 'dev-cli-1', '--json'], env)
    expect(added.code, added.output).toBe(0)
    const creds: unknown = JSON.parse(added.output.trim())
    expect(Object.keys(creds as object).sort()).toEqual(['deviceId', 'password', 'username'])
    const { password } = creds as { password: string }
    expect(password.length).toBeGreaterThanOrEqual(32)
    const database = await readFile(join(dir.path, 'skolluft.db'))
    const wal = await readFile(join(dir.path, 'skolluft.db-wal')).catch(() => Buffer.alloc(0))
    expect(database.includes(password)).toBe(false)
    expect(wal.includes(password)).toBe(false)

    const unknownSite = await run(['device', 'add', '--site', 'no-such-site', '--json'], env)
    expect(unknownSite.code).toBe(1)
    expect(unknownSite.output).toContain('no-such-site')

    const list = await run(['device', 'list', '--json'], env)
    expect(JSON.parse(list.output)).toEqual([
      expect.objectContaining({ deviceId: 'dev-cli-1', siteId: 'test-f-1', revokedAt: null }),
    ])
    expect((await run(['device', 'revoke', 'dev-cli-1'], env)).code).toBe(0)
    const after = JSON.parse((await run(['device', 'list', '--json'], env)).output) as { revokedAt: string | null }[]
    expect(after[0]?.revokedAt).not.toBeNull()
    expect((await run(['device', 'revoke', 'nobody'], env)).code).toBe(1)

    // Registry changes from the command line are admin actions, audited as "cli" (the failed revoke is not).
    const storage = openSqliteStorage({ path: join(dir.path, 'skolluft.db') })
    try {
      const entries = await storage.access.listAudit({ limit: 10 })
      expect(entries.map((e) => [e.actor, e.action, e.target])).toEqual([
        ['cli', 'device.revoke', 'dev-cli-1'],
        ['cli', 'device.add', 'dev-cli-1'],
        ['cli', 'sites.import', null],
      ])
    } finally {
      await storage.close()
    }
  })

  it('stops with a clear message when configuration is invalid', async () => {
    const result = await run(['api'], { ...env, PORT: 'eighty' })
    expect(result.code).toBe(2)
    expect(result.output).toContain('PORT')
    const unknown = await run(['frobnicate'], env)
    expect(unknown.code).toBe(2)
    expect(unknown.output).toContain('unknown command')
  })

  it('runs gateway, ingest and api as separate processes sharing one data directory', { timeout: 90_000 }, async () => {
    const csv = join(dir.path, 'sites.csv')
    await writeFile(csv, SITES_CSV)
    await run(['sites', 'import', csv], env)
    const creds = JSON.parse(
      (await run(['device', 'add', '--site', 'test-s-1', '--id', 'dev-sep-1', '--json'], env)).output,
    ) as {
      username: string
      password: string
    }
    const gateway = spawnCli(['gateway'], { ...env, MQTT_PORT: '0', MQTT_HOST: '127.0.0.1' })
    children.push(gateway)
    const mqttPort = await waitFor(() => logField(gateway.output(), 'gateway listening', 'port'), 'the gateway port', {
      timeoutMs: 30_000,
    })
    const mqttUrl = `mqtt://127.0.0.1:${String(mqttPort)}`
    const ingest = spawnCli(['ingest'], { ...env, MQTT_URL: mqttUrl })
    const api = spawnCli(['api'], { ...env, PORT: '0', HOST: '127.0.0.1', PUBLIC_MAP: 'on', LIVE_MQTT_URL: mqttUrl })
    children.push(ingest, api)
    await waitFor(() => ingest.output().includes('ingest subscribed'), 'the ingest to subscribe', { timeoutMs: 30_000 })
    // The API process follows the broker for live map events with its own service credential.
    await waitFor(() => api.output().includes('live feed subscribed'), 'the api live feed', { timeoutMs: 30_000 })
    const httpPort = await waitFor(() => logField(api.output(), 'api listening', 'port'), 'the api port', {
      timeoutMs: 30_000,
    })
    const device = await mqtt.connectAsync(mqttUrl, {
      clientId: creds.username,
      username: creds.username,
      password: creds.password,
      reconnectPeriod: 0,
    })
    await device.publishAsync(
      deviceTopic(creds.username, 'telemetry'),
      JSON.stringify({ ts: new Date().toISOString(), pm25: 11.5, no2_ppb: 10 }),
      { qos: 1 },
    )
    await device.endAsync()
    const site = await waitFor(async () => {
      const res = await fetch(`http://127.0.0.1:${String(httpPort)}/api/v1/sites`)
      const body = SiteFeatureCollection.parse(await res.json())
      return body.features.find((f) => f.id === 'test-s-1' && f.properties.latest)
    }, 'the reading to reach the API process')
    expect(site.properties.latest?.values.pm25).toBe(11.5)
    expect(site.properties.latest?.values.no2).toBeCloseTo(19.125, 9)

    // The platform configures the device: retained on its config topic, and recorded in the registry.
    const configured = await run(['device', 'config', 'dev-sep-1', '--interval', '120'], { ...env, MQTT_URL: mqttUrl })
    expect(configured.code, configured.output).toBe(0)
    const listener = await mqtt.connectAsync(mqttUrl, {
      clientId: creds.username,
      username: creds.username,
      password: creds.password,
      reconnectPeriod: 0,
    })
    const config = new Promise<unknown>((resolve) =>
      listener.once('message', (_topic, payload) => resolve(JSON.parse(payload.toString()))),
    )
    await listener.subscribeAsync(deviceTopic(creds.username, 'config'), { qos: 1 })
    expect(await config).toEqual({ interval_s: 120 })
    await listener.endAsync()
    const listed = JSON.parse((await run(['device', 'list', '--json'], env)).output) as {
      intervalS: number
      lastReadingAt: string | null
    }[]
    expect(listed[0]?.intervalS).toBe(120)
    expect(listed[0]?.lastReadingAt).not.toBeNull()
    const refused = await run(['device', 'config', 'dev-sep-1', '--interval', '5'], { ...env, MQTT_URL: mqttUrl })
    expect(refused.code).toBe(2)
    for (const child of [api, ingest, gateway]) {
      child.kill('SIGTERM')
      expect(await waitForExit(child)).toBe(0)
    }
  })

  it('starts the whole platform in one process; every demo site has latest readings within a minute', {
    timeout: 120_000,
  }, async () => {
    const start = spawnCli(['start'], {
      ...env,
      PORT: '0',
      HOST: '127.0.0.1',
      MQTT_PORT: '0',
      MQTT_HOST: '127.0.0.1',
      SIM_BACKFILL_DAYS: '0',
    })
    children.push(start)
    const startedAt = Date.now()
    const http = await waitFor(() => logField(start.output(), 'skolluft is running', 'http'), 'the platform to start', {
      timeoutMs: 30_000,
    })
    const base = String(http)
    const sites = await waitFor(
      async () => {
        const res = await fetch(`${base}/api/v1/sites`)
        const body = SiteFeatureCollection.parse(await res.json())
        return body.features.length >= 100 && body.features.every((f) => f.properties.latest !== null)
          ? body
          : undefined
      },
      'every demo site to have a latest reading',
      { timeoutMs: 60_000, intervalMs: 1_000 },
    )
    expect(Date.now() - startedAt).toBeLessThan(60_000 + 30_000)
    expect(sites.features.every((f) => f.properties.demo && f.properties.name.includes('demo'))).toBe(true)
    expect((await fetch(`${base}/healthz`)).status).toBe(200)
    start.kill('SIGTERM')
    expect(await waitForExit(start)).toBe(0)
  })
})
