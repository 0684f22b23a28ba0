import { SMTPServer, type SMTPServerError, type SMTPServerSession } from 'smtp-server'

/**
 * A real SMTP server for tests (smtp-server, plain TCP on 127.0.0.1, port 0, no TLS, any or no credentials).
 * It records every accepted message with its headers and decoded text/html parts, and can be told to refuse:
 * - 'accept'   (default) 250 for everything;
 * - 'reject'   550 (permanent) at the chosen stage;
 * - 'tempfail' 451 (transient) at the chosen stage;
 * - 'hang'     never answers at the chosen stage (the client must time out).
 * The stage is 'rcpt' (after RCPT TO, like an unknown mailbox or greylisting) or 'data' (after the final dot, like
 * a content filter). `failNext` refuses only the next transaction at that stage.
 */
export type SmtpMode = 'accept' | 'reject' | 'tempfail' | 'hang'
export type SmtpStage = 'rcpt' | 'data'

export interface ReceivedMail {
  /** Envelope sender (MAIL FROM). */
  readonly from: string
  /** Envelope recipients (RCPT TO). */
  readonly to: readonly string[]
  /** The Subject header, RFC 2047 encoded words decoded. */
  readonly subject: string
  /** Header values keyed by lower-case name, unfolded, encoded words decoded; repeated headers joined by '\n'. */
  readonly headers: Readonly<Record<string, string>>
  /** The first text/plain part (transfer encoding undone), '' when absent. */
  readonly text: string
  /** The first text/html part (transfer encoding undone), '' when absent. */
  readonly html: string
  /** The whole message as received, decoded as UTF-8. */
  readonly raw: string
  /** The AUTH user name when the client logged in, else null. */
  readonly authUser: string | null
}

export interface TestSmtpServer {
  readonly host: string
  readonly port: number
  /** Accepted messages, in arrival order. */
  readonly messages: readonly ReceivedMail[]
  /** Number of SMTP sessions the server has seen (connections that got a greeting). */
  connections(): number
  setMode(mode: SmtpMode, stage?: SmtpStage): void
  /** The next transaction reaching `stage` is refused with `code` (4xx or 5xx); later ones follow the mode. */
  failNext(code: number, stage?: SmtpStage): void
  /** Releases hanging transactions (421) and closes the server; resolves once it stopped listening. */
  close(): Promise<void>
}

/** How long close() lets open sessions finish before smtp-server drops them (its default is 30 s). */
const CLOSE_GRACE_MS = 200

type Callback = (err?: Error | null) => void

function smtpError(code: number): SMTPServerError {
  const text =
    code === 550
      ? 'Requested action not taken: mailbox unavailable (test)'
      : code === 451
        ? 'Requested action aborted: try again later (test)'
        : code === 421
          ? 'Service not available, closing transmission channel (test)'
          : `Refused with ${code} (test)`
  const error: SMTPServerError = new Error(text)
  error.responseCode = code
  return error
}

