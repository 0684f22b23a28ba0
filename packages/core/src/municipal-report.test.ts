import { describe, expect, it } from 'vitest'
import { DAY_MS, HOUR_MS } from './aggregation.ts'
import { METRICS, type Metric } from './metrics.ts'
import { MunicipalReportError, type MunicipalSite, municipalReport } from './municipal-report.ts'
import type { SiteKind } from './registry.ts'
import type { SiteHourAggregate } from './rule-values.ts'
import { type MeanRuleReport, type MetricReport, type ProfileReport, siteReport } from './site-report.ts'
import { profileById, type ThresholdProfile } from './thresholds.ts'

/** March 2026 in UTC+1. */
const MARCH = Date.parse('2026-02-28T23:00:00Z')
const APRIL = Date.parse('2026-03-31T23:00:00Z')
const WINDOW = { from: MARCH, to: APRIL }
const HOURS = 744

function metricReport(metric: Metric, mean: number | null, coverage = 1): MetricReport {
  const countedHours = Math.round(coverage * HOURS)
  return {
    metric,
    mean,
    countedHours,
    expectedHours: HOURS,
    coverage,
    sufficientCoverage: coverage >= 0.85,
    validDays: 0,
    expectedDays: 31,
    dayCoverage: 0,
    worstHours: [],
    worstDays: [],
  }
}

function meanRule(rule: string, pollutant: 'pm25' | 'pm10' | 'no2', value: number): MeanRuleReport {
  return {
    kind: 'mean',
    rule,
    pollutant,
    period: 'year',
    value,
    mean: null,
    countedHours: 0,
    expectedHours: HOURS,
    coverage: 0,
    sufficientCoverage: false,
    aboveValue: null,
    exceeded: null,
  }
}

/** Two profiles with annual values; the strictest is the first one's (5, 15, 10 µg/m³). */
const PROFILES: ProfileReport[] = [
  {
    id: 'strict',
    version: '1',
    name: 'Strict',
    legal: false,
    applies: WINDOW,
    rules: [
      meanRule('strict-pm25-year', 'pm25', 5),
      meanRule('strict-pm10-year', 'pm10', 15),
      meanRule('strict-no2-year', 'no2', 10),
    ],
  },
  {
    id: 'lax',
    version: '1',
    name: 'Lax',
    legal: true,
    applies: WINDOW,
    rules: [meanRule('lax-pm25-year', 'pm25', 25), meanRule('lax-no2-year', 'no2', 40)],
  },
]

type Value = number | null | { mean: number | null; coverage: number }

function site(id: string, kind: SiteKind, values: Partial<Record<Metric, Value>>): MunicipalSite {
  const metrics = METRICS.flatMap((m) => {
    const v = values[m]
    if (v === undefined) return []
    return [v === null || typeof v === 'number' ? metricReport(m, v) : metricReport(m, v.mean, v.coverage)]
  })
  return {
    site: { id, name: `Site ${id}`, kind },
    report: { siteId: id, window: WINDOW, periodIsYear: false, metrics, profiles: PROFILES },
  }
}

function pm25Of(sites: MunicipalSite[]) {
  const report = municipalReport({ window: WINDOW, metrics: ['pm25'], sites })
  const m = report.metrics[0]
  if (m === undefined) throw new Error('no metric')
  return { report, m }
}

