import { describe, expect, it } from 'vitest'
import {
  ALERT_KINDS,
  ALERT_LANGUAGES,
  type AlertLinks,
  AlertMessageData,
  EAQI_HEALTH_ADVICE,
  escapeHtml,
  renderAlert,
  renderDigest,
} from './alert-messages.ts'

const utc = (y: number, mo: number, d: number, h = 0, mi = 0): number => Date.UTC(y, mo - 1, d, h, mi)

const LINKS: AlertLinks = {
  dashboard: 'https://skolluft.example/?site=faladen',
  unsubscribe: 'https://skolluft.example/u/sub_1?t=abc',
}

/** A PM10 daily-mean incident under EU 2008/50 that opened on Wednesday 2025-01-15 (CET). */
const OPENED = AlertMessageData.parse({
  kind: 'opened',
  siteId: 'faladen',
  siteName: 'Fäladens förskola',
  pollutant: 'pm10',
  ruleId: 'eu2008-pm10-day',
  ruleLabel: 'PM10 dygnsmedelvärde',
  profileName: 'EU Directive 2008/50/EC limit values',
  legal: true,
  period: 'day',
  threshold: 50,
  value: 63.24,
  valueAt: utc(2025, 1, 14, 23), // the UTC+1 day of 15 January
  start: utc(2025, 1, 14, 23),
  severity: 'warning',
})

/** An NO2 hourly incident (EEA index rule) in summer time, 2025-06-10 07:00–08:00 CEST. */
const NO2 = {
  kind: 'opened',
  siteId: 'vipan',
  siteName: 'Vipans skola',
  pollutant: 'no2',
  ruleId: 'eea-no2-poor',
  profileName: 'European Air Quality Index (EEA, 2024 revision) bands',
  legal: false,
  period: 'hour',
  threshold: 60,
  value: 72.5,
  valueAt: utc(2025, 6, 10, 6),
  start: utc(2025, 6, 10, 5),
  severity: 'warning',
} as const

describe('AlertMessageData', () => {
  it('accepts every kind with its fields and is JSON-serialisable', () => {
    expect(ALERT_KINDS).toHaveLength(7)
    expect(ALERT_LANGUAGES).toEqual(['sv', 'en'])
    expect(AlertMessageData.parse(JSON.parse(JSON.stringify(OPENED)))).toEqual(OPENED)
  })

  it('refuses a breach message without its facts, and a device message without since', () => {
    const result = AlertMessageData.safeParse({ kind: 'opened', siteId: 'faladen', siteName: 'F', severity: 'info' })
    expect(result.success).toBe(false)
    expect(result.error?.issues.map((i) => i.message)).toEqual([
      "a 'opened' message needs pollutant",
      "a 'opened' message needs period",
      "a 'opened' message needs threshold",
      "a 'opened' message needs start",
    ])
    const device = AlertMessageData.safeParse({
      kind: 'device-quality',
      siteId: 'x',
      siteName: 'X',
      severity: 'warning',
    })
    expect(device.error?.issues.map((i) => i.message)).toEqual([
      "a 'device-quality' message needs since",
      "a 'device-quality' message needs issue",
    ])
    const escalated = AlertMessageData.safeParse({ ...OPENED, kind: 'escalated' })
    expect(escalated.error?.issues.map((i) => i.message)).toEqual(["an 'escalated' message needs level"])
    expect(AlertMessageData.safeParse({ ...OPENED, pollutant: 'rh' }).success).toBe(false)
  })

  it('refuses control characters in a site name (a line break in a subject is a header injection)', () => {
    expect(AlertMessageData.safeParse({ ...OPENED, siteName: 'Skolan\r\nBcc: x@example.com' }).success).toBe(false)
  })
})

