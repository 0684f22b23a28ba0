import { z } from 'zod'
import { EAQI_BANDS, EAQI_POLLUTANTS, type EaqiPollutant } from './aqi.ts'

/**
 * Threshold profiles: the breach rules of WHO 2021, EU 2008/50/EC, EU 2024/2881, the Swedish environmental
 * quality standards (MKN), the Swedish "Frisk luft" targets and the EEA index bands, as versioned data
 * (air-quality reference §1 and §2.1). A deployment chooses which profiles it evaluates and which raise alerts
 * (`ProfileSelection`); every breach stores the profile id and version that produced it.
 *
 * Rule semantics (reference §3): a period breaches a rule when its VALID mean is strictly greater than
 * `value`; exceedances are counted per calendar year (UTC+1) against `allowedPerYear`. The incident fields
 * (`persistence`, `clearValue`, `clearAfter`, `escalateAt`) drive the state machine in incidents.ts.
 *
 * Hysteresis defaults follow the reference's alert design guidance (§5.2): clear only after the value stays
 * at or below trigger × 0.8 for at least 3 hours. The reference calls the ratio and the durations "UNVERIFIED
 * choices – tune on Lund data"; they are engineering defaults, not regulation. 0.8 rather than e.g. 0.9:
 * the EU data-quality objective for indicative NO2 is 25 % uncertainty (§3), so a clear level within 10 % of
 * the trigger would let sensor noise alone re-open an incident.
 */

export const THRESHOLD_PERIODS = ['hour', 'day', 'running24h', 'year'] as const
export type ThresholdPeriod = (typeof THRESHOLD_PERIODS)[number]

/** info: compare-with (guidelines, targets, annual means); warning: a limit or information threshold; alert: act now. */
export const SEVERITIES = ['info', 'warning', 'alert'] as const
export type Severity = (typeof SEVERITIES)[number]

/** Clear level as a fraction of the trigger value (reference §5.2 "trigger × 0.8"; UNVERIFIED choice there). */
export const DEFAULT_CLEAR_RATIO = 0.8

/**
 * Consecutive valid periods at or below the clear level before an incident closes. Hourly: ≥ 3 h (reference
 * §5.2, UNVERIFIED choice there; CHMI cancels declared episodes only after 12 h, §5.1). A daily or annual mean
 * already averages a whole period, so one clear period is enough.
 */
export const DEFAULT_CLEAR_AFTER: Readonly<Record<ThresholdPeriod, number>> = {
  hour: 3,
  running24h: 3,
  day: 1,
  year: 1,
}

const RULE_ID_PATTERN = /^[a-z0-9]+(?:[-.][a-z0-9]+)*$/
const ISO_DATE = z.iso.date()

export const ThresholdRule = z
  .object({
    /** Stable id, unique over all profiles (e.g. 'eu2008-pm10-day'); stored with every breach. */
    id: z.string().regex(RULE_ID_PATTERN).max(64),
    pollutant: z.enum(EAQI_POLLUTANTS),
    period: z.enum(THRESHOLD_PERIODS),
    /** µg/m³; a valid period mean strictly greater than this breaches the rule. */
    value: z.number().positive(),
    /** Permitted exceedances per calendar year; null when the source allows none or states none (annual means). */
    allowedPerYear: z.number().int().min(0).nullable(),
    /** µg/m³; an open incident closes only after `clearAfter` valid periods at or below this (hysteresis). */
    clearValue: z.number().min(0),
    /** Consecutive valid periods at or below `clearValue` that close an incident. */
    clearAfter: z.number().int().min(1),
    /** Consecutive valid periods above `value` before an incident opens (e.g. 3 h for the EU NO2 alert threshold). */
    persistence: z.number().int().min(1),
    severity: z.enum(SEVERITIES),
    /** µg/m³ levels above `value`, ascending; an open incident escalates once per level the value exceeds. */
    escalateAt: z.array(z.number().positive()).default([]),
    /** Why a number is not confirmed, in the reference's words; absent when the reference does not doubt it. */
    unverified: z.string().min(1).optional(),
    /** How the rule reads its source where the source leaves room (not a doubt about a number). */
    note: z.string().min(1).optional(),
  })
  .refine((r) => r.clearValue <= r.value, { message: 'clearValue must not be above value', path: ['clearValue'] })
  .refine((r) => r.escalateAt.every((level, i) => level > r.value && level > (r.escalateAt[i - 1] ?? 0)), {
    message: 'escalateAt levels must be ascending and above value',
    path: ['escalateAt'],
  })
