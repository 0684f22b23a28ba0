import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { basename } from 'node:path'
import { audit } from '@skolluft/api'
import {
  DeviceConfig,
  DeviceId,
  detectSitesFormat,
  deviceTopic,
  METRICS,
  parseSitesFile,
  placementAt,
} from '@skolluft/core'
import { generateSecret, hashSecret, loadConfig, silentLogger } from '@skolluft/runtime'
import type { Storage } from '@skolluft/storage'
import { CommonConfig } from '../config.ts'
import { withDataDir } from '../data-dir.ts'
import type { CliIo } from '../main.ts'
import { isoOrNull, printRows } from '../output.ts'
import { loadServiceCredential } from '../service-credentials.ts'
import { CLI_ACTOR } from './people.ts'

/** Registry changes from the command line are admin actions: each goes to the audit log as `cli`. */
function auditCli(storage: Storage, action: string, target: string | null, detail: Record<string, unknown> = {}) {
  return audit({ storage, clock: Date.now, log: silentLogger() }, CLI_ACTOR, action, target, detail)
}

export interface DeviceAddOptions {
  readonly siteId: string
  readonly deviceId: string | undefined
  readonly model: string
  readonly intervalS: number
  readonly indoor: boolean
  readonly heightM: number | null
  readonly json: boolean
}

/** Registers a device at a site and prints its credentials. The secret is shown only here, once. */
export async function deviceAdd(env: NodeJS.ProcessEnv, io: CliIo, options: DeviceAddOptions): Promise<number> {
  const config = loadConfig(CommonConfig, env)
  const deviceId = options.deviceId ?? `dev-${randomBytes(5).toString('hex')}`
  const id = DeviceId.safeParse(deviceId)
  if (!id.success) {
    io.err(`skolluft: invalid device id "${deviceId}": ${id.error.issues[0]?.message ?? ''}`)
    return 2
  }
  const password = generateSecret()
  const secretHash = await hashSecret(password)
  await withDataDir(config, async (storage) => {
    await storage.registry.addDevice(
      {
        id: id.data,
        model: options.model,
        sensors: [...METRICS],
        intervalS: options.intervalS,
        secretHash,
        placement: { siteId: options.siteId, from: Date.now(), indoor: options.indoor, heightM: options.heightM },
      },
      Date.now(),
    )
    await auditCli(storage, 'device.add', id.data, { site: options.siteId, intervalS: options.intervalS })
  })
  if (options.json) {
    io.out(JSON.stringify({ deviceId: id.data, username: id.data, password }))
  } else {
    io.out(
      `device ${id.data} added at site ${options.siteId}\n  username: ${id.data}\n  password: ${password}\n` +
        'The password is shown only now; it is stored hashed. Run "device add" again with a new id if it is lost.',
    )
  }
  return 0
}

export async function deviceList(env: NodeJS.ProcessEnv, io: CliIo, json: boolean): Promise<number> {
  const config = loadConfig(CommonConfig, env)
  const [devices, latest] = await withDataDir(config, (storage) =>
    Promise.all([storage.registry.listDevices(), storage.readings.latestByDevice()]),
  )
  const lastSeen = new Map(latest.map((l) => [l.deviceId, l]))
  const now = Date.now()
  const rows = devices.map((d) => {
    const placement = placementAt(d.placements, now)
    const last = lastSeen.get(d.id)
    return {
      deviceId: d.id,
      model: d.model,
      siteId: placement?.siteId ?? null,
      indoor: placement?.indoor ?? null,
      intervalS: d.intervalS,
      createdAt: new Date(d.createdAt).toISOString(),
      revokedAt: d.revokedAt === null ? null : new Date(d.revokedAt).toISOString(),
      /** Measurement time of the newest reading stored, and when it arrived. */
      lastReadingAt: isoOrNull(last?.ts),
      lastReceivedAt: isoOrNull(last?.receivedAt),
    }
  })
  return printRows(io, rows, {
    json,
    empty: 'no devices registered',
    header: ['DEVICE', 'SITE', 'MODEL', 'INTERVAL', 'LAST READING', 'STATE'],
    cells: (r) => [
      r.deviceId,
      r.siteId ?? '-',
      r.model,
      `${r.intervalS}s`,
      r.lastReadingAt ?? 'never',
      r.revokedAt ? `revoked ${r.revokedAt}` : 'active',
    ],
  })
}

export async function deviceRevoke(env: NodeJS.ProcessEnv, io: CliIo, deviceId: string): Promise<number> {
  const config = loadConfig(CommonConfig, env)
  const revoked = await withDataDir(config, async (storage) => {
    const done = await storage.registry.revokeDevice(deviceId, Date.now())
    if (done) await auditCli(storage, 'device.revoke', deviceId)
    return done
  })
  if (!revoked) {
    io.err(`skolluft: no device "${deviceId}"`)
    return 1
  }
  io.out(`device ${deviceId} revoked; a running gateway disconnects it within seconds`)
  return 0
}

