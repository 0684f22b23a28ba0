import { METRIC_INFO, type Metric, type MetricValues, type SiteKind } from '@skolluft/core'
import { type LocalTime, monthOfDay, stockholmTime } from './local-time.ts'
import { gaussian, hash, hashString, lerp, smoothNoise, unit } from './random.ts'

/**
 * The "true" air at a site, minute by minute: a seeded, deterministic model after the air-quality
 * reference §6.3 (background + local increment, multiplicative daily/weekly/seasonal factors,
 * log-normal noise, multi-day episodes). Pure: `sampleAt(site, ts)` is the same number every time it is
 * asked, so live readings, replays and backfilled history agree.
 *
 * Levels come from §6.1 (Malmö roof/street annual means as the nearest measured stand-in for Lund).
 * Every multiplier, shape and episode rate below is an engineering assumption that §6.3 marks
 * UNVERIFIED; calibrate against Lund/Malmö hourly data before drawing conclusions from simulated data.
 * What the sensor makes of this air (humidity artefacts, drift, stuck values…) is faults.ts.
 */

export interface SiteInfo {
  readonly siteId: string
  readonly kind: SiteKind
  readonly lat: number
  readonly lon: number
}

export interface SiteProfile extends SiteInfo {
  /** Fleet seed: with `area`, keys the regional weather and episodes every site of the area shares. */
  readonly seed: number
  /** Key of the region whose weather and episodes the site shares (one region for a municipality). */
  readonly area: number
  /** Per-site key for the local noise. */
  readonly key: number
  /** 0–1: how much busy traffic is near the site; scales the local NO2 and road-dust increments. */
  readonly traffic: number
  /** Multiplier on the urban background, 0.85–1.15. */
  readonly background: number
  /** Multiplier on winter-evening wood smoke, 0.4–1.6 (neighbourhoods with wood stoves vary). */
  readonly woodSmoke: number
  /** Typical PM1/PM2.5 ratio at the site, 0.62–0.76 (§6.3: ≈ 0.6–0.8, UNVERIFIED). */
  readonly pm1Ratio: number
  /** Local temperature offset (heat island, shade), °C. */
  readonly warmBias: number
}

/** The region everything shares unless told otherwise: long-range transport covers all of Skåne. */
export const DEFAULT_AREA = 'skane'

/**
 * The urban background NO2 multiplier of a `background` site (an urban background station, roof level):
 * 0.9 puts its annual NO2 near 8 µg/m³, Malmö Rådhuset's roof-level value in 2023 (air-quality reference
 * §6.1), and below the schools' and preschools' background range (0.85–1.15) plus their local increment.
 */
const BACKGROUND_STATION_NO2 = 0.9
/**
 * Wood smoke reaching a roof-level station is the town's average, not one neighbourhood's: the middle of
 * the sites' 0.4–1.6 range (UNVERIFIED, like the range).
 */
const BACKGROUND_STATION_WOOD_SMOKE = 1

/**
 * Derives the fixed character of a site from its id and the fleet seed. Schools are more often by a
 * busy street than preschools (bigger catchment, on main roads); either can be. An urban background
 * station (kind `background`) has no street of its own (traffic 0) and sees the town's average wood smoke;
 * it shares the region's weather and episodes like every site. Its other traits are drawn like a school's.
 */
export function siteProfile(site: SiteInfo, seed = 1, area: string = DEFAULT_AREA): SiteProfile {
  const key = hash(hashString(site.siteId), seed)
  const busyShare = site.kind === 'school' ? 0.35 : 0.2
  const busy = unit(key, 1) < busyShare
  const traffic = busy ? 0.6 + 0.4 * unit(key, 2) : 0.05 + 0.35 * unit(key, 2)
  const profile: SiteProfile = {
    ...site,
    seed,
    area: hashString(area),
    key,
    traffic,
    background: 0.85 + 0.3 * unit(key, 3),
    woodSmoke: 0.4 + 1.2 * unit(key, 4),
    pm1Ratio: 0.62 + 0.14 * unit(key, 5),
    warmBias: (site.lat < 55.69 || site.lon > 13.3 ? -0.3 : 0.3) + 0.4 * (unit(key, 6) - 0.5),
  }
  if (site.kind !== 'background') return profile
  return { ...profile, traffic: 0, background: BACKGROUND_STATION_NO2, woodSmoke: BACKGROUND_STATION_WOOD_SMOKE }
}