describe('renderAlert: opened', () => {
  it('says in Swedish what, where, since when, against which limit, what it means for children, and that data are indicative', () => {
    const { subject, text } = renderAlert(OPENED, 'sv', LINKS)
    expect(subject).toBe('Fäladens förskola: PM10 över 50 µg/m³ (dygn)')
    expect(text).toContain('Halten av PM10 (partiklar) vid Fäladens förskola är över 50 µg/m³ (dygnsmedelvärde).')
    expect(text).toContain('Uppmätt: PM10 (partiklar), dygnsmedelvärde 63,2 µg/m³ (dygnet onsdag 15 januari 2025).')
    expect(text).toContain('Plats: Fäladens förskola (faladen)')
    expect(text).toContain('Sedan: dygnet onsdag 15 januari 2025')
    expect(text).toContain('Jämfört med gränsen: 63,2 µg/m³ är 26 % över gränsen 50 µg/m³.')
    expect(text).toContain(
      'Regel: PM10 dygnsmedelvärde (eu2008-pm10-day), ur EU Directive 2008/50/EC limit values (juridiskt bindande gränsvärde).',
    )
    // 63.24 µg/m³ PM10 is "moderate" (45–120, reference §2.1): sensitive groups, i.e. the children, get advice.
    expect(text).toContain('motsvarar halten av PM10 nivån ”Måttlig”')
    expect(text).toContain('Barn räknas till de känsliga grupperna')
    expect(text).toContain(`Råd till känsliga grupper, och därmed barnen: ${EAQI_HEALTH_ADVICE.sv[3].sensitive}`)
    expect(text).toContain(`Råd till alla: ${EAQI_HEALTH_ADVICE.sv[3].general}`)
    expect(text).toContain('lågkostnadssensor och är indikativa')
    expect(text).toContain(`Se mer på kartan: ${LINKS.dashboard}`)
    expect(text).toContain(`Avsluta prenumerationen: ${LINKS.unsubscribe}`)
  })

  it('says the same in English', () => {
    const { subject, text } = renderAlert(OPENED, 'en', LINKS)
    expect(subject).toBe('Fäladens förskola: PM10 above 50 µg/m³ (day)')
    expect(text).toContain('Measured: PM10 (particles), daily mean 63.2 µg/m³ (Wednesday, 15 January 2025).')
    expect(text).toContain('Compared with the limit: 63.2 µg/m³ is 26 % above the limit of 50 µg/m³.')
    expect(text).toContain('(legally binding limit value)')
    expect(text).toContain('this level of PM10 is “Moderate”')
    expect(text).toContain('Children are one of the sensitive groups')
    expect(text).toContain('indicative')
  })

  it('gives local times with the zone named, in summer time (CEST) and winter time (CET)', () => {
    const summer = renderAlert(AlertMessageData.parse(NO2), 'sv', LINKS).text
    expect(summer).toContain('Sedan: tisdag 10 juni 2025 kl. 07:00 CEST')
    expect(summer).toContain('timmedelvärde 72,5 µg/m³ (tisdag 10 juni 2025 kl. 08:00 CEST)')
    const winter = renderAlert(AlertMessageData.parse({ ...NO2, start: utc(2025, 1, 15, 6) }), 'en', LINKS).text
    expect(winter).toContain('Since: Wednesday, 15 January 2025 at 07:00 CET')
  })

  it('grades the health advice by the EEA band of the value (reference §2.1)', () => {
    // 72.5 µg/m³ NO2: "poor" (60–100)
    const poor = renderAlert(AlertMessageData.parse(NO2), 'en', LINKS).text
    expect(poor).toContain('“Poor”')
    expect(poor).toContain(EAQI_HEALTH_ADVICE.en[4].sensitive)
    expect(poor).toContain('(guideline or target, not legally binding)')
    // 160 µg/m³ NO2: "extremely poor" (> 150): everyone reduces, sensitive groups avoid
    const extreme = renderAlert(AlertMessageData.parse({ ...NO2, value: 160 }), 'en', LINKS).text
    expect(extreme).toContain('“Extremely poor”')
    expect(extreme).toContain('Advice for sensitive groups, and so for the children: Avoid physical activity outdoors.')
    expect(extreme).toContain('Advice for everyone: Reduce physical activity outdoors.')
    // An explicit band wins over the value.
    expect(renderAlert(AlertMessageData.parse({ ...NO2, band: 5 }), 'en', LINKS).text).toContain('“Very poor”')
    // Annual means get no index band.
    const annual = renderAlert(
      AlertMessageData.parse({ ...NO2, period: 'year', threshold: 40, value: 42, profileName: 'SE MKN' }),
      'en',
      LINKS,
    )
    expect(annual.text).not.toContain('EEA')
    expect(annual.text).toContain(
      "What it means for children: An annual mean describes the children's long-term exposure",
    )
    expect(annual.text).toContain('the year 2025')
  })

  it('marks a top-level alert in the subject', () => {
    const alert = AlertMessageData.parse({ ...NO2, severity: 'alert' })
    expect(renderAlert(alert, 'sv', LINKS).subject).toBe('LARM: Vipans skola: NO₂ över 60 µg/m³ (timme)')
    expect(renderAlert(alert, 'en', LINKS).subject).toBe('ALERT: Vipans skola: NO₂ above 60 µg/m³ (hour)')
  })

  it('escapes everything interpolated into the HTML, and the subject stays one line', () => {
    const evil = AlertMessageData.parse({ ...OPENED, siteName: '<script>alert("x")</script> & Co’s' })
    const { html, subject } = renderAlert(evil, 'en', {
      dashboard: 'https://example.org/?a=1&b="2"',
      unsubscribe: 'javascript:alert(1)',
    })
    expect(html).not.toContain('<script>')
    expect(html).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Co’s')
    expect(html).toContain('href="https://example.org/?a=1&amp;b=%222%22"')
    // A javascript: URL is never linked.
    expect(html).not.toContain('javascript:')
    expect(html.startsWith('<!doctype html>\n<html lang="en">')).toBe(true)
    expect(subject).not.toMatch(/[\r\n]/)
    // Unvalidated data with a line break still gives a one-line subject.
    const raw = { ...OPENED, siteName: 'A\r\nBcc: x@example.com' }
    expect(renderAlert(raw, 'sv', LINKS).subject).toBe('A Bcc: x@example.com: PM10 över 50 µg/m³ (dygn)')
  })

  it('leaves the unsubscribe link out when there is none (in-app)', () => {
    const { text, html } = renderAlert(OPENED, 'sv', { dashboard: LINKS.dashboard, unsubscribe: null })
    expect(text).not.toContain('Avsluta prenumerationen')
    expect(html).not.toContain('Avsluta prenumerationen')
  })
})

