import { randomBytes } from 'node:crypto'
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http'
import { closedPort } from '@skolluft/testkit'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { DeliveryError, type OutboundMessage } from './types.ts'
import {
  createWebhookChannel,
  MAX_ERROR_BODY_BYTES,
  parseWebhookTarget,
  verifyWebhookSignature,
  webhookBody,
  webhookSecret,
  webhookSignature,
} from './webhook.ts'

/** For the test that expects a timeout: short, so it stays fast. */
const HANG_TIMEOUT_MS = 300
/** For everything else: generous, so a busy test machine does not turn a success into a timeout. */
const TEST_TIMEOUT_MS = 10_000
const NOW = Date.UTC(2025, 0, 15, 7, 30, 0)
const MASTER_KEY = randomBytes(32)

interface Received {
  readonly method: string
  readonly url: string
  readonly headers: IncomingHttpHeaders
  readonly body: string
}

function message(target: string, overrides: Partial<OutboundMessage> = {}): OutboundMessage {
  return {
    id: 7,
    messageId: '<o7.5b2e@skolluft>',
    channel: 'webhook',
    target,
    subscriptionId: 'sub_hook1',
    subject: 'PM2.5 över gränsen vid Östra Torns förskola',
    text: 'long text body',
    html: '<p>long html</p>',
    payload: { kind: 'opened', siteId: 'lund-ostra-torn', value: 38.2, pollutant: 'pm25' },
    language: 'sv',
    unsubscribeUrl: 'https://skolluft.test/unsubscribe/secret-token',
    ...overrides,
  }
}

async function failure(promise: Promise<unknown>): Promise<DeliveryError> {
  try {
    await promise
  } catch (error) {
    expect(error).toBeInstanceOf(DeliveryError)
    if (error instanceof DeliveryError) return error
  }
  throw new Error('expected the send to fail')
}