// ---------------------------------------------------------------------------------------------
// Shapes (all UNVERIFIED engineering assumptions, §6.3)

const DAY_MS = 86_400_000
const HOUR_MS = 3_600_000

function bump(x: number, centre: number, width: number): number {
  const d = (x - centre) / width
  return Math.exp(-0.5 * d * d)
}

/** Weekday traffic: night minimum, peaks 07–09 and 15–18 (§6.3), a midday plateau. */
function weekdayTrafficRaw(hour: number): number {
  return 0.4 + 1.3 * bump(hour, 7.9, 0.9) + 1.0 * bump(hour, 16.5, 1.4) + 0.5 * bump(hour, 12.3, 2.6)
}

/** Weekend traffic: late, flat, one broad midday hump. */
function weekendTrafficRaw(hour: number): number {
  return 0.35 + 0.55 * bump(hour, 13.5, 3.5)
}

function dailyMean(shape: (hour: number) => number): number {
  let sum = 0
  for (let i = 0; i < 288; i += 1) sum += shape(i / 12)
  return sum / 288
}

const WEEKDAY_TRAFFIC_MEAN = dailyMean(weekdayTrafficRaw)
const WEEKEND_TRAFFIC_MEAN = dailyMean(weekendTrafficRaw)
/** Weekend traffic relative to a weekday (§6.3: NO2 weekend ~0.6–0.7×). */
const WEEKEND_TRAFFIC_FACTOR = 0.6

/** Traffic activity, weekday daily mean = 1. */
export function trafficShape(t: LocalTime): number {
  return t.workday
    ? weekdayTrafficRaw(t.hour) / WEEKDAY_TRAFFIC_MEAN
    : (WEEKEND_TRAFFIC_FACTOR * weekendTrafficRaw(t.hour)) / WEEKEND_TRAFFIC_MEAN
}

/** Monthly factors are given at mid-month and interpolated over the year, so seasons have no steps. */
function seasonal(table: readonly number[], dayOfYear: number): number {
  const x = (dayOfYear / 365.25) * 12 - 0.5
  const i = Math.floor(x)
  const f = x - i
  const a = table[(i + 12) % 12] ?? 1
  const b = table[(i + 13) % 12] ?? 1
  return lerp(a, b, f)
}

/** NO2: winter ~1.3×, summer ~0.7× (§6.3: lower mixing height and inversions in winter). */
const NO2_SEASON = [1.3, 1.25, 1.1, 0.95, 0.8, 0.7, 0.7, 0.72, 0.85, 1.05, 1.25, 1.3]
/** PM2.5: winter and early spring higher (§6.3). */
const PM25_SEASON = [1.2, 1.25, 1.2, 1.05, 0.9, 0.8, 0.8, 0.82, 0.9, 1.0, 1.1, 1.2]
/** Road dust: peak Mar–Apr (studded tyres, dry roads), secondary Oct–Nov, low in summer (§6.2, §6.3). */
const ROAD_DUST_SEASON = [0.9, 1.2, 2.3, 2.5, 1.3, 0.6, 0.5, 0.5, 0.7, 1.3, 1.6, 1.1]
/** Wood burning season (§6.2 names it for Lund; magnitude UNVERIFIED). */
const WOOD_SEASON = [1, 1, 0.7, 0.35, 0.05, 0, 0, 0, 0.15, 0.5, 0.85, 1]
/**
 * Lund climate, approximate monthly normals (SMHI 1991–2020 for Lund, rounded from memory of the
 * published tables; UNVERIFIED to ±1 °C / ±3 %): mean temperature, diurnal half-range, mean RH and its
 * diurnal half-range.
 */
