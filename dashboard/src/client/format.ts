import type { Translate } from './i18n.ts'
import type { Lang } from './messages.ts'

/**
 * Numbers, times and ages for people, through Intl so Swedish gets "12,3" and "för 5 minuter sedan".
 * Formatters are cached per language: creating an Intl formatter costs far more than using one, and a
 * list of 10 000 sites formats every row.
 */
const cache = new Map<string, Intl.NumberFormat | Intl.DateTimeFormat | Intl.RelativeTimeFormat>()

function cached<T extends Intl.NumberFormat | Intl.DateTimeFormat | Intl.RelativeTimeFormat>(
  key: string,
  make: () => T,
  guard: (f: unknown) => f is T,
): T {
  const hit = cache.get(key)
  if (guard(hit)) return hit
  const made = make()
  cache.set(key, made)
  return made
}

const MINUTE_S = 60
const HOUR_S = 3600
const DAY_S = 86_400

const isNumberFormat = (f: unknown): f is Intl.NumberFormat => f instanceof Intl.NumberFormat
const isDateFormat = (f: unknown): f is Intl.DateTimeFormat => f instanceof Intl.DateTimeFormat
const isRelativeFormat = (f: unknown): f is Intl.RelativeTimeFormat => f instanceof Intl.RelativeTimeFormat

/** One decimal: the sensors resolve about 1 µg/m³, and the API rounds hourly means to 0.1. */
export function formatNumber(lang: Lang, value: number, maxDecimals = 1): string {
  return cached(
    `n:${lang}:${maxDecimals}`,
    () => new Intl.NumberFormat(lang, { maximumFractionDigits: maxDecimals }),
    isNumberFormat,
  ).format(value)
}

export function formatPercent(lang: Lang, share: number): string {
  return cached(`p:${lang}`, () => new Intl.NumberFormat(lang, { style: 'percent' }), isNumberFormat).format(share)
}

export function formatDateTime(lang: Lang, epochMs: number): string {
  return cached(
    `dt:${lang}`,
    () => new Intl.DateTimeFormat(lang, { dateStyle: 'medium', timeStyle: 'short' }),
    isDateFormat,
  ).format(epochMs)
}

export function formatHour(lang: Lang, epochMs: number): string {
  return cached(
    `h:${lang}`,
    () =>
      new Intl.DateTimeFormat(lang, {
        weekday: 'short',
        day: 'numeric',
        month: 'short',
        hour: '2-digit',
        minute: '2-digit',
      }),
    isDateFormat,
  ).format(epochMs)
}

/** A chart tick: the time of day for spans up to two days, otherwise the date. */
export function formatTick(lang: Lang, epochMs: number, spanMs: number): string {
  const short = spanMs <= 2 * DAY_S * 1000
  return cached(
    `tick:${lang}:${short}`,
    () =>
      new Intl.DateTimeFormat(
        lang,
        short ? { hour: '2-digit', minute: '2-digit' } : { day: 'numeric', month: 'short' },
      ),
    isDateFormat,
  ).format(epochMs)
}

/** "för 5 minuter sedan" / "5 minutes ago"; under a minute counts seconds, over two days counts days. */
export function formatAge(lang: Lang, ageMs: number): string {
  const rtf = cached(
    `r:${lang}`,
    () => new Intl.RelativeTimeFormat(lang, { numeric: 'auto', style: 'short' }),
    isRelativeFormat,
  )
  const s = Math.max(0, Math.round(ageMs / 1000))
  if (s < MINUTE_S) return rtf.format(-s, 'second')
  if (s < HOUR_S) return rtf.format(-Math.floor(s / MINUTE_S), 'minute')
  if (s < 2 * DAY_S) return rtf.format(-Math.floor(s / HOUR_S), 'hour')
  return rtf.format(-Math.floor(s / DAY_S), 'day')
}

/** A site kind's name in the page's language (registry SITE_KINDS); an unknown kind as given, none as "other". */
export function kindName(t: Translate, kind: string): string {
  if (kind === 'school' || kind === 'preschool' || kind === 'background') return t(`kind_${kind}`)
  return kind === '' ? t('kind_other') : kind
}
