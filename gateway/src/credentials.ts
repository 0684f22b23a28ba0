import { createHash, timingSafeEqual } from 'node:crypto'
import { isValidId } from '@skolluft/core'
import { verifySecret } from '@skolluft/runtime'
import type { DeviceRecord, RegistryStore, ServiceAccount } from '@skolluft/storage'

/**
 * Who a username is, and whether a password is right for it.
 *
 * Username rule: a username that is a valid device id (core ID_PATTERN) and names a registered device is
 * that device. Any other username is looked up among the service accounts. The platform's service
 * usernames contain a dot (`svc.ingest`, cli service-credentials.ts), which ID_PATTERN never allows, so the
 * two namespaces cannot collide. Should an operator still create a service account named like a
 * registered device, the device wins and the account cannot log in: a device's credentials are only
 * ever checked against the device's own hash, so they can never carry a service role.
 */
export type Identity =
  | { readonly kind: 'device'; readonly device: DeviceRecord }
  | { readonly kind: 'service'; readonly account: ServiceAccount }

export async function resolveIdentity(registry: RegistryStore, username: string): Promise<Identity | null> {
  if (isValidId(username)) {
    const device = await registry.getDevice(username)
    if (device !== undefined) return { kind: 'device', device }
  }
  const account = await registry.getServiceAccount(username)
  return account === undefined ? null : { kind: 'service', account }
}

export function secretHashOf(identity: Identity): string {
  return identity.kind === 'device' ? identity.device.secretHash : identity.account.secretHash
}

export type VerifyResult = 'cached' | 'verified' | 'wrong' | 'backoff' | 'busy'

export interface CredentialChecker {
  /**
   * Checks `password` against `secretHash` (the registry's current hash for `username`). A password that
   * was verified against this same hash before is accepted from memory; otherwise scrypt runs, unless the
   * username is backing off after failures or too many verifications are already running.
   */
  verify(username: string, password: Buffer, secretHash: string, remoteAddress?: string): Promise<VerifyResult>
  /** Drops what is remembered about `username` (revoked, rotated, removed). */
  forget(username: string): void
  readonly pending: number
}

interface CachedCredential {
  /** The registry hash the password was verified against; a new hash invalidates the entry. */
  readonly secretHash: string
  /** SHA-256 of the password: enough to recognise it again, useless for logging in elsewhere. */
  readonly digest: Buffer
}

interface Backoff {
  failures: number
  until: number
}

/**
 * Entries are created only for registered usernames (after a registry lookup), so both maps are bounded
 * by the registry; this cap is a second bound in case the registry itself is huge.
 */
const MAX_TRACKED_USERNAMES = 100_000

function sha256(data: Buffer): Buffer {
  return createHash('sha256').update(data).digest()
}

export function createCredentialChecker(options: {
  readonly clock: () => number
  readonly backoffBaseMs: number
  readonly backoffMaxMs: number
  readonly maxPendingVerifications: number
  /** For tests: the scrypt check; defaults to runtime verifySecret. */
  readonly verifySecret?: (secret: string, stored: string) => Promise<boolean>
}): CredentialChecker {
  const { clock, backoffBaseMs, backoffMaxMs, maxPendingVerifications } = options
  const verifySlow = options.verifySecret ?? verifySecret
  const cache = new Map<string, CachedCredential>()
  const backoffs = new Map<string, Backoff>()
  let pending = 0

  function bounded<V>(map: Map<string, V>, key: string, value: V): void {
    map.delete(key)
    if (map.size >= MAX_TRACKED_USERNAMES) {
      const oldest = map.keys().next()
      if (!oldest.done) map.delete(oldest.value)
    }
    map.set(key, value)
  }

  /**
   * Back-off is kept per (username, remote address): failures from one address slow down guessing
   * from that address without locking the real device, connecting from elsewhere, out of its account.
   */
  function backoffKey(username: string, remoteAddress: string): string {
    return `${username}\n${remoteAddress}`
  }

  function noteFailure(key: string): void {
    const previous = backoffs.get(key)
    const failures = (previous?.failures ?? 0) + 1
    const delay = Math.min(backoffMaxMs, backoffBaseMs * 2 ** Math.min(failures - 1, 30))
    bounded(backoffs, key, { failures, until: clock() + delay })
  }

  return {
    async verify(username, password, secretHash, remoteAddress = 'unknown') {
      const key = backoffKey(username, remoteAddress)
      const digest = sha256(password)
      const cached = cache.get(username)
      if (cached !== undefined) {
        if (cached.secretHash === secretHash && timingSafeEqual(cached.digest, digest)) {
          backoffs.delete(key)
          return 'cached'
        }
        if (cached.secretHash !== secretHash) cache.delete(username)
      }
      const backoff = backoffs.get(key)
      if (backoff !== undefined && clock() < backoff.until) return 'backoff'
      if (pending >= maxPendingVerifications) return 'busy'
      pending += 1
      let ok: boolean
      try {
        ok = await verifySlow(password.toString('utf8'), secretHash)
      } finally {
        pending -= 1
      }
      if (!ok) {
        noteFailure(key)
        return 'wrong'
      }
      backoffs.delete(key)
      bounded(cache, username, { secretHash, digest })
      return 'verified'
    },
    forget(username) {
      cache.delete(username)
      const prefix = backoffKey(username, '')
      for (const key of backoffs.keys()) if (key.startsWith(prefix)) backoffs.delete(key)
    },
    get pending() {
      return pending
    },
  }
}