const TEMP_MEAN_C = [1.2, 1.3, 3.6, 7.8, 12.0, 15.4, 17.8, 17.5, 14.0, 9.5, 5.6, 2.6]
const TEMP_HALF_RANGE_C = [1.5, 2, 3, 4.5, 5, 5, 5, 4.5, 4, 3, 2, 1.5]
const RH_MEAN = [88, 86, 81, 74, 70, 71, 73, 75, 80, 85, 89, 90]
const RH_HALF_RANGE = [3, 4, 8, 12, 14, 14, 14, 13, 11, 7, 4, 3]
/** Share of days with rain, which wets the roads and keeps road dust down. */
const WET_DAY_SHARE = [0.5, 0.45, 0.4, 0.35, 0.35, 0.4, 0.4, 0.45, 0.45, 0.5, 0.55, 0.55]

// ---------------------------------------------------------------------------------------------
// Episodes: regional multi-day events keyed by (seed, area, day), so every site of an area has them on
// the same days.

interface EpisodeSpec {
  readonly id: number
  /** Probability that an episode starts on a given day, by month. */
  readonly startChance: readonly number[]
  readonly minDays: number
  readonly maxDays: number
}

/**
 * Long-range transport of PM2.5: 2–4 days, ~5 a year, more in winter and spring (§6.2, §6.3), so that
 * daily means above 25 µg/m³ happen a few times a year (§6.3, Frisk luft allows 3).
 */
const LONG_RANGE: EpisodeSpec = {
  id: 101,
  startChance: [0.02, 0.02, 0.02, 0.017, 0.011, 0.007, 0.007, 0.007, 0.008, 0.011, 0.014, 0.017],
  minDays: 2,
  maxDays: 4,
}
/** PM2.5 a full-strength long-range episode adds, µg/m³: daily means 20–40 with the background (§6.3). */
const LONG_RANGE_PM25 = 30

/** Dry, windless road-dust days: mostly Mar–Apr, some Oct–Nov, 1–3 days (§6.3). */
const DRY_DUST: EpisodeSpec = {
  id: 102,
  startChance: [0.005, 0.02, 0.07, 0.07, 0.02, 0, 0, 0, 0, 0.015, 0.02, 0.005],
  minDays: 1,
  maxDays: 3,
}
/** Winter inversions trapping NO2 near the ground: 1–3 days (§6.3). */
const INVERSION: EpisodeSpec = {
  id: 103,
  startChance: [0.07, 0.06, 0.02, 0, 0, 0, 0, 0, 0, 0.02, 0.06, 0.07],
  minDays: 1,
  maxDays: 3,
}

/** Strength 0–1 of the episodes of one kind on one local day. */
function episodeLevel(site: SiteProfile, spec: EpisodeSpec, day: number): number {
  let level = 0
  for (let back = 0; back < spec.maxDays; back += 1) {
    const start = day - back
    if (unit(site.seed, site.area, spec.id, start) >= (spec.startChance[monthOfDay(start)] ?? 0)) continue
    const length =
      spec.minDays + Math.floor(unit(site.seed, site.area, spec.id, start, 1) * (spec.maxDays - spec.minDays + 1))
    if (back >= length) continue
    const amplitude = 0.6 + 0.4 * unit(site.seed, site.area, spec.id, start, 2)
    // Episodes build up and die away: the first and last day are weaker.
    const edge = length > 1 && (back === 0 || back === length - 1)
    level = Math.max(level, amplitude * (edge ? 0.65 : 1))
  }
  return level
}

