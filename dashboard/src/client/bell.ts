/// <reference lib="dom" />
import { ApiError } from './api.ts'
import { h, uid } from './dom.ts'
import { formatDateTime } from './format.ts'
import type { Translate } from './i18n.ts'
import type { Lang } from './messages.ts'
import { type FeedState, NOTIFICATIONS_LIMIT, type NotificationFeed } from './notifications.ts'
import type { NotificationData } from './schemas.ts'

/**
 * The notifications bell in the header (issue 4): the unread count on a button that opens a list of the
 * unread notifications, each with "mark as read" and, when it is about a site, "show the site". Hidden
 * while the feed is not available (logged out, or an API without notifications). Notifications that arrive
 * while the page is open are announced in a polite live region. Escape closes the list and returns the
 * focus to the button.
 */

export interface BellDeps {
  readonly t: Translate
  readonly lang: () => Lang
  readonly feed: Pick<NotificationFeed, 'markRead'>
  readonly onOpenSite: (siteId: string) => void
}

export interface Bell {
  readonly element: HTMLElement
  show(state: FeedState): void
  relabel(): void
}

const SVG_NS = 'http://www.w3.org/2000/svg'

/** A bell outline (drawn here: the page loads no icon font, and an emoji may be missing from the system fonts). */
function bellIcon(): SVGSVGElement {
  const svg = document.createElementNS(SVG_NS, 'svg')
  svg.setAttribute('viewBox', '0 0 24 24')
  svg.setAttribute('width', '20')
  svg.setAttribute('height', '20')
  svg.setAttribute('aria-hidden', 'true')
  svg.setAttribute('focusable', 'false')
  const path = document.createElementNS(SVG_NS, 'path')
  path.setAttribute('d', 'M12 3a6 6 0 0 0-6 6v4l-2 3v1h16v-1l-2-3V9a6 6 0 0 0-6-6zm-2 16a2 2 0 0 0 4 0')
  path.setAttribute('fill', 'none')
  path.setAttribute('stroke', 'currentColor')
  path.setAttribute('stroke-width', '2')
  path.setAttribute('stroke-linejoin', 'round')
  svg.append(path)
  return svg
}

