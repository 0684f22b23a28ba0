/// <reference lib="dom" />
import { h } from './dom.ts'
import { kindName } from './format.ts'
import type { Translate } from './i18n.ts'
import type { MessageKey } from './messages.ts'
import { type ChartSeries, profileChartModel, renderProfileChart } from './report-chart.ts'
import {
  dateText,
  dayText,
  hourText,
  instantText,
  listBlock,
  metricName,
  note,
  num,
  numCell,
  pct,
  type ReportFormat,
  section,
  table,
  withCoverage,
} from './report-format.ts'
import type { Period } from './report-period.ts'
import type {
  BucketData,
  FollowUpData,
  MetricProfilesData,
  PairedData,
  ProfileReportData,
  RuleData,
  SiteHeadingData,
  SiteMeasureData,
  SiteReportData,
  SuggestionData,
} from './report-schemas.ts'

/**
 * One site's report as a printable article (issue 7): heading with the period, generation time and rules used;
 * mean levels; exceedances per selected rule with the allowed number; worst hours and days; profiles by hour of
 * day, day of week and season (SVG charts readable in black and white, with their numbers); suggestions stated
 * as suggestions with evidence and caveats; what could not be evaluated; measures taken with their follow-up.
 * Coverage is printed beside every number.
 */

export interface MeasuresPart {
  readonly measures: readonly SiteMeasureData[]
  readonly followUps: ReadonlyMap<string, FollowUpData>
}

export interface SiteReportInput {
  readonly period: Period
  readonly site: SiteHeadingData | null
  readonly data: SiteReportData
  /** Null when the measures routes are not there (404) or refused. */
  readonly measures: MeasuresPart | null
  /** The measures section with its controls (report-measures.ts); when given, it replaces `measures`. */
  readonly measuresSection?: HTMLElement | null
}

const UNIT = 'µg/m³'

function metaList(items: readonly (readonly [string, Node | string])[]): HTMLDListElement {
  return h('dl', { class: 'report-meta' }, ...items.flatMap(([term, value]) => [h('dt', {}, term), h('dd', {}, value)]))
}

export function reportHeading(
  f: ReportFormat,
  title: string,
  subtitle: string | null,
  period: Period,
  generatedAt: string,
  extra: readonly (readonly [string, Node | string])[],
): HTMLElement {
  const { t, lang } = f
  return h(
    'header',
    { class: 'report-head' },
    h('h1', { 'data-testid': 'report-title' }, title),
    subtitle === null ? null : h('p', { class: 'report-subtitle' }, subtitle),
    metaList([
      [
        t('reportPeriod'),
        h(
          'span',
          { 'data-testid': 'report-period' },
          t('reportPeriodText', { from: dateText(lang, period.from), to: dateText(lang, period.to) }),
        ),
      ],
      [t('reportGenerated'), h('span', { 'data-testid': 'report-generated' }, instantText(lang, generatedAt))],
      ...extra,
    ]),
    note(t('reportIndicative')),
  )
}

function meansSection(f: ReportFormat, data: SiteReportData): HTMLElement {
  const { t, lang } = f
  const rows = data.report.metrics.map((m) =>
    h(
      'tr',
      { 'data-metric': m.metric },
      h('th', { scope: 'row' }, metricName(t, m.metric)),
      numCell(
        m.mean === null ? '–' : `${num(lang, m.mean)}${m.sufficientCoverage ? '' : ` (${t('reportIndicativeShort')})`}`,
        m.mean,
        `report-mean-${m.metric}`,
      ),
      numCell(pct(lang, m.coverage), m.coverage, `report-coverage-${m.metric}`),
      h('td', { class: 'num' }, t('reportOf', { n: m.countedHours, of: m.expectedHours })),
      h('td', { class: 'num' }, withCoverage(f, t('reportOf', { n: m.validDays, of: m.expectedDays }), m.dayCoverage)),
    ),
  )
  return section(
    'reportMeans',
    f,
    'report-means',
    table(
      t('reportMeansCaption', { unit: UNIT }),
      [
        t('reportColMetric'),
        t('reportColMean', { unit: UNIT }),
        t('reportColCoverage'),
        t('reportColHours'),
        t('reportColDays'),
      ],
      rows,
      'report-means-table',
    ),
    note(t('reportMeansNote')),
  )
}

