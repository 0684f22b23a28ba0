import { createHmac, timingSafeEqual } from 'node:crypto'
import { webhookSecret } from '@skolluft/runtime'
import { type Channel, DeliveryError, type OutboundMessage } from './types.ts'

/**
 * Time budget for one POST, connect to the end of the status line and the error text. GitHub gives webhook
 * receivers 10 s before it terminates the delivery ("Handling webhook deliveries": respond within 10 seconds);
 * receivers are expected to queue and answer 2xx at once, so longer waits only tie up the dispatcher.
 */
export const WEBHOOK_TIMEOUT_MS = 10_000

/**
 * How far a signed timestamp may be from the receiver's clock: 5 min, the default of Stripe's and Slack's
 * signature checks. Long enough for clock skew and queueing, short enough to limit replays of a captured request.
 */
export const WEBHOOK_SIGNATURE_TOLERANCE_MS = 300_000

/** At most this much of an error response body is read, for the attempt log (the rest is discarded unread). */
export const MAX_ERROR_BODY_BYTES = 512

/**
 * HMAC-SHA256 keys shorter than the hash output weaken it (RFC 2104 §3: "less than L bytes is strongly
 * discouraged"), and every subscriber secret derives from this one key.
 */
export const MIN_MASTER_KEY_BYTES = 32

const SIGNATURE_VERSION = 'v1'
const TIMESTAMP = /^\d{1,12}$/
const V1_SIGNATURE = /^v1=([0-9a-f]{64})$/i

export interface WebhookChannelOptions {
  /** The server's secret key (≥ MIN_MASTER_KEY_BYTES); subscriber secrets are derived from it, never stored. */
  readonly masterKey: Buffer
  /** true: only https targets. false: https, or http to a loopback host (local development and tests). */
  readonly production: boolean
  readonly timeoutMs?: number
  /** Epoch ms, for X-Skolluft-Timestamp. */
  readonly clock?: () => number
}

function assertMasterKey(masterKey: Buffer): void {
  if (masterKey.length < MIN_MASTER_KEY_BYTES) {
    throw new RangeError(`webhook master key must be at least ${MIN_MASTER_KEY_BYTES} bytes`)
  }
}

/** The signing secret of one subscription (runtime derived-keys.ts, shared with the API that shows it once). */
export { webhookSecret }

/** `v1=<hex HMAC-SHA256(secret, `${timestamp}.${body}`)>`, the X-Skolluft-Signature value. */
export function webhookSignature(secret: string, timestamp: string, body: string): string {
  return `${SIGNATURE_VERSION}=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`
}

/**
 * Receiver-side check (also what our docs tell subscribers to implement). `timestamp` is the X-Skolluft-Timestamp
 * header (unix seconds), `body` the raw request body, `signature` the X-Skolluft-Signature header, which may list
 * several comma- or space-separated `v1=` values (for secret rotation); `now` is epoch ms. Constant-time compare.
 */
export function verifyWebhookSignature(
  secret: string,
  timestamp: string,
  body: string,
  signature: string,
  now: number,
  toleranceMs: number = WEBHOOK_SIGNATURE_TOLERANCE_MS,
): boolean {
  if (!TIMESTAMP.test(timestamp)) return false
  if (Math.abs(now - Number(timestamp) * 1000) > toleranceMs) return false
  const expected = createHmac('sha256', secret).update(`${timestamp}.${body}`).digest()
  let ok = false
  for (const candidate of signature.split(/[\s,]+/)) {
    const hex = V1_SIGNATURE.exec(candidate)?.[1]
    // Compare every candidate (no early exit), so timing does not tell which position matched.
    if (hex !== undefined && timingSafeEqual(Buffer.from(hex, 'hex'), expected)) ok = true
  }
  return ok
}

/**
 * The exact request body: the same bytes on every attempt of one message (the timestamp is a header), so
 * receivers can de-duplicate by X-Skolluft-Delivery. `text` is what Slack incoming webhooks (and Teams/Mattermost
 * compatible ones) display; `payload` is the structured alert.
 */
export function webhookBody(message: OutboundMessage): string {
  try {
    return JSON.stringify({
      text: message.subject,
      id: message.messageId,
      subscriptionId: message.subscriptionId,
      language: message.language,
      subject: message.subject,
      payload: message.payload ?? null,
    })
  } catch (error) {
    throw new DeliveryError('INVALID_MESSAGE', 'webhook payload is not JSON-serialisable', {
      permanent: true,
      cause: error,
    })
  }
}

function isLoopbackHost(hostname: string): boolean {
  // WHATWG URL has already normalised IPv4 shorthand (127.1 → 127.0.0.1) and brackets IPv6.
  return hostname === 'localhost' || hostname === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname)
}

/** The target URL, or a permanent DeliveryError saying why it is refused. Error texts never echo the URL (it may hold a token). */
export function parseWebhookTarget(target: string, production: boolean): URL {
  const url = URL.parse(target)
  const refuse = (why: string) =>
    new DeliveryError('INVALID_TARGET', `webhook target refused: ${why}`, { permanent: true })
  if (url === null) throw refuse('not an absolute URL')
  if (url.username !== '' || url.password !== '') throw refuse('credentials in the URL')
  if (url.protocol === 'https:') return url
  if (url.protocol !== 'http:') throw refuse(`scheme ${url.protocol} is not http(s)`)
  if (production) throw refuse('https is required in production')
  if (!isLoopbackHost(url.hostname)) throw refuse('plain http is allowed only to a loopback host')
  return url
}

