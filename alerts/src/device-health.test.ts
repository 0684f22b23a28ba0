import { AlertMessageData, DAY_MS, offlineAfterMs } from '@skolluft/core'
import type { AlertEventRecord, Storage } from '@skolluft/storage'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createDeviceHealthMonitor, type DeviceHealthMonitor } from './device-health.ts'
import { type Fixture, MINUTE_MS, openFixture } from './test-support.ts'

/** Tuesday 10 March 2026, 08:00 UTC: new devices are placed. */
const PLACED = Date.UTC(2026, 2, 10, 8, 0)
/** A 10-minute interval: offline after 3 missed readings = 30 min (core health.ts). */
const INTERVAL_S = 600
const INTERVAL_MS = INTERVAL_S * 1000

describe('device health monitor', () => {
  let fixture: Fixture
  let storage: Storage
  let now: number
  let monitor: DeviceHealthMonitor

  async function addDevice(id: string, siteId: string, placed = PLACED): Promise<void> {
    await storage.registry.addDevice(
      {
        id,
        model: 'sim-pms5003',
        sensors: ['pm25', 'pm10'],
        intervalS: INTERVAL_S,
        secretHash: `hash-${id}`,
        placement: { siteId, from: placed, indoor: false, heightM: 2.5 },
      },
      placed,
    )
  }

  /** Readings of `deviceId` at the given times (as ingest writes them). */
  async function report(deviceId: string, siteId: string, times: readonly number[]): Promise<void> {
    await storage.readings.writeReadings(
      times.map((ts, i) => ({
        deviceId,
        siteId,
        ts,
        seq: null,
        values: { pm25: 5 + (i % 3), pm10: 9 + (i % 3) },
        receivedAt: ts + 1_000,
        expectedPerHour: 3600 / INTERVAL_S,
      })),
    )
  }
  /** Every interval from `from` to `to` inclusive. */
  const every = (from: number, to: number, step = INTERVAL_MS): number[] =>
    Array.from({ length: Math.floor((to - from) / step) + 1 }, (_, i) => from + i * step)

  const healthEvents = async (): Promise<AlertEventRecord[]> =>
    (await storage.alerts.listEvents({ limit: 100 })).filter((e) => e.topic === 'device-health').reverse()

  beforeEach(async () => {
    fixture = await openFixture()
    storage = fixture.storage
    now = PLACED
    monitor = createDeviceHealthMonitor({ storage, clock: () => now })
  })

  afterEach(async () => {
    await fixture.close()
  })

  it('raises device-offline once after the offline threshold, not again after a restart, then device-recovered', async () => {
    expect(offlineAfterMs(INTERVAL_S)).toBe(30 * MINUTE_MS)
    // A day of complete data, so a short outage leaves the 24-h coverage above 75 %.
    await addDevice('dev-1', 'school-a', PLACED - DAY_MS)
    const last = PLACED + 120 * MINUTE_MS
    await report('dev-1', 'school-a', every(PLACED - DAY_MS, last))
    now = last
    // A healthy device seen for the first time is not news.
    expect(await monitor.check()).toBe(0)
    expect((await storage.alerts.deviceHealthStates()).get('dev-1')).toMatchObject({ state: 'ok' })

    now = last + 30 * MINUTE_MS
    expect(await monitor.check()).toBe(0)
    now = last + 31 * MINUTE_MS
    expect(await monitor.check()).toBe(1)
    const [offline, ...more] = await healthEvents()
    expect(more).toEqual([])
    expect(offline).toMatchObject({
      kind: 'device-offline',
      topic: 'device-health',
      siteId: 'school-a',
      deviceId: 'dev-1',
      incidentId: null,
      live: true,
      urgent: false,
      at: last,
    })
    expect(AlertMessageData.safeParse(offline?.data).data).toMatchObject({
      kind: 'device-offline',
      siteName: 'Skola A',
      deviceId: 'dev-1',
      since: last,
    })

    // Still offline an hour later, and after a restart (a new monitor reads the stored state): no repeat.
    now += 60 * MINUTE_MS
    expect(await monitor.check()).toBe(0)
    expect(await createDeviceHealthMonitor({ storage, clock: () => now }).check()).toBe(0)
    expect(await healthEvents()).toHaveLength(1)

    // It comes back.
    const back = every(now, now + 20 * MINUTE_MS)
    await report('dev-1', 'school-a', back)
    now = back.at(-1) ?? now
    expect(await monitor.check()).toBe(1)
    expect((await healthEvents()).map((e) => [e.kind, e.at])).toEqual([
      ['device-offline', last],
      ['device-recovered', now],
    ])
    expect(await monitor.check()).toBe(0)
  })

  it('reports a device that sends too little as device-quality (low coverage), and nothing for a silent new one', async () => {
    await addDevice('dev-1', 'school-a')
    await addDevice('dev-2', 'preschool-b')
    await addDevice('dev-3', 'school-c')
    // Every other reading: 50 % of what the interval promises (suspect below 75 %).
    const times = every(PLACED, PLACED + 180 * MINUTE_MS, 2 * INTERVAL_MS)
    await report('dev-2', 'preschool-b', times)
    await report('dev-1', 'school-a', every(PLACED, PLACED + 180 * MINUTE_MS))
    now = PLACED + 180 * MINUTE_MS
    expect(await monitor.check()).toBe(1)
    const [quality] = await healthEvents()
    expect(quality).toMatchObject({ kind: 'device-quality', deviceId: 'dev-2', siteId: 'preschool-b', at: now })
    expect(AlertMessageData.safeParse(quality?.data).data).toMatchObject({ issue: 'low_coverage' })
    // dev-3 never reported: no state, no event.
    expect((await storage.alerts.deviceHealthStates()).has('dev-3')).toBe(false)
    expect(await monitor.check()).toBe(0)
  })
})
