import type { MessageKey } from './messages.ts'
import type { BreachData } from './schemas.ts'

/**
 * Breach incidents as the page uses them, free of the DOM so they can be tested in Node: times as epoch
 * ms, severity ranked, a readable rule label, who may acknowledge and comment. Core's thresholds.ts and
 * access.ts hold the truth but build zod schemas at load, which would pull the full zod into the bundle;
 * the few facts needed here are repeated and breaches.test.ts checks that they agree with core.
 */

/** Core SEVERITIES, mildest first (thresholds.ts). */
export const SEVERITIES = ['info', 'warning', 'alert'] as const
export type Severity = (typeof SEVERITIES)[number]

/** Roles holding breaches:manage (core access.ts ROLE_PERMISSIONS); a session has all its role's permissions. */
export const BREACH_MANAGER_ROLES: readonly string[] = ['admin', 'staff']

/** Longest comment in characters (code points), as storage's MAX_COMMENT_CHARS (the API answers 400 above it). */
export const COMMENT_MAX_CHARS = 2000

/** The panel shows open incidents and those that ended within this many days (issue 4: "open and recent"). */
export const RECENT_DAYS = 30
/** At most this many incidents of one site are fetched for the panel; a site has a handful a month. */
export const PANEL_BREACHES_LIMIT = 50
/** The breaches view asks for this many open incidents, the API's cap (api/src/routes/breaches.ts). */
export const OPEN_BREACHES_LIMIT = 1000

/**
 * Short names of core's threshold profiles (thresholds.ts PROFILES), the same in both languages (they are
 * names of documents). An unknown profile shows its id.
 */
export const PROFILE_NAMES: Readonly<Record<string, string>> = {
  'who2021-aqg': 'WHO 2021 AQG',
  'who2021-it1': 'WHO 2021 IT-1',
  'who2021-it2': 'WHO 2021 IT-2',
  'who2021-it3': 'WHO 2021 IT-3',
  'who2021-it4': 'WHO 2021 IT-4',
  'eu2008-50': 'EU 2008/50',
  'eu2024-2881': 'EU 2024/2881',
  'eu2024-2881-thresholds': 'EU 2024/2881',
  'se-mkn': 'MKN',
  'se-frisk-luft': 'Frisk luft',
  'eea-index': 'EEA EAQI',
}

export interface Incident {
  readonly id: string
  readonly siteId: string
  readonly pollutant: string
  readonly ruleId: string
  readonly profileId: string
  readonly severity: string
  /** µg/m³ */
  readonly threshold: number
  /** Epoch ms. */
  readonly start: number
  /** Epoch ms; null while open. */
  readonly end: number | null
  readonly peak: number
  readonly peakAt: number
  readonly retrospective: boolean
  /** null until acknowledged; `by` is null when the caller may not know who (anonymous). */
  readonly acknowledged: { readonly at: number; readonly by: string | null } | null
}

export function incidentFrom(b: BreachData): Incident {
  return {
    id: b.id,
    siteId: b.site,
    pollutant: b.pollutant,
    ruleId: b.rule,
    profileId: b.profile.id,
    severity: b.severity,
    threshold: b.threshold,
    start: Date.parse(b.start),
    end: b.end === null ? null : Date.parse(b.end),
    peak: b.peak,
    peakAt: Date.parse(b.peak_at),
    retrospective: b.retrospective === true,
    acknowledged: b.acknowledged === null ? null : { at: Date.parse(b.acknowledged.at), by: b.acknowledged.by },
  }
}

export function isSeverity(value: string): value is Severity {
  return (SEVERITIES as readonly string[]).includes(value)
}

const SEVERITY_RANKS: ReadonlyMap<string, number> = new Map(SEVERITIES.map((s, i) => [s, i]))

/** Higher is more severe; an unknown severity ranks below info. */
export function severityRank(severity: string): number {
  return SEVERITY_RANKS.get(severity) ?? -1
}

export function severityKey(severity: string): MessageKey | null {
  return isSeverity(severity) ? `severity_${severity}` : null
}

export const INCIDENT_SORT_KEYS = ['start', 'severity'] as const
export type IncidentSortKey = (typeof INCIDENT_SORT_KEYS)[number]
export type IncidentSortDir = 'ascending' | 'descending'

/**
 * Sorted copy. By start; or by severity, ties newest start first (in both directions: within one severity
 * the newest is what needs a look). Last ties by id, so the order is stable across refreshes.
 */
export function sortIncidents(incidents: readonly Incident[], key: IncidentSortKey, dir: IncidentSortDir): Incident[] {
  const sign = dir === 'ascending' ? 1 : -1
  return [...incidents].sort((a, b) => {
    if (key === 'severity') {
      const c = severityRank(a.severity) - severityRank(b.severity)
      if (c !== 0) return sign * c
      if (a.start !== b.start) return b.start - a.start
    } else if (a.start !== b.start) {
      return sign * (a.start - b.start)
    }
    return a.id < b.id ? -1 : a.id > b.id ? 1 : 0
  })
}

/** Open incidents (newest first), and those that ended at or after `since` (newest first). */
export function splitIncidents(
  incidents: readonly Incident[],
  since: number,
): { open: Incident[]; recent: Incident[] } {
  const newest = sortIncidents(incidents, 'start', 'descending')
  return {
    open: newest.filter((i) => i.end === null),
    recent: newest.filter((i) => i.end !== null && i.end >= since),
  }
}

/** The averaging period a rule id names by its suffix (`eu2008-pm10-day`, `se-mkn-no2-hour-200`), or null. */
export function rulePeriod(ruleId: string): 'hour' | 'day' | 'year' | null {
  const match = /-(hour|day|year)(?:-\d+)?$/.exec(ruleId)
  const period = match?.[1]
  return period === 'hour' || period === 'day' || period === 'year' ? period : null
}

export function profileName(profileId: string): string {
  return PROFILE_NAMES[profileId] ?? profileId
}

/** "EU 2008/50, dygnsmedel över 50 µg/m³": which rule, in words, with its value. */
export function ruleLabel(
  t: (key: MessageKey, params?: Readonly<Record<string, string | number>>) => string,
  incident: Pick<Incident, 'ruleId' | 'profileId' | 'threshold'>,
  formatValue: (value: number) => string,
): string {
  const period = rulePeriod(incident.ruleId)
  const params = { profile: profileName(incident.profileId), value: formatValue(incident.threshold) }
  return period === null
    ? t('ruleLabelNoPeriod', params)
    : t('ruleLabel', { ...params, period: t(`periodMean_${period}`) })
}

export function mayManageBreaches(role: string | null | undefined): boolean {
  return role !== null && role !== undefined && BREACH_MANAGER_ROLES.includes(role)
}

/**
 * Who did it, for people: the API names actors as in the audit log (`user:<id>`, `token:<id>`, `cli`);
 * the logged-in user's own actions show their name.
 */
export function actorLabel(actor: string, me: { readonly id: string; readonly name: string } | null): string {
  if (me !== null && actor === `user:${me.id}`) return me.name
  return actor
}

/** Characters as the API counts them (code points), so an emoji counts once. */
export function commentLength(text: string): number {
  return [...text].length
}

/** Why a comment cannot be sent, or null when it can. */
export function commentProblem(text: string): 'empty' | 'long' | null {
  if (text.trim() === '') return 'empty'
  if (commentLength(text) > COMMENT_MAX_CHARS) return 'long'
  return null
}
