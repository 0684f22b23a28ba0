import {
  type Calibration,
  calibrationRef,
  createCorrector,
  humidityCorrection,
  NO_CORRECTION,
  type ValueCorrector,
} from '@skolluft/core'
import type { Storage } from '@skolluft/storage'
import type { ManifestCorrection } from './manifest.ts'

/**
 * The corrections of one export (values=corrected): each device's corrector (core corrections.ts: humidity
 * correction by model, then its calibrations) and, for the manifest, what every chain element the rows named is.
 * Devices and calibrations are read once, when the export starts.
 */
export interface ExportCorrections {
  readonly correctorFor: (deviceId: string) => ValueCorrector
  /** The manifest entries for the chains an export produced (`ExportStats.corrections`). */
  describe(chains: Iterable<string>): ManifestCorrection[]
}

export async function loadExportCorrections(
  storage: Pick<Storage, 'registry' | 'calibrations'>,
): Promise<ExportCorrections> {
  const [devices, calibrations] = await Promise.all([storage.registry.listDevices(), storage.calibrations.list({})])
  const byDevice = new Map(devices.map((d) => [d.id, d]))
  const byRef = new Map<string, Calibration>(calibrations.map((c) => [calibrationRef(c), c]))
  return {
    correctorFor(deviceId) {
      const device = byDevice.get(deviceId)
      // A reading's device is always registered; a device deleted since has no correction to apply.
      return device === undefined ? () => null : createCorrector(device, calibrations)
    },
    describe(chains) {
      const ids = new Set<string>()
      for (const chain of chains) for (const step of chain.split('+')) if (step !== NO_CORRECTION) ids.add(step)
      return [...ids].sort().map((id): ManifestCorrection => {
        const humidity = humidityCorrection(id)
        if (humidity !== undefined) {
          return { id, description: `${humidity.formula}. Source: ${humidity.source}` }
        }
        const c = byRef.get(id)
        if (c === undefined) return { id, description: 'unknown correction' }
        return {
          id,
          description: `linear calibration of ${c.deviceId} ${c.metric}: corrected = slope · input + intercept, for readings in [validFrom, validTo)`,
          parameters: {
            deviceId: c.deviceId,
            metric: c.metric,
            slope: c.slope,
            intercept: c.intercept,
            validFrom: new Date(c.validFrom).toISOString(),
            validTo: c.validTo === null ? null : new Date(c.validTo).toISOString(),
            basis: c.basis,
          },
        }
      })
    },
  }
}
