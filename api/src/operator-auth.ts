import { sameSecret } from './auth/credentials.ts'

/**
 * A predicate that tells the static operator token (OPERATOR_TOKEN), compared in constant time like
 * every other secret (credentials.ts sameSecret); always false when none is configured.
 */
export function operatorTokenMatcher(token: string | undefined): (given: string) => boolean {
  if (token === undefined) return () => false
  return (given) => sameSecret(given, token)
}