export async function startSmtpServer(opts: { mode?: SmtpMode; stage?: SmtpStage } = {}): Promise<TestSmtpServer> {
  let mode: SmtpMode = opts.mode ?? 'accept'
  let modeStage: SmtpStage = opts.stage ?? 'data'
  const oneShot: { code: number; stage: SmtpStage }[] = []
  const messages: ReceivedMail[] = []
  const hanging = new Set<Callback>()
  let sessions = 0
  let closing: Promise<void> | null = null

  /** Applies failNext/mode at `stage`: calls back with the verdict, or parks the callback when hanging. */
  function decide(stage: SmtpStage, callback: Callback, onAccept: () => void): void {
    const index = oneShot.findIndex((f) => f.stage === stage)
    const forced = index >= 0 ? oneShot.splice(index, 1)[0] : undefined
    const active = modeStage === stage ? mode : 'accept'
    if (forced !== undefined) {
      callback(smtpError(forced.code))
    } else if (active === 'reject') {
      callback(smtpError(550))
    } else if (active === 'tempfail') {
      callback(smtpError(451))
    } else if (active === 'hang') {
      hanging.add(callback)
    } else {
      onAccept()
      callback()
    }
  }

  const server = new SMTPServer({
    secure: false,
    authOptional: true,
    allowInsecureAuth: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    // A reverse DNS lookup of 127.0.0.1 per connection only adds latency (and flakiness on a busy machine).
    disableReverseLookup: true,
    closeTimeout: CLOSE_GRACE_MS,
    onConnect(_session, callback) {
      sessions += 1
      callback()
    },
    onAuth(auth, _session, callback) {
      callback(null, { user: auth.username ?? 'anonymous' })
    },
    onRcptTo(_address, _session, callback) {
      decide('rcpt', callback, () => undefined)
    },
    onData(stream, session: SMTPServerSession, callback) {
      const chunks: Buffer[] = []
      stream.on('data', (chunk: Buffer) => chunks.push(chunk))
      stream.on('end', () => {
        const raw = Buffer.concat(chunks)
        decide('data', callback, () => messages.push(receivedMail(raw, session)))
      })
    },
  })

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject)
      resolve()
    })
  })
  const address = server.server.address()
  if (address === null || typeof address === 'string') throw new Error('smtp test server has no TCP address')
  // A client that vanished mid-session makes smtp-server emit 'error'; without a listener that would crash the test.
  server.on('error', () => undefined)

  return {
    host: '127.0.0.1',
    port: address.port,
    messages,
    connections: () => sessions,
    setMode(next, stage = 'data') {
      mode = next
      modeStage = stage
    },
    failNext(code, stage = 'data') {
      oneShot.push({ code, stage })
    },
    close() {
      if (closing === null) {
        for (const callback of hanging) callback(smtpError(421))
        hanging.clear()
        closing = new Promise<void>((resolve) => server.close(() => resolve()))
      }
      return closing
    },
  }
}

function receivedMail(raw: Buffer, session: SMTPServerSession): ReceivedMail {
  const parsed = parseMail(raw)
  const user: unknown = session.user
  return {
    from: session.envelope.mailFrom === false ? '' : session.envelope.mailFrom.address,
    to: session.envelope.rcptTo.map((r) => r.address),
    subject: parsed.headers.subject ?? '',
    headers: parsed.headers,
    text: parsed.text,
    html: parsed.html,
    raw: raw.toString('utf8'),
    authUser: typeof user === 'string' ? user : null,
  }
}

// ---------------------------------------------------------------------------------------------------------------
// A deliberately small MIME reader: enough for what nodemailer produces (multipart/alternative or mixed, 7bit,
// 8bit, quoted-printable or base64 parts, RFC 2047 encoded words). Not a general-purpose parser.

export interface ParsedMail {
  readonly headers: Readonly<Record<string, string>>
  readonly text: string
  readonly html: string
}

/** Splits a message or body part (as bytes) into its header block and body, at the first empty line. */
function splitEntity(entity: Buffer): { head: string; body: Buffer } {
  const crlf = entity.indexOf('\r\n\r\n')
  const lf = entity.indexOf('\n\n')
  if (crlf >= 0 && (lf < 0 || crlf < lf)) {
    return { head: entity.subarray(0, crlf).toString('utf8'), body: entity.subarray(crlf + 4) }
  }
  if (lf >= 0) return { head: entity.subarray(0, lf).toString('utf8'), body: entity.subarray(lf + 2) }
  return { head: entity.toString('utf8'), body: Buffer.alloc(0) }
}

function decodeCharset(bytes: Buffer, charset: string): string {
  try {
    return new TextDecoder(charset).decode(bytes)
  } catch {
    return bytes.toString('utf8')
  }
}

/** RFC 2047 encoded words; whitespace between two adjacent encoded words is dropped (§6.2). */
export function decodeEncodedWords(value: string): string {
  return value
    .replace(/(=\?[^?]+\?[BbQq]\?[^?]*\?=)\s+(?==\?[^?]+\?[BbQq]\?[^?]*\?=)/g, '$1')
    .replace(/=\?([^?*]+)(?:\*[^?]*)?\?([BbQq])\?([^?]*)\?=/g, (_all, charset: string, enc: string, data: string) => {
      const bytes = enc.toUpperCase() === 'B' ? Buffer.from(data, 'base64') : qpBytes(data.replace(/_/g, ' '))
      return decodeCharset(bytes, charset)
    })
}

