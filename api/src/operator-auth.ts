import { createHash, timingSafeEqual } from 'node:crypto'
import type { Logger } from '@skolluft/runtime'
import type { RequestHandler } from 'express'
import { HttpProblem } from './problem.ts'

/**
 * Operator endpoints are guarded by one static bearer token (OPERATOR_TOKEN) until user log-in exists.
 * Both sides are hashed with SHA-256 first so that `timingSafeEqual` compares equal-length buffers and
 * the time taken says nothing about the token's length or content.
 */
const BEARER = /^Bearer +([^\s]+) *$/i

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest()
}

export function tokenMatches(given: string, expectedDigest: Buffer): boolean {
  return timingSafeEqual(digest(given), expectedDigest)
}

export function requireOperatorToken(token: string, log: Logger): RequestHandler {
  const expected = digest(token)
  return (req, _res, next) => {
    const header = req.get('authorization')
    const given = header === undefined ? undefined : BEARER.exec(header)?.[1]
    if (given !== undefined && tokenMatches(given, expected)) {
      next()
      return
    }
    // RFC 6750 §3: a request without credentials gets the challenge only; a wrong token adds invalid_token.
    const challenge =
      given === undefined
        ? 'Bearer realm="skolluft-operator"'
        : 'Bearer realm="skolluft-operator", error="invalid_token"'
    log.warn({ path: req.path, ip: req.ip, hadCredentials: given !== undefined }, 'operator authentication failed')
    throw new HttpProblem({
      status: 401,
      code: 'unauthorized',
      title: 'Unauthorized',
      detail:
        given === undefined
          ? 'this endpoint needs an operator token: Authorization: Bearer <token>'
          : 'the operator token is not valid',
      headers: { 'WWW-Authenticate': challenge },
    })
  }
}
