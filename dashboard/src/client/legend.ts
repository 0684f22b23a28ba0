/// <reference lib="dom" />
import { EAQI_BANDS, type EaqiPollutant } from '@skolluft/core'
import { bandRanges } from './bands.ts'
import { h } from './dom.ts'
import type { Translate } from './i18n.ts'
import { markerSwatch } from './map-view.ts'
import type { Lang } from './messages.ts'

/**
 * The map legend: each band with its symbol (the number drawn in the marker), its name and its range
 * for the selected pollutant, then the marks for no data, offline and suspect sensors and open breaches.
 * It is a <details> element so a phone can fold it away.
 */

const NO_MARK = { offline: false, suspect: false, breach: false } as const

export function buildLegend(
  t: Translate,
  lang: Lang,
  pollutant: EaqiPollutant,
  pollutantLabel: string,
  open: boolean,
): HTMLElement {
  const ranges = bandRanges(lang, pollutant)
  const item = (swatch: HTMLElement, text: string, extra?: string) =>
    h('li', {}, swatch, h('span', {}, text), extra === undefined ? null : h('span', { class: 'legend-range' }, extra))
  return h(
    'details',
    { class: 'legend', 'data-testid': 'legend', open },
    h('summary', {}, t('legendTitle'), ` · ${pollutantLabel}`),
    h(
      'ul',
      {},
      ...EAQI_BANDS.map((band, i) =>
        item(markerSwatch({ ...NO_MARK, band: band.level }), t(`band_${band.level}`), `${ranges[i] ?? ''} µg/m³`),
      ),
      item(markerSwatch({ ...NO_MARK, band: null }), t('bandNone')),
      item(markerSwatch({ ...NO_MARK, band: null, offline: true }), t('legendOffline')),
      item(markerSwatch({ ...NO_MARK, band: null, suspect: true }), t('legendSuspect')),
      item(markerSwatch({ ...NO_MARK, band: null, breach: true }, 11), t('legendBreach')),
    ),
    h('p', { class: 'legend-note' }, t('legendNote', { pollutant: pollutantLabel })),
  )
}
