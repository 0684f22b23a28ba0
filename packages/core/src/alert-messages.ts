import { z } from 'zod'
import { REGULATORY_DAY_OFFSET_MS } from './aggregation.ts'
import { ALERT_TIME_ZONE } from './alert-policy.ts'
import { type EaqiLevel, eaqiLevel, isEaqiPollutant } from './aqi.ts'
import { DeviceId, SiteId } from './ids.ts'
import { METRICS, type Metric } from './metrics.ts'
import { HIGH_HUMIDITY_PERCENT, QUALITY_ISSUES } from './quality.ts'
import { SEVERITIES, THRESHOLD_PERIODS, type ThresholdPeriod } from './thresholds.ts'

/**
 * Alert texts in Swedish (default) and English, plain text and HTML. Pure: data in, strings out; every
 * interpolated value is HTML-escaped in the HTML part. Content follows the reference's minimum public message
 * content (air-quality reference §5.1: date, hour, place; sensitive population; precautions) and alert design
 * (§5.2: start time, peak, current value, source threshold; "always label low-cost data as indicative"):
 * what was measured (pollutant, value in µg/m³, averaging period), where (site), since when (local time in
 * Europe/Stockholm, zone named), how it compares with the limit (threshold, rule, source profile) and what it
 * means for children (the EEA index band's health advice, §2.1; children are a sensitive group, §5.1).
 * Device messages (offline, quality, recovered) are for caretakers.
 */

export const ALERT_LANGUAGES = ['sv', 'en'] as const
export type AlertLanguage = (typeof ALERT_LANGUAGES)[number]

export const ALERT_KINDS = [
  'opened',
  'escalated',
  'closed',
  'reminder',
  'device-offline',
  'device-quality',
  'device-recovered',
] as const
export type AlertKind = (typeof ALERT_KINDS)[number]

const BREACH_KINDS: readonly AlertKind[] = ['opened', 'escalated', 'closed', 'reminder']
const DEVICE_KINDS: readonly AlertKind[] = ['device-offline', 'device-quality', 'device-recovered']

/** What a device message is about: the hour-level QC issues (quality.ts) and the device-health states (health.ts). */
export const DEVICE_ISSUES = ['offline', 'low_coverage', ...QUALITY_ISSUES] as const
export type DeviceIssue = (typeof DEVICE_ISSUES)[number]

/** Text shown to people: no control characters (a line break in a subject is a header injection). */
const DisplayText = z
  .string()
  .trim()
  .min(1)
  .max(200)
  .regex(/^[^\p{Cc}]*$/u, { message: 'no control characters' })
const EpochMs = z.number().int().nonnegative()
/** µg/m³ (NO2 may read slightly negative). */
const Concentration = z.number()

export const AlertMessageData = z
  .object({
    kind: z.enum(ALERT_KINDS),
    siteId: SiteId,
    siteName: DisplayText,
    /** The pollutant of a breach, or the affected metric of a device-quality issue. */
    pollutant: z.enum(METRICS).optional(),
    ruleId: z.string().min(1).max(64).optional(),
    /** Human name of the rule, e.g. "PM10 dygnsmedelvärde"; the rule id is shown when absent. */
    ruleLabel: DisplayText.optional(),
    /** Name of the threshold profile the rule comes from (ThresholdProfile.name). */
    profileName: DisplayText.optional(),
    /** Whether the profile is legally binding (ThresholdProfile.legal). */
    legal: z.boolean().optional(),
    period: z.enum(THRESHOLD_PERIODS).optional(),
    /** The rule's value, µg/m³. */
    threshold: Concentration.optional(),
    /** The latest (or triggering) valid period mean, µg/m³, and its period start. */
    value: Concentration.optional(),
    valueAt: EpochMs.optional(),
    peak: Concentration.optional(),
    peakAt: EpochMs.optional(),
    /** Incident start (first breaching period) and end (first clear period, for 'closed'). */
    start: EpochMs.optional(),
    end: EpochMs.optional(),
    /** For 'escalated': the escalation level exceeded, µg/m³ (incidents.ts Escalation.level). */
    level: Concentration.optional(),
    /** EEA index band (1 good … 6 extremely poor) for the health advice; derived from the value when absent. */
    band: z.number().int().min(1).max(6).optional(),
    deviceId: DeviceId.optional(),
    issue: z.enum(DEVICE_ISSUES).optional(),
    /** Since when a device problem (or its recovery) holds. */
    since: EpochMs.optional(),
    severity: z.enum(SEVERITIES),
  })
  .superRefine((d, ctx) => {
    const need = (field: keyof typeof d, why: string): void => {
      if (d[field] === undefined) ctx.addIssue({ code: 'custom', path: [field], message: `${why} needs ${field}` })
    }
    if (BREACH_KINDS.includes(d.kind)) {
      for (const field of ['pollutant', 'period', 'threshold', 'start'] as const) need(field, `a '${d.kind}' message`)
      if (d.pollutant !== undefined && !isEaqiPollutant(d.pollutant)) {
        ctx.addIssue({ code: 'custom', path: ['pollutant'], message: 'a breach is about pm25, pm10 or no2' })
      }
      if (d.kind === 'escalated') need('level', "an 'escalated' message")
      if (d.kind === 'closed') need('end', "a 'closed' message")
    }
    if (DEVICE_KINDS.includes(d.kind)) need('since', `a '${d.kind}' message`)
    if (d.kind === 'device-quality') need('issue', "a 'device-quality' message")
  })
