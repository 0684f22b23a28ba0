import { describe, expect, it } from 'vitest'
import { createI18n, isLang, placeholders, translate } from './i18n.ts'
import { LANGS, MESSAGES, type MessageKey } from './messages.ts'

describe('messages', () => {
  const keys = Object.keys(MESSAGES.sv) as MessageKey[]

  it('has every key in every language, none empty, none left untranslated by accident', () => {
    for (const lang of LANGS) {
      expect(Object.keys(MESSAGES[lang]).sort()).toEqual([...keys].sort())
      for (const key of keys) expect(MESSAGES[lang][key].trim(), `${lang}.${key}`).not.toBe('')
    }
  })

  it('uses the same placeholders for a key in both languages', () => {
    for (const key of keys) expect(placeholders(MESSAGES.en[key]), key).toEqual(placeholders(MESSAGES.sv[key]))
  })

  it('says the log-in error the way the issue asks', () => {
    expect(MESSAGES.sv.loginError).toBe('Fel e-postadress eller lösenord')
    expect(MESSAGES.en.loginError).toBe('Wrong email or password')
  })

  it('names each of the six EAQI bands in both languages', () => {
    for (const level of [1, 2, 3, 4, 5, 6] as const) {
      expect(MESSAGES.sv[`band_${level}`]).not.toBe(MESSAGES.en[`band_${level}`])
    }
  })
})

describe('translate', () => {
  it('fills placeholders and leaves a missing one visible', () => {
    expect(translate('sv', 'shownCount', { shown: 3, total: 10 })).toBe('3 av 10 platser')
    expect(translate('en', 'shownCount', { shown: 3 })).toBe('3 of {total} sites')
  })

  it('switches language and tells listeners', () => {
    const i18n = createI18n('sv')
    const seen: string[] = []
    i18n.onChange((lang) => seen.push(lang))
    expect(i18n.t('viewList')).toBe('Lista')
    i18n.setLang('en')
    i18n.setLang('en')
    expect(i18n.t('viewList')).toBe('List')
    expect(seen).toEqual(['en'])
  })

  it('accepts only known language codes', () => {
    expect(isLang('sv')).toBe(true)
    expect(isLang('en')).toBe(true)
    expect(isLang('de')).toBe(false)
    expect(isLang(null)).toBe(false)
  })
})
