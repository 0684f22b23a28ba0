import { setTimeout as sleep } from 'node:timers/promises'
import { HOUR_MS } from '@skolluft/core'
import { ALERTS_KEY_BYTES } from '@skolluft/runtime'
import type { NewAlertEvent, OutboxRecord } from '@skolluft/storage'
import { startSmtpServer, type TestSmtpServer, waitFor } from '@skolluft/testkit'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { ensureServiceCredentials } from '../../cli/src/service-credentials.ts'
import { subscribeByEmail } from '../support/alerts.ts'
import { type HoldingSmtpServer, startHoldingSmtpServer } from '../support/holding-smtp.ts'
import { spawnCli, startTestPlatform, type TestPlatform, waitForExit } from '../support/platform.ts'

/**
 * The durable outbox across a crash (issue 4 "Proof"): `skolluft alerts` runs as a real child process on the
 * platform's data directory and broker, and is killed with SIGKILL while alerts are pending and in flight. After a
 * restart every alert is delivered exactly once, to exactly the subscribers it matches.
 *
 * The events are appended to storage directly (as the evaluator's commit would); the child's fan-out turns them
 * into outbox rows and its dispatcher delivers them. They are urgent (an 'alert'-severity rule), so neither quiet
 * hours nor the per-recipient rate limit defer them: every message is due at once.
 *
 * Lease and SMTP timeout are short (ALERTS_LEASE_MS 3 s > SMTP_TIMEOUT_MS 2 s) so the restarted child takes over
 * the killed child's claimed rows within seconds; with the defaults (120 s / 60 s) it would be the same, slower.
 */
const KEY = Buffer.alloc(ALERTS_KEY_BYTES, 5)
const LEASE_MS = 3_000
const SMTP_TIMEOUT_MS = 2_000
/** Live alert events pending at the kill. */
const EVENTS = 20