export type ThresholdRule = z.infer<typeof ThresholdRule>

export const ThresholdProfile = z.object({
  id: z.string().regex(RULE_ID_PATTERN).max(64),
  /** Version of this transcription; bump it whenever a rule changes, so stored breaches stay reproducible. */
  version: z.string().min(1),
  name: z.string().min(1),
  /** Citation of the rules' source (from the air-quality reference). */
  source: z.string().min(1),
  /** First and last day (ISO date, inclusive) the rules apply; null when unbounded or not stated by the reference. */
  validFrom: ISO_DATE.nullable(),
  validTo: ISO_DATE.nullable(),
  /** Legally binding (EU directive, Swedish ordinance) rather than guidance or a target. */
  legal: z.boolean(),
  unverified: z.string().min(1).optional(),
  rules: z.array(ThresholdRule).min(1),
})
export type ThresholdProfile = z.infer<typeof ThresholdProfile>

/** Version of the profiles transcribed below from the air-quality reference. */
export const PROFILES_VERSION = '2026-11-30'

type RuleSpec = Omit<ThresholdRule, 'clearValue' | 'clearAfter' | 'persistence' | 'severity' | 'escalateAt'> &
  Partial<Pick<ThresholdRule, 'clearValue' | 'clearAfter' | 'persistence' | 'severity' | 'escalateAt'>>

/** A rule with the defaults filled in: clear level 0.8 × value, clear time by period, persistence 1, severity by period. */
function rule(spec: RuleSpec): ThresholdRule {
  return {
    ...spec,
    // Rounded to 0.01 µg/m³ so that e.g. 45 × 0.8 is 36, not 36.00000000000001.
    clearValue: spec.clearValue ?? Math.round(spec.value * DEFAULT_CLEAR_RATIO * 100) / 100,
    clearAfter: spec.clearAfter ?? DEFAULT_CLEAR_AFTER[spec.period],
    persistence: spec.persistence ?? 1,
    // Annual means describe a year: nothing to act on today, so they are informational.
    severity: spec.severity ?? (spec.period === 'year' ? 'info' : 'warning'),
    escalateAt: spec.escalateAt ?? [],
  }
}

// §1.1 WHO 2021. Guidelines, not legally binding: every rule is 'info'.
const WHO_SOURCE =
  'WHO Global Air Quality Guidelines 2021, via https://www.airclim.org/who-air-quality-guidelines (air-quality reference §1.1)'
const WHO_DAILY_NOTE =
  'The short-term AQG is a 99th percentile of daily values, i.e. 3–4 exceedance days per year (reference §1.1 (a)); 3 is used.'
const WHO_NO2_HOUR_UNVERIFIED =
  'WHO 2005 1-hour NO2 guideline of 200 µg/m³ was retained by WHO 2021 (only seen in third-party code as `who2005`) – UNVERIFIED from WHO text (reference §1.1).'

type WhoLevel = 'it1' | 'it2' | 'it3' | 'it4' | 'aqg'
/** Reference §1.1 table, columns IT-1 … IT-4 and AQG; null where the table has "–". */
const WHO_TABLE: readonly (readonly [EaqiPollutant, 'year' | 'day', Record<WhoLevel, number | null>])[] = [
  ['pm25', 'year', { it1: 35, it2: 25, it3: 15, it4: 10, aqg: 5 }],
  ['pm25', 'day', { it1: 75, it2: 50, it3: 37.5, it4: 25, aqg: 15 }],
  ['pm10', 'year', { it1: 70, it2: 50, it3: 30, it4: 20, aqg: 15 }],
  ['pm10', 'day', { it1: 150, it2: 100, it3: 75, it4: 50, aqg: 45 }],
  ['no2', 'year', { it1: 40, it2: 30, it3: 20, it4: null, aqg: 10 }],
  ['no2', 'day', { it1: 120, it2: 50, it3: null, it4: null, aqg: 25 }],
]

