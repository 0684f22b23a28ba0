import { HttpError, InfluxDB, type Transport } from '@influxdata/influxdb-client'
import type { Logger } from '@skolluft/runtime'
import { openSpoolFile, type RefusedLine, type SpoolFile, type SpoolRow } from './spool-file.ts'

export type { RefusedLine } from './spool-file.ts'

/**
 * Lines per write request. InfluxDB's "Optimize writes" guide: "the optimal batch size is 5000 lines of line
 * protocol" (https://docs.influxdata.com/influxdb/v2/write-data/best-practices/optimize-writes/).
 */
export const MAX_LINES_PER_REQUEST = 5_000

/**
 * Lines held in memory (queued plus in flight) before new writes go straight to the spool: ten requests'
 * worth, about 2 MB at ~200 bytes a reading line, so a slow server cannot grow the heap without bound.
 */
export const MAX_LINES_IN_MEMORY = 50_000

/** A request that has not completed by then is abandoned and its lines spooled: the client's default socket timeout (ConnectionOptions.timeout). */
export const REQUEST_TIMEOUT_MS = 10_000

/**
 * First retry delay after a failed replay. Lower than the client's 5 s minRetryDelay (DEFAULT_RetryDelayStrategyOptions):
 * while the spool holds lines every write waits behind it, so a short blip should end quickly.
 */
export const RETRY_BASE_DELAY_MS = 1_000

/**
 * Longest retry delay (doubling from the base: 1, 2, 4, … 32, 60 s). It bounds how long after InfluxDB is back
 * the spool starts draining; the client's own maxRetryDelay is 125 s.
 */
export const RETRY_MAX_DELAY_MS = 60_000

/** Bodies larger than this are gzipped: the client's default WriteOptions.gzipThreshold. */
export const GZIP_THRESHOLD_BYTES = 1_000

/** The server's message kept with a refused line is cut to this (HttpError already cuts text bodies to 1000). */
const MAX_REASON_CHARS = 1_000

export const INFLUX_WRITER_ERROR_CODES = ['CLOSED', 'INVALID_LINE'] as const
export type InfluxWriterErrorCode = (typeof INFLUX_WRITER_ERROR_CODES)[number]

export class InfluxWriterError extends Error {
  readonly code: InfluxWriterErrorCode

  constructor(code: InfluxWriterErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'InfluxWriterError'
    this.code = code
  }
}

export interface InfluxWriterOptions {
  readonly url: string
  /** Sent as `Authorization: Token …`; never logged. */
  readonly token: string
  readonly org: string
  readonly bucket: string
  /** The SQLite spool file; created if missing. One writer per file (it is locked while open). */
  readonly spoolPath: string
  readonly log: Logger
  /** Epoch ms, for the refused table. */
  readonly clock?: () => number
  /** In [0, 1), for the retry jitter. */
  readonly random?: () => number
  readonly maxLinesPerRequest?: number
  readonly maxLinesInMemory?: number
  readonly requestTimeoutMs?: number
  readonly retryBaseDelayMs?: number
  readonly retryMaxDelayMs?: number
  /** For tests: another transport than the client's node:http one. */
  readonly transport?: Transport
}

export interface InfluxWriterStats {
  /** Lines the server accepted from direct writes. */
  readonly written: number
  /** Lines committed to the spool. */
  readonly spooled: number
  /** Spooled lines the server then accepted. */
  readonly replayed: number
  /** Lines in the spool now. */
  readonly spoolDepth: number
  /** Lines this writer moved to the refused table. */
  readonly refused: number
  /** Failed write requests (any reason). */
  readonly failures: number
  readonly lastError: { readonly at: number; readonly status: number | null; readonly message: string } | null
  /** 'direct' while writes go to the server; 'spooling' while they queue behind the spool. */
  readonly state: 'direct' | 'spooling'
}

export interface InfluxWriter {
  /**
   * Resolves once every line is durable: accepted by the server (2xx) or committed to the spool. Lines are
   * delivered in write order. Rejects with InfluxWriterError (CLOSED, INVALID_LINE: empty or with a line break)
   * or when the spool cannot be written.
   */
  write(lines: readonly string[]): Promise<void>
  stats(): InfluxWriterStats
  /** True once nothing is queued, in flight or spooled; false if that did not happen within `timeoutMs`. */
  drain(timeoutMs: number): Promise<boolean>
  /** The oldest lines in the refused table. */
  refusedLines(limit?: number): RefusedLine[]
  /** Stops sending; whatever the server has not accepted stays in the spool for the next writer on the file. */
  close(): Promise<void>
}

/** One caller's write; settles when all its segments are durable. */
interface Owner {
  remaining: number
  readonly resolve: () => void
  readonly reject: (error: unknown) => void
}

interface Segment {
  readonly rows: SpoolRow[]
  readonly owner: Owner
}

