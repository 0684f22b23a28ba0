import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { METRIC_INFO, METRICS } from './metrics.ts'
import {
  MAX_BATCH_READINGS,
  MAX_FUTURE_SKEW_MS,
  MAX_PAYLOAD_BYTES,
  MAX_READING_AGE_MS,
  REJECT_CODES,
} from './telemetry.ts'
import { TOPIC_KINDS, TOPIC_PREFIX } from './topics.ts'
import { NO2_UGM3_PER_PPB } from './units.ts'

/**
 * docs/device-contract.md quotes the contract for firmware makers. These checks keep its numbers, ranges,
 * topics and reject codes equal to the code, so a change to a constant fails here until the doc follows.
 */
const DOC = readFileSync(new URL('../../../docs/device-contract.md', import.meta.url), 'utf8')

/** Every markdown table row of the doc as trimmed cells (the formatter pads cells, so compare cells, not text). */
const ROWS: readonly (readonly string[])[] = DOC.split('\n')
  .filter((line) => line.startsWith('|') && !/^\|[\s|:-]+\|$/.test(line))
  .map((line) =>
    line
      .slice(1, -1)
      .split('|')
      .map((cell) => cell.trim()),
  )

function rowStartingWith(first: string): readonly string[] | undefined {
  return ROWS.find((cells) => cells[0] === first)
}

describe('docs/device-contract.md', () => {
  it('lists every reject code in the reject table, in code order', () => {
    const codes = ROWS.filter((cells) => /^(message|one reading)/.test(cells[1] ?? '')).map((cells) => cells[0])
    expect(codes).toEqual(REJECT_CODES.map((code) => `\`${code}\``))
  })

  it('gives each metric the unit and physical range of METRIC_INFO', () => {
    for (const metric of METRICS) {
      const { unit, min, max } = METRIC_INFO[metric]
      const row = rowStartingWith(`\`${metric}\``)
      expect(row?.slice(2), metric).toEqual([unit, String(min), String(max)])
    }
  })

  it('quotes the limits with their constant names and current values', () => {
    expect(rowStartingWith('readings in one batch')?.slice(1)).toEqual([
      '`MAX_BATCH_READINGS`',
      `${MAX_BATCH_READINGS}`,
    ])
    expect(rowStartingWith('bytes in one message (batch or single reading)')?.slice(1)).toEqual([
      '`MAX_PAYLOAD_BYTES`',
      `${MAX_PAYLOAD_BYTES} (128 KiB)`,
    ])
    expect(MAX_PAYLOAD_BYTES).toBe(128 * 1024)
    expect(DOC).toContain(`\`MAX_FUTURE_SKEW_MS\` = ${MAX_FUTURE_SKEW_MS / 60_000} minutes`)
    expect(DOC).toContain(`\`MAX_READING_AGE_MS\` = ${MAX_READING_AGE_MS / 86_400_000} days`)
    expect(DOC).toContain(`no2_ppb × ${NO2_UGM3_PER_PPB}        (NO2_UGM3_PER_PPB in units.ts)`)
  })

  it('names every topic of the grammar', () => {
    expect(DOC).toContain(`\`TOPIC_PREFIX\` = \`${TOPIC_PREFIX}\``)
    for (const kind of TOPIC_KINDS)
      expect(rowStartingWith(`\`${TOPIC_PREFIX}/{deviceId}/${kind}\``), kind).toBeDefined()
  })

  it('shows the contract example exactly as the fixture corpus has it', () => {
    const example = readFileSync(
      new URL('../test-fixtures/telemetry/ok--contract-example.json', import.meta.url),
      'utf8',
    )
    expect(DOC).toContain(example)
  })
})
