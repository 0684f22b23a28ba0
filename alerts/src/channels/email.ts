import { createTransport, type SendMailOptions } from 'nodemailer'
import { type Channel, DeliveryError, type OutboundMessage } from './types.ts'

/**
 * Time budget for one message, connect to final reply. RFC 5321 §4.5.3.2 suggests minutes per step for MTA-to-MTA
 * relaying (up to 10 min after the final dot, for content scanning); we talk to a submission relay that answers
 * in seconds, and a stuck attempt is better retried (backoff.ts) than left holding a dispatcher slot. The
 * dispatcher's claim lease must be longer than this.
 */
export const EMAIL_TIMEOUT_MS = 60_000

/** Longest SMTP reply text kept in an error message (replies can be multi-line and verbose). */
const MAX_REPLY_CHARS = 200

export interface EmailChannelOptions {
  readonly host: string
  readonly port: number
  /** TLS from the first byte (port 465). With false, STARTTLS is used when the server offers it. */
  readonly secure: boolean
  /** Refuse to continue without STARTTLS (recommended whenever `user` is set and `secure` is false). */
  readonly requireTls?: boolean
  readonly user?: string
  readonly pass?: string
  /** The From header, e.g. `"Skolluft Lund" <larm@lund.se>`. */
  readonly from: string
  /** Overall budget for one message; also the connect, greeting and idle-socket timeouts. Default EMAIL_TIMEOUT_MS. */
  readonly timeoutMs?: number
}

export type EmailChannel = Channel & { close(): void }

// RFC 5322 §3.6.4 msg-id = "<" id-left "@" id-right ">", both dot-atom-text-ish: printable ASCII without <, >, @, space.
const MSG_ID = /^<[\x21-\x3b\x3d\x3f-\x7e]+@[\x21-\x3b\x3d\x3f-\x7e]+>$/
// One plain address, as the subscription schema accepted it; never a list, a display name or anything to fold.
const ADDRESS = /^[^\s@,;<>"()]+@[^\s@,;<>"()]+$/

/**
 * Email over SMTP (nodemailer). Not pooled: alert mail is low volume (a per-recipient rate limit, a few messages
 * per event), so one connection per message costs nothing noticeable, while it keeps every SMTP reply attributable
 * to exactly one message, needs no handling of idle pooled connections that the relay drops (RFC 5321 §4.5.3.2.7
 * lets a server close after 5 min idle) and lets a broken connection fail only the message that used it.
 */
export function createEmailChannel(opts: EmailChannelOptions): EmailChannel {
  const timeoutMs = opts.timeoutMs ?? EMAIL_TIMEOUT_MS
  const transport = createTransport({
    host: opts.host,
    port: opts.port,
    secure: opts.secure,
    requireTLS: opts.requireTls ?? false,
    auth: opts.user === undefined ? undefined : { user: opts.user, pass: opts.pass },
    connectionTimeout: timeoutMs,
    greetingTimeout: timeoutMs,
    socketTimeout: timeoutMs,
    dnsTimeout: timeoutMs,
    logger: false,
  })

  return {
    async send(message) {
      const mail = buildMail(message, opts.from)
      try {
        await transport.sendMail({ ...mail, signal: AbortSignal.timeout(timeoutMs) })
      } catch (error) {
        throw classifySmtpError(error, timeoutMs)
      }
    },
    close() {
      transport.close()
    },
  }
}

/** The nodemailer message for one outbox row; throws a permanent DeliveryError when the row cannot be sent. */
function buildMail(message: OutboundMessage, from: string): SendMailOptions {
  const messageId = message.messageId.startsWith('<') ? message.messageId : `<${message.messageId}>`
  if (!MSG_ID.test(messageId)) {
    throw new DeliveryError('INVALID_MESSAGE', 'message id is not an RFC 5322 msg-id', { permanent: true })
  }
  if (!ADDRESS.test(message.target)) {
    throw new DeliveryError('INVALID_TARGET', 'email target is not a single plain address', { permanent: true })
  }
  const headers: Record<string, string> = {
    // RFC 3834 §5: machine-generated, not a reply; well-behaved auto-responders stay silent.
    'Auto-Submitted': 'auto-generated',
    // Exchange/Outlook do not read Auto-Submitted; this asks them not to send out-of-office and auto-replies
    // (MS-OXCMAIL §2.2.3.2.14). Delivery reports are still allowed.
    'X-Auto-Response-Suppress': 'OOF, AutoReply',
    // RFC 3282: the language of the content, so clients can pick hyphenation, speech and translation.
    'Content-Language': message.language,
  }
  const mail: SendMailOptions = {
    from,
    to: message.target,
    subject: message.subject,
    text: message.text,
    html: message.html,
    messageId,
    headers,
    // Do not advertise the library and its version to every recipient.
    xMailer: false,
  }
  if (message.unsubscribeUrl !== null) {
    const url = URL.parse(message.unsubscribeUrl)
    if (url === null || (url.protocol !== 'https:' && url.protocol !== 'http:')) {
      throw new DeliveryError('INVALID_MESSAGE', 'unsubscribe URL is not an http(s) URL', { permanent: true })
    }
    // RFC 2369 §3.2: List-Unsubscribe: <url>. nodemailer adds the angle brackets.
    mail.list = { unsubscribe: url.href }
    // RFC 8058 §3.1: one-click needs an https URI (a development http URL keeps only the plain link).
    // The relay must DKIM-sign both headers (§4) for mailbox providers to offer the button.
    if (url.protocol === 'https:') headers['List-Unsubscribe-Post'] = 'List-Unsubscribe=One-Click'
  }
  return mail
}

