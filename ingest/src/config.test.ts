import { ALL_TELEMETRY_FILTER } from '@skolluft/core'
import { describe, expect, it } from 'vitest'
import { IngestConfig } from './config.ts'
import { telemetryFilter } from './ingest.ts'

describe('ingest scale-out settings', () => {
  it('takes a share name that is one topic level', () => {
    for (const group of ['ingest', 'skolluft-ingest', 'g_1.prod', 'lund']) {
      const parsed = IngestConfig.safeParse({ INGEST_SHARED_GROUP: group })
      expect(parsed.success && parsed.data.INGEST_SHARED_GROUP).toBe(group)
    }
  })

  it('refuses share names with topic separators, wildcards, $, spaces or control characters', () => {
    for (const group of ['a/b', '+', 'in#', '$share', 'two words', 'tab\t', 'x'.repeat(65), 'nul\u0000']) {
      const parsed = IngestConfig.safeParse({ INGEST_SHARED_GROUP: group })
      expect(parsed.success, group).toBe(false)
    }
  })

  it('treats empty variables as unset (VAR= in an env file)', () => {
    const parsed = IngestConfig.safeParse({ INGEST_SHARED_GROUP: '', INGEST_CLIENT_ID: '' })
    expect(parsed.success).toBe(true)
    expect(parsed.data?.INGEST_SHARED_GROUP).toBeUndefined()
    expect(parsed.data?.INGEST_CLIENT_ID).toBeUndefined()
  })

  it('takes a printable client id of at most 64 characters', () => {
    expect(IngestConfig.safeParse({ INGEST_CLIENT_ID: 'svc.ingest-worker-1' }).success).toBe(true)
    for (const id of ['with space', 'x'.repeat(65), 'åäö', 'line\n']) {
      expect(IngestConfig.safeParse({ INGEST_CLIENT_ID: id }).success, id).toBe(false)
    }
  })

  it('subscribes through $share/<group>/ only when a group is set', () => {
    expect(telemetryFilter(undefined)).toBe(ALL_TELEMETRY_FILTER)
    expect(telemetryFilter('ingest')).toBe(`$share/ingest/${ALL_TELEMETRY_FILTER}`)
  })
})
