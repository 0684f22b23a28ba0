import { describe, expect, it } from 'vitest'
import { HOUR_MS } from './aggregation.ts'
import {
  DEFAULT_MEASURES,
  detectDropOffPeak,
  detectIndoorOutdoor,
  detectLocalIncrement,
  detectSpringRoadDust,
  detectWinterEveningPeak,
  FORBIDDEN_WORDS,
  forbiddenWordsIn,
  hourOfDayProfileWhere,
  isWeekday,
  isWeekend,
  Measure,
  MeasureCatalogue,
  MeasureError,
  MIN_PATTERN_HOURS,
  PATTERN_IDS,
  PATTERN_VALUES,
  type PatternEvidence,
  type PatternId,
  renderEvidence,
  suggestMeasures,
} from './measures.ts'
import type { Metric } from './metrics.ts'
import {
  createLocalHourClock,
  type LocalHour,
  type ProfileHour,
  pairedComparison,
  seasonOfMonth,
  seasonProfile,
} from './profiles.ts'

const ZONE = 'Europe/Stockholm'
const clock = createLocalHourClock(ZONE)

// Local midnight 1 January 2025 and 1 March 2025 in Stockholm (UTC+1 in winter).
const JAN_1 = Date.UTC(2024, 11, 31, 23)
const MAR_1 = Date.UTC(2025, 1, 28, 23)
// Local year 2025.
const YEAR_FROM = JAN_1
const YEAR_TO = Date.UTC(2025, 11, 31, 23)

/** Hourly series over [from, to) whose value is a function of local time; `valid(t)` marks gaps. */
function series(
  from: number,
  to: number,
  value: (local: LocalHour, t: number) => number,
  valid: (t: number) => boolean = () => true,
): ProfileHour[] {
  const hours: ProfileHour[] = []
  for (let t = from; t < to; t += HOUR_MS) {
    hours.push({ t, mean: value(clock(t), t), valid: valid(t) })
  }
  return hours
}

function dropOffProfiles(hours: readonly ProfileHour[], from: number, to: number) {
  const options = { from, to, timeZone: ZONE }
  return {
    weekday: hourOfDayProfileWhere(hours, options, isWeekday),
    weekend: hourOfDayProfileWhere(hours, options, isWeekend),
  }
}

// NO2 10 µg/m³ all day, 20 at weekday 07–09 local.
const dropOffValue = (local: LocalHour): number =>
  local.dayOfWeek < 5 && (local.hourOfDay === 7 || local.hourOfDay === 8) ? 20 : 10

describe('hourOfDayProfileWhere', () => {
  it('gives the coverage of the subset, not of all days', () => {
    const hours = series(JAN_1, MAR_1, () => 10)
    const { weekday, weekend } = dropOffProfiles(hours, JAN_1, MAR_1)
    // January + February 2025: 43 weekdays, 16 weekend days.
    for (const bucket of weekday.buckets) {
      expect(bucket).toMatchObject({ hours: 43, periodHours: 43, coverage: 1, mean: 10 })
    }
    for (const bucket of weekend.buckets) {
      expect(bucket).toMatchObject({ hours: 16, periodHours: 16, coverage: 1 })
    }
  })
})

describe('detectDropOffPeak', () => {
  it('finds a clear weekday drop-off peak with its numbers', () => {
    const hours = series(JAN_1, MAR_1, dropOffValue)
    const found = detectDropOffPeak('no2', dropOffProfiles(hours, JAN_1, MAR_1))
    expect(found).not.toBeNull()
    const daily = (22 * 10 + 2 * 20) / 24
    expect(found?.pattern).toBe('drop-off-peak')
    expect(found?.values.weekdayMorning).toBeCloseTo(20, 10)
    expect(found?.values.weekdayDaily).toBeCloseTo(daily, 10)
    expect(found?.values.weekdayRatio).toBeCloseTo(20 / daily, 10)
    expect(found?.values.weekendRatio).toBeCloseTo(1, 10)
    expect(found?.coverage).toBe(1)
    // Fewest hours: weekend 07–09 = 16 days × 2 hours.
    expect(found?.hours).toBe(32)
  })

  it('finds nothing in a flat profile', () => {
    const hours = series(JAN_1, MAR_1, () => 10)
    expect(detectDropOffPeak('no2', dropOffProfiles(hours, JAN_1, MAR_1))).toBeNull()
  })

  it('finds nothing when the morning peak is as strong at weekends', () => {
    const hours = series(JAN_1, MAR_1, (local) => (local.hourOfDay === 7 || local.hourOfDay === 8 ? 20 : 10))
    expect(detectDropOffPeak('no2', dropOffProfiles(hours, JAN_1, MAR_1))).toBeNull()
  })

  it('reports the lower coverage of gappy data', () => {
    // Every other local day missing.
    const hours = series(JAN_1, MAR_1, dropOffValue, (t) => Math.floor((t - JAN_1) / (24 * HOUR_MS)) % 2 === 0)
    const found = detectDropOffPeak('no2', dropOffProfiles(hours, JAN_1, MAR_1))
    expect(found).not.toBeNull()
    expect(found?.coverage).toBeGreaterThan(0.3)
    expect(found?.coverage).toBeLessThan(0.6)
  })
})

