import { randomUUID } from 'node:crypto'
import {
  diffIncidents,
  evaluateIncidents,
  evaluationLookbackMs,
  HOUR_MS,
  type Incident,
  type IncidentEvent,
  liveCutoff,
  METRICS,
  type Metric,
  PROFILES,
  type ProfileSelection,
  periodValues,
  profileValidOn,
  type QualityIssue,
  regulatoryDayStart,
  siteRuleHours,
  type ThresholdProfile,
  type ThresholdRule,
} from '@skolluft/core'
import type { Logger } from '@skolluft/runtime'
import type { IncidentInput, IncidentRecord, NewAlertEvent, Storage } from '@skolluft/storage'
import type { AlertEventData } from './event-data.ts'

/**
 * Re-evaluates one site after new readings: hourly aggregates → quality checks → period values per rule →
 * incidents (core incidents.ts, recomputed over a window) → diff with the stored incidents → ONE storage
 * transaction that saves the incidents and appends the alert events (deduplicated by key, so evaluating the same
 * data twice, or two processes racing, never doubles an alert).
 */

/** A rule the deployment evaluates, with its profile and whether it raises alerts (ProfileSelection). */
export interface ActiveRule {
  readonly profile: ThresholdProfile
  readonly rule: ThresholdRule & { readonly pollutant: Metric }
  readonly alerts: boolean
}

const isMetric = (value: string): value is Metric => (METRICS as readonly string[]).includes(value)

/**
 * Rules of the selected profiles that apply on `day` (ISO date) and concern a pollutant the platform measures
 * (O3 and SO2 index rules are skipped). Annual rules are left out: an annual mean is a report, not an incident.
 */
export function activeRules(
  selection: ProfileSelection,
  day: string,
  profiles: readonly ThresholdProfile[] = PROFILES,
): ActiveRule[] {
  const rules: ActiveRule[] = []
  for (const profile of profiles) {
    if (!selection.evaluate.includes(profile.id) || !profileValidOn(profile, day)) continue
    for (const rule of profile.rules) {
      const { pollutant } = rule
      if (rule.period === 'year' || !isMetric(pollutant)) continue
      rules.push({ profile, rule: { ...rule, pollutant }, alerts: selection.alert.includes(profile.id) })
    }
  }
  return rules
}

/** The metrics one evaluation reads: the rules' pollutants plus what the quality checks need. */
const QC_METRICS: readonly Metric[] = ['pm1', 'pm25', 'pm10', 'no2', 'rh']

/** Most hours read per metric in one evaluation (a year); an incident open longer is evaluated from its last year. */
const MAX_WINDOW_HOURS = 366 * 24
/** Stored incidents of one site read per evaluation. */
const MAX_STORED_INCIDENTS = 1_000
/**
 * Quality issues that are device faults, raised as maintenance events whenever they appear: at most one per site,
 * issue and day (dedupe key). High humidity is weather, not a fault: it becomes a maintenance event only when it
 * held back a breach (`suppressedEvents`), or fog would page the caretaker every autumn night.
 */
const MAINTENANCE_ISSUES: readonly QualityIssue[] = ['stuck', 'out_of_range', 'pm_order']
/** A maintenance event about hours older than this is recorded, not sent (late data about a past fault). */
const MAINTENANCE_LIVE_MS = 3 * HOUR_MS

export interface EvaluationResult {
  readonly events: number
  readonly incidentsSaved: number
}

export interface EvaluatorOptions {
  readonly storage: Pick<Storage, 'readings' | 'breaches' | 'alerts' | 'registry'>
  readonly rules: readonly ActiveRule[]
  readonly log: Logger
  readonly clock: () => number
  readonly newIncidentId?: () => string
}

export interface Evaluator {
  /** Re-evaluates every rule of one site around the hours that changed (hour starts, epoch ms). */
  evaluateSite(siteId: string, changedHours: readonly number[]): Promise<EvaluationResult>
}

