import { readFile } from 'node:fs/promises'
import { basename } from 'node:path'
import { audit } from '@skolluft/api'
import {
  DeviceId,
  estimateIntervalS,
  expectedSamplesPerHour,
  joinStationReadings,
  METRICS,
  type Metric,
  type MetricValues,
  parseSensorCommunityCsv,
  placementAt,
  SENSOR_COMMUNITY_TYPES,
  type SensorCommunityReading,
  type SensorCommunityRowError,
  STATION_JOIN_TOLERANCE_MS,
  type StationSample,
  sensorCommunityRole,
  stationModel,
  stationModelTypes,
} from '@skolluft/core'
import { generateSecret, hashSecret, loadConfig, silentLogger } from '@skolluft/runtime'
import type { DeviceRecord, Storage, StoredReading } from '@skolluft/storage'
import { CommonConfig } from '../config.ts'
import { type DataDirConfig, type OpenDataDirOptions, withDataDir } from '../data-dir.ts'
import type { CliIo } from '../main.ts'
import { CLI_ACTOR } from './people.ts'

/**
 * With STORE=influxdb an import writes readings through its own spool (DATA_DIR/influx-spool-import.db) and fails,
 * naming the spool, if InfluxDB has not taken them all when it ends (a later import delivers them).
 */
