import { MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH } from '@skolluft/core'
import { describe, expect, it } from 'vitest'
import { ApiError } from './api.ts'
import { translate } from './i18n.ts'
import type { Lang } from './messages.ts'
import {
  checkSetupValues,
  issueFailure,
  SETUP_MAX_PASSWORD_LENGTH,
  SETUP_MIN_PASSWORD_LENGTH,
  type SetupFailure,
  setupBody,
  setupFailure,
} from './setup.ts'

const OK = {
  setupToken: 'Zk3-value_from_the_terminal',
  email: 'admin@example.org',
  name: '',
  password: 'twelve chars',
}

/** A failure's texts in one language: the summary and each field's line. */
function said(failure: SetupFailure | null, lang: Lang = 'en') {
  if (failure === null) return null
  const t = (key: Parameters<typeof translate>[1], params?: Parameters<typeof translate>[2]) =>
    translate(lang, key, params)
  return {
    summary: failure.summary(t),
    invalid: failure.invalid,
    inline: Object.fromEntries(Object.entries(failure.inline).map(([field, text]) => [field, text(t)])),
    closed: failure.closed,
  }
}

describe('the first admin form', () => {
  it('has the same password rules as the API (core access.ts)', () => {
    expect(SETUP_MIN_PASSWORD_LENGTH).toBe(MIN_PASSWORD_LENGTH)
    expect(SETUP_MAX_PASSWORD_LENGTH).toBe(MAX_PASSWORD_LENGTH)
  })

  it('accepts a filled form and sends it trimmed, without an empty name', () => {
    expect(checkSetupValues(OK)).toBeNull()
    expect(setupBody({ ...OK, setupToken: `  ${OK.setupToken}\n`, email: ' admin@example.org ' })).toEqual({
      setupToken: OK.setupToken,
      email: 'admin@example.org',
      password: 'twelve chars',
    })
    expect(setupBody({ ...OK, name: '  Ada  ', password: ' spaces kept ' })).toEqual({
      setupToken: OK.setupToken,
      email: 'admin@example.org',
      name: 'Ada',
      password: ' spaces kept ',
    })
  })

  it('says before sending what is missing or too short, field by field', () => {
    expect(said(checkSetupValues({ setupToken: ' ', email: 'nope', name: '', password: 'x'.repeat(11) }))).toEqual({
      summary: 'Correct the marked fields.',
      invalid: ['setupToken', 'email', 'password'],
      inline: {
        setupToken: 'Enter the one-time value from the terminal.',
        email: 'Enter a valid email address.',
        password: 'The password must have at least 12 and at most 256 characters.',
      },
      closed: false,
    })
    expect(said(checkSetupValues({ ...OK, password: 'x'.repeat(12) }))).toBeNull()
    expect(said(checkSetupValues({ ...OK, password: 'x'.repeat(257) }))?.invalid).toEqual(['password'])
    expect(said(checkSetupValues({ ...OK, name: 'n'.repeat(201) }), 'sv')?.inline).toEqual({
      name: 'Namnet får ha högst 200 tecken.',
    })
  })

  it("shows the API's validation errors in the page's language, unknown members in the API's words", () => {
    const failure = issueFailure([
      { path: 'email', message: 'Invalid email address' },
      { path: 'password', message: 'a password has at least 12 characters' },
      { path: '', message: 'Unrecognized key: "role"' },
    ])
    expect(said(failure, 'sv')).toEqual({
      summary: 'Rätta de markerade fälten. Ogiltigt värde: Unrecognized key: "role"',
      invalid: ['email', 'password'],
      inline: {
        email: 'Ange en giltig e-postadress.',
        password: 'Lösenordet måste ha minst 12 och högst 256 tecken.',
      },
      closed: false,
    })
    expect(issueFailure([])).toBeNull()
  })

  it('tells a wrong value, a closed setup, throttling and other failures apart', () => {
    const wrong = said(setupFailure(new ApiError('http', 'wrong setup value', 401, 'setup_failed')), 'sv')
    expect(wrong).toEqual({
      summary: 'Fel engångsvärde. Kopiera värdet som skolluft skrev i terminalen vid senaste starten.',
      invalid: ['setupToken'],
      inline: {},
      closed: false,
    })
    expect(said(setupFailure(new ApiError('http', 'closed', 409, 'setup_closed')))).toEqual({
      summary: 'An administrator exists already. Log in, or ask an administrator for an account.',
      invalid: [],
      inline: {},
      closed: true,
    })
    expect(said(setupFailure(new ApiError('http', 'slow down', 429, 'rate_limited')))?.summary).toBe(
      'Too many attempts. Wait a while and try again.',
    )
    const invalid = new ApiError('http', 'invalid', 400, 'invalid_request', {
      errors: [{ path: 'password', message: 'a password has at least 12 characters' }],
    })
    expect(said(setupFailure(invalid))?.invalid).toEqual(['password'])
    expect(said(setupFailure(new ApiError('http', 'invalid', 400, 'invalid_request')))?.summary).toBe(
      'Could not create the administrator (400).',
    )
    expect(said(setupFailure(new ApiError('network', 'no response', null, null)))?.summary).toBe(
      'Could not create the administrator (error).',
    )
    expect(said(setupFailure(new Error('boom')), 'sv')?.summary).toBe(
      'Det gick inte att skapa administratören (error).',
    )
  })
})
