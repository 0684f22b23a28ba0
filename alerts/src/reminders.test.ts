import { AlertMessageData, DEFAULT_REMINDER_INTERVAL_MS, HOUR_MS, type ProfileSelection } from '@skolluft/core'
import type { AlertEventRecord, Storage } from '@skolluft/storage'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { activeRules, createEvaluator, type Evaluator } from './evaluator.ts'
import { createFanOut } from './fan-out.ts'
import { createReminders, type Reminders } from './reminders.ts'
import {
  addUser,
  type Fixture,
  hourAt,
  LINKS,
  log,
  MASTER_KEY,
  MINUTE_MS,
  openFixture,
  subscribe,
  writeHour,
  writeHours,
} from './test-support.ts'

const SITE = 'school-a'
const DAY = '2026-03-10'
const INTERVAL_MS = DEFAULT_REMINDER_INTERVAL_MS

describe('reminders', () => {
  let fixture: Fixture
  let storage: Storage
  let now: number
  let reminders: Reminders

  const evaluatorFor = (selection: ProfileSelection): Evaluator =>
    createEvaluator({ storage, rules: activeRules(selection, DAY), log, clock: () => now })
  const alerting = (): Evaluator => evaluatorFor({ evaluate: ['eea-index'], alert: ['eea-index'] })
  const reminderEvents = async (): Promise<AlertEventRecord[]> =>
    (await storage.alerts.listEvents({ siteId: SITE, limit: 100 })).filter((e) => e.kind === 'reminder').reverse()

  beforeEach(async () => {
    fixture = await openFixture()
    storage = fixture.storage
    now = hourAt(0)
    reminders = createReminders({ storage, clock: () => now })
  })

  afterEach(async () => {
    await fixture.close()
  })

  it('reminds of an open live incident once per interval, and the reminder renders', async () => {
    expect(INTERVAL_MS).toBe(24 * HOUR_MS)
    await writeHours(storage, hourAt(0), [70, 70])
    const opened = hourAt(2) + MINUTE_MS
    now = opened
    await alerting().evaluateSite(SITE, [hourAt(0), hourAt(1)])
    const [incident] = await storage.breaches.listIncidents({ siteId: SITE, limit: 10 })
    expect(incident).toMatchObject({ end: null, retrospective: false })

    now = opened + INTERVAL_MS - 1
    expect(await reminders.check()).toBe(0)
    now = opened + INTERVAL_MS
    expect(await reminders.check()).toBe(1)
    // Checked again in the same interval, and by a restarted service: nothing more.
    now += 2 * HOUR_MS
    expect(await reminders.check()).toBe(0)
    expect(await createReminders({ storage, clock: () => now }).check()).toBe(0)

    now = opened + 2 * INTERVAL_MS
    expect(await reminders.check()).toBe(1)
    expect(await reminders.check()).toBe(0)

    const list = await reminderEvents()
    expect(list.map((e) => [e.incidentId, e.live, e.topic, e.at])).toEqual([
      [incident?.id, true, 'breaches', opened + INTERVAL_MS],
      [incident?.id, true, 'breaches', opened + 2 * INTERVAL_MS],
    ])
    expect(new Set(list.map((e) => e.key)).size).toBe(2)
    for (const e of list) expect(AlertMessageData.safeParse(e.data).data?.kind).toBe('reminder')

    // Subscribers get it like any other breach message.
    const bo = await addUser(storage, 'bo@lund.test', 'staff')
    await subscribe(storage, bo, { target: 'bo@lund.test' })
    await createFanOut({ storage, clock: () => now, links: LINKS, masterKey: MASTER_KEY, log }).run()
    const subjects = (await storage.alerts.listOutbox({ userId: bo, limit: 10 })).map((r) => r.subject)
    expect(subjects.filter((s) => s.includes('fortfarande över'))).toHaveLength(2)
  })

  it('does not remind of an incident whose rule is no longer evaluated (its profile expired or was deselected)', async () => {
    await writeHours(storage, hourAt(0), [70, 70])
    now = hourAt(2) + MINUTE_MS
    await alerting().evaluateSite(SITE, [hourAt(0), hourAt(1)])
    const [incident] = await storage.breaches.listIncidents({ siteId: SITE, limit: 10 })
    expect(incident?.ruleId).toBe('eea-pm25-poor')
    now += INTERVAL_MS
    const otherRules = createReminders({
      storage,
      clock: () => now,
      evaluatedRules: () => new Set(['se-mkn-pm10-day']),
    })
    expect(await otherRules.check()).toBe(0)
    const sameRule = createReminders({ storage, clock: () => now, evaluatedRules: () => new Set(['eea-pm25-poor']) })
    expect(await sameRule.check()).toBe(1)
  })

  it('counts the interval from the last live message: an escalation postpones the next reminder', async () => {
    await writeHours(storage, hourAt(0), [70, 70])
    now = hourAt(2) + MINUTE_MS
    const evaluator = alerting()
    await evaluator.evaluateSite(SITE, [hourAt(0), hourAt(1)])
    // Ten hours later it gets worse (escalates above the "poor" band).
    await writeHour(storage, hourAt(11), 95)
    const escalated = hourAt(12) + MINUTE_MS
    now = escalated
    await evaluator.evaluateSite(SITE, [hourAt(11)])

    now = hourAt(2) + MINUTE_MS + INTERVAL_MS
    expect(await reminders.check()).toBe(0)
    now = escalated + INTERVAL_MS
    expect(await reminders.check()).toBe(1)
  })

  it('never reminds of retrospective, closed or non-alerting incidents', async () => {
    // Retrospective: hour 1 arrives 6 h late, and nothing after it, so the incident stays open.
    await writeHour(storage, hourAt(0), 70)
    now = hourAt(7) + MINUTE_MS
    await writeHour(storage, hourAt(1), 70, { receivedAt: now })
    await alerting().evaluateSite(SITE, [hourAt(0), hourAt(1)])
    // Another site: a live incident that opened and closed, evaluated hour by hour as the data came.
    const evaluator = alerting()
    for (const [i, mean] of [70, 70, 30, 30, 30].entries()) {
      await writeHour(storage, hourAt(2 + i), mean, { siteId: 'preschool-b' })
      now = hourAt(3 + i) + MINUTE_MS
      await evaluator.evaluateSite('preschool-b', [hourAt(2 + i)])
    }
    // A third: open and live, but of a profile that is evaluated without alerting.
    await writeHours(storage, hourAt(5), [70, 70], { siteId: 'school-c' })
    await evaluatorFor({ evaluate: ['eea-index'], alert: [] }).evaluateSite('school-c', [hourAt(5), hourAt(6)])

    const all = await storage.breaches.listIncidents({ limit: 10 })
    expect(all.map((i) => [i.siteId, i.retrospective, i.end === null])).toEqual(
      expect.arrayContaining([
        ['school-a', true, true],
        ['preschool-b', false, false],
        ['school-c', false, true],
      ]),
    )
    for (let day = 1; day <= 3; day++) {
      now = hourAt(7) + day * INTERVAL_MS
      expect(await reminders.check()).toBe(0)
    }
    const everywhere = await storage.alerts.listEvents({ limit: 100 })
    expect(everywhere.filter((e) => e.kind === 'reminder')).toEqual([])
  })
})