describe('detectSpringRoadDust', () => {
  it('finds a spring PM10 peak against summer and autumn', () => {
    const hours = series(YEAR_FROM, YEAR_TO, (local) => (seasonOfMonth(local.month) === 1 ? 30 : 15))
    const found = detectSpringRoadDust('pm10', seasonProfile(hours, { from: YEAR_FROM, to: YEAR_TO, timeZone: ZONE }))
    expect(found?.values).toEqual({ spring: 30, summerAutumn: 15, ratio: 2 })
    expect(found?.coverage).toBe(1)
  })

  it('finds nothing in a flat year', () => {
    const hours = series(YEAR_FROM, YEAR_TO, () => 15)
    expect(
      detectSpringRoadDust('pm10', seasonProfile(hours, { from: YEAR_FROM, to: YEAR_TO, timeZone: ZONE })),
    ).toBeNull()
  })
})

describe('detectWinterEveningPeak', () => {
  const seasonal = (hours: readonly ProfileHour[]) => {
    const options = { from: YEAR_FROM, to: YEAR_TO, timeZone: ZONE }
    return {
      winter: hourOfDayProfileWhere(hours, options, (local) => seasonOfMonth(local.month) === 0),
      summer: hourOfDayProfileWhere(hours, options, (local) => seasonOfMonth(local.month) === 2),
    }
  }

  it('finds a winter evening PM2.5 rise that summer does not show', () => {
    const hours = series(YEAR_FROM, YEAR_TO, (local) =>
      seasonOfMonth(local.month) === 0 && local.hourOfDay >= 17 && local.hourOfDay <= 22 ? 15 : 6,
    )
    const found = detectWinterEveningPeak('pm25', seasonal(hours))
    const daily = (6 * 15 + 18 * 6) / 24
    expect(found?.values.winterEvening).toBeCloseTo(15, 10)
    expect(found?.values.winterDaily).toBeCloseTo(daily, 10)
    expect(found?.values.winterRatio).toBeCloseTo(15 / daily, 10)
    expect(found?.values.summerRatio).toBeCloseTo(1, 10)
  })

  it('finds nothing when the evening rise is the same all year', () => {
    const hours = series(YEAR_FROM, YEAR_TO, (local) => (local.hourOfDay >= 17 && local.hourOfDay <= 22 ? 15 : 6))
    expect(detectWinterEveningPeak('pm25', seasonal(hours))).toBeNull()
  })
})

describe('paired detectors', () => {
  const outdoor = series(JAN_1, MAR_1, (local) => 5 + local.hourOfDay)
  const period = { from: JAN_1, to: MAR_1 }

  it('indoor following outdoor at 0.8 × outdoor', () => {
    const indoor = outdoor.map((h) => ({ ...h, mean: (h.mean ?? 0) * 0.8 }))
    const found = detectIndoorOutdoor('pm25', pairedComparison(indoor, outdoor, period))
    expect(found?.pattern).toBe('indoor-follows-outdoor')
    expect(found?.values.ratio).toBeCloseTo(0.8, 10)
    expect(found?.values.shareIndoorAbove).toBe(0)
  })

  it('indoor above outdoor in many hours points to indoor sources', () => {
    // Indoor 10 µg/m³ above outdoor during local 08–16 (9 of 24 hours = 37.5 %), half of outdoor otherwise.
    const indoor = outdoor.map((h) => {
      const hour = clock(h.t).hourOfDay
      return { ...h, mean: hour >= 8 && hour <= 16 ? (h.mean ?? 0) + 10 : (h.mean ?? 0) * 0.5 }
    })
    const found = detectIndoorOutdoor('pm25', pairedComparison(indoor, outdoor, period))
    expect(found?.pattern).toBe('indoor-sources')
    expect(found?.values.shareIndoorAbove).toBeCloseTo(9 / 24, 10)
  })

  it('indoor well below outdoor suggests nothing', () => {
    const indoor = outdoor.map((h) => ({ ...h, mean: (h.mean ?? 0) * 0.2 }))
    expect(detectIndoorOutdoor('pm25', pairedComparison(indoor, outdoor, period))).toBeNull()
  })

  it('a site at twice its urban background has a local increment', () => {
    const site = outdoor.map((h) => ({ ...h, mean: (h.mean ?? 0) * 2 }))
    const found = detectLocalIncrement('no2', pairedComparison(site, outdoor, period))
    expect(found?.values.ratio).toBeCloseTo(2, 10)
    expect(found?.values.increment).toBeCloseTo(found?.values.background ?? Number.NaN, 10)
    expect(found?.coverage).toBe(1)
  })

  it('a site at its urban background has none', () => {
    expect(detectLocalIncrement('no2', pairedComparison(outdoor, outdoor, period))).toBeNull()
  })
})