export function createEvaluator(options: EvaluatorOptions): Evaluator {
  const { storage, rules, clock } = options
  const log = options.log.child({ module: 'evaluator' })
  const newIncidentId = options.newIncidentId ?? (() => `inc_${randomUUID()}`)

  async function readHours(siteId: string, metric: Metric, from: number, to: number) {
    const points = await storage.readings.aggregateSeries({
      siteId,
      metric,
      every: '1h',
      from,
      to,
      limit: MAX_WINDOW_HOURS,
    })
    return points.map((p) => ({ ...p, t: Date.parse(p.t) }))
  }

  return {
    async evaluateSite(siteId, changedHours) {
      if (changedHours.length === 0 || rules.length === 0) return { events: 0, incidentsSaved: 0 }
      const now = clock()
      const site = await storage.registry.getSite(siteId)
      if (site === undefined) return { events: 0, incidentsSaved: 0 }
      const firstChanged = Math.min(...changedHours)
      const to = Math.floor(now / HOUR_MS) * HOUR_MS + HOUR_MS

      // The window: far enough back for every rule's persistence, and back to the start of any stored incident
      // that overlaps it (repeated, because an earlier start can bring in an earlier incident).
      let from = Math.max(
        to - MAX_WINDOW_HOURS * HOUR_MS,
        regulatoryDayStart(
          firstChanged - Math.max(...rules.map((r) => evaluationLookbackMs(r.rule.period, r.rule.persistence))),
        ),
      )
      let stored: IncidentRecord[] = []
      for (let i = 0; i < 4; i++) {
        stored = await storage.breaches.listIncidents({ siteId, from, to, limit: MAX_STORED_INCIDENTS })
        const earliest = Math.min(from, ...stored.map((s) => regulatoryDayStart(s.start)))
        if (earliest >= from) break
        from = Math.max(earliest, to - MAX_WINDOW_HOURS * HOUR_MS)
      }

      const series = new Map<Metric, Awaited<ReturnType<typeof readHours>>>()
      for (const metric of new Set<Metric>([...QC_METRICS, ...rules.map((r) => r.rule.pollutant)])) {
        series.set(metric, await readHours(siteId, metric, from, to))
      }
      const { hours: ruleHours, issues } = siteRuleHours(Object.fromEntries(series))

      const saves: IncidentInput[] = []
      const withdrawals: { id: string; at: number }[] = []
      const events: NewAlertEvent[] = []
      for (const active of rules) {
        const { rule, profile } = active
        const metricIssues = issues.get(rule.pollutant)
        // Hours before the profile took effect (its validFrom, a UTC+1 calendar day) are not judged by it: the
        // first evaluation under a new edition (EU 2024/2881 on 2030-01-01) must not open incidents for the days
        // before, which the lookback window reaches into.
        const validFrom =
          profile.validFrom === null ? Number.NEGATIVE_INFINITY : regulatoryDayStart(Date.parse(profile.validFrom))
        const hours = (ruleHours.get(rule.pollutant) ?? []).filter((h) => h.t >= validFrom)
        const history = periodValues(hours, rule.period, now)
        const after = evaluateIncidents(history, rule)
        // Incidents of an earlier profile version (a deploy bumped PROFILES_VERSION) are matched too and keep the
        // version that opened them: ignoring them would leave an open one open forever, make every later opening
        // of this rule at this site a CONFLICT (one open incident per site and rule) that fails the whole
        // evaluation, and duplicate the closed ones in the window as new retrospective incidents.
        const mine = stored.filter((s) => s.ruleId === rule.id && s.withdrawnAt === null)
        const records = new Map<Incident, IncidentRecord>(mine.map((record) => [asIncident(record), record]))
        const diff = diffIncidents([...records.keys()], after, { liveCutoff: liveCutoff(now, rule.period) })
        const last = history.findLast((v) => v.value !== null)
        const latest = last?.value == null ? null : { t: last.t, value: last.value }
        collect(diff, records, active, siteId, site.name, latest, now, { saves, withdrawals, events }, newIncidentId)
        // Reference §5.2: "suppress alerts when the sensor's QC state is suspect … and instead raise a maintenance
        // ticket". The same rule on the data with the suspect hours kept shows which incidents the checks held back.
        if (metricIssues !== undefined && metricIssues.size > 0) {
          const unchecked = evaluateIncidents(
            periodValues(
              hours.map((h) => ({ ...h, suspect: false })),
              rule.period,
              now,
            ),
            rule,
          )
          events.push(...suppressedEvents(unchecked, after, metricIssues, active, siteId, site.name, changedHours, now))
        }
      }
      events.push(...maintenanceEvents(siteId, site.name, issues, changedHours, now))

      if (saves.length === 0 && withdrawals.length === 0 && events.length === 0) return { events: 0, incidentsSaved: 0 }
      const result = await storage.alerts.commitEvaluation({ incidents: saves, withdrawals, events, now })
      if (result.eventsInserted > 0) {
        log.info(
          { siteId, incidents: saves.length, events: result.eventsInserted },
          'breach evaluation changed incidents',
        )
      }
      return { events: result.eventsInserted, incidentsSaved: result.incidents.length }
    },
  }
}