function ruleRow(f: ReportFormat, r: RuleData, periodIsYear: boolean): HTMLTableRowElement {
  const { t, lang } = f
  const periodKey: MessageKey =
    r.period === 'hour' ? 'reportRuleHour' : r.period === 'day' ? 'reportRuleDay' : 'reportRuleYear'
  let result: string
  if (r.kind === 'count') {
    const unitKey: MessageKey = r.period === 'hour' ? 'reportHours' : 'reportDays'
    const counted = t('reportCountOf', {
      n: r.count ?? 0,
      of: r.validPeriods ?? 0,
      unit: t(unitKey),
    })
    const allowed =
      r.allowedPerYear === null || r.allowedPerYear === undefined
        ? t('reportAllowedNone')
        : t('reportAllowedPerYear', { n: r.allowedPerYear })
    result = `${counted}; ${allowed}`
  } else {
    result = t('reportRuleMean', { mean: num(lang, r.mean ?? null), value: num(lang, r.value) })
  }
  const verdict =
    r.exceeded === true
      ? t('reportExceeded')
      : r.exceeded === false
        ? t('reportNotExceeded')
        : r.kind === 'count' && r.allowedForYearOnly === true
          ? t('reportVerdictYearOnly')
          : !periodIsYear && r.kind === 'mean'
            ? t('reportVerdictYearOnly')
            : t('reportVerdictOpen')
  return h(
    'tr',
    { 'data-rule': r.rule },
    h('th', { scope: 'row' }, `${metricName(t, r.pollutant)}, ${t(periodKey)} > ${num(lang, r.value)} ${UNIT}`),
    h('td', { class: 'num', 'data-testid': `report-rule-${r.rule}` }, result),
    numCell(pct(lang, r.coverage), r.coverage),
    // r.note (the API's English explanation) is left out: the verdict and the section's note say it in both languages.
    h('td', {}, verdict),
  )
}

function exceedancesSection(f: ReportFormat, data: SiteReportData): HTMLElement {
  const { t } = f
  const parts = data.report.profiles.map((p: ProfileReportData) => {
    if (p.applies === null || p.rules.length === 0) {
      return h('p', { class: 'report-note', 'data-profile': p.id }, t('reportProfileNotApplied', { name: p.name }))
    }
    return h(
      'div',
      { class: 'report-block', 'data-profile': p.id },
      table(
        `${p.name}${p.legal ? ` (${t('reportLegal')})` : ''}`,
        [t('reportColRule'), t('reportColResult'), t('reportColCoverage'), t('reportColVerdict')],
        p.rules.map((r) => ruleRow(f, r, data.report.periodIsYear)),
      ),
      p.unverified === undefined
        ? null
        : note(t('reportUnverified', { text: p.unverified }), 'report-note report-small'),
    )
  })
  return section('reportExceedances', f, 'report-exceedances', note(t('reportExceedancesNote')), ...parts)
}

function worstSection(f: ReportFormat, data: SiteReportData): HTMLElement {
  const { t, lang } = f
  const blocks = data.report.metrics
    .filter((m) => m.worstHours.length > 0 || m.worstDays.length > 0)
    .map((m) =>
      h(
        'div',
        { class: 'report-block report-columns' },
        table(
          t('reportWorstHoursCaption', { metric: metricName(t, m.metric) }),
          [t('reportColHour'), t('reportColValue', { unit: UNIT })],
          m.worstHours.map((w) => [hourText(lang, w.t), withCoverage(f, num(lang, w.value), w.coverage)]),
        ),
        table(
          t('reportWorstDaysCaption', { metric: metricName(t, m.metric) }),
          [t('reportColDay'), t('reportColValue', { unit: UNIT })],
          m.worstDays.map((w) => [dayText(lang, w.t), withCoverage(f, num(lang, w.value), w.coverage)]),
        ),
      ),
    )
  return section('reportWorst', f, 'report-worst', blocks.length === 0 ? note(t('reportNoData')) : null, ...blocks)
}

