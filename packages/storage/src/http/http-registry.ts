import type { Logger } from '@skolluft/runtime'
import { StorageError } from '../errors.ts'
import type { DeviceRecord, RegistryStore } from '../types.ts'
import { createHttpCaller, type HttpStoreOptions } from './http-client.ts'
import { INTERNAL_REGISTRY_PATH, type RegistryDevice, RegistrySnapshot } from './wire.ts'

/**
 * The device registry of another machine, read through the API (GET /api/v1/internal/registry, permission
 * registry:read, a token of role service): what an ingest needs when the SQLite file is elsewhere (REGISTRY_URL).
 *
 * The whole registry is held in memory (a country's ~10 000 devices are a few MB) and asked for again when it is
 * older than `maxAgeMs`; the API answers "unchanged" in a few bytes while the revision stays the same. So a lookup
 * (`getDevice`, per telemetry message) never waits on the network except at most once per `maxAgeMs`, and
 * concurrent callers share one request. A device revoked or moved on the API's machine reaches the ingest within
 * `maxAgeMs` (plus the ingest's own cache, which asks `revision()` at the same pace).
 *
 * While the API cannot be reached the last registry keeps being used for `maxStaleMs`, so restarting the API does
 * not stop the readings; after that every call fails with StorageError STORAGE_UNAVAILABLE (the ingest holds the
 * acknowledgements and retries; the broker keeps the telemetry). So does every other failure of the read: a refused
 * request, an answer that is not JSON (a proxy's error page) or does not match the contract (an API of another
 * version): the ingest cannot fix any of them per message, and acknowledging would drop good telemetry.
 *
 * Only the reads an ingest makes are offered (`revision`, `getDevice`, `listDevices`; the type says so): the
 * registry is changed on the API's machine (CLI or API).
 */
export interface HttpRegistryOptions extends HttpStoreOptions {
  readonly log: Logger
  readonly clock?: () => number
  /** How old the registry may get before it is asked for again (default HTTP_REGISTRY_MAX_AGE_MS). */
  readonly maxAgeMs?: number
  /** How long the last registry is used while the API cannot be reached (default HTTP_REGISTRY_MAX_STALE_MS). */
  readonly maxStaleMs?: number
}

/** The ingest's own registry poll (ingest REGISTRY_POLL_MS): a revocation takes effect within about as long. */
export const HTTP_REGISTRY_MAX_AGE_MS = 2_000
/**
 * Ten minutes: longer than an API restart or a deploy takes, short enough that a device revoked during an outage is
 * not accepted for long (the gateway, on the registry's machine, refuses its connection meanwhile anyway).
 */
export const HTTP_REGISTRY_MAX_STALE_MS = 10 * 60_000

interface Snapshot {
  readonly revision: number
  readonly devices: ReadonlyMap<string, DeviceRecord>
  /** When the API last confirmed this revision. */
  readonly confirmedAt: number
}

/** The registry reads an ingest makes; the registry is changed on the API's machine (CLI or API). */
export type HttpRegistry = Pick<RegistryStore, 'revision' | 'getDevice' | 'listDevices'>

/**
 * A DeviceRecord as the interface has it. The API never sends secret hashes; an ingest never needs one (devices
 * authenticate at the gateway, on the registry's machine), so the field is empty and verifies nothing.
 */
function toRecord(device: RegistryDevice): DeviceRecord {
  return { ...device, secretHash: '' }
}

export function createHttpRegistry(options: HttpRegistryOptions): HttpRegistry {
  const http = createHttpCaller(options)
  const clock = options.clock ?? Date.now
  const log = options.log.child({ module: 'http-registry' })
  const maxAgeMs = options.maxAgeMs ?? HTTP_REGISTRY_MAX_AGE_MS
  const maxStaleMs = options.maxStaleMs ?? HTTP_REGISTRY_MAX_STALE_MS
  let snapshot: Snapshot | undefined
  let attemptedAt = Number.NEGATIVE_INFINITY
  let lastError: unknown
  let inFlight: Promise<void> | undefined

  async function refresh(): Promise<void> {
    attemptedAt = clock()
    const since = snapshot?.revision
    try {
      const answer = await http.call('GET', `${INTERNAL_REGISTRY_PATH}${since === undefined ? '' : `?since=${since}`}`)
      const parsed = RegistrySnapshot.safeParse(answer)
      if (!parsed.success) {
        throw new StorageError(
          'CORRUPT_ROW',
          `the API's registry answer does not match the contract: ${parsed.error.message}`,
        )
      }
      const at = clock()
      if (parsed.data.changed) {
        snapshot = {
          revision: parsed.data.revision,
          devices: new Map(parsed.data.devices.map((d) => [d.id, toRecord(d)])),
          confirmedAt: at,
        }
        log.debug({ revision: parsed.data.revision, devices: parsed.data.devices.length }, 'registry loaded')
      } else if (snapshot !== undefined && parsed.data.revision === snapshot.revision) {
        snapshot = { ...snapshot, confirmedAt: at }
      } else {
        throw new StorageError('CORRUPT_ROW', `the API answered "unchanged" with revision ${parsed.data.revision}`)
      }
      if (lastError !== undefined) log.info({ revision: snapshot.revision }, 'registry reachable again')
      lastError = undefined
    } catch (error) {
      if (lastError === undefined) {
        log.warn(
          { err: error, servingRevision: snapshot?.revision ?? null },
          'registry not readable over HTTP; using the last one read while it is recent enough',
        )
      }
      lastError = error
    }
  }

  async function current(): Promise<Snapshot> {
    if (inFlight === undefined && clock() - attemptedAt >= maxAgeMs) {
      inFlight = refresh().finally(() => {
        inFlight = undefined
      })
    }
    if (inFlight !== undefined) await inFlight
    if (snapshot !== undefined && clock() - snapshot.confirmedAt <= maxStaleMs) return snapshot
    if (lastError instanceof StorageError && lastError.code === 'STORAGE_UNAVAILABLE') throw lastError
    const reason = lastError instanceof Error ? `: ${lastError.message}` : ''
    throw new StorageError('STORAGE_UNAVAILABLE', `the registry could not be read from the API${reason}`, {
      cause: lastError,
    })
  }

  return {
    async revision() {
      return (await current()).revision
    },
    async getDevice(id) {
      return (await current()).devices.get(id)
    },
    async listDevices() {
      return [...(await current()).devices.values()]
    },
  }
}
