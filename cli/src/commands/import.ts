import { readFile } from 'node:fs/promises'
import { basename } from 'node:path'
import { audit } from '@skolluft/api'
import {
  DeviceId,
  estimateIntervalS,
  expectedSamplesPerHour,
  parseSensorCommunityCsv,
  placementAt,
  SENSOR_COMMUNITY_TYPES,
  type SensorCommunityReading,
  type SensorCommunityRowError,
} from '@skolluft/core'
import { generateSecret, hashSecret, loadConfig, silentLogger } from '@skolluft/runtime'
import type { DeviceRecord, Storage, StoredReading } from '@skolluft/storage'
import { CommonConfig } from '../config.ts'
import { withDataDir } from '../data-dir.ts'
import type { CliIo } from '../main.ts'
import { CLI_ACTOR } from './people.ts'

/**
 * `skolluft import sensor-community <file…> --site <siteId>`: historical data from Sensor.Community archive CSV
 * files (parsed by core sensor-community.ts) stored beside the platform's own readings.
 *
 * Each Sensor.Community sensor becomes one device, `<prefix>-<sensor id>` (an SDS011 and a BME280 of one station
 * are two devices at the same site, which is how the platform's site-level humidity already works). A device is
 * registered on first import only: model = sensor type, placed at --site from its earliest reading in that
 * import, interval = the median spacing of its readings (estimateIntervalS), and a random secret stored hashed
 * and shown to no one, so it can never publish over MQTT. Readings are written through the storage interface,
 * which is idempotent on (device, time): importing a file twice stores nothing twice.
 */

/** Readings per storage call: one SQLite transaction each (a day file of one sensor is ~580 rows). */
const IMPORT_BATCH_SIZE = 5000
/** Row errors printed per file in the text output; --json carries up to MAX_JSON_ERRORS of them. */
const MAX_PRINTED_ERRORS = 20
const MAX_JSON_ERRORS = 1000
/** airrohr firmware default `sending_intervall_ms = 145000` (device-formats §2.1), for a sensor with one reading. */
const FIRMWARE_INTERVAL_S = 145

export interface SensorCommunityImportOptions {
  readonly files: readonly string[]
  readonly siteId: string
  readonly devicePrefix: string
  readonly json: boolean
}

export interface ImportedDevice {
  readonly deviceId: string
  readonly sensorId: string
  readonly model: string
  readonly intervalS: number
  /** False = the device was registered by an earlier import (its registration is left as it is). */
  readonly created: boolean
}

export interface ImportedFile {
  readonly file: string
  /** Data rows in the file: inserted + duplicates + rejected, except that a refused header is one rejection of 0 rows. */
  readonly rows: number
  readonly inserted: number
  /** Rows already stored (same device and time), by an earlier import or earlier in this one. */
  readonly duplicates: number
  readonly rejected: number
  readonly errors: readonly SensorCommunityRowError[]
}

interface ParsedFile {
  readonly path: string
  readonly readings: SensorCommunityReading[]
  readonly errors: SensorCommunityRowError[]
  readonly rows: number
}

interface SensorGroup {
  readonly sensorId: string
  readonly sensorType: string
  readonly times: number[]
}

function auditCli(storage: Storage, action: string, target: string | null, detail: Record<string, unknown>) {
  return audit({ storage, clock: Date.now, log: silentLogger() }, CLI_ACTOR, action, target, detail)
}

