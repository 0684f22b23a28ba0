import { ALL_TELEMETRY_FILTER } from '@skolluft/core'
import { describe, expect, it } from 'vitest'
import { IngestConfig, remoteRegistry } from './config.ts'
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

describe('remote registry settings (REGISTRY_URL, REGISTRY_TOKEN)', () => {
  const TOKEN = `skl_${'a'.repeat(24)}_${'B'.repeat(43)}`

  it('takes the API URL and a service token, with STORE=influxdb', () => {
    const parsed = IngestConfig.parse({ REGISTRY_URL: 'https://luft.lund.se', REGISTRY_TOKEN: TOKEN })
    expect(remoteRegistry({ ...parsed, STORE: 'influxdb' })).toEqual({ url: 'https://luft.lund.se', token: TOKEN })
  })

  it('is off when neither is set (empty counts as unset)', () => {
    const parsed = IngestConfig.parse({ REGISTRY_URL: '', REGISTRY_TOKEN: '' })
    expect(remoteRegistry({ ...parsed, STORE: 'sqlite' })).toBeUndefined()
  })

  it('refuses URLs that are not http(s) and tokens that are not API tokens', () => {
    for (const url of ['ftp://luft.lund.se', 'luft.lund.se', 'mqtt://luft.lund.se']) {
      expect(IngestConfig.safeParse({ REGISTRY_URL: url }).success, url).toBe(false)
    }
    for (const token of ['secret', 'skl_', 'skl_with space', 'Bearer skl_x']) {
      expect(IngestConfig.safeParse({ REGISTRY_TOKEN: token }).success, token).toBe(false)
    }
  })

  it('names every problem: a URL without a token, a token without a URL, and any STORE but influxdb', () => {
    expect(() =>
      remoteRegistry({ REGISTRY_URL: 'https://a.se', REGISTRY_TOKEN: undefined, STORE: 'influxdb' }),
    ).toThrow(/REGISTRY_TOKEN: required with REGISTRY_URL/)
    expect(() => remoteRegistry({ REGISTRY_URL: undefined, REGISTRY_TOKEN: TOKEN, STORE: 'influxdb' })).toThrow(
      /REGISTRY_URL: required with REGISTRY_TOKEN/,
    )
    expect(() => remoteRegistry({ REGISTRY_URL: 'https://a.se', REGISTRY_TOKEN: TOKEN, STORE: 'sqlite' })).toThrow(
      /STORE: must be influxdb with REGISTRY_URL \(is sqlite\)/,
    )
  })
})
