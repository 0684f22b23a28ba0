import { join } from 'node:path'
import { METRICS, type Site, SiteKind } from '@skolluft/core'
import { generateSecret, hashSecret, parseSecretJson, readSecretFile, writeSecretFile } from '@skolluft/runtime'
import type { RegistryStore } from '@skolluft/storage'
import { z } from 'zod'

/**
 * Credentials of the simulated fleet: one device per site, registered like a real device
 * (hashed secret in the registry), with the plain secrets kept in `DATA_DIR/sim-devices.json`
 * (mode 0600) so a separate `skolluft sim` process can log in as them. Demo use only.
 */
export const SIM_DEVICES_FILE = 'sim-devices.json'
export const SIM_MODEL = 'skolluft-sim'

const SimDeviceEntry = z.object({
  deviceId: z.string(),
  password: z.string(),
  siteId: z.string(),
  lat: z.number(),
  lon: z.number(),
  kind: SiteKind,
})
export type SimDeviceEntry = z.infer<typeof SimDeviceEntry>
const SimDevicesFile = z.array(SimDeviceEntry)

/**
 * Inlet height of a simulated device, metres: breathing height at a school or preschool; roof level at an
 * urban background station (Lund's municipal roof station is at ~20 m, air-quality reference §6.1).
 */
const SCHOOL_INLET_HEIGHT_M = 2
const BACKGROUND_INLET_HEIGHT_M = 20

export function simDeviceId(siteId: string): string {
  // Site ids are at most 64 characters; keep the device id within the same limit.
  return `sim-${siteId}`.slice(0, 64).replace(/-+$/, '')
}

export async function readSimDevices(path: string): Promise<SimDeviceEntry[]> {
  const text = await readSecretFile(path)
  if (text === undefined) return []
  const parsed = SimDevicesFile.safeParse(parseSecretJson(path, text))
  if (!parsed.success) throw new Error(`${path} is not a valid simulator device file; delete it to regenerate`)
  return parsed.data
}

/** Registers a simulated device for every site that lacks a working one, and returns the fleet. */
export async function ensureSimDevices(
  dataDir: string,
  registry: RegistryStore,
  sites: readonly Site[],
  intervalS: number,
): Promise<SimDeviceEntry[]> {
  const path = join(dataDir, SIM_DEVICES_FILE)
  const known = new Map((await readSimDevices(path)).map((d) => [d.deviceId, d]))
  const fleet: SimDeviceEntry[] = []
  let changed = false
  for (const site of sites) {
    const deviceId = simDeviceId(site.id)
    const existing = known.get(deviceId)
    const registered = await registry.getDevice(deviceId)
    if (existing && registered && registered.revokedAt === null) {
      fleet.push(existing)
      continue
    }
    if (registered && registered.revokedAt !== null) continue // an operator revoked it; respect that
    const password = generateSecret()
    const secretHash = await hashSecret(password)
    if (registered) {
      await registry.setDeviceSecret(deviceId, secretHash)
    } else {
      await registry.addDevice(
        {
          id: deviceId,
          model: SIM_MODEL,
          sensors: [...METRICS],
          intervalS,
          secretHash,
          placement: {
            siteId: site.id,
            from: 0,
            indoor: false,
            heightM: site.kind === 'background' ? BACKGROUND_INLET_HEIGHT_M : SCHOOL_INLET_HEIGHT_M,
          },
        },
        Date.now(),
      )
    }
    fleet.push({ deviceId, password, siteId: site.id, lat: site.lat, lon: site.lon, kind: site.kind })
    changed = true
  }
  if (changed) await writeSecretFile(path, `${JSON.stringify(fleet, null, 1)}\n`)
  return fleet
}
