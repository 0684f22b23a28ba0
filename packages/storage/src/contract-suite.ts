import {
  DAY_MS,
  DEFAULT_MEASURES,
  FINAL_GRACE_MS,
  HOUR_MS,
  MAX_SUBSCRIPTION_SITES,
  type Measure,
  type Metric,
  type MetricValues,
  type NewCalibration,
  type SiteInput,
} from '@skolluft/core'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  type AlertEventQuery,
  type EvaluationCommit,
  EXPORT_BATCH_ROWS,
  type ExportQuery,
  type IncidentInput,
  type IncidentQuery,
  MAX_ALERT_DATA_CHARS,
  MAX_ATTEMPT_ERROR_CHARS,
  MAX_COMMENT_CHARS,
  MAX_MARK_READ_IDS,
  type NewAlertEvent,
  type NewOutboxMessage,
  type NewSiteMeasure,
  type NewSubscription,
  type QualityCheck,
  REJECT_LOG_CAPACITY,
  type RejectRecord,
  type Storage,
  type StoredReading,
  type SubscriptionQuery,
  type SubscriptionRecord,
} from './types.ts'

/**
 * Backend-independent contract of `Storage` (see types.ts). A backend's test file calls
 * `describeStorageContract('sqlite', open)`; `open` gives a fresh, empty store per test.
 */
export interface StorageFixture {
  readonly storage: Storage
  /** Opens a second, independent handle on the same data (a new process would see this). */
  reopen(): Promise<Storage>
  /** Removes the data; runs after every handle was closed. */
  cleanup(): Promise<void>
}

/** Monday 2026-01-12 00:00 UTC: hour-aligned; the UTC+1 day containing it starts at 2026-01-11T23:00Z. */
const T0 = Date.UTC(2026, 0, 12)
const MINUTE_MS = 60_000
/** One reading a minute (interval 60 s). */
const PER_HOUR = 60

const SITES: readonly SiteInput[] = [
  { id: 'school-a', name: 'Skola A', kind: 'school', municipality: 'Lund', lat: 55.7, lon: 13.19 },
  {
    id: 'preschool-b',
    name: 'Förskola B',
    kind: 'preschool',
    stages: [],
    address: 'Gatan 1',
    locality: 'Lund',
    municipality: 'Lund',
    lat: 55.71,
    lon: 13.2,
    demo: true,
  },
]

function reading(
  deviceId: string,
  ts: number,
  values: MetricValues,
  extra: Partial<Omit<StoredReading, 'deviceId' | 'ts' | 'values'>> = {},
): StoredReading {
  return {
    deviceId,
    siteId: 'school-a',
    ts,
    seq: null,
    values,
    receivedAt: ts + 1000,
    expectedPerHour: PER_HOUR,
    ...extra,
  }
}

/** `count` one-minute readings from `start`, value `value(i)`. */
function minutes(
  deviceId: string,
  start: number,
  count: number,
  value: (i: number) => number,
  metric: Metric = 'pm25',
  siteId: string | null = 'school-a',
): StoredReading[] {
  return Array.from({ length: count }, (_, i) =>
    reading(deviceId, start + i * MINUTE_MS, { [metric]: value(i) }, { siteId, seq: i }),
  )
}

function reject(at: number, deviceId: string | null, code: RejectRecord['code'] = 'bad_json'): RejectRecord {
  return { at, deviceId, topic: `aq/v1/devices/${deviceId ?? 'x'}/telemetry`, code, message: 'test', index: null }
}

/** An open incident of the EU PM10 daily limit at school-a, as the evaluator would save it. */
function incident(overrides: Partial<IncidentInput> = {}): IncidentInput {
  return {
    siteId: 'school-a',
    pollutant: 'pm10',
    ruleId: 'eu2008-pm10-day',
    profileId: 'eu2008-50',
    profileVersion: '2026-11-30',
    severity: 'warning',
    threshold: 50,
    start: T0,
    end: null,
    openedAt: T0,
    closedAt: null,
    peak: 61.5,
    peakAt: T0,
    escalations: [],
    retrospective: false,
    updatedAt: T0 + DAY_MS,
    ...overrides,
  }
}

