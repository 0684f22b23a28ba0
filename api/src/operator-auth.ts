import { createHash, timingSafeEqual } from 'node:crypto'

/**
 * The static operator token (OPERATOR_TOKEN) is compared as SHA-256 digests, so that `timingSafeEqual`
 * compares equal-length buffers and the time taken says nothing about the token's length or content.
 */
function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest()
}

/** A predicate that tells the operator token; always false when none is configured. */
export function operatorTokenMatcher(token: string | undefined): (given: string) => boolean {
  if (token === undefined) return () => false
  const expected = digest(token)
  return (given) => timingSafeEqual(digest(given), expected)
}