export type AlertMessageData = z.infer<typeof AlertMessageData>

export interface AlertLinks {
  /** The dashboard (map) URL; linked only when http(s). */
  readonly dashboard: string
  /** One-click unsubscribe URL; null for channels without one (in-app). */
  readonly unsubscribe: string | null
}

export interface RenderedAlert {
  readonly subject: string
  readonly text: string
  readonly html: string
}

// ---------------------------------------------------------------------------------------------------------
// EEA health advice

export interface HealthAdvice {
  readonly general: string
  readonly sensitive: string
}

/**
 * EEA health messages per index band (reference §2.1, EEA FAQ in Swedish): good–fair "enjoy outdoor
 * activities"; moderate: sensitive "consider reducing intense outdoor activities if you experience symptoms";
 * poor: everyone "consider reducing intense outdoor activity if symptoms"; very poor: sensitive "reduce
 * physical activity outdoors"; extremely poor: everyone reduce, sensitive avoid outdoor physical activity.
 * The reference does not give the sensitive-group text for "poor" nor the general text for "very poor"; those
 * two cells follow the pattern of the neighbouring bands and are UNVERIFIED against the EEA wording. The
 * wording is ours (a translation of the reference's summary), not the EEA's exact text.
 */
export const EAQI_HEALTH_ADVICE: Readonly<Record<AlertLanguage, Readonly<Record<EaqiLevel, HealthAdvice>>>> = {
  sv: {
    1: { general: 'Njut av dina vanliga utomhusaktiviteter.', sensitive: 'Njut av dina vanliga utomhusaktiviteter.' },
    2: { general: 'Njut av dina vanliga utomhusaktiviteter.', sensitive: 'Njut av dina vanliga utomhusaktiviteter.' },
    3: {
      general: 'Njut av dina vanliga utomhusaktiviteter.',
      sensitive: 'Överväg att minska ansträngande aktiviteter utomhus om du får symtom.',
    },
    4: {
      general:
        'Överväg att minska ansträngande aktiviteter utomhus om du får symtom som sveda i ögonen, hosta eller halsont.',
      sensitive: 'Överväg att minska fysisk aktivitet utomhus, särskilt om du får symtom.',
    },
    5: {
      general: 'Överväg att minska fysisk aktivitet utomhus om du får symtom som sveda i ögonen, hosta eller halsont.',
      sensitive: 'Minska fysisk aktivitet utomhus.',
    },
    6: { general: 'Minska fysisk aktivitet utomhus.', sensitive: 'Undvik fysisk aktivitet utomhus.' },
  },
  en: {
    1: { general: 'Enjoy your usual outdoor activities.', sensitive: 'Enjoy your usual outdoor activities.' },
    2: { general: 'Enjoy your usual outdoor activities.', sensitive: 'Enjoy your usual outdoor activities.' },
    3: {
      general: 'Enjoy your usual outdoor activities.',
      sensitive: 'Consider reducing intense outdoor activities if you experience symptoms.',
    },
    4: {
      general:
        'Consider reducing intense outdoor activities if you experience symptoms such as sore eyes, a cough or a sore throat.',
      sensitive: 'Consider reducing physical activity outdoors, especially if you experience symptoms.',
    },
    5: {
      general:
        'Consider reducing physical activity outdoors if you experience symptoms such as sore eyes, a cough or a sore throat.',
      sensitive: 'Reduce physical activity outdoors.',
    },
    6: { general: 'Reduce physical activity outdoors.', sensitive: 'Avoid physical activity outdoors.' },
  },
}

// ---------------------------------------------------------------------------------------------------------
// Language packs