const IMPORT_WRITER: OpenDataDirOptions = { writer: 'import', oneShot: true }

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
 *
 * With --merge-station the sensors of one station (same archive `location`) become ONE device
 * `<prefix>-loc-<location>` (model e.g. `SDS011+BME280`): each PM reading is joined with the climate reading of its
 * measuring cycle (core sensor-community-merge.ts), so the PM readings carry the RH the quality flags and humidity
 * corrections need. Give all files of a station in one command: the join only sees the files of one import (an
 * earlier import's readings are only used to avoid storing a value twice or losing one, never joined anew).
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
  /** One device per station (location id), PM readings joined with the climate sensor's (see above). */
  readonly mergeStation?: boolean
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

/** The audit entry of an import: its devices and each file's counts. */
async function auditImport(
  storage: Storage,
  siteId: string,
  devices: readonly { readonly deviceId: string }[],
  files: readonly ImportedFile[],
  extra: Readonly<Record<string, unknown>>,
): Promise<void> {
  await auditCli(storage, 'readings.import', siteId, {
    format: 'sensor-community',
    ...extra,
    devices: devices.map((d) => d.deviceId),
    files: files.map((f) => ({
      file: basename(f.file),
      inserted: f.inserted,
      duplicates: f.duplicates,
      rejected: f.rejected,
    })),
  })
}

export async function importSensorCommunity(
  env: NodeJS.ProcessEnv,
  io: CliIo,
  options: SensorCommunityImportOptions,
): Promise<number> {
  const config = loadConfig(CommonConfig, env)
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
  if (options.mergeStation === true) return await importStations(config, io, options, parsed)
  for (const group of sensors.values()) {
    const deviceId = `${options.devicePrefix}-${group.sensorId}`
    if (!DeviceId.safeParse(deviceId).success) {
      io.err(`skolluft: "${deviceId}" is not a valid device id (check --device-prefix); nothing imported`)
      return 2
    }
  }

  const outcome = await withDataDir({ ...config, ...IMPORT_WRITER }, async (storage) => {
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
    await auditImport(storage, options.siteId, summary, files, {})
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
    printFiles(io, outcome.files)
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

/** A source row of a station: its file (index into the parsed files), line and values. */
interface RowRef {
  readonly file: number
  readonly line: number
  readonly values: MetricValues
}

interface StationSensor {
  readonly sensorId: string
  readonly sensorType: string
}

interface StationGroup {
  readonly location: string
  readonly deviceId: string
  /** By sensor id; at most one PM and one climate sensor (checked before anything is written). */
  readonly pm: Map<string, StationSensor>
  readonly climate: Map<string, StationSensor>
  readonly pmSamples: (StationSample<RowRef> & { readonly sensorType: string })[]
  readonly climateSamples: (StationSample<RowRef> & { readonly sensorType: string })[]
}

export interface ImportedStation {
  /** The Sensor.Community location id. */
  readonly location: string
  readonly deviceId: string
  readonly model: string
  readonly intervalS: number
  /** False = the device was registered by an earlier import (its registration is left as it is). */
  readonly created: boolean
  /** The station's sensors in this import, PM sensor first. */
  readonly sensors: readonly StationSensor[]
  /** Readings built: a PM reading joined with a climate reading, a PM reading alone, a climate reading alone. */
  readonly joined: number
  readonly pmOnly: number
  readonly climateOnly: number
  /** Of those readings (refused ones excluded): newly stored, already stored. */
  readonly inserted: number
  readonly duplicates: number
}

/** --merge-station: one device per station, PM readings joined with the climate sensor's (module comment). */
async function importStations(
  config: DataDirConfig,
  io: CliIo,
  options: SensorCommunityImportOptions,
  parsed: ParsedFile[],
): Promise<number> {
  const stations = new Map<string, StationGroup>()
  parsed.forEach((file, fileIndex) => {
    const kept: SensorCommunityReading[] = []
    for (const r of file.readings) {
      const role = sensorCommunityRole(r.sensorType)
      if (r.location === null || role === undefined) {
        file.errors.push({ line: r.line, reason: 'no location id in the row: --merge-station groups sensors by it' })
        continue
      }
      let station = stations.get(r.location)
      if (station === undefined) {
        station = {
          location: r.location,
          deviceId: `${options.devicePrefix}-loc-${r.location}`,
          pm: new Map(),
          climate: new Map(),
          pmSamples: [],
          climateSamples: [],
        }
        stations.set(r.location, station)
      }
      const sample = {
        ts: r.ts,
        values: r.values,
        source: { file: fileIndex, line: r.line, values: r.values },
        sensorType: r.sensorType,
      }
      if (role === 'pm') {
        station.pm.set(r.sensorId, { sensorId: r.sensorId, sensorType: r.sensorType })
        station.pmSamples.push(sample)
      } else {
        station.climate.set(r.sensorId, { sensorId: r.sensorId, sensorType: r.sensorType })
        station.climateSamples.push(sample)
      }
      kept.push(r)
    }
    file.readings.splice(0, file.readings.length, ...kept)
  })
  // In location order, so the report and the audit log do not depend on the order of the files.
  const groups = [...stations.values()].sort((a, b) => Number(a.location) - Number(b.location))
  for (const station of groups) {
    for (const [role, sensors] of [
      ['PM', station.pm],
      ['climate', station.climate],
    ] as const) {
      if (sensors.size > 1) {
        const list = [...sensors.values()].map((s) => `${s.sensorId} ${s.sensorType}`).join(', ')
        io.err(
          `skolluft: location ${station.location} has ${sensors.size} ${role} sensors (${list}); --merge-station joins ` +
            'one PM and one climate sensor per station (import these files without it); nothing imported',
        )
        return 2
      }
    }
    if (!DeviceId.safeParse(station.deviceId).success) {
      io.err(`skolluft: "${station.deviceId}" is not a valid device id (check --device-prefix); nothing imported`)
      return 2
    }
  }

  const outcome = await withDataDir({ ...config, ...IMPORT_WRITER }, async (storage) => {
    if ((await storage.registry.getSite(options.siteId)) === undefined) {
      io.err(`skolluft: no site "${options.siteId}" (import sites first: skolluft sites import <file>)`)
      return undefined
    }
    const receivedAt = Date.now()
    const counts = parsed.map(() => ({ inserted: 0, duplicates: 0 }))
    const summary: ImportedStation[] = []
    for (const station of groups) {
      const { device, created } = await registerStation(storage, station, options)
      // Rows of a sensor type the registered device does not have (e.g. it was registered from PM files alone).
      const types = new Set(stationModelTypes(device.model))
      const accepted = (samples: StationGroup['pmSamples']) =>
        samples.filter((s) => {
          if (types.has(s.sensorType)) return true
          parsed[s.source.file]?.errors.push({ line: s.source.line, reason: modelMismatch(device, s.sensorType) ?? '' })
          return false
        })
      const pm = accepted(station.pmSamples)
      const climate = accepted(station.climateSamples)
      const stored = await storedValues(storage, device.id, [...pm, ...climate])
      const readings = joinStationReadings(pm, climate, { stored })
      // What each (device, time) holds: storage keeps the first reading of a key and ignores later ones.
      const occupied = new Map(stored)
      const batch: StoredReading[] = []
      let skipped = 0
      for (const r of readings) {
        const placement = placementAt(device.placements, r.ts)
        if (placement?.siteId !== options.siteId) {
          const where = placement === undefined ? 'was placed nowhere' : `stood at site ${placement.siteId}`
          const reason = `device ${device.id} ${where} at ${new Date(r.ts).toISOString()}, not at ${options.siteId}`
          for (const ref of r.sources) parsed[ref.file]?.errors.push({ line: ref.line, reason })
          continue
        }
        // Known in advance (an imported device has no other writer), so each row can be told apart: inserted,
        // already stored (its values are there), or refused (the time holds a reading without its values, e.g. a
        // PM-only reading of an earlier import at the very second of this climate row: it cannot be added).
        const there = occupied.get(r.ts)
        if (there === undefined) occupied.set(r.ts, r.values)
        for (const ref of r.sources) {
          if (there !== undefined && !holdsValues(there, ref.values)) {
            parsed[ref.file]?.errors.push({
              line: ref.line,
              reason:
                `device ${device.id} already has a reading at ${new Date(r.ts).toISOString()} without this row's ` +
                "values (stored by an earlier import: give a station's files in one command)",
            })
            continue
          }
          const c = counts[ref.file]
          if (c !== undefined) c[there === undefined ? 'inserted' : 'duplicates'] += 1
        }
        if (there !== undefined) {
          skipped += 1
          continue
        }
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
      let inserted = 0
      let duplicates = skipped
      for (let i = 0; i < batch.length; i += IMPORT_BATCH_SIZE) {
        const result = await storage.readings.writeReadings(batch.slice(i, i + IMPORT_BATCH_SIZE))
        inserted += result.inserted
        duplicates += result.duplicates
      }
      const kinds = { joined: 0, pm: 0, climate: 0 }
      for (const r of readings) kinds[r.kind] += 1
      summary.push({
        location: station.location,
        deviceId: device.id,
        model: device.model,
        intervalS: device.intervalS,
        created,
        sensors: [...station.pm.values(), ...station.climate.values()],
        joined: kinds.joined,
        pmOnly: kinds.pm,
        climateOnly: kinds.climate,
        inserted,
        duplicates,
      })
    }
    const files: ImportedFile[] = parsed.map((file, i) => {
      file.errors.sort((a, b) => a.line - b.line)
      return {
        file: file.path,
        rows: file.rows,
        inserted: counts[i]?.inserted ?? 0,
        duplicates: counts[i]?.duplicates ?? 0,
        rejected: file.errors.length,
        errors: file.errors,
      }
    })
    await auditImport(storage, options.siteId, summary, files, { mergeStation: true })
    return { stations: summary, files }
  })
  if (outcome === undefined) return 1
  const rejected = outcome.files.reduce((sum, f) => sum + f.rejected, 0)
  if (options.json) {
    io.out(
      JSON.stringify({
        site: options.siteId,
        mergeStation: true,
        stations: outcome.stations,
        files: outcome.files.map((f) => ({ ...f, errors: f.errors.slice(0, MAX_JSON_ERRORS) })),
      }),
    )
  } else {
    for (const s of outcome.stations) {
      const sensors = s.sensors.map((x) => `${x.sensorId} ${x.sensorType}`).join(', ')
      io.out(
        `station ${s.location} → device ${s.deviceId}: ${s.model} (sensors ${sensors}), interval ${s.intervalS}s, ` +
          `${s.created ? 'registered' : 'already registered'}; ${s.joined} joined, ${s.pmOnly} PM-only, ` +
          `${s.climateOnly} climate-only reading(s); ${s.inserted} inserted, ${s.duplicates} duplicate(s)`,
      )
    }
    printFiles(io, outcome.files)
  }
  return rejected > 0 ? 1 : 0
}

/** True when `there` has every value of `values` (same metric, same number). */
function holdsValues(there: MetricValues, values: MetricValues): boolean {
  return METRICS.every((m) => values[m] === undefined || there[m] === values[m])
}

/** The per-file lines of the text report, and the first row errors of each file. */
function printFiles(io: CliIo, files: readonly ImportedFile[]): void {
  for (const f of files) {
    io.out(`${f.file}: ${f.rows} row(s), ${f.inserted} inserted, ${f.duplicates} duplicate(s), ${f.rejected} rejected`)
    for (const e of f.errors.slice(0, MAX_PRINTED_ERRORS)) io.err(`${f.file}:${e.line}: ${e.reason}`)
    if (f.errors.length > MAX_PRINTED_ERRORS) {
      io.err(`${f.file}: … and ${f.errors.length - MAX_PRINTED_ERRORS} more rejected row(s) (--json lists them)`)
    }
  }
}

/**
 * The station device's stored readings around the samples' times (what earlier imports wrote), by time: the join
 * needs them so that a value stored before is neither stored again nor lost (core joinStationReadings `stored`).
 */
async function storedValues(
  storage: Storage,
  deviceId: string,
  samples: readonly { readonly ts: number }[],
): Promise<Map<number, MetricValues>> {
  const stored = new Map<number, MetricValues>()
  if (samples.length === 0) return stored
  let from = Number.POSITIVE_INFINITY
  let to = Number.NEGATIVE_INFINITY
  for (const s of samples) {
    if (s.ts < from) from = s.ts
    if (s.ts > to) to = s.ts
  }
  const metrics: Metric[] = [...METRICS]
  const query = { deviceIds: [deviceId], metrics, from: from - STATION_JOIN_TOLERANCE_MS, to: to + 1 }
  for await (const batch of storage.readings.streamReadings(query)) {
    for (const r of batch) if (!stored.has(r.ts)) stored.set(r.ts, r.values)
  }
  return stored
}

/** The station's device: the registered one, or a new one placed at the site from the station's earliest reading. */
async function registerStation(
  storage: Storage,
  station: StationGroup,
  options: SensorCommunityImportOptions,
): Promise<{ device: DeviceRecord; created: boolean }> {
  const existing = await storage.registry.getDevice(station.deviceId)
  if (existing !== undefined) return { device: existing, created: false }
  const pm = [...station.pm.values()][0]
  const climate = [...station.climate.values()][0]
  // The PM sensor sets the measuring cycle; a station without one has only its climate sensor's.
  const intervalS =
    estimateIntervalS(station.pmSamples.map((s) => s.ts)) ??
    estimateIntervalS(station.climateSamples.map((s) => s.ts)) ??
    FIRMWARE_INTERVAL_S
  const sensors: Metric[] = [
    ...(SENSOR_COMMUNITY_TYPES[pm?.sensorType ?? ''] ?? []),
    ...(SENSOR_COMMUNITY_TYPES[climate?.sensorType ?? ''] ?? []),
  ]
  const device = await storage.registry.addDevice(
    {
      id: station.deviceId,
      model: stationModel(pm?.sensorType, climate?.sensorType),
      sensors: [...new Set(sensors)],
      intervalS,
      // Nobody is given this secret: an imported station never connects to the broker.
      secretHash: await hashSecret(generateSecret()),
      // The archive has no indoor flag; Sensor.Community stations are outdoor stations.
      placement: {
        siteId: options.siteId,
        from: earliest([...station.pmSamples, ...station.climateSamples].map((s) => s.ts)),
        indoor: false,
        heightM: null,
      },
    },
    Date.now(),
  )
  await auditCli(storage, 'device.add', station.deviceId, {
    site: options.siteId,
    intervalS,
    source: 'sensor-community',
    location: station.location,
    sensorIds: [pm?.sensorId, climate?.sensorId].filter((id) => id !== undefined),
  })
  return { device, created: true }
}
