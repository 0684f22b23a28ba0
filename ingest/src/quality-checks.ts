import { setImmediate as nextTurn } from 'node:timers/promises'
import {
  checkReadings,
  FINAL_GRACE_MS,
  QC_CONTEXT_AFTER_MS,
  QC_CONTEXT_BEFORE_MS,
  READING_QC_VERSION,
} from '@skolluft/core'
import type { Logger } from '@skolluft/runtime'
import type { QualityBacklogEntry, QualityCheck, Storage } from '@skolluft/storage'

/**
 * The quality worker (issue 5, plan §A): computes the per-reading quality flags of core reading-qc.ts for the
 * device-hours that became final (hour end + grace) since they were last checked, and stores them beside the values
 * (`ReadingStore.checkQuality`; values never change). Runs in the ingest process, off the hot path: ingest only
 * marks the hour dirty in the row write it does anyway.
 *
 * Catch-up is natural: the dirty marks live in the database, so after a restart (or an upgrade that adds the flags,
 * or a new READING_QC_VERSION) the backlog is simply longer. One pass checks at most `batchHours` backlog entries,
 * oldest first; a check covers the hours around its entry too (see `checkQuality`), so the entries behind it are
 * mostly already done when their turn comes. Passes never overlap, and the event loop gets a turn between checks.
 */

/** How often a pass runs: plan §A (60 s). Flags then trail an hour's end by its grace plus at most a minute. */
export const QUALITY_CHECK_INTERVAL_MS = 60_000
/**
 * Backlog entries per pass at most: plan §A ("e.g. 500 device-hours"). Engineering choice: a check reads about
 * 16 h of one device's readings (~1 000 at one a minute); with the event loop free between checks, a full pass
 * keeps ingest moving, and a minute of 500 entries is ~30 000 device-hours an hour of catch-up.
 */
export const QUALITY_BATCH_HOURS = 500

export interface QualityChecksOptions {
  readonly storage: {
    readonly readings: Storage['readings']
    readonly registry: Pick<Storage['registry'], 'getDevice'>
  }
  readonly log: Logger
  readonly clock?: () => number
  /** Default QUALITY_CHECK_INTERVAL_MS. */
  readonly intervalMs?: number
  /** An hour is checked once it ended this long ago (default core FINAL_GRACE_MS, as the breach evaluation). */
  readonly graceMs?: number
  /** Default QUALITY_BATCH_HOURS. */
  readonly batchHours?: number
  /** Rules version stored with the checked hours; default core READING_QC_VERSION (tests pass another). */
  readonly version?: number
}

/** What one pass did. */
export interface QualityPass {
  /** Backlog entries taken. */
  readonly entries: number
  /** Device-hours marked checked. */
  readonly hours: number
  /** Readings whose flags were recomputed, of them flagged, of them with a changed stored mask. */
  readonly checked: number
  readonly flagged: number
  readonly changed: number
  /** Entries whose check failed (logged; they stay in the backlog for the next sweep). */
  readonly failed: number
  /** Entries of a device the registry does not know (left dirty: no interval to judge them by). */
  readonly skipped: number
}

export interface QualityChecks {
  /** Runs a pass now (after the one running, if any). Rejects only if the backlog cannot be read. */
  runOnce(): Promise<QualityPass>
  /** Stops the timer and waits for a running pass; call before closing storage. */
  close(): Promise<void>
}

export function startQualityChecks(options: QualityChecksOptions): QualityChecks {
  const log = options.log.child({ module: 'quality-checks' })
  const { readings, registry } = options.storage
  const clock = options.clock ?? Date.now
  const intervalMs = options.intervalMs ?? QUALITY_CHECK_INTERVAL_MS
  const graceMs = options.graceMs ?? FINAL_GRACE_MS
  const batchHours = options.batchHours ?? QUALITY_BATCH_HOURS
  const version = options.version ?? READING_QC_VERSION
  /** Where the sweep goes on after a full batch; undefined = from the oldest. */
  let cursor: QualityBacklogEntry | undefined
  let closed = false
  let timer: NodeJS.Timeout | undefined
  let chain: Promise<unknown> = Promise.resolve()

  function rulesFor(intervalS: number): QualityCheck {
    return {
      version,
      contextBeforeMs: QC_CONTEXT_BEFORE_MS,
      contextAfterMs: QC_CONTEXT_AFTER_MS,
      run: (samples, range) => checkReadings(samples, range, { intervalS }),
    }
  }

  async function pass(): Promise<QualityPass> {
    const started = performance.now()
    const marked = await readings.requireQualityVersion(version)
    if (marked > 0) log.info({ version, hours: marked }, 'quality rules changed: rechecking the stored history')
    const finalBefore = clock() - graceMs
    const entries = await readings.qualityBacklog(finalBefore, batchHours, cursor)
    // A short batch ends the sweep: the next pass starts from the oldest again (re-dirtied hours, failures).
    cursor = entries.length < batchHours ? undefined : entries.at(-1)
    const rules = new Map<string, QualityCheck | null>()
    let hours = 0
    let checked = 0
    let flagged = 0
    let changed = 0
    let failed = 0
    let skipped = 0
    for (const entry of entries) {
      if (closed) break
      try {
        let check = rules.get(entry.deviceId)
        if (check === undefined) {
          const device = await registry.getDevice(entry.deviceId)
          check = device === undefined ? null : rulesFor(device.intervalS)
          rules.set(entry.deviceId, check)
        }
        if (check === null) {
          skipped++
          continue
        }
        const result = await readings.checkQuality(entry.deviceId, entry.hourStart, check, finalBefore)
        hours += result.hours
        checked += result.checked
        flagged += result.flagged
        changed += result.changed
      } catch (error) {
        failed++
        log.error({ err: error, deviceId: entry.deviceId, hourStart: entry.hourStart }, 'quality check failed')
      }
      // Let MQTT messages and their commits run between checks.
      await nextTurn()
    }
    const result = { entries: entries.length, hours, checked, flagged, changed, failed, skipped }
    if (entries.length > 0) {
      log.info({ ...result, ms: Math.round(performance.now() - started) }, 'quality checks')
    }
    if (skipped > 0) log.warn({ skipped }, 'quality backlog names devices the registry does not know')
    return result
  }

  function runOnce(): Promise<QualityPass> {
    const next = chain.then(pass)
    chain = next.catch(() => undefined)
    return next
  }

  /** One timed pass; never throws: a failure is logged and the next pass is scheduled all the same. */
  async function tick(): Promise<void> {
    try {
      await runOnce()
    } catch (error) {
      log.error({ err: error }, 'quality pass failed')
    }
    schedule(intervalMs)
  }

  function schedule(delayMs: number): void {
    if (closed) return
    timer = setTimeout(() => {
      timer = undefined
      void tick()
    }, delayMs)
    // The worker alone never keeps the process alive.
    timer.unref()
  }

  // The first pass one interval after start (the backlog waits in the database; startup has enough to do).
  schedule(intervalMs)

  return {
    runOnce,
    async close() {
      closed = true
      if (timer !== undefined) clearTimeout(timer)
      timer = undefined
      await chain
    },
  }
}