interface Texts {
  readonly locale: string
  readonly pollutantShort: Readonly<Record<Metric, string>>
  readonly pollutantLong: Readonly<Record<Metric, string>>
  readonly period: Readonly<Record<ThresholdPeriod, string>>
  /** For subjects: tells two open incidents of one pollutant apart. */
  readonly periodShort: Readonly<Record<ThresholdPeriod, string>>
  /** When a message lacks its pollutant (unvalidated data). */
  readonly somePollutant: string
  /** Band names as on the dashboard map (dashboard/src/client/messages.ts). */
  readonly band: Readonly<Record<EaqiLevel, string>>
  readonly issue: Readonly<Record<DeviceIssue, string>>
  readonly issueAction: Readonly<Record<DeviceIssue, string>>
  readonly urgentPrefix: string
  readonly sensor: (deviceId: string | undefined) => string
  readonly subject: {
    readonly opened: (site: string, pollutant: string, threshold: string) => string
    readonly escalated: (site: string, pollutant: string, level: string) => string
    readonly reminder: (site: string, pollutant: string, threshold: string) => string
    readonly closed: (site: string, pollutant: string) => string
    readonly offline: (site: string, sensor: string) => string
    readonly quality: (site: string, sensor: string) => string
    readonly recovered: (site: string, sensor: string) => string
    readonly digest: (count: number, where: string) => string
    readonly sites: (count: number) => string
  }
  readonly intro: {
    readonly opened: (pollutant: string, site: string, threshold: string, period: string) => string
    readonly escalated: (pollutant: string, site: string, level: string) => string
    readonly reminder: (pollutant: string, site: string, threshold: string, since: string) => string
    readonly closed: (pollutant: string, site: string, threshold: string) => string
    readonly offline: (sensor: string, site: string, since: string) => string
    readonly quality: (sensor: string, site: string, since: string, issue: string) => string
    readonly recovered: (sensor: string, site: string, since: string) => string
    readonly digest: string
  }
  readonly label: {
    readonly measured: string
    readonly where: string
    readonly since: string
    readonly duration: string
    readonly compared: string
    readonly children: string
    readonly about: string
    readonly sensor: string
    readonly affected: string
    readonly todo: string
    readonly consequence: string
    readonly previousIssue: string
  }
  readonly at: (time: string) => string
  readonly peakSoFar: (value: string, at: string) => string
  readonly peak: (value: string, at: string) => string
  readonly dayOf: (date: string) => string
  readonly yearOf: (year: string) => string
  readonly fromTo: (from: string, to: string) => string
  readonly above: (value: string, percent: number, threshold: string) => string
  readonly belowStillOpen: (value: string, threshold: string) => string
  readonly rule: (rule: string, profile: string | null, legal: boolean | undefined) => string
  readonly bandIs: (pollutant: string, band: string) => string
  readonly childrenSensitive: string
  readonly adviceSensitive: (advice: string) => string
  readonly adviceGeneral: (advice: string) => string
  readonly schoolHint: string
  readonly annualNote: string
  readonly indicative: string
  readonly offlineConsequence: string
  readonly qualityConsequence: string
  readonly seeMap: string
  readonly unsubscribe: string
  readonly footer: string
}

