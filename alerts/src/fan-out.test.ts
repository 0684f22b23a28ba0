import { DEFAULT_QUIET_HOURS, DEFAULT_RATE_LIMIT, HOUR_MS } from '@skolluft/core'
import type { OutboxRecord, Storage } from '@skolluft/storage'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createFanOut, type FanOut } from './fan-out.ts'
import {
  addUser,
  breachEvent,
  type Fixture,
  LINKS,
  log,
  MASTER_KEY,
  MINUTE_MS,
  offlineEvent,
  openFixture,
  subscribe,
} from './test-support.ts'

/** Tuesday 10 March 2026, 10:00 in Stockholm (UTC+1): a school day, outside the default quiet hours. */
const MORNING = Date.UTC(2026, 2, 10, 9, 0)
/** The same day at 20:00 in Stockholm: inside 18:00–07:00. */
const EVENING = Date.UTC(2026, 2, 10, 19, 0)
/** Wednesday 11 March, 07:00 in Stockholm: the end of that quiet night. */
const NEXT_MORNING = Date.UTC(2026, 2, 11, 6, 0)

describe('fan-out', () => {
  let fixture: Fixture
  let storage: Storage
  let now: number
  let fanOut: FanOut

  /** One user's outbox rows, oldest first. */
  const outbox = async (userId: string): Promise<OutboxRecord[]> =>
    (await storage.alerts.listOutbox({ userId, limit: 100 })).reverse()

  beforeEach(async () => {
    fixture = await openFixture()
    storage = fixture.storage
    now = MORNING
    fanOut = createFanOut({ storage, clock: () => now, links: LINKS, masterKey: MASTER_KEY, log })
  })

  afterEach(async () => {
    await fixture.close()
  })

  it('gives a principal breaches of their own sites only, never device health; staff get all', async () => {
    const anna = await addUser(storage, 'anna@skola.test', 'principal', ['school-a'])
    const bo = await addUser(storage, 'bo@lund.test', 'staff')
    const carl = await addUser(storage, 'carl@lund.test', 'caretaker', ['school-a'])
    // Subscriptions wider than the roles allow (stored directly, not through the API's checks): the fan-out decides.
    await subscribe(storage, anna, { target: 'anna@skola.test', sites: 'all' })
    await subscribe(storage, anna, { topic: 'device-health', target: 'anna@skola.test' })
    await subscribe(storage, bo, { target: 'bo@lund.test' })
    await subscribe(storage, bo, { topic: 'device-health', target: 'bo@lund.test' })
    await subscribe(storage, carl, { target: 'carl@lund.test' })
    await subscribe(storage, carl, { topic: 'device-health', target: 'carl@lund.test' })

    await storage.alerts.appendEvents(
      [breachEvent('school-a', now), breachEvent('preschool-b', now), offlineEvent('school-a', null, now)],
      now,
    )
    expect(await fanOut.run()).toBe(5)

    const annas = await outbox(anna)
    expect(annas.map((r) => [r.siteId, r.status])).toEqual([['school-a', 'pending']])
    expect(annas[0]?.subject).toContain('Skola A')
    expect((await outbox(bo)).map((r) => r.siteId)).toEqual(['school-a', 'preschool-b', 'school-a'])
    // A caretaker gets device health, not breaches.
    expect((await outbox(carl)).map((r) => [r.siteId, r.subject])).toEqual([
      ['school-a', expect.stringContaining('ur drift')],
    ])
    // Fanned out once: a second run finds nothing.
    expect(await storage.alerts.pendingFanOut(10)).toEqual([])
    expect(await fanOut.run()).toBe(0)
  })

  it('follows a principal whose binding moved: the old site no longer reaches them', async () => {
    const anna = await addUser(storage, 'anna@skola.test', 'principal', ['school-a'])
    await subscribe(storage, anna, { target: 'anna@skola.test', sites: ['school-a', 'preschool-b'] })
    await storage.alerts.appendEvents([breachEvent('school-a', now)], now)
    await fanOut.run()
    expect((await outbox(anna)).map((r) => r.siteId)).toEqual(['school-a'])

    await storage.access.updateUser(anna, { sites: ['preschool-b'] })
    now += 10 * MINUTE_MS
    await storage.alerts.appendEvents([breachEvent('school-a', now), breachEvent('preschool-b', now)], now)
    await fanOut.run()
    expect((await outbox(anna)).map((r) => r.siteId)).toEqual(['school-a', 'preschool-b'])
  })

  it('leaves out events below the subscription’s minimum severity', async () => {
    const bo = await addUser(storage, 'bo@lund.test', 'staff')
    await subscribe(storage, bo, { target: 'bo@lund.test', minSeverity: 'alert' })
    await storage.alerts.appendEvents(
      [
        breachEvent('school-a', now, { severity: 'info' }),
        breachEvent('school-a', now, { severity: 'warning' }),
        breachEvent('preschool-b', now, { severity: 'alert' }),
      ],
      now,
    )
    expect(await fanOut.run()).toBe(1)
    expect((await outbox(bo)).map((r) => r.siteId)).toEqual(['preschool-b'])
  })

  it('defers to the end of quiet hours, except urgent events', async () => {
    const bo = await addUser(storage, 'bo@lund.test', 'staff')
    await subscribe(storage, bo, { target: 'bo@lund.test', quietHours: DEFAULT_QUIET_HOURS })
    now = EVENING
    await storage.alerts.appendEvents(
      [breachEvent('school-a', now), breachEvent('preschool-b', now, { urgent: true, severity: 'alert' })],
      now,
    )
    await fanOut.run()
    expect((await outbox(bo)).map((r) => [r.siteId, r.status, r.deliverAfter])).toEqual([
      ['school-a', 'deferred', NEXT_MORNING],
      ['preschool-b', 'pending', EVENING],
    ])

    // A subscription without quiet hours gets everything at once, evening or not.
    const eve = await addUser(storage, 'eve@lund.test', 'staff')
    await subscribe(storage, eve, { target: 'eve@lund.test', quietHours: null })
    await storage.alerts.appendEvents([breachEvent('school-c', now)], now)
    await fanOut.run()
    expect((await outbox(eve)).map((r) => [r.status, r.deliverAfter])).toEqual([['pending', EVENING]])
  })

  it('defers the 7th message within an hour to when the window frees, and never drops one', async () => {
    expect(DEFAULT_RATE_LIMIT).toEqual({ max: 6, windowMs: HOUR_MS })
    const bo = await addUser(storage, 'bo@lund.test', 'staff')
    await subscribe(storage, bo, { target: 'bo@lund.test' })
    const burst = Array.from({ length: 8 }, (_, i) => breachEvent(i % 2 === 0 ? 'school-a' : 'preschool-b', now))
    await storage.alerts.appendEvents(burst, now)
    expect(await fanOut.run()).toBe(8)
    const rows = await outbox(bo)
    expect(rows.map((r) => r.status)).toEqual([...Array(6).fill('pending'), 'deferred', 'deferred'])
    expect(rows.slice(6).map((r) => r.deliverAfter)).toEqual([MORNING + HOUR_MS, MORNING + HOUR_MS])

    // Later in the same hour (a new run, counted from storage): still limited; an urgent one still goes.
    now = MORNING + 20 * MINUTE_MS
    await storage.alerts.appendEvents(
      [breachEvent('school-c', now), breachEvent('school-c', now, { urgent: true, severity: 'alert' })],
      now,
    )
    await fanOut.run()
    const later = (await outbox(bo)).slice(8)
    expect(later.map((r) => [r.status, r.deliverAfter])).toEqual([
      ['deferred', MORNING + HOUR_MS],
      ['pending', now],
    ])

    // Once the hour has passed, messages go out at once again.
    now = MORNING + HOUR_MS + MINUTE_MS
    await storage.alerts.appendEvents([breachEvent('school-a', now)], now)
    await fanOut.run()
    expect((await outbox(bo)).at(-1)).toMatchObject({ status: 'pending', deliverAfter: now })
    expect(await outbox(bo)).toHaveLength(11)
  })

  it('counts the rate limit per channel: in-app notifications do not hold back e-mail', async () => {
    const bo = await addUser(storage, 'bo@lund.test', 'staff')
    await subscribe(storage, bo, { target: 'bo@lund.test' })
    await subscribe(storage, bo, { channel: 'in_app', target: null })
    await storage.alerts.appendEvents(
      Array.from({ length: 6 }, () => breachEvent('school-a', now)),
      now,
    )
    expect(await fanOut.run()).toBe(12)
    const rows = await outbox(bo)
    expect(rows.filter((r) => r.channel === 'email').map((r) => r.status)).toEqual(Array(6).fill('pending'))
    // in_app rows are delivered by being stored.
    expect(rows.filter((r) => r.channel === 'in_app').map((r) => r.status)).toEqual(Array(6).fill('sent'))
    expect(await storage.alerts.unreadCount(bo)).toBe(6)
  })

  it('sends nothing to disabled users or through disabled subscriptions', async () => {
    const bo = await addUser(storage, 'bo@lund.test', 'staff')
    const eve = await addUser(storage, 'eve@lund.test', 'staff')
    await subscribe(storage, bo, { target: 'bo@lund.test' })
    const evesSub = await subscribe(storage, eve, { target: 'eve@lund.test' })
    await storage.access.updateUser(bo, { disabledAt: now })
    await storage.alerts.disableSubscription(evesSub.id, now)
    await storage.alerts.appendEvents([breachEvent('school-a', now)], now)
    expect(await fanOut.run()).toBe(0)
    expect(await outbox(bo)).toEqual([])
    expect(await outbox(eve)).toEqual([])
    // The event is done with all the same (not retried forever).
    expect(await storage.alerts.pendingFanOut(10)).toEqual([])
  })

  it('renders each message in the subscriber’s language, with a signed unsubscribe link', async () => {
    const sv = await addUser(storage, 'sv@lund.test', 'staff')
    const en = await addUser(storage, 'en@lund.test', 'staff')
    const svSub = await subscribe(storage, sv, { target: 'sv@lund.test', language: 'sv' })
    await subscribe(storage, en, { target: 'en@lund.test', language: 'en' })
    await storage.alerts.appendEvents([breachEvent('preschool-b', now)], now)
    await fanOut.run()
    const [svRow] = await outbox(sv)
    const [enRow] = await outbox(en)
    expect(svRow).toMatchObject({ language: 'sv', subject: expect.stringMatching(/^Förskola B: PM2\.5 över /) })
    expect(enRow).toMatchObject({ language: 'en', subject: expect.stringMatching(/^Förskola B: PM2\.5 above /) })
    expect(svRow?.text).toContain('Halten av')
    expect(enRow?.text).toContain('The level of')
    expect(svRow?.html).toContain('lang="sv"')
    expect(enRow?.html).toContain('lang="en"')
    expect(svRow?.text).toContain(`https://skolluft.test/api/v1/unsubscribe/${svSub.id}?token=`)
    expect(svRow?.payload).toMatchObject({ data: { kind: 'opened', siteId: 'preschool-b' } })
  })

  it('fans out no retrospective events', async () => {
    const bo = await addUser(storage, 'bo@lund.test', 'staff')
    await subscribe(storage, bo, { target: 'bo@lund.test' })
    await storage.alerts.appendEvents([breachEvent('school-a', now - 6 * HOUR_MS, { live: false })], now)
    expect(await fanOut.run()).toBe(0)
    expect(await outbox(bo)).toEqual([])
  })
})