function whoProfile(level: WhoLevel, name: string): ThresholdProfile {
  const rules: ThresholdRule[] = []
  for (const [pollutant, period, values] of WHO_TABLE) {
    const value = values[level]
    if (value === null) continue
    rules.push(
      rule({
        id: `who2021-${level}-${pollutant}-${period}`,
        pollutant,
        period,
        value,
        allowedPerYear: period === 'day' ? 3 : null,
        severity: 'info',
        ...(period === 'day' ? { note: WHO_DAILY_NOTE } : {}),
      }),
    )
  }
  if (level === 'aqg') {
    rules.push(
      rule({
        id: 'who2021-aqg-no2-hour',
        pollutant: 'no2',
        period: 'hour',
        value: 200,
        allowedPerYear: null,
        severity: 'info',
        unverified: WHO_NO2_HOUR_UNVERIFIED,
      }),
    )
  }
  return {
    id: `who2021-${level}`,
    version: PROFILES_VERSION,
    name,
    source: WHO_SOURCE,
    validFrom: null,
    validTo: null,
    legal: false,
    rules,
  }
}

// §1.2 EU 2008/50/EC. O3 is not measured by skolluft and is left out.
const EU2008: ThresholdProfile = {
  id: 'eu2008-50',
  version: PROFILES_VERSION,
  name: 'EU Directive 2008/50/EC limit values',
  source:
    'Directive 2008/50/EC Annex XI/XII via EEA figure pages and UK SI 2007/64 Sch. 1; NO2 alert threshold via UK SSI 2003/428 Sch. 1 (air-quality reference §1.2)',
  validFrom: null,
  validTo: '2029-12-31',
  legal: true,
  rules: [
    rule({ id: 'eu2008-pm10-day', pollutant: 'pm10', period: 'day', value: 50, allowedPerYear: 35 }),
    rule({ id: 'eu2008-pm10-year', pollutant: 'pm10', period: 'year', value: 40, allowedPerYear: null }),
    rule({ id: 'eu2008-pm25-year', pollutant: 'pm25', period: 'year', value: 25, allowedPerYear: null }),
    rule({ id: 'eu2008-no2-hour', pollutant: 'no2', period: 'hour', value: 200, allowedPerYear: 18 }),
    rule({ id: 'eu2008-no2-year', pollutant: 'no2', period: 'year', value: 40, allowedPerYear: null }),
    // "400, measured over 3 consecutive hours" (§1.2): persistence is part of the legal definition.
    rule({
      id: 'eu2008-no2-alert',
      pollutant: 'no2',
      period: 'hour',
      value: 400,
      allowedPerYear: null,
      persistence: 3,
      severity: 'alert',
    }),
  ],
}

// §1.3 EU 2024/2881, Annex I Table 1: limit values to be attained by 1 January 2030.
const EU2024: ThresholdProfile = {
  id: 'eu2024-2881',
  version: PROFILES_VERSION,
  name: 'EU Directive 2024/2881 limit values (from 2030)',
  source:
    'Directive (EU) 2024/2881 Annex I Table 1, https://eur-lex.europa.eu/eli/dir/2024/2881/oj (air-quality reference §1.3)',
  validFrom: '2030-01-01',
  validTo: null,
  legal: true,
  rules: [
    rule({ id: 'eu2024-pm25-day', pollutant: 'pm25', period: 'day', value: 25, allowedPerYear: 18 }),
    rule({ id: 'eu2024-pm25-year', pollutant: 'pm25', period: 'year', value: 10, allowedPerYear: null }),
    rule({ id: 'eu2024-pm10-day', pollutant: 'pm10', period: 'day', value: 45, allowedPerYear: 18 }),
    rule({ id: 'eu2024-pm10-year', pollutant: 'pm10', period: 'year', value: 20, allowedPerYear: null }),
    rule({
      id: 'eu2024-no2-hour',
      pollutant: 'no2',
      period: 'hour',
      value: 200,
      allowedPerYear: 3,
      note: 'The Commission proposal said "not more than once"; the adopted text says 3 times (reference §1.3).',
    }),
    rule({ id: 'eu2024-no2-day', pollutant: 'no2', period: 'day', value: 50, allowedPerYear: 18 }),
    rule({ id: 'eu2024-no2-year', pollutant: 'no2', period: 'year', value: 20, allowedPerYear: null }),
  ],
}