const SV: Texts = {
  locale: 'sv-SE',
  pollutantShort: { pm1: 'PM1', pm25: 'PM2.5', pm10: 'PM10', no2: 'NO₂', temp: 'temperatur', rh: 'luftfuktighet' },
  pollutantLong: {
    pm1: 'PM1 (mycket fina partiklar)',
    pm25: 'PM2.5 (fina partiklar)',
    pm10: 'PM10 (partiklar)',
    no2: 'kvävedioxid (NO₂)',
    temp: 'temperatur',
    rh: 'relativ luftfuktighet',
  },
  period: {
    hour: 'timmedelvärde',
    day: 'dygnsmedelvärde',
    running24h: 'glidande 24-timmarsmedelvärde',
    year: 'årsmedelvärde',
  },
  periodShort: { hour: 'timme', day: 'dygn', running24h: '24 h glidande', year: 'år' },
  somePollutant: 'luftföroreningar',
  band: { 1: 'Bra', 2: 'Godtagbar', 3: 'Måttlig', 4: 'Dålig', 5: 'Mycket dålig', 6: 'Extremt dålig' },
  issue: {
    offline: 'inga mätvärden kommer in',
    low_coverage: 'för få mätvärden (under 75 % av de förväntade)',
    stuck: 'samma värde om och om igen (sensorn kan ha fastnat)',
    out_of_range: 'värden utanför vad sensorn kan mäta',
    high_humidity: `mycket hög luftfuktighet (över ${HIGH_HUMIDITY_PERCENT} %), som får optiska partikelsensorer att visa för höga värden`,
    pm_order: 'finare partiklar högre än grövre (till exempel PM2.5 över PM10), vilket inte är möjligt',
  },
  issueAction: {
    offline: 'Kontrollera strömmen och nätverksanslutningen.',
    low_coverage: 'Kontrollera nätverksanslutningen; sensorn tappar mätvärden.',
    stuck: 'Starta om sensorn; byt den om felet finns kvar.',
    out_of_range: 'Kontrollera sensorn och luftintaget (smuts, insekter); byt den om felet finns kvar.',
    high_humidity:
      'Kontrollera att sensorn sitter skyddad mot regn. Vid dimma eller dugg går det över av sig självt när luften torkar upp.',
    pm_order: 'Rengör eller byt partikelsensorn.',
  },
  urgentPrefix: 'LARM: ',
  sensor: (id) => (id === undefined ? 'sensorn' : `sensor ${id}`),
  subject: {
    opened: (site, p, threshold) => `${site}: ${p} över ${threshold}`,
    escalated: (site, p, level) => `${site}: ${p} stiger, över ${level}`,
    reminder: (site, p, threshold) => `${site}: ${p} fortfarande över ${threshold}`,
    closed: (site, p) => `${site}: ${p} tillbaka till normal nivå`,
    offline: (site, sensor) => `${site}: ${sensor} ur drift`,
    quality: (site, sensor) => `${site}: ${sensor} ger misstänkta värden`,
    recovered: (site, sensor) => `${site}: ${sensor} i drift igen`,
    digest: (n, where) => `Sammanfattning: ${n} ${n === 1 ? 'meddelande' : 'meddelanden'} – ${where}`,
    sites: (n) => `${n} platser`,
  },
  intro: {
    opened: (p, site, threshold, period) => `Halten av ${p} vid ${site} är över ${threshold} (${period}).`,
    escalated: (p, site, level) => `Halten av ${p} vid ${site} har stigit ytterligare, över ${level}.`,
    reminder: (p, site, threshold, since) =>
      `Halten av ${p} vid ${site} har varit över ${threshold} sedan ${since}, och överskridandet pågår fortfarande.`,
    closed: (p, site, threshold) =>
      `Halten av ${p} vid ${site} är tillbaka till normal nivå. Överskridandet av ${threshold} är över.`,
    offline: (sensor, site, since) =>
      `${capitalise(sensor)} vid ${site} har inte skickat några mätvärden sedan ${since}.`,
    quality: (sensor, site, since, issue) =>
      `${capitalise(sensor)} vid ${site} ger misstänkta värden sedan ${since}: ${issue}.`,
    recovered: (sensor, site, since) => `${capitalise(sensor)} vid ${site} fungerar igen sedan ${since}.`,
    digest: 'Här är meddelanden som hölls inne under tysta timmar, eller för att inte skicka för många på kort tid.',
  },
  label: {
    measured: 'Uppmätt',
    where: 'Plats',
    since: 'Sedan',
    duration: 'Varade',
    compared: 'Jämfört med gränsen',
    children: 'Vad det betyder för barnen',
    about: 'Om mätningen',
    sensor: 'Sensor',
    affected: 'Berörd mätning',
    todo: 'Att göra',
    consequence: 'Följd',
    previousIssue: 'Problemet var',
  },
  at: (time) => `(${time})`,
  peakSoFar: (v, at) => `Högsta värde hittills: ${v} (${at}).`,
  peak: (v, at) => `Högsta värde: ${v} (${at}).`,
  dayOf: (date) => `dygnet ${date}`,
  yearOf: (year) => `år ${year}`,
  fromTo: (from, to) => `från ${from} till ${to}`,
  above: (v, pct, threshold) => `${v} är ${pct} % över gränsen ${threshold}.`,
  belowStillOpen: (v, threshold) =>
    `Senaste värdet ${v} är under gränsen ${threshold}, men överskridandet räknas som pågående tills halten har hållit sig tydligt lägre en tid.`,
  rule: (rule, profile, legal) =>
    `Regel: ${rule}${profile === null ? '' : `, ur ${profile}`}${
      legal === undefined
        ? ''
        : legal
          ? ' (juridiskt bindande gränsvärde)'
          : ' (riktvärde eller mål, inte juridiskt bindande)'
    }.`,
  bandIs: (p, band) => `Enligt EEA:s europeiska luftkvalitetsindex motsvarar halten av ${p} nivån ”${band}”.`,
  childrenSensitive: 'Barn räknas till de känsliga grupperna, liksom personer med astma eller hjärt- och kärlsjukdom.',
  adviceSensitive: (a) => `Råd till känsliga grupper, och därmed barnen: ${a}`,
  adviceGeneral: (a) => `Råd till alla: ${a}`,
  schoolHint: 'I skolan och förskolan gäller det till exempel idrott och intensiv lek utomhus.',
  annualNote:
    'Ett årsmedelvärde beskriver barnens långvariga exponering, inte luften en enskild dag. Råd om aktiviteter utomhus utgår från halterna just nu; de finns på kartan.',
  indicative:
    'Värdena kommer från en lågkostnadssensor och är indikativa. De är inte officiella mätningar och kan inte visa om gränsvärden eller miljökvalitetsnormer följs.',
  offlineConsequence:
    'Tills sensorn är i drift igen saknas mätvärden från platsen, och inga larm om luftkvaliteten kan skickas därifrån.',
  qualityConsequence: 'Misstänkta värden räknas inte med i larmen om luftkvalitet förrän felet är åtgärdat.',
  seeMap: 'Se mer på kartan',
  unsubscribe: 'Avsluta prenumerationen',
  footer: 'Du får det här meddelandet eftersom du prenumererar på meddelanden från skolluft.',
}