export async function sitesImport(
  env: NodeJS.ProcessEnv,
  io: CliIo,
  file: string,
  allowPartial: boolean,
): Promise<number> {
  const config = loadConfig(CommonConfig, env)
  const text = await readFile(file, 'utf8')
  const format = detectSitesFormat(basename(file), text)
  const { sites, errors } = parseSitesFile(text, format)
  for (const e of errors) io.err(`${file}: row ${e.row}: ${e.message}`)
  if (errors.length > 0 && !allowPartial) {
    io.err(`skolluft: ${errors.length} invalid row(s); nothing imported (use --allow-partial to import the valid rows)`)
    return 1
  }
  const result = await withDataDir(config, async (storage) => {
    const r = await storage.registry.upsertSites(sites)
    await auditCli(storage, 'sites.import', null, { file: basename(file), inserted: r.inserted, updated: r.updated })
    return r
  })
  io.out(`imported ${sites.length} site(s) from ${format}: ${result.inserted} new, ${result.updated} updated`)
  return errors.length > 0 ? 1 : 0
}

export async function rejectsList(
  env: NodeJS.ProcessEnv,
  io: CliIo,
  query: { limit: number; deviceId: string | undefined; json: boolean },
): Promise<number> {
  const config = loadConfig(CommonConfig, env)
  const [entries, counts] = await withDataDir(config, (storage) =>
    Promise.all([
      storage.rejects.list({ limit: query.limit, ...(query.deviceId ? { deviceId: query.deviceId } : {}) }),
      storage.rejects.counts(),
    ]),
  )
  if (query.json) {
    io.out(JSON.stringify({ counts, entries }))
    return 0
  }
  io.out('REJECTED TELEMETRY, totals per device and reason:')
  if (counts.length === 0) io.out('  none')
  for (const c of counts) {
    io.out(`  ${c.deviceId ?? '(unknown)'}\t${c.code}\t${c.count}\tlast ${new Date(c.lastAt).toISOString()}`)
  }
  io.out(`\nNewest ${entries.length} rejection(s):`)
  for (const e of entries) {
    const where = e.index === null ? '' : ` [reading ${e.index}]`
    io.out(`  ${new Date(e.at).toISOString()}\t${e.deviceId ?? '(unknown)'}\t${e.code}${where}\t${e.message}`)
  }
  return 0
}

/**
 * Sends a device its configuration (device contract: retained, QoS 1, on its config topic) through
 * the broker as the platform's admin service, and records the new interval in the registry so that
 * expected counts and coverage follow it.
 */
export async function deviceConfig(
  env: NodeJS.ProcessEnv,
  io: CliIo,
  deviceId: string,
  config: { interval_s: number },
): Promise<number> {
  // Loaded here only: the other admin commands need neither MQTT nor the ingest's schema.
  const [{ IngestConfig }, { default: mqtt }] = await Promise.all([import('@skolluft/ingest'), import('mqtt')])
  // The same broker settings as the ingest's (MQTT_URL, MQTT_USERNAME, MQTT_PASSWORD).
  const settings = loadConfig(CommonConfig.extend(IngestConfig.shape), env)
  const { DATA_DIR, MQTT_URL, MQTT_USERNAME, MQTT_PASSWORD } = settings
  const parsed = DeviceConfig.safeParse(config)
  if (!parsed.success) {
    io.err(
      `skolluft: invalid configuration: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    )
    return 2
  }
  return withDataDir(settings, async (storage) => {
    const device = await storage.registry.getDevice(deviceId)
    if (!device || device.revokedAt !== null) {
      io.err(`skolluft: no active device "${deviceId}"`)
      return 1
    }
    const credential = await loadServiceCredential('admin', DATA_DIR, { MQTT_USERNAME, MQTT_PASSWORD })
    const client = await mqtt.connectAsync(MQTT_URL, {
      clientId: `${credential.username}-${randomBytes(4).toString('hex')}`,
      username: credential.username,
      password: credential.password,
      reconnectPeriod: 0,
      connectTimeout: 10_000,
    })
    try {
      await client.publishAsync(deviceTopic(deviceId, 'config'), JSON.stringify(parsed.data), { qos: 1, retain: true })
    } finally {
      await client.endAsync()
    }
    await storage.registry.setDeviceInterval(deviceId, parsed.data.interval_s)
    await auditCli(storage, 'device.config', deviceId, { ...parsed.data })
    io.out(
      `sent ${JSON.stringify(parsed.data)} to ${deviceId} (retained; the device applies it when it next connects if offline)`,
    )
    return 0
  })
}
