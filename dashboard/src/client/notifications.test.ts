import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createApi } from './api.ts'
import {
  createNotificationFeed,
  type FeedState,
  NOTIFICATIONS_POLL_MS,
  NOTIFICATIONS_READ_URL,
  NOTIFICATIONS_URL,
  newestFirst,
} from './notifications.ts'
import type { NotificationData } from './schemas.ts'

/**
 * The polling rules of the notifications feed, through the real api.ts client over a scripted fetch
 * (the server's answers are the only thing made up here) and fake interval timers.
 */

const CSRF = 'csrf-token-1'

function note(id: number, at: string, fields: Partial<NotificationData> = {}): NotificationData {
  return { id, at, subject: `Subject ${id}`, text: `Text ${id}`, siteId: 'site-a', read: false, ...fields }
}

interface Request {
  readonly method: string
  readonly url: string
  readonly csrf: string | null
  readonly body: unknown
}

/** A fetch that answers from `reply` and records each request. */
function scriptedServer() {
  const requests: Request[] = []
  let reply: (req: Request) => Response = () => Response.json({ items: [] })
  const fetchImpl: typeof fetch = async (input, init) => {
    const headers = new Headers(init?.headers)
    const body: unknown = typeof init?.body === 'string' ? JSON.parse(init.body) : undefined
    const req: Request = {
      method: init?.method ?? 'GET',
      url: String(input),
      csrf: headers.get('X-CSRF-Token'),
      body,
    }
    requests.push(req)
    return reply(req)
  }
  return {
    requests,
    gets: () => requests.filter((r) => r.method === 'GET').length,
    setReply(next: (req: Request) => Response) {
      reply = next
    },
    api: createApi(fetchImpl),
  }
}

/** Lets the client's promise chains run (the fetch answers at once). */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve))

