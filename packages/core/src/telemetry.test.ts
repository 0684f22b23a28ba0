import { readdirSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { METRIC_INFO, METRICS, type MetricValues } from './metrics.ts'
import { createRng } from './random.ts'
import {
  formatTelemetryReading,
  MAX_BATCH_READINGS,
  MAX_FUTURE_SKEW_MS,
  MAX_PAYLOAD_BYTES,
  MAX_READING_AGE_MS,
  type ParsedReading,
  parseTelemetry,
  REJECT_CODES,
  type RejectCode,
  type TelemetryParseResult,
} from './telemetry.ts'
import { NO2_UGM3_PER_PPB } from './units.ts'

/** The corpus's fixed clock: every fixture timestamp is relative to it (test-fixtures/telemetry/README.md). */
const NOW = Date.parse('2026-11-29T08:00:00Z')
const TS = '2026-11-29T07:45:00Z'
const FIXTURE_DIR = fileURLToPath(new URL('../test-fixtures/telemetry/', import.meta.url))
/** `<expect>[@<index>]--<slug>.json`; see the corpus README for the grammar. */
const FIXTURE_NAME = /^(?<expect>[a-z][a-z0-9_]*)(?:@(?<index>\d+))?--(?<slug>[a-z0-9_-]+)\.json$/
/** The corpus folder's own files; everything else in it must be a payload named by the grammar. */
const NOT_PAYLOADS = new Set(['README.md', 'biome.json', 'generate.ts'])
/** Codes that come from the transport (topic, registry), not from the payload; parseTelemetry never returns them. */
const TRANSPORT_CODES: readonly RejectCode[] = ['bad_topic', 'unknown_device', 'revoked_device']

interface Fixture {
  readonly file: string
  readonly bytes: Buffer
  /** 'ok', or the reject code expected for the whole message or for one reading. */
  readonly expect: 'ok' | RejectCode
  /** Set when the message is accepted as a batch but the reading at this index is rejected. */
  readonly index: number | null
  readonly slug: string
}

function isRejectCode(value: string): value is RejectCode {
  return (REJECT_CODES as readonly string[]).includes(value)
}

function loadCorpus(): { fixtures: Fixture[]; misnamed: string[] } {
  const fixtures: Fixture[] = []
  const misnamed: string[] = []
  for (const file of readdirSync(FIXTURE_DIR).sort()) {
    if (NOT_PAYLOADS.has(file)) continue
    const groups = FIXTURE_NAME.exec(file)?.groups
    const expect = groups?.expect
    const slug = groups?.slug
    if (expect === undefined || slug === undefined || (expect !== 'ok' && !isRejectCode(expect))) {
      misnamed.push(file)
      continue
    }
    const index = groups?.index === undefined ? null : Number(groups.index)
    fixtures.push({ file, bytes: readFileSync(FIXTURE_DIR + file), expect, index, slug })
  }
  return { fixtures, misnamed }
}

const { fixtures, misnamed } = loadCorpus()
const rejectedWhole = fixtures.filter((f) => f.expect !== 'ok' && f.index === null)
const rejectedOne = fixtures.filter((f) => f.expect !== 'ok' && f.index !== null)
const accepted = fixtures.filter((f) => f.expect === 'ok')

/** What a message for each code must name so that an operator can act on it. */
const MUST_MENTION: Record<RejectCode, (slug: string) => string> = {
  bad_json: () => 'JSON',
  payload_too_large: () => String(MAX_PAYLOAD_BYTES),
  not_an_object: () => 'object',
  batch_too_big: () => String(MAX_BATCH_READINGS),
  empty_batch: () => '"readings"',
  // Field-level codes: the fixture slug starts with the field the message must quote.
  wrong_type: (slug) => `"${fieldOfSlug(slug)}"`,
  out_of_range: (slug) => `"${fieldOfSlug(slug)}"`,
  missing_ts: () => '"ts"',
  bad_timestamp: () => '"ts"',
  future_timestamp: () => '"ts"',
  too_old: () => '"ts"',
  no_measurement: () => 'pm25',
  conflicting_no2: () => '"no2_ppb"',
  duplicate_in_batch: () => 'timestamp',
  bad_topic: () => 'topic',
  unknown_device: () => 'device',
  revoked_device: () => 'device',
}

function fieldOfSlug(slug: string): string {
  return slug.split('-')[0] ?? slug
}

/** One line, short (never the payload itself), no leaked internals, and names what is wrong. */
function expectReadable(message: string, mention: string): void {
  expect(message).toContain(mention)
  expect(message.length).toBeGreaterThanOrEqual(10)
  expect(message.length).toBeLessThanOrEqual(300)
  expect(message).not.toMatch(/\n|undefined|\[object |"code":|"path":/)
}

function mustBeOk(result: TelemetryParseResult) {
  if (!result.ok) throw new Error(`expected an accepted message, got ${result.code}: ${result.message}`)
  return result
}

function fixtureBytes(file: string): Buffer {
  const fixture = fixtures.find((f) => f.file === file)
  if (!fixture) throw new Error(`fixture ${file} is missing`)
  return fixture.bytes
}

function parseOne(payload: Record<string, unknown>, now = NOW): TelemetryParseResult {
  return parseTelemetry(JSON.stringify(payload), now)
}

function reading(result: TelemetryParseResult): ParsedReading {
  const only = mustBeOk(result).readings[0]
  if (!only) throw new Error('no reading')
  return only
}

describe('telemetry fixture corpus', () => {
  it('names every fixture by its expected outcome', () => {
    expect(misnamed).toEqual([])
    expect(fixtures.length).toBeGreaterThanOrEqual(80)
  })

  it('covers every reject code that a payload can cause', () => {
    const covered = new Set(fixtures.map((f) => f.expect))
    const missing = REJECT_CODES.filter((code) => !TRANSPORT_CODES.includes(code) && !covered.has(code))
    expect(missing).toEqual([])
  })

  it('has size fixtures that sit exactly on the limits', () => {
    expect(fixtureBytes('payload_too_large--over-128-kib.json').byteLength).toBe(MAX_PAYLOAD_BYTES + 1)
    const Batch = z.object({ readings: z.array(z.unknown()) })
    const count = (file: string) => Batch.parse(JSON.parse(fixtureBytes(file).toString('utf8'))).readings.length
    expect(count('batch_too_big--501-readings.json')).toBe(MAX_BATCH_READINGS + 1)
    expect(count('ok--batch-500-readings.json')).toBe(MAX_BATCH_READINGS)
    expect(fixtureBytes('bad_json--empty-payload.json').byteLength).toBe(0)
  })

  it.each(rejectedWhole.map((f) => [f.file, f] as const))('%s: rejects the whole message', (_file, fixture) => {
    const result = parseTelemetry(fixture.bytes, NOW)
    expect(result.ok ? 'accepted' : result.code).toBe(fixture.expect)
    if (result.ok || fixture.expect === 'ok') return
    expectReadable(result.message, MUST_MENTION[fixture.expect](fixture.slug))
  })

  it.each(rejectedOne.map((f) => [f.file, f] as const))(
    '%s: keeps the batch, rejects one reading',
    (_file, fixture) => {
      const result = mustBeOk(parseTelemetry(fixture.bytes, NOW))
      expect(result.batch).toBe(true)
      expect(result.rejected.map((r) => [r.index, r.code])).toEqual([[fixture.index, fixture.expect]])
      const total = z.object({ readings: z.array(z.unknown()) }).parse(JSON.parse(fixture.bytes.toString('utf8')))
        .readings.length
      expect(result.readings).toHaveLength(total - 1)
      const [rejection] = result.rejected
      if (rejection && fixture.expect !== 'ok')
        expectReadable(rejection.message, MUST_MENTION[fixture.expect](fixture.slug))
    },
  )

  it.each(accepted.map((f) => [f.file, f] as const))('%s: accepts every reading', (_file, fixture) => {
    const result = mustBeOk(parseTelemetry(fixture.bytes, NOW))
    expect(result.rejected).toEqual([])
    expect(result.readings.length).toBeGreaterThanOrEqual(1)
  })

  it('gives the same result for a string and its UTF-8 bytes', () => {
    for (const fixture of fixtures) {
      const text = fixture.bytes.toString('utf8')
      if (!Buffer.from(text, 'utf8').equals(fixture.bytes)) continue // not valid UTF-8: bytes only
      expect(parseTelemetry(text, NOW), fixture.file).toEqual(parseTelemetry(fixture.bytes, NOW))
      expect(parseTelemetry(new Uint8Array(fixture.bytes), NOW), fixture.file).toEqual(
        parseTelemetry(fixture.bytes, NOW),
      )
    }
  })
})

describe('parseTelemetry: accepted readings', () => {
  it('parses the contract example exactly', () => {
    const result = mustBeOk(parseTelemetry(fixtureBytes('ok--contract-example.json'), NOW))
    expect(result).toEqual({
      ok: true,
      batch: false,
      rejected: [],
      ignoredFields: [],
      readings: [
        {
          ts: Date.UTC(2026, 10, 29, 7, 45),
          seq: 1042,
          values: { pm1: 3.1, pm25: 7.4, pm10: 12.9, no2: 18.2, temp: 4.5, rh: 81.2 },
        },
      ],
    })
  })

  it('normalises offset timestamps to the UTC epoch', () => {
    const utc = Date.UTC(2026, 10, 29, 7, 45)
    expect(reading(parseTelemetry(fixtureBytes('ok--offset-timestamp.json'), NOW)).ts).toBe(utc)
    expect(reading(parseTelemetry(fixtureBytes('ok--negative-offset-timestamp.json'), NOW)).ts).toBe(utc)
    expect(reading(parseOne({ ts: '2026-11-29T07:45:00+00:00', pm25: 1 })).ts).toBe(utc)
  })

  it('keeps milliseconds and truncates finer fractions', () => {
    expect(reading(parseTelemetry(fixtureBytes('ok--fractional-seconds.json'), NOW)).ts).toBe(
      Date.UTC(2026, 10, 29, 7, 45, 0, 250),
    )
    expect(reading(parseOne({ ts: '2026-11-29T07:45:00.123456Z', pm25: 1 })).ts).toBe(
      Date.UTC(2026, 10, 29, 7, 45, 0, 123),
    )
  })

  it('converts no2_ppb to µg/m³ with the EU factor 1.9125 and stores it as no2', () => {
    const { values } = reading(parseTelemetry(fixtureBytes('ok--no2-ppb.json'), NOW))
    expect(values).toEqual({ no2: 9.5 * NO2_UGM3_PER_PPB })
    expect(values.no2).toBeCloseTo(18.16875, 10)
    expect(Object.keys(values)).not.toContain('no2_ppb')
  })

  it('treats null values as absent', () => {
    const result = reading(parseTelemetry(fixtureBytes('ok--null-values-absent.json'), NOW))
    expect(result).toEqual({ ts: Date.UTC(2026, 10, 29, 7, 45), seq: 5, values: { pm25: 7.4, no2: 9.5 * 1.9125 } })
    // null no2 beside a real no2_ppb is not a conflict, nor is a real no2 beside a null no2_ppb
    expect(reading(parseOne({ ts: TS, no2: null, no2_ppb: 10 })).values).toEqual({ no2: 19.125 })
    expect(reading(parseOne({ ts: TS, no2: 18.2, no2_ppb: null })).values).toEqual({ no2: 18.2 })
  })

  it('accepts the slightly negative NO2 of an electrochemical cell near zero', () => {
    expect(reading(parseTelemetry(fixtureBytes('ok--no2-slightly-negative.json'), NOW)).values).toEqual({ no2: -5 })
  })

  it('reports unknown fields in ignoredFields and keeps the reading', () => {
    const result = mustBeOk(parseTelemetry(fixtureBytes('ok--unknown-fields.json'), NOW))
    expect(result.ignoredFields).toEqual(['co2', 'fw', 'pm25Compensated'])
    expect(result.readings[0]?.values).toEqual({ pm25: 7.4 })

    const unicode = mustBeOk(parseTelemetry(fixtureBytes('ok--unicode-unknown-field.json'), NOW))
    expect(unicode.ignoredFields).toEqual(['skola_åäö', '\u{1F32B}\uFE0F'])
    const nested = mustBeOk(parseTelemetry(fixtureBytes('ok--deeply-nested-unknown-field.json'), NOW))
    expect(nested.ignoredFields).toEqual(['junk'])
    const bytes = mustBeOk(parseTelemetry(fixtureBytes('ok--invalid-utf8-in-unknown-field.json'), NOW))
    expect(bytes.ignoredFields).toEqual(['note'])
  })

  it('reports unknown fields once per batch, including ones on the envelope', () => {
    const result = mustBeOk(
      parseOne({
        device: 'lund-01',
        readings: [
          { ts: '2026-11-29T07:44:00Z', pm25: 1, co2: 400 },
          { ts: TS, pm25: 2, co2: 410, rssi: -67 },
        ],
      }),
    )
    expect(result.ignoredFields).toEqual(['device', 'co2', 'rssi'])
    expect(result.readings).toHaveLength(2)
  })

  it('accepts v: 1 and a reading with no seq', () => {
    expect(reading(parseTelemetry(fixtureBytes('ok--version-1.json'), NOW)).seq).toBeNull()
    expect(reading(parseTelemetry(fixtureBytes('ok--seq-zero.json'), NOW)).seq).toBe(0)
  })

  it('keeps a batch in order and marks it as a batch', () => {
    const result = mustBeOk(parseTelemetry(fixtureBytes('ok--batch-three-readings.json'), NOW))
    expect(result.batch).toBe(true)
    expect(result.readings.map((r) => [r.seq, r.values.pm25])).toEqual([
      [1, 7.1],
      [2, 7.2],
      [3, 7.4],
    ])
    const single = mustBeOk(parseTelemetry(fixtureBytes('ok--batch-single-reading.json'), NOW))
    expect(single.batch).toBe(true)
    expect(single.readings).toHaveLength(1)
  })

  it('keeps the first of two readings with the same instant in a batch', () => {
    const result = mustBeOk(parseTelemetry(fixtureBytes('duplicate_in_batch@2--ts-repeated.json'), NOW))
    expect(result.readings.map((r) => r.seq)).toEqual([1, 2])
    expect(result.readings[1]?.values.pm25).toBe(7.4)
    const offset = mustBeOk(
      parseTelemetry(fixtureBytes('duplicate_in_batch@1--ts-same-instant-different-offset.json'), NOW),
    )
    expect(offset.readings).toHaveLength(1)
  })

  it('rejects a reading inside a batch without touching its neighbours', () => {
    const result = mustBeOk(parseTelemetry(fixtureBytes('out_of_range@1--rh-101-among-good-readings.json'), NOW))
    expect(result.readings.map((r) => r.values.pm25)).toEqual([7.1, 7.4])
    expect(result.rejected[0]?.message).toContain('"rh" = 101')
  })
})

describe('parseTelemetry: limits', () => {
  const body = (bytes: number): string => {
    const head = `{"ts":"${TS}","pm25":7.4,"pad":"`
    return `${head}${'x'.repeat(bytes - head.length - 2)}"}`
  }

  it('accepts a payload of exactly MAX_PAYLOAD_BYTES and refuses one byte more', () => {
    expect(body(MAX_PAYLOAD_BYTES)).toHaveLength(MAX_PAYLOAD_BYTES)
    expect(parseTelemetry(body(MAX_PAYLOAD_BYTES), NOW).ok).toBe(true)
    const over = parseTelemetry(body(MAX_PAYLOAD_BYTES + 1), NOW)
    expect(over.ok ? 'accepted' : over.code).toBe('payload_too_large')
  })

  it('counts UTF-8 bytes, not characters', () => {
    // 'å' is two bytes: fewer characters than the limit, more bytes.
    const head = `{"ts":"${TS}","pm25":7.4,"pad":"`
    const text = `${head}${'å'.repeat((MAX_PAYLOAD_BYTES - head.length) / 2)}"}`
    expect(text.length).toBeLessThan(MAX_PAYLOAD_BYTES)
    const result = parseTelemetry(text, NOW)
    expect(result.ok ? 'accepted' : result.code).toBe('payload_too_large')
  })

  it('allows MAX_FUTURE_SKEW_MS of clock skew, and not a millisecond more', () => {
    const at = (ms: number) => parseOne({ ts: new Date(ms).toISOString(), pm25: 1 })
    expect(at(NOW + MAX_FUTURE_SKEW_MS).ok).toBe(true)
    const late = at(NOW + MAX_FUTURE_SKEW_MS + 1)
    expect(late.ok ? 'accepted' : late.code).toBe('future_timestamp')
    expect(MAX_FUTURE_SKEW_MS).toBe(10 * 60 * 1000)
  })

  it('accepts readings up to MAX_READING_AGE_MS old, and not a millisecond older', () => {
    const at = (ms: number) => parseOne({ ts: new Date(ms).toISOString(), pm25: 1 })
    expect(at(NOW - MAX_READING_AGE_MS).ok).toBe(true)
    const old = at(NOW - MAX_READING_AGE_MS - 1)
    expect(old.ok ? 'accepted' : old.code).toBe('too_old')
    expect(MAX_READING_AGE_MS).toBe(400 * 86_400_000)
  })

  it.each(METRICS.map((m) => [m, METRIC_INFO[m]] as const))(
    '%s: accepts its inclusive physical range and nothing outside it',
    (metric, info) => {
      for (const inside of [info.min, info.max, (info.min + info.max) / 2]) {
        expect(reading(parseOne({ ts: TS, [metric]: inside })).values).toEqual({ [metric]: inside })
      }
      for (const outside of [info.min - 1e-6, info.max + 1e-6]) {
        const result = parseOne({ ts: TS, [metric]: outside })
        expect(result.ok ? 'accepted' : result.code).toBe('out_of_range')
        if (!result.ok) expectReadable(result.message, `"${metric}"`)
        if (!result.ok) expect(result.message).toContain(`${info.min}–${info.max} ${info.unit}`)
      }
    },
  )

  it('range-checks no2_ppb after conversion and reports the value as sent', () => {
    const limitPpb = METRIC_INFO.no2.max / NO2_UGM3_PER_PPB // 2091.5 ppb
    expect(parseOne({ ts: TS, no2_ppb: limitPpb }).ok).toBe(true)
    const over = parseOne({ ts: TS, no2_ppb: 2092 })
    expect(over.ok ? 'accepted' : over.code).toBe('out_of_range')
    if (!over.ok) expect(over.message).toMatch(/^"no2_ppb" = 2092 ppb \(4000\.95\d* µg\/m³\) is outside/)
    expect(parseOne({ ts: TS, no2_ppb: -10 }).ok).toBe(true) // -19.125 µg/m³, inside the noise floor
    const under = parseOne({ ts: TS, no2_ppb: -11 })
    expect(under.ok ? 'accepted' : under.code).toBe('out_of_range')
  })

  it('checks the envelope before the readings: a bad batch version rejects the whole message', () => {
    const result = parseTelemetry(fixtureBytes('wrong_type--v-batch-version-2.json'), NOW)
    expect(result).toMatchObject({ ok: false, code: 'wrong_type' })
    if (!result.ok) expect(result.message).not.toContain('readings')
  })
})

describe('formatTelemetryReading', () => {
  it('writes the v1 wire form: ISO ts, seq only when known, metrics only when present', () => {
    expect(
      formatTelemetryReading({ ts: Date.UTC(2026, 10, 29, 7, 45), seq: 1042, values: { pm25: 7.4, rh: 81.2 } }),
    ).toEqual({ ts: '2026-11-29T07:45:00.000Z', seq: 1042, pm25: 7.4, rh: 81.2 })
    expect(formatTelemetryReading({ ts: 0, seq: null, values: { temp: -3 } })).toEqual({
      ts: '1970-01-01T00:00:00.000Z',
      temp: -3,
    })
    expect(formatTelemetryReading({ ts: 0, values: {} })).toEqual({ ts: '1970-01-01T00:00:00.000Z' })
  })

  it('round-trips the contract example', () => {
    const parsed = reading(parseTelemetry(fixtureBytes('ok--contract-example.json'), NOW))
    const again = reading(parseTelemetry(JSON.stringify(formatTelemetryReading(parsed)), NOW))
    expect(again).toEqual(parsed)
  })

  it('round-trips random readings (seeded)', () => {
    const random = createRng(20261129)
    for (let i = 0; i < 500; i += 1) {
      const values: MetricValues = {}
      for (const metric of METRICS) {
        if (random() < 0.4) continue
        const { min, max } = METRIC_INFO[metric]
        values[metric] = Math.round((min + random() * (max - min)) * 100) / 100
      }
      if (Object.keys(values).length === 0) values.pm25 = 0
      const original: ParsedReading = {
        ts: NOW - Math.floor(random() * MAX_READING_AGE_MS),
        seq: random() < 0.5 ? null : Math.floor(random() * 1e9),
        values,
      }
      const wire = JSON.stringify(formatTelemetryReading(original))
      expect(reading(parseTelemetry(wire, NOW)), wire).toEqual(original)
    }
  })
})

describe('parseTelemetry: robustness (seeded fuzz)', () => {
  const KEYS = ['ts', 'seq', 'v', 'pm1', 'pm25', 'pm10', 'no2', 'no2_ppb', 'temp', 'rh', 'readings', 'x', '']

  function randomJson(random: () => number, depth: number): unknown {
    const pick = random()
    if (depth > 3 || pick < 0.3) {
      const leaves: unknown[] = [null, true, 0, -1, 7.4, 1e308, -1e-308, '', TS, '7.4', 'NaN', '2026-02-30T00:00:00Z']
      return leaves[Math.floor(random() * leaves.length)]
    }
    if (pick < 0.5) return Array.from({ length: Math.floor(random() * 4) }, () => randomJson(random, depth + 1))
    const out: Record<string, unknown> = {}
    for (let i = Math.floor(random() * 6); i > 0; i -= 1) {
      out[KEYS[Math.floor(random() * KEYS.length)] ?? 'x'] = randomJson(random, depth + 1)
    }
    return out
  }

  function expectWellFormed(result: TelemetryParseResult): void {
    if (result.ok) {
      expect(result.readings.length + result.rejected.length).toBeGreaterThanOrEqual(1)
      for (const r of result.rejected) expect(REJECT_CODES).toContain(r.code)
      for (const r of result.readings) expect(Number.isFinite(r.ts)).toBe(true)
    } else {
      expect(REJECT_CODES).toContain(result.code)
      expect(result.message.length).toBeGreaterThan(0)
    }
  }

  it('never throws on random JSON documents', () => {
    const random = createRng(42)
    for (let i = 0; i < 2000; i += 1) expectWellFormed(parseTelemetry(JSON.stringify(randomJson(random, 0)), NOW))
  })

  it('never throws on random bytes', () => {
    const random = createRng(7)
    for (let i = 0; i < 2000; i += 1) {
      const bytes = Uint8Array.from({ length: Math.floor(random() * 64) }, () => Math.floor(random() * 256))
      if (i % 2 === 0) bytes[0] = 0x7b // '{', so some get past the first character
      expectWellFormed(parseTelemetry(bytes, NOW))
    }
  })

  it('keeps the reject codes unique and stable', () => {
    expect(new Set(REJECT_CODES).size).toBe(REJECT_CODES.length)
    for (const code of REJECT_CODES) expect(code).toMatch(/^[a-z][a-z0-9_]*$/)
  })
})
