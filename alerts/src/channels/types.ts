/**
 * The contract between the dispatcher and the delivery channels (email over SMTP, signed webhooks).
 *
 * A channel either resolves (the receiving side accepted the message) or rejects with a DeliveryError that says
 * whether retrying the same message can help (`permanent: false`) or not (`permanent: true`). Channels never throw
 * anything else, so the dispatcher can log the attempt and plan the retry from the error alone.
 */

/** One outbox row as a channel sees it. `messageId` is stable across retries, so receivers can de-duplicate. */
export interface OutboundMessage {
  readonly id: number
  /** RFC 5322 msg-id, e.g. `<o12.2f1c…@skolluft>`; becomes the Message-ID header and X-Skolluft-Delivery. */
  readonly messageId: string
  readonly channel: 'email' | 'webhook'
  /** An email address (email) or an absolute URL (webhook). */
  readonly target: string
  readonly subscriptionId: string
  readonly subject: string
  readonly text: string
  readonly html: string
  /** JSON-serialisable data for webhook receivers (ignored by email). */
  readonly payload: unknown
  readonly language: 'sv' | 'en'
  /** One-click unsubscribe URL (RFC 8058 wants https), or null when the message cannot be unsubscribed from. */
  readonly unsubscribeUrl: string | null
}

export interface Channel {
  /** Resolves once the receiver accepted the message; rejects only with a DeliveryError. */
  send(message: OutboundMessage): Promise<void>
}

export const DELIVERY_ERROR_CODES = [
  /** The receiver refused the message for good (SMTP 5xx, HTTP 4xx other than 408/429). */
  'REJECTED',
  /** The receiver asked to try again later (SMTP 4xx, HTTP 408/429/5xx). */
  'TEMPORARY_FAILURE',
  /** The SMTP relay refused our credentials: a configuration problem, not one of this message. */
  'AUTH_FAILED',
  /** No connection (refused, reset, DNS, TLS) or it broke mid-way. */
  'CONNECTION_FAILED',
  /** No answer within the channel's time budget. */
  'TIMEOUT',
  /** The webhook answered with a redirect; we never follow one (the signature is bound to the target we were given). */
  'REDIRECTED',
  /** The target cannot be used: not a URL / address, userinfo in the URL, not https in production. */
  'INVALID_TARGET',
  /** The message itself cannot be sent (a malformed Message-ID, a payload that does not serialise). */
  'INVALID_MESSAGE',
  /** The receiver answered something we do not understand. */
  'PROTOCOL_ERROR',
  /** Not from a channel: the dispatcher wraps an unexpected error of our own in it (transient). */
  'INTERNAL',
] as const
export type DeliveryErrorCode = (typeof DELIVERY_ERROR_CODES)[number]

export interface DeliveryErrorOptions {
  readonly permanent: boolean
  /** The SMTP reply code or HTTP status that caused the error, when there was one. */
  readonly status?: number | null
  /** A receiver's Retry-After, in ms, when it sent one (HTTP 429/503). The dispatcher may wait longer, not shorter. */
  readonly retryAfterMs?: number | null
  readonly cause?: unknown
}

/** Why one delivery attempt failed. The message is short and safe to log and store (no secrets, no bodies). */
export class DeliveryError extends Error {
  readonly code: DeliveryErrorCode
  readonly permanent: boolean
  readonly status: number | null
  readonly retryAfterMs: number | null

  constructor(code: DeliveryErrorCode, message: string, options: DeliveryErrorOptions) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'DeliveryError'
    this.code = code
    this.permanent = options.permanent
    this.status = options.status ?? null
    this.retryAfterMs = options.retryAfterMs ?? null
  }
}

export function isDeliveryError(error: unknown): error is DeliveryError {
  return error instanceof DeliveryError
}
