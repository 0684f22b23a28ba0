import { connect, type Socket } from 'node:net'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { decodeEncodedWords, parseMail, startSmtpServer, type TestSmtpServer } from './smtp.ts'

/** A minimal line-based SMTP client, so these tests exercise the server without any mail library. */
interface Dialogue {
  /** Sends one line (or nothing) and resolves with the next complete reply, e.g. '250 OK'. */
  command(line: string | null): Promise<string>
  close(): void
}

/** The promise's value, or null if it does not settle within `ms`. */
function within<T>(promise: Promise<T>, ms: number): Promise<T | null> {
  return Promise.race([promise, new Promise<null>((resolve) => setTimeout(() => resolve(null), ms))])
}

async function dial(port: number): Promise<Dialogue> {
  const socket: Socket = connect(port, '127.0.0.1')
  socket.setEncoding('utf8')
  let buffer = ''
  const replies: string[] = []
  const waiters: ((reply: string) => void)[] = []
  socket.on('data', (data: string) => {
    buffer += data
    // A reply ends with a line "NNN text" (a space after the code); "NNN-text" lines continue it (RFC 5321 §4.2.1).
    for (let m = /^(\d{3}) .*\r\n/m.exec(buffer); m !== null; m = /^(\d{3}) .*\r\n/m.exec(buffer)) {
      const end = m.index + m[0].length
      const reply = buffer.slice(m.index, end).trim()
      buffer = buffer.slice(end)
      const waiter = waiters.shift()
      if (waiter === undefined) replies.push(reply)
      else waiter(reply)
    }
  })
  socket.on('error', () => undefined)
  const next = () =>
    new Promise<string>((resolve) => {
      const queued = replies.shift()
      if (queued === undefined) waiters.push(resolve)
      else resolve(queued)
    })
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()))
  return {
    command(line) {
      if (line !== null) socket.write(`${line}\r\n`)
      return next()
    },
    close() {
      socket.destroy()
    },
  }
}

const MESSAGE = [
  'From: Skolluft <larm@skolluft.test>',
  'To: rektor@skola.test',
  'Subject: =?UTF-8?Q?H=C3=B6ga_halter_vid?=',
  ' =?UTF-8?Q?_=C3=96stra_Torn?=',
  'Message-ID: <o1.abc@skolluft>',
  'Content-Type: multipart/alternative; boundary="b1"',
  '',
  'preamble',
  '--b1',
  'Content-Type: text/plain; charset=utf-8',
  'Content-Transfer-Encoding: quoted-printable',
  '',
  'PM2.5 var 38 =C2=B5g/m=C2=B3, en l=',
  '=C3=A5ng rad.',
  '--b1',
  'Content-Type: text/html; charset=utf-8',
  'Content-Transfer-Encoding: base64',
  '',
  Buffer.from('<p>Östra Torn</p>').toString('base64'),
  '--b1--',
  'epilogue',
  '',
].join('\r\n')

describe('parseMail', () => {
  it('unfolds headers, decodes encoded words and the quoted-printable and base64 parts', () => {
    const mail = parseMail(MESSAGE)
    expect(mail.headers.subject).toBe('Höga halter vid Östra Torn')
    expect(mail.headers['message-id']).toBe('<o1.abc@skolluft>')
    expect(mail.text).toBe('PM2.5 var 38 µg/m³, en lång rad.')
    expect(mail.html).toBe('<p>Östra Torn</p>')
  })

  it('reads a single-part 8bit body and nested multiparts', () => {
    expect(parseMail('Subject: hej\r\n\r\nåäö\r\n').text).toBe('åäö\r\n')
    const nested = [
      'Content-Type: multipart/mixed; boundary=outer',
      '',
      '--outer',
      'Content-Type: multipart/alternative; boundary=inner',
      '',
      '--inner',
      'Content-Type: text/plain',
      '',
      'plain',
      '--inner--',
      '--outer--',
      '',
    ].join('\r\n')
    expect(parseMail(nested).text).toBe('plain')
  })

  it('decodes B-encoded words and leaves plain text alone', () => {
    expect(decodeEncodedWords(`=?utf-8?B?${Buffer.from('Överskridande').toString('base64')}?= idag`)).toBe(
      'Överskridande idag',
    )
    expect(decodeEncodedWords('List-Unsubscribe=One-Click')).toBe('List-Unsubscribe=One-Click')
  })
})