function qpBytes(text: string): Buffer {
  const out: number[] = []
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]
    const hex = text.slice(i + 1, i + 3)
    if (ch === '=' && /^[0-9A-Fa-f]{2}$/.test(hex)) {
      out.push(Number.parseInt(hex, 16))
      i += 2
    } else {
      out.push(text.charCodeAt(i) & 0xff)
    }
  }
  return Buffer.from(out)
}

function parseHeaders(head: string): Record<string, string> {
  const headers: Record<string, string> = {}
  // Unfold (RFC 5322 §2.2.3): a line break followed by white space continues the previous line.
  for (const line of head.replace(/\r?\n(?=[ \t])/g, '').split(/\r?\n/)) {
    const colon = line.indexOf(':')
    if (colon <= 0) continue
    const name = line.slice(0, colon).trim().toLowerCase()
    const value = decodeEncodedWords(line.slice(colon + 1).trim())
    headers[name] = headers[name] === undefined ? value : `${headers[name]}\n${value}`
  }
  return headers
}

/** `type/subtype` in lower case and the parameters (names lower-cased, quotes removed). */
function contentType(value: string | undefined): { type: string; params: Record<string, string> } {
  const [type = 'text/plain', ...rest] = (value ?? 'text/plain').split(';')
  const params: Record<string, string> = {}
  for (const m of rest.join(';').matchAll(/([^=\s;]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;\s]+)/g)) {
    const name = m[1]
    const raw = m[2]
    if (name !== undefined && raw !== undefined) {
      params[name.toLowerCase()] = raw.startsWith('"') ? raw.slice(1, -1).replace(/\\(.)/g, '$1') : raw
    }
  }
  return { type: type.trim().toLowerCase(), params }
}

function decodeBody(body: Buffer, encoding: string | undefined, charset: string): string {
  const cte = (encoding ?? '7bit').trim().toLowerCase()
  if (cte === 'base64')
    return decodeCharset(Buffer.from(body.toString('latin1').replace(/\s+/g, ''), 'base64'), charset)
  if (cte === 'quoted-printable') {
    return decodeCharset(qpBytes(body.toString('latin1').replace(/=\r?\n/g, '')), charset)
  }
  return decodeCharset(body, charset)
}

/** Body parts between the boundary delimiter lines (RFC 2046 §5.1.1), preamble and epilogue dropped. */
function splitMultipart(body: Buffer, boundary: string): Buffer[] {
  const text = `\r\n${body.toString('latin1')}`
  const chunks = text.split(`\r\n--${boundary}`).slice(1)
  const parts: Buffer[] = []
  for (const chunk of chunks) {
    if (chunk.startsWith('--')) break
    const eol = chunk.indexOf('\r\n')
    parts.push(Buffer.from(eol < 0 ? '' : chunk.slice(eol + 2), 'latin1'))
  }
  return parts
}

/** Headers and the first text/plain and text/html leaves of a raw RFC 5322 message. */
export function parseMail(raw: Buffer | string): ParsedMail {
  const message = typeof raw === 'string' ? Buffer.from(raw, 'utf8') : raw
  const top = splitEntity(message)
  const headers = parseHeaders(top.head)
  const found: { text?: string; html?: string } = {}
  const walk = (partHeaders: Record<string, string>, body: Buffer, depth: number): void => {
    const ct = contentType(partHeaders['content-type'])
    const boundary = ct.params.boundary
    if (ct.type.startsWith('multipart/') && boundary !== undefined && depth < 8) {
      for (const part of splitMultipart(body, boundary)) {
        const entity = splitEntity(part)
        walk(parseHeaders(entity.head), entity.body, depth + 1)
      }
      return
    }
    const charset = ct.params.charset ?? 'utf-8'
    const encoding = partHeaders['content-transfer-encoding']
    if (ct.type === 'text/plain' && found.text === undefined) found.text = decodeBody(body, encoding, charset)
    if (ct.type === 'text/html' && found.html === undefined) found.html = decodeBody(body, encoding, charset)
  }
  walk(headers, top.body, 0)
  return { headers, text: found.text ?? '', html: found.html ?? '' }
}
