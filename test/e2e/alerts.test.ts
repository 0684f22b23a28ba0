import { type AlertsService, createEmailChannel, createLinks, startAlerts } from '@skolluft/alerts'
import { deviceTopic, HOUR_MS } from '@skolluft/core'
import { type Ingest, startIngest } from '@skolluft/ingest'
import { ALERTS_KEY_BYTES, generateSecret, hashSecret, silentLogger } from '@skolluft/runtime'
import { startSmtpServer, type TestSmtpServer, waitFor } from '@skolluft/testkit'
import mqtt from 'mqtt'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { subscribeByEmail } from '../support/alerts.ts'
import { addTestDevice, startTestPlatform, type TestPlatform } from '../support/platform.ts'

/**
 * The live alert path with real parts: devices publish over MQTT to the real gateway, the real ingest commits and
 * announces the commit, the alerts service evaluates, fans out and sends e-mail to a real SMTP server.
 */
const KEY = Buffer.alloc(ALERTS_KEY_BYTES, 3)

describe('alerts end to end', () => {
  let platform: TestPlatform
  let smtp: TestSmtpServer
  let ingest: Ingest
  let alerts: AlertsService | undefined
  let email: ReturnType<typeof createEmailChannel>

  beforeEach(async () => {
    platform = await startTestPlatform()
    smtp = await startSmtpServer()
    const password = generateSecret()
    await platform.storage.registry.upsertServiceAccount({
      username: 'svc.alerts',
      secretHash: await hashSecret(password),
      role: 'alerts',
    })
    ingest = await startIngest({
      log: silentLogger(),
      storage: platform.storage,
      mqtt: { url: platform.mqttUrl, ...platform.ingestCredential },
    })
    email = createEmailChannel({ host: smtp.host, port: smtp.port, secure: false, from: 'skolluft <larm@test>' })
    alerts = await startAlerts({
      log: silentLogger(),
      storage: platform.storage,
      mqtt: { url: platform.mqttUrl, username: 'svc.alerts', password },
      selection: { evaluate: ['eea-index'], alert: ['eea-index'] },
      channels: { email },
      links: createLinks('https://skolluft.test'),
      masterKey: KEY,
      leaseMs: 30_000,
    })
  })

  afterEach(async () => {
    await alerts?.close()
    await ingest.close()
    email.close()
    await smtp.close()
    await platform.close()
  })

  const subscribe = (role: 'principal' | 'staff' | 'caretaker', sites: string[] | 'all', mail: string) =>
    subscribeByEmail(platform.storage, KEY, role, sites, mail)

  it('two poor hours of PM2.5 at a school open one incident and send one e-mail to its principal only', async () => {
    const device = await addTestDevice(platform.storage, 'dev-a', 'site-a')
    await platform.storage.registry.setDeviceInterval('dev-a', 600)
    await subscribe('principal', ['site-a'], 'rektor.a@skola.test')
    await subscribe('principal', ['site-b'], 'rektor.b@skola.test')
    await subscribe('caretaker', ['site-a'], 'vaktmastare@skola.test')

    // The two hours before the current one, complete (6 readings of a 10-minute device each): final at once.
    const hourNow = Math.floor(Date.now() / HOUR_MS) * HOUR_MS
    const readings = []
    for (const hour of [hourNow - 2 * HOUR_MS, hourNow - HOUR_MS]) {
      for (let i = 0; i < 6; i++) {
        readings.push({
          ts: new Date(hour + i * 600_000 + 30_000).toISOString(),
          pm25: 70 + i,
          pm10: 90 + i,
          rh: 60 + i,
        })
      }
    }
    const client = await mqtt.connectAsync(platform.mqttUrl, {
      clientId: device.deviceId,
      username: device.deviceId,
      password: device.password,
    })
    try {
      for (const r of readings) {
        await client.publishAsync(deviceTopic('dev-a', 'telemetry'), JSON.stringify({ v: 1, ...r }), { qos: 1 })
      }
    } finally {
      await client.endAsync()
    }

    await waitFor(() => smtp.messages.length >= 1, 'the first e-mail', { timeoutMs: 15_000 })
    const incidents = await platform.storage.breaches.listIncidents({ siteId: 'site-a', limit: 10 })
    expect(incidents).toHaveLength(1)
    expect(incidents[0]).toMatchObject({
      ruleId: 'eea-pm25-poor',
      profileId: 'eea-index',
      start: hourNow - 2 * HOUR_MS,
      openedAt: hourNow - HOUR_MS,
      end: null,
      retrospective: false,
    })
    expect(incidents[0]?.peak).toBeCloseTo(72.5, 6)
    // Let any further (wrong) message arrive before counting.
    await alerts?.idle()
    await new Promise((r) => setTimeout(r, 500))
    expect(smtp.messages.map((m) => m.to)).toEqual([['rektor.a@skola.test']])
    const mail = smtp.messages[0]
    expect(mail?.subject).toContain('Testförskolan A')
    expect(mail?.text).toContain('50')
    expect(mail?.headers['list-unsubscribe']).toContain('https://skolluft.test/api/v1/unsubscribe/')
    const outbox = await platform.storage.alerts.listOutbox({ limit: 10 })
    expect(outbox.map((o) => o.status)).toEqual(['sent'])
    expect(await platform.storage.alerts.listAttempts(outbox[0]?.id ?? 0)).toMatchObject([{ ok: true }])
  })
})
