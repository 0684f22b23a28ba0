import { createServer, type Server, type Socket } from 'node:net'
import { closedPort, startSmtpServer, type TestSmtpServer } from '@skolluft/testkit'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { classifySmtpError, createEmailChannel, type EmailChannel } from './email.ts'
import { DeliveryError, type OutboundMessage } from './types.ts'

/** For the tests that expect a timeout: short, so they stay fast. */
const HANG_TIMEOUT_MS = 400
/** For everything else: generous, so a busy test machine does not turn a success into a timeout. */
const TEST_TIMEOUT_MS = 10_000
const FROM = '"Skolluft Lund" <larm@skolluft.test>'

function message(overrides: Partial<OutboundMessage> = {}): OutboundMessage {
  return {
    id: 12,
    messageId: '<o12.6f1d2c7e-2f0a-4c1e-9d7b-0f3b2a1c9e11@skolluft>',
    channel: 'email',
    target: 'rektor@skola.test',
    subscriptionId: 'sub_abc',
    subject: 'Höga halter av PM2.5 vid Östra Torns förskola',
    text: 'PM2.5 var 38 µg/m³ (timmedel) kl. 08:00 (Europe/Stockholm).\nGräns: 25 µg/m³.',
    html: '<p>PM2.5 var <strong>38 µg/m³</strong> – över gränsen 25 µg/m³.</p>',
    payload: { kind: 'opened' },
    language: 'sv',
    unsubscribeUrl: 'https://skolluft.test/unsubscribe/sub_abc?token=t0k3n',
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

describe('email channel against a real SMTP server', () => {
  let smtp: TestSmtpServer
  let channel: EmailChannel

  beforeEach(async () => {
    smtp = await startSmtpServer()
    channel = createEmailChannel({
      host: smtp.host,
      port: smtp.port,
      secure: false,
      from: FROM,
      timeoutMs: TEST_TIMEOUT_MS,
    })
  })

  afterEach(async () => {
    channel.close()
    await smtp.close()
  })

  it('sends text and html with a stable Message-ID and the unsubscribe, auto-submitted and language headers', async () => {
    await channel.send(message())
    expect(smtp.messages).toHaveLength(1)
    const [mail] = smtp.messages
    if (mail === undefined) throw new Error('no mail')
    expect(mail.from).toBe('larm@skolluft.test')
    expect(mail.to).toEqual(['rektor@skola.test'])
    expect(mail.subject).toBe('Höga halter av PM2.5 vid Östra Torns förskola')
    expect(mail.headers['message-id']).toBe('<o12.6f1d2c7e-2f0a-4c1e-9d7b-0f3b2a1c9e11@skolluft>')
    expect(mail.headers['list-unsubscribe']).toBe('<https://skolluft.test/unsubscribe/sub_abc?token=t0k3n>')
    expect(mail.headers['list-unsubscribe-post']).toBe('List-Unsubscribe=One-Click')
    expect(mail.headers['auto-submitted']).toBe('auto-generated')
    expect(mail.headers['content-language']).toBe('sv')
    expect(mail.headers['x-auto-response-suppress']).toBe('OOF, AutoReply')
    expect(mail.headers['x-mailer']).toBeUndefined()
    expect(mail.headers['content-type']).toMatch(/^multipart\/alternative/)
    expect(mail.text).toContain('PM2.5 var 38 µg/m³ (timmedel)')
    expect(mail.text).toContain('Gräns: 25 µg/m³.')
    expect(mail.html).toContain('<strong>38 µg/m³</strong> – över')
  })

  it('keeps the same Message-ID on a retry, and adds the angle brackets when missing', async () => {
    await channel.send(message({ messageId: 'o13.abc@skolluft' }))
    await channel.send(message({ messageId: 'o13.abc@skolluft' }))
    expect(smtp.messages.map((m) => m.headers['message-id'])).toEqual(['<o13.abc@skolluft>', '<o13.abc@skolluft>'])
  })

  it('omits the List-Unsubscribe headers without a URL, and the one-click header for a plain http URL', async () => {
    await channel.send(message({ unsubscribeUrl: null, language: 'en' }))
    await channel.send(message({ unsubscribeUrl: 'http://localhost:3000/unsubscribe/x' }))
    const [none, plain] = smtp.messages
    expect(none?.headers['list-unsubscribe']).toBeUndefined()
    expect(none?.headers['list-unsubscribe-post']).toBeUndefined()
    expect(none?.headers['content-language']).toBe('en')
    expect(plain?.headers['list-unsubscribe']).toBe('<http://localhost:3000/unsubscribe/x>')
    expect(plain?.headers['list-unsubscribe-post']).toBeUndefined()
  })

  it('fails permanently on 550, at RCPT TO and after DATA', async () => {
    smtp.failNext(550, 'rcpt')
    const atRcpt = await failure(channel.send(message()))
    expect(atRcpt).toMatchObject({ code: 'REJECTED', permanent: true, status: 550 })
    expect(atRcpt.message).toMatch(/^SMTP 550/)

    smtp.setMode('reject', 'data')
    const atData = await failure(channel.send(message()))
    expect(atData).toMatchObject({ code: 'REJECTED', permanent: true, status: 550 })
    expect(smtp.messages).toHaveLength(0)
  })

  it('fails transiently on 451, at RCPT TO and after DATA, and goes through once the server accepts', async () => {
    smtp.setMode('tempfail', 'rcpt')
    expect(await failure(channel.send(message()))).toMatchObject({
      code: 'TEMPORARY_FAILURE',
      permanent: false,
      status: 451,
    })
    smtp.setMode('tempfail', 'data')
    expect(await failure(channel.send(message()))).toMatchObject({ code: 'TEMPORARY_FAILURE', permanent: false })
    smtp.setMode('accept')
    await channel.send(message())
    expect(smtp.messages).toHaveLength(1)
  })

  it('times out transiently when the server never answers the message', async () => {
    smtp.setMode('hang', 'data')
    const impatient = createEmailChannel({
      host: smtp.host,
      port: smtp.port,
      secure: false,
      from: FROM,
      timeoutMs: HANG_TIMEOUT_MS,
    })
    try {
      const started = Date.now()
      const error = await failure(impatient.send(message()))
      expect(error).toMatchObject({ code: 'TIMEOUT', permanent: false })
      expect(error.message).toBe(`SMTP server did not answer within ${HANG_TIMEOUT_MS} ms`)
      expect(Date.now() - started).toBeLessThan(HANG_TIMEOUT_MS * 5)
    } finally {
      impatient.close()
    }
  })

  it('logs in when credentials are configured', async () => {
    const authed = createEmailChannel({
      host: smtp.host,
      port: smtp.port,
      secure: false,
      user: 'alerts',
      pass: 'secret',
      from: FROM,
      timeoutMs: TEST_TIMEOUT_MS,
    })
    try {
      await authed.send(message())
    } finally {
      authed.close()
    }
    expect(smtp.messages[0]?.authUser).toBe('alerts')
  })

  it('refuses a malformed Message-ID or target before connecting', async () => {
    expect(await failure(channel.send(message({ messageId: '<no at sign>' })))).toMatchObject({
      code: 'INVALID_MESSAGE',
      permanent: true,
    })
    expect(await failure(channel.send(message({ target: 'a@x.test, b@y.test' })))).toMatchObject({
      code: 'INVALID_TARGET',
      permanent: true,
    })
    expect(await failure(channel.send(message({ unsubscribeUrl: 'javascript:alert(1)' })))).toMatchObject({
      code: 'INVALID_MESSAGE',
      permanent: true,
    })
    expect(smtp.connections()).toBe(0)
  })
})

describe('email channel without a working server', () => {
  let silent: Server | null = null
  const sockets = new Set<Socket>()

  afterEach(async () => {
    for (const socket of sockets) socket.destroy()
    sockets.clear()
    const server = silent
    silent = null
    if (server !== null) await new Promise<void>((resolve) => server.close(() => resolve()))
  })

  it('fails transiently when the connection is refused', async () => {
    const channel = createEmailChannel({
      host: '127.0.0.1',
      port: await closedPort(),
      secure: false,
      from: FROM,
      timeoutMs: TEST_TIMEOUT_MS,
    })
    try {
      const error = await failure(channel.send(message()))
      expect(error).toMatchObject({ code: 'CONNECTION_FAILED', permanent: false, status: null })
      expect(error.message).toContain('ECONNREFUSED')
    } finally {
      channel.close()
    }
  })

  it('times out transiently when the server accepts the connection but never greets', async () => {
    const server = createServer((socket) => {
      sockets.add(socket)
    })
    silent = server
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
    const address = server.address()
    if (address === null || typeof address === 'string') throw new Error('no address')
    const channel = createEmailChannel({
      host: '127.0.0.1',
      port: address.port,
      secure: false,
      from: FROM,
      timeoutMs: HANG_TIMEOUT_MS,
    })
    try {
      const started = Date.now()
      expect(await failure(channel.send(message()))).toMatchObject({ code: 'TIMEOUT', permanent: false })
      expect(Date.now() - started).toBeLessThan(HANG_TIMEOUT_MS * 5)
    } finally {
      channel.close()
    }
  })
})

describe('classifySmtpError', () => {
  const smtpError = (fields: Record<string, unknown>) => Object.assign(new Error('boom'), fields)

  it('treats refused credentials as transient (configuration, not the message)', () => {
    expect(
      classifySmtpError(smtpError({ code: 'EAUTH', responseCode: 535, response: '535 5.7.8 nope' }), 1),
    ).toMatchObject({
      code: 'AUTH_FAILED',
      permanent: false,
      status: 535,
    })
  })

  it('treats 503 and 421 as transient, other 5xx as permanent', () => {
    expect(classifySmtpError(smtpError({ code: 'EPROTOCOL', responseCode: 503 }), 1).permanent).toBe(false)
    expect(classifySmtpError(smtpError({ code: 'EPROTOCOL', responseCode: 421 }), 1).permanent).toBe(false)
    expect(classifySmtpError(smtpError({ code: 'EMESSAGE', responseCode: 552 }), 1)).toMatchObject({
      code: 'REJECTED',
      permanent: true,
    })
  })

  it('never lets anything but a DeliveryError out, and keeps reply text short', () => {
    expect(classifySmtpError('a string', 1)).toMatchObject({ code: 'PROTOCOL_ERROR', permanent: false })
    expect(classifySmtpError(null, 1)).toBeInstanceOf(DeliveryError)
    const long = classifySmtpError(smtpError({ responseCode: 554, response: `554 ${'x'.repeat(5000)}` }), 1)
    expect(long.message.length).toBeLessThan(300)
    expect(classifySmtpError(smtpError({ code: 'EENVELOPE' }), 1)).toMatchObject({
      code: 'INVALID_TARGET',
      permanent: true,
    })
  })
})