type ProfileKind = 'hourOfDay' | 'dayOfWeek' | 'season'

const WEEKDAY_KEYS = [
  'reportWeekday_0',
  'reportWeekday_1',
  'reportWeekday_2',
  'reportWeekday_3',
  'reportWeekday_4',
  'reportWeekday_5',
  'reportWeekday_6',
] as const satisfies readonly MessageKey[]
/** Core profiles.ts SEASONS order: winter, spring, summer, autumn. */
const SEASON_KEYS = [
  'reportSeason_0',
  'reportSeason_1',
  'reportSeason_2',
  'reportSeason_3',
] as const satisfies readonly MessageKey[]

function categories(t: Translate, kind: ProfileKind): string[] {
  if (kind === 'hourOfDay') return Array.from({ length: 24 }, (_, hour) => String(hour).padStart(2, '0'))
  return (kind === 'dayOfWeek' ? WEEKDAY_KEYS : SEASON_KEYS).map((key) => t(key))
}

const PROFILE_TITLES: Readonly<Record<ProfileKind, MessageKey>> = {
  hourOfDay: 'reportProfileHour',
  dayOfWeek: 'reportProfileWeekday',
  season: 'reportProfileSeason',
}
const PROFILE_AXES: Readonly<Record<ProfileKind, MessageKey>> = {
  hourOfDay: 'reportAxisHour',
  dayOfWeek: 'reportAxisWeekday',
  season: 'reportAxisSeason',
}

function bucketValues(buckets: readonly BucketData[], n: number): (number | null)[] {
  const out = new Array<number | null>(n).fill(null)
  for (const b of buckets) if (b.key >= 0 && b.key < n) out[b.key] = b.mean
  return out
}

function profileBlock(f: ReportFormat, profiles: readonly MetricProfilesData[], kind: ProfileKind): HTMLElement {
  const { t, lang } = f
  const cats = categories(t, kind)
  const withData = profiles.filter((p) => p[kind].some((b) => b.mean !== null))
  const series: ChartSeries[] = withData.map((p) => ({
    id: p.metric,
    label: metricName(t, p.metric),
    values: bucketValues(p[kind], cats.length),
  }))
  const title = t(PROFILE_TITLES[kind])
  const zone = profiles[0]?.timeZone ?? 'Europe/Stockholm'
  const chart =
    series.length === 0
      ? note(t('reportNoData'))
      : renderProfileChart(
          profileChartModel(cats, series, kind === 'hourOfDay' ? 3 : 1),
          {
            title,
            xLabel: t(PROFILE_AXES[kind], { zone }),
            yLabel: t('reportAxisConcentration', { unit: UNIT }),
            formatTick: (v) => num(lang, v),
          },
          `report-chart-${kind}`,
        )
  const rows = cats.map((label, key) =>
    h(
      'tr',
      {},
      h('th', { scope: 'row' }, label),
      ...withData.flatMap((p) => {
        const b = p[kind].find((x) => x.key === key)
        return [
          h('td', { class: 'num' }, num(lang, b?.mean ?? null)),
          h('td', { class: 'num report-coverage' }, pct(lang, b?.coverage ?? null)),
        ]
      }),
    ),
  )
  return h(
    'figure',
    { class: 'report-figure', 'data-testid': `report-profile-${kind}` },
    h('figcaption', {}, title),
    chart,
    withData.length === 0
      ? null
      : table(
          t('reportProfileTableCaption', { title, unit: UNIT }),
          [
            t(PROFILE_AXES[kind], { zone }),
            ...withData.flatMap((p) => [metricName(t, p.metric), t('reportCoverageColumn')]),
          ],
          [...rows],
        ),
  )
}

function profilesSection(f: ReportFormat, data: SiteReportData): HTMLElement {
  return section(
    'reportProfiles',
    f,
    'report-profiles',
    note(f.t('reportProfilesNote')),
    profileBlock(f, data.profiles, 'hourOfDay'),
    profileBlock(f, data.profiles, 'dayOfWeek'),
    profileBlock(f, data.profiles, 'season'),
  )
}