describe('municipalReport: municipal median and comparison', () => {
  it('takes the middle mean for an odd count and compares each site with it', () => {
    const { m } = pm25Of([
      site('c', 'school', { pm25: 7 }),
      site('a', 'school', { pm25: 4 }),
      site('b', 'school', { pm25: 10 }),
    ])
    expect(m.median).toBe(7)
    expect(m.included).toBe(3)
    expect(m.sites.map((s) => s.siteId)).toEqual(['a', 'b', 'c'])
    expect(m.sites.map((s) => s.differenceFromMedian)).toEqual([-3, 3, 0])
    expect(m.sites[0]?.ratioToMedian).toBeCloseTo(4 / 7, 12)
    expect(m.sites[1]?.ratioToMedian).toBeCloseTo(10 / 7, 12)
    expect(m.unit).toBe('µg/m³')
  })

  it('averages the two middle means for an even count', () => {
    const { m } = pm25Of([
      site('a', 'school', { pm25: 2 }),
      site('b', 'school', { pm25: 10 }),
      site('c', 'school', { pm25: 4 }),
      site('d', 'school', { pm25: 8 }),
    ])
    expect(m.median).toBe(6)
    expect(m.sites.find((s) => s.siteId === 'b')?.ratioToMedian).toBeCloseTo(10 / 6, 12)
  })

  it('leaves out sites below 85 % coverage, with no data or without the metric, and says why', () => {
    const { m } = pm25Of([
      site('a', 'school', { pm25: 4 }),
      site('b', 'school', { pm25: 6 }),
      site('low', 'school', { pm25: { mean: 100, coverage: 0.84 } }),
      site('empty', 'preschool', { pm25: null }),
      site('nopm', 'preschool', { no2: 10 }),
    ])
    // Only a and b count: (4 + 6) / 2; the indicative 100 would have moved a median of three to 6.
    expect(m.median).toBe(5)
    expect(m.included).toBe(2)
    expect(m.leftOut).toEqual([
      { siteId: 'empty', name: 'Site empty', kind: 'preschool', reason: 'no-data', mean: null, coverage: 1 },
      { siteId: 'low', name: 'Site low', kind: 'school', reason: 'insufficient-coverage', mean: 100, coverage: 0.84 },
      { siteId: 'nopm', name: 'Site nopm', kind: 'preschool', reason: 'not-reported', mean: null, coverage: null },
    ])
    expect(m.leftOutCounts).toEqual({ 'insufficient-coverage': 1, 'no-data': 1, 'not-reported': 1 })
    expect(m.sites.map((s) => s.siteId)).toEqual(['a', 'b'])
    // A kind present in the municipality but with no counting site has no median.
    expect(m.kinds).toEqual([
      { kind: 'preschool', median: null, sites: 0 },
      { kind: 'school', median: 5, sites: 2 },
    ])
  })

  it('compares each site with the other sites of its kind, and ranks it within the kind', () => {
    const { m } = pm25Of([
      site('s1', 'school', { pm25: 10 }),
      site('s2', 'school', { pm25: 30 }),
      site('s3', 'school', { pm25: 20 }),
      site('s4', 'school', { pm25: 20 }),
      site('p1', 'preschool', { pm25: 5 }),
      site('p2', 'preschool', { pm25: 15 }),
    ])
    // All six: 5, 10, 15, 20, 20, 30 → (15 + 20) / 2. Schools: 10, 20, 20, 30 → 20. Preschools: 5, 15 → 10.
    expect(m.median).toBe(17.5)
    expect(m.kinds).toEqual([
      { kind: 'preschool', median: 10, sites: 2 },
      { kind: 'school', median: 20, sites: 4 },
    ])
    const by = new Map(m.sites.map((s) => [s.siteId, s]))
    expect(by.get('s2')).toMatchObject({ kindMedian: 20, differenceFromKindMedian: 10, ratioToKindMedian: 1.5 })
    expect(by.get('s2')).toMatchObject({ rankInKind: 1, sitesOfKind: 4, differenceFromMedian: 12.5 })
    // Equal means share the better rank: 30 → 1, 20 and 20 → 2, 10 → 4.
    expect([by.get('s3')?.rankInKind, by.get('s4')?.rankInKind, by.get('s1')?.rankInKind]).toEqual([2, 2, 4])
    expect(by.get('p2')).toMatchObject({ kindMedian: 10, differenceFromKindMedian: 5, rankInKind: 1, sitesOfKind: 2 })
    expect(by.get('p1')).toMatchObject({ ratioToKindMedian: 0.5, rankInKind: 2, differenceFromMedian: -12.5 })
  })

  it('gives no ratio when the median is 0', () => {
    const { m } = pm25Of([site('a', 'school', { pm25: 0 })])
    expect(m.sites[0]).toMatchObject({ differenceFromMedian: 0, ratioToMedian: null, ratioToKindMedian: null })
  })
})

