import { SEVERITIES as CORE_SEVERITIES, PROFILES, ROLES, rolePermissions } from '@skolluft/core'
import { MAX_COMMENT_CHARS } from '@skolluft/storage'
import { describe, expect, it } from 'vitest'
import {
  actorLabel,
  BREACH_MANAGER_ROLES,
  COMMENT_MAX_CHARS,
  commentProblem,
  type Incident,
  incidentFrom,
  mayManageBreaches,
  PROFILE_NAMES,
  ruleLabel,
  rulePeriod,
  SEVERITIES,
  severityRank,
  sortIncidents,
  splitIncidents,
} from './breaches.ts'
import { translate } from './i18n.ts'
import type { Lang } from './messages.ts'

const NOW = Date.parse('2026-11-30T12:00:00Z')
const HOUR_MS = 3_600_000
const DAY_MS = 24 * HOUR_MS

function incident(id: string, fields: Partial<Incident> = {}): Incident {
  return {
    id,
    siteId: 'site-a',
    pollutant: 'pm25',
    ruleId: 'who2021-aqg-pm25-day',
    profileId: 'who2021-aqg',
    severity: 'info',
    threshold: 15,
    start: NOW - DAY_MS,
    end: null,
    peak: 30,
    peakAt: NOW - HOUR_MS,
    retrospective: false,
    acknowledged: null,
    ...fields,
  }
}

const ids = (list: readonly Incident[]) => list.map((i) => i.id)

describe('breach facts repeated from core and storage', () => {
  it('ranks the same severities as core, mildest first', () => {
    expect(SEVERITIES).toEqual(CORE_SEVERITIES)
    expect(severityRank('alert')).toBeGreaterThan(severityRank('warning'))
    expect(severityRank('warning')).toBeGreaterThan(severityRank('info'))
    expect(severityRank('something new')).toBeLessThan(severityRank('info'))
  })

  it('lets exactly the roles holding breaches:manage acknowledge and comment', () => {
    const managers = ROLES.filter((role) => rolePermissions(role).includes('breaches:manage'))
    expect([...BREACH_MANAGER_ROLES].sort()).toEqual([...managers].sort())
    for (const role of ROLES) expect(mayManageBreaches(role), role).toBe(managers.includes(role))
    expect(mayManageBreaches(null)).toBe(false)
    expect(mayManageBreaches(undefined)).toBe(false)
  })

  it('has the comment limit of storage', () => {
    expect(COMMENT_MAX_CHARS).toBe(MAX_COMMENT_CHARS)
  })

  it('has a short name for every threshold profile of core', () => {
    for (const profile of PROFILES) expect(PROFILE_NAMES[profile.id], profile.id).toBeDefined()
  })

  it('reads the period from a rule id only where it is the rule period', () => {
    let named = 0
    for (const profile of PROFILES) {
      for (const rule of profile.rules) {
        const period = rulePeriod(rule.id)
        if (period === null) continue
        named += 1
        expect(period, rule.id).toBe(rule.period)
      }
    }
    // Most rules name their period; the thresholds (…-info, …-alert, …-poor) do not.
    expect(named).toBeGreaterThan(40)
  })
})