const EN: Texts = {
  locale: 'en-GB',
  pollutantShort: { pm1: 'PM1', pm25: 'PM2.5', pm10: 'PM10', no2: 'NO₂', temp: 'temperature', rh: 'humidity' },
  pollutantLong: {
    pm1: 'PM1 (very fine particles)',
    pm25: 'PM2.5 (fine particles)',
    pm10: 'PM10 (particles)',
    no2: 'nitrogen dioxide (NO₂)',
    temp: 'temperature',
    rh: 'relative humidity',
  },
  period: { hour: 'hourly mean', day: 'daily mean', running24h: 'running 24-hour mean', year: 'annual mean' },
  periodShort: { hour: 'hour', day: 'day', running24h: 'running 24 h', year: 'year' },
  somePollutant: 'air pollution',
  band: { 1: 'Good', 2: 'Fair', 3: 'Moderate', 4: 'Poor', 5: 'Very poor', 6: 'Extremely poor' },
  issue: {
    offline: 'no readings arrive',
    low_coverage: 'too few readings (under 75 % of those expected)',
    stuck: 'the same value over and over (the sensor may be stuck)',
    out_of_range: 'values outside what the sensor can measure',
    high_humidity: `very high humidity (above ${HIGH_HUMIDITY_PERCENT} %), which makes optical particle sensors read high`,
    pm_order: 'finer particles above coarser ones (for example PM2.5 above PM10), which is not possible',
  },
  issueAction: {
    offline: 'Check the power supply and the network connection.',
    low_coverage: 'Check the network connection; the sensor is losing readings.',
    stuck: 'Restart the sensor; replace it if the problem remains.',
    out_of_range: 'Check the sensor and its air inlet (dirt, insects); replace it if the problem remains.',
    high_humidity: 'Check that the sensor is sheltered from rain. In fog or drizzle this passes once the air dries.',
    pm_order: 'Clean or replace the particle sensor.',
  },
  urgentPrefix: 'ALERT: ',
  sensor: (id) => (id === undefined ? 'the sensor' : `sensor ${id}`),
  subject: {
    opened: (site, p, threshold) => `${site}: ${p} above ${threshold}`,
    escalated: (site, p, level) => `${site}: ${p} rising, above ${level}`,
    reminder: (site, p, threshold) => `${site}: ${p} still above ${threshold}`,
    closed: (site, p) => `${site}: ${p} back to normal`,
    offline: (site, sensor) => `${site}: ${sensor} offline`,
    quality: (site, sensor) => `${site}: ${sensor} suspect readings`,
    recovered: (site, sensor) => `${site}: ${sensor} working again`,
    digest: (n, where) => `Summary: ${n} ${n === 1 ? 'message' : 'messages'} – ${where}`,
    sites: (n) => `${n} sites`,
  },
  intro: {
    opened: (p, site, threshold, period) => `The level of ${p} at ${site} is above ${threshold} (${period}).`,
    escalated: (p, site, level) => `The level of ${p} at ${site} has risen further, above ${level}.`,
    reminder: (p, site, threshold, since) =>
      `The level of ${p} at ${site} has been above ${threshold} since ${since}, and the breach is still ongoing.`,
    closed: (p, site, threshold) =>
      `The level of ${p} at ${site} is back to normal. The breach of ${threshold} is over.`,
    offline: (sensor, site, since) => `${capitalise(sensor)} at ${site} has sent no readings since ${since}.`,
    quality: (sensor, site, since, issue) =>
      `${capitalise(sensor)} at ${site} has given suspect readings since ${since}: ${issue}.`,
    recovered: (sensor, site, since) => `${capitalise(sensor)} at ${site} has been working again since ${since}.`,
    digest: 'These messages were held back during quiet hours, or to avoid sending too many at once.',
  },
  label: {
    measured: 'Measured',
    where: 'Where',
    since: 'Since',
    duration: 'Lasted',
    compared: 'Compared with the limit',
    children: 'What it means for children',
    about: 'About the data',
    sensor: 'Sensor',
    affected: 'Affected measurement',
    todo: 'What to do',
    consequence: 'Consequence',
    previousIssue: 'The problem was',
  },
  at: (time) => `(${time})`,
  peakSoFar: (v, at) => `Highest value so far: ${v} (${at}).`,
  peak: (v, at) => `Highest value: ${v} (${at}).`,
  dayOf: (date) => date,
  yearOf: (year) => `the year ${year}`,
  fromTo: (from, to) => `from ${from} to ${to}`,
  above: (v, pct, threshold) => `${v} is ${pct} % above the limit of ${threshold}.`,
  belowStillOpen: (v, threshold) =>
    `The latest value, ${v}, is below the limit of ${threshold}, but the breach counts as ongoing until the level has stayed clearly lower for a while.`,
  rule: (rule, profile, legal) =>
    `Rule: ${rule}${profile === null ? '' : `, from ${profile}`}${
      legal === undefined
        ? ''
        : legal
          ? ' (legally binding limit value)'
          : ' (guideline or target, not legally binding)'
    }.`,
  bandIs: (p, band) => `On the EEA's European Air Quality Index, this level of ${p} is “${band}”.`,
  childrenSensitive: 'Children are one of the sensitive groups, as are people with asthma or heart disease.',
  adviceSensitive: (a) => `Advice for sensitive groups, and so for the children: ${a}`,
  adviceGeneral: (a) => `Advice for everyone: ${a}`,
  schoolHint: 'At school and preschool this means, for example, PE and vigorous play outdoors.',
  annualNote:
    "An annual mean describes the children's long-term exposure, not the air on a given day. Advice on outdoor activity follows the current levels, shown on the map.",
  indicative:
    'The values come from a low-cost sensor and are indicative. They are not official measurements and cannot show whether legal limits or air-quality standards are met.',
  offlineConsequence:
    'Until the sensor is back, there are no readings from this site and no air-quality alerts from it.',
  qualityConsequence: 'Suspect values are left out of air-quality alerts until the problem is fixed.',
  seeMap: 'See more on the map',
  unsubscribe: 'Unsubscribe',
  footer: 'You receive this message because you subscribed to messages from skolluft.',
}

