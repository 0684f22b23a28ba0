import { join } from 'node:path'
import { DAY_MS, HOUR_MS, type Placement } from '@skolluft/core'
import { openSqliteStorage, type Storage, type StoredReading } from '@skolluft/storage'
import { tempDir } from '@skolluft/testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readSiteAirHours, readSiteHours, splitSiteDevices } from './site-hours.ts'

/**
 * Reading a site's hours split by placement, against a real SQLite file. Site S, one day (1 March 2026 UTC+1):
 * outdoor devices o1 (PM2.5 10, 1 of 1 expected reading an hour) and o2 (PM2.5 20, 2 readings an hour of 2
 * expected; absent 12:00–24:00), indoor device i1 (PM2.5 40). Another site's device x never counts.
 */
const DAY = Date.parse('2026-02-28T23:00:00Z')
const SITE = 'site-s'

const placement = (deviceId: string, indoor: boolean, from = DAY - DAY_MS, to: number | null = null): Placement => ({
  deviceId,
  siteId: SITE,
  from,
  to,
  indoor,
  heightM: null,
})

const DEVICES = [
  { id: 'o1', placements: [placement('o1', false)] },
  { id: 'o2', placements: [placement('o2', false)] },
  { id: 'i1', placements: [placement('i1', true)] },
]

function reading(deviceId: string, siteId: string, hour: number, minute: number, pm25: number, perHour: number) {
  const ts = DAY + hour * HOUR_MS + minute * 60_000
  return {
    deviceId,
    siteId,
    ts,
    seq: null,
    values: { pm25 },
    receivedAt: ts,
    expectedPerHour: perHour,
  } satisfies StoredReading
}

let dir: Awaited<ReturnType<typeof tempDir>>
let storage: Storage

beforeAll(async () => {
  dir = await tempDir('skolluft-site-hours-')
  storage = openSqliteStorage({ path: join(dir.path, 'skolluft.db') })
  const rows: StoredReading[] = []
  for (let h = 0; h < 24; h++) {
    rows.push(reading('o1', SITE, h, 10, 10, 1))
    rows.push(reading('i1', SITE, h, 10, 40, 1))
    rows.push(reading('x', 'site-other', h, 10, 99, 1))
    if (h < 12) rows.push(reading('o2', SITE, h, 5, 20, 2), reading('o2', SITE, h, 35, 20, 2))
  }
  await storage.readings.writeReadings(rows)
})

afterAll(async () => {
  await storage?.close()
  await dir?.cleanup()
})

describe('site hours by placement', () => {
  const window = { from: DAY, to: DAY + DAY_MS }

  it('splits the devices placed at the site in the window by indoor, ignoring placements elsewhere or outside', () => {
    const split = splitSiteDevices(
      [
        ...DEVICES,
        { id: 'gone', placements: [placement('gone', true, DAY - 10 * DAY_MS, DAY - 5 * DAY_MS)] },
        { id: 'elsewhere', placements: [{ ...placement('elsewhere', true), siteId: 'site-other' }] },
        // Moved indoors at noon: in both lists.
        {
          id: 'moved',
          placements: [
            placement('moved', false, DAY - DAY_MS, DAY + 12 * HOUR_MS),
            placement('moved', true, DAY + 12 * HOUR_MS),
          ],
        },
      ],
      SITE,
      window,
    )
    expect(split.indoor).toEqual(['i1', 'moved'])
    expect(split.outdoor).toEqual(['moved', 'o1', 'o2'])
  })

  it("combines the outdoor devices' hours as storage combines a site's, and keeps the indoor device apart", async () => {
    const air = await readSiteAirHours(storage.readings, SITE, window, DEVICES)
    const outdoor = air.series.pm25 ?? []
    expect(outdoor).toHaveLength(24)
    // 00–12: o1 one 10 + o2 two 20 = 50 / 3 samples, 3 of 3 expected.
    expect(outdoor[0]).toMatchObject({ t: DAY, n: 3, coverage: 1, valid: true, min: 10, max: 20 })
    expect(outdoor[0]?.mean).toBeCloseTo(50 / 3, 12)
    // 12–24: o2 sent nothing, so its expected samples are not known for that hour: o1 alone, 1 of 1.
    expect(outdoor[12]).toMatchObject({ t: DAY + 12 * HOUR_MS, n: 1, mean: 10, coverage: 1, valid: true })
    const indoor = air.indoorOutdoor?.indoor.pm25 ?? []
    expect(indoor.map((h) => h.mean)).toEqual(Array.from({ length: 24 }, () => 40))
    expect(air.indoorOutdoor?.outdoor).toBe(air.series)
  })

  it('agrees with the site-wide read when every device is outdoors', async () => {
    const outdoorOnly = DEVICES.map((d) => ({
      id: d.id,
      placements: d.placements.map((p) => ({ ...p, indoor: false })),
    }))
    const air = await readSiteAirHours(storage.readings, SITE, window, outdoorOnly)
    expect(air.indoorOutdoor).toBeNull()
    expect(air.series).toEqual(await readSiteHours(storage.readings, SITE, window))
    // Site-wide: o1 10 + o2 2 × 20 + i1 40 = 90 / 4 in the morning.
    expect(air.series.pm25?.[0]?.mean).toBeCloseTo(90 / 4, 12)
  })
})
