import { DAY_MS, HOUR_MS, REGULATORY_DAY_OFFSET_MS } from './aggregation.ts'
import type { ThresholdPeriod, ThresholdRule } from './thresholds.ts'

/**
 * The incident state machine for ONE (site, pollutant, rule), pure. Input is the ordered history of valid
 * aggregates for the rule's period (aggregation.ts decides validity; suspect data is excluded upstream);
 * output is the list of incidents. Late data is handled by recomputation: the caller evaluates the affected
 * window again and diffs the two incident lists (`diffIncidents`), which marks events older than the live
 * cutoff as retrospective so they are recorded but not sent as live.
 *
 * Semantics (issue 4, air-quality reference §3 and §5):
 * - Breach: a valid value strictly greater than `rule.value` (§3 "not exceeded more than N times").
 * - Open: after `rule.persistence` consecutive valid breaching periods. `start` is the first period of that
 *   run, `openedAt` the period that completed it. A valid value at or below `rule.value` resets the run.
 * - Close (hysteresis): after `rule.clearAfter` consecutive valid periods at or below `rule.clearValue`.
 *   `end` is the first of those periods, `closedAt` the one that completed them. A value above the clear level
 *   (even one below `rule.value`) resets the clear count, so a value hovering around the limit is ONE incident.
 * - Gaps (null, or a period missing from the history) are not evidence either way: they neither open nor close
 *   and pause both counts. A device that goes silent mid-incident leaves the incident open; the silence is a
 *   device-health matter, not "back to normal".
 * - Peak: the highest value from `start` to the close (the first of equal values wins).
 * - Escalation: each level in `rule.escalateAt` is recorded once per incident, when a value first exceeds it
 *   (levels passed during the persistence run are recorded with their own time when the incident opens).
 */

/** One aggregate period: `t` = period start (epoch ms); `value` = valid mean (µg/m³) or null when not valid. */
export interface PeriodValue {
  readonly t: number
  readonly value: number | null
}

export interface Escalation {
  /** The `escalateAt` level that was exceeded (µg/m³). */
  readonly level: number
  /** Start of the period whose value first exceeded it. */
  readonly at: number
  readonly value: number
}

export interface Incident {
  readonly ruleId: string
  /** First period of the breaching run. */
  readonly start: number
  /** Period that completed the persistence condition (the incident is known from the end of this period). */
  readonly openedAt: number
  /** First period of the clearing run; null while open. */
  readonly end: number | null
  /** Period that completed the clearing run; null while open. */
  readonly closedAt: number | null
  readonly peak: number
  readonly peakAt: number
  readonly escalations: readonly Escalation[]
}

export class IncidentError extends Error {
  readonly code: 'UNORDERED_HISTORY' | 'INVALID_VALUE' | 'NOT_COUNTABLE'
  constructor(code: IncidentError['code'], message: string) {
    super(message)
    this.name = 'IncidentError'
    this.code = code
  }
}

type IncidentRule = Pick<
  ThresholdRule,
  'id' | 'value' | 'clearValue' | 'clearAfter' | 'persistence' | 'escalateAt' | 'period' | 'allowedPerYear'
>

interface Open {
  start: number
  openedAt: number
  peak: number
  peakAt: number
  escalations: Escalation[]
  /** Consecutive valid periods at or below the clear level, and the first of them. */
  clearCount: number
  clearStart: number
}

function escalate(rule: IncidentRule, escalations: Escalation[], t: number, value: number): void {
  for (const level of rule.escalateAt) {
    if (value > level && !escalations.some((e) => e.level === level)) escalations.push({ level, at: t, value })
  }
}

/** Evaluates one rule over a full, time-ordered history. At most the last incident is open. */
export function evaluateIncidents(history: readonly PeriodValue[], rule: IncidentRule): Incident[] {
  const incidents: Incident[] = []
  // The current breaching run while no incident is open.
  let run: { start: number; count: number; peak: number; peakAt: number; escalations: Escalation[] } | null = null
  let open: Open | null = null
  let previousT = Number.NEGATIVE_INFINITY

  for (const { t, value } of history) {
    if (!(t > previousT)) {
      throw new IncidentError('UNORDERED_HISTORY', `history must be strictly ordered by time (${t} after ${previousT})`)
    }
    previousT = t
    if (value === null) continue
    if (!Number.isFinite(value)) throw new IncidentError('INVALID_VALUE', `value at ${t} is not a finite number`)

    if (open === null) {
      if (value <= rule.value) {
        run = null
        continue
      }
      if (run === null) run = { start: t, count: 0, peak: value, peakAt: t, escalations: [] }
      run.count += 1
      if (value > run.peak) {
        run.peak = value
        run.peakAt = t
      }
      escalate(rule, run.escalations, t, value)
      if (run.count >= rule.persistence) {
        const { start, peak, peakAt, escalations } = run
        open = { start, openedAt: t, peak, peakAt, escalations, clearCount: 0, clearStart: t }
        run = null
      }
      continue
    }

    if (value <= rule.clearValue) {
      if (open.clearCount === 0) open.clearStart = t
      open.clearCount += 1
      if (open.clearCount >= rule.clearAfter) {
        incidents.push(freeze(rule, open, open.clearStart, t))
        open = null
      }
      continue
    }
    open.clearCount = 0
    if (value > open.peak) {
      open.peak = value
      open.peakAt = t
    }
    escalate(rule, open.escalations, t, value)
  }
  if (open !== null) incidents.push(freeze(rule, open, null, null))
  return incidents
}