const TEXTS: Readonly<Record<AlertLanguage, Texts>> = { sv: SV, en: EN }

// ---------------------------------------------------------------------------------------------------------
// Helpers

function capitalise(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1)
}

const HTML_ESCAPES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
}

/** Escapes text for HTML element content and quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c] ?? c)
}

/** A subject is one line: control characters (CR, LF, tab …) become spaces. */
function oneLine(text: string): string {
  return text
    .replace(/\p{Cc}+/gu, ' ')
    .replace(/ {2,}/g, ' ')
    .trim()
}

/** The URL if it is http(s), else null (never link javascript: or data: URLs). */
function safeUrl(url: string | null): string | null {
  if (url === null) return null
  try {
    const parsed = new URL(url)
    return parsed.protocol === 'https:' || parsed.protocol === 'http:' ? parsed.href : null
  } catch {
    return null
  }
}

interface Formatters {
  readonly lang: AlertLanguage
  readonly t: Texts
  readonly ug: (value: number) => string
  readonly time: (at: number) => string
  readonly date: (at: number) => string
}

function formatters(lang: AlertLanguage, timeZone: string): Formatters {
  const t = TEXTS[lang]
  // One decimal: the sensors' resolution is coarser than that; the locale picks the decimal comma in Swedish.
  const number = new Intl.NumberFormat(t.locale, { maximumFractionDigits: 1 })
  const time = new Intl.DateTimeFormat(t.locale, {
    timeZone,
    weekday: 'long',
    day: 'numeric',
    month: 'long',
    year: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    timeZoneName: 'short',
  })
  // Calendar days of daily rules are fixed UTC+1 days (aggregation.ts, reference §3), whatever the season.
  const date = new Intl.DateTimeFormat(t.locale, {
    timeZone: 'UTC',
    weekday: 'long',
    day: 'numeric',
    month: 'long',
    year: 'numeric',
  })
  return {
    lang,
    t,
    ug: (v) => `${number.format(v)} µg/m³`,
    time: (at) => time.format(at),
    date: (at) => date.format(at + REGULATORY_DAY_OFFSET_MS),
  }
}

/** The start of an averaging period as people read it: a time for hours, a day for daily means, a year. */
function periodStart(f: Formatters, at: number, period: ThresholdPeriod | undefined): string {
  if (period === 'day') return f.t.dayOf(f.date(at))
  if (period === 'year') return f.t.yearOf(String(new Date(at + REGULATORY_DAY_OFFSET_MS).getUTCFullYear()))
  return f.time(at)
}

/**
 * The index band behind the health advice: given, or derived from the value (µg/m³). The EEA index is defined
 * on hourly concentrations (reference §2.1, 2024 revision); for a daily or running mean the band is an
 * indication. Annual means get no band: the index describes the air now, not a year.
 */
function bandOf(d: AlertMessageData): EaqiLevel | null {
  if (d.band !== undefined) return d.band as EaqiLevel
  const value = d.value ?? d.peak
  if (d.pollutant === undefined || !isEaqiPollutant(d.pollutant) || d.period === 'year' || value === undefined) {
    return null
  }
  return eaqiLevel(d.pollutant, value)
}

interface Section {
  readonly label: string | null
  readonly lines: readonly string[]
}

interface Body {
  readonly subject: string
  readonly intro: string
  readonly sections: readonly Section[]
}

function childrenSection(f: Formatters, d: AlertMessageData): Section | null {
  if (d.period === 'year' && d.kind !== 'closed') return { label: f.t.label.children, lines: [f.t.annualNote] }
  const band = bandOf(d)
  if (band === null || d.pollutant === undefined) return null
  const advice = EAQI_HEALTH_ADVICE[f.lang][band]
  const lines = [f.t.bandIs(f.t.pollutantShort[d.pollutant], f.t.band[band]), f.t.childrenSensitive]
  lines.push(f.t.adviceSensitive(advice.sensitive), f.t.adviceGeneral(advice.general))
  // From "moderate" up the sensitive-group advice asks for less activity outdoors; say what that is at school.
  if (band >= 3) lines.push(f.t.schoolHint)
  return { label: f.t.label.children, lines }
}