describe('catalogue', () => {
  it('every default measure validates against the schema, and so does the catalogue', () => {
    for (const measure of DEFAULT_MEASURES) {
      const result = Measure.safeParse(measure)
      expect(result.success, `${measure.id}: ${result.error?.message}`).toBe(true)
    }
    expect(MeasureCatalogue.safeParse(DEFAULT_MEASURES).success).toBe(true)
  })

  it('every pattern suggests at least one default measure', () => {
    for (const pattern of PATTERN_IDS) {
      expect(
        DEFAULT_MEASURES.some((m) => m.suggestedBy.some((t) => t.pattern === pattern)),
        pattern,
      ).toBe(true)
    }
  })

  it('the planting measure states the street-canyon caveat', () => {
    const planting = DEFAULT_MEASURES.find((m) => m.id === 'vegetation-barrier')
    expect(planting?.description.en).toMatch(/trap pollution in narrow street canyons/)
    expect(planting?.description.sv).toMatch(/gatukanjoner/)
  })

  it('rejects a text that states a conclusion, in either language', () => {
    const base = DEFAULT_MEASURES[0]
    if (base === undefined) throw new Error('empty catalogue')
    const en = { ...base, description: { ...base.description, en: 'A car-free street will lower NO2.' } }
    const sv = { ...base, description: { ...base.description, sv: 'Trafiken orsakar toppen.' } }
    const svPhrase = { ...base, name: { ...base.name, sv: 'Halten kommer att sjunka' } }
    expect(Measure.safeParse(en).success).toBe(false)
    expect(Measure.safeParse(sv).success).toBe(false)
    expect(Measure.safeParse(svPhrase).success).toBe(false)
  })

  it('rejects a placeholder its pattern does not provide, and duplicate ids', () => {
    const base = DEFAULT_MEASURES[0]
    if (base === undefined) throw new Error('empty catalogue')
    const bad = {
      ...base,
      suggestedBy: [
        { pattern: 'drop-off-peak', evidence: { sv: 'Data tyder på {spring}.', en: 'The data suggest {x}.' } },
      ],
    }
    expect(Measure.safeParse(bad).success).toBe(false)
    expect(MeasureCatalogue.safeParse([base, base]).success).toBe(false)
    expect(() => suggestMeasures([], [base, base])).toThrow(MeasureError)
  })

  it('forbiddenWordsIn matches whole words only', () => {
    expect(forbiddenWordsIn('This will help', 'en')).toEqual(['will'])
    expect(forbiddenWordsIn('willingness, because', 'en')).toEqual([])
    expect(forbiddenWordsIn('Det måste göras', 'sv')).toEqual(['måste'])
  })
})

/** Evidence for a pattern with every value set, for rendering every template. */
function fakeEvidence(pattern: PatternId, metric: Metric, coverage = 0.9, hours = 100): PatternEvidence {
  const values: Record<string, number> = {}
  for (const name of Object.keys(PATTERN_VALUES[pattern])) values[name] = 1.234
  return { pattern, metric, values, coverage, hours }
}