describe('startSmtpServer', () => {
  let smtp: TestSmtpServer
  let client: Dialogue | null

  beforeEach(async () => {
    smtp = await startSmtpServer()
    client = null
  })

  afterEach(async () => {
    client?.close()
    await smtp.close()
  })

  async function open(): Promise<Dialogue> {
    const c = await dial(smtp.port)
    client = c
    expect(await c.command(null)).toMatch(/^220 /)
    expect(await c.command('EHLO test.local')).toMatch(/^250 /)
    return c
  }

  async function transaction(c: Dialogue): Promise<{ rcpt: string; data: string | null }> {
    expect(await c.command('MAIL FROM:<larm@skolluft.test>')).toMatch(/^250 /)
    const rcpt = await c.command('RCPT TO:<rektor@skola.test>')
    if (!rcpt.startsWith('250')) return { rcpt, data: null }
    expect(await c.command('DATA')).toMatch(/^354 /)
    return { rcpt, data: await c.command(`${MESSAGE}.`) }
  }

  it('records accepted messages with envelope, headers and parts', async () => {
    const c = await open()
    expect(await transaction(c)).toMatchObject({
      rcpt: expect.stringMatching(/^250/),
      data: expect.stringMatching(/^250/),
    })
    expect(smtp.connections()).toBe(1)
    expect(smtp.messages).toHaveLength(1)
    expect(smtp.messages[0]).toMatchObject({
      from: 'larm@skolluft.test',
      to: ['rektor@skola.test'],
      subject: 'Höga halter vid Östra Torn',
      text: 'PM2.5 var 38 µg/m³, en lång rad.',
      html: '<p>Östra Torn</p>',
      authUser: null,
    })
    expect(smtp.messages[0]?.raw).toContain('Message-ID: <o1.abc@skolluft>')
  })

  it('refuses once with failNext, then follows the mode', async () => {
    const c = await open()
    smtp.failNext(550, 'rcpt')
    expect((await transaction(c)).rcpt).toMatch(/^550 /)
    expect(await c.command('RSET')).toMatch(/^250 /)
    smtp.failNext(452, 'data')
    expect((await transaction(c)).data).toMatch(/^452 /)
    expect((await transaction(c)).data).toMatch(/^250 /)
    expect(smtp.messages).toHaveLength(1)
  })

  it('rejects and tempfails in reject and tempfail modes', async () => {
    const c = await open()
    smtp.setMode('reject', 'rcpt')
    expect((await transaction(c)).rcpt).toMatch(/^550 /)
    expect(await c.command('RSET')).toMatch(/^250 /)
    smtp.setMode('tempfail', 'data')
    expect((await transaction(c)).data).toMatch(/^451 /)
    expect(smtp.messages).toHaveLength(0)
  })

  it('hangs without replying, and close() releases the session promptly', async () => {
    const c = await open()
    smtp.setMode('hang', 'data')
    expect(await c.command('MAIL FROM:<larm@skolluft.test>')).toMatch(/^250 /)
    expect(await c.command('RCPT TO:<rektor@skola.test>')).toMatch(/^250 /)
    expect(await c.command('DATA')).toMatch(/^354 /)
    const pending = c.command(`${MESSAGE}.`)
    expect(await within(pending, 150)).toBeNull()
    const started = Date.now()
    await smtp.close()
    expect(Date.now() - started).toBeLessThan(2_000)
    expect(await pending).toMatch(/^421 /)
  })
})
