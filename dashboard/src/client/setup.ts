/// <reference lib="dom" />
import { type Api, ApiError } from './api.ts'
import { h, uid } from './dom.ts'
import type { Translate } from './i18n.ts'
import { LoginResponseSchema, type ProblemIssue, type SessionData } from './schemas.ts'
import type { Texts } from './texts.ts'

/**
 * "Create the first administrator": while no admin exists, `skolluft start` prints a one-time setup
 * value to the terminal, and POST /api/v1/auth/setup {setupToken, email, name?, password} turns it into
 * an admin account with a session (the same answer as a log-in). The form checks what it can before
 * sending and shows the API's refusals (401 setup_failed, 409 setup_closed, 400 with `errors`) in the
 * page's language.
 */

/**
 * The API's rules (api/src/routes/auth.ts SetupBody; core access.ts Password: NIST SP 800-63B, 12 because
 * these accounts read data about named schools). Copied, not imported: importing @skolluft/core here would
 * pull the full zod into the bundle (~450 kB); setup.test.ts checks the copies against core.
 */
export const SETUP_MIN_PASSWORD_LENGTH = 12
export const SETUP_MAX_PASSWORD_LENGTH = 256
export const SETUP_MAX_NAME_LENGTH = 200

export const SETUP_PATH = '/api/v1/auth/setup'

/** The form's fields, in form order; the names are the request's members. */
export const SETUP_FIELDS = ['setupToken', 'email', 'name', 'password'] as const
export type SetupField = (typeof SETUP_FIELDS)[number]

export type SetupValues = Readonly<Record<SetupField, string>>

/** A text in the page's current language (a function, so switching the language re-renders it). */
export type Message = (t: Translate) => string

export interface SetupFailure {
  /** Said at the top of the form (role="alert"). */
  readonly summary: Message
  /** Fields to mark invalid; the first in form order gets the focus. */
  readonly invalid: readonly SetupField[]
  /** Text under a field, where the summary does not say it. */
  readonly inline: Readonly<Partial<Record<SetupField, Message>>>
  /** An admin exists already: the page stops offering the setup. */
  readonly closed: boolean
}

const passwordLength: Message = (t) =>
  t('setupPasswordLength', { min: SETUP_MIN_PASSWORD_LENGTH, max: SETUP_MAX_PASSWORD_LENGTH })

function fieldFailure(inline: Partial<Record<SetupField, Message>>, other: readonly Message[] = []): SetupFailure {
  const invalid = SETUP_FIELDS.filter((field) => inline[field] !== undefined)
  const summary: Message = (t) =>
    [...(invalid.length > 0 ? [t('setupInvalid')] : []), ...other.map((m) => m(t))].join(' ')
  return { summary, invalid, inline, closed: false }
}

/** What the form can tell before sending; null when it looks fine (the API has the last word). */
export function checkSetupValues(values: SetupValues): SetupFailure | null {
  const inline: Partial<Record<SetupField, Message>> = {}
  if (values.setupToken.trim() === '') inline.setupToken = (t) => t('setupTokenMissing')
  // The API checks the address properly (zod's z.email()); this only catches the obviously wrong.
  if (!/^[^\s@]+@[^\s@]+$/.test(values.email.trim())) inline.email = (t) => t('setupEmailInvalid')
  if (values.name.trim().length > SETUP_MAX_NAME_LENGTH) {
    inline.name = (t) => t('setupNameInvalid', { max: SETUP_MAX_NAME_LENGTH })
  }
  // String length as zod counts it (UTF-16 code units), so the form and the API agree.
  if (values.password.length < SETUP_MIN_PASSWORD_LENGTH || values.password.length > SETUP_MAX_PASSWORD_LENGTH) {
    inline.password = passwordLength
  }
  return Object.keys(inline).length === 0 ? null : fieldFailure(inline)
}

/** The request body: the value and the address trimmed (a paste often brings spaces), no empty name. */
export function setupBody(values: SetupValues): Record<string, string> {
  const name = values.name.trim()
  return {
    setupToken: values.setupToken.trim(),
    email: values.email.trim(),
    ...(name === '' ? {} : { name }),
    password: values.password,
  }
}

