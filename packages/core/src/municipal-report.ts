import type { TimeWindow } from './annual-exceedances.ts'
import { ANNUAL_MIN_COVERAGE } from './incidents.ts'
import { METRIC_INFO, type Metric } from './metrics.ts'
import { SITE_KINDS, type Site, type SiteKind } from './registry.ts'
import type { SiteReport } from './site-report.ts'

/**
 * The municipality level of issue 7's period report, built from the SiteReports (site-report.ts) of every site for
 * one period. Pure. Definitions:
 *
 * - A site COUNTS for a metric when its period mean exists and its coverage is sufficient (≥ 85 %, the
 *   site report's `sufficientCoverage`, 2024/2881 Annex V). The others are listed in `leftOut` with the reason:
 *   `insufficient-coverage` (a mean exists but rests on < 85 % of the hours; it stays indicative and is shown),
 *   `no-data` (no counted hour) or `not-reported` (the site's report has no such metric).
 * - Municipal median: the median of the means of the sites that count (odd count: the middle value; even count:
 *   the mean of the two middle values). Null when no site counts.
 * - Each counting site is compared with the municipal median (difference = mean − median; ratio = mean / median,
 *   null when the median is 0) and with the counting sites of its own kind (school, preschool): the median of
 *   that kind, the same difference and ratio, and its rank within the kind (1 = highest mean; equal means share
 *   the better rank, "1, 2, 2, 4").
 * - Attention ranking: see `ATTENTION_FORMULA_EN` and `attentionRanking` below; the formula is returned as text.
 * - Urban background sites (kind `background`) are not schools: they are in no median, no kind summary, no
 *   `leftOut` list and not in the ranking. Each metric lists them apart in `background`, as the reference a
 *   reader compares the schools' levels with (the regional level that local measures cannot change).
 */

export class MunicipalReportError extends Error {
  readonly code: 'WINDOW_MISMATCH' | 'SITE_MISMATCH' | 'DUPLICATE_SITE'
  constructor(code: MunicipalReportError['code'], message: string) {
    super(message)
    this.name = 'MunicipalReportError'
    this.code = code
  }
}

/** One site of the municipality with its report for the period. */
export interface MunicipalSite {
  readonly site: Pick<Site, 'id' | 'name' | 'kind'>
  readonly report: SiteReport
}

export interface MunicipalReportInput {
  /** The period every site report covers, [from, to) epoch ms. */
  readonly window: TimeWindow
  /** Metrics compared across sites (a site whose report lacks one is listed as `not-reported`). */
  readonly metrics: readonly Metric[]
  /** Every site of the municipality, each once; may be empty. */
  readonly sites: readonly MunicipalSite[]
}

export const LEFT_OUT_REASONS = ['insufficient-coverage', 'no-data', 'not-reported'] as const
export type LeftOutReason = (typeof LEFT_OUT_REASONS)[number]

export interface LeftOutSite {
  readonly siteId: string
  readonly name: string
  readonly kind: SiteKind
  readonly reason: LeftOutReason
  /** Indicative mean (insufficient coverage) or null. */
  readonly mean: number | null
  /** Null when the metric is not reported. */
  readonly coverage: number | null
}

export interface SiteComparison {
  readonly siteId: string
  readonly name: string
  readonly kind: SiteKind
  readonly mean: number
  readonly coverage: number
  /** mean − municipal median. */
  readonly differenceFromMedian: number
  /** mean / municipal median; null when the median is 0. */
  readonly ratioToMedian: number | null
  /** Median of the counting sites of the same kind (this site included). */
  readonly kindMedian: number
  readonly differenceFromKindMedian: number
  readonly ratioToKindMedian: number | null
  /** 1 = highest mean of its kind; equal means share the better rank. */
  readonly rankInKind: number
  /** Counting sites of this kind. */
  readonly sitesOfKind: number
}

export interface KindSummary {
  readonly kind: SiteKind
  readonly median: number | null
  readonly sites: number
}

/** An urban background site's level for one metric: a reference, never in a median or the ranking. */
export interface BackgroundLevel {
  readonly siteId: string
  readonly name: string
  /** Period mean; null when no hour counted or the metric is not reported. */
  readonly mean: number | null
  /** 0 when the metric is not reported. */
  readonly coverage: number
  readonly sufficientCoverage: boolean
}

