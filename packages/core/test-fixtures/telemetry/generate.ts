/**
 * Writes the telemetry payload corpus in this folder (see README.md). Run after changing a limit:
 *   npx tsx packages/core/test-fixtures/telemetry/generate.ts [outDir]
 * Every payload file (`*--*.json`) is deleted and rewritten; edit cases here, not in the files.
 */
import { mkdirSync, readdirSync, unlinkSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { MAX_BATCH_READINGS, MAX_FUTURE_SKEW_MS, MAX_PAYLOAD_BYTES, MAX_READING_AGE_MS } from '../../src/telemetry.ts'

const dir = process.argv[2] ?? fileURLToPath(new URL('.', import.meta.url))
mkdirSync(dir, { recursive: true })
for (const f of readdirSync(dir)) if (f.includes('--') && f.endsWith('.json')) unlinkSync(`${dir}/${f}`)

/** The corpus clock (README.md). */
const NOW = Date.parse('2026-11-29T08:00:00Z')
const iso = (ms: number): string => new Date(ms).toISOString().replace('.000Z', 'Z')
const MIN = 60_000
const DAY = 86_400_000
const TS = '2026-11-29T07:45:00Z'
const j = (o: unknown): string => JSON.stringify(o)
const files: Record<string, string> = {
  // ---- whole message rejected: envelope
  'bad_json--not-json': 'pm25=7.4 pm10=12.9',
  'bad_json--empty-payload': '',
  'bad_json--truncated': `{"ts":"${TS}","seq":1042,"pm25":7.4,"pm10":1`,
  'bad_json--nan-literal': `{"ts":"${TS}","pm25":NaN}`,
  'bad_json--infinity-literal': `{"ts":"${TS}","pm25":Infinity}`,
  'bad_json--trailing-comma': `{"ts":"${TS}","pm25":7.4,}`,
  'bad_json--single-quotes': `{'ts':'${TS}','pm25':7.4}`,
  'bad_json--unicode-minus-sign': `{"ts":"${TS}","temp":\u22125.2}`,
  'bad_json--utf8-bom': `\uFEFF{"ts":"${TS}","pm25":7.4}`,
  'bad_json--two-messages-concatenated': `{"ts":"${TS}","pm25":7.4}{"ts":"2026-11-29T07:46:00Z","pm25":7.5}`,
  'not_an_object--array-top-level': j([{ ts: TS, pm25: 7.4 }]),
  'not_an_object--string-top-level': j(`{"ts":"${TS}","pm25":7.4}`),
  'not_an_object--null': 'null',
  'not_an_object--number': '7.4',
  'not_an_object--deeply-nested-arrays': '['.repeat(5000) + ']'.repeat(5000),
  'batch_too_big--501-readings': j({
    readings: Array.from({ length: MAX_BATCH_READINGS + 1 }, (_, i) => ({
      ts: iso(NOW - (MAX_BATCH_READINGS + 1 - i) * MIN),
      seq: i,
      pm25: 7.4,
    })),
  }),
  'empty_batch--readings-empty': j({ readings: [] }),
  'wrong_type--readings-not-an-array': j({ readings: { ts: TS, pm25: 7.4 } }),
  'wrong_type--readings-null': j({ readings: null }),
  'wrong_type--v-batch-version-2': j({ v: 2, readings: [{ ts: TS, pm25: 7.4 }] }),
  // ---- whole message rejected: the single reading
  'missing_ts--empty-object': '{}',
  'missing_ts--no-ts-field': j({ seq: 7, pm25: 7.4, pm10: 12.9 }),
  'missing_ts--uppercase-ts-key': j({ TS: TS, pm25: 7.4 }),
  'missing_ts--zero-width-space-in-key': `{"ts\u200b":"${TS}","pm25":7.4}`,
  'missing_ts--airrohr-body-forwarded-unmapped': j({
    esp8266id: '1234567',
    software_version: 'NRZ-2024-135',
    sensordatavalues: [
      { value_type: 'SDS_P1', value: '12.40' },
      { value_type: 'SDS_P2', value: '7.10' },
    ],
  }),
  'missing_ts--airgradient-body-forwarded-unmapped': j({
    pm01: 3,
    pm02: 7,
    pm10: 8,
    atmp: 25.87,
    rhum: 43,
    serialno: 'ecda3b1eaaaf',
    firmware: '3.1.3',
  }),
  'missing_ts--smart-citizen-body-forwarded-unmapped': j({
    data: [{ recorded_at: '2016-06-08 10:30:00Z', sensors: [{ id: 1, value: 21 }] }],
  }),
  'bad_timestamp--ts-without-zone': j({ ts: '2026-11-29T07:45:00', pm25: 7.4 }),
  'bad_timestamp--ts-invalid-date-feb-30': j({ ts: '2026-02-30T07:45:00Z', pm25: 7.4 }),
  'bad_timestamp--ts-hour-24': j({ ts: '2026-11-29T24:00:00Z', pm25: 7.4 }),
  'bad_timestamp--ts-space-separator': j({ ts: '2026-11-29 07:45:00Z', pm25: 7.4 }),
  'bad_timestamp--ts-offset-without-colon': j({ ts: '2026-11-29T08:45:00+0100', pm25: 7.4 }),
  'bad_timestamp--ts-without-seconds': j({ ts: '2026-11-29T07:45Z', pm25: 7.4 }),
  'bad_timestamp--ts-date-only': j({ ts: '2026-11-29', pm25: 7.4 }),
  'bad_timestamp--ts-epoch-milliseconds': j({ ts: 1795938300000, pm25: 7.4 }),
  'bad_timestamp--ts-null': j({ ts: null, pm25: 7.4 }),
  'bad_timestamp--ts-unicode-hyphens': j({ ts: '2026\u201011\u201029T07:45:00Z', pm25: 7.4 }),
  'bad_timestamp--ts-purpleair-style': j({ ts: '2026/11/29T07:45:00z', pm25: 7.4 }),
  'future_timestamp--one-day-ahead': j({ ts: iso(NOW + DAY), pm25: 7.4 }),
  'future_timestamp--ten-minutes-one-second-ahead': j({ ts: iso(NOW + MAX_FUTURE_SKEW_MS + 1000), pm25: 7.4 }),
  'future_timestamp--local-time-labelled-utc': j({ ts: '2026-11-29T09:00:00Z', pm25: 7.4 }),
  'too_old--401-days': j({ ts: iso(NOW - MAX_READING_AGE_MS - DAY), pm25: 7.4 }),
  'too_old--rtc-reset-to-epoch': j({ ts: '1970-01-01T00:00:00Z', pm25: 7.4 }),
  'wrong_type--pm25-string': j({ ts: TS, pm25: '7.4' }),
  'wrong_type--pm25-boolean': j({ ts: TS, pm25: true }),
  'wrong_type--pm25-fullwidth-digits': j({ ts: TS, pm25: '\uFF17.\uFF14' }),
  'wrong_type--pm25-deeply-nested': `{"ts":"${TS}","pm25":${'['.repeat(2000)}7.4${']'.repeat(2000)}}`,
  'wrong_type--pm25-exponent-overflow': `{"ts":"${TS}","pm25":1e999}`,
  'wrong_type--rh-airrohr-string-value': j({ ts: TS, pm10: 12.4, rh: '81.20' }),
  'wrong_type--seq-negative': j({ ts: TS, seq: -1, pm25: 7.4 }),
  'wrong_type--seq-float': j({ ts: TS, seq: 1042.5, pm25: 7.4 }),
  'wrong_type--seq-beyond-safe-integer': `{"ts":"${TS}","seq":9007199254740993,"pm25":7.4}`,
  'wrong_type--v-version-2': j({ v: 2, ts: TS, pm25: 7.4 }),
  'out_of_range--pm25-negative': j({ ts: TS, pm25: -0.1 }),
  'out_of_range--pm25-1e9': j({ ts: TS, pm25: 1e9 }),
  'out_of_range--pm10-above-2000': j({ ts: TS, pm10: 2000.5 }),
  'out_of_range--rh-101': j({ ts: TS, temp: 4.5, rh: 101 }),
  'out_of_range--temp-minus-80': j({ ts: TS, temp: -80, rh: 50 }),
  'out_of_range--no2-below-noise-floor': j({ ts: TS, no2: -20.5 }),
  'out_of_range--no2_ppb-3000': j({ ts: TS, no2_ppb: 3000 }),
  'no_measurement--ts-only': j({ ts: TS, seq: 3 }),
  'no_measurement--all-null': j({
    ts: TS,
    pm1: null,
    pm25: null,
    pm10: null,
    no2: null,
    no2_ppb: null,
    temp: null,
    rh: null,
  }),
  'no_measurement--only-unknown-fields': j({ ts: TS, co2: 447, voc_index: 100 }),
  'conflicting_no2--no2-and-no2_ppb': j({ ts: TS, no2: 18.2, no2_ppb: 9.5 }),
  // ---- batch accepted, one reading rejected
  'out_of_range@1--rh-101-among-good-readings': j({
    readings: [
      { ts: '2026-11-29T07:43:00Z', pm25: 7.1 },
      { ts: '2026-11-29T07:44:00Z', pm25: 7.2, rh: 101 },
      { ts: TS, pm25: 7.4 },
    ],
  }),
  'duplicate_in_batch@2--ts-repeated': j({
    readings: [
      { ts: '2026-11-29T07:44:00Z', seq: 1, pm25: 7.2 },
      { ts: TS, seq: 2, pm25: 7.4 },
      { ts: TS, seq: 3, pm25: 9.9 },
    ],
  }),
  'duplicate_in_batch@1--ts-same-instant-different-offset': j({
    readings: [
      { ts: TS, pm25: 7.4 },
      { ts: '2026-11-29T08:45:00+01:00', pm25: 7.4 },
    ],
  }),
  'wrong_type@0--pm25-string-in-first-reading': j({
    readings: [
      { ts: '2026-11-29T07:44:00Z', pm25: '7.2' },
      { ts: TS, pm25: 7.4 },
    ],
  }),
  'not_an_object@1--reading-is-a-number': j({
    readings: [{ ts: '2026-11-29T07:44:00Z', pm25: 7.2 }, 7.4, { ts: TS, pm25: 7.4 }],
  }),
  'missing_ts@0--first-reading-without-ts': j({ readings: [{ pm25: 7.2 }, { ts: TS, pm25: 7.4 }] }),
  'future_timestamp@2--ts-clock-jump-a-year-ahead': j({
    readings: [
      { ts: '2026-11-29T07:44:00Z', pm25: 7.2 },
      { ts: TS, pm25: 7.4 },
      { ts: '2027-11-29T07:46:00Z', pm25: 7.5 },
    ],
  }),
  // ---- accepted
  'ok--contract-example':
    '{"ts":"2026-11-29T07:45:00Z","seq":1042,"pm1":3.1,"pm25":7.4,"pm10":12.9,"no2":18.2,"temp":4.5,"rh":81.2}',
  'ok--offset-timestamp': j({ ts: '2026-11-29T08:45:00+01:00', pm25: 7.4 }),
  'ok--negative-offset-timestamp': j({ ts: '2026-11-29T02:45:00-05:00', pm25: 7.4 }),
  'ok--fractional-seconds': j({ ts: '2026-11-29T07:45:00.250Z', pm25: 7.4 }),
  'ok--no2-ppb': j({ ts: TS, no2_ppb: 9.5 }),
  'ok--no2-slightly-negative': j({ ts: TS, no2: -5 }),
  'ok--null-values-absent': j({
    ts: TS,
    seq: 5,
    pm1: null,
    pm25: 7.4,
    pm10: null,
    no2: null,
    no2_ppb: 9.5,
    temp: null,
    rh: null,
  }),
  'ok--unknown-fields': j({ ts: TS, pm25: 7.4, co2: 447, fw: '1.2.3', pm25Compensated: 5.9 }),
  'ok--unicode-unknown-field': j({
    ts: TS,
    pm25: 7.4,
    'skola_\u00e5\u00e4\u00f6': 'L\u00e5ngs\u00e5ngen',
    '\u{1F32B}\uFE0F': '\u{1F600}\u0000\u202E',
  }),
  'ok--deeply-nested-unknown-field': `{"ts":"${TS}","pm25":7.4,"junk":${'{"a":'.repeat(3000)}1${'}'.repeat(3000)}}`,
  'ok--ten-minutes-ahead': j({ ts: iso(NOW + MAX_FUTURE_SKEW_MS), pm25: 7.4 }),
  'ok--400-days-old': j({ ts: iso(NOW - MAX_READING_AGE_MS), pm25: 7.4 }),
  'ok--version-1': j({ v: 1, ts: TS, pm25: 7.4 }),
  'ok--seq-zero': j({ ts: TS, seq: 0, pm25: 7.4 }),
  'ok--pretty-printed': `${JSON.stringify({ ts: TS, seq: 1042, pm25: 7.4, pm10: 12.9 }, null, 2)}\n`,
  'ok--batch-three-readings': j({
    v: 1,
    readings: [
      { ts: '2026-11-29T07:43:00Z', seq: 1, pm25: 7.1 },
      { ts: '2026-11-29T07:44:00Z', seq: 2, pm25: 7.2 },
      { ts: TS, seq: 3, pm25: 7.4 },
    ],
  }),
  'ok--batch-500-readings': j({
    readings: Array.from({ length: MAX_BATCH_READINGS }, (_, i) => ({
      ts: iso(NOW - (MAX_BATCH_READINGS - i) * MIN),
      seq: i,
      pm25: 7.4,
    })),
  }),
  'ok--batch-single-reading': j({ readings: [{ ts: TS, pm25: 7.4 }] }),
}
// Exactly one byte over MAX_PAYLOAD_BYTES (128 KiB), otherwise a well-formed reading with a padding field.
const head = `{"ts":"${TS}","pm25":7.4,"pad":"`
const tail = '"}'
files['payload_too_large--over-128-kib'] = head + 'x'.repeat(MAX_PAYLOAD_BYTES + 1 - head.length - tail.length) + tail
// Raw bytes that are not UTF-8 (a lone 0xFF and a truncated multi-byte sequence).
const bytes = (before: string, after: string): Buffer =>
  Buffer.concat([Buffer.from(before), Buffer.from([0xff, 0xc3]), Buffer.from(after)])
writeFileSync(`${dir}/bad_timestamp--ts-invalid-utf8.json`, bytes(`{"ts":"2026-11-29T07:45:00`, `Z","pm25":7.4}`))
writeFileSync(`${dir}/ok--invalid-utf8-in-unknown-field.json`, bytes(`{"ts":"${TS}","pm25":7.4,"note":"`, `"}`))
for (const [name, text] of Object.entries(files)) writeFileSync(`${dir}/${name}.json`, text)
console.log(`${Object.keys(files).length + 2} payload files written to ${dir}`)
