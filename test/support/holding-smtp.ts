import { parseMail } from '@skolluft/testkit'
import { SMTPServer, type SMTPServerError } from 'smtp-server'

/**
 * An SMTP server (127.0.0.1, port 0, no TLS) for the one delivery window that can duplicate: the receiver has the
 * message, the sender does not know it yet. In 'hold' mode every message is STORED as soon as its data arrived
 * and the final reply is held back, so a test can kill the sender inside that window for as long as it likes (a
 * real server crashing after storing, or a sender dying between the 250 and its own record, look the same to
 * both sides). In 'accept' mode it stores and answers 250 at once.
 */
export type HoldingMode = 'hold' | 'accept'

export interface StoredMail {
  readonly messageId: string
  readonly to: readonly string[]
  readonly subject: string
  readonly text: string
}

export interface HoldingSmtpServer {
  readonly host: string
  readonly port: number
  /** Every message stored, in arrival order (held ones included). */
  readonly messages: readonly StoredMail[]
  /** Replies held back right now. */
  held(): number
  setMode(mode: HoldingMode): void
  /** Answers held transactions with 421 and stops listening. */
  close(): Promise<void>
}

type Callback = (err?: Error | null) => void

export async function startHoldingSmtpServer(mode: HoldingMode = 'hold'): Promise<HoldingSmtpServer> {
  let current = mode
  const messages: StoredMail[] = []
  const held = new Set<Callback>()
  let closing: Promise<void> | null = null

  const server = new SMTPServer({
    secure: false,
    authOptional: true,
    allowInsecureAuth: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    disableReverseLookup: true,
    closeTimeout: 200,
    onData(stream, session, callback) {
      const chunks: Buffer[] = []
      stream.on('data', (chunk: Buffer) => chunks.push(chunk))
      stream.on('end', () => {
        const parsed = parseMail(Buffer.concat(chunks))
        messages.push({
          messageId: parsed.headers['message-id'] ?? '',
          to: session.envelope.rcptTo.map((r) => r.address),
          subject: parsed.headers.subject ?? '',
          text: parsed.text,
        })
        if (current === 'hold') held.add(callback)
        else callback()
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
  // A sender killed mid-session makes smtp-server emit 'error'; it must not crash the test.
  server.on('error', () => undefined)
  const address = server.server.address()
  if (address === null || typeof address === 'string') throw new Error('holding smtp server has no TCP address')

  return {
    host: '127.0.0.1',
    port: address.port,
    messages,
    held: () => held.size,
    setMode(next) {
      current = next
    },
    close() {
      if (closing === null) {
        for (const callback of held) {
          const error: SMTPServerError = new Error('Service not available (test)')
          error.responseCode = 421
          callback(error)
        }
        held.clear()
        closing = new Promise<void>((resolve) => server.close(() => resolve()))
      }
      return closing
    },
  }
}