/** The episode strength at a moment, interpolated between the middles of the days. */
function episodeAt(site: SiteProfile, spec: EpisodeSpec, t: LocalTime): number {
  const x = t.day + t.hour / 24 - 0.5
  const day = Math.floor(x)
  return lerp(episodeLevel(site, spec, day), episodeLevel(site, spec, day + 1), x - day)
}

// ---------------------------------------------------------------------------------------------

/** Multiplicative log-normal noise with median 1 and the given σ of the log. */
function lognormal(logValue: number, sigma: number): number {
  return Math.exp(sigma * logValue)
}

const METRIC_KEYS: Readonly<Record<Metric | 'coarse' | 'ratio', number>> = {
  pm1: 1,
  pm25: 2,
  pm10: 3,
  no2: 4,
  temp: 5,
  rh: 6,
  coarse: 7,
  ratio: 8,
}
const REGION_DISPERSION = 201
const REGION_AIR_MASS = 202
const REGION_TEMP = 203
const REGION_TEMP_FAST = 204
const REGION_RH = 205
const REGION_WET = 206

/** Site noise varies over ~20 minutes (gusts, passing traffic), weather over days. */
const LOCAL_NOISE_KNOT_MS = 20 * 60_000
const WEATHER_KNOT_MS = DAY_MS
const WEATHER_FAST_KNOT_MS = 6 * HOUR_MS

function round1(value: number, metric: Metric): number {
  const info = METRIC_INFO[metric]
  return Math.round(Math.min(info.max, Math.max(info.min, value)) * 10) / 10
}

