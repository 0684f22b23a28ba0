import {
  AlertMessageData,
  HOUR_MS,
  PROFILES,
  type ProfileSelection,
  profileById,
  type ThresholdProfile,
} from '@skolluft/core'
import type { AlertEventRecord, IncidentRecord, Storage } from '@skolluft/storage'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { type ActiveRule, activeRules, createEvaluator, type Evaluator } from './evaluator.ts'
import { type Fixture, hourAt, log, MINUTE_MS, openFixture, writeHour, writeHours } from './test-support.ts'

const EEA = profileById('eea-index')
if (EEA === undefined) throw new Error('the eea-index profile is missing')
const EEA_ONLY: ProfileSelection = { evaluate: ['eea-index'], alert: ['eea-index'] }
const DAY = '2026-03-10'
const SITE = 'school-a'

describe('evaluator (EEA PM2.5 rule: > 50 µg/m³ for 2 h opens, ≤ 40 for 3 h closes)', () => {
  let fixture: Fixture
  let storage: Storage
  let now: number
  let evaluator: Evaluator

  const evaluatorFor = (rules: readonly ActiveRule[]): Evaluator =>
    createEvaluator({ storage, rules, log, clock: () => now })

  const incidents = (): Promise<IncidentRecord[]> => storage.breaches.listIncidents({ siteId: SITE, limit: 100 })
  const events = async (): Promise<AlertEventRecord[]> =>
    (await storage.alerts.listEvents({ siteId: SITE, limit: 100 })).reverse()
  const kinds = async (): Promise<string[]> => (await events()).map((e) => e.kind)

  /** Writes hour i and evaluates it one minute after it ended, as the service does when the hour completes. */
  async function hourByHour(first: number, means: readonly number[]): Promise<void> {
    for (const [i, mean] of means.entries()) {
      const t = hourAt(first + i)
      await writeHour(storage, t, mean)
      now = t + HOUR_MS + MINUTE_MS
      await evaluator.evaluateSite(SITE, [t])
    }
  }

  beforeEach(async () => {
    fixture = await openFixture()
    storage = fixture.storage
    now = hourAt(0)
    evaluator = evaluatorFor(activeRules(EEA_ONLY, DAY))
  })

  afterEach(async () => {
    await fixture.close()
  })

  it('needs two breaching hours in a row: one does not open an incident, two do (live, with profile version)', async () => {
    await writeHours(storage, hourAt(0), [70, 20])
    now = hourAt(2) + MINUTE_MS
    await evaluator.evaluateSite(SITE, [hourAt(0), hourAt(1)])
    expect(await incidents()).toEqual([])
    expect(await events()).toEqual([])

    await writeHours(storage, hourAt(2), [70, 72])
    now = hourAt(4) + MINUTE_MS
    const result = await evaluator.evaluateSite(SITE, [hourAt(2), hourAt(3)])
    expect(result).toEqual({ events: 1, incidentsSaved: 1 })

    const [incident, ...more] = await incidents()
    expect(more).toEqual([])
    expect(incident).toMatchObject({
      siteId: SITE,
      pollutant: 'pm25',
      ruleId: 'eea-pm25-poor',
      profileId: 'eea-index',
      profileVersion: EEA.version,
      severity: 'warning',
      threshold: 50,
      start: hourAt(2),
      openedAt: hourAt(3),
      end: null,
      peak: 72,
      peakAt: hourAt(3),
      retrospective: false,
    })
    const [opened, ...others] = await events()
    expect(others).toEqual([])
    expect(opened).toMatchObject({
      kind: 'opened',
      topic: 'breaches',
      siteId: SITE,
      incidentId: incident?.id,
      severity: 'warning',
      urgent: false,
      live: true,
      at: hourAt(3),
      fannedOutAt: null,
    })
    // The fan-out renders exactly this data: it must be a valid message.
    const data = AlertMessageData.safeParse(opened?.data)
    expect(data.success).toBe(true)
    expect(data.data).toMatchObject({ kind: 'opened', siteName: 'Skola A', threshold: 50, value: 72 })
  })

  it('keeps one incident while values hover around the limit and closes only after 3 h at ≤ 0.8 × the limit', async () => {
    // 41 is below the limit but above the clear level (40): it resets the clear count like the 55 and the 52.
    await hourByHour(0, [70, 70, 45, 55, 41, 38, 52, 38, 40])
    const open = await incidents()
    expect(open).toHaveLength(1)
    expect(open[0]).toMatchObject({ start: hourAt(0), openedAt: hourAt(1), end: null, peak: 70, peakAt: hourAt(0) })
    expect(await kinds()).toEqual(['opened'])

    await hourByHour(9, [38])
    const closed = await incidents()
    expect(closed).toHaveLength(1)
    expect(closed[0]).toMatchObject({ id: open[0]?.id, end: hourAt(7), closedAt: hourAt(9) })
    expect(await kinds()).toEqual(['opened', 'closed'])
    const last = (await events()).at(-1)
    expect(last).toMatchObject({ kind: 'closed', live: true, at: hourAt(9) })
    expect(AlertMessageData.safeParse(last?.data).success).toBe(true)

    // A new breach after the close is a new incident.
    await hourByHour(10, [80, 80])
    const all = await incidents()
    expect(all).toHaveLength(2)
    expect(all[0]).toMatchObject({ start: hourAt(10), end: null })
  })

  it('does not evaluate an hour before it is final (partial current hour), and does once it is', async () => {
    await writeHour(storage, hourAt(0), 70)
    // Three of four samples: valid (75 %), but the fourth may still come.
    await writeHour(storage, hourAt(1), 70, { samples: 3 })
    now = hourAt(1) + 50 * MINUTE_MS
    await evaluator.evaluateSite(SITE, [hourAt(0), hourAt(1)])
    expect(await incidents()).toEqual([])

    // The hour has ended, but the grace for late samples has not.
    now = hourAt(2) + 4 * MINUTE_MS
    await evaluator.evaluateSite(SITE, [hourAt(1)])
    expect(await incidents()).toEqual([])

    now = hourAt(2) + 6 * MINUTE_MS
    await evaluator.evaluateSite(SITE, [hourAt(1)])
    const [incident] = await incidents()
    expect(incident).toMatchObject({ start: hourAt(0), openedAt: hourAt(1), retrospective: false })
    expect(await events()).toMatchObject([{ kind: 'opened', live: true }])
  })

  it('records an incident that late data reveals 6 h later as retrospective, with events that are not live', async () => {
    // Hour 1 is missing at first (the device buffered it); the rest is clean.
    await writeHour(storage, hourAt(0), 70)
    await writeHours(storage, hourAt(2), [20, 20, 20, 20, 20])
    now = hourAt(7) + MINUTE_MS
    await evaluator.evaluateSite(SITE, [0, 2, 3, 4, 5, 6].map(hourAt))
    expect(await incidents()).toEqual([])

    await writeHour(storage, hourAt(1), 70, { receivedAt: now })
    await evaluator.evaluateSite(SITE, [hourAt(1)])
    const [incident, ...more] = await incidents()
    expect(more).toEqual([])
    expect(incident).toMatchObject({
      start: hourAt(0),
      openedAt: hourAt(1),
      end: hourAt(2),
      closedAt: hourAt(4),
      retrospective: true,
    })
    const stored = await events()
    expect(stored.map((e) => [e.kind, e.live])).toEqual([
      ['opened', false],
      ['closed', false],
    ])
    expect(await storage.alerts.pendingFanOut(10)).toEqual([])
  })

  it('excludes suspect hours: RH > 90 % opens no PM incident; the held-back breach is one maintenance event', async () => {
    await writeHours(storage, hourAt(0), [70, 70], { rh: 95 })
    now = hourAt(2) + MINUTE_MS
    await evaluator.evaluateSite(SITE, [hourAt(0), hourAt(1)])
    expect(await incidents()).toEqual([])
    // Reference §5.2: a breach suppressed by a suspect QC state raises a maintenance ticket instead.
    const [held, ...others] = await events()
    expect(others).toEqual([])
    expect(held).toMatchObject({ kind: 'device-quality', topic: 'device-health', live: true, at: hourAt(1) })
    expect(held?.data).toMatchObject({ issue: 'high_humidity', pollutant: 'pm25', since: hourAt(0) })
    expect(AlertMessageData.safeParse(held?.data).success).toBe(true)
    // Humid hours without a breach behind them are weather, not news: nothing more, however often evaluated.
    await writeHours(storage, hourAt(4), [8, 8], { rh: 97 })
    now = hourAt(6) + MINUTE_MS
    await evaluator.evaluateSite(SITE, [hourAt(0), hourAt(1), hourAt(4), hourAt(5)])
    expect(await events()).toHaveLength(1)

    // The same PM2.5 in dry air counts: the run starts after the humid hours, not with them.
    await writeHours(storage, hourAt(2), [70, 70], { rh: 60 })
    now = hourAt(4) + MINUTE_MS
    await evaluator.evaluateSite(SITE, [hourAt(2), hourAt(3)])
    const [incident, ...more] = await incidents()
    expect(more).toEqual([])
    expect(incident).toMatchObject({ start: hourAt(2), openedAt: hourAt(3) })
  })

  it('excludes a stuck sensor (flat line) and raises one device-quality maintenance event instead', async () => {
    await writeHours(storage, hourAt(0), [70, 70], { flat: true })
    now = hourAt(2) + MINUTE_MS
    await evaluator.evaluateSite(SITE, [hourAt(0), hourAt(1)])
    expect(await incidents()).toEqual([])
    const [quality, ...more] = await events()
    expect(more).toEqual([])
    expect(quality).toMatchObject({
      kind: 'device-quality',
      topic: 'device-health',
      siteId: SITE,
      incidentId: null,
      live: true,
      at: hourAt(0),
    })
    expect(quality?.data).toMatchObject({ kind: 'device-quality', issue: 'stuck', pollutant: 'pm25', since: hourAt(0) })
    expect(AlertMessageData.safeParse(quality?.data).success).toBe(true)

    // At most one per site, issue and day, however often the day is evaluated and however long the run grows.
    await writeHour(storage, hourAt(2), 70, { flat: true })
    now = hourAt(3) + MINUTE_MS
    await evaluator.evaluateSite(SITE, [hourAt(1), hourAt(2)])
    await evaluator.evaluateSite(SITE, [hourAt(0), hourAt(1), hourAt(2)])
    expect(await kinds()).toEqual(['device-quality'])
    expect(await incidents()).toEqual([])
  })

  it('adds no events when the same data is evaluated twice, also by a new evaluator (restart)', async () => {
    await writeHours(storage, hourAt(0), [70, 150, 30, 30, 30])
    now = hourAt(5) + MINUTE_MS
    const hours = [0, 1, 2, 3, 4].map(hourAt)
    const first = await evaluator.evaluateSite(SITE, hours)
    expect(first.events).toBeGreaterThan(0)
    const before = await events()
    const incidentsBefore = await incidents()

    expect((await evaluator.evaluateSite(SITE, hours)).events).toBe(0)
    const restarted = evaluatorFor(activeRules(EEA_ONLY, DAY))
    expect((await restarted.evaluateSite(SITE, hours)).events).toBe(0)
    now += 10 * MINUTE_MS
    expect((await restarted.evaluateSite(SITE, [hourAt(2)])).events).toBe(0)

    expect(await events()).toEqual(before)
    expect((await incidents()).map((i) => i.id)).toEqual(incidentsBefore.map((i) => i.id))
  })

  it('escalates once per level, and marks only the top level urgent', async () => {
    const sent = async () =>
      (await events())
        .filter((e) => e.kind !== 'changed')
        .map((e) => [e.kind, e.urgent, AlertMessageData.safeParse(e.data).data?.level])
    await hourByHour(0, [70, 95])
    expect(await sent()).toEqual([
      ['opened', false, undefined],
      ['escalated', false, 90],
    ])
    await hourByHour(2, [150, 160])
    expect(await sent()).toEqual([
      ['opened', false, undefined],
      ['escalated', false, 90],
      ['escalated', true, 140],
    ])
    const list = await events()
    for (const e of list.filter((x) => x.kind !== 'changed')) {
      expect(AlertMessageData.safeParse(e.data).success).toBe(true)
    }
    // A new peak is recorded (the incident changed) but is not news: never live.
    const changed = list.filter((e) => e.kind === 'changed')
    expect(changed.length).toBeGreaterThan(0)
    expect(changed.every((e) => !e.live)).toBe(true)
    expect(await incidents()).toMatchObject([{ peak: 160, peakAt: hourAt(3), end: null }])
  })

  describe('profiles', () => {
    /** A later edition of the EEA bands that applies from 11 March 2026, with rule ids of its own. */
    const NEXT: ThresholdProfile = {
      ...EEA,
      id: 'eea-next',
      version: 'next-7',
      validFrom: '2026-03-11',
      rules: EEA.rules.map((r) => ({ ...r, id: r.id.replace(/^eea-/, 'nxt-') })),
    }
    const both: ProfileSelection = { evaluate: ['eea-index', 'eea-next'], alert: ['eea-index', 'eea-next'] }

    it('does not evaluate a profile before its validFrom, and records the version of the profile used', async () => {
      const today = activeRules(both, DAY, [EEA, NEXT])
      expect(today.map((r) => r.rule.id)).toEqual(EEA.rules.map((r) => r.id))
      evaluator = evaluatorFor(today)
      await writeHours(storage, hourAt(0), [70, 70])
      now = hourAt(2) + MINUTE_MS
      await evaluator.evaluateSite(SITE, [hourAt(0), hourAt(1)])
      expect((await incidents()).map((i) => [i.ruleId, i.profileVersion])).toEqual([['eea-pm25-poor', EEA.version]])

      // The next day the new edition applies as well: its incident carries its own id and version.
      const tomorrow = activeRules(both, '2026-03-11', [EEA, NEXT])
      expect(tomorrow.map((r) => r.profile.id)).toContain('eea-next')
      evaluator = evaluatorFor(tomorrow)
      await writeHours(storage, hourAt(24), [90, 90])
      now = hourAt(26) + MINUTE_MS
      await evaluator.evaluateSite(SITE, [hourAt(24), hourAt(25)])
      const next = (await incidents()).filter((i) => i.profileId === 'eea-next')
      expect(next.map((i) => [i.ruleId, i.profileVersion, i.start])).toEqual([['nxt-pm25-poor', 'next-7', hourAt(24)]])
    })

    it('carries an incident still open from an earlier profile version on (a deploy bumped the version)', async () => {
      const v1: ThresholdProfile = { ...EEA, version: 'v1' }
      const v2: ThresholdProfile = { ...EEA, version: 'v2' }
      evaluator = evaluatorFor(activeRules(EEA_ONLY, DAY, [v1]))
      await hourByHour(0, [70, 70])
      const [opened] = await incidents()
      expect(opened).toMatchObject({ profileVersion: 'v1', end: null })

      // After the upgrade the same rule keeps breaching, then clears: the v1 incident goes on and closes.
      evaluator = evaluatorFor(activeRules(EEA_ONLY, DAY, [v2]))
      await hourByHour(2, [80])
      expect(await incidents()).toMatchObject([{ id: opened?.id, profileVersion: 'v1', peak: 80, end: null }])
      await hourByHour(3, [30, 30, 30])
      expect(await incidents()).toMatchObject([{ id: opened?.id, profileVersion: 'v1', end: hourAt(3) }])
      expect(await kinds()).toEqual(['opened', 'changed', 'closed'])

      // The next incident is one of v2.
      await hourByHour(6, [90, 90])
      expect((await incidents()).map((i) => [i.profileVersion, i.start])).toEqual([
        ['v2', hourAt(6)],
        ['v1', hourAt(0)],
      ])
    })

    it('leaves out the EU 2024/2881 limits (valid from 2030) and annual rules', () => {
      const selection: ProfileSelection = { evaluate: ['eu2024-2881'], alert: [] }
      expect(activeRules(selection, DAY, PROFILES)).toEqual([])
      const in2030 = activeRules(selection, '2030-01-01', PROFILES)
      expect(in2030.length).toBeGreaterThan(0)
      expect(in2030.every((r) => r.rule.period !== 'year' && !r.alerts)).toBe(true)
    })
  })
})
