import { LANGS, type Lang, MESSAGES, type MessageKey } from './messages.ts'

export type MessageParams = Readonly<Record<string, string | number>>
export type Translate = (key: MessageKey, params?: MessageParams) => string

export const DEFAULT_LANG: Lang = 'sv'

export function isLang(value: unknown): value is Lang {
  return typeof value === 'string' && (LANGS as readonly string[]).includes(value)
}

/** `{name}` placeholders in a message, sorted (for the completeness test and for translate). */
export function placeholders(message: string): string[] {
  return [...message.matchAll(/\{(\w+)\}/g)].map((m) => m[1] ?? '').sort()
}

/** The message in `lang` with its placeholders filled; a missing parameter stays visible as `{name}`. */
export function translate(lang: Lang, key: MessageKey, params?: MessageParams): string {
  const message = MESSAGES[lang][key]
  if (params === undefined) return message
  return message.replace(/\{(\w+)\}/g, (whole, name: string) => {
    const value = params[name]
    return value === undefined ? whole : String(value)
  })
}

/** The current language, with listeners that re-render when it changes. */
export interface I18n {
  readonly lang: () => Lang
  readonly t: Translate
  readonly setLang: (lang: Lang) => void
  readonly onChange: (listener: (lang: Lang) => void) => void
}

export function createI18n(initial: Lang): I18n {
  let lang = initial
  const listeners: ((lang: Lang) => void)[] = []
  return {
    lang: () => lang,
    t: (key, params) => translate(lang, key, params),
    setLang(next) {
      if (next === lang) return
      lang = next
      for (const listener of listeners) listener(lang)
    },
    onChange(listener) {
      listeners.push(listener)
    },
  }
}
