import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { link, open, rm } from 'node:fs/promises'
import { readSecretFile } from './secret-file.ts'

/**
 * Per-subscription secrets derived from one deployment key (HMAC-SHA256), so the database holds nothing that
 * signs a webhook or unsubscribes someone: a leaked database copy cannot forge either. The key is
 * `ALERTS_KEY` (base64url, ≥ 32 bytes) or a file in the data directory created on first start (mode 0600).
 * Rotating the key invalidates every unsubscribe link and webhook secret at once, which is the point.
 */
export const DERIVED_KEY_PURPOSES = ['webhook', 'unsubscribe'] as const
export type DerivedKeyPurpose = (typeof DERIVED_KEY_PURPOSES)[number]

/** 256-bit key (RFC 2104 §3: a key as long as the hash output). */
export const ALERTS_KEY_BYTES = 32

export function deriveSecret(masterKey: Buffer, purpose: DerivedKeyPurpose, id: string): string {
  return createHmac('sha256', masterKey).update(`${purpose}\0${id}`).digest('base64url')
}

/** Constant-time comparison of a presented value with the derived one. */
export function verifyDerivedSecret(
  masterKey: Buffer,
  purpose: DerivedKeyPurpose,
  id: string,
  presented: string,
): boolean {
  const expected = Buffer.from(deriveSecret(masterKey, purpose, id))
  const given = Buffer.from(presented)
  return given.length === expected.length && timingSafeEqual(given, expected)
}

/** Domain separation for webhook signing secrets (a purpose of its own, hex for receivers' convenience). */
const WEBHOOK_SECRET_CONTEXT = 'skolluft/webhook-secret/v1'

/**
 * The signing secret of one webhook subscription: `whsec_` + hex HMAC-SHA256(masterKey, context ‖ id). Shown to
 * the subscriber once when the subscription is created (API) and re-derived for every delivery (alerts), so the
 * database holds nothing that can forge a signature. Rotating the master key rotates every secret.
 */
export function webhookSecret(masterKey: Buffer, subscriptionId: string): string {
  if (masterKey.length < ALERTS_KEY_BYTES) {
    throw new RangeError(`webhook master key must be at least ${ALERTS_KEY_BYTES} bytes`)
  }
  const mac = createHmac('sha256', masterKey).update(`${WEBHOOK_SECRET_CONTEXT}\0${subscriptionId}`).digest('hex')
  return `whsec_${mac}`
}

/** Parses a configured key (base64url or base64); refuses short ones. */
export function parseAlertsKey(text: string): Buffer {
  const key = Buffer.from(text.trim(), 'base64url')
  if (key.length < ALERTS_KEY_BYTES) {
    throw new Error(`ALERTS_KEY must be at least ${ALERTS_KEY_BYTES} bytes, base64url-encoded (got ${key.length})`)
  }
  return key
}

/**
 * Reads the key file, creating it with a fresh random key when missing. Processes sharing a data directory may
 * start at once: the file is written whole under a temporary name and then hard-linked into place, which fails
 * if another process got there first, and then that process's key is read. Every process ends with the same key.
 */
export async function loadOrCreateAlertsKey(path: string): Promise<Buffer> {
  const existing = await readSecretFile(path)
  if (existing !== undefined) return parseAlertsKey(existing)
  const key = randomBytes(ALERTS_KEY_BYTES)
  const temporary = `${path}.${randomBytes(6).toString('hex')}.tmp`
  const handle = await open(temporary, 'wx', 0o600)
  try {
    await handle.writeFile(`${key.toString('base64url')}\n`)
    await handle.sync()
  } finally {
    await handle.close()
  }
  try {
    await link(temporary, path)
    return key
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    const winner = await readSecretFile(path)
    if (winner === undefined) throw error
    return parseAlertsKey(winner)
  } finally {
    await rm(temporary, { force: true })
  }
}