export interface MunicipalMetricReport {
  readonly metric: Metric
  readonly unit: string
  /** Median of the means of the counting sites; null when none counts. */
  readonly median: number | null
  /** Sites that count. */
  readonly included: number
  /** Sites left out, by site id, with the reason; `leftOutCounts` sums them per reason. */
  readonly leftOut: readonly LeftOutSite[]
  readonly leftOutCounts: Readonly<Record<LeftOutReason, number>>
  /** Per kind with at least one site in the municipality, in SITE_KINDS order. */
  readonly kinds: readonly KindSummary[]
  /** The counting sites, by site id. */
  readonly sites: readonly SiteComparison[]
  /** Urban background sites, by site id (see the definitions at the top). */
  readonly background: readonly BackgroundLevel[]
}

/** The annual value a metric's means are divided by: the strictest `year` rule among the selected profiles. */
export interface AttentionBasis {
  readonly metric: Metric
  /** µg/m³. */
  readonly value: number
  readonly rule: string
  readonly profile: string
}

export interface AttentionComponent {
  readonly metric: Metric
  readonly mean: number | null
  readonly coverage: number | null
  readonly sufficientCoverage: boolean
  /** mean / basis value; null when the metric does not count for this site (coverage or no data). */
  readonly ratio: number | null
}

export interface RankedSite {
  /** 1 = needs attention most. Unique: equal scores are ordered by site id. */
  readonly rank: number
  readonly siteId: string
  readonly name: string
  readonly kind: SiteKind
  /** The highest counting ratio. */
  readonly score: number
  /** The metric whose ratio is the score (the first in `basis` order on equal ratios). */
  readonly drivenBy: Metric
  /** One per basis metric, with coverage, so the reader sees every part of the score. */
  readonly components: readonly AttentionComponent[]
}

export interface NotEnoughDataSite {
  readonly siteId: string
  readonly name: string
  readonly kind: SiteKind
  readonly components: readonly AttentionComponent[]
}

export interface AttentionRanking {
  /** How the ranking is made, for the printed report; includes the values used. */
  readonly formula: { readonly en: string; readonly sv: string }
  readonly basis: readonly AttentionBasis[]
  readonly ranked: readonly RankedSite[]
  /** Sites with no basis metric of sufficient coverage: listed, not ranked. By site id. */
  readonly notEnoughData: readonly NotEnoughDataSite[]
}

export interface MunicipalReport {
  readonly window: TimeWindow
  /** Sites compared: every given site but the background sites. */
  readonly sites: number
  readonly backgroundSites: number
  readonly metrics: readonly MunicipalMetricReport[]
  readonly ranking: AttentionRanking
}

function byId(a: { siteId: string }, b: { siteId: string }): number {
  return a.siteId < b.siteId ? -1 : a.siteId > b.siteId ? 1 : 0
}

/** Median of values; null when empty. Even count: the mean of the two middle values. */
function medianOf(values: readonly number[]): number | null {
  if (values.length === 0) return null
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  const hi = sorted[mid] ?? 0
  if (sorted.length % 2 === 1) return hi
  return ((sorted[mid - 1] ?? 0) + hi) / 2
}

function ratio(a: number, b: number): number | null {
  return b === 0 ? null : a / b
}

function checkInput(input: MunicipalReportInput): void {
  const seen = new Set<string>()
  for (const { site, report } of input.sites) {
    if (report.window.from !== input.window.from || report.window.to !== input.window.to) {
      throw new MunicipalReportError('WINDOW_MISMATCH', `the report of site ${site.id} covers another period`)
    }
    if (report.siteId !== site.id) {
      throw new MunicipalReportError('SITE_MISMATCH', `site ${site.id} was given the report of ${report.siteId}`)
    }
    if (seen.has(site.id)) throw new MunicipalReportError('DUPLICATE_SITE', `site ${site.id} is given twice`)
    seen.add(site.id)
  }
}

function metricOf(entry: MunicipalSite, metric: Metric) {
  return entry.report.metrics.find((m) => m.metric === metric)
}

function isBackground(entry: MunicipalSite): boolean {
  return entry.site.kind === 'background'
}

function backgroundLevels(metric: Metric, sites: readonly MunicipalSite[]): BackgroundLevel[] {
  return sites
    .filter(isBackground)
    .map((entry) => {
      const m = metricOf(entry, metric)
      return {
        siteId: entry.site.id,
        name: entry.site.name,
        mean: m?.mean ?? null,
        coverage: m?.coverage ?? 0,
        sufficientCoverage: m?.sufficientCoverage ?? false,
      }
    })
    .sort(byId)
}