function breachBody(f: Formatters, d: AlertMessageData): Body {
  const { t } = f
  const short = d.pollutant === undefined ? t.somePollutant : t.pollutantShort[d.pollutant]
  const long = d.pollutant === undefined ? t.somePollutant : t.pollutantLong[d.pollutant]
  const period = d.period === undefined ? '' : t.period[d.period]
  const threshold = d.threshold === undefined ? '?' : f.ug(d.threshold)
  const limit = d.period === undefined ? threshold : `${threshold} (${t.periodShort[d.period]})`
  const since = d.start === undefined ? '?' : periodStart(f, d.start, d.period)
  const site = d.siteName
  const urgent = d.severity === 'alert' && d.kind !== 'closed' ? t.urgentPrefix : ''

  const sections: Section[] = []
  const measured: string[] = []
  const what = period === '' ? capitalise(long) : `${capitalise(long)}, ${period}`
  if (d.value !== undefined) {
    const when = d.valueAt === undefined ? '' : ` ${t.at(periodStart(f, d.valueAt, d.period))}`
    measured.push(`${what} ${f.ug(d.value)}${when}.`)
  } else {
    measured.push(`${what}.`)
  }
  if (d.peak !== undefined && d.peakAt !== undefined && (d.value === undefined || d.peak > d.value)) {
    const peakAt = periodStart(f, d.peakAt, d.period)
    measured.push(d.kind === 'closed' ? t.peak(f.ug(d.peak), peakAt) : t.peakSoFar(f.ug(d.peak), peakAt))
  }
  sections.push({ label: t.label.measured, lines: measured })
  sections.push({ label: t.label.where, lines: [`${site} (${d.siteId})`] })
  if (d.kind === 'closed' && d.end !== undefined) {
    sections.push({ label: t.label.duration, lines: [t.fromTo(since, periodStart(f, d.end, d.period))] })
  } else {
    sections.push({ label: t.label.since, lines: [since] })
  }

  const compared: string[] = []
  if (d.value !== undefined && d.threshold !== undefined && d.kind !== 'closed') {
    if (d.value > d.threshold && d.threshold > 0) {
      const percent = Math.round(((d.value - d.threshold) / d.threshold) * 100)
      compared.push(t.above(f.ug(d.value), percent, threshold))
    } else {
      compared.push(t.belowStillOpen(f.ug(d.value), threshold))
    }
  }
  const ruleName = d.ruleLabel ?? d.ruleId
  if (ruleName !== undefined) {
    const rule = d.ruleLabel !== undefined && d.ruleId !== undefined ? `${d.ruleLabel} (${d.ruleId})` : ruleName
    compared.push(t.rule(rule, d.profileName ?? null, d.legal))
  }
  if (compared.length > 0) sections.push({ label: t.label.compared, lines: compared })

  const children = childrenSection(f, d)
  if (children !== null) sections.push(children)

  switch (d.kind) {
    case 'escalated': {
      const level = d.level === undefined ? '?' : f.ug(d.level)
      const levelLimit = d.period === undefined ? level : `${level} (${t.periodShort[d.period]})`
      return {
        subject: urgent + t.subject.escalated(site, short, levelLimit),
        intro: t.intro.escalated(long, site, level),
        sections,
      }
    }
    case 'reminder':
      return {
        subject: urgent + t.subject.reminder(site, short, limit),
        intro: t.intro.reminder(long, site, threshold, since),
        sections,
      }
    case 'closed':
      return { subject: t.subject.closed(site, short), intro: t.intro.closed(long, site, threshold), sections }
    default:
      return {
        subject: urgent + t.subject.opened(site, short, limit),
        intro: t.intro.opened(long, site, threshold, period),
        sections,
      }
  }
}

function deviceBody(f: Formatters, d: AlertMessageData): Body {
  const { t } = f
  const sensor = t.sensor(d.deviceId)
  const site = d.siteName
  const since = d.since === undefined ? '?' : f.time(d.since)
  const sections: Section[] = [
    { label: t.label.where, lines: [`${site} (${d.siteId})`] },
    { label: t.label.since, lines: [since] },
  ]
  if (d.deviceId !== undefined) sections.unshift({ label: t.label.sensor, lines: [d.deviceId] })
  if (d.kind === 'device-recovered') {
    if (d.issue !== undefined)
      sections.push({ label: t.label.previousIssue, lines: [`${capitalise(t.issue[d.issue])}.`] })
    return { subject: t.subject.recovered(site, sensor), intro: t.intro.recovered(sensor, site, since), sections }
  }
  if (d.kind === 'device-offline') {
    sections.push({ label: t.label.todo, lines: [t.issueAction[d.issue ?? 'offline']] })
    sections.push({ label: t.label.consequence, lines: [t.offlineConsequence] })
    return { subject: t.subject.offline(site, sensor), intro: t.intro.offline(sensor, site, since), sections }
  }
  const issue = d.issue ?? 'out_of_range'
  if (d.pollutant !== undefined) sections.push({ label: t.label.affected, lines: [t.pollutantLong[d.pollutant]] })
  sections.push({ label: t.label.todo, lines: [t.issueAction[issue]] })
  sections.push({ label: t.label.consequence, lines: [t.qualityConsequence] })
  return {
    subject: t.subject.quality(site, sensor),
    intro: t.intro.quality(sensor, site, since, t.issue[issue]),
    sections,
  }
}

function bodyOf(f: Formatters, d: AlertMessageData): Body {
  return DEVICE_KINDS.includes(d.kind) ? deviceBody(f, d) : breachBody(f, d)
}

