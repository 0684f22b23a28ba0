/// <reference lib="dom" />
import { h } from './dom.ts'
import { kindName } from './format.ts'
import {
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
import { profileName } from './report-profiles.ts'
import type { MunicipalReportData } from './report-schemas.ts'
import { reportHeading } from './report-site.ts'

/**
 * The municipality's report as a printable article (issue 7): the attention ranking first, with its formula printed
 * as the API states it and every component of every score with its coverage; then per pollutant the municipal
 * median, each site against the median and against its own kind, and the sites left out with the reason.
 */

const UNIT = 'µg/m³'

type Component = MunicipalReportData['report']['ranking']['ranked'][number]['components'][number]

function components(f: ReportFormat, list: readonly Component[]): string {
  const { t, lang } = f
  return list
    .map((c) =>
      c.mean === null
        ? `${metricName(t, c.metric)}: –`
        : `${metricName(t, c.metric)}: ${withCoverage(f, num(lang, c.mean), c.coverage)}${c.ratio === null ? '' : ` → ${num(lang, c.ratio, 2)}`}`,
    )
    .join('; ')
}

function rankingSection(f: ReportFormat, data: MunicipalReportData): HTMLElement {
  const { t, lang } = f
  const ranking = data.report.ranking
  return section(
    'reportRanking',
    f,
    'report-ranking',
    h(
      'div',
      { class: 'report-formula', 'data-testid': 'report-formula' },
      h('strong', {}, `${t('reportFormula')}: `),
      ranking.formula[lang],
    ),
    ranking.basis.length === 0
      ? null
      : table(
          t('reportBasisCaption'),
          [t('reportColMetric'), t('reportColBasis', { unit: UNIT }), t('reportColRule')],
          ranking.basis.map((b) => [
            metricName(t, b.metric),
            num(lang, b.value),
            `${b.rule} (${profileName(b.profile)})`,
          ]),
        ),
    ranking.ranked.length === 0
      ? note(t('reportNoRanking'))
      : table(
          t('reportRankingCaption'),
          [
            t('reportColRank'),
            t('reportColSite'),
            t('reportColScore'),
            t('reportColDrivenBy'),
            t('reportColComponents'),
          ],
          ranking.ranked.map((r) =>
            h(
              'tr',
              { 'data-site': r.siteId },
              h('th', { scope: 'row', class: 'num' }, String(r.rank)),
              h('td', {}, `${r.name} (${kindName(t, r.kind)})`),
              numCell(num(lang, r.score, 2), r.score, `report-score-${r.siteId}`),
              h('td', {}, metricName(t, r.drivenBy)),
              h('td', { class: 'report-small' }, components(f, r.components)),
            ),
          ),
          'report-ranking-table',
        ),
    listBlock(
      t('reportNotEnoughData'),
      ranking.notEnoughData.map((s) => `${s.name} (${kindName(t, s.kind)}): ${components(f, s.components)}`),
    ),
  )
}

function metricSection(f: ReportFormat, m: MunicipalReportData['report']['metrics'][number]): HTMLElement {
  const { t, lang } = f
  return h(
    'section',
    { class: 'report-section', 'data-testid': `report-municipal-${m.metric}` },
    h('h2', {}, t('reportMunicipalMetric', { metric: metricName(t, m.metric) })),
    h(
      'p',
      {},
      t('reportMedianText', {
        median: num(lang, m.median),
        unit: UNIT,
        included: m.included,
        total: m.included + m.leftOut.length,
      }),
      ...m.kinds.map((k) =>
        h(
          'span',
          {},
          ` · ${t('reportKindMedian', { kind: kindName(t, k.kind), median: num(lang, k.median), n: k.sites })}`,
        ),
      ),
    ),
    m.sites.length === 0
      ? null
      : table(
          t('reportSitesCaption', { metric: metricName(t, m.metric) }),
          [
            t('reportColSite'),
            t('reportColMean', { unit: UNIT }),
            t('reportColCoverage'),
            t('reportColVsMedian'),
            t('reportColKindRank'),
          ],
          [...m.sites]
            .sort((a, b) => b.mean - a.mean)
            .map((s) =>
              h(
                'tr',
                { 'data-site': s.siteId },
                h('th', { scope: 'row' }, `${s.name} (${kindName(t, s.kind)})`),
                numCell(num(lang, s.mean), s.mean, `report-municipal-mean-${m.metric}-${s.siteId}`),
                numCell(pct(lang, s.coverage), s.coverage),
                h(
                  'td',
                  { class: 'num' },
                  `${s.differenceFromMedian >= 0 ? '+' : ''}${num(lang, s.differenceFromMedian)}${s.ratioToMedian === null ? '' : ` (×${num(lang, s.ratioToMedian, 2)})`}`,
                ),
                h('td', { class: 'num' }, t('reportRankInKind', { rank: s.rankInKind, n: s.sitesOfKind })),
              ),
            ),
        ),
    listBlock(
      t('reportBackgroundReference'),
      (m.background ?? []).map((b) => `${b.name}: ${withCoverage(f, `${num(lang, b.mean)} ${UNIT}`, b.coverage)}`),
    ),
    listBlock(
      t('reportLeftOut'),
      m.leftOut.map(
        (s) =>
          `${s.name} (${kindName(t, s.kind)}): ${reasonText(f, s.reason)}${
            s.mean === null ? '' : `; ${withCoverage(f, `${num(lang, s.mean)} ${UNIT}`, s.coverage)}`
          }`,
      ),
    ),
  )
}

function reasonText(f: ReportFormat, reason: string): string {
  if (reason === 'insufficient-coverage') return f.t('reportReasonCoverage')
  if (reason === 'no-data') return f.t('reportReasonNoData')
  if (reason === 'not-reported') return f.t('reportReasonNotReported')
  return reason
}

export function renderMunicipalReport(f: ReportFormat, period: Period, data: MunicipalReportData): HTMLElement {
  const { t } = f
  return h(
    'article',
    { class: 'report', 'data-testid': 'report', 'data-municipality': 'true' },
    reportHeading(f, t('reportMunicipalTitle'), null, period, data.generated_at, [
      [t('reportSiteCount'), String(data.report.sites)],
      [t('reportRulesUsed'), (data.threshold_profiles ?? []).map((id) => profileName(id)).join('; ') || '–'],
    ]),
    data.outdoor_only_sites === undefined || data.outdoor_only_sites.length === 0
      ? null
      : note(t('reportOutdoorOnlySites', { sites: data.outdoor_only_sites.join(', ') })),
    rankingSection(f, data),
    ...data.report.metrics.map((m) => metricSection(f, m)),
  )
}
