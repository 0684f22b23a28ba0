import { type ChildProcess, spawn } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { METRICS } from '@skolluft/core'
import { type Gateway, type GatewayLimits, type GatewayOptions, startGateway } from '@skolluft/gateway'
import { generateSecret, hashSecret, silentLogger } from '@skolluft/runtime'
import { openSqliteSpool, openSqliteStorage, type Storage, type TelemetrySpool } from '@skolluft/storage'
import { tempDir } from '@skolluft/testkit'
import { expect } from 'vitest'

/** System-test helpers: real gateway, real SQLite file, real child processes of the real CLI. */
export const CLI_BIN = fileURLToPath(new URL('../../cli/bin/skolluft.js', import.meta.url))

export interface TestPlatform {
  readonly dataDir: string
  readonly storage: Storage
  readonly gateway: Gateway
  readonly mqttUrl: string
  readonly ingestCredential: { username: string; password: string }
  close(): Promise<void>
}

export const TEST_SITES = [
  {
    id: 'site-a',
    name: 'Testförskolan A (demo)',
    kind: 'preschool',
    municipality: 'Lund',
    lat: 55.7,
    lon: 13.19,
    demo: true,
  },
  {
    id: 'site-b',
    name: 'Testskolan B (demo)',
    kind: 'school',
    municipality: 'Lund',
    lat: 55.66,
    lon: 13.36,
    demo: true,
  },
] as const

export interface TestPlatformOptions {
  /**
   * Gives the gateway its durable telemetry spool (DATA_DIR/gateway-spool.db, as `skolluft gateway` runs it).
   * Then `gateway.stats().spoolEntries` counts the telemetry the ingest has not acknowledged yet.
   */
  readonly spool?: boolean
}

/** A data directory with two sites, an ingest service account and a gateway on a random port. */
export async function startTestPlatform(
  limits: Partial<GatewayLimits> = {},
  durableSubscribers: GatewayOptions['durableSubscribers'] = [],
  options: TestPlatformOptions = {},
): Promise<TestPlatform> {
  const dir = await tempDir()
  const storage = openSqliteStorage({ path: join(dir.path, 'skolluft.db') })
  await storage.registry.upsertSites(TEST_SITES.map((s) => ({ ...s })))
  const password = generateSecret()
  await storage.registry.upsertServiceAccount({
    username: 'svc.ingest',
    secretHash: await hashSecret(password),
    role: 'ingest',
  })
  const spool: TelemetrySpool | undefined = options.spool
    ? openSqliteSpool({ path: join(dir.path, 'gateway-spool.db') })
    : undefined
  const gateway = await startGateway({
    log: silentLogger(),
    registry: storage.registry,
    host: '127.0.0.1',
    port: 0,
    limits,
    registryPollMs: 200,
    durableSubscribers,
    ...(spool === undefined ? {} : { spool }),
  })
  return {
    dataDir: dir.path,
    storage,
    gateway,
    mqttUrl: `mqtt://127.0.0.1:${gateway.port}`,
    ingestCredential: { username: 'svc.ingest', password },
    async close() {
      await gateway.close()
      await spool?.close()
      await storage.close()
      await dir.cleanup()
    },
  }
}

/** Registers a device at a site and returns its credentials, as `skolluft device add` does. */
export async function addTestDevice(
  storage: Storage,
  deviceId: string,
  siteId: string,
): Promise<{ deviceId: string; password: string }> {
  const password = generateSecret()
  await storage.registry.addDevice(
    {
      id: deviceId,
      model: 'test',
      sensors: [...METRICS],
      intervalS: 60,
      secretHash: await hashSecret(password),
      placement: { siteId, from: 0, indoor: false, heightM: 2 },
    },
    Date.now(),
  )
  return { deviceId, password }
}

/** Starts `skolluft <args>` as a child process, collecting its output. */
export function spawnCli(
  args: readonly string[],
  env: Record<string, string>,
): ChildProcess & { output: () => string } {
  const child = spawn(process.execPath, [CLI_BIN, ...args], {
    env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString()
  })
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString()
  })
  return Object.assign(child, { output: () => output })
}

export function waitForExit(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode)
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)))
}

/**
 * Asserts that every device has exactly `perDevice` readings stored: the raw count, and the hourly
 * aggregates' n (which would count a reading stored twice, or miss one stored without its aggregate).
 */
export async function expectEachStoredOnce(
  storage: Storage,
  deviceIds: readonly string[],
  perDevice: number,
  start: number,
  intervalMs = 60_000,
): Promise<void> {
  for (const deviceId of deviceIds) {
    expect(await storage.readings.countReadings({ deviceId })).toBe(perDevice)
    const hours = await storage.readings.aggregateSeries({
      deviceId,
      metric: 'pm25',
      from: start,
      to: start + perDevice * intervalMs,
      limit: 1000,
      every: '1h',
    })
    expect(hours.reduce((sum, h) => sum + h.n, 0)).toBe(perDevice)
  }
}
