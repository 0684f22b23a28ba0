import { randomBytes, type ScryptOptions, scrypt, timingSafeEqual } from 'node:crypto'

/**
 * Secrets (device passwords, service credentials, later user passwords and API tokens) are stored
 * only as scrypt hashes: `scrypt$N$r$p$salt$hash`, salt and hash base64url.
 * N = 2^14, r = 8, p = 1 is the interactive-login parameter set from the scrypt paper (Percival 2009)
 * and the OWASP password storage cheat sheet minimum; ~40 ms on this class of machine.
 */
const SCRYPT_N = 16_384
const SCRYPT_R = 8
const SCRYPT_P = 1
const KEY_BYTES = 32
const SALT_BYTES = 16
/** Device and service secrets are random, 24 bytes → 32 characters base64url (192 bits). */
const GENERATED_SECRET_BYTES = 24

function scryptAsync(password: string, salt: Buffer, keylen: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password, salt, keylen, options, (error, key) => (error ? reject(error) : resolve(key)))
  })
}

export function generateSecret(): string {
  return randomBytes(GENERATED_SECRET_BYTES).toString('base64url')
}

export async function hashSecret(secret: string): Promise<string> {
  const salt = randomBytes(SALT_BYTES)
  const key = await scryptAsync(secret, salt, KEY_BYTES, { N: SCRYPT_N, r: SCRYPT_R, p: SCRYPT_P })
  return ['scrypt', SCRYPT_N, SCRYPT_R, SCRYPT_P, salt.toString('base64url'), key.toString('base64url')].join('$')
}

/** Constant-time check of a secret against a stored hash. A malformed hash never verifies. */
export async function verifySecret(secret: string, stored: string): Promise<boolean> {
  const parts = stored.split('$')
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false
  const [, n, r, p, saltText, keyText] = parts
  const N = Number(n)
  const R = Number(r)
  const P = Number(p)
  if (!Number.isInteger(N) || !Number.isInteger(R) || !Number.isInteger(P) || !saltText || !keyText) return false
  const expected = Buffer.from(keyText, 'base64url')
  if (expected.length === 0) return false
  const actual = await scryptAsync(secret, Buffer.from(saltText, 'base64url'), expected.length, {
    N,
    r: R,
    p: P,
    maxmem: 256 * N * R,
  })
  return timingSafeEqual(actual, expected)
}