const PATTERN_KEYS: Readonly<Record<string, MessageKey>> = {
  'drop-off-peak': 'reportPattern_dropOff',
  'spring-road-dust': 'reportPattern_roadDust',
  'winter-evening-peak': 'reportPattern_winterEvening',
  'indoor-follows-outdoor': 'reportPattern_indoorFollows',
  'indoor-sources': 'reportPattern_indoorSources',
  'local-increment': 'reportPattern_localIncrement',
}

/** Reason codes of the API (skipped: core measures.ts SkippedPattern; not evaluated: reports.ts NOT_EVALUATED_CODES). */
const REASON_KEYS: Readonly<Record<string, MessageKey>> = {
  LOW_COVERAGE: 'reportReason_LOW_COVERAGE',
  TOO_FEW_HOURS: 'reportReason_TOO_FEW_HOURS',
  IS_BACKGROUND: 'reportReason_IS_BACKGROUND',
  NO_BACKGROUND: 'reportReason_NO_BACKGROUND',
  NO_INDOOR_DEVICE: 'reportReason_NO_INDOOR_DEVICE',
  NO_OUTDOOR_DEVICE: 'reportReason_NO_OUTDOOR_DEVICE',
}

/** A reason in the page's language; the API's own (English) text when its code is unknown here. */
export function reasonName(t: Translate, code: string | undefined, fallback: string): string {
  const key = code === undefined ? undefined : REASON_KEYS[code]
  return key === undefined ? fallback : t(key)
}

export function patternName(t: Translate, pattern: string): string {
  const key = PATTERN_KEYS[pattern]
  return key === undefined ? pattern : t(key)
}

/**
 * One measure suggested by one pattern, with the evidence of every pollutant that shows the pattern: a committee
 * reads the measure once, then what each pollutant says for it.
 */
function suggestionItem(f: ReportFormat, group: readonly SuggestionData[]): HTMLElement | null {
  const { t, lang } = f
  const first = group[0]
  if (first === undefined) return null
  const caveats = [...new Set(group.map((s) => s.caveat[lang]))]
  const sources = [...new Map(group.flatMap((s) => s.sources).map((src) => [src.text, src])).values()]
  return h(
    'article',
    { class: 'report-suggestion', 'data-testid': `report-suggestion-${first.measureId}-${first.pattern}` },
    h('h3', {}, t('reportSuggestionTitle', { name: first.name[lang] })),
    h('p', {}, first.description[lang]),
    h('p', { class: 'report-small' }, t('reportSuggestedBy', { pattern: patternName(t, first.pattern) })),
    h('p', {}, h('strong', {}, `${t('reportEvidence')}:`)),
    h(
      'ul',
      {},
      ...group.map((s) =>
        h(
          'li',
          { 'data-testid': `report-suggestion-${s.measureId}-${s.pattern}-${s.metric}` },
          `${s.evidence[lang]} `,
          h(
            'span',
            { class: 'report-small' },
            `(${t('reportSuggestionBasis', { hours: s.hours, coverage: pct(lang, s.coverage) })})`,
          ),
        ),
      ),
    ),
    h('p', {}, h('strong', {}, `${t('reportCaveat')}: `), caveats.join(' ')),
    sources.length === 0
      ? null
      : h(
          'div',
          { class: 'report-small' },
          h('strong', {}, `${t('reportSources')}:`),
          h(
            'ul',
            { class: 'report-sources' },
            ...sources.map((src) =>
              h('li', {}, src.text, src.url === undefined ? null : h('span', { class: 'report-url' }, ` ${src.url}`)),
            ),
          ),
        ),
  )
}

function groupSuggestions(list: readonly SuggestionData[]): SuggestionData[][] {
  const groups = new Map<string, SuggestionData[]>()
  for (const s of list) {
    const key = `${s.measureId}\u0000${s.pattern}`
    groups.set(key, [...(groups.get(key) ?? []), s])
  }
  return [...groups.values()]
}

