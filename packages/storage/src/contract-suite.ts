import { DAY_MS, HOUR_MS, type Metric, type MetricValues, type SiteInput } from '@skolluft/core'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { REJECT_LOG_CAPACITY, type RejectRecord, type Storage, type StoredReading } from './types.ts'

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
  })
}
