import { PROFILES } from '@skolluft/core'
import { describe, expect, it } from 'vitest'
import { REPORT_PROFILES } from './report-profiles.ts'

describe('the report’s rule picker', () => {
  it('offers exactly core’s threshold profiles, by id and name, in core’s order', () => {
    expect(REPORT_PROFILES).toEqual(PROFILES.map((p) => ({ id: p.id, name: p.name })))
  })
})