function suggestionsSection(f: ReportFormat, data: SiteReportData): HTMLElement {
  const { t, lang } = f
  return section(
    'reportSuggestions',
    f,
    'report-suggestions',
    note(t('reportSuggestionsNote')),
    data.suggestions.length === 0 ? note(t('reportNoSuggestions')) : null,
    ...groupSuggestions(data.suggestions).map((group) => suggestionItem(f, group)),
    listBlock(
      t('reportSkipped'),
      data.skipped.map((s) =>
        t('reportSkippedItem', {
          pattern: patternName(t, s.pattern),
          metric: metricName(t, s.metric),
          reason: reasonName(t, s.reason, s.reason),
          hours: s.hours,
          coverage: pct(lang, s.coverage),
        }),
      ),
    ),
    listBlock(
      t('reportNotEvaluated'),
      data.not_evaluated.map((n) => `${patternName(t, n.pattern)}: ${reasonName(t, n.code, n.reason)}`),
    ),
  )
}

function pairedTable(
  f: ReportFormat,
  caption: string,
  aLabel: string,
  bLabel: string,
  rows: readonly PairedData[],
  testId: string,
): HTMLTableElement {
  const { t, lang } = f
  return table(
    caption,
    [
      t('reportColMetric'),
      t('reportColMeanOf', { what: aLabel, unit: UNIT }),
      t('reportColMeanOf', { what: bLabel, unit: UNIT }),
      t('reportColDifference', { unit: UNIT }),
      t('reportColRatio'),
      t('reportColShareHigher', { what: aLabel }),
      t('reportColPairedHours'),
    ],
    rows.map((c) =>
      h(
        'tr',
        { 'data-metric': c.metric },
        h('th', { scope: 'row' }, metricName(t, c.metric)),
        numCell(num(lang, c.meanA), c.meanA),
        numCell(num(lang, c.meanB), c.meanB),
        numCell(
          c.meanDifference === null ? '–' : `${c.meanDifference > 0 ? '+' : ''}${num(lang, c.meanDifference)}`,
          c.meanDifference,
          `${testId}-difference-${c.metric}`,
        ),
        numCell(num(lang, c.ratioOfMeans, 2), c.ratioOfMeans),
        numCell(pct(lang, c.shareAGreater), c.shareAGreater),
        h('td', { class: 'num' }, withCoverage(f, t('reportOf', { n: c.pairedHours, of: c.periodHours }), c.coverage)),
      ),
    ),
    `${testId}-table`,
  )
}

function backgroundSection(f: ReportFormat, data: SiteReportData): HTMLElement | null {
  const bg = data.background
  if (bg === undefined) return null
  const { t, lang } = f
  if (bg === null) return section('reportBackground', f, 'report-background', note(t('reportNoBackground')))
  return section(
    'reportBackground',
    f,
    'report-background',
    h(
      'p',
      {},
      t('reportBackgroundText', {
        name: bg.name,
        distance: num(lang, bg.distance_km),
        max: num(lang, bg.max_distance_km),
      }),
    ),
    pairedTable(
      f,
      t('reportBackgroundCaption'),
      t('reportThisSite'),
      t('reportBackgroundSite'),
      bg.comparisons,
      'report-background',
    ),
    note(t('reportBackgroundNote')),
  )
}

function indoorOutdoorSection(f: ReportFormat, data: SiteReportData): HTMLElement | null {
  const io = data.indoor_outdoor
  if (io === undefined || io === null) return null
  const { t } = f
  return section(
    'reportIndoorOutdoor',
    f,
    'report-indoor-outdoor',
    h(
      'p',
      {},
      t('reportIndoorOutdoorText', { indoor: io.indoor_devices.join(', '), outdoor: io.outdoor_devices.join(', ') }),
    ),
    pairedTable(f, t('reportIndoorOutdoorCaption'), t('indoor'), t('outdoor'), io.comparisons, 'report-indoor-outdoor'),
    note(t('reportOutdoorSeries')),
  )
}