describe('alerts service crash (SIGKILL) with alerts pending', () => {
  let platform: TestPlatform
  const children: ReturnType<typeof spawnCli>[] = []
  const servers: { close(): Promise<void> }[] = []

  beforeEach(async () => {
    platform = await startTestPlatform()
    // The data directory's service-credentials.json, as the gateway creates it: the child logs in with svc.alerts.
    await ensureServiceCredentials(platform.dataDir, platform.storage.registry)
  })

  afterEach(async () => {
    for (const child of children.splice(0)) {
      child.kill('SIGKILL')
      await waitForExit(child)
    }
    for (const server of servers.splice(0)) await server.close()
    await platform.close()
  })

  function startAlertsProcess(smtpPort: number) {
    const child = spawnCli(['alerts'], {
      DATA_DIR: platform.dataDir,
      MQTT_URL: platform.mqttUrl,
      SMTP_URL: `smtp://127.0.0.1:${smtpPort}`,
      MAIL_FROM: 'skolluft <larm@skolluft.test>',
      ALERTS_KEY: KEY.toString('base64url'),
      ALERTS_LEASE_MS: String(LEASE_MS),
      SMTP_TIMEOUT_MS: String(SMTP_TIMEOUT_MS),
      PUBLIC_URL: 'https://skolluft.test',
    })
    children.push(child)
    return child
  }

  async function kill(child: ReturnType<typeof spawnCli>): Promise<void> {
    child.kill('SIGKILL')
    await waitForExit(child)
    expect(child.signalCode).toBe('SIGKILL')
  }

  /** Waits for `check`; on a timeout the children's output is in the error, for whoever reads the failure. */
  async function waitWithOutput<T>(check: () => T | Promise<T>, what: string, timeoutMs: number) {
    try {
      return await waitFor(check, what, { timeoutMs, intervalMs: 5 })
    } catch (error) {
      const output = children.map((c) => c.output().slice(-3000)).join('\n---\n')
      throw new Error(`${String(error)}\n${output}`)
    }
  }

  const subscribe = (role: 'principal' | 'staff' | 'caretaker', sites: string[] | 'all', mail: string) =>
    subscribeByEmail(platform.storage, KEY, role, sites, mail)

  /** `count` live, urgent 'opened' events of an alert-severity NO2 rule at site-a, one per hour before now. */
  function alertEvents(count: number): NewAlertEvent[] {
    const hourNow = Math.floor(Date.now() / HOUR_MS) * HOUR_MS
    return Array.from({ length: count }, (_, i) => {
      const at = hourNow - (count - i) * HOUR_MS
      return {
        key: `crash-test:${i}`,
        kind: 'opened',
        topic: 'breaches',
        siteId: 'site-a',
        deviceId: null,
        incidentId: null,
        severity: 'alert',
        urgent: true,
        live: true,
        at,
        data: {
          kind: 'opened',
          siteId: 'site-a',
          siteName: 'Testförskolan A (demo)',
          pollutant: 'no2',
          ruleId: 'eu2008-no2-alert',
          profileName: 'EU Directive 2008/50/EC limit values',
          legal: true,
          period: 'hour',
          threshold: 400,
          value: 410 + i,
          valueAt: at,
          peak: 410 + i,
          peakAt: at,
          start: at - 2 * HOUR_MS,
          severity: 'alert',
        },
      }
    })
  }

  const countBy = <T>(items: readonly T[], key: (item: T) => string) => {
    const counts = new Map<string, number>()
    for (const item of items) counts.set(key(item), (counts.get(key(item)) ?? 0) + 1)
    return counts
  }

  async function allOutbox(): Promise<OutboxRecord[]> {
    return platform.storage.alerts.listOutbox({ limit: 1000 })
  }

  /** Every row sent, with exactly one successful attempt logged (failed ones before it are allowed). */
  async function expectEachSentOnce(rows: readonly OutboxRecord[]): Promise<void> {
    expect(rows.map((r) => r.status).filter((s) => s !== 'sent')).toEqual([])
    for (const row of rows) {
      const attempts = await platform.storage.alerts.listAttempts(row.id)
      expect(attempts.filter((a) => a.ok)).toHaveLength(1)
      expect(attempts.at(-1)?.ok).toBe(true)
    }
  }

  it('delivers every pending and in-flight alert exactly once after a kill and restart', {
    timeout: 120_000,
  }, async () => {
    // The mail server takes each message and never answers (a hung relay): deliveries stay in flight.
    const smtp: TestSmtpServer = await startSmtpServer({ mode: 'hang', stage: 'data' })
    servers.push(smtp)
    await subscribe('principal', ['site-a'], 'rektor.a1@skola.test')
    await subscribe('principal', ['site-a'], 'rektor.a2@skola.test')
    await subscribe('staff', 'all', 'miljo@kommun.test')
    await subscribe('principal', ['site-b'], 'rektor.b@skola.test')
    await subscribe('caretaker', ['site-a'], 'vaktmastare@skola.test')
    const matching = ['miljo@kommun.test', 'rektor.a1@skola.test', 'rektor.a2@skola.test']
    expect(await platform.storage.alerts.appendEvents(alertEvents(EVENTS), Date.now())).toBe(EVENTS)

    const first = startAlertsProcess(smtp.port)
    // Fanned out (one row per event and matching subscription) and the first deliveries under way.
    const atKill = await waitWithOutput(
      async () => {
        const rows = await allOutbox()
        return rows.length === EVENTS * matching.length &&
          rows.some((r) => r.status === 'sending') &&
          smtp.connections() > 0
          ? rows
          : undefined
      },
      'the fan-out and the first deliveries',
      30_000,
    )
    await kill(first)
    const statusAtKill = countBy(atKill, (r) => r.status)
    expect(smtp.messages).toHaveLength(0)
    // Claimed and in flight when killed; the rest queued (the dispatcher claims 20 rows at a time: 20 + 40).
    expect(statusAtKill.get('sending') ?? 0).toBeGreaterThan(0)
    expect((statusAtKill.get('sending') ?? 0) + (statusAtKill.get('pending') ?? 0)).toBe(EVENTS * matching.length)

    smtp.setMode('accept')
    const restarted = Date.now()
    const second = startAlertsProcess(smtp.port)
    // In-flight rows are taken over when their lease runs out; a row whose send timed out before the kill waits for
    // its first retry (30 s): both within the timeout.
    const rows = await waitWithOutput(
      async () => {
        const current = await allOutbox()
        return current.every((r) => r.status === 'sent') ? current : undefined
      },
      'every outbox row to be sent',
      60_000,
    )
    const deliveredMs = Date.now() - restarted
    // Any stray repeat would land now (the child keeps polling every 5 s and leases are 3 s).
    await sleep(LEASE_MS + 500)

    expect(rows).toHaveLength(EVENTS * matching.length)
    expect(smtp.messages).toHaveLength(EVENTS * matching.length)
    const perMessageId = countBy(smtp.messages, (m) => m.headers['message-id'] ?? '')
    expect([...perMessageId.values()].every((n) => n === 1)).toBe(true)
    expect([...perMessageId.keys()].sort()).toEqual(rows.map((r) => r.messageId).sort())
    const perRecipient = countBy(
      smtp.messages.flatMap((m) => m.to),
      (to) => to,
    )
    expect(Object.fromEntries(perRecipient)).toEqual(Object.fromEntries(matching.map((m) => [m, EVENTS])))
    // One row per (event, subscription), each for a different event per recipient.
    expect(new Set(rows.map((r) => `${r.eventId}:${r.subscriptionId}`)).size).toBe(rows.length)
    await expectEachSentOnce(rows)

    second.kill('SIGTERM')
    expect(await waitForExit(second)).toBe(0)
    console.info(
      `alerts crash: ${EVENTS} events × ${matching.length} subscribers; at kill ${JSON.stringify(Object.fromEntries(statusAtKill))}; ` +
        `all sent ${deliveredMs} ms after the restart`,
    )
  })

  it('repeats a message the server stored before the killed sender could record it with the same Message-ID', {
    timeout: 120_000,
  }, async () => {
    // At-least-once, not exactly once, in this one window; the repeat is recognisable by its Message-ID.
    const smtp: HoldingSmtpServer = await startHoldingSmtpServer('hold')
    servers.push(smtp)
    await subscribe('principal', ['site-a'], 'rektor.a1@skola.test')
    const events = 6
    expect(await platform.storage.alerts.appendEvents(alertEvents(events), Date.now())).toBe(events)

    const first = startAlertsProcess(smtp.port)
    await waitWithOutput(() => smtp.held() > 0, 'the server to hold a stored message', 30_000)
    await kill(first)
    const storedBeforeKill = smtp.messages.map((m) => m.messageId)
    expect(storedBeforeKill.length).toBeGreaterThan(0)

    smtp.setMode('accept')
    const second = startAlertsProcess(smtp.port)
    const rows = await waitWithOutput(
      async () => {
        const current = await allOutbox()
        return current.length === events && current.every((r) => r.status === 'sent') ? current : undefined
      },
      'every outbox row to be sent',
      60_000,
    )
    await sleep(LEASE_MS + 500)

    // Each held message arrived twice with one Message-ID; every other message once.
    const perMessageId = countBy(smtp.messages, (m) => m.messageId)
    expect([...perMessageId.keys()].sort()).toEqual(rows.map((r) => r.messageId).sort())
    for (const row of rows) {
      expect(perMessageId.get(row.messageId)).toBe(storedBeforeKill.includes(row.messageId) ? 2 : 1)
    }
    expect(smtp.messages).toHaveLength(events + storedBeforeKill.length)
    for (const id of storedBeforeKill) {
      const copies = smtp.messages.filter((m) => m.messageId === id)
      expect(copies[1]?.subject).toBe(copies[0]?.subject)
      expect(copies[1]?.text).toBe(copies[0]?.text)
    }
    await expectEachSentOnce(rows)

    second.kill('SIGTERM')
    expect(await waitForExit(second)).toBe(0)
    console.info(
      `alerts crash (stored, unacknowledged): ${events} messages, ${storedBeforeKill.length} stored by the server ` +
        `before the kill and received again with the same Message-ID; ${smtp.messages.length} received in all`,
    )
  })
})