/** Fields nodemailer puts on its errors (NodemailerError), read defensively from an unknown value. */
interface SmtpErrorFields {
  readonly code: string | null
  readonly responseCode: number | null
  readonly command: string | null
  readonly response: string | null
  readonly message: string
}

function fieldsOf(error: unknown): SmtpErrorFields {
  const get = (key: string): unknown =>
    typeof error === 'object' && error !== null ? (error as Record<string, unknown>)[key] : undefined
  const str = (v: unknown): string | null => (typeof v === 'string' ? v : null)
  const responseCode = get('responseCode')
  return {
    code: str(get('code')),
    responseCode: typeof responseCode === 'number' && Number.isInteger(responseCode) ? responseCode : null,
    command: str(get('command')),
    response: str(get('response')),
    message: error instanceof Error ? error.message : String(error),
  }
}

function oneLine(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim()
  return flat.length > MAX_REPLY_CHARS ? `${flat.slice(0, MAX_REPLY_CHARS)}…` : flat
}

/**
 * Maps whatever nodemailer rejected with onto a DeliveryError.
 * - An SMTP reply: 5yz → permanent (RFC 5321 §4.2.1 "permanent negative completion"), except 503 "bad sequence of
 *   commands", which describes the session, not the message (nodemailer's isPermanentResponseCode agrees);
 *   4yz (e.g. 451 greylisting, 421 shutting down) → transient.
 * - Authentication refused (EAUTH/ENOAUTH, typically 535): transient. It is the relay configuration that is wrong,
 *   not this message; once an operator fixes it, the queued alerts go out (bounded by MAX_DELIVERY_ATTEMPTS).
 * - An envelope refused without an SMTP reply (nodemailer found no usable recipient) → permanent.
 * - Timeouts, our own deadline, refused/reset connections, DNS and TLS failures → transient.
 */
export function classifySmtpError(error: unknown, timeoutMs: number): DeliveryError {
  if (error instanceof DeliveryError) return error
  const e = fieldsOf(error)
  const reply = e.response === null ? '' : `: ${oneLine(e.response)}`
  const at = e.command === null ? '' : ` after ${e.command.split(' ')[0]}`
  if (e.code === 'EAUTH' || e.code === 'ENOAUTH') {
    return new DeliveryError('AUTH_FAILED', `SMTP authentication failed${reply}`, {
      permanent: false,
      status: e.responseCode,
      cause: error,
    })
  }
  if (e.responseCode !== null && e.responseCode >= 400 && e.responseCode < 600) {
    const permanent = e.responseCode >= 500 && e.responseCode !== 503
    return new DeliveryError(
      permanent ? 'REJECTED' : 'TEMPORARY_FAILURE',
      `SMTP ${e.responseCode}${at}${reply || `: ${oneLine(e.message)}`}`,
      { permanent, status: e.responseCode, cause: error },
    )
  }
  switch (e.code) {
    case 'ETIMEDOUT':
    case 'EABORT':
      return new DeliveryError('TIMEOUT', `SMTP server did not answer within ${timeoutMs} ms`, {
        permanent: false,
        cause: error,
      })
    case 'ECONNECTION':
    case 'ESOCKET':
    case 'EDNS':
    case 'ETLS':
    case 'EPROXY':
      return new DeliveryError('CONNECTION_FAILED', `SMTP connection failed (${e.code}): ${oneLine(e.message)}`, {
        permanent: false,
        cause: error,
      })
    case 'EENVELOPE':
      return new DeliveryError('INVALID_TARGET', `SMTP envelope refused: ${oneLine(e.message)}`, {
        permanent: true,
        cause: error,
      })
    default:
      return new DeliveryError('PROTOCOL_ERROR', `SMTP send failed (${e.code ?? 'unknown'}): ${oneLine(e.message)}`, {
        permanent: false,
        cause: error,
      })
  }
}