describe('webhook channel against a real HTTP server', () => {
  let server: Server
  let base: string
  let received: Received[]
  let respond: (req: Received, res: ServerResponse) => void

  beforeEach(async () => {
    received = []
    respond = (_req, res) => res.writeHead(204).end()
    server = createServer((req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (chunk: Buffer) => chunks.push(chunk))
      req.on('end', () => {
        const r = {
          method: req.method ?? '',
          url: req.url ?? '',
          headers: req.headers,
          body: Buffer.concat(chunks).toString('utf8'),
        }
        received.push(r)
        respond(r, res)
      })
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
    const address = server.address()
    if (address === null || typeof address === 'string') throw new Error('no address')
    base = `http://127.0.0.1:${address.port}`
  })

  afterEach(async () => {
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })

  const channel = () =>
    createWebhookChannel({ masterKey: MASTER_KEY, production: false, timeoutMs: TEST_TIMEOUT_MS, clock: () => NOW })

  it('POSTs a signed JSON body that the subscriber can verify with its derived secret', async () => {
    await channel().send(message(`${base}/hook?x=1`))
    expect(received).toHaveLength(1)
    const [req] = received
    if (req === undefined) throw new Error('no request')
    expect(req.method).toBe('POST')
    expect(req.url).toBe('/hook?x=1')
    expect(req.headers['content-type']).toBe('application/json; charset=utf-8')
    expect(req.headers['x-skolluft-delivery']).toBe('<o7.5b2e@skolluft>')
    expect(req.headers['x-skolluft-timestamp']).toBe(String(NOW / 1000))

    const body: unknown = JSON.parse(req.body)
    expect(body).toEqual({
      text: 'PM2.5 över gränsen vid Östra Torns förskola',
      id: '<o7.5b2e@skolluft>',
      subscriptionId: 'sub_hook1',
      language: 'sv',
      subject: 'PM2.5 över gränsen vid Östra Torns förskola',
      payload: { kind: 'opened', siteId: 'lund-ostra-torn', value: 38.2, pollutant: 'pm25' },
    })
    // The capability URL for unsubscribing must not reach a (possibly shared) chat channel.
    expect(req.body).not.toContain('secret-token')

    const secret = webhookSecret(MASTER_KEY, 'sub_hook1')
    const timestamp = String(req.headers['x-skolluft-timestamp'])
    const signature = String(req.headers['x-skolluft-signature'])
    expect(signature).toMatch(/^v1=[0-9a-f]{64}$/)
    expect(verifyWebhookSignature(secret, timestamp, req.body, signature, NOW + 1_000)).toBe(true)

    // Tampering with the body, using another subscription's secret or replaying late all fail.
    const tampered = req.body.replace('38.2', '3.2')
    expect(tampered).not.toBe(req.body)
    expect(verifyWebhookSignature(secret, timestamp, tampered, signature, NOW)).toBe(false)
    expect(verifyWebhookSignature(webhookSecret(MASTER_KEY, 'sub_other'), timestamp, req.body, signature, NOW)).toBe(
      false,
    )
    expect(verifyWebhookSignature(secret, timestamp, req.body, signature, NOW + 301_000)).toBe(false)
    expect(verifyWebhookSignature(secret, String(NOW / 1000 + 1), req.body, signature, NOW)).toBe(false)
  })

  it('sends the same body bytes on every attempt', async () => {
    await channel().send(message(`${base}/a`))
    await channel().send(message(`${base}/a`))
    expect(received[0]?.body).toBe(received[1]?.body)
    expect(received[0]?.body).toBe(webhookBody(message(`${base}/a`)))
  })

  it('treats 500 as transient and keeps only a bounded part of the response body', async () => {
    respond = (_req, res) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`oops ${'x'.repeat(100_000)}`)
    const error = await failure(channel().send(message(`${base}/h`)))
    expect(error).toMatchObject({ code: 'TEMPORARY_FAILURE', permanent: false, status: 500, retryAfterMs: null })
    expect(error.message).toMatch(/^webhook answered HTTP 500: oops x+$/)
    expect(error.message.length).toBeLessThanOrEqual(MAX_ERROR_BODY_BYTES + 40)
  })

  it('treats 429, 408 and 503 as transient and passes Retry-After on', async () => {
    respond = (_req, res) => res.writeHead(429, { 'retry-after': '120' }).end()
    expect(await failure(channel().send(message(`${base}/h`)))).toMatchObject({
      code: 'TEMPORARY_FAILURE',
      permanent: false,
      status: 429,
      retryAfterMs: 120_000,
    })
    respond = (_req, res) => res.writeHead(503, { 'retry-after': new Date(NOW + 90_000).toUTCString() }).end()
    expect(await failure(channel().send(message(`${base}/h`)))).toMatchObject({ status: 503, retryAfterMs: 90_000 })
    respond = (_req, res) => res.writeHead(408).end()
    expect(await failure(channel().send(message(`${base}/h`)))).toMatchObject({ status: 408, permanent: false })
  })

  it('treats 404 and 410 as permanent', async () => {
    respond = (_req, res) => res.writeHead(404).end('no_service')
    expect(await failure(channel().send(message(`${base}/gone`)))).toMatchObject({
      code: 'REJECTED',
      permanent: true,
      status: 404,
      message: 'webhook answered HTTP 404: no_service',
    })
    respond = (_req, res) => res.writeHead(410).end()
    expect(await failure(channel().send(message(`${base}/gone`)))).toMatchObject({ permanent: true, status: 410 })
  })

  it('does not follow a redirect and fails permanently', async () => {
    respond = (req, res) => {
      if (req.url === '/moved') res.writeHead(302, { location: `${base}/elsewhere?token=abc` }).end()
      else res.writeHead(204).end()
    }
    const error = await failure(channel().send(message(`${base}/moved`)))
    expect(error).toMatchObject({ code: 'REDIRECTED', permanent: true, status: 302 })
    expect(error.message).toContain(`redirect to ${base}`)
    expect(error.message).not.toContain('token=abc')
    expect(received.map((r) => r.url)).toEqual(['/moved'])
  })

  it('times out transiently when the receiver never answers', async () => {
    respond = () => undefined
    const impatient = createWebhookChannel({ masterKey: MASTER_KEY, production: false, timeoutMs: HANG_TIMEOUT_MS })
    const started = Date.now()
    const error = await failure(impatient.send(message(`${base}/slow`)))
    expect(error).toMatchObject({ code: 'TIMEOUT', permanent: false })
    expect(error.message).toBe(`webhook did not answer within ${HANG_TIMEOUT_MS} ms`)
    expect(Date.now() - started).toBeLessThan(HANG_TIMEOUT_MS * 5)
  })

  it('refuses plain http in production before making a request', async () => {
    const production = createWebhookChannel({ masterKey: MASTER_KEY, production: true, timeoutMs: TEST_TIMEOUT_MS })
    const error = await failure(production.send(message(`${base}/hook`)))
    expect(error).toMatchObject({ code: 'INVALID_TARGET', permanent: true })
    expect(error.message).toContain('https is required in production')
    expect(received).toHaveLength(0)
  })
})