/** The air at `site` at epoch ms `ts`, in canonical units, rounded to 0.1. PM1 ≤ PM2.5 ≤ PM10 always. */
export function sampleAt(site: SiteProfile, ts: number): MetricValues {
  const t = stockholmTime(ts)
  const traffic = trafficShape(t)
  const month = t.month

  // Regional weather, shared by the area.
  const dispersion = Math.exp(0.3 * smoothNoise(ts, WEATHER_KNOT_MS, site.seed, site.area, REGION_DISPERSION) - 0.045)
  const airMass = Math.exp(0.25 * smoothNoise(ts, WEATHER_KNOT_MS, site.seed, site.area, REGION_AIR_MASS) - 0.03)
  const longRange = episodeAt(site, LONG_RANGE, t)
  const dryDust = episodeAt(site, DRY_DUST, t)
  const inversion = episodeAt(site, INVERSION, t)
  const wet = unit(site.seed, site.area, REGION_WET, t.day) < (WET_DAY_SHARE[month] ?? 0.4) && dryDust < 0.3

  // Temperature and humidity.
  const tempAnomaly =
    2.5 * smoothNoise(ts, WEATHER_KNOT_MS, site.seed, site.area, REGION_TEMP) +
    0.8 * smoothNoise(ts, WEATHER_FAST_KNOT_MS, site.seed, site.area, REGION_TEMP_FAST)
  const halfRange = seasonal(TEMP_HALF_RANGE_C, t.dayOfYear) * (wet ? 0.5 : 1)
  // Coldest around 04–05, warmest around 15.
  const temp =
    seasonal(TEMP_MEAN_C, t.dayOfYear) +
    halfRange * Math.cos((2 * Math.PI * (t.hour - 15)) / 24) +
    tempAnomaly +
    site.warmBias -
    3 * inversion +
    0.15 * gaussian(site.key, METRIC_KEYS.temp, ts)
  const rh =
    seasonal(RH_MEAN, t.dayOfYear) +
    seasonal(RH_HALF_RANGE, t.dayOfYear) * (wet ? 0.6 : 1) * Math.cos((2 * Math.PI * (t.hour - 4.5)) / 24) +
    (wet ? 5 : -3) +
    5 * smoothNoise(ts, WEATHER_KNOT_MS, site.seed, site.area, REGION_RH) -
    1.5 * tempAnomaly +
    5 * inversion +
    0.5 * gaussian(site.key, METRIC_KEYS.rh, ts)

  // NO2 (§6.3): background 8–10 with a softened traffic shape, plus a local increment 1–12 that follows
  // traffic, a sharper drop-off peak at schools and preschools on workdays, winter and inversion factors.
  // An urban background station (roof level, §6.1) measures the background alone: no local increment and
  // no drop-off, so a school minus it is the school's local increment.
  const station = site.kind === 'background'
  const no2Background = 9 * site.background * (0.45 + 0.55 * traffic)
  const local = station ? 0 : 1 + 11 * site.traffic
  const dropOff = t.workday && !station ? 0.5 * bump(t.hour, 7.75, 0.35) : 0
  const no2Noise =
    lognormal(smoothNoise(ts, LOCAL_NOISE_KNOT_MS, site.key, METRIC_KEYS.no2), 0.22) *
    lognormal(gaussian(site.key, METRIC_KEYS.no2, ts), 0.08)
  const no2 =
    dispersion *
    seasonal(NO2_SEASON, t.dayOfYear) *
    (1 + 1.5 * inversion) *
    (no2Background + local * (traffic + dropOff)) *
    no2Noise

  // PM2.5 (§6.3): ~80 % regional (long-range) mass with 20–50 µg/m³ episodes, winter-evening wood smoke,
  // a small traffic share.
  const regional = (5.2 * seasonal(PM25_SEASON, t.dayOfYear) + LONG_RANGE_PM25 * longRange) * airMass
  const wood = 2.5 * site.woodSmoke * seasonal(WOOD_SEASON, t.dayOfYear) * (0.2 + 2.2 * bump(t.hour, 19.5, 2.2))
  const trafficPm = 0.9 * site.traffic * traffic
  const localPm = (wood + trafficPm) * dispersion * (1 + 0.8 * inversion)
  const pm25 =
    regional * lognormal(smoothNoise(ts, LOCAL_NOISE_KNOT_MS, site.key, METRIC_KEYS.pm25), 0.15) +
    localPm * lognormal(gaussian(site.key, METRIC_KEYS.pm25, ts), 0.2)

  // PM10 = PM2.5 + coarse: regional coarse (sea salt, soil), road dust resuspended by traffic with its
  // spring peak, kept down on wet days and raised on dry, windless ones (§6.2, §6.3).
  const coldWet = wet && temp < 0 ? 0.5 : 1
  const roadDust =
    (1.2 + 9 * site.traffic) *
    seasonal(ROAD_DUST_SEASON, t.dayOfYear) *
    (wet ? 0.3 * coldWet : 1) *
    (1 + 2.2 * dryDust) *
    (0.3 + 0.7 * traffic) *
    dispersion
  const coarse =
    (4.5 * airMass + 0.25 * LONG_RANGE_PM25 * longRange + roadDust) *
    lognormal(smoothNoise(ts, LOCAL_NOISE_KNOT_MS, site.key, METRIC_KEYS.coarse), 0.25)
  const pm10 = pm25 + coarse

  // PM1: fine smoke and long-range aerosol are almost all below 1 µm, so the ratio rises with their share.
  const fineShare = (LONG_RANGE_PM25 * longRange + wood) / Math.max(pm25, 0.1)
  const ratio = Math.min(
    0.8,
    Math.max(0.6, site.pm1Ratio + 0.03 * smoothNoise(ts, 3 * HOUR_MS, site.key, METRIC_KEYS.ratio) + 0.06 * fineShare),
  )

  return {
    pm1: round1(pm25 * ratio, 'pm1'),
    pm25: round1(pm25, 'pm25'),
    pm10: round1(pm10, 'pm10'),
    no2: round1(no2, 'no2'),
    temp: round1(temp, 'temp'),
    rh: round1(Math.min(100, Math.max(18, rh)), 'rh'),
  }
}