// §1.3 EU 2024/2881 Annex I Section 4: information and alert thresholds, all marked UNVERIFIED there.
const EU2024_SECTION4_UNVERIFIED =
  'Annex I Section 4 as encoded in third-party code that states it was "checked against the AAQD text" – treat as UNVERIFIED until read in EUR-Lex (reference §1.3).'
const EU2024_INFO_UNVERIFIED = `${EU2024_SECTION4_UNVERIFIED} Whether the information thresholds also need a multi-hour/multi-day persistence: UNVERIFIED.`
const EU2024_THRESHOLDS: ThresholdProfile = {
  id: 'eu2024-2881-thresholds',
  version: PROFILES_VERSION,
  name: 'EU Directive 2024/2881 information and alert thresholds',
  source:
    'Directive (EU) 2024/2881 Annex I Section 4, https://eur-lex.europa.eu/eli/dir/2024/2881/oj (air-quality reference §1.3)',
  validFrom: '2026-12-11',
  validTo: null,
  legal: true,
  unverified:
    'The same code records that Section 4 thresholds must be transposed by 11 Dec 2026 – UNVERIFIED (reference §1.3).',
  rules: [
    rule({
      id: 'eu2024-no2-info',
      pollutant: 'no2',
      period: 'hour',
      value: 150,
      allowedPerYear: null,
      unverified: EU2024_INFO_UNVERIFIED,
    }),
    rule({
      id: 'eu2024-no2-alert',
      pollutant: 'no2',
      period: 'hour',
      value: 200,
      allowedPerYear: null,
      persistence: 3,
      severity: 'alert',
      unverified: EU2024_SECTION4_UNVERIFIED,
    }),
    rule({
      id: 'eu2024-pm10-info',
      pollutant: 'pm10',
      period: 'day',
      value: 90,
      allowedPerYear: null,
      unverified: EU2024_INFO_UNVERIFIED,
    }),
    rule({
      id: 'eu2024-pm10-alert',
      pollutant: 'pm10',
      period: 'day',
      value: 90,
      allowedPerYear: null,
      persistence: 3,
      severity: 'alert',
      unverified: EU2024_SECTION4_UNVERIFIED,
    }),
    rule({
      id: 'eu2024-pm25-info',
      pollutant: 'pm25',
      period: 'day',
      value: 50,
      allowedPerYear: null,
      unverified: EU2024_INFO_UNVERIFIED,
    }),
    rule({
      id: 'eu2024-pm25-alert',
      pollutant: 'pm25',
      period: 'day',
      value: 50,
      allowedPerYear: null,
      persistence: 3,
      severity: 'alert',
      unverified: EU2024_SECTION4_UNVERIFIED,
    }),
  ],
}

// §1.4 Swedish environmental quality standards (MKN), Luftkvalitetsförordningen (2010:477).
const SE_MKN: ThresholdProfile = {
  id: 'se-mkn',
  version: PROFILES_VERSION,
  name: 'Miljökvalitetsnormer (SFS 2010:477)',
  source:
    'Luftkvalitetsförordningen (SFS 2010:477), http://rkrattsbaser.gov.se/sfst?bet=2010%3A477, via Umeå kommun, Stockholm and Malmö Miljöbarometern (air-quality reference §1.4)',
  validFrom: null,
  validTo: null,
  legal: true,
  unverified:
    'The ordinance has not yet (in the sources read) been amended for 2024/2881; expect new Swedish values before 2030 – UNVERIFIED (reference §1.4).',
  rules: [
    rule({ id: 'se-mkn-no2-hour', pollutant: 'no2', period: 'hour', value: 90, allowedPerYear: 175 }),
    // The 90 µg/m³ hourly standard holds "provided 200 is not exceeded more than 18 times per year" (§1.4).
    rule({ id: 'se-mkn-no2-hour-200', pollutant: 'no2', period: 'hour', value: 200, allowedPerYear: 18 }),
    rule({ id: 'se-mkn-no2-day', pollutant: 'no2', period: 'day', value: 60, allowedPerYear: 7 }),
    rule({ id: 'se-mkn-no2-year', pollutant: 'no2', period: 'year', value: 40, allowedPerYear: null }),
    rule({ id: 'se-mkn-pm10-day', pollutant: 'pm10', period: 'day', value: 50, allowedPerYear: 35 }),
    rule({ id: 'se-mkn-pm10-year', pollutant: 'pm10', period: 'year', value: 40, allowedPerYear: null }),
    rule({ id: 'se-mkn-pm25-year', pollutant: 'pm25', period: 'year', value: 25, allowedPerYear: null }),
  ],
}