export function describeStorageContract(name: string, open: () => Promise<StorageFixture>): void {
  describe(`Storage contract: ${name}`, () => {
    let fixture: StorageFixture
    let storage: Storage
    const extraHandles: Storage[] = []

    beforeEach(async () => {
      fixture = await open()
      storage = fixture.storage
    })

    afterEach(async () => {
      for (const handle of extraHandles.splice(0)) await handle.close()
      await storage.close()
      await fixture.cleanup()
    })

    async function withDevice(id = 'dev-1', siteId = 'school-a', from = T0 - DAY_MS): Promise<void> {
      await storage.registry.upsertSites(SITES)
      await storage.registry.addDevice(
        {
          id,
          model: 'sim-pms5003',
          sensors: ['pm1', 'pm25', 'pm10', 'no2'],
          intervalS: 60,
          secretHash: `hash-${id}`,
          placement: { siteId, from, indoor: false, heightM: 2.5 },
        },
        from,
      )
    }

    describe('readings: idempotency', () => {
      it('stores a reading written twice once and counts the second as a duplicate', async () => {
        const r = reading('dev-1', T0, { pm25: 5 })
        expect(await storage.readings.writeReadings([r])).toEqual({ inserted: 1, duplicates: 0 })
        expect(await storage.readings.writeReadings([r])).toEqual({ inserted: 0, duplicates: 1 })
        expect(await storage.readings.countReadings()).toBe(1)
      })

      it('counts duplicates within one call and an empty call writes nothing', async () => {
        const r = reading('dev-1', T0, { pm25: 5 })
        const other = reading('dev-1', T0 + MINUTE_MS, { pm25: 6 })
        expect(await storage.readings.writeReadings([r, other, r])).toEqual({ inserted: 2, duplicates: 1 })
        expect(await storage.readings.writeReadings([])).toEqual({ inserted: 0, duplicates: 0 })
        expect(await storage.readings.countReadings()).toBe(2)
      })

      it('keeps the first values when the same (device, ts) arrives with different values', async () => {
        await storage.readings.writeReadings([reading('dev-1', T0, { pm25: 5 })])
        const second = await storage.readings.writeReadings([reading('dev-1', T0, { pm25: 50, no2: 9 })])
        expect(second).toEqual({ inserted: 0, duplicates: 1 })

        const raw = await storage.readings.rawSeries({
          siteId: 'school-a',
          metric: 'pm25',
          from: T0,
          to: T0 + HOUR_MS,
          limit: 10,
        })
        expect(raw).toEqual([{ t: new Date(T0).toISOString(), value: 5, deviceId: 'dev-1' }])
        const no2 = await storage.readings.rawSeries({
          deviceId: 'dev-1',
          metric: 'no2',
          from: T0,
          to: T0 + HOUR_MS,
          limit: 10,
        })
        expect(no2).toEqual([])
        const [hour] = await storage.readings.aggregateSeries({
          siteId: 'school-a',
          metric: 'pm25',
          from: T0,
          to: T0 + HOUR_MS,
          limit: 10,
          every: '1h',
        })
        expect(hour).toMatchObject({ n: 1, mean: 5, min: 5, max: 5 })
        const [latest] = await storage.readings.latestByDevice()
        expect(latest?.values).toEqual({ pm25: 5 })
      })

      it('gives each of many concurrent calls its own counts, all durable once they resolve', async () => {
        const calls = Array.from({ length: 50 }, (_, i) =>
          storage.readings.writeReadings([reading('dev-1', T0 + (i % 25) * MINUTE_MS, { pm25: i })]),
        )
        const results = await Promise.all(calls)
        expect(results.slice(0, 25).every((r) => r.inserted === 1 && r.duplicates === 0)).toBe(true)
        expect(results.slice(25).every((r) => r.inserted === 0 && r.duplicates === 1)).toBe(true)
        const other = await fixture.reopen()
        extraHandles.push(other)
        expect(await other.readings.countReadings({ deviceId: 'dev-1' })).toBe(25)
        const [hour] = await other.readings.aggregateSeries({
          deviceId: 'dev-1',
          metric: 'pm25',
          from: T0,
          to: T0 + HOUR_MS,
          limit: 1,
          every: '1h',
        })
        expect(hour).toMatchObject({ n: 25, min: 0, max: 24 })
      })

      it('keys readings per device: the same ts from two devices is two readings', async () => {
        const result = await storage.readings.writeReadings([
          reading('dev-1', T0, { pm25: 5 }),
          reading('dev-2', T0, { pm25: 6 }),
        ])
        expect(result).toEqual({ inserted: 2, duplicates: 0 })
        expect(await storage.readings.countReadings({ deviceId: 'dev-1' })).toBe(1)
        expect(await storage.readings.countReadings({ siteId: 'school-a' })).toBe(2)
        expect(await storage.readings.countReadings({ siteId: 'preschool-b' })).toBe(0)
      })
    })

    describe('readings: raw series', () => {
      it('returns one metric in time order, skipping readings without it, within [from, to) and the limit', async () => {
        await storage.readings.writeReadings([
          reading('dev-1', T0 + 2 * MINUTE_MS, { pm25: 3 }),
          reading('dev-1', T0, { pm25: 1, no2: 10 }),
          reading('dev-1', T0 + MINUTE_MS, { no2: 11 }),
          reading('dev-2', T0 + MINUTE_MS, { pm25: 2 }),
          reading('dev-1', T0 + 3 * MINUTE_MS, { pm25: 4 }),
        ])
        const query = { siteId: 'school-a', metric: 'pm25' as const, from: T0, to: T0 + 3 * MINUTE_MS, limit: 100 }
        const points = await storage.readings.rawSeries(query)
        expect(points.map((p) => [p.t, p.value, p.deviceId])).toEqual([
          [new Date(T0).toISOString(), 1, 'dev-1'],
          [new Date(T0 + MINUTE_MS).toISOString(), 2, 'dev-2'],
          [new Date(T0 + 2 * MINUTE_MS).toISOString(), 3, 'dev-1'],
        ])
        expect(await storage.readings.rawSeries({ ...query, limit: 2 })).toHaveLength(2)
        const device = await storage.readings.rawSeries({
          ...query,
          siteId: undefined,
          deviceId: 'dev-1',
          to: T0 + HOUR_MS,
        })
        expect(device.map((p) => p.value)).toEqual([1, 3, 4])
        const no2 = await storage.readings.rawSeries({ ...query, metric: 'no2' })
        expect(no2.map((p) => p.value)).toEqual([10, 11])
      })

      it('stores values unmodified, including negative NO2 and zero', async () => {
        await storage.readings.writeReadings([reading('dev-1', T0, { no2: -3.25, pm25: 0, rh: 99.9, temp: -12.5 })])
        const q = { deviceId: 'dev-1', from: T0, to: T0 + 1, limit: 1 }
        expect((await storage.readings.rawSeries({ ...q, metric: 'no2' }))[0]?.value).toBe(-3.25)
        expect((await storage.readings.rawSeries({ ...q, metric: 'pm25' }))[0]?.value).toBe(0)
        expect((await storage.readings.rawSeries({ ...q, metric: 'temp' }))[0]?.value).toBe(-12.5)
        expect((await storage.readings.rawSeries({ ...q, metric: 'rh' }))[0]?.value).toBe(99.9)
      })
    })

    describe('readings: hourly aggregates', () => {
      const hourQuery = {
        siteId: 'school-a',
        metric: 'pm25' as const,
        from: T0,
        to: T0 + 3 * HOUR_MS,
        limit: 100,
        every: '1h' as const,
      }

      it('reports n, mean, min, max and coverage per hour; valid from 75 % of the expected samples', async () => {
        await storage.readings.writeReadings([
          ...minutes('dev-1', T0, 60, (i) => i), // full hour: 0..59
          ...minutes('dev-1', T0 + HOUR_MS, 45, () => 2), // exactly 75 %
          ...minutes('dev-1', T0 + 2 * HOUR_MS, 44, () => 3), // just under
        ])
        const points = await storage.readings.aggregateSeries(hourQuery)
        expect(points).toHaveLength(3)
        expect(points[0]).toEqual({
          t: new Date(T0).toISOString(),
          mean: 29.5,
          min: 0,
          max: 59,
          n: 60,
          expected: 60,
          coverage: 1,
          valid: true,
        })
        expect(points[1]).toMatchObject({ n: 45, mean: 2, coverage: 0.75, valid: true })
        expect(points[2]).toMatchObject({ n: 44, mean: 3, valid: false })
        expect(points[2]?.coverage).toBeCloseTo(44 / 60, 10)
      })

      it('adds late data to an hour already aggregated, and never counts a duplicate', async () => {
        const hour = minutes('dev-1', T0, 60, () => 10)
        await storage.readings.writeReadings(hour.slice(0, 40))
        let [point] = await storage.readings.aggregateSeries(hourQuery)
        expect(point).toMatchObject({ n: 40, valid: false })

        // The rest arrives late (buffered by the device), together with a re-send of what is stored.
        const late = hour.slice(20).map((r, i) => (i === 30 ? { ...r, values: { pm25: 40 } } : r))
        expect(await storage.readings.writeReadings(late)).toEqual({ inserted: 20, duplicates: 20 })
        ;[point] = await storage.readings.aggregateSeries(hourQuery)
        expect(point).toMatchObject({ n: 60, min: 10, max: 40, coverage: 1, valid: true })
        expect(point?.mean).toBeCloseTo((59 * 10 + 40) / 60, 10)
      })

      it('combines the devices at a site and keeps each device on its own', async () => {
        await storage.readings.writeReadings([
          ...minutes('dev-1', T0, 60, () => 10),
          ...minutes('dev-2', T0, 30, () => 20),
        ])
        const [site] = await storage.readings.aggregateSeries(hourQuery)
        // Expected samples add up over devices: 60 + 30 of 120.
        expect(site).toMatchObject({ n: 90, min: 10, max: 20, coverage: 0.75, valid: true })
        expect(site?.mean).toBeCloseTo((600 + 600) / 90, 10)
        const [one] = await storage.readings.aggregateSeries({ ...hourQuery, siteId: undefined, deviceId: 'dev-2' })
        expect(one).toMatchObject({ n: 30, mean: 20, coverage: 0.5, valid: false })
      })

      it('covers hours overlapping [from, to), per metric, and respects the limit', async () => {
        await storage.readings.writeReadings([
          ...minutes('dev-1', T0 - HOUR_MS, 60, () => 1),
          ...minutes('dev-1', T0, 60, () => 2),
          ...minutes('dev-1', T0 + HOUR_MS, 60, () => 3),
          ...minutes('dev-1', T0 + 2 * HOUR_MS, 60, () => 4, 'no2'),
        ])
        const points = await storage.readings.aggregateSeries({ ...hourQuery, from: T0 + 30 * MINUTE_MS })
        expect(points.map((p) => p.mean)).toEqual([2, 3])
        const limited = await storage.readings.aggregateSeries({ ...hourQuery, from: T0 - HOUR_MS, limit: 2 })
        expect(limited.map((p) => p.mean)).toEqual([1, 2])
        const no2 = await storage.readings.aggregateSeries({ ...hourQuery, metric: 'no2' })
        expect(no2.map((p) => [p.t, p.mean])).toEqual([[new Date(T0 + 2 * HOUR_MS).toISOString(), 4]])
      })
    })

    describe("readings: a site's hours of several metrics at once (siteHourly)", () => {
      it('gives per metric exactly what aggregateSeries gives, from one read', async () => {
        await storage.readings.writeReadings([
          ...minutes('dev-1', T0 - HOUR_MS, 60, (i) => i / 3),
          ...minutes('dev-2', T0 - HOUR_MS, 50, (i) => 0.1 * i + 7),
          ...minutes('dev-1', T0, 30, () => 2.5),
          ...minutes('dev-2', T0 + HOUR_MS, 45, (i) => (i % 7) * 1.1, 'no2'),
          ...minutes('dev-1', T0 + 2 * HOUR_MS, 60, (i) => i * 0.7, 'rh'),
          ...minutes('dev-3', T0 + 2 * HOUR_MS, 60, () => 9, 'pm25', 'school-b'),
        ])
        const range = { from: T0 - HOUR_MS + 30 * MINUTE_MS, to: T0 + 3 * HOUR_MS }
        const metrics = ['pm1', 'pm25', 'no2', 'rh'] as const
        const got = await storage.readings.siteHourly({ siteId: 'school-a', metrics: [...metrics, 'pm25'], ...range })
        expect([...got.keys()]).toEqual(metrics)
        for (const metric of metrics) {
          const one = await storage.readings.aggregateSeries({
            siteId: 'school-a',
            metric,
            every: '1h',
            ...range,
            limit: 100,
          })
          expect(got.get(metric), metric).toEqual(one)
        }
        expect(got.get('pm25')?.map((p) => p.n)).toEqual([110, 30])
        expect(got.get('pm1')).toEqual([])
        expect(await storage.readings.siteHourly({ siteId: 'school-a', metrics, from: T0, to: T0 })).toEqual(
          new Map(metrics.map((m) => [m, []])),
        )
      })
    })

    describe('readings: daily aggregates (UTC+1 days)', () => {
      /** 23:00 UTC on Jan 11: start of the UTC+1 day Jan 12. */
      const DAY = T0 - HOUR_MS
      const dayQuery = {
        siteId: 'school-a',
        metric: 'pm25' as const,
        from: DAY,
        to: DAY + DAY_MS,
        limit: 10,
        every: '1d' as const,
      }

      it('is valid with 18 valid hours and is the mean of the valid hourly means', async () => {
        const readings: StoredReading[] = []
        // 18 full hours with value = hour index; hour 18 has 10 samples (invalid) with an extreme value.
        for (let h = 0; h < 18; h++) readings.push(...minutes('dev-1', DAY + h * HOUR_MS, 60, () => h))
        readings.push(...minutes('dev-1', DAY + 18 * HOUR_MS, 10, () => 400))
        await storage.readings.writeReadings(readings)

        const [day] = await storage.readings.aggregateSeries(dayQuery)
        expect(day).toMatchObject({ t: new Date(DAY).toISOString(), n: 18 * 60 + 10, min: 0, max: 400, valid: true })
        expect(day?.mean).toBeCloseTo(8.5, 10) // mean of 0..17; the invalid hour is left out
        expect(day?.coverage).toBeCloseTo(18 / 24, 10)
      })

      it('is invalid with 17 valid hours but still reports its numbers', async () => {
        const readings: StoredReading[] = []
        for (let h = 0; h < 17; h++) readings.push(...minutes('dev-1', DAY + h * HOUR_MS, 60, () => 5))
        readings.push(...minutes('dev-1', DAY + 17 * HOUR_MS, 44, () => 5))
        await storage.readings.writeReadings(readings)
        const [day] = await storage.readings.aggregateSeries(dayQuery)
        expect(day).toMatchObject({ mean: 5, n: 17 * 60 + 44, valid: false })
      })

      it('starts a day at 23:00 UTC: 22:59 UTC belongs to the day before', async () => {
        await storage.readings.writeReadings([
          reading('dev-1', DAY - MINUTE_MS, { pm25: 1 }), // 22:59 UTC Jan 11 = 23:59 UTC+1 Jan 11
          reading('dev-1', DAY, { pm25: 2 }), // 23:00 UTC Jan 11 = 00:00 UTC+1 Jan 12
          reading('dev-1', DAY + DAY_MS - MINUTE_MS, { pm25: 3 }), // 22:59 UTC Jan 12: still Jan 12
        ])
        const days = await storage.readings.aggregateSeries({ ...dayQuery, from: DAY - DAY_MS, to: DAY + DAY_MS })
        expect(days.map((d) => [d.t, d.n, d.min, d.max])).toEqual([
          [new Date(DAY - DAY_MS).toISOString(), 1, 1, 1],
          [new Date(DAY).toISOString(), 2, 2, 3],
        ])
        // `from` inside a day returns the whole day.
        const fromMidDay = await storage.readings.aggregateSeries({ ...dayQuery, from: DAY + 12 * HOUR_MS })
        expect(fromMidDay.map((d) => d.n)).toEqual([2])
        const limited = await storage.readings.aggregateSeries({ ...dayQuery, from: DAY - DAY_MS, limit: 1 })
        expect(limited.map((d) => d.t)).toEqual([new Date(DAY - DAY_MS).toISOString()])
      })
    })

    describe('readings: latest', () => {
      it('keeps the newest value per metric, so separate PM and NO2 messages both show', async () => {
        await withDevice('dev-1')
        await storage.readings.writeReadings([reading('dev-1', T0, { pm25: 5, pm10: 8 })])
        await storage.readings.writeReadings([reading('dev-1', T0 + 10_000, { no2: 20 })])
        const latest = await storage.readings.latestByDevice()
        expect(latest).toEqual([
          {
            deviceId: 'dev-1',
            siteId: 'school-a',
            ts: T0 + 10_000,
            values: { pm25: 5, pm10: 8, no2: 20 },
            metricTs: { pm25: T0, pm10: T0, no2: T0 + 10_000 },
            receivedAt: T0 + 11_000,
          },
        ])
        const site = (await storage.readings.latestBySite()).get('school-a')
        expect(site?.values).toEqual({ pm25: 5, pm10: 8, no2: 20 })
        expect(site?.metricTs).toEqual({ pm25: T0, pm10: T0, no2: T0 + 10_000 })
      })

      it('never moves backwards when older data arrives late', async () => {
        await storage.readings.writeReadings([reading('dev-1', T0 + HOUR_MS, { pm25: 7 })])
        await storage.readings.writeReadings([
          reading('dev-1', T0, { pm25: 99, no2: 30 }, { receivedAt: T0 + 2 * HOUR_MS }),
        ])
        const [latest] = await storage.readings.latestByDevice()
        expect(latest?.ts).toBe(T0 + HOUR_MS)
        // pm25 stays the newer value; no2 had no newer value, so the late one is its latest.
        expect(latest?.values).toEqual({ pm25: 7, no2: 30 })
        const series = await storage.readings.rawSeries({
          deviceId: 'dev-1',
          metric: 'pm25',
          from: T0,
          to: T0 + DAY_MS,
          limit: 10,
        })
        expect(series.map((p) => p.value)).toEqual([99, 7])
      })

      it('lists one entry per device', async () => {
        await storage.readings.writeReadings([
          reading('dev-1', T0, { pm25: 1 }),
          reading('dev-2', T0 + 1, { pm25: 2 }, { siteId: 'preschool-b' }),
          reading('dev-1', T0 + 2, { pm25: 3 }),
        ])
        const latest = await storage.readings.latestByDevice()
        const byId = new Map(latest.map((l) => [l.deviceId, l]))
        expect(latest).toHaveLength(2)
        expect(byId.get('dev-1')).toMatchObject({ ts: T0 + 2, values: { pm25: 3 }, siteId: 'school-a' })
        expect(byId.get('dev-2')).toMatchObject({ ts: T0 + 1, values: { pm25: 2 }, siteId: 'preschool-b' })
      })

      it('merges per site over the devices currently there, newest value per metric', async () => {
        await withDevice('dev-1')
        await withDevice('dev-2')
        await withDevice('dev-3', 'preschool-b')
        await storage.readings.writeReadings([
          reading('dev-1', T0, { pm25: 1, no2: 11 }),
          reading('dev-2', T0 + MINUTE_MS, { pm25: 2 }),
          reading('dev-3', T0, { pm25: 3 }, { siteId: 'preschool-b' }),
          reading('dev-9', T0 + HOUR_MS, { pm25: 99 }), // not registered: stands nowhere
        ])
        const bySite = await storage.readings.latestBySite()
        expect([...bySite.keys()].sort()).toEqual(['preschool-b', 'school-a'])
        expect(bySite.get('school-a')).toMatchObject({
          siteId: 'school-a',
          ts: T0 + MINUTE_MS,
          values: { pm25: 2, no2: 11 },
        })
        expect(bySite.get('preschool-b')).toMatchObject({ deviceId: 'dev-3', values: { pm25: 3 } })
      })
    })

    describe('readings: site attribution', () => {
      it('keeps readings at the site they were written with after the device moves', async () => {
        await withDevice('dev-1', 'school-a')
        const moveAt = T0 + HOUR_MS
        await storage.readings.writeReadings(minutes('dev-1', T0, 60, () => 1, 'pm25', 'school-a'))
        await storage.registry.moveDevice('dev-1', { siteId: 'preschool-b', from: moveAt, indoor: true, heightM: 1 })
        await storage.readings.writeReadings(minutes('dev-1', moveAt, 60, () => 2, 'pm25', 'preschool-b'))
        // A late reading from before the move, attributed by its time to the old site.
        await storage.readings.writeReadings([reading('dev-1', T0 - MINUTE_MS, { pm25: 1 }, { siteId: 'school-a' })])

        const q = { metric: 'pm25' as const, from: T0 - HOUR_MS, to: T0 + 3 * HOUR_MS, limit: 10, every: '1h' as const }
        const a = await storage.readings.aggregateSeries({ ...q, siteId: 'school-a' })
        expect(a.map((p) => [p.t, p.n, p.mean])).toEqual([
          [new Date(T0 - HOUR_MS).toISOString(), 1, 1],
          [new Date(T0).toISOString(), 60, 1],
        ])
        const b = await storage.readings.aggregateSeries({ ...q, siteId: 'preschool-b' })
        expect(b.map((p) => [p.t, p.n, p.mean])).toEqual([[new Date(moveAt).toISOString(), 60, 2]])
        const device = await storage.readings.aggregateSeries({ ...q, deviceId: 'dev-1' })
        expect(device.map((p) => p.n)).toEqual([1, 60, 60])
        expect(await storage.readings.countReadings({ siteId: 'school-a' })).toBe(61)
        expect(await storage.readings.countReadings({ siteId: 'preschool-b' })).toBe(60)
        const raw = await storage.readings.rawSeries({ ...q, siteId: 'preschool-b', limit: 1000 })
        expect(raw.every((p) => p.value === 2)).toBe(true)

        const bySite = await storage.readings.latestBySite()
        expect(bySite.has('school-a')).toBe(false)
        expect(bySite.get('preschool-b')).toMatchObject({ deviceId: 'dev-1', values: { pm25: 2 } })
      })

      it('splits an hour between two sites when the device moves within it', async () => {
        await withDevice('dev-1', 'school-a')
        const moveAt = T0 + 30 * MINUTE_MS
        await storage.readings.writeReadings(minutes('dev-1', T0, 30, () => 1, 'pm25', 'school-a'))
        await storage.registry.moveDevice('dev-1', {
          siteId: 'preschool-b',
          from: moveAt,
          indoor: false,
          heightM: null,
        })
        await storage.readings.writeReadings(minutes('dev-1', moveAt, 30, () => 3, 'pm25', 'preschool-b'))
        const q = { metric: 'pm25' as const, from: T0, to: T0 + HOUR_MS, limit: 10, every: '1h' as const }
        const [a] = await storage.readings.aggregateSeries({ ...q, siteId: 'school-a' })
        const [b] = await storage.readings.aggregateSeries({ ...q, siteId: 'preschool-b' })
        const [device] = await storage.readings.aggregateSeries({ ...q, deviceId: 'dev-1' })
        expect(a).toMatchObject({ n: 30, mean: 1, coverage: 0.5, valid: false })
        expect(b).toMatchObject({ n: 30, mean: 3, coverage: 0.5, valid: false })
        expect(device).toMatchObject({ n: 60, mean: 2, coverage: 1, valid: true })
      })
    })

    describe('readings: fleet-wide queries', () => {
      it('counts readings per device over whole hours in [from, to), a multi-metric reading once', async () => {
        await storage.readings.writeReadings([
          // One reading carries three metrics: counted once.
          ...Array.from({ length: 40 }, (_, i) => reading('dev-1', T0 + i * MINUTE_MS, { pm25: 1, pm10: 2, no2: 3 })),
          // A separate NO2 message in the same hour: no2 now has 41 samples, pm25 and pm10 40; the hour
          // counts the largest per-metric count, 41.
          reading('dev-1', T0 + 50 * MINUTE_MS + 1, { no2: 4 }),
          ...minutes('dev-1', T0 + HOUR_MS, 30, () => 1),
          // Outside the range: the hour before `from` and the hour starting at `to`.
          ...minutes('dev-1', T0 - HOUR_MS, 60, () => 1),
          ...minutes('dev-1', T0 + 2 * HOUR_MS, 60, () => 1),
          // Last millisecond of the range.
          reading('dev-2', T0 + 2 * HOUR_MS - 1, { temp: 20 }, { siteId: null }),
        ])
        const counts = await storage.readings.sampleCounts({ from: T0, to: T0 + 2 * HOUR_MS })
        expect(counts).toEqual(
          new Map([
            ['dev-1', 41 + 30],
            ['dev-2', 1],
          ]),
        )
        expect(await storage.readings.sampleCounts({ from: T0 + 3 * HOUR_MS, to: T0 + 4 * HOUR_MS })).toEqual(new Map())
      })

      it('counts the readings of a device moved within an hour at both sites', async () => {
        await storage.readings.writeReadings([
          ...minutes('dev-1', T0, 20, () => 1, 'pm25', 'school-a'),
          ...minutes('dev-1', T0 + 20 * MINUTE_MS, 25, () => 1, 'pm25', 'preschool-b'),
        ])
        const counts = await storage.readings.sampleCounts({ from: T0, to: T0 + HOUR_MS })
        expect(counts.get('dev-1')).toBe(45)
      })

      it("gives every site's hourly means, devices combined as in aggregateSeries, ordered by site and hour", async () => {
        await storage.readings.writeReadings([
          // school-a, hour 0: two devices, 60 + 30 samples of 120 expected.
          ...minutes('dev-1', T0, 60, () => 10),
          ...minutes('dev-2', T0, 30, () => 20),
          // school-a, hour 1: only dev-2, 30 of 60 (invalid); dev-1 sends NO2 only (not pm25).
          ...minutes('dev-2', T0 + HOUR_MS, 30, () => 5),
          ...minutes('dev-1', T0 + HOUR_MS, 60, () => 99, 'no2'),
          // preschool-b, hour 1 and the hour starting at `to` (left out).
          ...minutes('dev-3', T0 + HOUR_MS, 60, (i) => i, 'pm25', 'preschool-b'),
          ...minutes('dev-3', T0 + 2 * HOUR_MS, 60, () => 7, 'pm25', 'preschool-b'),
          // No site: left out.
          ...minutes('dev-4', T0, 60, () => 1000, 'pm25', null),
        ])
        // `from` in the middle of hour 0 still returns hour 0 (hours overlapping [from, to)).
        const range = { from: T0 + 30 * MINUTE_MS, to: T0 + 2 * HOUR_MS }
        const hours = await storage.readings.hourlyBySite({ metric: 'pm25', ...range })
        expect(hours.map((h) => [h.siteId, h.t, h.n, h.valid])).toEqual([
          ['preschool-b', T0 + HOUR_MS, 60, true],
          ['school-a', T0, 90, true],
          ['school-a', T0 + HOUR_MS, 30, false],
        ])
        expect(hours[0]?.mean).toBeCloseTo(29.5, 10)
        expect(hours[1]?.mean).toBeCloseTo((600 + 600) / 90, 10)
        expect(hours[2]?.mean).toBe(5)

        // The same numbers as each site's own hourly series.
        for (const siteId of ['school-a', 'preschool-b']) {
          const series = await storage.readings.aggregateSeries({
            siteId,
            metric: 'pm25',
            ...range,
            limit: 100,
            every: '1h',
          })
          const own = hours.filter((h) => h.siteId === siteId)
          expect(own.map((h) => ({ t: new Date(h.t).toISOString(), mean: h.mean, n: h.n, valid: h.valid }))).toEqual(
            series.map((p) => ({ t: p.t, mean: p.mean, n: p.n, valid: p.valid })),
          )
        }

        const no2 = await storage.readings.hourlyBySite({ metric: 'no2', ...range })
        expect(no2).toEqual([{ siteId: 'school-a', t: T0 + HOUR_MS, mean: 99, n: 60, valid: true }])
        expect(await storage.readings.hourlyBySite({ metric: 'rh', ...range })).toEqual([])
      })
    })

    describe('readings: export streams', () => {
      async function collect<T>(stream: AsyncIterable<readonly T[]>): Promise<{ rows: T[]; batches: number[] }> {
        const rows: T[] = []
        const batches: number[] = []
        for await (const batch of stream) {
          batches.push(batch.length)
          rows.push(...batch)
        }
        return { rows, batches }
      }

      it('streams readings by site (none first), device, time; in bounded batches; with filters', async () => {
        const many = EXPORT_BATCH_ROWS + 7
        await storage.readings.writeReadings([
          ...minutes('dev-2', T0, many, (i) => i / 10),
          ...minutes('dev-1', T0, 3, () => 1, 'no2'),
          ...minutes('dev-1', T0 + 5 * MINUTE_MS, 2, () => 2, 'pm25', 'preschool-b'),
          ...minutes('dev-9', T0, 2, () => 3, 'pm25', null),
          reading('dev-1', T0 + 9 * MINUTE_MS, { rh: 50 }), // no asked metric: left out
        ])
        const query: ExportQuery = { metrics: ['pm25', 'no2'], from: T0, to: T0 + 30 * DAY_MS }
        const { rows, batches } = await collect(storage.readings.streamReadings(query))
        expect(Math.max(...batches)).toBeLessThanOrEqual(EXPORT_BATCH_ROWS)
        expect(rows).toHaveLength(2 + 2 + 3 + many)
        expect(rows.slice(0, 7).map((r) => [r.siteId, r.deviceId, r.ts - T0, r.values])).toEqual([
          [null, 'dev-9', 0, { pm25: 3 }],
          [null, 'dev-9', MINUTE_MS, { pm25: 3 }],
          ['preschool-b', 'dev-1', 5 * MINUTE_MS, { pm25: 2 }],
          ['preschool-b', 'dev-1', 6 * MINUTE_MS, { pm25: 2 }],
          ['school-a', 'dev-1', 0, { no2: 1 }],
          ['school-a', 'dev-1', MINUTE_MS, { no2: 1 }],
          ['school-a', 'dev-1', 2 * MINUTE_MS, { no2: 1 }],
        ])
        const dev2 = rows.slice(7)
        expect(dev2.every((r, i) => r.deviceId === 'dev-2' && r.ts === T0 + i * MINUTE_MS)).toBe(true)
        expect(dev2.at(-1)?.values).toEqual({ pm25: (many - 1) / 10 })

        // [from, to), sites, devices, metrics.
        const window = await collect(
          storage.readings.streamReadings({ ...query, from: T0 + MINUTE_MS, to: T0 + 3 * MINUTE_MS }),
        )
        expect(window.rows.map((r) => `${r.siteId}/${r.deviceId}@${(r.ts - T0) / MINUTE_MS}`)).toEqual([
          'null/dev-9@1',
          'school-a/dev-1@1',
          'school-a/dev-1@2',
          'school-a/dev-2@1',
          'school-a/dev-2@2',
        ])
        const filtered = await collect(
          storage.readings.streamReadings({ ...query, siteIds: ['school-a'], deviceIds: ['dev-1'] }),
        )
        expect(filtered.rows.map((r) => r.ts - T0)).toEqual([0, MINUTE_MS, 2 * MINUTE_MS])
        const rh = await collect(storage.readings.streamReadings({ ...query, metrics: ['rh'] }))
        expect(rh.rows).toEqual([
          { siteId: 'school-a', deviceId: 'dev-1', ts: T0 + 9 * MINUTE_MS, values: { rh: 50 }, qc: null },
        ])
        expect((await collect(storage.readings.streamReadings({ ...query, siteIds: [] }))).rows).toEqual([])
      })

      it('lets writes run between batches', async () => {
        await storage.readings.writeReadings(minutes('dev-1', T0, 2 * EXPORT_BATCH_ROWS, () => 1))
        let seen = 0
        let written = 0
        for await (const batch of storage.readings.streamReadings({
          metrics: ['pm25'],
          from: T0,
          to: T0 + DAY_MS * 30,
        })) {
          seen += batch.length
          // A later reading of another device, committed while the stream is open.
          const result = await storage.readings.writeReadings([reading('dev-x', T0 + 20 * DAY_MS + seen, { pm25: 1 })])
          written += result.inserted
        }
        expect(seen).toBe(2 * EXPORT_BATCH_ROWS)
        expect(written).toBe(2)
      })

      it('streams site-hours per metric with the numbers of aggregateSeries, ordered by site, hour, metric', async () => {
        await storage.readings.writeReadings([
          ...minutes('dev-1', T0, 60, () => 10),
          ...minutes('dev-2', T0, 30, () => 20),
          ...minutes('dev-2', T0 + HOUR_MS, 30, () => 5),
          ...minutes('dev-1', T0 + HOUR_MS, 60, () => 99, 'no2'),
          ...minutes('dev-3', T0 + HOUR_MS, 60, (i) => i, 'pm25', 'preschool-b'),
          ...minutes('dev-3', T0 + 2 * HOUR_MS, 60, () => 7, 'pm25', 'preschool-b'),
          ...minutes('dev-4', T0, 60, () => 1000, 'pm25', null),
        ])
        const range = { from: T0 + 30 * MINUTE_MS, to: T0 + 2 * HOUR_MS }
        const { rows } = await collect(storage.readings.streamHourly({ metrics: ['no2', 'pm25'], ...range }))
        expect(rows.map((h) => [h.siteId, (h.t - T0) / HOUR_MS, h.metric, h.n, h.expected])).toEqual([
          ['preschool-b', 1, 'pm25', 60, 60],
          ['school-a', 0, 'pm25', 90, 120],
          ['school-a', 1, 'pm25', 30, 60],
          ['school-a', 1, 'no2', 60, 60],
        ])
        for (const siteId of ['school-a', 'preschool-b']) {
          const series = await storage.readings.aggregateSeries({
            siteId,
            metric: 'pm25',
            ...range,
            limit: 9,
            every: '1h',
          })
          const own = rows.filter((h) => h.siteId === siteId && h.metric === 'pm25')
          expect(
            own.map((h) => ({ t: new Date(h.t).toISOString(), mean: h.sum / h.n, min: h.min, max: h.max, n: h.n })),
          ).toEqual(series.map((p) => ({ t: p.t, mean: p.mean, min: p.min, max: p.max, n: p.n })))
        }
        const dev2 = await collect(storage.readings.streamHourly({ metrics: ['pm25'], ...range, deviceIds: ['dev-2'] }))
        expect(dev2.rows.map((h) => [h.t - T0, h.n, h.sum, h.expected])).toEqual([
          [0, 30, 600, 60],
          [HOUR_MS, 30, 150, 60],
        ])
        const siteB = await collect(
          storage.readings.streamHourly({ metrics: ['pm25'], ...range, siteIds: ['preschool-b'] }),
        )
        expect(siteB.rows.map((h) => h.siteId)).toEqual(['preschool-b'])
      })

      it('pages site-hours over more than one batch without losing or repeating one', async () => {
        const sites = Array.from({ length: 3 }, (_, i) => ({ ...SITES[0], id: `site-${i}` }) as SiteInput)
        await storage.registry.upsertSites(sites)
        const hours = Math.ceil(EXPORT_BATCH_ROWS / 2)
        const readings: StoredReading[] = []
        for (const site of sites) {
          for (let h = 0; h < hours; h++)
            readings.push(reading(`dev-${site.id}`, T0 + h * HOUR_MS, { pm25: h }, { siteId: site.id }))
        }
        await storage.readings.writeReadings(readings)
        const { rows, batches } = await collect(
          storage.readings.streamHourly({ metrics: ['pm25'], from: T0, to: T0 + hours * HOUR_MS }),
        )
        expect(batches.length).toBeGreaterThan(1)
        expect(rows.map((h) => `${h.siteId}@${(h.t - T0) / HOUR_MS}`)).toEqual(
          sites.flatMap((s) => Array.from({ length: hours }, (_, h) => `${s.id}@${h}`)),
        )
      })

      it('resumes a stream at a reading or site-hour, inclusive, skipping everything before it', async () => {
        await storage.readings.writeReadings([
          ...minutes('dev-9', T0, 2, () => 3, 'pm25', null),
          ...minutes('dev-1', T0, 3, () => 1),
          ...minutes('dev-2', T0, 3, () => 2),
          ...minutes('dev-3', T0, 2, () => 4, 'pm25', 'preschool-b'),
          ...minutes('dev-1', T0 + HOUR_MS, 2, () => 5),
        ])
        const query: ExportQuery = { metrics: ['pm25'], from: T0, to: T0 + DAY_MS }
        const keys = async (q: ExportQuery) =>
          (await collect(storage.readings.streamReadings(q))).rows.map(
            (r) => `${r.siteId}/${r.deviceId}@${(r.ts - T0) / MINUTE_MS}`,
          )
        const all = await keys(query)
        expect(all).toEqual([
          'null/dev-9@0',
          'null/dev-9@1',
          'preschool-b/dev-3@0',
          'preschool-b/dev-3@1',
          'school-a/dev-1@0',
          'school-a/dev-1@1',
          'school-a/dev-1@2',
          'school-a/dev-1@60',
          'school-a/dev-1@61',
          'school-a/dev-2@0',
          'school-a/dev-2@1',
          'school-a/dev-2@2',
        ])
        // Every position resumes with the rest, that reading included.
        for (let i = 0; i < all.length; i++) {
          const [site = '', rest = ''] = (all[i] ?? '').split('/')
          const [deviceId = '', minute = '0'] = rest.split('@')
          const after = { siteId: site === 'null' ? null : site, deviceId, ts: T0 + Number(minute) * MINUTE_MS }
          expect(await keys({ ...query, after })).toEqual(all.slice(i))
        }
        // A position between readings (a reading since deleted, or a device with nothing left) resumes at the next.
        expect(
          await keys({ ...query, after: { siteId: 'school-a', deviceId: 'dev-1', ts: T0 + 30 * MINUTE_MS } }),
        ).toEqual(all.slice(7))
        expect(await keys({ ...query, after: { siteId: 'school-a', deviceId: 'dev-15', ts: T0 } })).toEqual(
          all.slice(9),
        )

        const hours = async (q: ExportQuery) =>
          (await collect(storage.readings.streamHourly(q))).rows.map((h) => `${h.siteId}@${(h.t - T0) / HOUR_MS}`)
        expect(await hours(query)).toEqual(['preschool-b@0', 'school-a@0', 'school-a@1'])
        expect(await hours({ ...query, after: { siteId: 'school-a', deviceId: null, ts: T0 } })).toEqual([
          'school-a@0',
          'school-a@1',
        ])
        expect(await hours({ ...query, after: { siteId: 'school-a', deviceId: null, ts: T0 + HOUR_MS } })).toEqual([
          'school-a@1',
        ])
      })

      it("streams device-hours with each device's sums and mean RH when asked byDevice", async () => {
        await storage.readings.writeReadings([
          ...minutes('dev-2', T0, 30, (i) => i),
          ...minutes('dev-1', T0, 60, () => 10),
          ...minutes('dev-1', T0, 60, (i) => (i < 30 ? 80 : 90), 'rh').map((r) => ({ ...r, ts: r.ts + 1 })),
          ...minutes('dev-3', T0 + HOUR_MS, 2, () => 4, 'pm25', 'preschool-b'),
          ...minutes('dev-4', T0, 60, () => 1000, 'pm25', null),
        ])
        const { rows } = await collect(
          storage.readings.streamHourly({ metrics: ['pm25', 'rh'], from: T0, to: T0 + DAY_MS, byDevice: true }),
        )
        expect(rows.map((h) => [h.siteId, h.deviceId, (h.t - T0) / HOUR_MS, h.metric, h.n, h.sum, h.rh])).toEqual([
          ['preschool-b', 'dev-3', 1, 'pm25', 2, 8, undefined],
          ['school-a', 'dev-1', 0, 'pm25', 60, 600, 85],
          ['school-a', 'dev-1', 0, 'rh', 60, 60 * 85, 85],
          ['school-a', 'dev-2', 0, 'pm25', 30, (29 * 30) / 2, undefined],
        ])
        expect(rows.find((h) => h.deviceId === 'dev-2')).toMatchObject({ min: 0, max: 29, expected: 60 })
        // Resumed at a site-hour: from its first device on.
        const resumed = await collect(
          storage.readings.streamHourly({
            metrics: ['pm25'],
            from: T0,
            to: T0 + DAY_MS,
            byDevice: true,
            after: { siteId: 'school-a', deviceId: null, ts: T0 },
          }),
        )
        expect(resumed.rows.map((h) => h.deviceId)).toEqual(['dev-1', 'dev-2'])
      })
    })

    describe('readings: quality flags', () => {
      /** Reach of the test rules, like core's: 6 h back (NO2 stuck), 15 min ahead (spike). */
      const BACK_MS = 6 * HOUR_MS
      const AHEAD_MS = 15 * MINUTE_MS
      const TEN_MIN_MS = 10 * MINUTE_MS
      /** pm25 above `limit` (bit 0). */
      const HIGH = 1
      /** pm25 above 1000 somewhere in the 6 h up to and including the reading (bit 1: backward, like stuck). */
      const AFTER_BURST = 2
      /** The next reading, within 15 min, has pm25 above 1000 (bit 2: lookahead, like a spike's neighbours). */
      const BEFORE_BURST = 4

      /** Small deterministic rules standing in for core's checkReadings, with its reach. */
      function rules(version = 1, limit = 100): QualityCheck {
        return {
          version,
          contextBeforeMs: BACK_MS,
          contextAfterMs: AHEAD_MS,
          run(samples, range) {
            const masks = new Map<number, number>()
            const burst = samples.filter((o) => (o.values.pm25 ?? 0) > 1000).map((o) => o.ts)
            samples.forEach((s, i) => {
              if (s.ts < range.from || s.ts >= range.to) return
              const next = samples[i + 1]
              let mask = 0
              if ((s.values.pm25 ?? 0) > limit) mask |= HIGH
              if (burst.some((t) => t <= s.ts && t >= s.ts - BACK_MS)) mask |= AFTER_BURST
              if (next !== undefined && next.ts - s.ts <= AHEAD_MS && (next.values.pm25 ?? 0) > 1000)
                mask |= BEFORE_BURST
              if (mask !== 0) masks.set(s.ts, mask)
            })
            return masks
          },
        }
      }

      /** Checks the whole backlog as the worker does; returns the device-hours marked checked. */
      async function pass(check: QualityCheck, finalBefore: number): Promise<number> {
        let hours = 0
        for (const entry of await storage.readings.qualityBacklog(finalBefore, 10_000)) {
          hours += (await storage.readings.checkQuality(entry.deviceId, entry.hourStart, check, finalBefore)).hours
        }
        return hours
      }

      /** ts - T0 (minutes) -> qc of every stored reading, in stream order. */
      async function flags(deviceIds?: readonly string[]): Promise<Map<number, number | null | undefined>> {
        const out = new Map<number, number | null | undefined>()
        for await (const batch of storage.readings.streamReadings({
          metrics: ['pm25', 'no2'],
          from: T0 - DAY_MS,
          to: T0 + 30 * DAY_MS,
          ...(deviceIds ? { deviceIds } : {}),
        })) {
          for (const r of batch) out.set((r.ts - T0) / MINUTE_MS, r.qc)
        }
        return out
      }

      /** A day of pm25 = 10 every 10 minutes from T0, leaving out the readings at `skip` (ms after T0). */
      function day(deviceId = 'dev-1', skip: readonly number[] = []): StoredReading[] {
        return Array.from({ length: 144 }, (_, i) => i * TEN_MIN_MS)
          .filter((offset) => !skip.includes(offset))
          .map((offset) => reading(deviceId, T0 + offset, { pm25: 10 }, { expectedPerHour: 6 }))
      }

      it('stores flags beside the values, never changing them; null until the device-hour is checked', async () => {
        await storage.readings.writeReadings([
          reading('dev-1', T0, { pm25: 150, no2: 20 }),
          reading('dev-1', T0 + 30 * MINUTE_MS, { pm25: 5 }),
          reading('dev-1', T0 + HOUR_MS, { no2: 30 }),
          reading('dev-1', T0 + 2 * HOUR_MS + MINUTE_MS, { pm25: 101 }),
          reading('dev-2', T0 + HOUR_MS, { pm25: 500 }, { siteId: null }),
        ])
        const readAll = async () => {
          const rows = []
          for await (const batch of storage.readings.streamReadings({
            metrics: ['pm25', 'no2'],
            from: T0,
            to: T0 + DAY_MS,
          }))
            rows.push(...batch)
          return rows
        }
        const before = await readAll()
        expect(before.map((r) => r.qc)).toEqual([null, null, null, null, null])
        const finalBefore = T0 + 3 * HOUR_MS + FINAL_GRACE_MS
        expect(await storage.readings.qualityBacklog(finalBefore, 10)).toEqual([
          { deviceId: 'dev-1', hourStart: T0 },
          { deviceId: 'dev-1', hourStart: T0 + HOUR_MS },
          { deviceId: 'dev-2', hourStart: T0 + HOUR_MS },
          { deviceId: 'dev-1', hourStart: T0 + 2 * HOUR_MS },
        ])
        const first = await storage.readings.checkQuality('dev-1', T0, rules(), finalBefore)
        // [T0 - 1 h, T0 + 7 h) cut at the last final hour: dev-1's three hours, all four readings.
        expect(first).toEqual({ hours: 3, checked: 4, flagged: 2, changed: 2 })
        // The later entries of dev-1 were covered by that call.
        expect(await storage.readings.checkQuality('dev-1', T0 + HOUR_MS, rules(), finalBefore)).toEqual({
          hours: 0,
          checked: 0,
          flagged: 0,
          changed: 0,
        })
        expect(await storage.readings.qualityBacklog(finalBefore, 10)).toEqual([
          { deviceId: 'dev-2', hourStart: T0 + HOUR_MS },
        ])
        expect(await pass(rules(), finalBefore)).toBe(1)
        expect(await storage.readings.qualityBacklog(finalBefore, 10)).toEqual([])
        const after = await readAll()
        expect(after.map((r) => [r.deviceId, (r.ts - T0) / MINUTE_MS, r.qc])).toEqual([
          ['dev-2', 60, HIGH],
          ['dev-1', 0, HIGH],
          ['dev-1', 30, 0],
          ['dev-1', 60, 0],
          ['dev-1', 121, HIGH],
        ])
        expect(after.map(({ qc: _, ...rest }) => rest)).toEqual(before.map(({ qc: _, ...rest }) => rest))
        expect(
          await storage.readings.rawSeries({ deviceId: 'dev-1', metric: 'pm25', from: T0, to: T0 + DAY_MS, limit: 9 }),
        ).toEqual([
          { t: new Date(T0).toISOString(), value: 150, deviceId: 'dev-1' },
          { t: new Date(T0 + 30 * MINUTE_MS).toISOString(), value: 5, deviceId: 'dev-1' },
          { t: new Date(T0 + 121 * MINUTE_MS).toISOString(), value: 101, deviceId: 'dev-1' },
        ])
        // Durable: another handle sees the flags.
        const other = await fixture.reopen()
        extraHandles.push(other)
        const seen = []
        for await (const batch of other.readings.streamReadings({ metrics: ['pm25'], from: T0, to: T0 + DAY_MS }))
          seen.push(...batch.map((r) => r.qc))
        expect(seen).toEqual([HIGH, HIGH, 0, HIGH])
      })

      it('never marks an hour checked before it is final (its end plus the grace)', async () => {
        await storage.readings.writeReadings(day())
        const h2 = T0 + 2 * HOUR_MS
        // Hour 1 ended at h2; hour 2 ends at h2 + 1 h.
        const finalBefore = h2 + HOUR_MS - 1
        expect((await storage.readings.qualityBacklog(finalBefore, 10)).map((e) => e.hourStart)).toEqual([
          T0,
          T0 + HOUR_MS,
        ])
        expect(await storage.readings.checkQuality('dev-1', h2, rules(), finalBefore)).toMatchObject({ hours: 0 })
        expect(await storage.readings.checkQuality('dev-1', T0 + HOUR_MS, rules(), finalBefore)).toMatchObject({
          hours: 2,
          checked: 12,
        })
        const qc = await flags()
        expect([0, 50, 60, 110].map((m) => qc.get(m))).toEqual([0, 0, 0, 0])
        expect([120, 130, 23 * 60].map((m) => qc.get(m))).toEqual([null, null, null])
        // Exactly at its end plus grace (finalBefore = end) it is final.
        expect((await storage.readings.qualityBacklog(h2 + HOUR_MS, 10)).map((e) => e.hourStart)).toEqual([h2])
        expect(await storage.readings.checkQuality('dev-1', h2, rules(), h2 + HOUR_MS)).toMatchObject({ hours: 1 })
        expect((await flags()).get(120)).toBe(0)
      })

      it('re-dirties a checked hour on late data; the next pass recomputes 6 h later and the hour before', async () => {
        const late = T0 + 10 * HOUR_MS
        await storage.readings.writeReadings(day('dev-1', [late - T0]))
        const end = T0 + DAY_MS
        expect(await pass(rules(), end)).toBe(24)
        const clean = await flags()
        expect(clean.size).toBe(143)
        expect([...clean.values()].every((q) => q === 0)).toBe(true)

        await storage.readings.writeReadings([reading('dev-1', late, { pm25: 5000 }, { expectedPerHour: 6 })])
        const dirty = await flags()
        // Only the late reading's hour is unchecked; the rest keep their (now stale) flags until the pass.
        for (const [minute, q] of dirty) expect(q, `minute ${minute}`).toBe(minute >= 600 && minute < 660 ? null : 0)
        expect(await storage.readings.qualityBacklog(end, 10)).toEqual([{ deviceId: 'dev-1', hourStart: late }])
        const result = await storage.readings.checkQuality('dev-1', late, rules(), end)
        // [late - 1 h, late + 7 h): 8 hours of 6 readings (the late one among them).
        expect(result).toEqual({ hours: 1, checked: 48, flagged: 38, changed: 38 })
        const qc = await flags()
        for (const [minute, q] of qc) {
          let expected = 0
          if (minute === 600) expected = HIGH | AFTER_BURST
          else if (minute > 600 && minute <= 600 + 360) expected = AFTER_BURST
          else if (minute === 590) expected = BEFORE_BURST
          expect(q, `minute ${minute}`).toBe(expected)
        }
      })

      it('is idempotent: a second pass or a reading that changes no flag leaves the same masks', async () => {
        await storage.readings.writeReadings([
          ...day('dev-1', [15 * HOUR_MS]),
          reading('dev-1', T0 + 3 * HOUR_MS + 5 * MINUTE_MS, { pm25: 2000 }, { expectedPerHour: 6 }),
        ])
        const end = T0 + DAY_MS
        await pass(rules(), end)
        const first = await flags()
        expect([...first.values()].filter((q) => q !== 0)).toHaveLength(1 + 1 + 36)
        expect(await pass(rules(), end)).toBe(0)
        for (let h = 0; h < 24; h++) {
          expect(await storage.readings.checkQuality('dev-1', T0 + h * HOUR_MS, rules(), end)).toEqual({
            hours: 0,
            checked: 0,
            flagged: 0,
            changed: 0,
          })
        }
        // A reading that changes no flag: its hour is rechecked, nothing is rewritten.
        await storage.readings.writeReadings([
          reading('dev-1', T0 + 15 * HOUR_MS, { pm25: 10 }, { expectedPerHour: 6 }),
        ])
        const again = await storage.readings.checkQuality('dev-1', T0 + 15 * HOUR_MS, rules(), end)
        expect(again).toEqual({ hours: 1, checked: 48, flagged: 0, changed: 0 })
        expect(await flags()).toEqual(new Map([...first, [15 * 60, 0]]))
      })

      it('rechecks everything once when the rules version goes up', async () => {
        await storage.readings.writeReadings([...day('dev-1'), ...day('dev-2')])
        await storage.readings.writeReadings([
          reading('dev-1', T0 + 5 * MINUTE_MS, { pm25: 70 }, { expectedPerHour: 6 }),
        ])
        const end = T0 + DAY_MS
        expect(await storage.readings.requireQualityVersion(1)).toBe(0)
        expect(await pass(rules(1), end)).toBe(48)
        expect((await flags(['dev-1'])).get(5)).toBe(0)
        // Version 2 flags pm25 above 50.
        expect(await storage.readings.requireQualityVersion(2)).toBe(48)
        expect(await storage.readings.requireQualityVersion(2)).toBe(0)
        expect(await storage.readings.requireQualityVersion(1)).toBe(0)
        expect([...(await flags()).values()].every((q) => q === null)).toBe(true)
        expect(await storage.readings.qualityBacklog(end, 100)).toHaveLength(48)
        // Rules older than the version asked for are refused, so two program versions cannot undo each other.
        await expect(storage.readings.checkQuality('dev-1', T0, rules(1), end)).rejects.toMatchObject({
          code: 'CONFLICT',
        })
        expect(await pass(rules(2, 50), end)).toBe(48)
        const v2 = await flags(['dev-1'])
        expect(v2.get(5)).toBe(HIGH)
        expect([...v2.values()].filter((q) => q !== 0)).toHaveLength(1)
        // Checking a clean hour with newer rules (before requireQualityVersion) rechecks it too.
        expect(await storage.readings.checkQuality('dev-2', T0, rules(3), end)).toMatchObject({ hours: 7 })
      })

      it('pages the backlog and treats a device-hour split over two sites as one', async () => {
        await withDevice()
        await storage.readings.writeReadings([
          reading('dev-1', T0 + 10 * MINUTE_MS, { pm25: 200 }),
          reading('dev-1', T0 + 40 * MINUTE_MS, { pm25: 20 }, { siteId: 'preschool-b' }),
          reading('dev-2', T0, { pm25: 1 }),
          reading('dev-3', T0, { pm25: 1 }),
          reading('dev-1', T0 + HOUR_MS, { pm25: 1 }),
        ])
        const end = T0 + DAY_MS
        const page1 = await storage.readings.qualityBacklog(end, 2)
        expect(page1).toEqual([
          { deviceId: 'dev-1', hourStart: T0 },
          { deviceId: 'dev-2', hourStart: T0 },
        ])
        const page2 = await storage.readings.qualityBacklog(end, 2, page1[1])
        expect(page2).toEqual([
          { deviceId: 'dev-3', hourStart: T0 },
          { deviceId: 'dev-1', hourStart: T0 + HOUR_MS },
        ])
        expect(await storage.readings.qualityBacklog(end, 2, page2[1])).toEqual([])
        expect(await storage.readings.qualityBacklog(end, 0)).toEqual([])
        expect(await storage.readings.checkQuality('dev-1', T0, rules(), end)).toMatchObject({ hours: 2, checked: 3 })
        const qc = await flags(['dev-1'])
        expect([...qc]).toEqual([
          [40, 0],
          [10, HIGH],
          [60, 0],
        ])
        // A reading at one site re-dirties the device-hour for the other site's readings too.
        await storage.readings.writeReadings([
          reading('dev-1', T0 + 50 * MINUTE_MS, { pm25: 20 }, { siteId: 'preschool-b' }),
        ])
        expect((await flags(['dev-1'])).get(10)).toBeNull()
      })

      it('refuses bad masks and arguments, and rolls the check back', async () => {
        await storage.readings.writeReadings(day())
        const end = T0 + DAY_MS
        for (const mask of [-1, 0.5, 2 ** 53, Number.NaN]) {
          const bad: QualityCheck = { ...rules(), run: (samples) => new Map(samples.map((s) => [s.ts, mask])) }
          await expect(storage.readings.checkQuality('dev-1', T0, bad, end)).rejects.toMatchObject({
            code: 'INVALID_QUERY',
          })
        }
        await expect(storage.readings.checkQuality('dev-1', T0 + 1, rules(), end)).rejects.toMatchObject({
          code: 'INVALID_QUERY',
        })
        await expect(storage.readings.checkQuality('dev-1', T0, rules(0), end)).rejects.toMatchObject({
          code: 'INVALID_QUERY',
        })
        await expect(
          storage.readings.checkQuality('dev-1', T0, { ...rules(), contextBeforeMs: -1 }, end),
        ).rejects.toMatchObject({ code: 'INVALID_QUERY' })
        await expect(storage.readings.requireQualityVersion(0)).rejects.toMatchObject({ code: 'INVALID_QUERY' })
        expect(await storage.readings.qualityBacklog(end, 100)).toHaveLength(24)
        expect([...(await flags()).values()].every((q) => q === null)).toBe(true)
      })
    })

    describe('registry: sites', () => {
      it('inserts, then updates by id without duplicating', async () => {
        expect(await storage.registry.upsertSites(SITES)).toEqual({ inserted: 2, updated: 0 })
        expect(await storage.registry.upsertSites(SITES)).toEqual({ inserted: 0, updated: 0 })
        const renamed = SITES.map((s) => (s.id === 'school-a' ? { ...s, name: 'Skola A (ny)' } : s))
        expect(await storage.registry.upsertSites(renamed)).toEqual({ inserted: 0, updated: 1 })
        const sites = await storage.registry.listSites()
        expect(sites.map((s) => s.id).sort()).toEqual(['preschool-b', 'school-a'])
        expect((await storage.registry.getSite('school-a'))?.name).toBe('Skola A (ny)')
      })

      it('stores every field and applies the schema defaults', async () => {
        await storage.registry.upsertSites(SITES)
        expect(await storage.registry.getSite('school-a')).toEqual({
          id: 'school-a',
          name: 'Skola A',
          kind: 'school',
          stages: [],
          address: null,
          locality: null,
          municipality: 'Lund',
          lat: 55.7,
          lon: 13.19,
          demo: false,
        })
        await storage.registry.upsertSites([
          { ...SITES[0], id: 'school-c', stages: ['f-3', '4-6'], demo: true } as SiteInput,
        ])
        expect(await storage.registry.getSite('school-c')).toMatchObject({ stages: ['f-3', '4-6'], demo: true })
        expect(await storage.registry.getSite('nowhere')).toBeUndefined()
      })

      it('refuses an invalid site with its id in the message and writes none of the batch', async () => {
        const bad = { ...SITES[0], id: 'school-x', lat: 123 } as SiteInput
        await expect(storage.registry.upsertSites([SITES[1] as SiteInput, bad])).rejects.toThrow(/school-x/)
        expect(await storage.registry.listSites()).toEqual([])
      })
    })

    describe('registry: devices', () => {
      it('adds a device with its first placement and finds it again', async () => {
        await withDevice('dev-1', 'school-a', T0)
        const device = await storage.registry.getDevice('dev-1')
        expect(device).toEqual({
          id: 'dev-1',
          model: 'sim-pms5003',
          sensors: ['pm1', 'pm25', 'pm10', 'no2'],
          intervalS: 60,
          createdAt: T0,
          revokedAt: null,
          secretHash: 'hash-dev-1',
          placements: [{ deviceId: 'dev-1', siteId: 'school-a', from: T0, to: null, indoor: false, heightM: 2.5 }],
        })
        expect((await storage.registry.listDevices()).map((d) => d.id)).toEqual(['dev-1'])
        expect(await storage.registry.getDevice('dev-2')).toBeUndefined()
      })

      it('refuses a duplicate id (DEVICE_EXISTS) and an unknown site (UNKNOWN_SITE)', async () => {
        await withDevice('dev-1')
        const again = withDevice('dev-1')
        await expect(again).rejects.toMatchObject({ code: 'DEVICE_EXISTS' })
        const lost = storage.registry.addDevice(
          {
            id: 'dev-2',
            model: 'm',
            sensors: ['pm25'],
            intervalS: 60,
            secretHash: 'h',
            placement: { siteId: 'no-such-site', from: T0, indoor: false, heightM: null },
          },
          T0,
        )
        await expect(lost).rejects.toMatchObject({ code: 'UNKNOWN_SITE' })
        expect(await storage.registry.getDevice('dev-2')).toBeUndefined()
      })

      it('moves a device: the open placement ends where the new one starts', async () => {
        await withDevice('dev-1', 'school-a', T0)
        const moved = await storage.registry.moveDevice('dev-1', {
          siteId: 'preschool-b',
          from: T0 + DAY_MS,
          indoor: true,
          heightM: null,
        })
        expect(moved.placements).toEqual([
          { deviceId: 'dev-1', siteId: 'school-a', from: T0, to: T0 + DAY_MS, indoor: false, heightM: 2.5 },
          { deviceId: 'dev-1', siteId: 'preschool-b', from: T0 + DAY_MS, to: null, indoor: true, heightM: null },
        ])
        expect((await storage.registry.getDevice('dev-1'))?.placements).toEqual(moved.placements)
        const unknownSite = storage.registry.moveDevice('dev-1', {
          siteId: 'nope',
          from: T0 + 2 * DAY_MS,
          indoor: false,
          heightM: null,
        })
        await expect(unknownSite).rejects.toMatchObject({ code: 'UNKNOWN_SITE' })
      })

      it('revokes a device, and reports an unknown one', async () => {
        await withDevice('dev-1')
        expect(await storage.registry.revokeDevice('dev-1', T0 + 5)).toBe(true)
        expect((await storage.registry.getDevice('dev-1'))?.revokedAt).toBe(T0 + 5)
        expect(await storage.registry.revokeDevice('dev-unknown', T0)).toBe(false)
      })

      it('replaces a device secret hash', async () => {
        await withDevice('dev-1')
        expect(await storage.registry.setDeviceSecret('dev-1', 'new-hash')).toBe(true)
        expect((await storage.registry.getDevice('dev-1'))?.secretHash).toBe('new-hash')
        expect(await storage.registry.setDeviceSecret('dev-unknown', 'x')).toBe(false)
      })

      it('records a new reading interval for a device and bumps the revision', async () => {
        await withDevice('dev-1')
        const before = await storage.registry.revision()
        expect(await storage.registry.setDeviceInterval('dev-1', 120)).toBe(true)
        expect((await storage.registry.getDevice('dev-1'))?.intervalS).toBe(120)
        expect(await storage.registry.revision()).toBeGreaterThan(before)
        expect(await storage.registry.setDeviceInterval('dev-unknown', 60)).toBe(false)
        await expect(storage.registry.setDeviceInterval('dev-1', 0)).rejects.toThrow(/interval/)
      })

      it('stores service accounts and updates them by username', async () => {
        await storage.registry.upsertServiceAccount({ username: 'ingest', secretHash: 'h1', role: 'ingest' })
        await storage.registry.upsertServiceAccount({ username: 'ingest', secretHash: 'h2', role: 'admin' })
        expect(await storage.registry.getServiceAccount('ingest')).toEqual({
          username: 'ingest',
          secretHash: 'h2',
          role: 'admin',
        })
        expect(await storage.registry.getServiceAccount('nobody')).toBeUndefined()
      })

      it('increases the revision on every device, placement and account change', async () => {
        const revisions = [await storage.registry.revision()]
        const step = async (change: () => Promise<unknown>) => {
          await change()
          revisions.push(await storage.registry.revision())
        }
        await step(() => withDevice('dev-1', 'school-a', T0))
        await step(() =>
          storage.registry.moveDevice('dev-1', { siteId: 'preschool-b', from: T0 + 1, indoor: false, heightM: null }),
        )
        await step(() => storage.registry.setDeviceSecret('dev-1', 'rotated'))
        await step(() => storage.registry.revokeDevice('dev-1', T0 + 2))
        await step(() => storage.registry.upsertServiceAccount({ username: 'api', secretHash: 'h', role: 'api' }))
        for (let i = 1; i < revisions.length; i++) expect(revisions[i]).toBeGreaterThan(revisions[i - 1] ?? Infinity)
      })
    })

    describe('rejects', () => {
      it('skips the rejections of a redelivered message it has logged, but counts a message really sent twice', async () => {
        const batch = [
          { ...reject(1, 'dev-1', 'out_of_range'), index: 2, messageKey: 'm1' },
          { ...reject(1, 'dev-1', 'bad_timestamp'), index: 5, messageKey: 'm1' },
        ]
        await storage.rejects.record(batch)
        // The broker redelivers m1 after an ingest crash (DUP): nothing new is logged or counted.
        await storage.rejects.record(batch, { redelivery: true })
        expect(await storage.rejects.list({ limit: 10 })).toHaveLength(2)
        // A redelivery of a message not yet logged (the crash came before its rejections were written).
        await storage.rejects.record([{ ...reject(2, 'dev-1', 'out_of_range'), messageKey: 'm2' }], {
          redelivery: true,
        })
        // The device sends the same bytes again as a new message: counted again.
        await storage.rejects.record(batch)
        const counts = await storage.rejects.counts()
        expect(counts.find((c) => c.code === 'out_of_range')?.count).toBe(3)
        expect(counts.find((c) => c.code === 'bad_timestamp')?.count).toBe(2)
        expect((await storage.rejects.list({ limit: 10 }))[0]?.messageKey).toBe('m1')
      })

      it('lists newest first, filters by device, and keeps unknown senders as null', async () => {
        await storage.rejects.record([reject(1, 'dev-1'), reject(2, null, 'unknown_device'), reject(3, 'dev-2')])
        await storage.rejects.record([{ ...reject(4, 'dev-1', 'out_of_range'), index: 7 }])
        const all = await storage.rejects.list({ limit: 10 })
        expect(all.map((r) => [r.at, r.deviceId])).toEqual([
          [4, 'dev-1'],
          [3, 'dev-2'],
          [2, null],
          [1, 'dev-1'],
        ])
        expect(all[0]).toEqual({
          at: 4,
          deviceId: 'dev-1',
          topic: 'aq/v1/devices/dev-1/telemetry',
          code: 'out_of_range',
          message: 'test',
          index: 7,
          messageKey: null,
        })
        expect((await storage.rejects.list({ limit: 10, deviceId: 'dev-1' })).map((r) => r.at)).toEqual([4, 1])
        expect(await storage.rejects.list({ limit: 2 })).toHaveLength(2)
        const counts = await storage.rejects.counts()
        expect(counts).toHaveLength(4)
        expect(counts).toContainEqual({ deviceId: null, code: 'unknown_device', count: 1, lastAt: 2 })
      })

      it(`keeps at most ${REJECT_LOG_CAPACITY} entries, and the counts after entries roll off`, async () => {
        const total = REJECT_LOG_CAPACITY + 250
        const batch = Array.from({ length: total }, (_, i) => reject(i, i % 2 === 0 ? 'dev-1' : null))
        await storage.rejects.record(batch.slice(0, 5000))
        await storage.rejects.record(batch.slice(5000))
        const kept = await storage.rejects.list({ limit: total })
        expect(kept).toHaveLength(REJECT_LOG_CAPACITY)
        expect(kept[0]?.at).toBe(total - 1)
        expect(kept.at(-1)?.at).toBe(total - REJECT_LOG_CAPACITY)
        const counts = await storage.rejects.counts()
        expect(counts).toContainEqual({ deviceId: 'dev-1', code: 'bad_json', count: total / 2, lastAt: total - 2 })
        expect(counts).toContainEqual({ deviceId: null, code: 'bad_json', count: total / 2, lastAt: total - 1 })
      })
    })

    describe('access: users', () => {
      const anna = {
        email: 'Anna.Berg@Example.org',
        name: 'Anna Berg',
        role: 'principal' as const,
        sites: ['school-a', 'preschool-b', 'school-a'],
        passwordHash: 'scrypt$anna',
      }

      it('adds a user with a generated id and a lower-case email, and finds it by id and by email in any case', async () => {
        await storage.registry.upsertSites(SITES)
        const user = await storage.access.addUser(anna, T0)
        expect(user).toEqual({
          id: expect.stringMatching(/^usr_./),
          email: 'anna.berg@example.org',
          name: 'Anna Berg',
          role: 'principal',
          sites: ['preschool-b', 'school-a'],
          passwordHash: 'scrypt$anna',
          createdAt: T0,
          disabledAt: null,
        })
        expect(await storage.access.getUser(user.id)).toEqual(user)
        expect(await storage.access.getUserByEmail('ANNA.BERG@example.ORG')).toEqual(user)
        expect(await storage.access.getUserByEmail('someone@example.org')).toBeUndefined()
        expect(await storage.access.getUser('usr_nobody')).toBeUndefined()
        const other = await storage.access.addUser({ ...anna, email: 'bo@example.org', role: 'staff', sites: [] }, T0)
        expect(other.id).not.toBe(user.id)
        const fixed = await storage.access.addUser({ ...anna, id: 'usr_fixed', email: 'c@example.org' }, T0)
        expect(fixed.id).toBe('usr_fixed')
      })

      it('refuses a second user with the same email in another case (CONFLICT) and bad input', async () => {
        await storage.registry.upsertSites(SITES)
        const first = await storage.access.addUser(anna, T0)
        await expect(
          storage.access.addUser({ ...anna, email: 'anna.berg@EXAMPLE.org', name: 'Other' }, T0),
        ).rejects.toMatchObject({ name: 'StorageError', code: 'CONFLICT' })
        await expect(
          storage.access.addUser({ ...anna, id: first.id, email: 'x@example.org' }, T0),
        ).rejects.toMatchObject({ code: 'CONFLICT' })
        await expect(storage.access.addUser({ ...anna, email: 'not-an-email' }, T0)).rejects.toMatchObject({
          code: 'INVALID_USER',
        })
        const badRole = { ...anna, email: 'r@example.org', role: 'root' } as unknown as typeof anna
        await expect(storage.access.addUser(badRole, T0)).rejects.toMatchObject({ code: 'INVALID_USER' })
        await expect(
          storage.access.addUser({ ...anna, email: 's@example.org', sites: ['no-such-site'] }, T0),
        ).rejects.toMatchObject({ code: 'UNKNOWN_SITE' })
        expect((await storage.access.listUsers()).map((u) => u.email)).toEqual(['anna.berg@example.org'])
      })

      it('lists users by email, updates fields, and counts enabled users per role', async () => {
        await storage.registry.upsertSites(SITES)
        const c = await storage.access.addUser({ ...anna, email: 'cecilia@example.org' }, T0)
        const a = await storage.access.addUser({ ...anna, email: 'Adam@example.org', role: 'admin', sites: [] }, T0 + 1)
        await storage.access.addUser({ ...anna, email: 'bo@example.org', role: 'admin', sites: [] }, T0 + 2)
        const users = await storage.access.listUsers()
        expect(users.map((u) => [u.email, u.sites])).toEqual([
          ['adam@example.org', []],
          ['bo@example.org', []],
          ['cecilia@example.org', ['preschool-b', 'school-a']],
        ])
        expect(await storage.access.countUsers()).toBe(3)
        expect(await storage.access.countUsers('admin')).toBe(2)
        expect(await storage.access.countUsers('researcher')).toBe(0)

        const updated = await storage.access.updateUser(c.id, { sites: ['school-a'], name: null, passwordHash: 'h2' })
        expect(updated).toEqual({ ...c, sites: ['school-a'], name: null, passwordHash: 'h2' })
        expect(await storage.access.getUser(c.id)).toEqual(updated)
        const disabled = await storage.access.updateUser(a.id, { disabledAt: T0 + 5, role: 'staff' })
        expect(disabled).toMatchObject({ role: 'staff', disabledAt: T0 + 5, email: 'adam@example.org' })
        expect(await storage.access.countUsers('admin')).toBe(1)
        expect(await storage.access.countUsers()).toBe(2)
        expect(await storage.access.updateUser(a.id, { disabledAt: null })).toMatchObject({ disabledAt: null })
        expect(await storage.access.updateUser('usr_nobody', { name: 'x' })).toBeUndefined()
        await expect(storage.access.updateUser(c.id, { sites: ['no-such-site'] })).rejects.toMatchObject({
          code: 'UNKNOWN_SITE',
        })
        expect((await storage.access.getUser(c.id))?.sites).toEqual(['school-a'])
      })
    })

    describe('access: sessions', () => {
      async function user(): Promise<string> {
        return (
          await storage.access.addUser(
            { email: 'u@example.org', name: null, role: 'staff', sites: [], passwordHash: 'h' },
            T0,
          )
        ).id
      }
      function session(id: string, userId: string, expiresAt: number) {
        return {
          id,
          userId,
          secretHash: `hash-${id}`,
          csrfToken: `csrf-${id}`,
          createdAt: T0,
          expiresAt,
          lastSeenAt: T0,
        }
      }

      it('creates, finds, touches and deletes a session; an expired one is still returned', async () => {
        const userId = await user()
        const s = session('ses-1', userId, T0 + HOUR_MS)
        await storage.access.createSession(s)
        expect(await storage.access.getSession('ses-1')).toEqual(s)
        expect(await storage.access.touchSession('ses-1', T0 + 10, T0 + 2 * HOUR_MS)).toBe(true)
        expect(await storage.access.getSession('ses-1')).toEqual({
          ...s,
          lastSeenAt: T0 + 10,
          expiresAt: T0 + 2 * HOUR_MS,
        })
        expect(await storage.access.touchSession('ses-x', T0, T0)).toBe(false)

        await storage.access.createSession(session('ses-old', userId, T0 - 1))
        expect(await storage.access.getSession('ses-old')).toMatchObject({ expiresAt: T0 - 1 })

        expect(await storage.access.deleteSession('ses-1')).toBe(true)
        expect(await storage.access.deleteSession('ses-1')).toBe(false)
        expect(await storage.access.getSession('ses-1')).toBeUndefined()
      })

      it('removes expired sessions (expiresAt <= now) and all sessions of a user', async () => {
        const userId = await user()
        const other = (
          await storage.access.addUser(
            { email: 'o@example.org', name: null, role: 'staff', sites: [], passwordHash: null },
            T0,
          )
        ).id
        await storage.access.createSession(session('a', userId, T0 - 1))
        await storage.access.createSession(session('b', userId, T0))
        await storage.access.createSession(session('c', userId, T0 + 1))
        await storage.access.createSession(session('d', other, T0 + 1))
        expect(await storage.access.deleteExpiredSessions(T0)).toBe(2)
        expect(await storage.access.getSession('b')).toBeUndefined()
        expect(await storage.access.getSession('c')).toBeDefined()
        expect(await storage.access.deleteExpiredSessions(T0)).toBe(0)
        expect(await storage.access.deleteUserSessions(userId)).toBe(1)
        expect(await storage.access.getSession('c')).toBeUndefined()
        expect(await storage.access.getSession('d')).toBeDefined()
      })

      it('refuses a session of an unknown user (UNKNOWN_USER) and a duplicate id (CONFLICT)', async () => {
        const userId = await user()
        await expect(storage.access.createSession(session('s', 'usr_nobody', T0))).rejects.toMatchObject({
          code: 'UNKNOWN_USER',
        })
        await storage.access.createSession(session('s', userId, T0))
        await expect(storage.access.createSession(session('s', userId, T0 + 5))).rejects.toMatchObject({
          code: 'CONFLICT',
        })
        expect(await storage.access.getSession('s')).toMatchObject({ expiresAt: T0 })
      })
    })

    describe('access: API tokens', () => {
      const token = {
        id: 'tok-1',
        name: 'Research export',
        role: 'researcher' as const,
        scopes: ['series:hourly' as const, 'export' as const],
        sites: [],
        userId: null,
        secretHash: 'scrypt$tok',
        createdAt: T0,
        expiresAt: T0 + DAY_MS,
      }

      it('creates, finds, lists by creation time, revokes and touches tokens', async () => {
        await storage.registry.upsertSites(SITES)
        const userId = (
          await storage.access.addUser(
            { email: 'p@example.org', name: null, role: 'principal', sites: ['school-a'], passwordHash: null },
            T0,
          )
        ).id
        const created = await storage.access.createToken(token)
        expect(created).toEqual({ ...token, revokedAt: null, lastUsedAt: null })
        const second = await storage.access.createToken({
          ...token,
          id: 'tok-0',
          role: 'principal',
          scopes: ['series:raw'],
          sites: ['school-a'],
          userId,
          createdAt: T0 + 1,
          expiresAt: null,
        })
        expect(second).toMatchObject({ sites: ['school-a'], userId, expiresAt: null })
        expect(await storage.access.getToken('tok-1')).toEqual(created)
        expect(await storage.access.getToken('tok-x')).toBeUndefined()
        expect((await storage.access.listTokens()).map((t) => t.id)).toEqual(['tok-1', 'tok-0'])

        expect(await storage.access.touchToken('tok-1', T0 + 50)).toBe(true)
        expect(await storage.access.touchToken('tok-x', T0 + 50)).toBe(false)
        expect(await storage.access.revokeToken('tok-1', T0 + 100)).toBe(true)
        expect(await storage.access.revokeToken('tok-1', T0 + 200)).toBe(true)
        expect(await storage.access.revokeToken('tok-x', T0 + 200)).toBe(false)
        expect(await storage.access.getToken('tok-1')).toMatchObject({ revokedAt: T0 + 100, lastUsedAt: T0 + 50 })
        expect((await storage.access.getToken('tok-0'))?.revokedAt).toBeNull()
      })

      it('refuses a duplicate id, an unknown user, scope or site', async () => {
        await storage.access.createToken(token)
        await expect(storage.access.createToken({ ...token, name: 'again' })).rejects.toMatchObject({
          code: 'CONFLICT',
        })
        await expect(storage.access.createToken({ ...token, id: 't2', userId: 'usr_nobody' })).rejects.toMatchObject({
          code: 'UNKNOWN_USER',
        })
        const badScope = { ...token, id: 't3', scopes: ['everything'] } as unknown as typeof token
        await expect(storage.access.createToken(badScope)).rejects.toMatchObject({ code: 'INVALID_TOKEN' })
        await expect(storage.access.createToken({ ...token, id: 't4', sites: ['nowhere'] })).rejects.toMatchObject({
          code: 'UNKNOWN_SITE',
        })
        expect((await storage.access.listTokens()).map((t) => t.id)).toEqual(['tok-1'])
      })
    })

    describe('access: audit log', () => {
      it('lists newest first, pages with beforeId, and returns the detail as stored', async () => {
        const detail = { role: 'staff', sites: ['school-a'], nested: { n: 1.5, flag: true, none: null } }
        const first = await storage.access.appendAudit({
          at: T0,
          actor: 'cli',
          action: 'user.create',
          target: 'usr_1',
          detail,
        })
        expect(first).toEqual({
          id: expect.any(Number),
          at: T0,
          actor: 'cli',
          action: 'user.create',
          target: 'usr_1',
          detail,
        })
        for (let i = 1; i < 5; i++) {
          await storage.access.appendAudit({ at: T0 + i, actor: 'usr_1', action: `a${i}`, target: null, detail: {} })
        }
        const all = await storage.access.listAudit({ limit: 10 })
        expect(all.map((e) => e.action)).toEqual(['a4', 'a3', 'a2', 'a1', 'user.create'])
        expect(all.at(-1)).toEqual(first)
        const page1 = await storage.access.listAudit({ limit: 2 })
        expect(page1.map((e) => e.action)).toEqual(['a4', 'a3'])
        const page2 = await storage.access.listAudit({ limit: 2, beforeId: page1.at(-1)?.id ?? 0 })
        expect(page2.map((e) => e.action)).toEqual(['a2', 'a1'])
        const page3 = await storage.access.listAudit({ limit: 2, beforeId: page2.at(-1)?.id ?? 0 })
        expect(page3.map((e) => e.action)).toEqual(['user.create'])
        expect(await storage.access.listAudit({ limit: 2, beforeId: first.id })).toEqual([])
        expect(await storage.access.listAudit({ limit: 0 })).toEqual([])
      })

      it('refuses a detail that is not a JSON object', async () => {
        const detail = { big: 1n } as unknown as Record<string, unknown>
        await expect(
          storage.access.appendAudit({ at: T0, actor: 'cli', action: 'x', target: null, detail }),
        ).rejects.toMatchObject({ code: 'INVALID_AUDIT' })
        const array = [1, 2] as unknown as Record<string, unknown>
        await expect(
          storage.access.appendAudit({ at: T0, actor: 'cli', action: 'x', target: null, detail: array }),
        ).rejects.toMatchObject({ code: 'INVALID_AUDIT' })
        expect(await storage.access.listAudit({ limit: 10 })).toEqual([])
      })
    })

    describe('access: durability and revision', () => {
      it('keeps users, sessions, tokens and the audit log across reopen, without moving the registry revision', async () => {
        await storage.registry.upsertSites(SITES)
        const revision = await storage.registry.revision()
        const user = await storage.access.addUser(
          { email: 'p@example.org', name: 'P', role: 'principal', sites: ['school-a'], passwordHash: 'h' },
          T0,
        )
        await storage.access.updateUser(user.id, { role: 'admin', sites: [] })
        const session = {
          id: 's1',
          userId: user.id,
          secretHash: 'sh',
          csrfToken: 'c',
          createdAt: T0,
          expiresAt: T0 + HOUR_MS,
          lastSeenAt: T0,
        }
        await storage.access.createSession(session)
        await storage.access.touchSession('s1', T0 + 1, T0 + HOUR_MS)
        const token = await storage.access.createToken({
          id: 't1',
          name: 'n',
          role: 'principal',
          scopes: ['map:read'],
          sites: ['school-a'],
          userId: user.id,
          secretHash: 'th',
          createdAt: T0,
          expiresAt: null,
        })
        await storage.access.touchToken('t1', T0 + 2)
        await storage.access.revokeToken('t1', T0 + 3)
        const entry = await storage.access.appendAudit({
          at: T0,
          actor: user.id,
          action: 'token.create',
          target: 't1',
          detail: { k: 'v' },
        })
        await storage.access.deleteExpiredSessions(T0)
        expect(await storage.registry.revision()).toBe(revision)
        await storage.close()

        storage = await fixture.reopen()
        expect(await storage.access.getUser(user.id)).toEqual({ ...user, role: 'admin', sites: [] })
        expect(await storage.access.getSession('s1')).toEqual({ ...session, lastSeenAt: T0 + 1 })
        expect(await storage.access.getToken('t1')).toEqual({ ...token, lastUsedAt: T0 + 2, revokedAt: T0 + 3 })
        expect(await storage.access.listAudit({ limit: 5 })).toEqual([entry])
        const next = await storage.access.appendAudit({
          at: T0 + 9,
          actor: 'cli',
          action: 'x',
          target: null,
          detail: {},
        })
        expect(next.id).toBeGreaterThan(entry.id)
      })
    })

    describe('breaches: incidents', () => {
      const closed = { end: T0 + 2 * DAY_MS, closedAt: T0 + 2 * DAY_MS }

      beforeEach(async () => {
        await storage.registry.upsertSites(SITES)
      })

      it('creates an incident with a generated id and reads it back, escalations and flags included', async () => {
        const escalations = [
          { level: 75, at: T0 + HOUR_MS, value: 75.25 },
          { level: 100, at: T0 + 3 * HOUR_MS, value: 131.125 },
        ]
        const saved = await storage.breaches.saveIncident(incident({ escalations, retrospective: true }))
        expect(saved).toEqual({
          ...incident({ escalations, retrospective: true }),
          id: expect.stringMatching(/^inc_./),
          withdrawnAt: null,
          acknowledgedAt: null,
          acknowledgedBy: null,
        })
        expect(await storage.breaches.getIncident(saved.id)).toEqual(saved)
        expect(await storage.breaches.getIncident('inc_nobody')).toBeUndefined()
        const other = await storage.breaches.saveIncident(incident({ siteId: 'preschool-b' }))
        expect(other.id).not.toBe(saved.id)
        const fixed = await storage.breaches.saveIncident(incident({ id: 'inc_fixed', ruleId: 'se-mkn-pm10-day' }))
        expect(fixed.id).toBe('inc_fixed')
        expect(await storage.breaches.getIncident('inc_fixed')).toEqual(fixed)
      })

      it('updates by id (close, new peak and escalation) and keeps acknowledgement and withdrawal', async () => {
        const first = await storage.breaches.saveIncident(incident())
        expect(await storage.breaches.acknowledge(first.id, 'usr_anna', T0 + DAY_MS + 5)).toBe(true)
        const escalations = [{ level: 75, at: T0 + DAY_MS, value: 80 }]
        const update = incident({
          ...closed,
          id: first.id,
          peak: 80,
          peakAt: T0 + DAY_MS,
          escalations,
          updatedAt: T0 + 3 * DAY_MS,
        })
        // A full record as read may be passed back; its acknowledgement fields are ignored.
        const updated = await storage.breaches.saveIncident({
          ...update,
          acknowledgedAt: null,
          acknowledgedBy: null,
        } as IncidentInput)
        expect(updated).toEqual({
          ...update,
          id: first.id,
          withdrawnAt: null,
          acknowledgedAt: T0 + DAY_MS + 5,
          acknowledgedBy: 'usr_anna',
        })
        expect(await storage.breaches.getIncident(first.id)).toEqual(updated)
        expect(await storage.breaches.listIncidents({ limit: 10 })).toHaveLength(1)
      })

      it('refuses an unknown site, an invalid record and an update that changes what the incident is', async () => {
        await expect(storage.breaches.saveIncident(incident({ siteId: 'no-such-site' }))).rejects.toMatchObject({
          name: 'StorageError',
          code: 'UNKNOWN_SITE',
        })
        const bad: Partial<IncidentInput>[] = [
          { end: T0 + DAY_MS, closedAt: null },
          { end: T0, closedAt: T0 },
          { openedAt: T0 - 1 },
          { pollutant: 'pm1' as IncidentInput['pollutant'] },
          { severity: 'panic' as IncidentInput['severity'] },
          { profileVersion: '' },
          { threshold: 0 },
          { start: 1.5 },
          { peak: Number.NaN },
          { id: 'usr_x' },
          { escalations: [{ level: -1, at: T0, value: 1 }] },
        ]
        for (const overrides of bad) {
          await expect(
            storage.breaches.saveIncident(incident(overrides)),
            JSON.stringify(overrides),
          ).rejects.toMatchObject({
            code: 'INVALID_INCIDENT',
          })
        }
        const saved = await storage.breaches.saveIncident(incident())
        for (const change of [
          { siteId: 'preschool-b' },
          { ruleId: 'se-mkn-pm10-day' },
          { pollutant: 'pm25' as const },
          { profileId: 'se-mkn' },
          { profileVersion: '2027-01-01' },
        ]) {
          await expect(storage.breaches.saveIncident(incident({ ...change, id: saved.id }))).rejects.toMatchObject({
            code: 'CONFLICT',
          })
        }
        expect(await storage.breaches.listIncidents({ limit: 10, includeWithdrawn: true })).toEqual([saved])
      })

      it('allows one open incident per (site, rule): a second is a CONFLICT until the first closes or is withdrawn', async () => {
        const first = await storage.breaches.saveIncident(incident())
        const second = storage.breaches.saveIncident(
          incident({ start: T0 + 5 * DAY_MS, openedAt: T0 + 5 * DAY_MS, peakAt: T0 + 5 * DAY_MS }),
        )
        await expect(second).rejects.toMatchObject({ name: 'StorageError', code: 'CONFLICT' })
        await expect(second).rejects.toThrow(new RegExp(`school-a already has an open incident \\(${first.id}\\)`))
        // Other rule at the same site, same rule at another site, and the open incident itself: no conflict.
        await storage.breaches.saveIncident(incident({ ruleId: 'se-mkn-pm10-day' }))
        await storage.breaches.saveIncident(incident({ siteId: 'preschool-b' }))
        await storage.breaches.saveIncident(incident({ id: first.id, peak: 70 }))
        // A closed incident of the same (site, rule) may exist beside an open one.
        await storage.breaches.saveIncident(incident({ id: first.id, ...closed }))
        const next = await storage.breaches.saveIncident(
          incident({ start: T0 + 5 * DAY_MS, openedAt: T0 + 5 * DAY_MS, peakAt: T0 + 5 * DAY_MS }),
        )
        // Re-opening the closed one (late data removed its close) would make two open ones.
        await expect(storage.breaches.saveIncident(incident({ id: first.id }))).rejects.toMatchObject({
          code: 'CONFLICT',
        })
        expect((await storage.breaches.getIncident(first.id))?.end).toBe(closed.end)
        // A withdrawn incident frees the slot.
        expect(await storage.breaches.withdrawIncident(next.id, T0 + 6 * DAY_MS)).toBe(true)
        await storage.breaches.saveIncident(incident({ id: first.id }))
        expect((await storage.breaches.getIncident(first.id))?.end).toBeNull()
      })

      it('enforces one open incident per (site, rule) across handles', async () => {
        const other = await fixture.reopen()
        extraHandles.push(other)
        await storage.breaches.saveIncident(incident())
        await expect(
          other.breaches.saveIncident(incident({ start: T0 + DAY_MS, openedAt: T0 + DAY_MS, peakAt: T0 + DAY_MS })),
        ).rejects.toMatchObject({ code: 'CONFLICT' })
      })

      it('lists newest start first, filtered by site, rule, state and time, without withdrawn ones', async () => {
        const at = (day: number) => T0 + day * DAY_MS
        const a = await storage.breaches.saveIncident(
          incident({ start: at(0), openedAt: at(0), peakAt: at(0), end: at(2), closedAt: at(2) }),
        )
        const b = await storage.breaches.saveIncident(
          incident({ start: at(5), openedAt: at(5), peakAt: at(5), end: at(6), closedAt: at(6) }),
        )
        const c = await storage.breaches.saveIncident(incident({ start: at(10), openedAt: at(10), peakAt: at(10) }))
        const d = await storage.breaches.saveIncident(
          incident({ siteId: 'preschool-b', start: at(3), openedAt: at(3), peakAt: at(3) }),
        )
        const e = await storage.breaches.saveIncident(
          incident({ ruleId: 'se-mkn-pm10-day', start: at(1), openedAt: at(1), peakAt: at(1) }),
        )
        const w = await storage.breaches.saveIncident(
          incident({
            ruleId: 'se-mkn-pm10-day',
            start: at(7),
            openedAt: at(7),
            peakAt: at(7),
            ...{ end: at(8), closedAt: at(8) },
          }),
        )
        await storage.breaches.withdrawIncident(w.id, at(9))
        const ids = async (query: IncidentQuery) => (await storage.breaches.listIncidents(query)).map((i) => i.id)

        expect(await ids({ limit: 10 })).toEqual([c.id, b.id, d.id, e.id, a.id])
        expect(await ids({ limit: 2 })).toEqual([c.id, b.id])
        expect(await ids({ limit: 0 })).toEqual([])
        expect(await ids({ limit: 10, includeWithdrawn: true })).toEqual([c.id, w.id, b.id, d.id, e.id, a.id])
        expect(await ids({ limit: 10, siteId: 'preschool-b' })).toEqual([d.id])
        expect(await ids({ limit: 10, ruleId: 'se-mkn-pm10-day' })).toEqual([e.id])
        expect(await ids({ limit: 10, ruleId: 'se-mkn-pm10-day', includeWithdrawn: true })).toEqual([w.id, e.id])
        expect(await ids({ limit: 10, state: 'open' })).toEqual([c.id, d.id, e.id])
        expect(await ids({ limit: 10, state: 'closed' })).toEqual([b.id, a.id])
        expect(await ids({ limit: 10, state: 'all', siteId: 'school-a', ruleId: 'eu2008-pm10-day' })).toEqual([
          c.id,
          b.id,
          a.id,
        ])
        // Overlap with [from, to): a (days 0–2) ends at day 2, so it is out from day 2 on; open ones reach on forever.
        expect(await ids({ limit: 10, from: at(2), to: at(5) })).toEqual([d.id, e.id])
        expect(await ids({ limit: 10, from: at(1), to: at(5) })).toEqual([d.id, e.id, a.id])
        expect(await ids({ limit: 10, from: at(5), to: at(5) + 1 })).toEqual([b.id, d.id, e.id])
        expect(await ids({ limit: 10, from: at(11) })).toEqual([c.id, d.id, e.id])
        expect(await ids({ limit: 10, to: at(1) })).toEqual([a.id])
        await expect(storage.breaches.listIncidents({ limit: 1.5 } as IncidentQuery)).rejects.toMatchObject({
          code: 'INVALID_QUERY',
        })
        await expect(
          storage.breaches.listIncidents({ limit: 5, state: 'gone' } as unknown as IncidentQuery),
        ).rejects.toMatchObject({ code: 'INVALID_QUERY' })
      })

      it('lists incidents with the same start newest-created first', async () => {
        const first = await storage.breaches.saveIncident(incident({ id: 'inc_z' }))
        const second = await storage.breaches.saveIncident(incident({ id: 'inc_a', siteId: 'preschool-b' }))
        const third = await storage.breaches.saveIncident(incident({ id: 'inc_m', ruleId: 'se-mkn-pm10-day' }))
        // An update does not change the order.
        await storage.breaches.saveIncident(incident({ id: first.id, peak: 99 }))
        const listed = await storage.breaches.listIncidents({ limit: 10 })
        expect(listed.map((i) => i.id)).toEqual([third.id, second.id, first.id])
      })

      it('counts open incidents per site, leaving out closed and withdrawn ones', async () => {
        expect(await storage.breaches.openCountBySite()).toEqual(new Map())
        await storage.breaches.saveIncident(incident())
        await storage.breaches.saveIncident(incident({ ruleId: 'se-mkn-pm10-day' }))
        await storage.breaches.saveIncident(incident({ ruleId: 'eu2024-pm10-day', ...closed }))
        const withdrawn = await storage.breaches.saveIncident(incident({ ruleId: 'eea-pm10-poor' }))
        await storage.breaches.saveIncident(incident({ siteId: 'preschool-b' }))
        expect(await storage.breaches.openCountBySite()).toEqual(
          new Map([
            ['school-a', 3],
            ['preschool-b', 1],
          ]),
        )
        expect(await storage.breaches.withdrawIncident(withdrawn.id, T0 + DAY_MS)).toBe(true)
        expect(await storage.breaches.openCountBySite()).toEqual(
          new Map([
            ['school-a', 2],
            ['preschool-b', 1],
          ]),
        )
      })

      it('withdraws and acknowledges once, keeping the first time, and reports unknown ids', async () => {
        const saved = await storage.breaches.saveIncident(incident())
        expect(await storage.breaches.withdrawIncident('inc_nobody', T0)).toBe(false)
        expect(await storage.breaches.acknowledge('inc_nobody', 'usr_a', T0)).toBe(false)

        expect(await storage.breaches.acknowledge(saved.id, 'usr_a', T0 + 2 * DAY_MS)).toBe(true)
        expect(await storage.breaches.acknowledge(saved.id, 'usr_b', T0 + 3 * DAY_MS)).toBe(true)
        expect(await storage.breaches.withdrawIncident(saved.id, T0 + 4 * DAY_MS)).toBe(true)
        expect(await storage.breaches.withdrawIncident(saved.id, T0 + 5 * DAY_MS)).toBe(true)
        expect(await storage.breaches.getIncident(saved.id)).toEqual({
          ...saved,
          acknowledgedAt: T0 + 2 * DAY_MS,
          acknowledgedBy: 'usr_a',
          withdrawnAt: T0 + 4 * DAY_MS,
          updatedAt: T0 + 4 * DAY_MS,
        })
        expect(await storage.breaches.listIncidents({ limit: 10 })).toEqual([])
        expect(await storage.breaches.listIncidents({ limit: 10, state: 'open' })).toEqual([])
      })

      it('keeps comments oldest first (equal times in the order added) and refuses bad ones', async () => {
        const saved = await storage.breaches.saveIncident(incident())
        const other = await storage.breaches.saveIncident(incident({ siteId: 'preschool-b' }))
        await storage.breaches.addComment(saved.id, 'usr_b', T0 + 20, 'second')
        const first = await storage.breaches.addComment(saved.id, 'usr_a', T0 + 10, 'Ventilation checked. 🙂')
        expect(first).toEqual({ incidentId: saved.id, at: T0 + 10, actor: 'usr_a', text: 'Ventilation checked. 🙂' })
        await storage.breaches.addComment(saved.id, 'usr_c', T0 + 20, 'third')
        await storage.breaches.addComment(other.id, 'usr_a', T0, 'elsewhere')
        const longest = '🙂'.repeat(MAX_COMMENT_CHARS)
        await storage.breaches.addComment(saved.id, 'cli', T0 + 30, longest)
        expect(await storage.breaches.listComments(saved.id)).toEqual([
          first,
          { incidentId: saved.id, at: T0 + 20, actor: 'usr_b', text: 'second' },
          { incidentId: saved.id, at: T0 + 20, actor: 'usr_c', text: 'third' },
          { incidentId: saved.id, at: T0 + 30, actor: 'cli', text: longest },
        ])
        expect(await storage.breaches.listComments('inc_nobody')).toEqual([])

        await expect(storage.breaches.addComment('inc_nobody', 'usr_a', T0, 'x')).rejects.toMatchObject({
          code: 'UNKNOWN_INCIDENT',
        })
        for (const [actor, text] of [
          ['usr_a', 'x'.repeat(MAX_COMMENT_CHARS + 1)],
          ['usr_a', '  \n '],
          ['', 'x'],
        ] as const) {
          await expect(storage.breaches.addComment(saved.id, actor, T0, text)).rejects.toMatchObject({
            code: 'INVALID_COMMENT',
          })
        }
        expect(await storage.breaches.listComments(saved.id)).toHaveLength(4)
      })

      it('keeps incidents, acknowledgements and comments across reopen, without moving the registry revision', async () => {
        const revision = await storage.registry.revision()
        const escalations = [{ level: 75, at: T0, value: 75.5 }]
        const saved = await storage.breaches.saveIncident(incident({ escalations, retrospective: true }))
        await storage.breaches.acknowledge(saved.id, 'usr_a', T0 + 1)
        const comment = await storage.breaches.addComment(saved.id, 'usr_a', T0 + 2, 'noted')
        expect(await storage.registry.revision()).toBe(revision)
        await storage.close()

        storage = await fixture.reopen()
        const read = await storage.breaches.getIncident(saved.id)
        expect(read).toEqual({ ...saved, acknowledgedAt: T0 + 1, acknowledgedBy: 'usr_a' })
        expect(read?.escalations).toEqual(escalations)
        expect(await storage.breaches.listComments(saved.id)).toEqual([comment])
        expect(await storage.breaches.openCountBySite()).toEqual(new Map([['school-a', 1]]))
        await expect(
          storage.breaches.saveIncident(incident({ start: T0 + DAY_MS, openedAt: T0 + DAY_MS, peakAt: T0 + DAY_MS })),
        ).rejects.toMatchObject({ code: 'CONFLICT' })
      })
    })

    describe('alerts', () => {
      const LEASE_MS = 60_000
      let anna: string
      let bo: string

      beforeEach(async () => {
        await withDevice('dev-1')
        anna = (
          await storage.access.addUser(
            { email: 'anna@example.org', name: null, role: 'principal', sites: ['school-a'], passwordHash: null },
            T0,
          )
        ).id
        bo = (
          await storage.access.addUser(
            { email: 'bo@example.org', name: null, role: 'staff', sites: [], passwordHash: null },
            T0,
          )
        ).id
      })

      /** The live "opened" event of incident `incidentId` at school-a. */
      function event(overrides: Partial<NewAlertEvent> = {}): NewAlertEvent {
        return {
          key: 'opened:inc_a',
          kind: 'opened',
          topic: 'breaches',
          siteId: 'school-a',
          deviceId: null,
          incidentId: 'inc_a',
          severity: 'warning',
          urgent: false,
          live: true,
          at: T0,
          data: { kind: 'opened', siteId: 'school-a', value: 61.5, peakAt: T0, note: 'µg/m³ 🙂' },
          ...overrides,
        }
      }

      function subscription(overrides: Partial<NewSubscription> = {}): NewSubscription {
        return {
          userId: anna,
          topic: 'breaches',
          channel: 'email',
          target: 'anna@example.org',
          sites: ['school-a'],
          minSeverity: 'warning',
          language: 'sv',
          quietHours: { windows: [{ from: '18:00', to: '07:00' }], weekends: true, holidays: true, extraDays: [] },
          unsubscribeHash: 'unsubscribe-hash',
          createdAt: T0,
          ...overrides,
        }
      }

      /** A message for `sub`, as the fan-out would make it. */
      function message(sub: SubscriptionRecord, overrides: Partial<NewOutboxMessage> = {}): NewOutboxMessage {
        return {
          subscriptionId: sub.id,
          userId: sub.userId,
          channel: sub.channel,
          target: sub.target,
          status: 'pending',
          deliverAfter: T0,
          subject: 'PM10 över gränsvärdet vid Skola A',
          text: 'text',
          html: '<p>text</p>',
          payload: { kind: 'opened', siteId: 'school-a' },
          language: sub.language,
          ...overrides,
        }
      }

      /** Stores incident inc_a with n live events and fans each out to `sub` (one pending message per event). */
      async function queued(sub: SubscriptionRecord, n: number, overrides: Partial<NewOutboxMessage> = {}) {
        await storage.alerts.commitEvaluation({
          incidents: [incident({ id: 'inc_a' })],
          withdrawals: [],
          events: Array.from({ length: n }, (_, i) => event({ key: `e${i}` })),
          now: T0,
        })
        const events = await storage.alerts.pendingFanOut(n)
        for (const e of events) await storage.alerts.fanOut(e.id, [message(sub, overrides)], T0)
        return storage.alerts.listOutbox({ limit: n, userId: sub.userId })
      }

      it('commits incidents and events in one call and never doubles an event on re-evaluation', async () => {
        const change = {
          incidents: [incident({ id: 'inc_a' }), incident({ siteId: 'preschool-b' })],
          withdrawals: [],
          events: [event(), event({ key: 'opened:inc_a' }), event({ key: 'escalated:inc_a:75', kind: 'escalated' })],
          now: T0 + 5,
        }
        const first = await storage.alerts.commitEvaluation(change)
        expect(first.eventsInserted).toBe(2)
        expect(first.incidents).toEqual([
          expect.objectContaining({ id: 'inc_a', siteId: 'school-a', end: null }),
          expect.objectContaining({ id: expect.stringMatching(/^inc_./), siteId: 'preschool-b' }),
        ])
        expect(await storage.breaches.getIncident('inc_a')).toEqual(first.incidents[0])
        // The same evaluation again (a redelivered trigger): the incident is updated, no event is added.
        const again = await storage.alerts.commitEvaluation({
          ...change,
          incidents: [incident({ id: 'inc_a', peak: 70 })],
          now: T0 + 9,
        })
        expect(again).toEqual({ incidents: [expect.objectContaining({ id: 'inc_a', peak: 70 })], eventsInserted: 0 })
        const events = await storage.alerts.listEvents({ limit: 10 })
        expect(events).toEqual([
          {
            ...event({ key: 'escalated:inc_a:75', kind: 'escalated' }),
            id: expect.any(Number),
            createdAt: T0 + 5,
            fannedOutAt: null,
          },
          { ...event(), id: expect.any(Number), createdAt: T0 + 5, fannedOutAt: null },
        ])
        expect(await storage.alerts.getEvent(events[1]?.id ?? 0)).toEqual(events[1])
        expect(await storage.alerts.getEvent(9999)).toBeUndefined()
        expect(await storage.alerts.appendEvents([event()], T0 + 20)).toBe(0)
      })

      it('withdraws incidents in the same transaction and rolls everything back when one part is refused', async () => {
        await storage.alerts.commitEvaluation({
          incidents: [incident({ id: 'inc_a' })],
          withdrawals: [],
          events: [],
          now: T0,
        })
        const refused: [EvaluationCommit, string][] = [
          // An event about an incident that does not exist (a new incident needs its id set).
          [
            {
              incidents: [incident({ siteId: 'preschool-b' })],
              withdrawals: [],
              events: [event({ key: 'x', incidentId: 'inc_nobody' })],
              now: T0,
            },
            'UNKNOWN_INCIDENT',
          ],
          [
            {
              incidents: [incident({ siteId: 'preschool-b' })],
              withdrawals: [{ id: 'inc_nobody', at: T0 }],
              events: [],
              now: T0,
            },
            'UNKNOWN_INCIDENT',
          ],
          [
            {
              incidents: [incident({ siteId: 'preschool-b' })],
              withdrawals: [],
              events: [event({ key: 'x', kind: 'panic' as NewAlertEvent['kind'] })],
              now: T0,
            },
            'INVALID_ALERT',
          ],
          [
            {
              incidents: [incident({ siteId: 'preschool-b' })],
              withdrawals: [],
              events: [event({ key: 'x', siteId: 'nowhere' })],
              now: T0,
            },
            'UNKNOWN_SITE',
          ],
          // A second open incident for school-a and the rule, after a valid one for preschool-b.
          [
            {
              incidents: [incident({ siteId: 'preschool-b' }), incident()],
              withdrawals: [],
              events: [event({ key: 'x' })],
              now: T0,
            },
            'CONFLICT',
          ],
          [
            {
              incidents: [incident({ siteId: 'preschool-b' }), incident({ threshold: -1 })],
              withdrawals: [],
              events: [],
              now: T0,
            },
            'INVALID_INCIDENT',
          ],
          [
            { incidents: [], withdrawals: [], events: [event({ key: 'x', data: undefined })], now: T0 },
            'INVALID_ALERT',
          ],
          [
            {
              incidents: [],
              withdrawals: [],
              events: [event({ key: 'x', data: 'x'.repeat(MAX_ALERT_DATA_CHARS) })],
              now: T0,
            },
            'INVALID_ALERT',
          ],
        ]
        for (const [change, code] of refused) {
          await expect(storage.alerts.commitEvaluation(change), code).rejects.toMatchObject({
            name: 'StorageError',
            code,
          })
        }
        expect(await storage.breaches.listIncidents({ limit: 10, includeWithdrawn: true })).toHaveLength(1)
        expect(await storage.alerts.listEvents({ limit: 10 })).toEqual([])

        const result = await storage.alerts.commitEvaluation({
          incidents: [],
          withdrawals: [{ id: 'inc_a', at: T0 + DAY_MS }],
          events: [event({ key: 'withdrawn:inc_a', kind: 'withdrawn', live: false })],
          now: T0 + DAY_MS,
        })
        expect(result).toEqual({ incidents: [], eventsInserted: 1 })
        expect((await storage.breaches.getIncident('inc_a'))?.withdrawnAt).toBe(T0 + DAY_MS)
      })

      it('appends and lists events newest first, by incident and site, with paging; only live ones await fan-out', async () => {
        await storage.breaches.saveIncident(incident({ id: 'inc_a' }))
        const inserted = await storage.alerts.appendEvents(
          [
            event({ key: 'a' }),
            event({ key: 'b', live: false }),
            event({ key: 'c', topic: 'device-health', kind: 'device-offline', incidentId: null, deviceId: 'dev-1' }),
            event({ key: 'd', siteId: 'preschool-b', incidentId: null, urgent: true, severity: 'alert' }),
          ],
          T0,
        )
        expect(inserted).toBe(4)
        const keys = async (query: AlertEventQuery) => (await storage.alerts.listEvents(query)).map((e) => e.key)
        expect(await keys({ limit: 10 })).toEqual(['d', 'c', 'b', 'a'])
        expect(await keys({ limit: 2 })).toEqual(['d', 'c'])
        expect(await keys({ limit: 0 })).toEqual([])
        expect(await keys({ limit: 10, incidentId: 'inc_a' })).toEqual(['b', 'a'])
        expect(await keys({ limit: 10, siteId: 'preschool-b' })).toEqual(['d'])
        const [, second] = await storage.alerts.listEvents({ limit: 2 })
        expect(await keys({ limit: 10, beforeId: second?.id ?? 0 })).toEqual(['b', 'a'])
        expect((await storage.alerts.pendingFanOut(10)).map((e) => e.key)).toEqual(['a', 'c', 'd'])
        expect((await storage.alerts.pendingFanOut(1)).map((e) => e.key)).toEqual(['a'])
        await expect(storage.alerts.listEvents({ limit: 1.5 })).rejects.toMatchObject({ code: 'INVALID_QUERY' })
        await expect(
          storage.alerts.appendEvents([event({ key: 'e', deviceId: 'dev-unknown', incidentId: null })], T0),
        ).rejects.toMatchObject({ code: 'UNKNOWN_DEVICE' })
        await expect(storage.alerts.appendEvents([event({ key: '' })], T0)).rejects.toMatchObject({
          code: 'INVALID_ALERT',
        })
      })

      it('adds, lists and disables subscriptions, and refuses invalid ones', async () => {
        const sub = await storage.alerts.addSubscription(
          subscription({ sites: ['school-a', 'preschool-b', 'school-a'] }),
        )
        expect(sub).toEqual({
          ...subscription({ sites: ['preschool-b', 'school-a'] }),
          unsubscribeHash: undefined,
          id: expect.stringMatching(/^sub_./),
          disabledAt: null,
        })
        expect(sub).not.toHaveProperty('unsubscribeHash')
        expect(await storage.alerts.getSubscription(sub.id)).toEqual(sub)
        expect(await storage.alerts.getUnsubscribeHash(sub.id)).toBe('unsubscribe-hash')
        expect(await storage.alerts.getUnsubscribeHash('sub_nobody')).toBeUndefined()
        const all = await storage.alerts.addSubscription(
          subscription({
            userId: bo,
            channel: 'in_app',
            target: null,
            sites: 'all',
            quietHours: null,
            createdAt: T0 + 1,
          }),
        )
        const health = await storage.alerts.addSubscription(
          subscription({
            id: 'sub_fixed',
            userId: bo,
            topic: 'device-health',
            channel: 'webhook',
            target: 'https://example.org/hook',
            createdAt: T0 + 2,
            quietHours: { windows: [], weekends: false, holidays: false },
          }),
        )
        expect(health.id).toBe('sub_fixed')
        expect(health.quietHours).toEqual({ windows: [], weekends: false, holidays: false, extraDays: [] })
        const ids = async (query?: SubscriptionQuery) =>
          (await storage.alerts.listSubscriptions(query)).map((s) => s.id)
        expect(await ids()).toEqual([sub.id, all.id, health.id])
        expect(await ids({ userId: bo })).toEqual([all.id, health.id])
        expect(await ids({ topic: 'breaches' })).toEqual([sub.id, all.id])
        expect(await ids({ topic: 'breaches', siteId: 'preschool-b' })).toEqual([sub.id, all.id])
        expect(await ids({ siteId: 'nowhere' })).toEqual([all.id])

        expect(await storage.alerts.disableSubscription(sub.id, T0 + 5)).toBe(true)
        expect(await storage.alerts.disableSubscription(sub.id, T0 + 6)).toBe(true)
        expect(await storage.alerts.disableSubscription('sub_nobody', T0)).toBe(false)
        expect(await ids({ topic: 'breaches' })).toEqual([all.id])
        expect(await ids({ topic: 'breaches', includeDisabled: true })).toEqual([sub.id, all.id])
        expect((await storage.alerts.getSubscription(sub.id))?.disabledAt).toBe(T0 + 5)

        const refused: [Partial<NewSubscription>, string][] = [
          [{ userId: 'usr_nobody' }, 'UNKNOWN_USER'],
          [{ sites: ['school-a', 'nowhere'] }, 'UNKNOWN_SITE'],
          [{ id: 'sub_fixed' }, 'CONFLICT'],
          [{ channel: 'in_app' }, 'INVALID_SUBSCRIPTION'],
          [{ target: null }, 'INVALID_SUBSCRIPTION'],
          [{ sites: [] }, 'INVALID_SUBSCRIPTION'],
          [{ sites: ['Not An Id'] }, 'INVALID_SUBSCRIPTION'],
          [{ sites: Array.from({ length: MAX_SUBSCRIPTION_SITES + 1 }, (_, i) => `s${i}`) }, 'INVALID_SUBSCRIPTION'],
          [{ topic: 'weather' as NewSubscription['topic'] }, 'INVALID_SUBSCRIPTION'],
          [{ language: 'de' as NewSubscription['language'] }, 'INVALID_SUBSCRIPTION'],
          [{ minSeverity: 'panic' as NewSubscription['minSeverity'] }, 'INVALID_SUBSCRIPTION'],
          [
            { quietHours: { windows: [{ from: '6pm', to: '07:00' }], weekends: true, holidays: true } },
            'INVALID_SUBSCRIPTION',
          ],
          [{ id: 'usr_x' }, 'INVALID_SUBSCRIPTION'],
          [{ unsubscribeHash: '' }, 'INVALID_SUBSCRIPTION'],
        ]
        for (const [overrides, code] of refused) {
          await expect(
            storage.alerts.addSubscription(subscription(overrides)),
            JSON.stringify(overrides).slice(0, 80),
          ).rejects.toMatchObject({ code })
        }
        expect(await ids({ includeDisabled: true })).toHaveLength(3)
      })

      it('fans an event out once per subscription, delivering in_app rows by storing them', async () => {
        const email = await storage.alerts.addSubscription(subscription())
        const inApp = await storage.alerts.addSubscription(subscription({ channel: 'in_app', target: null }))
        const quiet = await storage.alerts.addSubscription(
          subscription({ userId: bo, channel: 'in_app', target: null }),
        )
        await storage.alerts.commitEvaluation({
          incidents: [incident({ id: 'inc_a' })],
          withdrawals: [],
          events: [event()],
          now: T0,
        })
        const [pending] = await storage.alerts.pendingFanOut(10)
        const eventId = pending?.id ?? 0
        const messages = [
          message(email),
          message(inApp),
          message(quiet, { status: 'deferred', deliverAfter: T0 + HOUR_MS }),
        ]
        expect(await storage.alerts.fanOut(eventId, messages, T0 + 7)).toBe(3)
        expect(await storage.alerts.pendingFanOut(10)).toEqual([])
        expect((await storage.alerts.getEvent(eventId))?.fannedOutAt).toBe(T0 + 7)
        // Again (a crash between the fan-out and its acknowledgement): nothing is doubled, the first time is kept.
        expect(await storage.alerts.fanOut(eventId, messages, T0 + 9)).toBe(0)
        expect((await storage.alerts.getEvent(eventId))?.fannedOutAt).toBe(T0 + 7)

        const rows = await storage.alerts.listOutbox({ limit: 10 })
        expect(rows).toHaveLength(3)
        const byChannel = (sub: SubscriptionRecord) => rows.find((r) => r.subscriptionId === sub.id)
        expect(byChannel(email)).toEqual({
          ...message(email),
          id: expect.any(Number),
          messageId: expect.stringMatching(/^<o\d+\.[0-9a-f-]{36}@skolluft>$/),
          eventId,
          siteId: 'school-a',
          status: 'pending',
          nextAttemptAt: T0,
          leaseUntil: null,
          attempts: 0,
          createdAt: T0 + 7,
          sentAt: null,
          lastError: null,
          digestId: null,
          readAt: null,
        })
        expect(byChannel(email)?.messageId).toContain(`<o${byChannel(email)?.id}.`)
        expect(byChannel(inApp)).toMatchObject({ status: 'sent', sentAt: T0 + 7, attempts: 0 })
        expect(byChannel(quiet)).toMatchObject({ status: 'deferred', sentAt: null, deliverAfter: T0 + HOUR_MS })
        expect(new Set(rows.map((r) => r.messageId)).size).toBe(3)
        // The Message-ID is stable: read again, it is the same.
        expect((await storage.alerts.listOutbox({ limit: 10 })).map((r) => r.messageId)).toEqual(
          rows.map((r) => r.messageId),
        )
      })

      it('refuses to fan out retrospective or unknown events and messages that do not match their subscription', async () => {
        const email = await storage.alerts.addSubscription(subscription())
        await storage.alerts.commitEvaluation({
          incidents: [incident({ id: 'inc_a' })],
          withdrawals: [],
          events: [event({ key: 'late', live: false }), event({ key: 'live' })],
          now: T0,
        })
        const [live, late] = await storage.alerts.listEvents({ limit: 2 })
        await expect(storage.alerts.fanOut(late?.id ?? 0, [message(email)], T0)).rejects.toMatchObject({
          code: 'INVALID_ALERT',
        })
        await expect(storage.alerts.fanOut(9999, [], T0)).rejects.toMatchObject({ code: 'UNKNOWN_ALERT_EVENT' })
        const liveId = live?.id ?? 0
        for (const [m, code] of [
          [message(email, { userId: bo }), 'INVALID_ALERT'],
          [message(email, { channel: 'webhook' }), 'INVALID_ALERT'],
          [message(email, { subscriptionId: 'sub_nobody' }), 'UNKNOWN_SUBSCRIPTION'],
          [message(email, { subject: '' }), 'INVALID_ALERT'],
          [message(email, { target: null }), 'INVALID_ALERT'],
          [message(email, { payload: undefined }), 'INVALID_ALERT'],
          [message(email, { status: 'sent' as NewOutboxMessage['status'] }), 'INVALID_ALERT'],
        ] as const) {
          // A valid message before the bad one is rolled back with it.
          await expect(storage.alerts.fanOut(liveId, [message(email), m], T0), code).rejects.toMatchObject({ code })
        }
        expect(await storage.alerts.listOutbox({ limit: 10 })).toEqual([])
        expect((await storage.alerts.pendingFanOut(10)).map((e) => e.id)).toEqual([liveId])
        // A subscription disabled after the fan-out listed it gets nothing; the event is still done.
        await storage.alerts.disableSubscription(email.id, T0)
        expect(await storage.alerts.fanOut(liveId, [message(email)], T0)).toBe(0)
        expect(await storage.alerts.pendingFanOut(10)).toEqual([])
      })

      it('claims due rows with a lease; a row whose claimer died is claimable again after the lease', async () => {
        const email = await storage.alerts.addSubscription(subscription())
        await queued(email, 3)
        const later = await storage.alerts.addSubscription(
          subscription({ channel: 'webhook', target: 'https://example.org/h' }),
        )
        await storage.alerts.appendEvents([event({ key: 'later', incidentId: null })], T0)
        const [laterEvent] = await storage.alerts.pendingFanOut(1)
        await storage.alerts.fanOut(laterEvent?.id ?? 0, [message(later, { deliverAfter: T0 + HOUR_MS })], T0)

        const first = await storage.alerts.claimDue(T0 + 10, 2, LEASE_MS)
        expect(first).toHaveLength(2)
        for (const row of first) expect(row).toMatchObject({ status: 'sending', leaseUntil: T0 + 10 + LEASE_MS })
        const second = await storage.alerts.claimDue(T0 + 10, 10, LEASE_MS)
        expect(second).toHaveLength(1)
        expect(second[0]?.id).not.toBe(first[0]?.id)
        expect(await storage.alerts.claimDue(T0 + 10 + LEASE_MS - 1, 10, LEASE_MS)).toEqual([])
        expect((await storage.alerts.listOutbox({ limit: 10, status: 'sending' })).map((r) => r.id).sort()).toEqual(
          [...first, ...second].map((r) => r.id).sort(),
        )

        // The claiming process "crashes" (closes without finishing); another one takes the rows over after the lease.
        await storage.close()
        storage = await fixture.reopen()
        const again = await storage.alerts.claimDue(T0 + 10 + LEASE_MS, 10, DAY_MS)
        expect(again.map((r) => r.id).sort()).toEqual([...first, ...second].map((r) => r.id).sort())
        expect(again.map((r) => r.messageId).sort()).toEqual([...first, ...second].map((r) => r.messageId).sort())
        // The deferred-start webhook row became due meanwhile (deliverAfter T0 + 1 h ≤ now).
        expect((await storage.alerts.claimDue(T0 + HOUR_MS, 10, LEASE_MS)).map((r) => r.subscriptionId)).toEqual([
          later.id,
        ])
        expect(await storage.alerts.claimDue(T0 + HOUR_MS, 0, LEASE_MS)).toEqual([])
        await expect(storage.alerts.claimDue(T0, 1, 0)).rejects.toMatchObject({ code: 'INVALID_QUERY' })
      })

      it('never gives two handles on the same file the same row', async () => {
        const other = await fixture.reopen()
        extraHandles.push(other)
        const email = await storage.alerts.addSubscription(subscription())
        const rows = await queued(email, 20)
        expect(rows).toHaveLength(20)
        const claimed: number[] = []
        for (let round = 0; round < 20; round++) {
          const [a, b] = await Promise.all([
            storage.alerts.claimDue(T0, 3, LEASE_MS),
            other.alerts.claimDue(T0, 2, LEASE_MS),
          ])
          claimed.push(...a.map((r) => r.id), ...b.map((r) => r.id))
          if (a.length === 0 && b.length === 0) break
        }
        expect(claimed).toHaveLength(20)
        expect(new Set(claimed)).toEqual(new Set(rows.map((r) => r.id)))
      })

      it('logs each attempt and moves the row: retry, sent, failed; a claimer that lost its lease does not move it', async () => {
        const email = await storage.alerts.addSubscription(subscription())
        await queued(email, 2)
        const [row] = await storage.alerts.claimDue(T0, 1, LEASE_MS)
        const id = row?.id ?? 0
        expect(
          await storage.alerts.finishAttempt(
            id,
            { at: T0 + 1, ok: false, error: '421 try later', durationMs: 12.4 },
            { status: 'pending', nextAttemptAt: T0 + 60_000 },
          ),
        ).toBe(true)
        const [other] = await storage.alerts.claimDue(T0 + 59_999, 10, LEASE_MS)
        expect(other?.id).not.toBe(id)
        expect(await storage.alerts.claimDue(T0 + 59_999, 10, LEASE_MS)).toEqual([])
        const [retry] = await storage.alerts.claimDue(T0 + 60_000, 10, LEASE_MS)
        expect(retry).toMatchObject({ id, attempts: 1, lastError: '421 try later', status: 'sending' })
        expect(
          await storage.alerts.finishAttempt(
            id,
            { at: T0 + 60_001, ok: true, error: null, durationMs: 30 },
            { status: 'sent' },
          ),
        ).toBe(true)
        expect((await storage.alerts.listOutbox({ limit: 10, status: 'sent' }))[0]).toMatchObject({
          id,
          status: 'sent',
          sentAt: T0 + 60_001,
          attempts: 2,
          leaseUntil: null,
        })
        expect(await storage.alerts.listAttempts(id)).toEqual([
          { outboxId: id, at: T0 + 1, ok: false, error: '421 try later', durationMs: 12 },
          { outboxId: id, at: T0 + 60_001, ok: true, error: null, durationMs: 30 },
        ])
        // Finishing again (a claimer whose lease ran out, after another finished): logged, status kept.
        expect(
          await storage.alerts.finishAttempt(
            id,
            { at: T0 + 70_000, ok: false, error: 'late', durationMs: 1 },
            { status: 'failed' },
          ),
        ).toBe(false)
        expect((await storage.alerts.listOutbox({ limit: 10, status: 'sent' }))[0]).toMatchObject({ id, attempts: 3 })
        expect(await storage.alerts.listAttempts(id)).toHaveLength(3)

        const otherId = other?.id ?? 0
        const long = `550 ${'x'.repeat(MAX_ATTEMPT_ERROR_CHARS)}`
        expect(
          await storage.alerts.finishAttempt(
            otherId,
            { at: T0 + 2, ok: false, error: long, durationMs: 0 },
            { status: 'failed' },
          ),
        ).toBe(true)
        const [failed] = await storage.alerts.listOutbox({ limit: 10, status: 'failed' })
        expect(failed).toMatchObject({
          id: otherId,
          status: 'failed',
          sentAt: null,
          lastError: long.slice(0, MAX_ATTEMPT_ERROR_CHARS),
        })
        expect(await storage.alerts.claimDue(T0 + DAY_MS, 10, LEASE_MS)).toEqual([])

        await expect(
          storage.alerts.finishAttempt(9999, { at: T0, ok: true, error: null, durationMs: 1 }, { status: 'sent' }),
        ).rejects.toMatchObject({ code: 'UNKNOWN_OUTBOX' })
        await expect(
          storage.alerts.finishAttempt(id, { at: T0, ok: true, error: null, durationMs: 1 }, { status: 'failed' }),
        ).rejects.toMatchObject({ code: 'INVALID_ALERT' })
        await expect(
          storage.alerts.finishAttempt(id, { at: T0, ok: false, error: 'x', durationMs: -1 }, { status: 'failed' }),
        ).rejects.toMatchObject({ code: 'INVALID_ALERT' })
        expect(await storage.alerts.listAttempts(id)).toHaveLength(3)
        expect(await storage.alerts.listAttempts(9999)).toEqual([])
      })

      it('gathers due deferred rows per subscription into one digest, once', async () => {
        const email = await storage.alerts.addSubscription(subscription())
        const inApp = await storage.alerts.addSubscription(
          subscription({ userId: bo, channel: 'in_app', target: null }),
        )
        await storage.alerts.commitEvaluation({
          incidents: [incident({ id: 'inc_a' })],
          withdrawals: [],
          events: [
            event({ key: 'e1' }),
            event({ key: 'e2', siteId: 'preschool-b', incidentId: null }),
            event({ key: 'e3', incidentId: null }),
          ],
          now: T0,
        })
        const [e1, e2, e3] = await storage.alerts.pendingFanOut(3)
        const morning = T0 + 7 * HOUR_MS
        await storage.alerts.fanOut(
          e1?.id ?? 0,
          [
            message(email, { status: 'deferred', deliverAfter: morning }),
            message(inApp, { status: 'deferred', deliverAfter: morning }),
          ],
          T0,
        )
        await storage.alerts.fanOut(e2?.id ?? 0, [message(email, { status: 'deferred', deliverAfter: morning })], T0)
        await storage.alerts.fanOut(
          e3?.id ?? 0,
          [message(inApp, { status: 'deferred', deliverAfter: morning + 1 })],
          T0,
        )
        // Deferred rows are never claimed on their own.
        expect(await storage.alerts.claimDue(morning + DAY_MS, 10, LEASE_MS)).toEqual([])
        expect(await storage.alerts.dueDeferred(morning - 1, 10)).toEqual(new Map())
        const due = await storage.alerts.dueDeferred(morning, 10)
        expect([...due.keys()]).toEqual([email.id, inApp.id])
        const emailRows = due.get(email.id) ?? []
        expect(emailRows.map((r) => r.eventId)).toEqual([e1?.id, e2?.id])
        expect((await storage.alerts.dueDeferred(morning + 1, 10)).get(inApp.id)).toHaveLength(2)
        expect([...(await storage.alerts.dueDeferred(morning + 1, 1)).values()].flat()).toHaveLength(1)

        const digest = await storage.alerts.createDigest(
          emailRows.map((r) => r.id),
          message(email, { subject: 'Sammanfattning: 2 larm' }),
          morning + 5,
        )
        expect(digest).toMatchObject({
          eventId: null,
          siteId: null,
          status: 'pending',
          createdAt: morning + 5,
          subject: 'Sammanfattning: 2 larm',
        })
        expect(digest.messageId).toMatch(new RegExp(`^<o${digest.id}\\.`))
        for (const row of await storage.alerts.listOutbox({ limit: 10, status: 'digested' })) {
          expect(row.digestId).toBe(digest.id)
        }
        expect(await storage.alerts.listOutbox({ limit: 10, status: 'digested' })).toHaveLength(2)
        // Another process making the same digest finds the members gone; nothing is doubled.
        await expect(
          storage.alerts.createDigest(
            emailRows.map((r) => r.id),
            message(email),
            morning + 6,
          ),
        ).rejects.toMatchObject({ code: 'CONFLICT' })
        expect(await storage.alerts.listOutbox({ limit: 10, userId: anna })).toHaveLength(3)
        expect((await storage.alerts.claimDue(morning + 5, 10, LEASE_MS)).map((r) => r.id)).toEqual([digest.id])

        const inAppRows = (await storage.alerts.dueDeferred(morning + 1, 10)).get(inApp.id) ?? []
        await expect(
          storage.alerts.createDigest(
            [...inAppRows.map((r) => r.id), emailRows[0]?.id ?? 0],
            message(inApp),
            morning + 5,
          ),
        ).rejects.toMatchObject({ code: 'INVALID_ALERT' })
        await expect(storage.alerts.createDigest([], message(inApp), morning + 5)).rejects.toMatchObject({
          code: 'INVALID_ALERT',
        })
        await expect(storage.alerts.createDigest([9999], message(inApp), morning + 5)).rejects.toMatchObject({
          code: 'UNKNOWN_OUTBOX',
        })
        // An in_app digest is delivered by being stored; its members share no site.
        const inAppDigest = await storage.alerts.createDigest(
          inAppRows.map((r) => r.id),
          message(inApp),
          morning + 5,
        )
        expect(inAppDigest).toMatchObject({ status: 'sent', sentAt: morning + 5, siteId: 'school-a' })
        expect(await storage.alerts.dueDeferred(morning + DAY_MS, 10)).toEqual(new Map())
      })

      it('counts recent deliveries per user for the rate limit, queued ones included', async () => {
        const email = await storage.alerts.addSubscription(subscription())
        const inApp = await storage.alerts.addSubscription(subscription({ channel: 'in_app', target: null }))
        await storage.alerts.commitEvaluation({
          incidents: [incident({ id: 'inc_a' })],
          withdrawals: [],
          events: ['a', 'b', 'c', 'd', 'e'].map((key) => event({ key })),
          now: T0,
        })
        const events = await storage.alerts.pendingFanOut(5)
        const at = (i: number) => T0 + i * 60_000
        for (const [i, e] of events.entries()) {
          const deferred = i === 4
          await storage.alerts.fanOut(
            e.id,
            [message(email, deferred ? { status: 'deferred', deliverAfter: at(60) } : {})],
            at(i),
          )
        }
        await storage.alerts.fanOut(events[0]?.id ?? 0, [message(inApp)], at(2))
        expect(await storage.alerts.recentDeliveries(anna, at(0))).toEqual({ count: 5, oldest: at(0) })
        expect(await storage.alerts.recentDeliveries(anna, at(0), 'email')).toEqual({ count: 4, oldest: at(0) })
        expect(await storage.alerts.recentDeliveries(anna, at(1), 'email')).toEqual({ count: 3, oldest: at(1) })
        expect(await storage.alerts.recentDeliveries(anna, at(10))).toEqual({ count: 0, oldest: null })
        expect(await storage.alerts.recentDeliveries(bo, at(0))).toEqual({ count: 0, oldest: null })
        // Sending and sent rows still count; failed ones do not.
        const claimed = await storage.alerts.claimDue(at(5), 2, LEASE_MS)
        await storage.alerts.finishAttempt(
          claimed[0]?.id ?? 0,
          { at: at(5), ok: true, error: null, durationMs: 1 },
          { status: 'sent' },
        )
        expect(await storage.alerts.recentDeliveries(anna, at(0), 'email')).toEqual({ count: 4, oldest: at(0) })
        await storage.alerts.finishAttempt(
          claimed[1]?.id ?? 0,
          { at: at(5), ok: false, error: '550', durationMs: 1 },
          { status: 'failed' },
        )
        expect(await storage.alerts.recentDeliveries(anna, at(0), 'email')).toEqual({ count: 3, oldest: at(0) })
      })

      it('cancels queued rows when a subscription is disabled, leaving rows in flight alone', async () => {
        const email = await storage.alerts.addSubscription(subscription())
        const rows = await queued(email, 3)
        const [inFlight] = await storage.alerts.claimDue(T0, 1, LEASE_MS)
        await storage.alerts.appendEvents([event({ key: 'deferred', incidentId: null })], T0)
        const [deferredEvent] = await storage.alerts.pendingFanOut(1)
        await storage.alerts.fanOut(
          deferredEvent?.id ?? 0,
          [message(email, { status: 'deferred', deliverAfter: T0 + DAY_MS })],
          T0,
        )
        expect(await storage.alerts.disableSubscription(email.id, T0 + 1)).toBe(true)
        const statuses = new Map((await storage.alerts.listOutbox({ limit: 10 })).map((r) => [r.id, r.status]))
        expect([...statuses.values()].sort()).toEqual(['cancelled', 'cancelled', 'cancelled', 'sending'])
        expect(statuses.get(inFlight?.id ?? 0)).toBe('sending')
        expect(rows).toHaveLength(3)
        expect(await storage.alerts.claimDue(T0 + DAY_MS, 10, LEASE_MS)).toEqual([
          expect.objectContaining({ id: inFlight?.id, status: 'sending' }),
        ])
        expect(await storage.alerts.dueDeferred(T0 + DAY_MS, 10)).toEqual(new Map())
      })

      it('lists in-app notifications newest first, counts unread ones and marks them read for their user only', async () => {
        const inApp = await storage.alerts.addSubscription(subscription({ channel: 'in_app', target: null }))
        const email = await storage.alerts.addSubscription(subscription())
        await queued(inApp, 3, { channel: 'in_app', target: null })
        await storage.alerts.appendEvents([event({ key: 'mail', incidentId: null })], T0)
        const [mailEvent] = await storage.alerts.pendingFanOut(1)
        await storage.alerts.fanOut(mailEvent?.id ?? 0, [message(email)], T0)
        await storage.alerts.appendEvents([event({ key: 'quiet', incidentId: null })], T0)
        const [quietEvent] = await storage.alerts.pendingFanOut(1)
        await storage.alerts.fanOut(
          quietEvent?.id ?? 0,
          [message(inApp, { status: 'deferred', deliverAfter: T0 + DAY_MS })],
          T0,
        )

        const list = await storage.alerts.listNotifications(anna, { limit: 10 })
        expect(list).toHaveLength(3)
        expect(list.map((n) => n.id)).toEqual([...list.map((n) => n.id)].sort((a, b) => b - a))
        for (const n of list)
          expect(n).toMatchObject({ channel: 'in_app', status: 'sent', readAt: null, siteId: 'school-a' })
        expect(await storage.alerts.unreadCount(anna)).toBe(3)
        expect(await storage.alerts.listNotifications(bo, { limit: 10 })).toEqual([])
        expect(await storage.alerts.listNotifications(anna, { limit: 0 })).toEqual([])
        const [newest, middle] = list
        expect(
          (await storage.alerts.listNotifications(anna, { limit: 10, beforeId: newest?.id ?? 0 })).map((n) => n.id),
        ).toEqual(list.slice(1).map((n) => n.id))

        const mailRow = (await storage.alerts.listOutbox({ limit: 10, status: 'pending' }))[0]
        // Another user's ids and e-mail rows are not marked.
        expect(await storage.alerts.markRead(bo, [newest?.id ?? 0], T0 + 1)).toBe(0)
        expect(
          await storage.alerts.markRead(anna, [newest?.id ?? 0, middle?.id ?? 0, mailRow?.id ?? 0, 9999], T0 + 2),
        ).toBe(2)
        expect(await storage.alerts.markRead(anna, [newest?.id ?? 0], T0 + 3)).toBe(0)
        expect(await storage.alerts.unreadCount(anna)).toBe(1)
        const unreadOnly = await storage.alerts.listNotifications(anna, { limit: 10, unreadOnly: true })
        expect(unreadOnly.map((n) => n.id)).toEqual([list[2]?.id])
        expect((await storage.alerts.listNotifications(anna, { limit: 1 }))[0]).toMatchObject({
          id: newest?.id,
          readAt: T0 + 2,
        })
        await expect(
          storage.alerts.markRead(
            anna,
            Array.from({ length: MAX_MARK_READ_IDS + 1 }, (_, i) => i + 1),
            T0,
          ),
        ).rejects.toMatchObject({ code: 'INVALID_QUERY' })
      })

      it('remembers device health states', async () => {
        expect(await storage.alerts.deviceHealthStates()).toEqual(new Map())
        await storage.alerts.setDeviceHealthState('dev-1', 'offline', T0)
        await storage.alerts.setDeviceHealthState('dev-1', 'ok', T0 + HOUR_MS)
        expect(await storage.alerts.deviceHealthStates()).toEqual(
          new Map([['dev-1', { state: 'ok', since: T0 + HOUR_MS }]]),
        )
        await expect(storage.alerts.setDeviceHealthState('dev-unknown', 'ok', T0)).rejects.toMatchObject({
          code: 'UNKNOWN_DEVICE',
        })
        await expect(storage.alerts.setDeviceHealthState('dev-1', '', T0)).rejects.toMatchObject({
          code: 'INVALID_ALERT',
        })
        await expect(storage.alerts.setDeviceHealthState('dev-1', 'ok', -1)).rejects.toMatchObject({
          code: 'INVALID_ALERT',
        })
      })

      it('keeps events, subscriptions, the outbox and attempts across reopen, without moving the registry revision', async () => {
        const revision = await storage.registry.revision()
        const email = await storage.alerts.addSubscription(subscription())
        const rows = await queued(email, 2)
        const [claimed] = await storage.alerts.claimDue(T0, 1, LEASE_MS)
        await storage.alerts.finishAttempt(
          claimed?.id ?? 0,
          { at: T0, ok: true, error: null, durationMs: 5 },
          { status: 'sent' },
        )
        await storage.alerts.setDeviceHealthState('dev-1', 'offline', T0)
        expect(await storage.registry.revision()).toBe(revision)
        const events = await storage.alerts.listEvents({ limit: 10 })
        const outbox = await storage.alerts.listOutbox({ limit: 10 })
        await storage.close()

        storage = await fixture.reopen()
        expect(await storage.alerts.listEvents({ limit: 10 })).toEqual(events)
        expect(await storage.alerts.listOutbox({ limit: 10 })).toEqual(outbox)
        expect(outbox.map((r) => r.messageId).sort()).toEqual(rows.map((r) => r.messageId).sort())
        expect(await storage.alerts.getSubscription(email.id)).toEqual(email)
        expect(await storage.alerts.listAttempts(claimed?.id ?? 0)).toHaveLength(1)
        expect(await storage.alerts.deviceHealthStates()).toEqual(new Map([['dev-1', { state: 'offline', since: T0 }]]))
        expect(
          await storage.alerts.appendEvents(
            events.map(({ id, createdAt, fannedOutAt, ...e }) => e),
            T0,
          ),
        ).toBe(0)
      })
    })

    describe('durability', () => {
      it('still has everything after closing and reopening', async () => {
        await withDevice('dev-1')
        await storage.registry.upsertServiceAccount({ username: 'api', secretHash: 'h', role: 'api' })
        await storage.readings.writeReadings(minutes('dev-1', T0, 60, (i) => i))
        await storage.rejects.record([reject(1, 'dev-1')])
        const revision = await storage.registry.revision()
        await storage.close()

        storage = await fixture.reopen()
        expect(await storage.registry.getDevice('dev-1')).toMatchObject({ id: 'dev-1', secretHash: 'hash-dev-1' })
        expect(await storage.registry.listSites()).toHaveLength(2)
        expect(await storage.registry.getServiceAccount('api')).toMatchObject({ role: 'api' })
        expect(await storage.registry.revision()).toBe(revision)
        expect(await storage.readings.countReadings()).toBe(60)
        const [hour] = await storage.readings.aggregateSeries({
          deviceId: 'dev-1',
          metric: 'pm25',
          from: T0,
          to: T0 + HOUR_MS,
          limit: 1,
          every: '1h',
        })
        expect(hour).toMatchObject({ n: 60, mean: 29.5, valid: true })
        expect(await storage.readings.latestByDevice()).toHaveLength(1)
        expect(await storage.rejects.list({ limit: 10 })).toHaveLength(1)
        expect(await storage.readings.writeReadings(minutes('dev-1', T0, 1, () => 0))).toEqual({
          inserted: 0,
          duplicates: 1,
        })
      })

      it('shows writes through one handle to another open handle', async () => {
        const other = await fixture.reopen()
        extraHandles.push(other)
        await withDevice('dev-1')
        await storage.readings.writeReadings([reading('dev-1', T0, { pm25: 4 })])
        expect(await other.readings.countReadings()).toBe(1)
        expect(await other.registry.getDevice('dev-1')).toBeDefined()
        const before = await storage.registry.revision()
        await other.registry.revokeDevice('dev-1', T0)
        expect(await storage.registry.revision()).toBeGreaterThan(before)
        expect((await storage.registry.getDevice('dev-1'))?.revokedAt).toBe(T0)
      })
    })

    describe('calibrations', () => {
      const manual = (overrides: Partial<NewCalibration> = {}): NewCalibration => ({
        deviceId: 'dev-1',
        metric: 'pm25',
        slope: 0.8,
        intercept: -1.5,
        validFrom: T0,
        basis: { kind: 'manual', after: null, note: 'vendor batch factor' },
        createdAt: T0 + HOUR_MS,
        createdBy: 'cli',
        ...overrides,
      })

      it('adds calibrations with increasing versions per (device, metric) and ids of their own', async () => {
        await withDevice('dev-1')
        await withDevice('dev-2')
        const a1 = await storage.calibrations.add(manual())
        const a2 = await storage.calibrations.add(manual({ slope: 0.9, validFrom: T0 + DAY_MS }))
        const n1 = await storage.calibrations.add(manual({ metric: 'no2' }))
        const b1 = await storage.calibrations.add(manual({ deviceId: 'dev-2' }))
        expect([a1.version, a2.version, n1.version, b1.version]).toEqual([1, 2, 1, 1])
        expect(new Set([a1.id, a2.id, n1.id, b1.id]).size).toBe(4)
        for (const c of [a1, a2, n1, b1]) expect(c.id).toMatch(/^cal-[0-9]+$/)
        expect(a1).toEqual({ ...manual(), id: a1.id, version: 1, validTo: null })
        expect(await storage.calibrations.get(a2.id)).toEqual(a2)
        expect(await storage.calibrations.get('cal-999999')).toBeUndefined()
        expect(await storage.calibrations.get('nonsense')).toBeUndefined()
      })

      it('keeps a colocation basis with its fit statistics', async () => {
        await withDevice('dev-1')
        await withDevice('ref-1')
        const basis = {
          kind: 'colocation',
          after: 'rh-hackair@1',
          reference: { deviceId: 'ref-1' },
          period: { from: T0, to: T0 + 7 * DAY_MS },
          n: 150,
          r2: 0.87,
          rmse: 2.25,
        } as const
        const c = await storage.calibrations.add(manual({ basis }))
        expect((await storage.calibrations.get(c.id))?.basis).toEqual(basis)
      })

      it('lists by device and metric, ordered by device, metric, version', async () => {
        await withDevice('dev-1')
        await withDevice('dev-2')
        const b1 = await storage.calibrations.add(manual({ deviceId: 'dev-2' }))
        const a1 = await storage.calibrations.add(manual())
        const n1 = await storage.calibrations.add(manual({ metric: 'no2' }))
        const a2 = await storage.calibrations.add(manual())
        const ids = (list: readonly { id: string }[]) => list.map((c) => c.id)
        expect(ids(await storage.calibrations.list())).toEqual([n1.id, a1.id, a2.id, b1.id].map(String))
        expect(ids(await storage.calibrations.list({ deviceId: 'dev-1' }))).toEqual([n1.id, a1.id, a2.id])
        expect(ids(await storage.calibrations.list({ deviceId: 'dev-1', metric: 'pm25' }))).toEqual([a1.id, a2.id])
        expect(ids(await storage.calibrations.list({ metric: 'pm25' }))).toEqual([a1.id, a2.id, b1.id])
        expect(await storage.calibrations.list({ deviceId: 'nobody' })).toEqual([])
      })

      it('refuses invalid calibrations and unknown devices', async () => {
        await withDevice('dev-1')
        await expect(storage.calibrations.add(manual({ slope: -1 }))).rejects.toMatchObject({
          code: 'INVALID_CALIBRATION',
          message: expect.stringMatching(/slope/),
        })
        await expect(
          storage.calibrations.add(
            manual({ metric: 'no2', basis: { kind: 'manual', after: 'rh-hackair@1', note: null } }),
          ),
        ).rejects.toMatchObject({ code: 'INVALID_CALIBRATION', message: expect.stringMatching(/not defined for no2/) })
        await expect(storage.calibrations.add(manual({ deviceId: 'ghost' }))).rejects.toMatchObject({
          code: 'UNKNOWN_DEVICE',
        })
        expect(await storage.calibrations.list()).toEqual([])
      })

      it('retires once, never before validFrom, and changes nothing else', async () => {
        await withDevice('dev-1')
        const c = await storage.calibrations.add(manual())
        await expect(storage.calibrations.retire(c.id, T0 - 1)).rejects.toMatchObject({ code: 'INVALID_CALIBRATION' })
        expect(await storage.calibrations.retire(c.id, T0 + DAY_MS)).toEqual({ ...c, validTo: T0 + DAY_MS })
        await expect(storage.calibrations.retire(c.id, T0 + 2 * DAY_MS)).rejects.toMatchObject({ code: 'CONFLICT' })
        expect(await storage.calibrations.get(c.id)).toEqual({ ...c, validTo: T0 + DAY_MS })
        expect(await storage.calibrations.retire('cal-424242', T0)).toBeUndefined()
        // A new version after retirement continues the count.
        expect((await storage.calibrations.add(manual())).version).toBe(2)
      })

      it('shares versions between handles (processes)', async () => {
        await withDevice('dev-1')
        const other = await fixture.reopen()
        extraHandles.push(other)
        const added = await Promise.all([
          storage.calibrations.add(manual()),
          other.calibrations.add(manual()),
          storage.calibrations.add(manual()),
        ])
        expect(added.map((c) => c.version).sort()).toEqual([1, 2, 3])
        expect(await other.calibrations.list()).toHaveLength(3)
      })
    })

    describe('measures', () => {
      const first = (): Measure => {
        const measure = DEFAULT_MEASURES[0]
        if (measure === undefined) throw new Error('the default catalogue is empty')
        return measure
      }
      const edited = (): Measure[] => [
        { ...first(), name: { sv: 'Bilfri skolgata', en: 'Car-free school street' } },
        ...DEFAULT_MEASURES.slice(1),
      ]
      const taken = (overrides: Partial<NewSiteMeasure> = {}): NewSiteMeasure => ({
        siteId: 'school-a',
        measureId: 'traffic-at-drop-off',
        title: 'Bilfri skolgata på Skolvägen',
        takenOn: '2026-03-02',
        note: 'Beslut i tekniska nämnden',
        recordedBy: 'user:u-1',
        recordedAt: T0,
        ...overrides,
      })

      it('starts at revision 0 with the default catalogue, never edited', async () => {
        expect(await storage.measures.catalogue()).toEqual({
          revision: 0,
          measures: DEFAULT_MEASURES,
          updatedAt: null,
          updatedBy: null,
        })
      })

      it('saves a catalogue as the next revision, and refuses a stale revision without changing anything', async () => {
        const saved = await storage.measures.saveCatalogue(edited(), { expectedRevision: 0, by: 'user:u-1', at: T0 })
        expect(saved).toEqual({ revision: 1, measures: edited(), updatedAt: T0, updatedBy: 'user:u-1' })
        expect(await storage.measures.catalogue()).toEqual(saved)
        // A second editor who loaded revision 0 too.
        await expect(
          storage.measures.saveCatalogue(DEFAULT_MEASURES, { expectedRevision: 0, by: 'user:u-2', at: T0 + 1 }),
        ).rejects.toMatchObject({ code: 'CONFLICT' })
        await expect(
          storage.measures.saveCatalogue(DEFAULT_MEASURES, { expectedRevision: 2, by: 'user:u-2', at: T0 + 1 }),
        ).rejects.toMatchObject({ code: 'CONFLICT' })
        expect(await storage.measures.catalogue()).toEqual(saved)
        const again = await storage.measures.saveCatalogue(DEFAULT_MEASURES, {
          expectedRevision: 1,
          by: 'user:u-2',
          at: T0 + 2,
        })
        expect(again).toMatchObject({ revision: 2, measures: DEFAULT_MEASURES, updatedBy: 'user:u-2' })
      })

      it('refuses an invalid catalogue: conclusive wording, duplicate ids, unknown placeholders', async () => {
        const cases: Measure[][] = [
          [{ ...first(), name: { sv: 'Bilfri gata', en: 'A car-free street proves it' } }],
          [first(), first()],
          [
            {
              ...first(),
              suggestedBy: [{ pattern: 'drop-off-peak', evidence: { sv: 'Se {nothing}', en: 'See {nothing}' } }],
            },
          ],
        ]
        for (const measures of cases) {
          await expect(
            storage.measures.saveCatalogue(measures, { expectedRevision: 0, by: 'user:u-1', at: T0 }),
          ).rejects.toMatchObject({ code: 'INVALID_MEASURE' })
        }
        expect((await storage.measures.catalogue()).revision).toBe(0)
      })

      it('lets exactly one of two handles (processes) save on the same revision', async () => {
        const other = await fixture.reopen()
        extraHandles.push(other)
        const results = await Promise.allSettled([
          storage.measures.saveCatalogue(edited(), { expectedRevision: 0, by: 'user:a', at: T0 }),
          other.measures.saveCatalogue(DEFAULT_MEASURES, { expectedRevision: 0, by: 'user:b', at: T0 }),
        ])
        expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1)
        expect(results.find((r) => r.status === 'rejected')).toMatchObject({ reason: { code: 'CONFLICT' } })
        expect((await other.measures.catalogue()).revision).toBe(1)
      })

      it('records measures taken, lists them per site by date, gets and deletes them', async () => {
        await storage.registry.upsertSites(SITES)
        const later = await storage.measures.add(taken({ takenOn: '2026-04-01' }))
        const earlier = await storage.measures.add(
          taken({ takenOn: '2026-03-02', measureId: null, title: '  Flyttat luftintag ', note: null }),
        )
        const elsewhere = await storage.measures.add(taken({ siteId: 'preschool-b' }))
        expect(later.id).toMatch(/^sm-[0-9]+$/)
        expect(new Set([later.id, earlier.id, elsewhere.id]).size).toBe(3)
        expect(later).toEqual({ ...taken({ takenOn: '2026-04-01' }), id: later.id })
        // Titles are trimmed.
        expect(earlier).toMatchObject({ title: 'Flyttat luftintag', measureId: null, note: null })
        expect((await storage.measures.list('school-a')).map((m) => m.id)).toEqual([earlier.id, later.id])
        expect(await storage.measures.list('preschool-b')).toEqual([elsewhere])
        expect(await storage.measures.list('nowhere')).toEqual([])
        expect(await storage.measures.get(later.id)).toEqual(later)
        expect(await storage.measures.get('sm-999999')).toBeUndefined()
        expect(await storage.measures.get('nonsense')).toBeUndefined()
        expect(await storage.measures.delete(later.id)).toBe(true)
        expect(await storage.measures.delete(later.id)).toBe(false)
        expect(await storage.measures.delete('nonsense')).toBe(false)
        expect((await storage.measures.list('school-a')).map((m) => m.id)).toEqual([earlier.id])
        // Ids are never given twice.
        const next = await storage.measures.add(taken())
        expect([later.id, earlier.id, elsewhere.id]).not.toContain(next.id)
      })

      it('refuses invalid measures taken and unknown sites', async () => {
        await storage.registry.upsertSites(SITES)
        for (const bad of [
          taken({ takenOn: '2026-02-30' }),
          taken({ title: ' ' }),
          taken({ measureId: 'Not An Id' }),
          taken({ title: 'x'.repeat(201) }),
        ]) {
          await expect(storage.measures.add(bad)).rejects.toMatchObject({ code: 'INVALID_MEASURE' })
        }
        await expect(storage.measures.add(taken({ siteId: 'ghost' }))).rejects.toMatchObject({ code: 'UNKNOWN_SITE' })
        expect(await storage.measures.list('school-a')).toEqual([])
      })

      it('keeps the catalogue and the measures taken after closing and reopening', async () => {
        await storage.registry.upsertSites(SITES)
        const saved = await storage.measures.saveCatalogue(edited(), { expectedRevision: 0, by: 'user:u-1', at: T0 })
        const m = await storage.measures.add(taken())
        await storage.close()
        storage = await fixture.reopen()
        expect(await storage.measures.catalogue()).toEqual(saved)
        expect(await storage.measures.get(m.id)).toEqual(m)
      })
    })
  })
}
