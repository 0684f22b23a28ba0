import { Device, DeviceId, Placement, Site, type SiteInput } from '@skolluft/core'
import type Database from 'better-sqlite3'
import { StorageError } from '../errors.ts'
import type { DeviceRecord, NewDevice, RegistryStore, ServiceAccount } from '../types.ts'

interface SiteRow {
  id: string
  name: string
  kind: string
  stages: string
  address: string | null
  locality: string | null
  municipality: string
  lat: number
  lon: number
  demo: number
}

interface DeviceRow {
  id: string
  model: string
  sensors: string
  interval_s: number
  secret_hash: string
  created_at: number
  revoked_at: number | null
}

interface PlacementRow {
  device_id: string
  site_id: string
  from_ts: number
  to_ts: number | null
  indoor: number
  height_m: number | null
}

interface AccountRow {
  username: string
  secret_hash: string
  role: string
}

const ROLES: readonly ServiceAccount['role'][] = ['ingest', 'api', 'alerts', 'sim', 'admin']

type NewPlacement = Omit<Placement, 'deviceId' | 'to'>

export function createSqliteRegistryStore(db: Database.Database): RegistryStore {
  const siteParams = '@id, @name, @kind, @stages, @address, @locality, @municipality, @lat, @lon, @demo'
  const upsertSite = db.prepare<SiteRow, never>(
    `INSERT INTO sites (id, name, kind, stages, address, locality, municipality, lat, lon, demo)
     VALUES (${siteParams})
     ON CONFLICT (id) DO UPDATE SET
       name = excluded.name, kind = excluded.kind, stages = excluded.stages, address = excluded.address,
       locality = excluded.locality, municipality = excluded.municipality, lat = excluded.lat,
       lon = excluded.lon, demo = excluded.demo
     WHERE (name, kind, stages, address, locality, municipality, lat, lon, demo)
       IS NOT (excluded.name, excluded.kind, excluded.stages, excluded.address, excluded.locality,
               excluded.municipality, excluded.lat, excluded.lon, excluded.demo)`,
  )
  const siteExists = db.prepare<[string], { id: string }>('SELECT id FROM sites WHERE id = ?')
  const selectSites = db.prepare<[], SiteRow>('SELECT * FROM sites ORDER BY id')
  const selectSite = db.prepare<[string], SiteRow>('SELECT * FROM sites WHERE id = ?')

  const insertDevice = db.prepare<DeviceRow, never>(
    `INSERT INTO devices (id, model, sensors, interval_s, secret_hash, created_at, revoked_at)
     VALUES (@id, @model, @sensors, @interval_s, @secret_hash, @created_at, @revoked_at)`,
  )
  const selectDevice = db.prepare<[string], DeviceRow>('SELECT * FROM devices WHERE id = ?')
  const selectDevices = db.prepare<[], DeviceRow>('SELECT * FROM devices ORDER BY id')
  const revoke = db.prepare<[number, string], never>(
    'UPDATE devices SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL',
  )
  const deviceKnown = db.prepare<[string], { id: string }>('SELECT id FROM devices WHERE id = ?')
  const setSecret = db.prepare<[string, string], never>('UPDATE devices SET secret_hash = ? WHERE id = ?')
  const updateInterval = db.prepare<[number, string], never>('UPDATE devices SET interval_s = ? WHERE id = ?')

  const insertPlacement = db.prepare<PlacementRow, never>(
    `INSERT INTO placements (device_id, site_id, from_ts, to_ts, indoor, height_m)
     VALUES (@device_id, @site_id, @from_ts, @to_ts, @indoor, @height_m)`,
  )
  const openPlacement = db.prepare<[string], PlacementRow>(
    'SELECT * FROM placements WHERE device_id = ? AND to_ts IS NULL',
  )
  const lastPlacement = db.prepare<[string], PlacementRow>(
    'SELECT * FROM placements WHERE device_id = ? ORDER BY from_ts DESC LIMIT 1',
  )
  const closePlacement = db.prepare<[number, string, number], never>(
    'UPDATE placements SET to_ts = ? WHERE device_id = ? AND from_ts = ?',
  )
  const selectPlacements = db.prepare<[string], PlacementRow>(
    'SELECT * FROM placements WHERE device_id = ? ORDER BY from_ts',
  )
  const selectAllPlacements = db.prepare<[], PlacementRow>('SELECT * FROM placements ORDER BY device_id, from_ts')

  const upsertAccount = db.prepare<[string, string, string], never>(
    `INSERT INTO service_accounts (username, secret_hash, role) VALUES (?, ?, ?)
     ON CONFLICT (username) DO UPDATE SET secret_hash = excluded.secret_hash, role = excluded.role`,
  )
  const selectAccount = db.prepare<[string], AccountRow>('SELECT * FROM service_accounts WHERE username = ?')

  const bumpRevision = db.prepare<[], never>("UPDATE meta SET value = value + 1 WHERE key = 'revision'")
  const selectRevision = db.prepare<[], { value: number }>("SELECT value FROM meta WHERE key = 'revision'")

  function requireSite(siteId: string): void {
    if (siteExists.get(siteId) === undefined) {
      throw new StorageError('UNKNOWN_SITE', `site ${JSON.stringify(siteId)} does not exist`)
    }
  }

  function readDevice(id: string): DeviceRecord | undefined {
    const row = selectDevice.get(id)
    return row === undefined ? undefined : deviceFromRow(row, selectPlacements.all(id))
  }

  const writeSites = db.transaction((rows: readonly SiteRow[]) => {
    let inserted = 0
    let updated = 0
    for (const row of rows) {
      const existed = siteExists.get(row.id) !== undefined
      const changes = upsertSite.run(row).changes
      if (!existed) inserted += changes
      else updated += changes
    }
    if (inserted + updated > 0) bumpRevision.run()
    return { inserted, updated }
  })

  const writeDevice = db.transaction((device: NewDevice, now: number): DeviceRecord => {
    if (deviceKnown.get(device.id) !== undefined) {
      throw new StorageError('DEVICE_EXISTS', `device ${JSON.stringify(device.id)} already exists`)
    }
    requireSite(device.placement.siteId)
    insertDevice.run({
      id: device.id,
      model: device.model,
      sensors: JSON.stringify(device.sensors),
      interval_s: device.intervalS,
      secret_hash: device.secretHash,
      created_at: now,
      revoked_at: null,
    })
    insertPlacement.run(placementRow(device.id, device.placement, null))
    bumpRevision.run()
    const record = readDevice(device.id)
    if (record === undefined) throw new StorageError('UNKNOWN_DEVICE', `device ${device.id} vanished while adding`)
    return record
  })

  const writeMove = db.transaction((id: string, placement: NewPlacement): DeviceRecord => {
    if (deviceKnown.get(id) === undefined) {
      throw new StorageError('UNKNOWN_DEVICE', `device ${JSON.stringify(id)} does not exist`)
    }
    requireSite(placement.siteId)
    const last = lastPlacement.get(id)
    // Placements never overlap: the new one must start after the start of the latest one.
    if (last !== undefined && placement.from <= last.from_ts) {
      throw new StorageError(
        'INVALID_PLACEMENT',
        `device ${id}: a new placement must start after ${new Date(last.from_ts).toISOString()}`,
      )
    }
    if (last !== undefined && last.to_ts !== null && placement.from < last.to_ts) {
      throw new StorageError(
        'INVALID_PLACEMENT',
        `device ${id}: a new placement must start at or after ${new Date(last.to_ts).toISOString()}`,
      )
    }
    const open = openPlacement.get(id)
    if (open !== undefined) closePlacement.run(placement.from, id, open.from_ts)
    insertPlacement.run(placementRow(id, placement, null))
    bumpRevision.run()
    const record = readDevice(id)
    if (record === undefined) throw new StorageError('UNKNOWN_DEVICE', `device ${id} vanished while moving`)
    return record
  })

  const writeRevoke = db.transaction((id: string, now: number): boolean => {
    if (deviceKnown.get(id) === undefined) return false
    if (revoke.run(now, id).changes > 0) bumpRevision.run()
    return true
  })

  const writeSecret = db.transaction((id: string, secretHash: string): boolean => {
    if (setSecret.run(secretHash, id).changes === 0) return false
    bumpRevision.run()
    return true
  })

  const writeInterval = db.transaction((id: string, intervalS: number): boolean => {
    if (updateInterval.run(intervalS, id).changes === 0) return false
    bumpRevision.run()
    return true
  })

  const writeAccount = db.transaction((account: ServiceAccount): void => {
    upsertAccount.run(account.username, account.secretHash, account.role)
    bumpRevision.run()
  })

  return {
    async upsertSites(sites: readonly SiteInput[]) {
      // Validate everything first, so a bad entry leaves the registry untouched.
      const rows = sites.map((input, index) => {
        const parsed = Site.safeParse(input)
        if (!parsed.success) {
          const id = typeof input.id === 'string' ? JSON.stringify(input.id) : `at index ${index}`
          const issue = parsed.error.issues[0]
          const where = issue?.path.join('.') || 'site'
          throw new StorageError('INVALID_SITE', `site ${id} is invalid: ${where}: ${issue?.message ?? 'invalid'}`, {
            cause: parsed.error,
          })
        }
        return siteRow(parsed.data)
      })
      return writeSites.immediate(rows)
    },

    async listSites() {
      return selectSites.all().map(siteFromRow)
    },

    async getSite(id) {
      const row = selectSite.get(id)
      return row === undefined ? undefined : siteFromRow(row)
    },

    async addDevice(device, now) {
      const candidate = {
        id: device.id,
        model: device.model,
        sensors: device.sensors,
        intervalS: device.intervalS,
        createdAt: now,
        revokedAt: null,
      }
      const parsed = Device.safeParse(candidate)
      if (!parsed.success) {
        const issue = parsed.error.issues[0]
        throw new StorageError(
          'INVALID_DEVICE',
          `device ${JSON.stringify(device.id)} is invalid: ${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}`,
          { cause: parsed.error },
        )
      }
      checkPlacement(device.id, device.placement)
      return writeDevice.immediate(device, now)
    },

    async getDevice(id) {
      return readDevice(id)
    },

    async listDevices() {
      const byDevice = new Map<string, PlacementRow[]>()
      for (const row of selectAllPlacements.all()) {
        const list = byDevice.get(row.device_id)
        if (list) list.push(row)
        else byDevice.set(row.device_id, [row])
      }
      return selectDevices.all().map((row) => deviceFromRow(row, byDevice.get(row.id) ?? []))
    },

    async revokeDevice(id, now) {
      return writeRevoke.immediate(id, now)
    },

    async moveDevice(id, placement) {
      checkPlacement(id, placement)
      return writeMove.immediate(id, placement)
    },

    async setDeviceSecret(id, secretHash) {
      return writeSecret.immediate(id, secretHash)
    },

    async setDeviceInterval(id, intervalS) {
      if (!Number.isInteger(intervalS) || intervalS < 1 || intervalS > 3600) {
        throw new StorageError('INVALID_DEVICE', `device ${id}: interval ${intervalS} s is not a whole 1–3600`)
      }
      return writeInterval.immediate(id, intervalS)
    },

    async upsertServiceAccount(account) {
      if (!ROLES.includes(account.role)) {
        throw new StorageError('INVALID_ACCOUNT', `service account ${account.username}: unknown role ${account.role}`)
      }
      writeAccount.immediate(account)
    },

    async getServiceAccount(username) {
      const row = selectAccount.get(username)
      if (row === undefined) return undefined
      const role = ROLES.find((r) => r === row.role)
      if (role === undefined) {
        throw new StorageError('CORRUPT_ROW', `service account ${username} has an unknown role ${row.role}`)
      }
      return { username: row.username, secretHash: row.secret_hash, role }
    },

    async revision() {
      return selectRevision.get()?.value ?? 0
    },
  }
}