describe('renderAlert: escalated, reminder, closed', () => {
  const start = utc(2025, 3, 12, 6) // Wednesday 07:00 CET
  const base = { ...NO2, start, valueAt: start + 3 * 3_600_000 }

  it('escalated: rising, with the level exceeded and the start', () => {
    const data = AlertMessageData.parse({ ...base, kind: 'escalated', level: 100, value: 112, severity: 'alert' })
    const sv = renderAlert(data, 'sv', LINKS)
    expect(sv.subject).toBe('LARM: Vipans skola: NO₂ stiger, över 100 µg/m³ (timme)')
    expect(sv.text).toContain('har stigit ytterligare, över 100 µg/m³')
    expect(sv.text).toContain('Sedan: onsdag 12 mars 2025 kl. 07:00 CET')
    expect(renderAlert(data, 'en', LINKS).subject).toBe('ALERT: Vipans skola: NO₂ rising, above 100 µg/m³ (hour)')
  })

  it('reminder: still ongoing since the start, with the peak so far', () => {
    const data = AlertMessageData.parse({ ...base, kind: 'reminder', peak: 95, peakAt: start + 3_600_000 })
    const { subject, text } = renderAlert(data, 'en', LINKS)
    expect(subject).toBe('Vipans skola: NO₂ still above 60 µg/m³ (hour)')
    expect(text).toContain('since Wednesday, 12 March 2025 at 07:00 CET, and the breach is still ongoing')
    expect(text).toContain('Highest value so far: 95 µg/m³ (Wednesday, 12 March 2025 at 08:00 CET)')
  })

  it('reminder under the limit but not yet cleared explains the hysteresis', () => {
    const data = AlertMessageData.parse({ ...base, kind: 'reminder', value: 55 })
    expect(renderAlert(data, 'sv', LINKS).text).toContain(
      'Senaste värdet 55 µg/m³ är under gränsen 60 µg/m³, men överskridandet räknas som pågående',
    )
  })

  it('closed: back to normal, with how long it lasted and the peak', () => {
    const data = AlertMessageData.parse({
      ...base,
      kind: 'closed',
      value: 20,
      peak: 131.4,
      peakAt: start + 2 * 3_600_000,
      end: start + 9 * 3_600_000,
      severity: 'alert',
    })
    const sv = renderAlert(data, 'sv', LINKS)
    expect(sv.subject).toBe('Vipans skola: NO₂ tillbaka till normal nivå')
    expect(sv.text).toContain('är tillbaka till normal nivå')
    expect(sv.text).toContain('Varade: från onsdag 12 mars 2025 kl. 07:00 CET till onsdag 12 mars 2025 kl. 16:00 CET')
    expect(sv.text).toContain('Högsta värde: 131,4 µg/m³ (onsdag 12 mars 2025 kl. 09:00 CET).')
    expect(sv.text).toContain('nivån ”Godtagbar”') // 20 µg/m³ NO2 is "fair"
    const en = renderAlert(data, 'en', LINKS)
    expect(en.subject).toBe('Vipans skola: NO₂ back to normal')
    expect(en.text).toContain('back to normal')
  })
})

