/// <reference lib="dom" />
import { type Api, ApiError } from './api.ts'
import { h, uid } from './dom.ts'
import type { I18n } from './i18n.ts'
import type { MessageKey } from './messages.ts'
import { instantText, metricName, note } from './report-format.ts'
import {
  CATALOGUE_PATH,
  type CatalogueMeasureData,
  type CatalogueResponseData,
  CatalogueResponseSchema,
  catalogueMeasures,
  mayWriteMeasures,
  saveCatalogue,
} from './report-measure-data.ts'
import { patternName } from './report-site.ts'
import { type ProblemIssue, SessionSchema } from './schemas.ts'
import type { Texts } from './texts.ts'

/**
 * The catalogue of measures (`/?report=measures`, issue 7): every measure the reports may suggest, in the page's
 * language: name, description, the pollutants it concerns, the patterns that suggest it with the evidence text the
 * report fills in, and its sources. Users holding measures:write get "Edit as JSON": the whole catalogue in a
 * textarea, saved with PUT /measures and If-Match of the revision loaded. The API's refusals (400, each with the
 * path in the JSON) and a save by someone else in between (412) are shown plainly; the edit is kept in the
 * textarea in both cases.
 */

export const CATALOGUE_URL = '/?report=measures'

export interface CataloguePageDeps {
  readonly root: HTMLElement
  readonly api: Api
  readonly i18n: I18n
  readonly texts: Texts
  readonly brand: HTMLElement
  readonly languageSwitch: HTMLElement
}

const RELIABILITY_KEYS: Readonly<Record<string, MessageKey>> = {
  official: 'catalogueReliability_official',
  secondary: 'catalogueReliability_secondary',
  code: 'catalogueReliability_code',
  unverified: 'catalogueReliability_unverified',
}

type Notice =
  | { readonly kind: 'saved'; readonly revision: number }
  | { readonly kind: 'invalid-json'; readonly detail: string }
  | { readonly kind: 'invalid'; readonly detail: string; readonly errors: readonly ProblemIssue[] }
  | { readonly kind: 'conflict'; readonly mine: number; readonly current: number | null }
  | { readonly kind: 'failed'; readonly detail: string }