describe('suggestMeasures', () => {
  it('suggests traffic measures for a found drop-off peak, with its numbers in sv and en', () => {
    const hours = series(JAN_1, MAR_1, dropOffValue)
    const found = detectDropOffPeak('no2', dropOffProfiles(hours, JAN_1, MAR_1))
    if (found === null) throw new Error('no pattern')
    const { suggestions, skipped } = suggestMeasures([found], DEFAULT_MEASURES)
    expect(skipped).toEqual([])
    expect(suggestions.map((s) => s.measureId)).toEqual(['traffic-at-drop-off'])
    const [suggestion] = suggestions
    expect(suggestion?.evidence.en).toContain('The data suggest')
    expect(suggestion?.evidence.en).toContain('averaged 20.0 µg/m³ against 10.8 µg/m³')
    expect(suggestion?.evidence.en).toContain('ratio 1.85')
    expect(suggestion?.evidence.en).toContain('the ratio was 1.00')
    expect(suggestion?.evidence.en).toContain('Coverage 100 %, at least 32 hours')
    expect(suggestion?.evidence.sv).toContain('20,0 µg/m³ mot 10,8 µg/m³')
    expect(suggestion?.evidence.sv).toContain('kvot 1,85')
  })

  it('skips evidence with too little coverage or too few hours, with the reason', () => {
    const gappy = series(JAN_1, MAR_1, dropOffValue, (t) => Math.floor((t - JAN_1) / (24 * HOUR_MS)) % 2 === 0)
    const low = detectDropOffPeak('no2', dropOffProfiles(gappy, JAN_1, MAR_1))
    // One week of full data: coverage 1 but 2 weekend days × 2 hours.
    const weekTo = JAN_1 + 7 * 24 * HOUR_MS
    const short = detectDropOffPeak('no2', dropOffProfiles(series(JAN_1, weekTo, dropOffValue), JAN_1, weekTo))
    if (low === null || short === null) throw new Error('no pattern')
    expect(short.hours).toBeLessThan(MIN_PATTERN_HOURS)
    const { suggestions, skipped } = suggestMeasures([low, short], DEFAULT_MEASURES)
    expect(suggestions).toEqual([])
    expect(skipped).toEqual([
      { pattern: 'drop-off-peak', metric: 'no2', reason: 'LOW_COVERAGE', coverage: low.coverage, hours: low.hours },
      { pattern: 'drop-off-peak', metric: 'no2', reason: 'TOO_FEW_HOURS', coverage: 1, hours: 4 },
    ])
  })

  it('suggests only measures that concern the metric', () => {
    expect(suggestMeasures([fakeEvidence('spring-road-dust', 'pm10')], DEFAULT_MEASURES).suggestions).toHaveLength(1)
    expect(suggestMeasures([fakeEvidence('spring-road-dust', 'pm25')], DEFAULT_MEASURES).suggestions).toEqual([])
  })

  it('indoor following outdoor suggests the intake and the ventilation schedule', () => {
    const ids = suggestMeasures([fakeEvidence('indoor-follows-outdoor', 'pm25')], DEFAULT_MEASURES).suggestions.map(
      (s) => s.measureId,
    )
    expect(ids).toEqual(['move-air-intake', 'ventilation-schedule'])
  })

  it('never states a conclusion: every rendered suggestion is free of forbidden words and fully filled', () => {
    const evidence = PATTERN_IDS.flatMap((pattern) =>
      (['pm10', 'pm25', 'no2'] as const).map((m) => fakeEvidence(pattern, m)),
    )
    const { suggestions } = suggestMeasures(evidence, DEFAULT_MEASURES)
    // Every trigger of every measure is rendered at least once.
    const triggers = DEFAULT_MEASURES.flatMap((m) => m.suggestedBy.map((t) => `${m.id}/${t.pattern}`))
    expect(new Set(suggestions.map((s) => `${s.measureId}/${s.pattern}`))).toEqual(new Set(triggers))
    for (const s of suggestions) {
      for (const language of ['sv', 'en'] as const) {
        for (const text of [s.evidence[language], s.name[language], s.description[language], s.caveat[language]]) {
          expect(forbiddenWordsIn(text, language), text).toEqual([])
        }
        expect(s.evidence[language]).not.toMatch(/[{}]/)
      }
      expect(s.evidence.en).toMatch(/^The data suggest/)
      expect(s.evidence.en).toMatch(/\bmay\b/)
      expect(s.evidence.sv).toMatch(/^Data tyder på/)
      expect(s.evidence.sv).toMatch(/\bkan\b/)
    }
    // The forbidden list itself covers the words the issue names.
    expect(FORBIDDEN_WORDS.en).toEqual(expect.arrayContaining(['causes', 'will']))
  })

  it('renderEvidence throws on a placeholder without a value', () => {
    expect(() => renderEvidence('{nope}', fakeEvidence('local-increment', 'no2'), 'en')).toThrow(MeasureError)
  })
})