// §1.5 Swedish environmental objective "Frisk luft", preciseringar: targets, not legally binding.
const SE_FRISK_LUFT: ThresholdProfile = {
  id: 'se-frisk-luft',
  version: PROFILES_VERSION,
  name: 'Miljömålet Frisk luft (preciseringar)',
  source:
    'Naturvårdsverket "Frisk luft" preciseringar via Jönköping Hållbarometern, Stockholm and Malmö Miljöbarometern (air-quality reference §1.5)',
  validFrom: null,
  validTo: null,
  legal: false,
  rules: [
    rule({ id: 'se-frisk-luft-no2-year', pollutant: 'no2', period: 'year', value: 20, allowedPerYear: null }),
    // 60 as hourly mean, 98-percentile = max 175 hours above 60 per year.
    rule({
      id: 'se-frisk-luft-no2-hour',
      pollutant: 'no2',
      period: 'hour',
      value: 60,
      allowedPerYear: 175,
      severity: 'info',
    }),
    rule({ id: 'se-frisk-luft-pm25-year', pollutant: 'pm25', period: 'year', value: 10, allowedPerYear: null }),
    // 25 as daily mean, 4th-highest day = max 3 days above 25 per year.
    rule({
      id: 'se-frisk-luft-pm25-day',
      pollutant: 'pm25',
      period: 'day',
      value: 25,
      allowedPerYear: 3,
      severity: 'info',
    }),
    rule({ id: 'se-frisk-luft-pm10-year', pollutant: 'pm10', period: 'year', value: 15, allowedPerYear: null }),
    rule({
      id: 'se-frisk-luft-pm10-day',
      pollutant: 'pm10',
      period: 'day',
      value: 30,
      allowedPerYear: 35,
      severity: 'info',
    }),
  ],
}

/**
 * §2.1 EEA index (2024 revision, hourly): one rule per pollutant that opens at "poor" (above the moderate band)
 * and escalates at "very poor" and "extremely poor", so a rising episode is ONE incident that escalates rather
 * than three parallel ones. Cut-points come from EAQI_BANDS (aqi.ts), the single source of the band table.
 * Persistence 2 h: the index has no persistence of its own; 2 consecutive valid hours is the reference's alert
 * design guidance (§5.2) so a single drop-off hour does not alert.
 */
function eeaRule(pollutant: EaqiPollutant): ThresholdRule {
  const cut = (key: string): number => {
    const upper = EAQI_BANDS.find((b) => b.key === key)?.upper[pollutant]
    if (upper === undefined || upper === null) throw new RangeError(`no EAQI cut-point ${key}/${pollutant}`)
    return upper
  }
  return rule({
    id: `eea-${pollutant}-poor`,
    pollutant,
    period: 'hour',
    value: cut('moderate'),
    allowedPerYear: null,
    persistence: 2,
    escalateAt: [cut('poor'), cut('very_poor')],
    unverified:
      'Boundary rule (value exactly on a cut-point belongs to the lower band) is from [code] – UNVERIFIED as EEA rule (reference §2.1).',
    note: 'Opens above the moderate band (EEA "poor"), escalates above "poor" (to "very poor") and above "very poor" (to "extremely poor"); persistence 2 h per reference §5.2 design guidance.',
  })
}