function isBreach(d: AlertMessageData): boolean {
  return BREACH_KINDS.includes(d.kind)
}

/** `Label: first line`, further lines below it. */
function sectionText(s: Section): string {
  const text = s.lines.join('\n')
  return s.label === null ? text : `${s.label}: ${text}`
}

/** Sections as text lines, a blank line around each section of several lines (the text is read on phones too). */
function spacedText(sections: readonly Section[]): string[] {
  const out: string[] = []
  sections.forEach((s, i) => {
    const previous = sections[i - 1]
    if (previous === undefined || s.lines.length > 1 || previous.lines.length > 1) out.push('')
    out.push(sectionText(s))
  })
  return out
}

function sectionHtml(s: Section): string {
  const text = s.lines.map(escapeHtml).join('<br>\n')
  return s.label === null ? `<p>${text}</p>` : `<p><strong>${escapeHtml(s.label)}:</strong> ${text}</p>`
}

function linkText(f: Formatters, links: AlertLinks): { text: string[]; html: string[] } {
  const dashboard = safeUrl(links.dashboard)
  const unsubscribe = safeUrl(links.unsubscribe)
  const text: string[] = []
  const html: string[] = []
  if (dashboard !== null) {
    text.push(`${f.t.seeMap}: ${dashboard}`)
    html.push(`<p><a href="${escapeHtml(dashboard)}">${escapeHtml(f.t.seeMap)}</a></p>`)
  }
  const footer = [escapeHtml(f.t.footer)]
  text.push('', f.t.footer)
  if (unsubscribe !== null) {
    text.push(`${f.t.unsubscribe}: ${unsubscribe}`)
    footer.push(`<a href="${escapeHtml(unsubscribe)}">${escapeHtml(f.t.unsubscribe)}</a>`)
  }
  html.push(`<p style="font-size:small;color:#555">${footer.join(' ')}</p>`)
  return { text, html }
}

function htmlDocument(lang: AlertLanguage, subject: string, body: readonly string[]): string {
  return [
    '<!doctype html>',
    `<html lang="${lang}">`,
    `<head><meta charset="utf-8"><title>${escapeHtml(subject)}</title></head>`,
    '<body style="font-family:sans-serif;line-height:1.4">',
    ...body,
    '</body>',
    '</html>',
  ].join('\n')
}

// ---------------------------------------------------------------------------------------------------------
// Public

/** One alert as an e-mail (subject, plain text, HTML); the text also serves in-app and webhook summaries. */
export function renderAlert(
  data: AlertMessageData,
  lang: AlertLanguage,
  links: AlertLinks,
  timeZone: string = ALERT_TIME_ZONE,
): RenderedAlert {
  const f = formatters(lang, timeZone)
  const body = bodyOf(f, data)
  const subject = oneLine(body.subject)
  const sections = isBreach(data)
    ? [...body.sections, { label: f.t.label.about, lines: [f.t.indicative] }]
    : body.sections
  const link = linkText(f, links)
  const text = [body.intro, ...spacedText(sections), '', ...link.text].join('\n')
  const html = htmlDocument(lang, subject, [
    `<p>${escapeHtml(body.intro)}</p>`,
    ...sections.map(sectionHtml),
    ...link.html,
  ])
  return { subject, text, html }
}

/**
 * Several deferred alerts as one message (the morning digest, or a rate-limited batch), in the given order.
 * Each item keeps its subject as a heading, its intro and its facts; the indicative-data note comes once.
 */
export function renderDigest(
  items: readonly AlertMessageData[],
  lang: AlertLanguage,
  links: AlertLinks,
  timeZone: string = ALERT_TIME_ZONE,
): RenderedAlert {
  if (items.length === 0) throw new RangeError('a digest needs at least one item')
  const f = formatters(lang, timeZone)
  const sites = [...new Set(items.map((d) => d.siteName))]
  const where = sites.length === 1 && sites[0] !== undefined ? sites[0] : f.t.subject.sites(sites.length)
  const subject = oneLine(f.t.subject.digest(items.length, where))
  const text: string[] = [f.t.intro.digest]
  const html: string[] = [`<p>${escapeHtml(f.t.intro.digest)}</p>`]
  items.forEach((d, i) => {
    const body = bodyOf(f, d)
    const heading = `${i + 1}. ${oneLine(body.subject)}`
    text.push('', heading, body.intro, ...spacedText(body.sections))
    html.push(`<h2 style="font-size:1.1em">${escapeHtml(heading)}</h2>`, `<p>${escapeHtml(body.intro)}</p>`)
    html.push(...body.sections.map(sectionHtml))
  })
  if (items.some(isBreach)) {
    const about: Section = { label: f.t.label.about, lines: [f.t.indicative] }
    text.push('', sectionText(about))
    html.push(sectionHtml(about))
  }
  const link = linkText(f, links)
  text.push('', ...link.text)
  html.push(...link.html)
  return { subject, text: text.join('\n'), html: htmlDocument(lang, subject, html) }
}