function isSetupField(value: string): value is SetupField {
  return (SETUP_FIELDS as readonly string[]).includes(value)
}

/** A 400's `errors` as texts in the page's language; an unknown member keeps the API's English words. */
export function issueFailure(issues: readonly ProblemIssue[]): SetupFailure | null {
  if (issues.length === 0) return null
  const inline: Partial<Record<SetupField, Message>> = {}
  const other: Message[] = []
  for (const issue of issues) {
    const field = isSetupField(issue.path) ? issue.path : null
    switch (field) {
      case 'setupToken':
        // Empty is caught before sending; what the API refuses is too long to be the printed value.
        inline.setupToken = (t) => t('setupWrongValue')
        break
      case 'email':
        inline.email = (t) => t('setupEmailInvalid')
        break
      case 'name':
        inline.name = (t) => t('setupNameInvalid', { max: SETUP_MAX_NAME_LENGTH })
        break
      case 'password':
        inline.password = passwordLength
        break
      case null: {
        const detail = issue.path === '' ? issue.message : `${issue.path}: ${issue.message}`
        other.push((t) => t('setupOtherInvalid', { detail }))
        break
      }
    }
  }
  return fieldFailure(inline, other)
}

/** Why POST /auth/setup failed, for the form. */
export function setupFailure(error: unknown): SetupFailure {
  const api = error instanceof ApiError ? error : null
  if (api?.problem === 'setup_failed' || api?.status === 401) {
    return { summary: (t) => t('setupWrongValue'), invalid: ['setupToken'], inline: {}, closed: false }
  }
  if (api?.problem === 'setup_closed' || api?.status === 409) {
    return { summary: (t) => t('setupClosed'), invalid: [], inline: {}, closed: true }
  }
  if (api?.status === 429) return { summary: (t) => t('loginThrottled'), invalid: [], inline: {}, closed: false }
  if (api?.status === 400) {
    const failure = issueFailure(api.errors)
    if (failure !== null) return failure
  }
  const detail = api !== null && api.status !== null ? String(api.status) : 'error'
  return { summary: (t) => t('setupFailed', { detail }), invalid: [], inline: {}, closed: false }
}

export interface SetupFormOptions {
  readonly api: Api
  readonly t: Translate
  readonly texts: Texts
  readonly publicMap: boolean
  /** The admin exists and is logged in: the same session as after a log-in. */
  readonly onDone: (session: SessionData) => void
  /** The API said the setup is over (409): the page stops offering it. */
  readonly onClosed: () => void
  readonly onCancel: () => void
}

export interface SetupForm {
  readonly element: HTMLFormElement
  focus(): void
  reset(): void
}

