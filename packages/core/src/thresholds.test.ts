import { describe, expect, it } from 'vitest'
import {
  PROFILES,
  ProfileSelection,
  profileById,
  profileSelectionSchema,
  profileValidOn,
  ThresholdProfile,
  type ThresholdRule,
} from './thresholds.ts'

/**
 * Air-quality reference §1.1–1.5 and §2.1, transcribed by hand (µg/m³):
 * [profile, pollutant, period, value, allowed per year, persistence, severity, unverified?]
 */
type Row = readonly [string, string, string, number, number | null, number, string, boolean]
const REFERENCE: readonly Row[] = [
  // §1.1 WHO 2021 AQG (+ the 2005 1-h NO2 guideline, UNVERIFIED there); daily: 99th percentile = 3–4 days, 3 used.
  ['who2021-aqg', 'pm25', 'year', 5, null, 1, 'info', false],
  ['who2021-aqg', 'pm25', 'day', 15, 3, 1, 'info', false],
  ['who2021-aqg', 'pm10', 'year', 15, null, 1, 'info', false],
  ['who2021-aqg', 'pm10', 'day', 45, 3, 1, 'info', false],
  ['who2021-aqg', 'no2', 'year', 10, null, 1, 'info', false],
  ['who2021-aqg', 'no2', 'day', 25, 3, 1, 'info', false],
  ['who2021-aqg', 'no2', 'hour', 200, null, 1, 'info', true],
  // §1.1 interim targets IT-1 … IT-4 ("–" cells have no rule)
  ['who2021-it1', 'pm25', 'year', 35, null, 1, 'info', false],
  ['who2021-it1', 'pm25', 'day', 75, 3, 1, 'info', false],
  ['who2021-it1', 'pm10', 'year', 70, null, 1, 'info', false],
  ['who2021-it1', 'pm10', 'day', 150, 3, 1, 'info', false],
  ['who2021-it1', 'no2', 'year', 40, null, 1, 'info', false],
  ['who2021-it1', 'no2', 'day', 120, 3, 1, 'info', false],
  ['who2021-it2', 'pm25', 'year', 25, null, 1, 'info', false],
  ['who2021-it2', 'pm25', 'day', 50, 3, 1, 'info', false],
  ['who2021-it2', 'pm10', 'year', 50, null, 1, 'info', false],
  ['who2021-it2', 'pm10', 'day', 100, 3, 1, 'info', false],
  ['who2021-it2', 'no2', 'year', 30, null, 1, 'info', false],
  ['who2021-it2', 'no2', 'day', 50, 3, 1, 'info', false],
  ['who2021-it3', 'pm25', 'year', 15, null, 1, 'info', false],
  ['who2021-it3', 'pm25', 'day', 37.5, 3, 1, 'info', false],
  ['who2021-it3', 'pm10', 'year', 30, null, 1, 'info', false],
  ['who2021-it3', 'pm10', 'day', 75, 3, 1, 'info', false],
  ['who2021-it3', 'no2', 'year', 20, null, 1, 'info', false],
  ['who2021-it4', 'pm25', 'year', 10, null, 1, 'info', false],
  ['who2021-it4', 'pm25', 'day', 25, 3, 1, 'info', false],
  ['who2021-it4', 'pm10', 'year', 20, null, 1, 'info', false],
  ['who2021-it4', 'pm10', 'day', 50, 3, 1, 'info', false],
  // §1.2 EU 2008/50/EC (O3 not measured)
  ['eu2008-50', 'pm10', 'day', 50, 35, 1, 'warning', false],
  ['eu2008-50', 'pm10', 'year', 40, null, 1, 'info', false],
  ['eu2008-50', 'pm25', 'year', 25, null, 1, 'info', false],
  ['eu2008-50', 'no2', 'hour', 200, 18, 1, 'warning', false],
  ['eu2008-50', 'no2', 'year', 40, null, 1, 'info', false],
  ['eu2008-50', 'no2', 'hour', 400, null, 3, 'alert', false],
  // §1.3 EU 2024/2881 Annex I Table 1
  ['eu2024-2881', 'pm25', 'day', 25, 18, 1, 'warning', false],
  ['eu2024-2881', 'pm25', 'year', 10, null, 1, 'info', false],
  ['eu2024-2881', 'pm10', 'day', 45, 18, 1, 'warning', false],
  ['eu2024-2881', 'pm10', 'year', 20, null, 1, 'info', false],
  ['eu2024-2881', 'no2', 'hour', 200, 3, 1, 'warning', false],
  ['eu2024-2881', 'no2', 'day', 50, 18, 1, 'warning', false],
  ['eu2024-2881', 'no2', 'year', 20, null, 1, 'info', false],
  // §1.3 Annex I Section 4 (all UNVERIFIED there)
  ['eu2024-2881-thresholds', 'no2', 'hour', 150, null, 1, 'warning', true],
  ['eu2024-2881-thresholds', 'no2', 'hour', 200, null, 3, 'alert', true],
  ['eu2024-2881-thresholds', 'pm10', 'day', 90, null, 1, 'warning', true],
  ['eu2024-2881-thresholds', 'pm10', 'day', 90, null, 3, 'alert', true],
  ['eu2024-2881-thresholds', 'pm25', 'day', 50, null, 1, 'warning', true],
  ['eu2024-2881-thresholds', 'pm25', 'day', 50, null, 3, 'alert', true],
  // §1.4 MKN (incl. the "200 not more than 18 times" proviso on the hourly NO2 row)
  ['se-mkn', 'no2', 'hour', 90, 175, 1, 'warning', false],
  ['se-mkn', 'no2', 'hour', 200, 18, 1, 'warning', false],
  ['se-mkn', 'no2', 'day', 60, 7, 1, 'warning', false],
  ['se-mkn', 'no2', 'year', 40, null, 1, 'info', false],
  ['se-mkn', 'pm10', 'day', 50, 35, 1, 'warning', false],
  ['se-mkn', 'pm10', 'year', 40, null, 1, 'info', false],
  ['se-mkn', 'pm25', 'year', 25, null, 1, 'info', false],
  // §1.5 Frisk luft
  ['se-frisk-luft', 'no2', 'year', 20, null, 1, 'info', false],
  ['se-frisk-luft', 'no2', 'hour', 60, 175, 1, 'info', false],
  ['se-frisk-luft', 'pm25', 'year', 10, null, 1, 'info', false],
  ['se-frisk-luft', 'pm25', 'day', 25, 3, 1, 'info', false],
  ['se-frisk-luft', 'pm10', 'year', 15, null, 1, 'info', false],
  ['se-frisk-luft', 'pm10', 'day', 30, 35, 1, 'info', false],
  // §2.1 EEA index: opens above "moderate" (poor), persistence 2 h per §5.2; boundary rule UNVERIFIED
  ['eea-index', 'pm25', 'hour', 50, null, 2, 'warning', true],
  ['eea-index', 'pm10', 'hour', 120, null, 2, 'warning', true],
  ['eea-index', 'no2', 'hour', 60, null, 2, 'warning', true],
]