function asIncident(record: IncidentRecord): Incident {
  return {
    ruleId: record.ruleId,
    start: record.start,
    openedAt: record.openedAt,
    end: record.end,
    closedAt: record.closedAt,
    peak: record.peak,
    peakAt: record.peakAt,
    escalations: record.escalations,
  }
}

interface Changes {
  readonly saves: IncidentInput[]
  readonly withdrawals: { id: string; at: number }[]
  readonly events: NewAlertEvent[]
}

/** Turns the diff of one rule into incident saves, withdrawals and alert events. */
function collect(
  diff: readonly IncidentEvent[],
  records: ReadonlyMap<Incident, IncidentRecord>,
  active: ActiveRule,
  siteId: string,
  siteName: string,
  latest: { t: number; value: number } | null,
  now: number,
  changes: Changes,
  newIncidentId: () => string,
): void {
  const { rule, profile } = active
  // One save per incident however many events it has; new incidents get their id here so events can name it.
  const saved = new Map<Incident, IncidentInput>()
  const idOf = new Map<Incident, string>()
  const retrospectiveOf = new Map<Incident, boolean>()
  // A new incident is as live as its opening: an escalation passed during the persistence run is dated before
  // openedAt (so before the live cutoff) and comes first in the diff, but must not make the incident retrospective.
  for (const event of diff) if (event.type === 'opened') retrospectiveOf.set(event.incident, event.retrospective)

  for (const event of diff) {
    const record = event.previous === undefined ? undefined : records.get(event.previous)
    if (event.type === 'withdrawn') {
      const withdrawn = records.get(event.incident)
      if (withdrawn === undefined) continue
      changes.withdrawals.push({ id: withdrawn.id, at: now })
      changes.events.push(
        breachEvent('withdrawn', withdrawn.id, event, active, siteId, siteName, latest, withdrawn.retrospective, false),
      )
      continue
    }
    let id = idOf.get(event.incident) ?? record?.id
    if (id === undefined) id = newIncidentId()
    idOf.set(event.incident, id)
    // An incident first seen retrospectively stays retrospective: its later close is not news to anyone.
    const retrospective = retrospectiveOf.get(event.incident) ?? record?.retrospective ?? event.retrospective
    retrospectiveOf.set(event.incident, retrospective)
    saved.set(event.incident, {
      id,
      siteId,
      pollutant: rule.pollutant,
      ruleId: rule.id,
      profileId: profile.id,
      profileVersion: record?.profileVersion ?? profile.version,
      severity: rule.severity,
      threshold: rule.value,
      start: event.incident.start,
      end: event.incident.end,
      openedAt: event.incident.openedAt,
      closedAt: event.incident.closedAt,
      peak: event.incident.peak,
      peakAt: event.incident.peakAt,
      escalations: event.incident.escalations,
      retrospective,
      updatedAt: now,
    })
    // Changes are recorded, never sent: a moved start or peak is not news. Live events of alerting profiles only.
    const live = active.alerts && !event.retrospective && !retrospective && event.type !== 'changed'
    changes.events.push(breachEvent(event.type, id, event, active, siteId, siteName, latest, retrospective, live))
  }
  changes.saves.push(...saved.values())
}

function breachEvent(
  type: IncidentEvent['type'],
  incidentId: string,
  event: IncidentEvent,
  active: ActiveRule,
  siteId: string,
  siteName: string,
  latest: { t: number; value: number } | null,
  retrospective: boolean,
  live: boolean,
): NewAlertEvent {
  const { rule, profile } = active
  const { incident } = event
  const topLevel = rule.escalateAt.at(-1)
  // Quiet hours yield only for the highest level: an 'alert' rule, or the last escalation step (issue 4).
  const urgent =
    (type === 'opened' && (rule.severity === 'alert' || (topLevel !== undefined && incident.peak > topLevel))) ||
    (type === 'escalated' && (rule.severity === 'alert' || event.level === topLevel))
  const key =
    type === 'escalated'
      ? `${incidentId}:escalated:${event.level}`
      : type === 'closed'
        ? `${incidentId}:closed:${incident.closedAt}`
        : type === 'changed'
          ? `${incidentId}:changed:${event.at}:${incident.peak}:${incident.end}`
          : `${incidentId}:${type}`
  // The template input (core AlertMessageData) for the kinds that can be sent; 'changed' and 'withdrawn' are only
  // recorded, with the same fields under their own kind.
  const data = {
    kind: type,
    siteId,
    siteName,
    pollutant: rule.pollutant,
    ruleId: rule.id,
    profileName: profile.name,
    legal: profile.legal,
    period: rule.period,
    threshold: rule.value,
    severity: rule.severity,
    start: incident.start,
    peak: incident.peak,
    peakAt: incident.peakAt,
    ...(incident.end === null ? {} : { end: incident.end }),
    ...(event.level === undefined ? {} : { level: event.level }),
    ...(latest === null ? {} : { value: latest.value, valueAt: latest.t }),
    profileId: profile.id,
    profileVersion: profile.version,
    retrospective,
  }
  return {
    key,
    kind: type,
    topic: 'breaches',
    siteId,
    deviceId: null,
    incidentId,
    severity: rule.severity,
    urgent,
    live,
    at: event.at,
    data,
  }
}

