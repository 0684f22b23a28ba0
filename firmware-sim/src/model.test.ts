import { formatTelemetryReading, METRIC_INFO, METRICS, parseTelemetry } from '@skolluft/core'
import { describe, expect, it } from 'vitest'
import { monthOfDay, stockholmOffsetMs, stockholmTime } from './local-time.ts'
import { type SiteProfile, sampleAt, siteProfile } from './model.ts'

const HOUR_MS = 3_600_000
const DAY_MS = 24 * HOUR_MS

const sites: SiteProfile[] = Array.from({ length: 12 }, (_, i) =>
  siteProfile(
    { siteId: `demo-lund-${i % 2 ? 's' : 'f'}-${i}`, kind: i % 2 ? 'school' : 'preschool', lat: 55.7, lon: 13.19 },
    7,
  ),
)

function mean(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0) / values.length
}

/** Every hour of 2025, local time from the Stockholm helper. */
function hoursOf2025(): number[] {
  const start = Date.parse('2025-01-01T00:30:00Z')
  return Array.from({ length: 365 * 24 }, (_, i) => start + i * HOUR_MS)
}

describe('Stockholm local time', () => {
  it('agrees with Intl Europe/Stockholm across the summer-time changes', () => {
    const fmt = new Intl.DateTimeFormat('en-GB', {
      timeZone: 'Europe/Stockholm',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
      weekday: 'short',
    })
    const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat']
    const checkpoints = [
      '2025-03-30T00:59:00Z',
      '2025-03-30T01:00:00Z',
      '2025-10-26T00:59:00Z',
      '2025-10-26T01:00:00Z',
      '2026-03-29T01:00:00Z',
      '2024-12-31T23:30:00Z',
    ].map(Date.parse)
    const sweep = Array.from({ length: 800 }, (_, i) => Date.parse('2024-01-01T00:17:00Z') + i * 11 * HOUR_MS)
    for (const ts of [...checkpoints, ...sweep]) {
      const parts = Object.fromEntries(fmt.formatToParts(ts).map((p) => [p.type, p.value]))
      const local = stockholmTime(ts)
      expect(Math.floor(local.hour), new Date(ts).toISOString()).toBe(Number(parts.hour))
      expect(days[local.weekday]).toBe(parts.weekday)
    }
    expect(stockholmOffsetMs(Date.parse('2025-07-01T12:00:00Z'))).toBe(2 * HOUR_MS)
    expect(stockholmOffsetMs(Date.parse('2025-01-01T12:00:00Z'))).toBe(HOUR_MS)
  })

  it('computes the month of a day count like Date does', () => {
    for (let day = -800; day < 40_000; day += 7) expect(monthOfDay(day)).toBe(new Date(day * DAY_MS).getUTCMonth())
  })
})