describe('incidents', () => {
  it('converts the API shape to epoch times', () => {
    const i = incidentFrom({
      id: 'inc_a',
      site: 'site-a',
      pollutant: 'pm10',
      rule: 'eu2008-pm10-day',
      profile: { id: 'eu2008-50', version: '2026-11-30' },
      severity: 'warning',
      threshold: 50,
      start: '2026-11-28T23:00:00.000Z',
      end: null,
      peak: 80,
      peak_at: '2026-11-29T23:00:00.000Z',
      retrospective: true,
      acknowledged: { at: '2026-11-30T08:00:00.000Z', by: 'user:u1' },
    })
    expect(i).toMatchObject({
      siteId: 'site-a',
      ruleId: 'eu2008-pm10-day',
      profileId: 'eu2008-50',
      start: Date.parse('2026-11-28T23:00:00Z'),
      end: null,
      peakAt: Date.parse('2026-11-29T23:00:00Z'),
      retrospective: true,
      acknowledged: { at: Date.parse('2026-11-30T08:00:00Z'), by: 'user:u1' },
    })
  })

  it('sorts by start either way, and by severity with the newest first within one severity', () => {
    const list = [
      incident('inc_1', { start: NOW - 3 * DAY_MS, severity: 'warning' }),
      incident('inc_2', { start: NOW - 1 * DAY_MS, severity: 'info' }),
      incident('inc_3', { start: NOW - 2 * DAY_MS, severity: 'alert' }),
      incident('inc_4', { start: NOW - 1 * DAY_MS, severity: 'warning' }),
    ]
    expect(ids(sortIncidents(list, 'start', 'descending'))).toEqual(['inc_2', 'inc_4', 'inc_3', 'inc_1'])
    expect(ids(sortIncidents(list, 'start', 'ascending'))).toEqual(['inc_1', 'inc_3', 'inc_2', 'inc_4'])
    expect(ids(sortIncidents(list, 'severity', 'descending'))).toEqual(['inc_3', 'inc_4', 'inc_1', 'inc_2'])
    expect(ids(sortIncidents(list, 'severity', 'ascending'))).toEqual(['inc_2', 'inc_4', 'inc_1', 'inc_3'])
    // A copy: the input keeps its order.
    expect(ids(list)).toEqual(['inc_1', 'inc_2', 'inc_3', 'inc_4'])
  })

  it('splits open incidents from those that ended since a time', () => {
    const list = [
      incident('inc_old', { start: NOW - 40 * DAY_MS, end: NOW - 35 * DAY_MS }),
      incident('inc_recent', { start: NOW - 9 * DAY_MS, end: NOW - 8 * DAY_MS }),
      incident('inc_open_long', { start: NOW - 60 * DAY_MS }),
      incident('inc_open', { start: NOW - DAY_MS }),
    ]
    const { open, recent } = splitIncidents(list, NOW - 30 * DAY_MS)
    expect(ids(open)).toEqual(['inc_open', 'inc_open_long'])
    expect(ids(recent)).toEqual(['inc_recent'])
  })

  it('names the rule in words with its value, in both languages', () => {
    const label = (lang: Lang, i: Incident) =>
      ruleLabel(
        (key, params) => translate(lang, key, params),
        i,
        (v) => new Intl.NumberFormat(lang).format(v),
      )
    const day = incident('inc_1', { ruleId: 'eu2008-pm10-day', profileId: 'eu2008-50', threshold: 50 })
    expect(label('sv', day)).toBe('EU 2008/50, dygnsmedel över 50 µg/m³')
    expect(label('en', day)).toBe('EU 2008/50, daily mean above 50 µg/m³')
    const threshold = incident('inc_2', {
      ruleId: 'eu2024-pm25-info',
      profileId: 'eu2024-2881-thresholds',
      threshold: 37.5,
    })
    expect(label('sv', threshold)).toBe('EU 2024/2881, över 37,5 µg/m³')
    const unknown = incident('inc_3', { ruleId: 'local-no2-hour', profileId: 'lund-local', threshold: 80 })
    expect(label('en', unknown)).toBe('lund-local, hourly mean above 80 µg/m³')
  })

  it('names the logged-in user by name and others as the audit log does', () => {
    const me = { id: 'usr_1', name: 'Test Personal' }
    expect(actorLabel('user:usr_1', me)).toBe('Test Personal')
    expect(actorLabel('user:usr_2', me)).toBe('user:usr_2')
    expect(actorLabel('cli', null)).toBe('cli')
  })

  it('refuses blank comments and counts length in characters as the API does', () => {
    expect(commentProblem('')).toBe('empty')
    expect(commentProblem(' \n\t')).toBe('empty')
    expect(commentProblem('Vädrat, fönster öppnade 08:10.')).toBeNull()
    // 2000 emoji are 4000 UTF-16 units but 2000 characters: allowed.
    expect(commentProblem('😀'.repeat(COMMENT_MAX_CHARS))).toBeNull()
    expect(commentProblem('x'.repeat(COMMENT_MAX_CHARS + 1))).toBe('long')
  })
})