describe('municipalReport: attention ranking', () => {
  const COMPARED: Metric[] = ['pm25', 'no2']

  it('ranks by the highest ratio of a counting mean to the strictest annual value, and states the formula', () => {
    const report = municipalReport({
      window: WINDOW,
      metrics: COMPARED,
      sites: [
        // pm25 6/5 = 1.2, no2 8/10 = 0.8 → 1.2 (pm25)
        site('a', 'school', { pm25: 6, no2: 8 }),
        // pm25 4/5 = 0.8, no2 15/10 = 1.5 → 1.5 (no2)
        site('b', 'preschool', { pm25: 4, no2: 15 }),
        // pm25 would be 4 but rests on 50 % of the hours; no2 5/10 = 0.5 → 0.5 (no2)
        site('c', 'school', { pm25: { mean: 20, coverage: 0.5 }, no2: 5 }),
        // nothing counts
        site('d', 'school', { pm25: { mean: 50, coverage: 0.2 }, no2: null }),
      ],
    })
    const r = report.ranking
    expect(r.basis).toEqual([
      { metric: 'pm25', value: 5, rule: 'strict-pm25-year', profile: 'strict' },
      { metric: 'no2', value: 10, rule: 'strict-no2-year', profile: 'strict' },
    ])
    expect(r.ranked.map((s) => [s.rank, s.siteId, s.drivenBy])).toEqual([
      [1, 'b', 'no2'],
      [2, 'a', 'pm25'],
      [3, 'c', 'no2'],
    ])
    expect(r.ranked[0]?.score).toBeCloseTo(1.5, 12)
    expect(r.ranked[1]?.score).toBeCloseTo(1.2, 12)
    expect(r.ranked[2]?.score).toBeCloseTo(0.5, 12)
    // Coverage is shown beside every part, and a part without enough coverage has no ratio.
    expect(r.ranked[2]?.components).toEqual([
      { metric: 'pm25', mean: 20, coverage: 0.5, sufficientCoverage: false, ratio: null },
      { metric: 'no2', mean: 5, coverage: 1, sufficientCoverage: true, ratio: 0.5 },
    ])
    expect(r.notEnoughData.map((s) => s.siteId)).toEqual(['d'])
    expect(r.notEnoughData[0]?.components.map((c) => c.coverage)).toEqual([0.2, 1])
    expect(r.formula.en).toContain('the strictest annual value among the selected rules')
    expect(r.formula.en).toContain('PM2.5 5 µg/m³ (strict-pm25-year); NO2 10 µg/m³ (strict-no2-year)')
    expect(r.formula.en).toContain('at least 85 %')
    expect(r.formula.en).toContain('highest of its ratios')
    expect(r.formula.en).toContain('equal scores are ordered by site id')
    expect(r.formula.en).toContain('"not enough data"')
    expect(r.formula.sv).toContain('strängaste årsvärdet')
    expect(r.formula.sv).toContain('minst 85 %')
  })

  it('orders equal scores by site id whatever the input order', () => {
    const sites = [
      site('z', 'school', { pm25: 10 }), // 2
      site('m', 'school', { no2: 20 }), // 2
      site('a', 'preschool', { pm25: 10, no2: 5 }), // 2
      site('q', 'school', { pm25: 15 }), // 3
    ]
    const forward = municipalReport({ window: WINDOW, metrics: COMPARED, sites }).ranking.ranked
    const backward = municipalReport({ window: WINDOW, metrics: COMPARED, sites: [...sites].reverse() }).ranking.ranked
    expect(forward.map((s) => s.siteId)).toEqual(['q', 'a', 'm', 'z'])
    expect(backward).toEqual(forward)
    expect(forward.map((s) => s.rank)).toEqual([1, 2, 3, 4])
  })

  it('gives no ranking, and says so, when no rule carries an annual value for the metrics', () => {
    const report = municipalReport({ window: WINDOW, metrics: ['temp'], sites: [site('a', 'school', { temp: 8 })] })
    expect(report.ranking).toMatchObject({ basis: [], ranked: [], notEnoughData: [] })
    expect(report.ranking.formula.en).toMatch(/^No ranking/)
    expect(report.metrics[0]?.median).toBe(8)
  })
})

describe('municipalReport: edge cases', () => {
  it('handles a municipality of one site', () => {
    const report = municipalReport({
      window: WINDOW,
      metrics: ['pm25'],
      sites: [site('only', 'preschool', { pm25: 7.5 })],
    })
    const m = report.metrics[0]
    expect(m?.median).toBe(7.5)
    expect(m?.sites).toEqual([
      {
        siteId: 'only',
        name: 'Site only',
        kind: 'preschool',
        mean: 7.5,
        coverage: 1,
        differenceFromMedian: 0,
        ratioToMedian: 1,
        kindMedian: 7.5,
        differenceFromKindMedian: 0,
        ratioToKindMedian: 1,
        rankInKind: 1,
        sitesOfKind: 1,
      },
    ])
    expect(m?.kinds).toEqual([{ kind: 'preschool', median: 7.5, sites: 1 }])
    expect(report.ranking.ranked).toMatchObject([{ rank: 1, siteId: 'only', score: 1.5, drivenBy: 'pm25' }])
  })

  it('handles an empty municipality', () => {
    const report = municipalReport({ window: WINDOW, metrics: ['pm25', 'no2'], sites: [] })
    expect(report.sites).toBe(0)
    for (const m of report.metrics) {
      expect(m).toMatchObject({ median: null, included: 0, leftOut: [], sites: [], kinds: [] })
      expect(m.leftOutCounts).toEqual({ 'insufficient-coverage': 0, 'no-data': 0, 'not-reported': 0 })
    }
    expect(report.ranking).toMatchObject({ basis: [], ranked: [], notEnoughData: [] })
    expect(report.ranking.formula.en).toMatch(/^No ranking/)
  })

  it('refuses reports of another period, of another site, or a site given twice', () => {
    const a = site('a', 'school', { pm25: 1 })
    const codeOf = (sites: MunicipalSite[]): string | undefined => {
      try {
        municipalReport({ window: WINDOW, metrics: ['pm25'], sites })
        return undefined
      } catch (error) {
        return error instanceof MunicipalReportError ? error.code : 'other'
      }
    }
    expect(codeOf([a, { ...a, report: { ...a.report, window: { from: MARCH, to: APRIL + DAY_MS } } }])).toBe(
      'WINDOW_MISMATCH',
    )
    expect(codeOf([{ ...a, site: { ...a.site, id: 'b' } }])).toBe('SITE_MISMATCH')
    expect(codeOf([a, a])).toBe('DUPLICATE_SITE')
    expect(codeOf([a])).toBeUndefined()
  })
})