/** `sites` without the background sites. */
function municipalMetric(metric: Metric, sites: readonly MunicipalSite[]): Omit<MunicipalMetricReport, 'background'> {
  const counting: { siteId: string; name: string; kind: SiteKind; mean: number; coverage: number }[] = []
  const leftOut: LeftOutSite[] = []
  for (const entry of sites) {
    const { id: siteId, name, kind } = entry.site
    const m = metricOf(entry, metric)
    if (m === undefined) leftOut.push({ siteId, name, kind, reason: 'not-reported', mean: null, coverage: null })
    else if (m.mean === null) leftOut.push({ siteId, name, kind, reason: 'no-data', mean: null, coverage: m.coverage })
    else if (!m.sufficientCoverage) {
      leftOut.push({ siteId, name, kind, reason: 'insufficient-coverage', mean: m.mean, coverage: m.coverage })
    } else counting.push({ siteId, name, kind, mean: m.mean, coverage: m.coverage })
  }
  counting.sort(byId)
  leftOut.sort(byId)
  const median = medianOf(counting.map((s) => s.mean))
  const kindMeans = new Map<SiteKind, number[]>()
  for (const s of counting) kindMeans.set(s.kind, [...(kindMeans.get(s.kind) ?? []), s.mean])
  const comparisons: SiteComparison[] = counting.map((s) => {
    const ofKind = kindMeans.get(s.kind) ?? [s.mean]
    const kindMedian = medianOf(ofKind) ?? s.mean
    const municipal = median ?? s.mean
    return {
      ...s,
      differenceFromMedian: s.mean - municipal,
      ratioToMedian: ratio(s.mean, municipal),
      kindMedian,
      differenceFromKindMedian: s.mean - kindMedian,
      ratioToKindMedian: ratio(s.mean, kindMedian),
      rankInKind: 1 + ofKind.filter((v) => v > s.mean).length,
      sitesOfKind: ofKind.length,
    }
  })
  const leftOutCounts: Record<LeftOutReason, number> = { 'insufficient-coverage': 0, 'no-data': 0, 'not-reported': 0 }
  for (const l of leftOut) leftOutCounts[l.reason] += 1
  const present = new Set(sites.map((s) => s.site.kind))
  const kinds = SITE_KINDS.filter((k) => present.has(k)).map((kind) => {
    const means = kindMeans.get(kind) ?? []
    return { kind, median: medianOf(means), sites: means.length }
  })
  return {
    metric,
    unit: METRIC_INFO[metric].unit,
    median,
    included: counting.length,
    leftOut,
    leftOutCounts,
    kinds,
    sites: comparisons,
  }
}

/** The strictest `year` rule per metric over the site reports' profiles (equal values: smallest rule id). */
function attentionBasis(metrics: readonly Metric[], sites: readonly MunicipalSite[]): AttentionBasis[] {
  const best = new Map<Metric, AttentionBasis>()
  const wanted = new Set(metrics)
  for (const { report } of sites) {
    for (const profile of report.profiles) {
      for (const rule of profile.rules) {
        if (rule.kind !== 'mean' || !wanted.has(rule.pollutant)) continue
        const current = best.get(rule.pollutant)
        if (
          current === undefined ||
          rule.value < current.value ||
          (rule.value === current.value && rule.rule < current.rule)
        ) {
          best.set(rule.pollutant, { metric: rule.pollutant, value: rule.value, rule: rule.rule, profile: profile.id })
        }
      }
    }
  }
  // In the order the caller listed the metrics.
  return metrics.flatMap((m) => {
    const b = best.get(m)
    return b === undefined ? [] : [b]
  })
}

function basisText(basis: readonly AttentionBasis[], decimal: '.' | ','): string {
  return basis
    .map((b) => `${METRIC_INFO[b.metric].label} ${String(b.value).replace('.', decimal)} µg/m³ (${b.rule})`)
    .join('; ')
}

const PERCENT = Math.round(ANNUAL_MIN_COVERAGE * 100)

/** The ranking's formula as printed, in English; `basis` fills in the values used. */
export function attentionFormulaEn(basis: readonly AttentionBasis[]): string {
  if (basis.length === 0) {
    return 'No ranking: the site reports hold no annual value of the selected rules for the compared pollutants (or there are no sites), so there is no common yardstick.'
  }
  return [
    `For each pollutant, the site's mean over the period is divided by the strictest annual value among the selected rules (${basisText(basis, '.')}).`,
    `Only pollutants measured at the site for at least ${PERCENT} % of the period's hours count.`,
    "A site's score is the highest of its ratios; the pollutant giving it is named.",
    'Sites are ranked by score, highest first; equal scores are ordered by site id.',
    `Sites with no pollutant at ${PERCENT} % coverage are listed as "not enough data", not ranked.`,
    'Exceedance counts are not used: their allowed numbers apply to a calendar year and are never scaled to a shorter period.',
    'Over a period shorter than a year the ratios are for comparing sites, not a judgement against the annual value.',
  ].join(' ')
}