function measuresSection(f: ReportFormat, part: MeasuresPart | null): HTMLElement | null {
  if (part === null) return null
  const { t, lang } = f
  if (part.measures.length === 0)
    return section('reportMeasuresTaken', f, 'report-measures', note(t('reportNoMeasures')))
  const items = part.measures.map((m) => {
    const follow = part.followUps.get(m.id)
    return h(
      'article',
      { class: 'report-suggestion', 'data-measure': m.id },
      h('h3', {}, t('reportMeasureTitle', { title: m.title, date: dateText(lang, m.taken_on) })),
      m.note === null || m.note === '' ? null : h('p', {}, m.note),
      follow === undefined ? note(t('reportNoFollowUp')) : followUpBlock(f, follow),
    )
  })
  return section('reportMeasuresTaken', f, 'report-measures', note(t('reportFollowUpNote')), ...items)
}

/** The last day of a [from, to) window of whole UTC+1 days. */
const lastDay = (toIso: string) => new Date(Date.parse(toIso) - 1).toISOString()

export function followUpBlock(f: ReportFormat, fu: FollowUpData): HTMLElement {
  const { t, lang } = f
  const side = (s: FollowUpData['metrics'][number]['before']) => withCoverage(f, num(lang, s.mean), s.coverage)
  const change = (c: FollowUpData['metrics'][number]['change']) =>
    c === null
      ? '–'
      : `${c.absolute > 0 ? '+' : ''}${num(lang, c.absolute)}${c.percent === null ? '' : ` (${c.percent > 0 ? '+' : ''}${num(lang, c.percent)} %)`}`
  const rows = fu.metrics.map((m) => [
    metricName(t, m.metric),
    side(m.before),
    side(m.after),
    change(m.change),
    m.background === null ? '–' : change(m.background.change),
    m.difference_in_differences === null ? '–' : num(lang, m.difference_in_differences),
  ])
  return h(
    'div',
    { class: 'report-block' },
    table(
      t('reportFollowUpCaption', {
        before: `${dayText(lang, fu.before.from)}–${dayText(lang, lastDay(fu.before.to))}`,
        after: `${dayText(lang, fu.after.from)}–${dayText(lang, lastDay(fu.after.to))}`,
      }),
      [
        t('reportColMetric'),
        t('reportBefore'),
        t('reportAfter'),
        t('reportChange'),
        t('reportBackgroundChange'),
        t('reportDiffInDiff'),
      ],
      rows,
    ),
    fu.after_complete ? null : note(t('reportAfterIncomplete')),
    fu.caveats.length === 0
      ? null
      : h(
          'div',
          {},
          h('strong', {}, `${t('reportCaveats')}:`),
          h('ul', {}, ...fu.caveats.map((c) => h('li', {}, c.text[lang]))),
        ),
  )
}

export function renderSiteReport(f: ReportFormat, input: SiteReportInput): HTMLElement {
  const { t } = f
  const { data, site } = input
  const name = site?.properties.name ?? data.site
  const subtitle =
    site === null
      ? null
      : [kindName(t, site.properties.kind), site.properties.address, site.properties.locality]
          .filter((s): s is string => typeof s === 'string' && s !== '')
          .join(' · ')
  const profileNames = data.report.profiles.map((p) => p.name).join('; ')
  return h(
    'article',
    { class: 'report', 'data-testid': 'report', 'data-site': data.site },
    reportHeading(f, t('reportSiteTitle', { name }), subtitle, input.period, data.generated_at, [
      [t('reportRulesUsed'), profileNames === '' ? '–' : profileNames],
      [t('reportTimeZones'), t('reportTimeZonesText', { zone: data.profiles[0]?.timeZone ?? 'Europe/Stockholm' })],
    ]),
    meansSection(f, data),
    exceedancesSection(f, data),
    worstSection(f, data),
    profilesSection(f, data),
    backgroundSection(f, data),
    indoorOutdoorSection(f, data),
    suggestionsSection(f, data),
    input.measuresSection === undefined ? measuresSection(f, input.measures) : input.measuresSection,
  )
}