export function startCataloguePage(deps: CataloguePageDeps): void {
  const { api, i18n, texts } = deps
  const { t } = i18n
  let loaded: CatalogueResponseData | null = null
  let csrf: string | null = null
  let canWrite = false
  let notice: Notice | null = null

  const backLink = texts.bind(h('a', { href: '/', class: 'button-link', 'data-testid': 'report-back' }), () =>
    t('reportBack'),
  )
  const municipalLink = texts.bind(
    h('a', { href: '/?report=municipality', class: 'button-link', 'data-testid': 'report-municipality-link' }),
    () => t('reportMunicipalLink'),
  )
  const status = h('p', { class: 'report-status', 'data-testid': 'report-status', 'aria-live': 'polite' })
  const body = h('div', { class: 'report-body', 'data-testid': 'report-body' })

  // ---- the JSON editor (built once: the text survives a language switch, a refusal and a conflict) -------------
  const editButton = texts.bind(
    h('button', { type: 'button', class: 'report-edit', 'data-testid': 'catalogue-edit', hidden: true }),
    () => t('catalogueEdit'),
  )
  const jsonId = uid('catalogue-json')
  const helpId = uid('catalogue-help')
  const noticeBox = h('div', { class: 'report-catalogue-notice', 'data-testid': 'catalogue-notice', hidden: true })
  const textarea = h('textarea', {
    id: jsonId,
    class: 'report-catalogue-json',
    rows: 24,
    spellcheck: false,
    wrap: 'off',
    'data-testid': 'catalogue-json',
  })
  const saveButton = texts.bind(
    h('button', { type: 'submit', class: 'primary', 'data-testid': 'catalogue-save' }),
    () => t('catalogueSave'),
  )
  const cancelButton = texts.bind(h('button', { type: 'button', 'data-testid': 'catalogue-cancel' }), () =>
    t('catalogueCancel'),
  )
  const editor = h(
    'form',
    { class: 'report-catalogue-editor report-edit', 'data-testid': 'catalogue-editor', novalidate: true, hidden: true },
    texts.bind(h('label', { for: jsonId }), () => t('catalogueJson')),
    texts.bind(h('p', { class: 'field-hint', id: helpId }), () => t('catalogueEditHelp')),
    textarea,
    h('div', { class: 'form-actions' }, saveButton, cancelButton),
  )
  noticeBox.id = uid('catalogue-notice')
  textarea.setAttribute('aria-describedby', `${helpId} ${noticeBox.id}`)

  function fillEditor(): void {
    textarea.value = loaded === null ? '[]' : JSON.stringify(loaded.measures, null, 2)
  }

  editButton.addEventListener('click', () => {
    fillEditor()
    notice = null
    editor.hidden = false
    editButton.hidden = true
    renderNotice()
    textarea.focus()
  })
  cancelButton.addEventListener('click', () => {
    editor.hidden = true
    editButton.hidden = !canWrite
    notice = null
    renderNotice()
  })
  editor.addEventListener('submit', (e) => {
    e.preventDefault()
    if (loaded === null) return
    let measures: unknown
    try {
      measures = JSON.parse(textarea.value)
    } catch (error) {
      notice = { kind: 'invalid-json', detail: error instanceof Error ? error.message : String(error) }
      renderNotice()
      return
    }
    const mine = loaded.revision
    saveButton.disabled = true
    saveCatalogue(measures, mine, csrf)
      .then((result) => {
        if (result.kind === 'saved') {
          loaded = result.catalogue
          notice = { kind: 'saved', revision: result.catalogue.revision }
          editor.hidden = true
          editButton.hidden = !canWrite
          render()
        } else if (result.kind === 'invalid') {
          notice = { kind: 'invalid', detail: result.detail, errors: result.errors }
        } else {
          notice = { kind: 'conflict', mine, current: result.current }
        }
        renderNotice()
      })
      .catch((error: unknown) => {
        const detail =
          error instanceof ApiError && error.status !== null ? `${error.status}: ${error.message}` : String(error)
        notice = { kind: 'failed', detail }
        renderNotice()
      })
      .finally(() => {
        saveButton.disabled = false
      })
  })

  function renderNotice(): void {
    noticeBox.hidden = notice === null
    noticeBox.className = `report-catalogue-notice report-edit ${notice?.kind === 'saved' ? 'report-measure-done' : 'report-error'}`
    noticeBox.setAttribute('role', notice?.kind === 'saved' ? 'status' : 'alert')
    noticeBox.dataset.kind = notice?.kind ?? ''
    if (notice === null) {
      noticeBox.replaceChildren()
      return
    }
    const n = notice
    if (n.kind === 'saved') noticeBox.replaceChildren(h('p', {}, t('catalogueSaved', { revision: n.revision })))
    else if (n.kind === 'invalid-json')
      noticeBox.replaceChildren(h('p', {}, t('catalogueInvalidJson', { detail: n.detail })))
    else if (n.kind === 'failed') noticeBox.replaceChildren(h('p', {}, t('catalogueSaveFailed', { detail: n.detail })))
    else if (n.kind === 'invalid') {
      noticeBox.replaceChildren(
        h('p', {}, t('catalogueRejected')),
        n.errors.length === 0
          ? h('p', { 'data-testid': 'catalogue-error-item' }, n.detail)
          : h(
              'ul',
              {},
              ...n.errors.map((e) =>
                h(
                  'li',
                  { 'data-testid': 'catalogue-error-item' },
                  h('code', {}, e.path === '' ? '(root)' : e.path),
                  `: ${e.message}`,
                ),
              ),
            ),
      )
    } else {
      const reload = texts.bind(h('button', { type: 'button', 'data-testid': 'catalogue-reload' }), () =>
        t('catalogueReload'),
      )
      reload.addEventListener('click', () => {
        notice = null
        renderNotice()
        void load().then(() => {
          if (!editor.hidden) fillEditor()
        })
      })
      noticeBox.replaceChildren(
        h(
          'p',
          { 'data-testid': 'catalogue-conflict' },
          t('catalogueConflict', { mine: n.mine, current: n.current === null ? '?' : n.current }),
        ),
        reload,
      )
    }
  }

  // ---- the list ----------------------------------------------------------------------------------------------
  function measureItem(m: CatalogueMeasureData): HTMLElement {
    const lang = i18n.lang()
    return h(
      'article',
      { class: 'report-suggestion', 'data-testid': `catalogue-measure-${m.id}`, 'data-measure': m.id },
      h('h3', { 'data-testid': `catalogue-name-${m.id}` }, m.name[lang]),
      h('p', {}, m.description[lang]),
      h(
        'p',
        { class: 'report-small' },
        h('strong', {}, `${t('catalogueMetrics')}: `),
        m.metrics.map((metric) => metricName(t, metric)).join(', '),
      ),
      h('p', {}, h('strong', {}, `${t('catalogueSuggestedBy')}:`)),
      h(
        'ul',
        {},
        ...m.suggestedBy.map((s) =>
          h(
            'li',
            { 'data-testid': `catalogue-trigger-${m.id}-${s.pattern}` },
            h('em', {}, patternName(t, s.pattern)),
            `: ${s.evidence[lang]}`,
          ),
        ),
      ),
      h(
        'div',
        { class: 'report-small' },
        h('strong', {}, `${t('reportSources')}:`),
        h(
          'ul',
          { class: 'report-sources' },
          ...m.sources.map((src) => {
            const key = RELIABILITY_KEYS[src.reliability]
            return h(
              'li',
              {},
              src.text,
              src.url === undefined ? null : h('span', { class: 'report-url' }, ` ${src.url}`),
              ` (${key === undefined ? src.reliability : t(key)})`,
            )
          }),
        ),
      ),
    )
  }

  function render(): void {
    document.title = `${t('catalogueTitle')} · Skolluft`
    if (loaded === null) return
    const lang = i18n.lang()
    const list = catalogueMeasures(loaded)
    body.replaceChildren(
      h(
        'article',
        { class: 'report report-catalogue', 'data-testid': 'catalogue' },
        h('h1', { 'data-testid': 'report-title' }, t('catalogueTitle')),
        h('p', {}, t('catalogueIntro')),
        h(
          'p',
          { class: 'report-small', 'data-testid': 'catalogue-revision', 'data-revision': loaded.revision },
          loaded.source === 'default' || loaded.updated_at === null
            ? t('catalogueDefault')
            : t('catalogueEdited', { revision: loaded.revision, time: instantText(lang, loaded.updated_at) }),
        ),
        editButton,
        noticeBox,
        editor,
        note(t('catalogueEvidenceNote'), 'report-note report-small'),
        list.length === 0 ? note(t('catalogueEmpty')) : null,
        ...list.map((m) => measureItem(m)),
      ),
    )
  }

  async function load(): Promise<void> {
    document.body.dataset.reportReady = 'false'
    status.className = 'report-status'
    status.textContent = t('reportLoading')
    try {
      const [catalogue, session] = await Promise.all([
        api.get(CATALOGUE_PATH, CatalogueResponseSchema),
        api.get('/api/v1/auth/session', SessionSchema).catch((error: unknown) => {
          if (!(error instanceof ApiError)) throw error
          return null
        }),
      ])
      loaded = catalogue
      canWrite = session !== null && mayWriteMeasures(session.user?.role)
      csrf = session?.csrfToken ?? null
      editButton.hidden = !canWrite || !editor.hidden
      status.textContent = ''
      render()
      renderNotice()
      document.body.dataset.reportReady = 'true'
    } catch (error) {
      loaded = null
      body.replaceChildren()
      status.className = 'report-status report-error'
      status.textContent =
        error instanceof ApiError && (error.status === 401 || error.status === 403)
          ? t('catalogueDenied')
          : t('catalogueLoadError', {
              detail:
                error instanceof ApiError && error.status !== null
                  ? `${error.status}: ${error.message}`
                  : String(error),
            })
      document.body.dataset.reportReady = 'error'
    }
  }

  document.body.classList.add('report-page')
  deps.root.replaceChildren(
    h(
      'header',
      { class: 'topbar report-controls' },
      deps.brand,
      h('div', { class: 'top-controls' }, backLink, municipalLink, deps.languageSwitch),
    ),
    h('main', { class: 'report-main', id: 'main' }, status, body),
  )
  i18n.onChange(() => {
    render()
    renderNotice()
  })
  void load()
}