export async function importSensorCommunity(
  env: NodeJS.ProcessEnv,
  io: CliIo,
  options: SensorCommunityImportOptions,
): Promise<number> {
  const { DATA_DIR } = loadConfig(CommonConfig, env)
  // Every file is read and parsed before anything is written: an unreadable file stops the import untouched.
  const parsed: ParsedFile[] = []
  for (const path of options.files) {
    let text: string
    try {
      text = await readFile(path, 'utf8')
    } catch (error) {
      io.err(`skolluft: cannot read ${path}: ${(error as Error).message}; nothing imported`)
      return 1
    }
    parsed.push({ path, ...parseSensorCommunityCsv(text) })
  }

  // One device per sensor id; a sensor id seen with two types keeps the first and its other rows are refused.
  const sensors = new Map<string, SensorGroup>()
  for (const file of parsed) {
    const kept: SensorCommunityReading[] = []
    for (const r of file.readings) {
      const group = sensors.get(r.sensorId)
      if (group === undefined) {
        sensors.set(r.sensorId, { sensorId: r.sensorId, sensorType: r.sensorType, times: [r.ts] })
      } else if (group.sensorType !== r.sensorType) {
        file.errors.push({
          line: r.line,
          reason: `sensor ${r.sensorId} is ${group.sensorType} elsewhere in this import, not ${r.sensorType}`,
        })
        continue
      } else {
        group.times.push(r.ts)
      }
      kept.push(r)
    }
    file.readings.splice(0, file.readings.length, ...kept)
  }
  for (const group of sensors.values()) {
    const deviceId = `${options.devicePrefix}-${group.sensorId}`
    if (!DeviceId.safeParse(deviceId).success) {
      io.err(`skolluft: "${deviceId}" is not a valid device id (check --device-prefix); nothing imported`)
      return 2
    }
  }

  const outcome = await withDataDir(DATA_DIR, async (storage) => {
    if ((await storage.registry.getSite(options.siteId)) === undefined) {
      io.err(`skolluft: no site "${options.siteId}" (import sites first: skolluft sites import <file>)`)
      return undefined
    }
    const devices = new Map<string, DeviceRecord>()
    const summary: ImportedDevice[] = []
    // In sensor id order, so the report and the audit log do not depend on the order of the files.
    const groups = [...sensors.values()].sort((a, b) => Number(a.sensorId) - Number(b.sensorId))
    for (const group of groups) {
      const registered = await registerDevice(storage, group, options)
      devices.set(group.sensorId, registered.device)
      summary.push({
        deviceId: registered.device.id,
        sensorId: group.sensorId,
        model: registered.device.model,
        intervalS: registered.device.intervalS,
        created: registered.created,
      })
    }
    const receivedAt = Date.now()
    const files: ImportedFile[] = []
    for (const file of parsed) {
      const batch: StoredReading[] = []
      for (const r of file.readings) {
        const device = devices.get(r.sensorId)
        if (device === undefined) continue
        const problem = modelMismatch(device, r.sensorType)
        const placement = placementAt(device.placements, r.ts)
        if (problem !== undefined) {
          file.errors.push({ line: r.line, reason: problem })
        } else if (placement?.siteId !== options.siteId) {
          // A device registered by an earlier import keeps its placement; readings outside it have no honest site.
          const where = placement === undefined ? 'was placed nowhere' : `stood at site ${placement.siteId}`
          file.errors.push({
            line: r.line,
            reason: `device ${device.id} ${where} at ${new Date(r.ts).toISOString()}, not at ${options.siteId}`,
          })
        } else {
          batch.push({
            deviceId: device.id,
            siteId: placement.siteId,
            ts: r.ts,
            seq: null,
            values: r.values,
            receivedAt,
            expectedPerHour: expectedSamplesPerHour(device.intervalS),
          })
        }
      }
      let inserted = 0
      let duplicates = 0
      for (let i = 0; i < batch.length; i += IMPORT_BATCH_SIZE) {
        const result = await storage.readings.writeReadings(batch.slice(i, i + IMPORT_BATCH_SIZE))
        inserted += result.inserted
        duplicates += result.duplicates
      }
      file.errors.sort((a, b) => a.line - b.line)
      files.push({
        file: file.path,
        rows: file.rows,
        inserted,
        duplicates,
        // A header error refuses the whole file; it is not a row, but it must not read as a clean import.
        rejected: file.errors.length,
        errors: file.errors,
      })
    }
    await auditCli(storage, 'readings.import', options.siteId, {
      format: 'sensor-community',
      devices: summary.map((d) => d.deviceId),
      files: files.map((f) => ({
        file: basename(f.file),
        inserted: f.inserted,
        duplicates: f.duplicates,
        rejected: f.rejected,
      })),
    })
    return { devices: summary, files }
  })
  if (outcome === undefined) return 1
  const rejected = outcome.files.reduce((sum, f) => sum + f.rejected, 0)
  if (options.json) {
    io.out(
      JSON.stringify({
        site: options.siteId,
        devices: outcome.devices,
        files: outcome.files.map((f) => ({ ...f, errors: f.errors.slice(0, MAX_JSON_ERRORS) })),
      }),
    )
  } else {
    for (const d of outcome.devices) {
      io.out(
        `device ${d.deviceId}: ${d.model}, interval ${d.intervalS}s, ${d.created ? 'registered' : 'already registered'}`,
      )
    }
    for (const f of outcome.files) {
      io.out(
        `${f.file}: ${f.rows} row(s), ${f.inserted} inserted, ${f.duplicates} duplicate(s), ${f.rejected} rejected`,
      )
      for (const e of f.errors.slice(0, MAX_PRINTED_ERRORS)) io.err(`${f.file}:${e.line}: ${e.reason}`)
      if (f.errors.length > MAX_PRINTED_ERRORS) {
        io.err(`${f.file}: … and ${f.errors.length - MAX_PRINTED_ERRORS} more rejected row(s) (--json lists them)`)
      }
    }
  }
  return rejected > 0 ? 1 : 0
}

function modelMismatch(device: DeviceRecord, sensorType: string): string | undefined {
  return device.model === sensorType
    ? undefined
    : `device ${device.id} is registered as ${device.model}, the file says ${sensorType}`
}

/** The sensor's device: the registered one, or a new one placed at the site from the sensor's earliest reading. */
async function registerDevice(
  storage: Storage,
  group: SensorGroup,
  options: SensorCommunityImportOptions,
): Promise<{ device: DeviceRecord; created: boolean }> {
  const deviceId = `${options.devicePrefix}-${group.sensorId}`
  const existing = await storage.registry.getDevice(deviceId)
  if (existing !== undefined) return { device: existing, created: false }
  const intervalS = estimateIntervalS(group.times) ?? FIRMWARE_INTERVAL_S
  const sensors = SENSOR_COMMUNITY_TYPES[group.sensorType] ?? []
  const device = await storage.registry.addDevice(
    {
      id: deviceId,
      model: group.sensorType,
      sensors: [...sensors],
      intervalS,
      // Nobody is given this secret: an imported sensor never connects to the broker.
      secretHash: await hashSecret(generateSecret()),
      // The archive has no indoor flag; Sensor.Community stations are outdoor stations.
      placement: { siteId: options.siteId, from: earliest(group.times), indoor: false, heightM: null },
    },
    Date.now(),
  )
  await auditCli(storage, 'device.add', deviceId, {
    site: options.siteId,
    intervalS,
    source: 'sensor-community',
    sensorId: group.sensorId,
  })
  return { device, created: true }
}

/** Smallest time (a loop: a year of readings is too many arguments for Math.min). */
function earliest(times: readonly number[]): number {
  let min = Number.POSITIVE_INFINITY
  for (const t of times) if (t < min) min = t
  return min
}