describe('sampleAt', () => {
  it('is deterministic: same site, seed and time give the same values; another seed does not', () => {
    const ts = Date.parse('2025-11-20T07:45:00Z')
    const site = sites[0] as SiteProfile
    expect(sampleAt(site, ts)).toEqual(sampleAt(siteProfile(site, 7), ts))
    const other = siteProfile(site, 8)
    const differs = [0, 1, 2, 3, 4].some(
      (d) => JSON.stringify(sampleAt(site, ts + d * DAY_MS)) !== JSON.stringify(sampleAt(other, ts + d * DAY_MS)),
    )
    expect(differs).toBe(true)
  })

  it('keeps PM1 ≤ PM2.5 ≤ PM10, PM1 at 0.6–0.8 of PM2.5, and every value inside METRIC_INFO', () => {
    const problems: string[] = []
    let checked = 0
    for (const site of sites.slice(0, 4)) {
      for (const ts of hoursOf2025().filter((_, i) => i % 3 === 0)) {
        const v = sampleAt(site, ts)
        const at = `${site.siteId} ${new Date(ts).toISOString()} ${JSON.stringify(v)}`
        for (const metric of METRICS) {
          const value = v[metric]
          if (value === undefined || value < METRIC_INFO[metric].min || value > METRIC_INFO[metric].max) {
            problems.push(`${metric} out of range at ${at}`)
          }
        }
        const { pm1 = 0, pm25 = 0, pm10 = 0 } = v
        if (!(pm1 <= pm25 && pm25 <= pm10)) problems.push(`PM order at ${at}`)
        if (pm25 >= 5 && (pm1 / pm25 < 0.58 || pm1 / pm25 > 0.82)) problems.push(`PM1/PM2.5 at ${at}`)
        checked += 1
      }
    }
    expect(checked).toBe(4 * 2920)
    expect(problems.slice(0, 5)).toEqual([])
  })

  it('has NO2 higher on weekday mornings than at night, and lower at weekends', () => {
    const morning: number[] = []
    const night: number[] = []
    const weekdayNoon: number[] = []
    const weekendNoon: number[] = []
    for (const ts of hoursOf2025()) {
      const local = stockholmTime(ts)
      const h = Math.floor(local.hour)
      for (const site of sites.slice(0, 4)) {
        const no2 = sampleAt(site, ts).no2 ?? 0
        if (local.workday && (h === 7 || h === 8)) morning.push(no2)
        if (h >= 1 && h <= 4) night.push(no2)
        if (h >= 7 && h <= 18) (local.workday ? weekdayNoon : weekendNoon).push(no2)
      }
    }
    expect(mean(morning)).toBeGreaterThan(1.8 * mean(night))
    expect(mean(weekendNoon)).toBeLessThan(0.8 * mean(weekdayNoon))
  })

  it('gives sites by busy streets more NO2 than quiet ones (§6.3: 8–10 background, 16–21 street)', () => {
    const busy = sites.filter((s) => s.traffic >= 0.6)
    const quiet = sites.filter((s) => s.traffic <= 0.3)
    expect(busy.length).toBeGreaterThan(0)
    expect(quiet.length).toBeGreaterThan(0)
    const annual = (site: SiteProfile) =>
      mean(
        hoursOf2025()
          .filter((_, i) => i % 5 === 0)
          .map((ts) => sampleAt(site, ts).no2 ?? 0),
      )
    const busyMean = mean(busy.map(annual))
    const quietMean = mean(quiet.map(annual))
    expect(busyMean).toBeGreaterThan(quietMean + 3)
    expect(quietMean).toBeGreaterThan(7)
    expect(quietMean).toBeLessThan(15)
    expect(busyMean).toBeGreaterThan(14)
    expect(busyMean).toBeLessThan(24)
  })

  it('puts the PM10 road-dust peak in spring (Mar–Apr) above summer, and annual PM2.5 near 6.5–9', () => {
    const byMonth = Array.from({ length: 12 }, () => [] as number[])
    const pm25: number[] = []
    for (const ts of hoursOf2025()) {
      const month = stockholmTime(ts).month
      for (const site of sites.slice(0, 4)) {
        const v = sampleAt(site, ts)
        byMonth[month]?.push(v.pm10 ?? 0)
        pm25.push(v.pm25 ?? 0)
      }
    }
    const spring = mean([...(byMonth[2] ?? []), ...(byMonth[3] ?? [])])
    const summer = mean([...(byMonth[5] ?? []), ...(byMonth[6] ?? []), ...(byMonth[7] ?? [])])
    expect(spring).toBeGreaterThan(1.8 * summer)
    expect(mean(pm25)).toBeGreaterThan(5.5)
    expect(mean(pm25)).toBeLessThan(10)
  })

  it('has a Lund climate: cold humid winter nights, warm summer afternoons', () => {
    const winterNightRh: number[] = []
    const summerAfternoonT: number[] = []
    const januaryT: number[] = []
    for (const ts of hoursOf2025()) {
      const local = stockholmTime(ts)
      const h = Math.floor(local.hour)
      const v = sampleAt(sites[0] as SiteProfile, ts)
      if ((local.month >= 10 || local.month <= 1) && h >= 1 && h <= 5) winterNightRh.push(v.rh ?? 0)
      if (local.month === 6 && h >= 13 && h <= 16) summerAfternoonT.push(v.temp ?? 0)
      if (local.month === 0) januaryT.push(v.temp ?? 0)
    }
    expect(mean(winterNightRh)).toBeGreaterThan(85)
    expect(mean(summerAfternoonT)).toBeGreaterThan(18)
    expect(mean(summerAfternoonT)).toBeLessThan(26)
    expect(mean(januaryT)).toBeGreaterThan(-3)
    expect(mean(januaryT)).toBeLessThan(4)
  })

  it('shares regional episodes between sites: daily PM2.5 of two sites moves together', () => {
    const start = Date.parse('2025-01-01T00:00:00Z')
    const a: number[] = []
    const b: number[] = []
    for (let d = 0; d < 180; d += 1) {
      const day = (site: SiteProfile) =>
        mean(Array.from({ length: 24 }, (_, h) => sampleAt(site, start + d * DAY_MS + h * HOUR_MS).pm25 ?? 0))
      a.push(day(sites[0] as SiteProfile))
      b.push(day(sites[5] as SiteProfile))
    }
    const ma = mean(a)
    const mb = mean(b)
    const cov = mean(a.map((x, i) => (x - ma) * ((b[i] ?? 0) - mb)))
    const sd = (xs: number[], m: number) => Math.sqrt(mean(xs.map((x) => (x - m) ** 2)))
    expect(cov / (sd(a, ma) * sd(b, mb))).toBeGreaterThan(0.8)
    // Long-range episodes reach 20+ µg/m³ daily means on some days.
    expect(Math.max(...a)).toBeGreaterThan(20)
  })

  it('gives an urban background site lower NO2, no school-run peak and the same regional PM episodes', () => {
    const station = siteProfile({ siteId: 'demo-lund-b-001', kind: 'background', lat: 55.7047, lon: 13.191 }, 7)
    expect(station.traffic).toBe(0)
    const hours = hoursOf2025().filter((_, i) => i % 3 === 0)
    const stats = (site: SiteProfile) => {
      const all: number[] = []
      const morning: number[] = []
      const night: number[] = []
      for (const ts of hours) {
        const local = stockholmTime(ts)
        const h = Math.floor(local.hour)
        const no2 = sampleAt(site, ts).no2 ?? 0
        all.push(no2)
        if (local.workday && (h === 7 || h === 8)) morning.push(no2)
        if (h >= 1 && h <= 4) night.push(no2)
      }
      return { annual: mean(all), peak: mean(morning) / mean(night) }
    }
    const bg = stats(station)
    // Malmö Rådhuset, roof level: NO2 ~8 µg/m³ in 2023 (air-quality reference §6.1).
    expect(bg.annual).toBeGreaterThan(6)
    expect(bg.annual).toBeLessThan(10)
    for (const site of sites) {
      const s = stats(site)
      expect(s.annual, site.siteId).toBeGreaterThan(bg.annual)
      expect(s.peak, site.siteId).toBeGreaterThan(bg.peak)
    }
    const start = Date.parse('2025-01-01T00:00:00Z')
    const day = (site: SiteProfile, d: number) =>
      mean(Array.from({ length: 24 }, (_, h) => sampleAt(site, start + d * DAY_MS + h * HOUR_MS).pm25 ?? 0))
    const a = Array.from({ length: 180 }, (_, d) => day(station, d))
    const b = Array.from({ length: 180 }, (_, d) => day(sites[1] as SiteProfile, d))
    const ma = mean(a)
    const mb = mean(b)
    const cov = mean(a.map((x, i) => (x - ma) * ((b[i] ?? 0) - mb)))
    const sd = (xs: number[], m: number) => Math.sqrt(mean(xs.map((x) => (x - m) ** 2)))
    expect(cov / (sd(a, ma) * sd(b, mb))).toBeGreaterThan(0.8)
    expect(Math.max(...a)).toBeGreaterThan(20)
  })

  it('produces readings the v1 parser accepts unchanged', () => {
    const now = Date.parse('2025-06-01T12:00:00Z')
    for (const site of sites) {
      const ts = now - 60_000
      const values = sampleAt(site, ts)
      const parsed = parseTelemetry(JSON.stringify(formatTelemetryReading({ ts, seq: 3, values })), now)
      expect(parsed.ok).toBe(true)
      if (parsed.ok) {
        expect(parsed.readings[0]?.values).toEqual(values)
        expect(parsed.readings[0]?.ts).toBe(ts)
        expect(parsed.ignoredFields).toEqual([])
      }
    }
  })
})
