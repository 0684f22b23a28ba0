/// <reference lib="dom" />
import { FOLLOW_UP_DEFAULT_DAYS } from '@skolluft/core'
import { type Api, ApiError } from './api.ts'
import { h, uid } from './dom.ts'
import type { I18n } from './i18n.ts'
import type { MessageKey } from './messages.ts'
import { dateText, note, type ReportFormat, section } from './report-format.ts'
import {
  CATALOGUE_PATH,
  type CatalogueMeasureData,
  CatalogueResponseSchema,
  catalogueMeasures,
} from './report-measure-data.ts'
import {
  type FollowUpData,
  FollowUpSchema,
  parseSiteMeasures,
  type SiteMeasureData,
  SiteMeasureListSchema,
  SiteMeasureSchema,
} from './report-schemas.ts'
import { followUpBlock } from './report-site.ts'
import type { Texts } from './texts.ts'

/**
 * The "measures taken" section of a site report with its controls (issue 7): each measure with its before/after
 * follow-up and a choice of the comparison window; for users holding measures:write a form to record a measure
 * (from the catalogue or with a title of its own) and a delete button with a confirmation. The API's reasons for
 * refusing a value are shown next to the field. After a change the section loads again. Controls carry the class
 * `report-edit`, which print hides (styles.css).
 */

/**
 * The comparison windows offered: a week, four weeks (core FOLLOW_UP_DEFAULT_DAYS) and 13 weeks (a quarter); all
 * whole weeks, so both sides hold the same weekdays, and within the API's 7..182 days (measures.ts FollowUpQuery).
 */
export const FOLLOW_UP_WINDOWS_DAYS: readonly number[] = [7, FOLLOW_UP_DEFAULT_DAYS, 91]

/** Fields of POST /sites/:id/measures whose refusals are shown beside them (api/src/routes/measures.ts). */
const FIELDS = ['measureId', 'title', 'takenOn', 'note'] as const
type Field = (typeof FIELDS)[number]

export interface MeasuresWriter {
  readonly csrf: string | null
}

export interface MeasuresPanelDeps {
  readonly api: Api
  readonly i18n: I18n
  readonly texts: Texts
  readonly siteId: string
  /** Null: the user may not change measures; no form, no delete buttons. */
  readonly writer: MeasuresWriter | null
  /** Today's date (YYYY-MM-DD), the form's default. */
  readonly today: string
}

export interface MeasuresPanel {
  /** Loads the measures and their follow-ups; false when the site's measures cannot be read (404, 403). */
  load(): Promise<boolean>
  /** The section in the current language (null when not available); later changes re-render it in place. */
  element(): HTMLElement | null
}

type Message = { readonly kind: 'ok' | 'error'; readonly text: () => string }

const isField = (path: string): path is Field => FIELDS.some((f) => f === path)