/**
 * Quality problems in the hours that changed become maintenance events for caretakers (topic device-health),
 * at most one per site, issue and UTC+1 day. Breach subscribers never get them (subscriptions.ts).
 */
function maintenanceEvents(
  siteId: string,
  siteName: string,
  issues: ReadonlyMap<Metric, ReadonlyMap<number, readonly QualityIssue[]>>,
  changedHours: readonly number[],
  now: number,
): NewAlertEvent[] {
  const changed = new Set(changedHours)
  const found = new Map<string, { issue: QualityIssue; metric: Metric; at: number }>()
  for (const [metric, byHour] of issues) {
    for (const [t, list] of byHour) {
      if (!changed.has(t)) continue
      for (const issue of list) {
        if (!MAINTENANCE_ISSUES.includes(issue)) continue
        const key = `${siteId}:quality:${issue}:${regulatoryDayStart(t)}`
        const seen = found.get(key)
        if (seen === undefined || t < seen.at) found.set(key, { issue, metric, at: t })
      }
    }
  }
  return [...found].map(([key, { issue, metric, at }]) => ({
    key,
    kind: 'device-quality',
    topic: 'device-health',
    siteId,
    deviceId: null,
    incidentId: null,
    severity: 'warning',
    urgent: false,
    live: at >= now - MAINTENANCE_LIVE_MS,
    at,
    data: {
      kind: 'device-quality',
      siteId,
      siteName,
      pollutant: metric,
      issue,
      since: at,
      severity: 'warning',
    } satisfies AlertEventData,
  }))
}

/**
 * Incidents that the rule opens on the unchecked data (suspect hours kept) where the checked data has none: a
 * breach the quality checks held back. Each becomes one maintenance event for caretakers naming the issue that
 * covered most of its hours, so a sensor reading high in fog is looked at instead of alarming a school.
 */
function suppressedEvents(
  unchecked: readonly Incident[],
  checked: readonly Incident[],
  issues: ReadonlyMap<number, readonly QualityIssue[]>,
  active: ActiveRule,
  siteId: string,
  siteName: string,
  changedHours: readonly number[],
  now: number,
): NewAlertEvent[] {
  const { rule } = active
  const firstChanged = Math.min(...changedHours)
  const events: NewAlertEvent[] = []
  for (const incident of unchecked) {
    // Only what this evaluation's new data completed; older ones were judged when their data came.
    if (incident.openedAt + HOUR_MS < firstChanged) continue
    const end = incident.end ?? Number.POSITIVE_INFINITY
    if (checked.some((c) => c.start < end && incident.start < (c.end ?? Number.POSITIVE_INFINITY))) continue
    const counts = new Map<QualityIssue, number>()
    for (const [t, list] of issues) {
      if (t < incident.start || t >= end) continue
      for (const issue of list) counts.set(issue, (counts.get(issue) ?? 0) + 1)
    }
    const issue = [...counts].sort((a, b) => b[1] - a[1])[0]?.[0]
    // Device faults are reported on their own (maintenanceEvents); one message per fault is enough.
    if (issue === undefined || MAINTENANCE_ISSUES.includes(issue)) continue
    events.push({
      key: `${siteId}:suppressed:${issue}:${incident.start}`,
      kind: 'device-quality',
      topic: 'device-health',
      siteId,
      deviceId: null,
      incidentId: null,
      severity: 'warning',
      urgent: false,
      live: incident.openedAt >= liveCutoff(now, rule.period),
      at: incident.openedAt,
      data: {
        kind: 'device-quality',
        siteId,
        siteName,
        pollutant: rule.pollutant,
        issue,
        since: incident.start,
        severity: 'warning',
      } satisfies AlertEventData,
    })
  }
  return events
}