/** §2.1: the EEA rules escalate at the upper cut-points of "poor" and "very poor". */
const EEA_ESCALATION: Record<string, number[]> = { pm25: [90, 140], pm10: [195, 270], no2: [100, 150] }

const allRules = PROFILES.flatMap((p) => p.rules.map((r) => [p.id, r] as const))
const ruleKey = (r: Pick<ThresholdRule, 'pollutant' | 'period' | 'value' | 'persistence'>): string =>
  `${r.pollutant}/${r.period}/${r.value}/${r.persistence}`

describe('threshold profiles against the air-quality reference', () => {
  it.each(REFERENCE)(
    '%s %s %s %d µg/m³',
    (profile, pollutant, period, value, allowed, persistence, severity, doubt) => {
      const found = allRules.filter(
        ([p, r]) =>
          p === profile &&
          r.pollutant === pollutant &&
          r.period === period &&
          r.value === value &&
          r.persistence === persistence,
      )
      expect(found).toHaveLength(1)
      const [, r] = found[0] ?? []
      expect(r?.allowedPerYear).toBe(allowed)
      expect(r?.severity).toBe(severity)
      expect(r?.unverified !== undefined).toBe(doubt)
      if (doubt) expect(r?.unverified).toContain('UNVERIFIED')
    },
  )

  it('has no rule the reference does not list', () => {
    const listed = new Set(
      REFERENCE.map(
        ([p, pollutant, period, value, , persistence]) => `${p}:${pollutant}/${period}/${value}/${persistence}`,
      ),
    )
    const extra = allRules.filter(([p, r]) => !listed.has(`${p}:${ruleKey(r)}`)).map(([, r]) => r.id)
    expect(extra).toEqual([])
    expect(allRules).toHaveLength(REFERENCE.length)
  })

  it('every profile passes its own schema, with rule ids unique over all profiles', () => {
    for (const profile of PROFILES) expect(ThresholdProfile.safeParse(profile).success).toBe(true)
    const ids = allRules.map(([, r]) => r.id)
    expect(new Set(ids).size).toBe(ids.length)
    expect(new Set(PROFILES.map((p) => p.id)).size).toBe(PROFILES.length)
  })

  it('has the default hysteresis: clear at 0.8 × value, after 3 hours or 1 day/year', () => {
    for (const [, r] of allRules) {
      expect(r.clearValue).toBeCloseTo(r.value * 0.8, 10)
      expect(r.clearAfter).toBe(r.period === 'hour' ? 3 : 1)
    }
    expect(profileById('eu2008-50')?.rules.find((r) => r.id === 'eu2008-pm10-day')?.clearValue).toBe(40)
    expect(profileById('who2021-aqg')?.rules.find((r) => r.id === 'who2021-aqg-pm10-day')?.clearValue).toBe(36)
  })

  it.each(Object.entries(EEA_ESCALATION))('EEA %s escalates at %j', (pollutant, levels) => {
    const r = profileById('eea-index')?.rules.find((x) => x.pollutant === pollutant)
    expect(r?.escalateAt).toEqual(levels)
  })

  it('only the EEA rules escalate', () => {
    const escalating = allRules.filter(([, r]) => r.escalateAt.length > 0).map(([p]) => p)
    expect(new Set(escalating)).toEqual(new Set(['eea-index']))
  })

  it.each([
    ['who2021-aqg', null, null, false],
    ['eu2008-50', null, '2029-12-31', true],
    ['eu2024-2881', '2030-01-01', null, true],
    ['eu2024-2881-thresholds', '2026-12-11', null, true],
    ['se-mkn', null, null, true],
    ['se-frisk-luft', null, null, false],
    ['eea-index', null, null, false],
  ] as const)('%s is valid %s … %s, legal %s', (id, from, to, legal) => {
    const p = profileById(id)
    expect(p?.validFrom).toBe(from)
    expect(p?.validTo).toBe(to)
    expect(p?.legal).toBe(legal)
    expect(p?.source).toMatch(/reference §/)
    expect(p?.version).toMatch(/^\d{4}-\d{2}-\d{2}$/)
  })

  it('marks the transposition date and the pending Swedish amendment as unverified', () => {
    expect(profileById('eu2024-2881-thresholds')?.unverified).toContain('11 Dec 2026 – UNVERIFIED')
    expect(profileById('se-mkn')?.unverified).toContain('UNVERIFIED')
  })

  it.each([
    ['eu2008-50', '2029-12-31', true],
    ['eu2008-50', '2030-01-01', false],
    ['eu2024-2881', '2029-12-31', false],
    ['eu2024-2881', '2030-01-01', true],
    ['who2021-aqg', '1999-01-01', true],
  ] as const)('%s applies on %s: %s', (id, day, expected) => {
    const p = profileById(id)
    expect(p && profileValidOn(p, day)).toBe(expected)
  })

  it('profileById returns undefined for an unknown id', () => {
    expect(profileById('who2005')).toBeUndefined()
  })
})