type Outcome =
  | { readonly kind: 'ok' }
  | {
      readonly kind: 'refused' | 'too-large' | 'retry'
      readonly status: number | null
      readonly message: string
      readonly retryAfterMs: number
    }

type Failure = Exclude<Outcome, { kind: 'ok' }>

function errorMessage(error: unknown): string {
  if (error instanceof Error) {
    const code = 'code' in error ? error.code : undefined
    return typeof code === 'string' && !error.message.includes(code) ? `${code}: ${error.message}` : error.message
  }
  return String(error)
}

/**
 * The InfluxDB write path with an on-disk spool (see InfluxWriter.write for the promise).
 *
 * Direct mode: writes made in the same event-loop turn share a request; one request is in flight at a time,
 * so the server sees lines in write order (it matters: the newest `device_hour` point wins). When a request
 * fails, its lines and everything queued behind it go to the spool, and the writer switches to spooling mode:
 * new writes are appended to the spool, and a replayer sends it oldest first, deleting lines only after a 2xx,
 * with exponential back-off (equal jitter: half the delay fixed, half random, so several workers do not retry
 * in step) between failed attempts. Once the spool is empty, direct mode resumes.
 *
 * Status codes: 2xx accepted. 400 (malformed line protocol; InfluxDB also answers a partial write with 400) and
 * 413 (too large): the batch is split in halves until the offending line stands alone, which then goes to the
 * spool's refused table with the server's message (logged, counted). Re-sending the good halves is harmless:
 * a point written twice is the same point. Anything else (401, 403, 404, 429, 5xx, network errors, timeouts):
 * retried from the spool, after Retry-After when the server sends one.
 */
