import type { DeviceRecord, RegistryStore } from '@skolluft/storage'

/**
 * The ingest's view of the device registry. Looks devices up once and keeps them until the
 * registry's revision changes (another process added, moved or revoked a device), which the
 * ingest checks at most every `pollMs`. Unknown ids are cached as misses for the same period, so a
 * flood from an unknown id costs no storage reads.
 */
export interface DeviceCache {
  get(deviceId: string): Promise<DeviceRecord | undefined>
}

export function createDeviceCache(
  registry: Pick<RegistryStore, 'revision' | 'getDevice'>,
  clock: () => number,
  pollMs: number,
): DeviceCache {
  const entries = new Map<string, DeviceRecord | null>()
  let revision = -1
  let checkedAt = Number.NEGATIVE_INFINITY
  /** Bumped on every clear, so a lookup that started before a clear cannot re-insert a stale record. */
  let generation = 0

  async function refreshIfStale(): Promise<void> {
    const now = clock()
    if (now - checkedAt < pollMs) return
    checkedAt = now
    const current = await registry.revision()
    if (current !== revision) {
      revision = current
      generation += 1
      entries.clear()
    }
  }

  return {
    async get(deviceId) {
      await refreshIfStale()
      const cached = entries.get(deviceId)
      if (cached !== undefined) return cached ?? undefined
      const startedIn = generation
      const device = await registry.getDevice(deviceId)
      if (startedIn === generation) entries.set(deviceId, device ?? null)
      return device
    },
  }
}