function freeze(rule: IncidentRule, open: Open, end: number | null, closedAt: number | null): Incident {
  return {
    ruleId: rule.id,
    start: open.start,
    openedAt: open.openedAt,
    end,
    closedAt,
    peak: open.peak,
    peakAt: open.peakAt,
    escalations: [...open.escalations],
  }
}

export const INCIDENT_EVENT_TYPES = ['opened', 'escalated', 'closed', 'changed', 'withdrawn'] as const
export type IncidentEventType = (typeof INCIDENT_EVENT_TYPES)[number]

export interface IncidentEvent {
  readonly type: IncidentEventType
  /** When the event happened in data time (period start): openedAt, escalation.at, closedAt, or the earliest change. */
  readonly at: number
  /** The incident after the change; for 'withdrawn', the incident that no longer exists. */
  readonly incident: Incident
  /** The incident before the change ('changed', 'escalated' and 'closed' of a known incident). */
  readonly previous?: Incident
  /** The level for 'escalated'. */
  readonly level?: number
  /** True when `at` is older than the live cutoff: record it, do not send it as a live alert. */
  readonly retrospective: boolean
}

export interface DiffOptions {
  /** Epoch ms; events whose time is before it are retrospective (e.g. now − 2 periods, see liveCutoff). */
  readonly liveCutoff: number
}

const overlaps = (a: Incident, b: Incident): boolean =>
  a.start < (b.end ?? Number.POSITIVE_INFINITY) && b.start < (a.end ?? Number.POSITIVE_INFINITY)

/**
 * Events that turn the incidents `before` (as stored) into `after` (recomputed, e.g. after late data).
 * An incident of `after` is matched with the earliest unmatched incident of `before` that overlaps it in time.
 * - 'opened': an `after` incident with no match (plus its escalations and, if already over, its close).
 * - 'escalated': a level reached in `after` that its match had not reached.
 * - 'closed': the match was open and the `after` incident is closed.
 * - 'changed': start, openedAt, peak, end or an escalation time differ in another way; `at` is the earliest
 *   differing time, except a new peak, which counts at its own time (a live new peak is a live change).
 * - 'withdrawn': a `before` incident with no match (late data filled a gap with low values, or two
 *   incidents merged into one). Not in the brief's four types, but without it a stored incident could never go.
 * Events are ordered by time, then by type order above.
 */
export function diffIncidents(
  before: readonly Incident[],
  after: readonly Incident[],
  options: DiffOptions,
): IncidentEvent[] {
  const events: Omit<IncidentEvent, 'retrospective'>[] = []
  const matched = new Set<Incident>()

  for (const incident of after) {
    const previous = before.find((b) => !matched.has(b) && overlaps(b, incident))
    if (previous === undefined) {
      events.push({ type: 'opened', at: incident.openedAt, incident })
      for (const e of incident.escalations) events.push({ type: 'escalated', at: e.at, incident, level: e.level })
      if (incident.closedAt !== null) events.push({ type: 'closed', at: incident.closedAt, incident })
      continue
    }
    matched.add(previous)
    for (const e of incident.escalations) {
      if (!previous.escalations.some((p) => p.level === e.level)) {
        events.push({ type: 'escalated', at: e.at, incident, previous, level: e.level })
      }
    }
    if (previous.closedAt === null && incident.closedAt !== null) {
      events.push({ type: 'closed', at: incident.closedAt, incident, previous })
    }
    const changedAt = changeTime(previous, incident)
    if (changedAt !== null) events.push({ type: 'changed', at: changedAt, incident, previous })
  }
  for (const incident of before) {
    if (!matched.has(incident)) events.push({ type: 'withdrawn', at: incident.start, incident })
  }

  const order = (type: IncidentEventType): number => INCIDENT_EVENT_TYPES.indexOf(type)
  return events
    .map((e) => ({ ...e, retrospective: e.at < options.liveCutoff }))
    .sort((a, b) => a.at - b.at || order(a.type) - order(b.type))
}

