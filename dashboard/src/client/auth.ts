/// <reference lib="dom" />
import { type Api, ApiError } from './api.ts'
import { h, uid } from './dom.ts'
import type { Translate } from './i18n.ts'
import { LoginResponseSchema, type SessionData, type UserData } from './schemas.ts'
import type { Texts } from './texts.ts'

/**
 * Log-in with the session cookie: POST /api/v1/auth/login sets an httpOnly cookie and returns the
 * CSRF token that every later non-GET request carries in X-CSRF-Token (log-out included).
 */

export interface LoginFormOptions {
  readonly api: Api
  readonly t: Translate
  readonly texts: Texts
  readonly onLoggedIn: (session: SessionData) => void
  /** Shown as a cancel button when given (the form over a public map); absent on the log-in-only page. */
  readonly onCancel?: () => void
  readonly publicMap: boolean
}

export interface LoginForm {
  readonly element: HTMLFormElement
  focus(): void
  reset(): void
}

export function createLoginForm(options: LoginFormOptions): LoginForm {
  const { t, texts } = options
  const emailId = uid('login-email')
  const passwordId = uid('login-password')
  const errorId = uid('login-error')
  const email = h('input', {
    id: emailId,
    type: 'email',
    name: 'email',
    autocomplete: 'username',
    required: true,
    'data-testid': 'login-email',
    'aria-describedby': errorId,
  })
  const password = h('input', {
    id: passwordId,
    type: 'password',
    name: 'password',
    autocomplete: 'current-password',
    required: true,
    'data-testid': 'login-password',
    'aria-describedby': errorId,
  })
  const submit = texts.bind(h('button', { type: 'submit', class: 'primary', 'data-testid': 'login-submit' }), () =>
    t('loginSubmit'),
  )
  const error = h('p', { id: errorId, class: 'form-error', role: 'alert', 'data-testid': 'login-error', hidden: true })
  const cancel =
    options.onCancel === undefined
      ? null
      : texts.bind(h('button', { type: 'button', 'data-testid': 'login-cancel' }), () => t('loginCancel'))
  const element = h(
    'form',
    { class: 'login-form', 'data-testid': 'login-form', novalidate: true },
    texts.bind(h('h2', {}), () => t('loginTitle')),
    options.publicMap ? null : texts.bind(h('p', {}), () => t('loginRequired')),
    h(
      'div',
      { class: 'field' },
      texts.bind(h('label', { for: emailId }), () => t('loginEmail')),
      email,
    ),
    h(
      'div',
      { class: 'field' },
      texts.bind(h('label', { for: passwordId }), () => t('loginPassword')),
      password,
    ),
    error,
    h('div', { class: 'form-actions' }, submit, cancel),
  )
  let errorKey: (() => string) | null = null
  texts.bind(error, () => errorKey?.() ?? '')

  function showError(text: (() => string) | null): void {
    errorKey = text
    error.textContent = text?.() ?? ''
    error.hidden = text === null
    email.setAttribute('aria-invalid', String(text !== null))
    password.setAttribute('aria-invalid', String(text !== null))
  }

  cancel?.addEventListener('click', () => options.onCancel?.())
  element.addEventListener('submit', (e) => {
    e.preventDefault()
    if (email.value.trim() === '' || password.value === '') {
      showError(() => t('loginError'))
      return
    }
    submit.disabled = true
    options.api
      .post('/api/v1/auth/login', { email: email.value.trim(), password: password.value }, LoginResponseSchema, null)
      .then((res) => {
        if (res === null) throw new ApiError('invalid', 'empty log-in response', 204, null)
        showError(null)
        password.value = ''
        options.onLoggedIn({ user: res.user, csrfToken: res.csrfToken, publicMap: options.publicMap })
      })
      .catch((err: unknown) => {
        password.value = ''
        if (err instanceof ApiError && err.status === 401) showError(() => t('loginError'))
        else if (err instanceof ApiError && err.status === 429) showError(() => t('loginThrottled'))
        else {
          const detail = err instanceof ApiError && err.status !== null ? String(err.status) : 'error'
          showError(() => t('loginFailed', { detail }))
        }
        password.focus()
      })
      .finally(() => {
        submit.disabled = false
      })
  })

  return {
    element,
    focus() {
      email.focus()
    },
    reset() {
      element.reset()
      showError(null)
    },
  }
}

export function userName(user: UserData): string {
  return user.name !== null && user.name !== undefined && user.name !== '' ? user.name : user.email
}

export function roleLabel(t: Translate, role: string): string {
  switch (role) {
    case 'admin':
    case 'staff':
    case 'principal':
    case 'caretaker':
    case 'researcher':
      return t(`role_${role}`)
    default:
      return role
  }
}