const EEA_INDEX: ThresholdProfile = {
  id: 'eea-index',
  version: PROFILES_VERSION,
  name: 'European Air Quality Index (EEA, 2024 revision) bands',
  source:
    'EEA European Air Quality Index, ETC HE Report 2024/17, https://airindex.eea.europa.eu/AQI/index.html (air-quality reference §2.1)',
  validFrom: null,
  validTo: null,
  legal: false,
  rules: EAQI_POLLUTANTS.map(eeaRule),
}

/** Every profile, in a stable order. WHO interim targets are separate profiles: a deployment adopts one rung. */
export const PROFILES: readonly ThresholdProfile[] = [
  whoProfile('aqg', 'WHO 2021 Air Quality Guidelines (AQG)'),
  whoProfile('it1', 'WHO 2021 interim target 1'),
  whoProfile('it2', 'WHO 2021 interim target 2'),
  whoProfile('it3', 'WHO 2021 interim target 3'),
  whoProfile('it4', 'WHO 2021 interim target 4'),
  EU2008,
  EU2024,
  EU2024_THRESHOLDS,
  SE_MKN,
  SE_FRISK_LUFT,
  EEA_INDEX,
]

export function profileById(
  id: string,
  profiles: readonly ThresholdProfile[] = PROFILES,
): ThresholdProfile | undefined {
  return profiles.find((p) => p.id === id)
}

/** Whether a profile applies on a calendar day (ISO 'YYYY-MM-DD'); validFrom and validTo are inclusive. */
export function profileValidOn(profile: ThresholdProfile, day: string): boolean {
  return (
    (profile.validFrom === null || profile.validFrom <= day) && (profile.validTo === null || day <= profile.validTo)
  )
}

/**
 * The deployment's choice: which profiles are evaluated (breaches recorded, exceedances counted) and which of
 * those raise alerts. Built against a profile list so tests and future profile sets can use their own.
 */
export function profileSelectionSchema(profiles: readonly ThresholdProfile[] = PROFILES) {
  const known = profiles.map((p) => p.id)
  const unique = (ids: string[]): boolean => new Set(ids).size === ids.length
  return z
    .object({
      evaluate: z.array(z.string()).refine(unique, { message: 'duplicate profile id' }),
      alert: z.array(z.string()).refine(unique, { message: 'duplicate profile id' }),
    })
    .superRefine((s, ctx) => {
      for (const key of ['evaluate', 'alert'] as const) {
        s[key].forEach((id, i) => {
          if (!known.includes(id)) {
            ctx.addIssue({
              code: 'custom',
              path: [key, i],
              message: `unknown threshold profile '${id}' (known: ${known.join(', ')})`,
            })
          }
        })
      }
      s.alert.forEach((id, i) => {
        if (known.includes(id) && !s.evaluate.includes(id)) {
          ctx.addIssue({
            code: 'custom',
            path: ['alert', i],
            message: `profile '${id}' raises alerts but is not evaluated; add it to evaluate`,
          })
        }
      })
    })
}

export const ProfileSelection = profileSelectionSchema()
export type ProfileSelection = z.infer<typeof ProfileSelection>

/**
 * Profiles the alerts service evaluates (ALERT_PROFILES) and alerts on (ALERT_PROFILES_NOTIFY) unless a
 * deployment says otherwise; exports name them in their manifest. Defaults suit a Swedish municipality: evaluate WHO 2021, the EU 2008/50 limit
 * values, the Swedish MKN and Frisk luft targets and the EEA index (2024/2881 joins by itself on 1 January 2030,
 * its validity date); alert only on the EEA index (hourly, what a school can act on today) and the MKN (the
 * Swedish legal standard), so one exceedance does not raise the same alarm from two transcriptions of one law.
 */
export const DEFAULT_EVALUATED_PROFILES = [
  'who2021-aqg',
  'eu2008-50',
  'eu2024-2881',
  'se-mkn',
  'se-frisk-luft',
  'eea-index',
]
export const DEFAULT_ALERTING_PROFILES = ['eea-index', 'se-mkn']
