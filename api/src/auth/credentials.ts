import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { hashSecret, verifySecret } from '@skolluft/runtime'

/**
 * Bearer credentials the API hands out: API tokens (`skl_<id>_<secret>`) and session cookies
 * (`<id>.<secret>`). The id finds the stored record; only the scrypt hash of the secret is stored
 * (same hashing as device and user passwords, @skolluft/runtime). Secrets are 256 random bits.
 *
 * scrypt costs ~40 ms on purpose, too much for every map request, so a verifier remembers which
 * (id, secret, stored hash) it has already checked, for a few minutes, as a SHA-256 digest; a changed
 * stored hash (rotation) or an expired entry means scrypt again. The record itself (revoked? expired?
 * user disabled?) is read from storage on every request, so the cache never keeps a revoked token alive.
 */
const ID_BYTES = 12
const SECRET_BYTES = 32
export const API_TOKEN_PREFIX = 'skl_'
const API_TOKEN = /^skl_([0-9a-f]{24})_([A-Za-z0-9_-]{43})$/
const SESSION_VALUE = /^([0-9a-f]{24})\.([A-Za-z0-9_-]{43})$/

export interface CredentialParts {
  readonly id: string
  readonly secret: string
}

export interface IssuedCredential extends CredentialParts {
  /** What the holder presents: the token or the cookie value. Shown once, never stored or logged. */
  readonly value: string
  readonly secretHash: string
}

async function issue(format: (id: string, secret: string) => string): Promise<IssuedCredential> {
  const id = randomBytes(ID_BYTES).toString('hex')
  const secret = randomBytes(SECRET_BYTES).toString('base64url')
  return { id, secret, value: format(id, secret), secretHash: await hashSecret(secret) }
}

export function issueApiToken(): Promise<IssuedCredential> {
  return issue((id, secret) => `${API_TOKEN_PREFIX}${id}_${secret}`)
}

export function issueSessionCredential(): Promise<IssuedCredential> {
  return issue((id, secret) => `${id}.${secret}`)
}

function parse(pattern: RegExp, value: string): CredentialParts | null {
  const match = pattern.exec(value)
  if (match === null) return null
  const [, id, secret] = match
  return id === undefined || secret === undefined ? null : { id, secret }
}

export const parseApiToken = (value: string): CredentialParts | null => parse(API_TOKEN, value)
export const parseSessionValue = (value: string): CredentialParts | null => parse(SESSION_VALUE, value)

/** A CSRF token: random, compared in constant time (see csrf in authenticate.ts). */
export function generateCsrfToken(): string {
  return randomBytes(SECRET_BYTES).toString('base64url')
}

export function sameSecret(a: string, b: string): boolean {
  const da = createHash('sha256').update(a).digest()
  const db = createHash('sha256').update(b).digest()
  return timingSafeEqual(da, db)
}

/** How long a verified credential skips scrypt. Short, so memory holds no long-lived secret digests. */
export const VERIFIED_TTL_MS = 5 * 60_000
/** Bound on remembered credentials (sessions + tokens in use within VERIFIED_TTL_MS). */
export const VERIFIED_MAX_ENTRIES = 10_000

export interface CredentialVerifier {
  verify(parts: CredentialParts, secretHash: string): Promise<boolean>
}

export function createCredentialVerifier(clock: () => number): CredentialVerifier {
  const verified = new Map<string, { digest: Buffer; at: number }>()
  const digestOf = (secret: string, secretHash: string) =>
    createHash('sha256').update(secretHash).update('\0').update(secret).digest()

  return {
    async verify({ id, secret }, secretHash) {
      const now = clock()
      const digest = digestOf(secret, secretHash)
      const known = verified.get(id)
      if (known !== undefined && now - known.at < VERIFIED_TTL_MS && timingSafeEqual(known.digest, digest)) return true
      if (!(await verifySecret(secret, secretHash))) return false
      if (verified.size >= VERIFIED_MAX_ENTRIES) {
        // Oldest first (Map keeps insertion order); re-verifying costs one scrypt.
        const oldest = verified.keys().next()
        if (!oldest.done) verified.delete(oldest.value)
      }
      verified.delete(id)
      verified.set(id, { digest, at: now })
      return true
    },
  }
}