describe('ThresholdRule schema', () => {
  const base = profileById('eea-index')?.rules[0]
  it.each([
    ['clear level above the trigger', { clearValue: 60 }, 'clearValue must not be above value'],
    ['escalation below the trigger', { escalateAt: [40] }, 'escalateAt levels must be ascending and above value'],
    ['escalation not ascending', { escalateAt: [140, 90] }, 'escalateAt levels must be ascending and above value'],
  ])('refuses a %s', (_name, patch, message) => {
    const parsed = ThresholdProfile.shape.rules.element.safeParse({ ...base, ...patch })
    expect(parsed.success).toBe(false)
    expect(parsed.error?.issues.map((i) => i.message)).toContain(message)
  })
})

describe('ProfileSelection', () => {
  it('accepts a subset of known profiles', () => {
    const parsed = ProfileSelection.safeParse({
      evaluate: ['se-mkn', 'eea-index', 'who2021-aqg'],
      alert: ['eea-index'],
    })
    expect(parsed.success).toBe(true)
  })

  it.each([
    [
      'an unknown profile',
      { evaluate: ['se-mkn', 'who2005'], alert: [] },
      ['evaluate', 1],
      "unknown threshold profile 'who2005'",
    ],
    [
      'an alert profile that is not evaluated',
      { evaluate: ['se-mkn'], alert: ['eea-index'] },
      ['alert', 0],
      "profile 'eea-index' raises alerts but is not evaluated",
    ],
    ['an unknown alert profile', { evaluate: [], alert: ['nope'] }, ['alert', 0], "unknown threshold profile 'nope'"],
    ['a duplicate id', { evaluate: ['se-mkn', 'se-mkn'], alert: [] }, ['evaluate'], 'duplicate profile id'],
  ])('refuses %s with a clear message', (_name, input, path, message) => {
    const parsed = ProfileSelection.safeParse(input)
    expect(parsed.success).toBe(false)
    const issue = parsed.error?.issues.find((i) => i.message.startsWith(message))
    expect(issue?.path).toEqual(path)
  })

  it('reports an unknown alert profile once, not also as "not evaluated"', () => {
    const parsed = ProfileSelection.safeParse({ evaluate: [], alert: ['nope'] })
    expect(parsed.error?.issues).toHaveLength(1)
  })

  it('lists the known ids in the message', () => {
    const parsed = profileSelectionSchema(PROFILES.slice(0, 2)).safeParse({ evaluate: ['eu2008-50'], alert: [] })
    expect(parsed.error?.issues[0]?.message).toBe(
      "unknown threshold profile 'eu2008-50' (known: who2021-aqg, who2021-it1)",
    )
  })
})