export function createSetupForm(options: SetupFormOptions): SetupForm {
  const { t, texts } = options
  const titleId = uid('setup-title')
  const summaryId = uid('setup-error')
  const hintId = uid('setup-password-hint')
  const summary = h('p', {
    id: summaryId,
    class: 'form-error',
    role: 'alert',
    'data-testid': 'setup-error',
    hidden: true,
  })
  let failure: SetupFailure | null = null
  texts.bind(summary, () => failure?.summary(t) ?? '')

  const attrs: Readonly<Record<SetupField, Readonly<Record<string, string | boolean | number>>>> = {
    setupToken: { type: 'text', autocomplete: 'off', spellcheck: 'false', autocapitalize: 'none', required: true },
    email: { type: 'email', autocomplete: 'username', required: true },
    name: { type: 'text', autocomplete: 'name' },
    password: { type: 'password', autocomplete: 'new-password', minlength: SETUP_MIN_PASSWORD_LENGTH, required: true },
  }
  const labels: Readonly<Record<SetupField, Message>> = {
    setupToken: (tr) => tr('setupToken'),
    email: (tr) => tr('loginEmail'),
    name: (tr) => tr('setupName'),
    password: (tr) => tr('setupPassword'),
  }
  function buildField(field: SetupField): { row: HTMLElement; input: HTMLInputElement; error: HTMLElement } {
    const id = uid(`setup-${field}`)
    const errorId = uid(`setup-${field}-error`)
    const error = h('p', { id: errorId, class: 'field-error', 'data-testid': `setup-error-${field}`, hidden: true })
    texts.bind(error, () => failure?.inline[field]?.(t) ?? '')
    const described = field === 'password' ? `${hintId} ${errorId} ${summaryId}` : `${errorId} ${summaryId}`
    const input = h('input', {
      ...attrs[field],
      id,
      name: field,
      class: field === 'setupToken' ? 'secret-value' : null,
      'data-testid': `setup-${field}`,
      'aria-describedby': described,
    })
    const hint =
      field === 'password'
        ? texts.bind(h('p', { id: hintId, class: 'field-hint', 'data-testid': 'setup-password-hint' }), () =>
            t('setupPasswordHint', { min: SETUP_MIN_PASSWORD_LENGTH }),
          )
        : null
    const label = texts.bind(h('label', { for: id }), () => labels[field](t))
    return { row: h('div', { class: 'field' }, label, input, hint, error), input, error }
  }
  const fields: Readonly<Record<SetupField, ReturnType<typeof buildField>>> = {
    setupToken: buildField('setupToken'),
    email: buildField('email'),
    name: buildField('name'),
    password: buildField('password'),
  }

  const submit = texts.bind(h('button', { type: 'submit', class: 'primary', 'data-testid': 'setup-submit' }), () =>
    t('setupSubmit'),
  )
  const cancel = texts.bind(h('button', { type: 'button', 'data-testid': 'setup-cancel' }), () => t('loginCancel'))
  const element = h(
    'form',
    { class: 'login-form setup-form', 'data-testid': 'setup-form', novalidate: true, 'aria-labelledby': titleId },
    texts.bind(h('h2', { id: titleId }), () => t('setupTitle')),
    texts.bind(h('p', { class: 'form-intro' }), () => t('setupIntro')),
    summary,
    ...SETUP_FIELDS.map((field) => fields[field].row),
    h('div', { class: 'form-actions' }, submit, cancel),
  )

  function show(next: SetupFailure | null): void {
    failure = next
    summary.textContent = next?.summary(t) ?? ''
    summary.hidden = next === null
    for (const field of SETUP_FIELDS) {
      const text = next?.inline[field]
      fields[field].error.textContent = text?.(t) ?? ''
      fields[field].error.hidden = text === undefined
      fields[field].input.setAttribute('aria-invalid', String(next?.invalid.includes(field) ?? false))
    }
  }

  /** The first invalid field, else the submit button (disabling it while busy dropped the focus). */
  function focusAfter(next: SetupFailure): void {
    const first = SETUP_FIELDS.find((field) => next.invalid.includes(field))
    if (first === undefined) submit.focus()
    else fields[first].input.focus()
  }

  function values(): SetupValues {
    return {
      setupToken: fields.setupToken.input.value,
      email: fields.email.input.value,
      name: fields.name.input.value,
      password: fields.password.input.value,
    }
  }

  let busy = false
  function idle(): void {
    busy = false
    submit.disabled = false
  }

  cancel.addEventListener('click', () => options.onCancel())
  element.addEventListener('submit', (e) => {
    e.preventDefault()
    if (busy) return
    const current = values()
    const local = checkSetupValues(current)
    if (local !== null) {
      show(local)
      focusAfter(local)
      return
    }
    busy = true
    submit.disabled = true
    options.api
      .post(SETUP_PATH, setupBody(current), LoginResponseSchema, null)
      .then((res) => {
        if (res === null) throw new ApiError('invalid', 'empty setup response', 204, null)
        idle()
        show(null)
        element.reset()
        options.onDone({ user: res.user, csrfToken: res.csrfToken, publicMap: options.publicMap, setupOpen: false })
      })
      .catch((error: unknown) => {
        idle()
        const next = setupFailure(error)
        show(next)
        if (next.closed) options.onClosed()
        focusAfter(next)
      })
  })

  return {
    element,
    focus() {
      fields.setupToken.input.focus()
    },
    reset() {
      element.reset()
      show(null)
    },
  }
}