/** The ranking's formula as printed, in Swedish. */
export function attentionFormulaSv(basis: readonly AttentionBasis[]): string {
  if (basis.length === 0) {
    return 'Ingen rangordning: platsernas rapporter innehåller inget årsvärde från de valda reglerna för de jämförda ämnena (eller så finns inga platser), så det finns ingen gemensam måttstock.'
  }
  return [
    `För varje ämne delas platsens medelvärde under perioden med det strängaste årsvärdet bland de valda reglerna (${basisText(basis, ',')}).`,
    `Bara ämnen som mätts på platsen under minst ${PERCENT} % av periodens timmar räknas.`,
    'Platsens poäng är den högsta av dess kvoter; ämnet som ger den anges.',
    'Platserna rangordnas efter poäng, högst först; lika poäng ordnas efter plats-id.',
    `Platser utan något ämne med ${PERCENT} % täckning redovisas som "för lite data" och rangordnas inte.`,
    'Antal överskridanden används inte: deras tillåtna antal gäller ett kalenderår och skalas aldrig om till en kortare period.',
    'För en period kortare än ett år jämför kvoterna platserna med varandra; de är ingen bedömning mot årsvärdet.',
  ].join(' ')
}

/**
 * Which sites need attention most. The formula (also returned as text, `attentionFormulaEn`/`Sv`):
 *
 *   score(site) = max over pollutants p with sufficient coverage at the site of  mean(site, p) / A(p)
 *
 * where A(p) is the strictest annual (`year`) value for p among the selected profiles (e.g. WHO 2021: PM2.5 5,
 * PM10 15, NO2 10 µg/m³). Ranked highest first, equal scores by site id; sites where no pollutant has sufficient
 * coverage are listed as not enough data.
 *
 * Why this formula:
 * - One formula for a month, a term and a year. Exceedance counts against allowed numbers would need the allowed
 *   number scaled to the period, which is forbidden (allowed numbers are per calendar year, site-report.ts); and
 *   even for a year, count / allowed is undefined for rules that allow none (allowed 0 or null), and summing over
 *   rules weights a pollutant by how many rules the profiles happen to carry.
 * - The period mean is the number the report's median comparison already uses, and the annual value is the health
 *   yardstick made for a mean; dividing by it puts µg/m³ of different pollutants on one scale (1 = at the value).
 * - The highest ratio, not the sum: PM2.5 is part of PM10, so a sum would count one dust source twice; the highest
 *   names the pollutant that drives the score, which is what a measure must address.
 * - All sites share the period, so a seasonal bias (PM10 in spring) affects every site alike and the order stays
 *   fair, while the absolute ratio of a part-year is orientation only (said in the text).
 */
function attentionRanking(metrics: readonly Metric[], sites: readonly MunicipalSite[]): AttentionRanking {
  const basis = attentionBasis(metrics, sites)
  const formula = { en: attentionFormulaEn(basis), sv: attentionFormulaSv(basis) }
  if (basis.length === 0) return { formula, basis, ranked: [], notEnoughData: [] }
  const scored: Omit<RankedSite, 'rank'>[] = []
  const notEnoughData: NotEnoughDataSite[] = []
  for (const entry of sites) {
    const components: AttentionComponent[] = basis.map((b) => {
      const m = metricOf(entry, b.metric)
      const mean = m?.mean ?? null
      const sufficientCoverage = m?.sufficientCoverage ?? false
      return {
        metric: b.metric,
        mean,
        coverage: m?.coverage ?? null,
        sufficientCoverage,
        ratio: mean !== null && sufficientCoverage ? mean / b.value : null,
      }
    })
    const { id: siteId, name, kind } = entry.site
    let top: AttentionComponent | undefined
    for (const c of components) {
      if (c.ratio !== null && (top === undefined || top.ratio === null || c.ratio > top.ratio)) top = c
    }
    if (top === undefined || top.ratio === null) notEnoughData.push({ siteId, name, kind, components })
    else scored.push({ siteId, name, kind, score: top.ratio, drivenBy: top.metric, components })
  }
  scored.sort((a, b) => b.score - a.score || byId(a, b))
  notEnoughData.sort(byId)
  return { formula, basis, ranked: scored.map((s, i) => ({ rank: i + 1, ...s })), notEnoughData }
}

/** The municipality's report for one period from every site's report. See the definitions at the top. */
export function municipalReport(input: MunicipalReportInput): MunicipalReport {
  checkInput(input)
  const compared = input.sites.filter((entry) => !isBackground(entry))
  return {
    window: input.window,
    sites: compared.length,
    backgroundSites: input.sites.length - compared.length,
    metrics: input.metrics.map((metric) => ({
      ...municipalMetric(metric, compared),
      background: backgroundLevels(metric, input.sites),
    })),
    ranking: attentionRanking(input.metrics, compared),
  }
}