describe('municipalReport over real site reports', () => {
  function profile(id: string): ThresholdProfile {
    const found = profileById(id)
    if (found === undefined) throw new Error(`no profile ${id}`)
    return found
  }

  /** Hourly aggregates for March with a constant mean; `present(i)` says whether hour i arrived. */
  function constant(mean: number, present: (i: number) => boolean = () => true): SiteHourAggregate[] {
    const out: SiteHourAggregate[] = []
    for (let i = 0; i < HOURS; i++) {
      if (!present(i)) continue
      // Alternate ±0.5 so no hour looks stuck (quality.ts); the mean over an even number of hours stays exact.
      const v = mean + (i % 2 === 0 ? 0.5 : -0.5)
      out.push({ t: MARCH + i * HOUR_MS, mean: v, min: v - 1, max: v + 1, n: 60, coverage: 1, valid: true })
    }
    return out
  }

  it('agrees with numbers computed from the hourly data', () => {
    const profiles = [profile('who2021-aqg'), profile('eu2008-50')]
    const make = (id: string, kind: SiteKind, pm25: SiteHourAggregate[]): MunicipalSite => ({
      site: { id, name: id, kind },
      report: siteReport({
        siteId: id,
        window: WINDOW,
        metrics: ['pm25'],
        series: { pm25 },
        profiles,
        now: APRIL + DAY_MS,
      }),
    })
    const report = municipalReport({
      window: WINDOW,
      metrics: ['pm25'],
      sites: [
        make('a', 'school', constant(4)),
        make('b', 'school', constant(8)),
        make('c', 'preschool', constant(12)),
        // Only the first half of March: 372 of 744 hours, 50 % coverage.
        make(
          'd',
          'preschool',
          constant(30, (i) => i < HOURS / 2),
        ),
      ],
    })
    const m = report.metrics[0]
    expect(m?.median).toBeCloseTo(8, 10)
    expect(m?.leftOut.map((l) => [l.siteId, l.reason, l.coverage])).toEqual([['d', 'insufficient-coverage', 0.5]])
    // WHO 2021 annual PM2.5 guideline 5 µg/m³ is stricter than EU 2008/50's 25.
    expect(report.ranking.basis).toEqual([
      { metric: 'pm25', value: 5, rule: 'who2021-aqg-pm25-year', profile: 'who2021-aqg' },
    ])
    expect(report.ranking.ranked.map((s) => [s.siteId, Number(s.score.toFixed(10))])).toEqual([
      ['c', 2.4],
      ['b', 1.6],
      ['a', 0.8],
    ])
    expect(report.ranking.notEnoughData.map((s) => s.siteId)).toEqual(['d'])
  })
})

describe('municipalReport: urban background sites', () => {
  it('keeps background sites out of medians, kinds, left-out lists and the ranking, and lists them apart', () => {
    const report = municipalReport({
      window: WINDOW,
      metrics: ['pm25'],
      sites: [
        site('a', 'school', { pm25: 4 }),
        site('b', 'school', { pm25: 8 }),
        site('roof', 'background', { pm25: 100 }),
        site('roof-thin', 'background', { pm25: { mean: 3, coverage: 0.5 } }),
        site('roof-none', 'background', {}),
      ],
    })
    expect(report.sites).toBe(2)
    expect(report.backgroundSites).toBe(3)
    const m = report.metrics[0]
    // Without the background sites: (4 + 8) / 2; with the 100 the median of three would be 8.
    expect(m?.median).toBe(6)
    expect(m?.included).toBe(2)
    expect(m?.leftOut).toEqual([])
    expect(m?.kinds.map((k) => k.kind)).toEqual(['school'])
    expect(m?.background).toEqual([
      { siteId: 'roof', name: 'Site roof', mean: 100, coverage: 1, sufficientCoverage: true },
      { siteId: 'roof-none', name: 'Site roof-none', mean: null, coverage: 0, sufficientCoverage: false },
      { siteId: 'roof-thin', name: 'Site roof-thin', mean: 3, coverage: 0.5, sufficientCoverage: false },
    ])
    expect(report.ranking.ranked.map((r) => r.siteId)).toEqual(['b', 'a'])
    expect(report.ranking.notEnoughData).toEqual([])
  })
})
