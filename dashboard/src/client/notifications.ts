import { type Api, ApiError } from './api.ts'
import { type NotificationData, NotificationListSchema, parseNotifications } from './schemas.ts'

/**
 * The in-app notifications of the logged-in user (issue 4): unread items polled from the API, without the
 * DOM (bell.ts draws them), so the polling rules can be tested in Node:
 *   - polls only while started (logged in): at start, every NOTIFICATIONS_POLL_MS and on refresh() (the live
 *     socket came back, so anything sent meanwhile is fetched at once);
 *   - a 404 (an API without notifications) or 401/403 (the session ended, or no right) hides the bell and
 *     pauses polling until the next start() or refresh(): an older server is not asked every minute;
 *   - other failures (network, 5xx) keep what is shown and try again at the next poll;
 *   - ids marked read here stay out even if a poll that started before the mark still lists them.
 */

/** How often the bell asks for unread notifications (issue 4 brief: every 60 s and on socket reconnect). */
export const NOTIFICATIONS_POLL_MS = 60_000
/** Unread notifications fetched per poll (the brief's `limit=50`); the count shows "50+" beyond it. */
export const NOTIFICATIONS_LIMIT = 50
export const NOTIFICATIONS_URL = `/api/v1/notifications?unread=true&limit=${NOTIFICATIONS_LIMIT}`
export const NOTIFICATIONS_READ_URL = '/api/v1/notifications/read'

export interface FeedState {
  /** false: logged out, or the API has no notifications for this caller (404, 401, 403). The bell hides. */
  readonly available: boolean
  /** Unread, newest first. */
  readonly items: readonly NotificationData[]
  /** Items that the latest poll brought for the first time (empty after the first poll: nothing is "new" then). */
  readonly arrived: readonly NotificationData[]
}

export interface NotificationFeed {
  /** Logged in: poll now and every NOTIFICATIONS_POLL_MS. A second start() polls again and keeps one timer. */
  start(): void
  /** Logged out: no more polling; the state is emptied. */
  stop(): void
  /** Poll now (e.g. after a socket reconnect); resumes polling paused by a 404. Ignored while stopped. */
  refresh(): void
  /** Marks items read (POST with the CSRF token) and drops them from the list. Rejects with ApiError. */
  markRead(ids: readonly number[]): Promise<void>
  state(): FeedState
}

export interface NotificationFeedOptions {
  readonly api: Api
  readonly csrf: () => string | null
  readonly onChange: (state: FeedState) => void
}

const HIDDEN: FeedState = { available: false, items: [], arrived: [] }

/** Newest first; equal times by id descending (ids grow with insertion). */
export function newestFirst(items: readonly NotificationData[]): NotificationData[] {
  return items
    .map((item) => ({ item, at: Date.parse(item.at) }))
    .sort((a, b) => b.at - a.at || b.item.id - a.item.id)
    .map((x) => x.item)
}

export function createNotificationFeed(options: NotificationFeedOptions): NotificationFeed {
  let running = false
  let timer: ReturnType<typeof setInterval> | null = null
  let seq = 0
  let polledOnce = false
  const seen = new Set<number>()
  const readHere = new Set<number>()
  let current: FeedState = HIDDEN

  function set(next: FeedState): void {
    current = next
    options.onChange(next)
  }

  function startTimer(): void {
    if (timer !== null) return
    timer = setInterval(() => void poll(), NOTIFICATIONS_POLL_MS)
  }

  function stopTimer(): void {
    if (timer === null) return
    clearInterval(timer)
    timer = null
  }

  async function poll(): Promise<void> {
    seq += 1
    const mine = seq
    try {
      const list = await options.api.get(NOTIFICATIONS_URL, NotificationListSchema)
      if (mine !== seq || !running) return
      const { items, invalid } = parseNotifications(list.items)
      if (invalid > 0) console.warn(`skolluft: ${invalid} notification(s) left out: unexpected shape`)
      const unread = newestFirst(items.filter((n) => !n.read && !readHere.has(n.id)))
      const arrived = polledOnce ? unread.filter((n) => !seen.has(n.id)) : []
      for (const n of unread) seen.add(n.id)
      polledOnce = true
      set({ available: true, items: unread, arrived })
    } catch (error) {
      if (mine !== seq || !running) return
      if (error instanceof ApiError && (error.status === 404 || error.status === 401 || error.status === 403)) {
        stopTimer()
        set(HIDDEN)
        return
      }
      // Network trouble or a server error: keep what is shown; the next poll tries again.
      if (error instanceof ApiError && error.code === 'invalid') console.warn('skolluft: notifications', error)
    }
  }

  return {
    start() {
      running = true
      startTimer()
      void poll()
    },
    stop() {
      running = false
      seq += 1
      stopTimer()
      polledOnce = false
      seen.clear()
      readHere.clear()
      set(HIDDEN)
    },
    refresh() {
      if (!running) return
      startTimer()
      void poll()
    },
    async markRead(ids) {
      if (ids.length === 0) return
      await options.api.post(NOTIFICATIONS_READ_URL, { ids: [...ids] }, null, options.csrf())
      for (const id of ids) readHere.add(id)
      if (!running) return
      set({ ...current, items: current.items.filter((n) => !readHere.has(n.id)), arrived: [] })
    },
    state: () => current,
  }
}