function checkPlacement(deviceId: string, placement: NewPlacement): void {
  const parsed = Placement.safeParse({ ...placement, deviceId, to: null })
  if (!parsed.success || !DeviceId.safeParse(deviceId).success) {
    const issue = parsed.error?.issues[0]
    throw new StorageError(
      'INVALID_PLACEMENT',
      `placement of device ${JSON.stringify(deviceId)} is invalid: ${issue?.path.join('.') ?? 'deviceId'}: ${issue?.message ?? 'invalid'}`,
      { cause: parsed.error },
    )
  }
}

function siteRow(site: Site): SiteRow {
  return {
    id: site.id,
    name: site.name,
    kind: site.kind,
    stages: JSON.stringify(site.stages),
    address: site.address,
    locality: site.locality,
    municipality: site.municipality,
    lat: site.lat,
    lon: site.lon,
    demo: site.demo ? 1 : 0,
  }
}

function siteFromRow(row: SiteRow): Site {
  const parsed = Site.safeParse({
    id: row.id,
    name: row.name,
    kind: row.kind,
    stages: parseJson(row.stages),
    address: row.address,
    locality: row.locality,
    municipality: row.municipality,
    lat: row.lat,
    lon: row.lon,
    demo: row.demo === 1,
  })
  if (!parsed.success) throw new StorageError('CORRUPT_ROW', `site ${row.id} in the database is invalid`)
  return parsed.data
}

function placementRow(deviceId: string, placement: NewPlacement, to: number | null): PlacementRow {
  return {
    device_id: deviceId,
    site_id: placement.siteId,
    from_ts: placement.from,
    to_ts: to,
    indoor: placement.indoor ? 1 : 0,
    height_m: placement.heightM,
  }
}

function deviceFromRow(row: DeviceRow, placements: readonly PlacementRow[]): DeviceRecord {
  const parsed = Device.safeParse({
    id: row.id,
    model: row.model,
    sensors: parseJson(row.sensors),
    intervalS: row.interval_s,
    createdAt: row.created_at,
    revokedAt: row.revoked_at,
  })
  if (!parsed.success) throw new StorageError('CORRUPT_ROW', `device ${row.id} in the database is invalid`)
  return {
    ...parsed.data,
    secretHash: row.secret_hash,
    placements: placements.map((p) => ({
      deviceId: p.device_id,
      siteId: p.site_id,
      from: p.from_ts,
      to: p.to_ts,
      indoor: p.indoor === 1,
      heightM: p.height_m,
    })),
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}