export function createMeasuresPanel(deps: MeasuresPanelDeps): MeasuresPanel {
  const { api, i18n, texts, siteId, writer } = deps
  const { t } = i18n
  const base = `/api/v1/sites/${encodeURIComponent(siteId)}/measures`
  let available = false
  let measures: readonly SiteMeasureData[] = []
  let catalogue: readonly CatalogueMeasureData[] = []
  const followUps = new Map<string, FollowUpData | 'failed'>()
  const days = new Map<string, number>()
  let confirming: string | null = null
  let busy = false
  let message: Message | null = null
  let current: HTMLElement | null = null

  const fmt = (): ReportFormat => ({ t, lang: i18n.lang() })
  const detailOf = (error: unknown) =>
    error instanceof ApiError && error.status !== null ? `${error.status}: ${error.message}` : String(error)

  // ---- the form (built once, so typed input survives a language switch or a reload) -------------------------
  const form = writer === null ? null : buildForm(writer)

  function buildForm(w: MeasuresWriter) {
    const fieldError = (field: Field | 'form') =>
      h('p', {
        class: 'field-error',
        role: field === 'form' ? 'alert' : null,
        id: uid(`measure-error-${field}`),
        'data-testid': field === 'form' ? 'report-measure-error' : `report-measure-error-${field}`,
        hidden: true,
      })
    const errors: Record<Field | 'form', HTMLParagraphElement> = {
      measureId: fieldError('measureId'),
      title: fieldError('title'),
      takenOn: fieldError('takenOn'),
      note: fieldError('note'),
      form: fieldError('form'),
    }
    const select = h('select', { 'data-testid': 'report-measure-select' })
    const title = h('input', { type: 'text', 'data-testid': 'report-measure-title', maxlength: 200 })
    const date = h('input', { type: 'date', 'data-testid': 'report-measure-date', value: deps.today, max: deps.today })
    const noteInput = h('textarea', { rows: 2, 'data-testid': 'report-measure-note' })
    const inputs: Record<Field, HTMLElement> = { measureId: select, title, takenOn: date, note: noteInput }
    for (const field of FIELDS) inputs[field].setAttribute('aria-describedby', errors[field].id)
    const titleHint = texts.bind(h('p', { class: 'field-hint', id: uid('measure-title-hint') }), () =>
      t('measuresFormTitleHint'),
    )
    title.setAttribute('aria-describedby', `${errors.title.id} ${titleHint.id}`)
    const field = (key: MessageKey, name: Field, ...extra: HTMLElement[]) => {
      const id = uid('measure-field')
      inputs[name].id = id
      return h(
        'div',
        { class: 'field' },
        texts.bind(h('label', { for: id }), () => t(key)),
        inputs[name],
        ...extra,
        errors[name],
      )
    }
    const submit = texts.bind(
      h('button', { type: 'submit', class: 'primary', 'data-testid': 'report-measure-submit' }),
      () => t('measuresFormSubmit'),
    )
    const element = h(
      'form',
      { class: 'report-measure-form report-edit', 'data-testid': 'report-measure-form', novalidate: true },
      texts.bind(h('h3', {}), () => t('measuresFormTitle')),
      field('measuresFormMeasure', 'measureId'),
      field('measuresFormTitleLabel', 'title', titleHint),
      field('measuresFormDate', 'takenOn'),
      field('measuresFormNote', 'note'),
      errors.form,
      h('div', { class: 'form-actions' }, submit),
    )

    function fillOptions(): void {
      const chosen = select.value
      const lang = i18n.lang()
      select.replaceChildren(
        h('option', { value: '' }, t('measuresFormOwn')),
        ...catalogue.map((m) => h('option', { value: m.id }, m.name[lang])),
      )
      select.value = catalogue.some((m) => m.id === chosen) ? chosen : ''
    }

    function showErrors(found: Partial<Record<Field | 'form', string>>): void {
      for (const [name, el] of Object.entries(errors)) {
        const text = found[name as Field | 'form']
        el.textContent = text ?? ''
        el.hidden = text === undefined
        if (name !== 'form') inputs[name as Field].setAttribute('aria-invalid', String(text !== undefined))
      }
    }

    element.addEventListener('submit', (e) => {
      e.preventDefault()
      if (busy) return
      showErrors({})
      const body: Record<string, string> = {}
      if (select.value !== '') body.measureId = select.value
      if (title.value.trim() !== '') body.title = title.value.trim()
      if (date.value !== '') body.takenOn = date.value
      if (noteInput.value.trim() !== '') body.note = noteInput.value.trim()
      busy = true
      submit.disabled = true
      api
        .post(base, body, SiteMeasureSchema, w.csrf)
        .then(async (created) => {
          title.value = ''
          noteInput.value = ''
          select.value = ''
          const recorded = created?.title ?? body.title ?? ''
          message = { kind: 'ok', text: () => t('measuresFormSaved', { title: recorded }) }
          await reload()
        })
        .catch((error: unknown) => {
          if (error instanceof ApiError && error.status === 400 && error.errors.length > 0) {
            const found: Partial<Record<Field | 'form', string>> = {}
            for (const issue of error.errors) {
              const head = issue.path.split('.')[0] ?? ''
              const key = isField(head) ? head : 'form'
              const text = t('measuresFieldRefused', { message: issue.message })
              found[key] = found[key] === undefined ? text : `${found[key]} ${text}`
            }
            showErrors(found)
            const first = FIELDS.find((f) => found[f] !== undefined)
            if (first !== undefined) inputs[first].focus()
          } else {
            showErrors({ form: t('measuresFormFailed', { detail: detailOf(error) }) })
          }
        })
        .finally(() => {
          busy = false
          submit.disabled = false
        })
    })
    return { element, fillOptions }
  }

  // ---- loading ---------------------------------------------------------------------------------------------------
  async function loadFollowUp(m: SiteMeasureData): Promise<void> {
    const n = days.get(m.id) ?? FOLLOW_UP_DEFAULT_DAYS
    try {
      followUps.set(m.id, await api.get(`${base}/${encodeURIComponent(m.id)}/follow-up?days=${n}`, FollowUpSchema))
    } catch (error) {
      if (!(error instanceof ApiError)) throw error
      followUps.set(m.id, 'failed')
    }
  }

  async function load(): Promise<boolean> {
    try {
      measures = parseSiteMeasures(await api.get(base, SiteMeasureListSchema))
    } catch (error) {
      // Not there (404) or not permitted: the report goes without the section.
      if (!(error instanceof ApiError)) throw error
      available = false
      return false
    }
    available = true
    followUps.clear()
    const work: Promise<void>[] = measures.map((m) => loadFollowUp(m))
    if (writer !== null && catalogue.length === 0) {
      work.push(
        api.get(CATALOGUE_PATH, CatalogueResponseSchema).then(
          (body) => {
            catalogue = catalogueMeasures(body)
          },
          (error: unknown) => {
            if (!(error instanceof ApiError)) throw error
          },
        ),
      )
    }
    await Promise.all(work)
    return true
  }

  async function reload(): Promise<void> {
    confirming = null
    await load()
    rerender()
  }

  // ---- rendering -------------------------------------------------------------------------------------------------
  function rerender(): void {
    const next = build()
    if (current !== null && next !== null) current.replaceWith(next)
    current = next
  }

  function windowChoice(m: SiteMeasureData): HTMLElement {
    const id = uid('measure-window')
    const select = h('select', { id, 'data-testid': `report-measure-window-${m.id}` })
    const chosen = days.get(m.id) ?? FOLLOW_UP_DEFAULT_DAYS
    for (const n of FOLLOW_UP_WINDOWS_DAYS) {
      select.append(h('option', { value: n, selected: n === chosen }, t('measuresWindowDays', { days: n })))
    }
    select.value = String(chosen)
    select.addEventListener('change', () => {
      const n = Number(select.value)
      days.set(m.id, n)
      select.disabled = true
      loadFollowUp(m)
        .catch((error: unknown) => {
          followUps.set(m.id, 'failed')
          console.info('skolluft: a follow-up could not be loaded', error)
        })
        .finally(() => rerender())
    })
    return h('div', { class: 'field inline' }, h('label', { for: id }, t('measuresWindow')), select)
  }

  function deleteControls(m: SiteMeasureData, w: MeasuresWriter): HTMLElement {
    if (confirming !== m.id) {
      const button = h(
        'button',
        { type: 'button', 'data-testid': `report-measure-delete-${m.id}` },
        t('measuresDelete'),
      )
      button.addEventListener('click', () => {
        confirming = m.id
        message = null
        rerender()
        current?.querySelector<HTMLButtonElement>(`[data-testid="report-measure-confirm-${m.id}"]`)?.focus()
      })
      return button
    }
    const yes = h(
      'button',
      { type: 'button', class: 'danger', 'data-testid': `report-measure-confirm-${m.id}` },
      t('measuresDeleteYes'),
    )
    const no = h(
      'button',
      { type: 'button', 'data-testid': `report-measure-cancel-${m.id}` },
      t('measuresDeleteCancel'),
    )
    no.addEventListener('click', () => {
      confirming = null
      rerender()
    })
    yes.addEventListener('click', () => {
      yes.disabled = true
      api
        .delete(`${base}/${encodeURIComponent(m.id)}`, w.csrf)
        .then(async () => {
          message = { kind: 'ok', text: () => t('measuresDeleted', { title: m.title }) }
          await reload()
        })
        .catch((error: unknown) => {
          confirming = null
          message = { kind: 'error', text: () => t('measuresDeleteFailed', { detail: detailOf(error) }) }
          rerender()
        })
    })
    return h(
      'div',
      { class: 'report-measure-confirm', role: 'group' },
      h('p', {}, t('measuresDeleteConfirm', { title: m.title })),
      h('div', { class: 'form-actions' }, yes, no),
    )
  }

  function item(f: ReportFormat, m: SiteMeasureData): HTMLElement {
    const follow = followUps.get(m.id)
    const fu = follow === undefined || follow === 'failed' ? null : follow
    return h(
      'article',
      {
        class: 'report-suggestion report-measure',
        'data-measure': m.id,
        'data-testid': `report-measure-${m.id}`,
        'data-days': fu === null ? null : fu.days,
      },
      h('h3', {}, t('reportMeasureTitle', { title: m.title, date: dateText(f.lang, m.taken_on) })),
      m.note === null || m.note === '' ? null : h('p', {}, m.note),
      h(
        'div',
        { class: 'report-measure-tools report-edit' },
        windowChoice(m),
        writer === null ? null : deleteControls(m, writer),
      ),
      fu === null ? note(t('reportNoFollowUp')) : note(t('measuresFollowUpDays', { days: fu.days }), 'report-small'),
      fu === null ? null : followUpBlock(f, fu),
    )
  }

  function build(): HTMLElement | null {
    if (!available) return null
    const f = fmt()
    form?.fillOptions()
    const status =
      message === null
        ? null
        : h(
            'p',
            {
              class: message.kind === 'error' ? 'report-error report-edit' : 'report-measure-done report-edit',
              role: message.kind === 'error' ? 'alert' : 'status',
              'data-testid': 'report-measure-message',
            },
            message.text(),
          )
    return section(
      'reportMeasuresTaken',
      f,
      'report-measures',
      note(t(measures.length === 0 ? 'reportNoMeasures' : 'reportFollowUpNote')),
      status,
      ...measures.map((m) => item(f, m)),
      form?.element ?? null,
    )
  }

  return {
    load,
    element() {
      current = build()
      return current
    },
  }
}
