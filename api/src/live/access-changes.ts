import { z } from 'zod'

/**
 * A change to who may see what, as an HTTP route makes it, for the live sockets to act on at once instead of
 * at their next periodic check (hub.ts REVALIDATE_MS):
 * - `session`: one session ended (log-out); the sockets opened with that session cookie.
 * - `user`: a user was disabled, or their role, sites or password changed (their sessions are deleted); every
 *   socket opened with one of that user's sessions.
 * - `token`: an API token was revoked; the sockets opened with it.
 * The id is the stored record's id (session id, `usr_…`, token id), never a secret. The same schema checks the
 * message another API instance sends (hub.ts PEER_ACCESS_EVENT).
 */
export const AccessChange = z.strictObject({
  kind: z.enum(['session', 'user', 'token']),
  id: z.string().min(1).max(200),
})
export type AccessChange = z.infer<typeof AccessChange>

/**
 * How routes tell the live hub about access changes without knowing about it: the HTTP app is built before
 * the socket.io server and its hub (server.ts), and without a server (route tests) nobody listens. The routes
 * call `notify` after the change is stored, so whoever re-checks reads the new state.
 */
export interface AccessChanges {
  notify(change: AccessChange): void
  /** Returns the function that removes the listener. */
  subscribe(listener: (change: AccessChange) => void): () => void
}

export function createAccessChanges(): AccessChanges {
  const listeners = new Set<(change: AccessChange) => void>()
  return {
    notify(change) {
      for (const listener of listeners) listener(change)
    },
    subscribe(listener) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
  }
}
