import { createRng, HOUR_MS, type SiteInput } from '@skolluft/core'
import { hashSecret } from '@skolluft/runtime'
import type { Storage, StoredReading } from '@skolluft/storage'

/**
 * A large, reproducible registry for the map benchmarks: `sites` invented sites scattered over
 * Lund municipality, one device each reporting hourly for the last day, plus one site with a year of
 * 10-minute readings (the year chart). Every site is marked demo.
 */
export const YEAR_SITE = 'bench-year-site'
const tenth = (value: number) => Math.round(value * 10) / 10
const YEAR_INTERVAL_S = 600

export async function seedMap(storage: Storage, sites: number, now: number): Promise<void> {
  const rng = createRng(42)
  const inputs: SiteInput[] = []
  for (let i = 0; i < sites; i += 1) {
    inputs.push({
      id: `bench-${String(i).padStart(5, '0')}`,
      name: `Bench ${i % 2 === 0 ? 'skola' : 'förskola'} ${i}`,
      kind: i % 2 === 0 ? 'school' : 'preschool',
      locality: ['Lund', 'Dalby', 'Södra Sandby', 'Veberöd', 'Genarp'][i % 5],
      municipality: 'Lund',
      lat: 55.6 + rng() * 0.2,
      lon: 13.1 + rng() * 0.4,
      demo: true,
    })
  }
  inputs.push({
    id: YEAR_SITE,
    name: 'Bench year site',
    kind: 'school',
    municipality: 'Lund',
    lat: 55.7,
    lon: 13.19,
    demo: true,
  })
  await storage.registry.upsertSites(inputs)

  // One scrypt hash for every device: the benchmark is about reads, not about device log-in.
  const secretHash = await hashSecret('bench-device-secret')
  const dayAgo = now - 24 * HOUR_MS
  for (const site of inputs) {
    const year = site.id === YEAR_SITE
    await storage.registry.addDevice(
      {
        id: `dev-${site.id}`,
        model: 'bench',
        sensors: ['pm1', 'pm25', 'pm10', 'no2', 'temp', 'rh'],
        intervalS: year ? YEAR_INTERVAL_S : 3600,
        secretHash,
        placement: { siteId: site.id, from: now - 400 * 24 * HOUR_MS, indoor: false, heightM: 3 },
      },
      now - 400 * 24 * HOUR_MS,
    )
  }

  let batch: StoredReading[] = []
  const flush = async () => {
    if (batch.length > 0) await storage.readings.writeReadings(batch)
    batch = []
  }
  const reading = (deviceId: string, siteId: string, ts: number, intervalS: number): StoredReading => ({
    deviceId,
    siteId,
    ts,
    seq: null,
    receivedAt: ts + 500,
    expectedPerHour: 3600 / intervalS,
    // One decimal, as low-cost sensors report (and the simulator sends).
    values: {
      pm1: tenth(2 + rng() * 5),
      pm25: tenth(3 + rng() * 20),
      pm10: tenth(8 + rng() * 40),
      no2: tenth(5 + rng() * 40),
      temp: tenth(4 + rng() * 4),
      rh: tenth(70 + rng() * 20),
    },
  })
  for (const site of inputs) {
    if (site.id === YEAR_SITE) continue
    for (let ts = dayAgo; ts < now; ts += HOUR_MS) batch.push(reading(`dev-${site.id}`, site.id, ts, 3600))
    if (batch.length >= 20_000) await flush()
  }
  const yearStart = now - 365 * 24 * HOUR_MS
  for (let ts = yearStart; ts < now; ts += YEAR_INTERVAL_S * 1000) {
    batch.push(reading(`dev-${YEAR_SITE}`, YEAR_SITE, ts, YEAR_INTERVAL_S))
    if (batch.length >= 20_000) await flush()
  }
  await flush()
}