/** Retry-After (RFC 9110 §10.2.3): delay-seconds or an HTTP-date; ms from now, or null. */
function retryAfterMs(value: string | null, now: number): number | null {
  if (value === null) return null
  const trimmed = value.trim()
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000
  const at = Date.parse(trimmed)
  return Number.isNaN(at) ? null : Math.max(0, at - now)
}

/** Up to MAX_ERROR_BODY_BYTES of the body as one line; best effort, never throws. */
async function readSnippet(response: Response): Promise<string> {
  const body = response.body
  if (body === null) return ''
  const reader = body.getReader()
  const chunks: Uint8Array[] = []
  let total = 0
  try {
    while (total < MAX_ERROR_BODY_BYTES) {
      const { done, value } = await reader.read()
      if (done) break
      chunks.push(value)
      total += value.byteLength
    }
  } catch {
    // A body that breaks off (or our deadline) leaves whatever arrived; the status code is what counts.
  } finally {
    await reader.cancel().catch(() => undefined)
  }
  const bytes = Buffer.concat(chunks).subarray(0, MAX_ERROR_BODY_BYTES)
  // A multi-byte character cut at the limit decodes to U+FFFD rather than throwing.
  return new TextDecoder().decode(bytes).replace(/\s+/g, ' ').trim()
}

async function discardBody(response: Response): Promise<void> {
  await response.body?.cancel().catch(() => undefined)
}

function classifyFetchError(error: unknown, timeoutMs: number, signal: AbortSignal): DeliveryError {
  if (signal.aborted || (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError'))) {
    return new DeliveryError('TIMEOUT', `webhook did not answer within ${timeoutMs} ms`, {
      permanent: false,
      cause: error,
    })
  }
  // undici rejects with TypeError('fetch failed') and the socket error (ECONNREFUSED, ENOTFOUND, TLS …) as cause.
  const cause = error instanceof Error ? error.cause : undefined
  const code =
    typeof cause === 'object' && cause !== null && 'code' in cause && typeof cause.code === 'string' ? cause.code : null
  const detail = code ?? (cause instanceof Error ? cause.message : error instanceof Error ? error.message : 'unknown')
  return new DeliveryError('CONNECTION_FAILED', `webhook request failed: ${detail}`, { permanent: false, cause: error })
}

/**
 * Signed JSON webhooks over Node's fetch. 2xx → delivered. Redirects are never followed (the receiver could
 * bounce us anywhere, including to internal addresses) and fail permanently: the subscriber must register the
 * final URL. 408, 429 and 5xx are transient (429/503 with Retry-After); other statuses are permanent.
 */
export function createWebhookChannel(opts: WebhookChannelOptions): Channel {
  assertMasterKey(opts.masterKey)
  const timeoutMs = opts.timeoutMs ?? WEBHOOK_TIMEOUT_MS
  const clock = opts.clock ?? Date.now

  return {
    async send(message) {
      const url = parseWebhookTarget(message.target, opts.production)
      const body = webhookBody(message)
      const timestamp = String(Math.floor(clock() / 1000))
      const secret = webhookSecret(opts.masterKey, message.subscriptionId)
      const signal = AbortSignal.timeout(timeoutMs)
      let response: Response
      try {
        response = await fetch(url, {
          method: 'POST',
          redirect: 'manual',
          signal,
          headers: {
            'content-type': 'application/json; charset=utf-8',
            'user-agent': 'skolluft-alerts/1',
            'x-skolluft-delivery': message.messageId,
            'x-skolluft-timestamp': timestamp,
            'x-skolluft-signature': webhookSignature(secret, timestamp, body),
          },
          body,
        })
      } catch (error) {
        throw classifyFetchError(error, timeoutMs, signal)
      }

      const status = response.status
      if (status >= 200 && status < 300) {
        await discardBody(response)
        return
      }
      if (status >= 300 && status < 400) {
        await discardBody(response)
        const location = URL.parse(response.headers.get('location') ?? '', url.href)
        const where = location === null ? '' : ` to ${location.origin}`
        throw new DeliveryError(
          'REDIRECTED',
          `webhook answered HTTP ${status} (redirect${where}); redirects are not followed, register the final URL`,
          { permanent: true, status },
        )
      }
      const snippet = await readSnippet(response)
      const text = `webhook answered HTTP ${status}${snippet === '' ? '' : `: ${snippet}`}`
      if (status === 408 || status === 429 || (status >= 500 && status < 600)) {
        throw new DeliveryError('TEMPORARY_FAILURE', text, {
          permanent: false,
          status,
          retryAfterMs: retryAfterMs(response.headers.get('retry-after'), clock()),
        })
      }
      if (status >= 400 && status < 500) throw new DeliveryError('REJECTED', text, { permanent: true, status })
      throw new DeliveryError('PROTOCOL_ERROR', text, { permanent: false, status })
    },
  }
}