export function createBell(deps: BellDeps): Bell {
  const { t } = deps
  const menuId = uid('notifications')
  const headingId = uid('notifications-title')
  const count = h('span', { class: 'bell-count', 'data-testid': 'notifications-count', 'aria-hidden': 'true' })
  const button = h(
    'button',
    {
      type: 'button',
      class: 'bell-button',
      'data-testid': 'notifications-button',
      'aria-expanded': 'false',
      'aria-controls': menuId,
    },
    bellIcon(),
    count,
  )
  const heading = h('h2', { id: headingId, class: 'bell-title', tabindex: '-1' })
  const markAll = h('button', { type: 'button', 'data-testid': 'notifications-mark-all' })
  const list = h('ul', { class: 'bell-list', 'data-testid': 'notifications-list' })
  const empty = h('p', { class: 'muted', 'data-testid': 'notifications-empty' })
  const error = h('p', { class: 'form-error', role: 'alert', 'data-testid': 'notifications-error', hidden: true })
  const menu = h(
    'div',
    {
      id: menuId,
      class: 'bell-menu',
      role: 'region',
      'aria-labelledby': headingId,
      'data-testid': 'notifications-menu',
      hidden: true,
    },
    h('div', { class: 'bell-head' }, heading, markAll),
    error,
    empty,
    list,
  )
  const live = h('p', { class: 'visually-hidden', 'aria-live': 'polite', 'data-testid': 'notifications-live' })
  const element = h('div', { class: 'bell', 'data-testid': 'notifications', hidden: true }, button, menu, live)

  let state: FeedState = { available: false, items: [], arrived: [] }
  /** What the list shows, by id, so a poll that changed nothing does not rebuild it under the keyboard. */
  let listed = ''
  let errorText: (() => string) | null = null

  function countText(n: number): string {
    return n >= NOTIFICATIONS_LIMIT ? `${NOTIFICATIONS_LIMIT}+` : String(n)
  }

  function renderButton(): void {
    const n = state.items.length
    count.textContent = n === 0 ? '' : countText(n)
    count.hidden = n === 0
    button.setAttribute(
      'aria-label',
      n === 0 ? t('notificationsButtonNone') : t('notificationsButton', { n: countText(n) }),
    )
    button.title = t('notifications')
    button.classList.toggle('has-unread', n > 0)
  }

  function item(n: NotificationData): HTMLLIElement {
    const read = h(
      'button',
      {
        type: 'button',
        'data-testid': 'notification-mark-read',
        'aria-label': t('notificationMarkReadLabel', { subject: n.subject }),
      },
      t('notificationMarkRead'),
    )
    read.addEventListener('click', () => void markRead([n.id]))
    let show: HTMLButtonElement | null = null
    if (n.siteId !== null) {
      const siteId = n.siteId
      show = h(
        'button',
        {
          type: 'button',
          'data-testid': 'notification-show-site',
          'aria-label': t('notificationShowSiteLabel', { subject: n.subject }),
        },
        t('notificationShowSite'),
      )
      show.addEventListener('click', () => {
        // Focus on the bell first: the panel returns the focus to where it was when it opened.
        close(true)
        deps.onOpenSite(siteId)
      })
    }
    return h(
      'li',
      { 'data-testid': 'notification', 'data-notification-id': String(n.id) },
      h('p', { class: 'notification-subject' }, n.subject),
      h('p', { class: 'notification-time muted' }, formatDateTime(deps.lang(), Date.parse(n.at))),
      h('p', { class: 'notification-text' }, n.text),
      h('div', { class: 'notification-actions' }, show, read),
    )
  }

  function renderMenu(force: boolean): void {
    heading.textContent = t('notifications')
    markAll.textContent = t('notificationsMarkAll')
    markAll.hidden = state.items.length === 0
    empty.textContent = t('notificationsEmpty')
    empty.hidden = state.items.length > 0
    error.textContent = errorText?.() ?? ''
    error.hidden = errorText === null
    const ids = state.items.map((n) => n.id).join(',')
    if (!force && ids === listed) return
    // Keep the focus on the same control of the same notification when the list is rebuilt.
    const active = document.activeElement
    const focusedLi = active instanceof HTMLElement && list.contains(active) ? active.closest('li') : null
    const focusedId = focusedLi?.getAttribute('data-notification-id') ?? null
    const focusedRole = active instanceof HTMLElement ? active.getAttribute('data-testid') : null
    listed = ids
    list.replaceChildren(...state.items.map(item))
    if (focusedId !== null && focusedRole !== null) {
      list
        .querySelector<HTMLElement>(
          `li[data-notification-id="${CSS.escape(focusedId)}"] [data-testid="${CSS.escape(focusedRole)}"]`,
        )
        ?.focus()
    }
  }

  function announce(arrived: readonly NotificationData[]): void {
    const first = arrived[0]
    if (first === undefined) return
    live.textContent =
      arrived.length === 1
        ? t('notificationsNewOne', { subject: first.subject })
        : t('notificationsNew', { n: arrived.length })
  }

  function open(): void {
    menu.hidden = false
    button.setAttribute('aria-expanded', 'true')
    renderMenu(true)
    heading.focus()
  }

  function close(focusButton: boolean): void {
    if (menu.hidden) return
    menu.hidden = true
    button.setAttribute('aria-expanded', 'false')
    errorText = null
    if (focusButton) button.focus()
  }

  async function markRead(ids: readonly number[]): Promise<void> {
    // Where the focus goes when the item disappears: the next item, else the previous, else the heading.
    const index = state.items.findIndex((n) => n.id === ids[0])
    const after = ids.length === 1 ? (state.items[index + 1] ?? state.items[index - 1] ?? null) : null
    errorText = null
    try {
      await deps.feed.markRead(ids)
    } catch (err) {
      const detail = err instanceof ApiError && err.status !== null ? String(err.status) : 'error'
      errorText = () => t('notificationsReadFailed', { detail })
      renderMenu(false)
      return
    }
    // The feed called show() with the shorter list already.
    const target =
      after === null
        ? null
        : list.querySelector<HTMLElement>(
            `li[data-notification-id="${after.id}"] [data-testid="notification-mark-read"]`,
          )
    if (target) target.focus()
    else heading.focus()
  }

  button.addEventListener('click', () => {
    if (menu.hidden) open()
    else close(true)
  })
  markAll.addEventListener('click', () => void markRead(state.items.map((n) => n.id)))
  element.addEventListener('keydown', (e) => {
    if (e.key !== 'Escape' || menu.hidden) return
    // The page's own Escape (closing the site panel) must not also run.
    e.stopPropagation()
    close(true)
  })
  document.addEventListener('click', (e) => {
    if (!menu.hidden && e.target instanceof Node && !element.contains(e.target)) close(false)
  })

  return {
    element,
    show(next) {
      state = next
      element.hidden = !next.available
      if (!next.available) close(false)
      renderButton()
      if (!menu.hidden) renderMenu(false)
      else listed = ''
      if (next.available) announce(next.arrived)
    },
    relabel() {
      renderButton()
      renderMenu(true)
    },
  }
}
