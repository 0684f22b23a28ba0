import type { RejectLog, RejectRecord } from '../types.ts'
import { createHttpCaller, type HttpStoreOptions } from './http-client.ts'
import {
  INTERNAL_REJECTS_PATH,
  MAX_REJECT_MESSAGE_LENGTH,
  MAX_REJECT_TOPIC_LENGTH,
  MAX_REJECTS_PER_REQUEST,
  type RejectEntry,
} from './wire.ts'

/**
 * The reject log of another machine, written through the API (POST /api/v1/internal/rejects, permission
 * rejects:write, a token of role service). `record` resolves once the API has committed the rejects, as the SQLite
 * log's does, so the ingest acknowledges a rejected message only after its rejection is logged.
 *
 * Calls made while a request is out are sent together in the next one (whole calls, at most MAX_REJECTS_PER_REQUEST
 * rejects): a flood of bad telemetry makes bigger requests, not more of them. One request at a time per log.
 *
 * A request that failed may still have been committed (the answer was lost). When the ingest retries the same call
 * (the same `rejects` array: its retry loop passes it again), it is sent as a redelivery, so the API skips the
 * rejects whose message key it has logged already instead of counting them twice.
 *
 * Only `record` is offered (the type says so): people read the log through the API's GET /api/v1/rejects.
 */
export type HttpRejectLog = Pick<RejectLog, 'record'>

interface Pending {
  readonly entries: readonly RejectEntry[]
  readonly records: readonly RejectRecord[]
  resolve(): void
  reject(error: unknown): void
}

export function createHttpRejectLog(options: HttpStoreOptions): HttpRejectLog {
  const http = createHttpCaller(options)
  const queue: Pending[] = []
  /** Calls whose request failed: sent again as redeliveries (a WeakSet: the ingest drops them once done). */
  const failedBefore = new WeakSet<readonly RejectRecord[]>()
  let sending = false

  function send(): void {
    if (sending || queue.length === 0) return
    const batch: Pending[] = []
    let count = 0
    while (queue.length > 0) {
      const next = queue[0]
      if (next === undefined || (batch.length > 0 && count + next.entries.length > MAX_REJECTS_PER_REQUEST)) break
      batch.push(next)
      count += next.entries.length
      queue.shift()
    }
    sending = true
    void http
      .call('POST', INTERNAL_REJECTS_PATH, { rejects: batch.flatMap((p) => p.entries) })
      .then(
        () => {
          for (const p of batch) p.resolve()
        },
        (error: unknown) => {
          for (const p of batch) {
            failedBefore.add(p.records)
            p.reject(error)
          }
        },
      )
      .finally(() => {
        sending = false
        send()
      })
  }

  return {
    record(rejects, recordOptions) {
      if (rejects.length === 0) return Promise.resolve()
      const redelivery = recordOptions?.redelivery === true || failedBefore.has(rejects)
      const entries = rejects.map(
        (r): RejectEntry => ({
          at: r.at,
          deviceId: r.deviceId,
          topic: r.topic.slice(0, MAX_REJECT_TOPIC_LENGTH),
          code: r.code,
          message: r.message.slice(0, MAX_REJECT_MESSAGE_LENGTH),
          index: r.index,
          messageKey: r.messageKey ?? null,
          redelivery,
        }),
      )
      return new Promise<void>((resolve, reject) => {
        queue.push({ entries, records: rejects, resolve, reject })
        send()
      })
    },
  }
}