describe('webhook channel without a server', () => {
  it('fails transiently when the connection is refused', async () => {
    const port = await closedPort()
    const channel = createWebhookChannel({ masterKey: MASTER_KEY, production: false, timeoutMs: TEST_TIMEOUT_MS })
    const error = await failure(channel.send(message(`http://127.0.0.1:${port}/hook`)))
    expect(error).toMatchObject({ code: 'CONNECTION_FAILED', permanent: false })
    expect(error.message).toContain('ECONNREFUSED')
  })

  it('refuses http to non-loopback hosts, credentials in the URL and other schemes, without a request', async () => {
    const channel = createWebhookChannel({ masterKey: MASTER_KEY, production: false, timeoutMs: TEST_TIMEOUT_MS })
    for (const target of [
      'http://example.com/hook',
      'http://10.0.0.5/hook',
      'https://user:pass@example.com/hook',
      'ftp://example.com/hook',
      'not a url',
    ]) {
      const error = await failure(channel.send(message(target)))
      expect(error).toMatchObject({ code: 'INVALID_TARGET', permanent: true })
      expect(error.message).not.toContain('pass')
    }
  })
})

describe('parseWebhookTarget', () => {
  it('accepts https everywhere and loopback http outside production', () => {
    expect(parseWebhookTarget('https://hooks.slack.com/services/T0/B0/x', true).hostname).toBe('hooks.slack.com')
    expect(parseWebhookTarget('http://localhost:8080/h', false).port).toBe('8080')
    expect(parseWebhookTarget('http://127.1/h', false).hostname).toBe('127.0.0.1')
    expect(parseWebhookTarget('http://[::1]:9/h', false).hostname).toBe('[::1]')
    expect(() => parseWebhookTarget('http://localhost:8080/h', true)).toThrow(DeliveryError)
    expect(() => parseWebhookTarget('http://localhost.evil.test/h', false)).toThrow(DeliveryError)
  })
})

describe('webhook secrets and signatures', () => {
  it('derives a stable secret per subscription and master key', () => {
    const a = webhookSecret(MASTER_KEY, 'sub_a')
    expect(a).toMatch(/^whsec_[0-9a-f]{64}$/)
    expect(webhookSecret(MASTER_KEY, 'sub_a')).toBe(a)
    expect(webhookSecret(MASTER_KEY, 'sub_b')).not.toBe(a)
    expect(webhookSecret(randomBytes(32), 'sub_a')).not.toBe(a)
  })

  it('refuses a master key shorter than the hash', () => {
    expect(() => webhookSecret(Buffer.alloc(16), 'sub_a')).toThrow(RangeError)
    expect(() => createWebhookChannel({ masterKey: Buffer.alloc(0), production: true })).toThrow(RangeError)
  })

  it('verifies any of several v1 signatures and rejects malformed input', () => {
    const secret = webhookSecret(MASTER_KEY, 'sub_a')
    const ts = String(NOW / 1000)
    const good = webhookSignature(secret, ts, '{}')
    const other = webhookSignature('whsec_old', ts, '{}')
    expect(verifyWebhookSignature(secret, ts, '{}', `${other}, ${good}`, NOW)).toBe(true)
    expect(verifyWebhookSignature(secret, ts, '{}', other, NOW)).toBe(false)
    expect(verifyWebhookSignature(secret, ts, '{}', good.toUpperCase().replace('V1', 'v1'), NOW)).toBe(true)
    expect(verifyWebhookSignature(secret, ts, '{}', 'v1=abc', NOW)).toBe(false)
    expect(verifyWebhookSignature(secret, ts, '{}', good.replace('v1=', 'v0='), NOW)).toBe(false)
    expect(verifyWebhookSignature(secret, `${ts}.5`, '{}', good, NOW)).toBe(false)
    expect(verifyWebhookSignature(secret, '', '{}', good, NOW)).toBe(false)
    expect(verifyWebhookSignature(secret, ts, '{}', good, NOW - 299_000)).toBe(true)
    expect(verifyWebhookSignature(secret, ts, '{}', good, NOW + 60_000, 30_000)).toBe(false)
  })

  it('fails permanently on a payload that cannot be serialised', async () => {
    const channel = createWebhookChannel({ masterKey: MASTER_KEY, production: false })
    const error = await failure(channel.send(message('http://127.0.0.1:9/h', { payload: { n: 1n } })))
    expect(error).toMatchObject({ code: 'INVALID_MESSAGE', permanent: true })
  })
})