/** Earliest data time at which two versions of one incident differ, beyond a close or a new escalation. */
function changeTime(b: Incident, a: Incident): number | null {
  const times: number[] = []
  if (a.start !== b.start) times.push(Math.min(a.start, b.start))
  if (a.openedAt !== b.openedAt) times.push(Math.min(a.openedAt, b.openedAt))
  if (a.peak !== b.peak || a.peakAt !== b.peakAt) times.push(a.peakAt)
  // A close of an open incident is the 'closed' event; a moved close or a re-opened incident is a change.
  if (b.end !== null && (a.end !== b.end || a.closedAt !== b.closedAt)) {
    times.push(Math.min(b.end, a.end ?? b.end))
  }
  for (const p of b.escalations) {
    const e = a.escalations.find((x) => x.level === p.level)
    if (e === undefined || e.at !== p.at || e.value !== p.value) times.push(Math.min(p.at, e?.at ?? p.at))
  }
  return times.length > 0 ? Math.min(...times) : null
}

/** Length of one period in ms (a running 24-h mean steps hourly; a year is taken as 365 days here). */
export function periodMs(period: ThresholdPeriod): number {
  switch (period) {
    case 'hour':
    case 'running24h':
      return HOUR_MS
    case 'day':
      return DAY_MS
    case 'year':
      return 365 * DAY_MS
  }
}

/**
 * Live cutoff for `diffIncidents`: `now` minus two periods. A period's value exists only after the period ends,
 * so the newest complete period starts one period ago; one more period of slack absorbs normal delivery delay.
 */
export function liveCutoff(now: number, period: ThresholdPeriod): number {
  return now - 2 * periodMs(period)
}

/** Minimum annual data coverage before a count or mean is more than indicative (2024/2881 Annex V, reference §3). */
export const ANNUAL_MIN_COVERAGE = 0.85

export interface ExceedanceCount {
  /** Valid periods in the year whose value is strictly greater than the rule's value. */
  readonly count: number
  readonly allowed: number | null
  /** `count` above `allowed` (above zero when nothing is allowed). Can only rise as gaps are filled (§3). */
  readonly exceeded: boolean
  readonly validPeriods: number
  readonly expectedPeriods: number
  /** validPeriods / expectedPeriods, 0–1. */
  readonly coverage: number
  /** coverage ≥ 85 %; below it the year is "indicative" (reference §3). */
  readonly sufficientCoverage: boolean
}

/** Start (epoch ms) of a calendar year in fixed UTC+1, the regulatory time basis of aggregation.ts. */
export function regulatoryYearStart(year: number): number {
  return Date.UTC(year, 0, 1) - REGULATORY_DAY_OFFSET_MS
}

/**
 * Exceedances of one rule in one calendar year (UTC+1: the year starts at 23:00 UTC on 31 December, like the
 * regulatory days of aggregation.ts). `values` are period values as for `evaluateIncidents` (any order; a repeated
 * period counts once, its last value wins); periods outside the year are ignored. Every period is counted,
 * persistence and hysteresis do not apply: they govern incidents, not the legal count.
 * Running 24-h means are for display only, never for exceedance counting (reference §3): refused.
 */
export function exceedances(
  values: readonly PeriodValue[],
  rule: Pick<ThresholdRule, 'period' | 'value' | 'allowedPerYear'>,
  year: number,
): ExceedanceCount {
  if (rule.period === 'running24h') {
    throw new IncidentError('NOT_COUNTABLE', 'running 24-h means are not used for exceedance counts (reference §3)')
  }
  const from = regulatoryYearStart(year)
  const to = regulatoryYearStart(year + 1)
  const expectedPeriods = rule.period === 'year' ? 1 : (to - from) / periodMs(rule.period)
  const inYear = new Map<number, number | null>()
  for (const { t, value } of values) {
    if (t >= from && t < to) inYear.set(t, value)
  }
  let count = 0
  let validPeriods = 0
  for (const value of inYear.values()) {
    if (value === null) continue
    if (!Number.isFinite(value)) throw new IncidentError('INVALID_VALUE', 'exceedance values must be finite')
    validPeriods += 1
    if (value > rule.value) count += 1
  }
  const coverage = Math.min(1, validPeriods / expectedPeriods)
  return {
    count,
    allowed: rule.allowedPerYear,
    exceeded: count > (rule.allowedPerYear ?? 0),
    validPeriods,
    expectedPeriods,
    coverage,
    sufficientCoverage: coverage >= ANNUAL_MIN_COVERAGE,
  }
}