export function createInfluxWriter(options: InfluxWriterOptions): InfluxWriter {
  const log = options.log.child({ module: 'influx-writer' })
  const clock = options.clock ?? Date.now
  const random = options.random ?? Math.random
  const maxLinesPerRequest = options.maxLinesPerRequest ?? MAX_LINES_PER_REQUEST
  const maxLinesInMemory = options.maxLinesInMemory ?? MAX_LINES_IN_MEMORY
  const requestTimeoutMs = options.requestTimeoutMs ?? REQUEST_TIMEOUT_MS
  const retryBaseDelayMs = options.retryBaseDelayMs ?? RETRY_BASE_DELAY_MS
  const retryMaxDelayMs = options.retryMaxDelayMs ?? RETRY_MAX_DELAY_MS
  const transport =
    options.transport ?? new InfluxDB({ url: options.url, token: options.token, timeout: requestTimeoutMs }).transport
  const writePath = `/api/v2/write?${new URLSearchParams({ org: options.org, bucket: options.bucket, precision: 'ms' })}`

  const spool: SpoolFile = openSpoolFile(options.spoolPath)
  let nextSeq = spool.nextSeq()

  let state: 'direct' | 'spooling' = spool.depth() > 0 ? 'spooling' : 'direct'
  let closing = false
  let closed: Promise<void> | null = null

  /** Direct mode: segments waiting for a request, and lines held in memory (queued + in flight). */
  let queue: Segment[] = []
  let memoryLines = 0
  let pumping = false
  let pumpScheduled = false

  /** Segments waiting for the next spool commit (group commit in setImmediate). */
  let toCommit: Segment[] = []

  let replaying = false
  let wakeReplayer: (() => void) | null = null

  const counters = { written: 0, spooled: 0, replayed: 0, refused: 0, failures: 0 }
  let lastError: InfluxWriterStats['lastError'] = null

  // Everyone waiting for "something changed" (the replayer, drain, close); woken after each step.
  let waiters: (() => void)[] = []
  function notify(): void {
    const woken = waiters
    waiters = []
    for (const wake of woken) wake()
  }
  const nextChange = () => new Promise<void>((resolve) => waiters.push(resolve))

  function segmentDone(segment: Segment): void {
    segment.owner.remaining -= 1
    if (segment.owner.remaining === 0) segment.owner.resolve()
  }

  // --- the spool side -------------------------------------------------------------------------------------------

  function commitSpooled(): void {
    const batch = toCommit
    toCommit = []
    if (batch.length === 0) return
    try {
      const rows = batch.flatMap((s) => s.rows)
      spool.append(rows)
      counters.spooled += rows.length
      for (const segment of batch) segmentDone(segment)
    } catch (error) {
      log.error({ err: error, lines: batch.reduce((n, s) => n + s.rows.length, 0) }, 'influx spool append failed')
      for (const segment of batch) segment.owner.reject(error)
    }
    notify()
  }

  function toSpool(segment: Segment): void {
    if (toCommit.length === 0) setImmediate(commitSpooled)
    toCommit.push(segment)
  }

  function enterSpooling(reason: Failure | 'memory'): void {
    if (state === 'spooling') return
    state = 'spooling'
    for (const segment of queue) toSpool(segment)
    memoryLines -= queue.reduce((n, s) => n + s.rows.length, 0)
    queue = []
    if (reason === 'memory') log.warn({ maxLinesInMemory }, 'InfluxDB writes fall behind: spooling')
    else log.warn({ status: reason.status, error: reason.message }, 'InfluxDB write failed: spooling')
    startReplayer()
  }

  // --- HTTP -----------------------------------------------------------------------------------------------------

  async function post(lines: readonly string[]): Promise<Outcome> {
    const controller = new AbortController()
    const timer = setTimeout(() => controller.abort(), requestTimeoutMs)
    try {
      await transport.request(writePath, lines.join('\n'), {
        method: 'POST',
        headers: { 'content-type': 'text/plain; charset=utf-8' },
        gzipThreshold: GZIP_THRESHOLD_BYTES,
        signal: controller.signal,
      })
      return { kind: 'ok' }
    } catch (error) {
      const failure = classify(error, controller.signal.aborted)
      counters.failures += 1
      lastError = { at: clock(), status: failure.status, message: failure.message }
      return failure
    } finally {
      clearTimeout(timer)
    }
  }

  function classify(error: unknown, timedOut: boolean): Failure {
    if (error instanceof HttpError) {
      const message = (error.body ?? error.message).slice(0, MAX_REASON_CHARS)
      const status = error.statusCode
      // 400: malformed line protocol. 422: InfluxDB OSS 2 stored the good points and refused others (a field's type
      // clash, a point older than the bucket's retention: "Some or all of the data has been rejected. Data that has
      // not been rejected is ingested", InfluxDB v2 write troubleshooting). Retrying either would block the spool's
      // head forever; both are split down to the refused line (re-sending the good halves is harmless).
      if (status === 400 || status === 422) return { kind: 'refused', status, message, retryAfterMs: 0 }
      if (status === 413) return { kind: 'too-large', status, message, retryAfterMs: 0 }
      // The client parses Retry-After's delta-seconds (RFC 9110 §10.2.3) and returns seconds, not milliseconds.
      return { kind: 'retry', status, message, retryAfterMs: error.retryAfter() * 1_000 }
    }
    const message = timedOut ? `no answer within ${requestTimeoutMs} ms` : errorMessage(error)
    return { kind: 'retry', status: null, message, retryAfterMs: 0 }
  }

  // --- direct mode ----------------------------------------------------------------------------------------------

  /** Takes up to maxLinesPerRequest lines off the queue, splitting a segment that does not fit. */
  function takeBatch(): Segment[] {
    const batch: Segment[] = []
    let room = maxLinesPerRequest
    while (room > 0) {
      const head = queue[0]
      if (head === undefined) break
      if (head.rows.length <= room) {
        queue.shift()
        batch.push(head)
        room -= head.rows.length
      } else {
        head.owner.remaining += 1
        batch.push({ rows: head.rows.splice(0, room), owner: head.owner })
        room = 0
      }
    }
    return batch
  }

  function schedulePump(): void {
    if (pumpScheduled) return
    pumpScheduled = true
    setImmediate(() => {
      pumpScheduled = false
      pump().catch((error: unknown) => log.error({ err: error }, 'influx writer pump failed'))
    })
  }

  async function pump(): Promise<void> {
    if (pumping) return
    pumping = true
    try {
      while (state === 'direct' && !closing && queue.length > 0) {
        const batch = takeBatch()
        const n = batch.reduce((sum, s) => sum + s.rows.length, 0)
        const outcome = await post(batch.flatMap((s) => s.rows.map((r) => r.line)))
        memoryLines -= n
        if (outcome.kind === 'ok') {
          counters.written += n
          for (const segment of batch) segmentDone(segment)
        } else {
          // Its lines carry the lowest seqs, so they replay before anything queued or spooled after them.
          for (const segment of batch) toSpool(segment)
          enterSpooling(outcome)
        }
        notify()
      }
    } finally {
      pumping = false
      notify()
    }
  }

  // --- the replayer ---------------------------------------------------------------------------------------------

  function backoffMs(attempt: number, retryAfterMs: number): number {
    const exponential = Math.min(retryMaxDelayMs, retryBaseDelayMs * 2 ** (attempt - 1))
    const jittered = exponential / 2 + (random() * exponential) / 2
    return Math.min(retryMaxDelayMs, Math.max(jittered, retryAfterMs))
  }

  function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms)
      function done(): void {
        clearTimeout(timer)
        wakeReplayer = null
        resolve()
      }
      wakeReplayer = done
    })
  }

  /** Sends spooled rows; splits on 400/413 down to single lines, which are refused. Null when all were handled. */
  async function sendRows(rows: readonly SpoolRow[]): Promise<Failure | null> {
    const outcome = await post(rows.map((r) => r.line))
    if (outcome.kind === 'ok') {
      spool.remove(rows.map((r) => r.seq))
      counters.replayed += rows.length
      notify()
      return null
    }
    if (outcome.kind === 'retry') return outcome
    const [only] = rows
    if (rows.length === 1 && only !== undefined) {
      spool.refuse(only, outcome.status ?? 0, outcome.message, clock())
      counters.refused += 1
      log.error(
        { status: outcome.status, reason: outcome.message, seq: only.seq, bytes: only.line.length },
        'InfluxDB refused a line: moved to the refused table of the spool',
      )
      notify()
      return null
    }
    const half = Math.ceil(rows.length / 2)
    if (closing) return null
    const first = await sendRows(rows.slice(0, half))
    if (first !== null || closing) return first
    return sendRows(rows.slice(half))
  }

  function startReplayer(): void {
    if (replaying) return
    replaying = true
    replay()
      .catch((error: unknown) => log.error({ err: error }, 'influx spool replayer stopped'))
      .finally(() => {
        replaying = false
        notify()
      })
  }

  async function replay(): Promise<void> {
    let attempt = 0
    let replayedBefore = counters.replayed
    while (!closing) {
      // A direct request still in flight, or lines waiting for their commit, come first: they are older.
      if (pumping || toCommit.length > 0) {
        await nextChange()
        continue
      }
      let failure: Failure | null
      try {
        const rows = spool.oldest(maxLinesPerRequest)
        if (rows.length === 0) {
          state = 'direct'
          log.info({ replayed: counters.replayed - replayedBefore }, 'influx spool drained: writing directly again')
          replayedBefore = counters.replayed
          if (queue.length > 0) schedulePump()
          notify()
          return
        }
        failure = await sendRows(rows)
      } catch (error) {
        log.error({ err: error }, 'influx spool replay step failed')
        failure = { kind: 'retry', status: null, message: errorMessage(error), retryAfterMs: 0 }
      }
      if (failure === null) {
        attempt = 0
        continue
      }
      attempt += 1
      const delayMs = backoffMs(attempt, failure.retryAfterMs)
      log.warn(
        { status: failure.status, error: failure.message, attempt, delayMs, spoolDepth: spool.depth() },
        'InfluxDB replay failed: retrying',
      )
      if (!closing) await sleep(delayMs)
    }
  }

  if (state === 'spooling') {
    log.info({ spoolDepth: spool.depth() }, 'influx spool holds lines from an earlier run: replaying')
    startReplayer()
  }

  function idle(): boolean {
    return (
      state === 'direct' && queue.length === 0 && !pumping && toCommit.length === 0 && spool.depth() === 0 && !closing
    )
  }

  return {
    write(lines) {
      if (closing) return Promise.reject(new InfluxWriterError('CLOSED', 'the InfluxDB writer is closed'))
      for (const line of lines) {
        if (line.length === 0 || line.includes('\n') || line.includes('\r')) {
          return Promise.reject(new InfluxWriterError('INVALID_LINE', 'a line is empty or contains a line break'))
        }
      }
      if (lines.length === 0) return Promise.resolve()
      const rows = lines.map((line) => ({ seq: nextSeq++, line }))
      return new Promise<void>((resolve, reject) => {
        const segment: Segment = { rows, owner: { remaining: 1, resolve, reject } }
        if (state === 'direct' && memoryLines + rows.length > maxLinesInMemory) enterSpooling('memory')
        if (state === 'spooling') {
          toSpool(segment)
          return
        }
        queue.push(segment)
        memoryLines += rows.length
        schedulePump()
      })
    },

    stats() {
      return { ...counters, spoolDepth: spool.depth(), lastError, state }
    },

    async drain(timeoutMs) {
      if (idle()) return true
      let timer: NodeJS.Timeout | undefined
      const timeout = new Promise<false>((resolve) => {
        timer = setTimeout(() => resolve(false), timeoutMs)
      })
      const drained = (async () => {
        while (!idle()) {
          if (closing) return false
          await nextChange()
        }
        return true
      })()
      try {
        return await Promise.race([drained, timeout])
      } finally {
        clearTimeout(timer)
      }
    },

    refusedLines(limit = 100) {
      return spool.refusedLines(limit)
    },

    close() {
      if (closed !== null) return closed
      closing = true
      wakeReplayer?.()
      notify()
      closed = (async () => {
        // Each waits at most one request (bounded by the request timeout).
        while (pumping || replaying) await nextChange()
        for (const segment of queue) toSpool(segment)
        queue = []
        memoryLines = 0
        commitSpooled()
        const depth = spool.depth()
        spool.close()
        if (depth > 0) log.info({ spoolDepth: depth }, 'influx writer closed: the spool keeps lines for the next start')
      })()
      return closed
    },
  }
}