describe('the notifications feed', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] })
  })
  afterEach(() => {
    vi.useRealTimers()
  })

  function feedOn(server: ReturnType<typeof scriptedServer>) {
    const states: FeedState[] = []
    const feed = createNotificationFeed({ api: server.api, csrf: () => CSRF, onChange: (s) => states.push(s) })
    return { feed, states, last: () => states.at(-1) }
  }

  it('polls only once started, then every minute, and announces only what arrived after the first poll', async () => {
    const server = scriptedServer()
    const first = [note(1, '2026-11-30T07:00:00Z'), note(2, '2026-11-30T08:00:00Z')]
    server.setReply(() => Response.json({ items: first }))
    const { feed, last } = feedOn(server)
    await vi.advanceTimersByTimeAsync(3 * NOTIFICATIONS_POLL_MS)
    expect(server.requests).toEqual([])

    feed.start()
    await settle()
    expect(server.requests.map((r) => r.url)).toEqual([NOTIFICATIONS_URL])
    expect(last()).toEqual({ available: true, items: [first[1], first[0]], arrived: [] })

    const third = note(3, '2026-11-30T09:00:00Z')
    server.setReply(() => Response.json({ items: [...first, third] }))
    await vi.advanceTimersByTimeAsync(NOTIFICATIONS_POLL_MS - 1)
    expect(server.gets()).toBe(1)
    await vi.advanceTimersByTimeAsync(1)
    await settle()
    expect(server.gets()).toBe(2)
    expect(last()?.items.map((n) => n.id)).toEqual([3, 2, 1])
    expect(last()?.arrived).toEqual([third])

    // Nothing new: nothing announced.
    await vi.advanceTimersByTimeAsync(NOTIFICATIONS_POLL_MS)
    await settle()
    expect(server.gets()).toBe(3)
    expect(last()?.arrived).toEqual([])
    feed.stop()
  })

  it('polls at once on refresh (socket reconnect) and keeps a single timer on a second start', async () => {
    const server = scriptedServer()
    const { feed } = feedOn(server)
    feed.start()
    feed.start()
    await settle()
    expect(server.gets()).toBe(2)
    feed.refresh()
    await settle()
    expect(server.gets()).toBe(3)
    await vi.advanceTimersByTimeAsync(NOTIFICATIONS_POLL_MS)
    await settle()
    expect(server.gets()).toBe(4)
    feed.stop()
  })

  it('stops polling and empties the list on stop (log-out); refresh does nothing then', async () => {
    const server = scriptedServer()
    server.setReply(() => Response.json({ items: [note(1, '2026-11-30T07:00:00Z')] }))
    const { feed, last } = feedOn(server)
    feed.start()
    await settle()
    expect(last()?.items).toHaveLength(1)
    feed.stop()
    expect(last()).toEqual({ available: false, items: [], arrived: [] })
    feed.refresh()
    await vi.advanceTimersByTimeAsync(5 * NOTIFICATIONS_POLL_MS)
    await settle()
    expect(server.gets()).toBe(1)
  })

  it('ignores an answer that comes after stop', async () => {
    const gate = { release: () => {} }
    const opened = new Promise<void>((resolve) => {
      gate.release = resolve
    })
    const states: FeedState[] = []
    const slowFetch: typeof fetch = async () => {
      await opened
      return Response.json({ items: [note(9, '2026-11-30T07:00:00Z')] })
    }
    const feed = createNotificationFeed({
      api: createApi(slowFetch),
      csrf: () => CSRF,
      onChange: (s) => states.push(s),
    })
    feed.start()
    feed.stop()
    gate.release()
    await settle()
    await settle()
    expect(states).toEqual([{ available: false, items: [], arrived: [] }])
  })

  it('hides on 404 (an API without notifications) and pauses until a refresh', async () => {
    const server = scriptedServer()
    server.setReply(() => new Response(JSON.stringify({ status: 404, code: 'not_found' }), { status: 404 }))
    const { feed, last } = feedOn(server)
    feed.start()
    await settle()
    expect(last()?.available).toBe(false)
    await vi.advanceTimersByTimeAsync(5 * NOTIFICATIONS_POLL_MS)
    await settle()
    expect(server.gets()).toBe(1)

    // The server was upgraded while the socket was away.
    server.setReply(() => Response.json({ items: [note(1, '2026-11-30T07:00:00Z')] }))
    feed.refresh()
    await settle()
    expect(last()?.available).toBe(true)
    await vi.advanceTimersByTimeAsync(NOTIFICATIONS_POLL_MS)
    await settle()
    expect(server.gets()).toBe(3)
    feed.stop()
  })

  it('hides on 401 and 403 too, but keeps what it shows on a server error or a lost connection', async () => {
    const server = scriptedServer()
    server.setReply(() => Response.json({ items: [note(1, '2026-11-30T07:00:00Z')] }))
    const { feed, last } = feedOn(server)
    feed.start()
    await settle()
    server.setReply(() => new Response('', { status: 503 }))
    await vi.advanceTimersByTimeAsync(NOTIFICATIONS_POLL_MS)
    await settle()
    expect(last()?.items.map((n) => n.id)).toEqual([1])
    server.setReply(() => {
      throw new TypeError('fetch failed')
    })
    await vi.advanceTimersByTimeAsync(NOTIFICATIONS_POLL_MS)
    await settle()
    expect(last()?.available).toBe(true)
    for (const status of [401, 403]) {
      server.setReply(() => new Response('', { status }))
      feed.refresh()
      await settle()
      expect(last()?.available, String(status)).toBe(false)
    }
    feed.stop()
  })

  it('marks read with the CSRF token and keeps marked items out of an older poll', async () => {
    const server = scriptedServer()
    const items = [note(1, '2026-11-30T07:00:00Z'), note(2, '2026-11-30T08:00:00Z')]
    server.setReply((req) => (req.method === 'POST' ? new Response(null, { status: 204 }) : Response.json({ items })))
    const { feed, last } = feedOn(server)
    feed.start()
    await settle()
    await feed.markRead([2])
    const post = server.requests.find((r) => r.method === 'POST')
    expect(post).toEqual({ method: 'POST', url: NOTIFICATIONS_READ_URL, csrf: CSRF, body: { ids: [2] } })
    expect(last()?.items.map((n) => n.id)).toEqual([1])
    // A poll answered from before the mark still lists 2 as unread.
    await vi.advanceTimersByTimeAsync(NOTIFICATIONS_POLL_MS)
    await settle()
    expect(last()?.items.map((n) => n.id)).toEqual([1])
    expect(last()?.arrived).toEqual([])
    feed.stop()
  })

  it('rejects when marking fails and keeps the items', async () => {
    const server = scriptedServer()
    server.setReply((req) =>
      req.method === 'POST'
        ? new Response(JSON.stringify({ status: 403, code: 'csrf_failed' }), { status: 403 })
        : Response.json({ items: [note(1, '2026-11-30T07:00:00Z')] }),
    )
    const { feed, last } = feedOn(server)
    feed.start()
    await settle()
    await expect(feed.markRead([1])).rejects.toMatchObject({ name: 'ApiError', status: 403, problem: 'csrf_failed' })
    expect(last()?.items.map((n) => n.id)).toEqual([1])
    feed.stop()
  })

  it('leaves out items of an unexpected shape and read ones', async () => {
    const server = scriptedServer()
    server.setReply(() =>
      Response.json({
        items: [
          note(1, '2026-11-30T07:00:00Z'),
          note(2, '2026-11-30T08:00:00Z', { read: true }),
          { id: 'three', at: '2026-11-30T09:00:00Z', subject: 's', text: 't', siteId: null, read: false },
          note(4, 'yesterday'),
          note(5, '2026-11-30T06:00:00Z', { siteId: null }),
        ],
      }),
    )
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined)
    const { feed, last } = feedOn(server)
    feed.start()
    await settle()
    expect(last()?.items.map((n) => n.id)).toEqual([1, 5])
    expect(warn).toHaveBeenCalledWith('skolluft: 2 notification(s) left out: unexpected shape')
    warn.mockRestore()
    feed.stop()
  })

  it('orders newest first, equal times by id', () => {
    const list = [note(1, '2026-11-30T07:00:00Z'), note(3, '2026-11-30T07:00:00Z'), note(2, '2026-11-30T09:00:00Z')]
    expect(newestFirst(list).map((n) => n.id)).toEqual([2, 3, 1])
  })
})
