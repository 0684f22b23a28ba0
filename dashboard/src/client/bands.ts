import { EAQI_BANDS, type EaqiLevel, type EaqiPollutant } from '@skolluft/core'
import { formatNumber } from './format.ts'
import type { Lang } from './messages.ts'

/** Fill of a marker without a current value: neutral grey, clearly not one of the EEA band colours. */
export const NO_BAND_COLOUR = '#c9ced3'
export const DARK_TEXT = '#111111'
export const LIGHT_TEXT = '#ffffff'

export function bandColour(level: EaqiLevel | null): string {
  if (level === null) return NO_BAND_COLOUR
  return EAQI_BANDS[level - 1]?.colour ?? NO_BAND_COLOUR
}

/** WCAG 2.2 relative luminance of a #rrggbb colour (§ "relative luminance" definition). */
export function relativeLuminance(hex: string): number {
  const match = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex)
  if (match === null) throw new RangeError(`not a #rrggbb colour: ${hex}`)
  const channel = (h: string | undefined) => {
    const c = Number.parseInt(h ?? '0', 16) / 255
    return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4
  }
  return 0.2126 * channel(match[1]) + 0.7152 * channel(match[2]) + 0.0722 * channel(match[3])
}

/** WCAG 2.2 contrast ratio, 1…21. */
export function contrastRatio(a: string, b: string): number {
  const la = relativeLuminance(a)
  const lb = relativeLuminance(b)
  return (Math.max(la, lb) + 0.05) / (Math.min(la, lb) + 0.05)
}

/** The text colour (dark or light) with the higher contrast on a band's fill, for the band number. */
export function bandTextColour(level: EaqiLevel | null): string {
  const fill = bandColour(level)
  return contrastRatio(fill, DARK_TEXT) >= contrastRatio(fill, LIGHT_TEXT) ? DARK_TEXT : LIGHT_TEXT
}

/** The symbol drawn in a marker and shown in the list beside the colour: the level 1–6, or a dash. */
export function bandSymbol(level: EaqiLevel | null): string {
  return level === null ? '–' : String(level)
}

/** "≤ 5", "5–15", …, "> 140" µg/m³ for each band of `pollutant`. */
export function bandRanges(lang: Lang, pollutant: EaqiPollutant): string[] {
  let lower: number | null = null
  return EAQI_BANDS.map((band) => {
    const upper = band.upper[pollutant]
    const text =
      upper === null
        ? `> ${formatNumber(lang, lower ?? 0)}`
        : lower === null
          ? `≤ ${formatNumber(lang, upper)}`
          : `${formatNumber(lang, lower)}–${formatNumber(lang, upper)}`
    lower = upper
    return text
  })
}