describe('renderAlert: device messages for caretakers', () => {
  const since = utc(2024, 10, 27, 0, 30) // 02:30 CEST, before the clocks went back
  const device = { siteId: 'vipan', siteName: 'Vipans skola', deviceId: 'sn-0042', since, severity: 'warning' } as const

  it('offline: device, site, since, what to check', () => {
    const { subject, text } = renderAlert(AlertMessageData.parse({ ...device, kind: 'device-offline' }), 'sv', LINKS)
    expect(subject).toBe('Vipans skola: sensor sn-0042 ur drift')
    expect(text).toContain(
      'Sensor sn-0042 vid Vipans skola har inte skickat några mätvärden sedan söndag 27 oktober 2024 kl. 02:30 CEST.',
    )
    expect(text).toContain('Kontrollera strömmen och nätverksanslutningen.')
    expect(text).not.toContain('indikativa')
  })

  it('quality: the issue, the affected metric and that suspect values are left out', () => {
    const data = AlertMessageData.parse({
      ...device,
      kind: 'device-quality',
      issue: 'high_humidity',
      pollutant: 'pm25',
    })
    const { subject, text } = renderAlert(data, 'en', LINKS)
    expect(subject).toBe('Vipans skola: sensor sn-0042 suspect readings')
    expect(text).toContain('very high humidity (above 90 %)')
    expect(text).toContain('Affected measurement: PM2.5 (fine particles)')
    expect(text).toContain('Suspect values are left out of air-quality alerts')
  })

  it('recovered: working again, with the earlier problem', () => {
    const data = AlertMessageData.parse({ ...device, kind: 'device-recovered', issue: 'stuck' })
    const sv = renderAlert(data, 'sv', LINKS)
    expect(sv.subject).toBe('Vipans skola: sensor sn-0042 i drift igen')
    expect(sv.text).toContain('Problemet var: Samma värde om och om igen')
    expect(renderAlert(data, 'en', LINKS).subject).toBe('Vipans skola: sensor sn-0042 working again')
  })
})

describe('renderDigest', () => {
  const offline = AlertMessageData.parse({
    kind: 'device-offline',
    siteId: 'vipan',
    siteName: 'Vipans skola',
    deviceId: 'sn-0042',
    since: utc(2025, 1, 15, 20),
    severity: 'warning',
  })

  it('lists every item in order under one subject, with the indicative note once', () => {
    const { subject, text, html } = renderDigest([OPENED, AlertMessageData.parse(NO2)], 'sv', LINKS)
    expect(subject).toBe('Sammanfattning: 2 meddelanden – 2 platser')
    const first = text.indexOf('1. Fäladens förskola: PM10 över 50 µg/m³ (dygn)')
    const second = text.indexOf('2. Vipans skola: NO₂ över 60 µg/m³ (timme)')
    expect(first).toBeGreaterThan(0)
    expect(second).toBeGreaterThan(first)
    expect(text.split('lågkostnadssensor').length - 1).toBe(1)
    expect(text).toContain(LINKS.unsubscribe)
    expect(html).toContain('<h2')
  })

  it('names the site when all items are from one site, in English too', () => {
    const { subject } = renderDigest([offline], 'en', LINKS)
    expect(subject).toBe('Summary: 1 message – Vipans skola')
    expect(renderDigest([offline], 'en', LINKS).text).not.toContain('indicative')
  })

  it('refuses an empty digest', () => {
    expect(() => renderDigest([], 'sv', LINKS)).toThrow(RangeError)
  })
})

it('escapeHtml escapes the five special characters', () => {
  expect(escapeHtml(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;')
})
