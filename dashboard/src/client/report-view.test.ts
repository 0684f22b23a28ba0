import { describe, expect, it } from 'vitest'
import { reportRequestOf } from './report-request.ts'
import { PROFILE_IDS, profileChoiceOf, reportApiPath, reportUrl } from './report-view.ts'

describe('report URLs', () => {
  it('reads which report a page URL asks for, and nothing for the map', () => {
    expect(reportRequestOf('?report=site&site=site-a&from=2026-01-05&to=2026-02-22')).toEqual({
      kind: 'site',
      site: 'site-a',
      period: { from: '2026-01-05', to: '2026-02-22' },
    })
    expect(reportRequestOf('?report=municipality&from=2026-02-30&to=2026-03-01')).toEqual({
      kind: 'municipality',
      period: null,
    })
    expect(reportRequestOf('?report=measures')).toEqual({ kind: 'measures' })
    expect(reportRequestOf('?site=site-a')).toBeNull()
    expect(reportRequestOf('?report=site')).toBeNull()
  })

  it('writes the page URL and the API paths with the period and the chosen rules', () => {
    const site = { kind: 'site', site: 'site a', period: null } as const
    const period = { from: '2026-02-01', to: '2026-02-28' }
    expect(reportUrl(site, period, ['se-mkn', 'eu2024-2881'])).toBe(
      '/?report=site&site=site+a&from=2026-02-01&to=2026-02-28&profiles=se-mkn,eu2024-2881',
    )
    expect(reportApiPath(site, period, true)).toBe(
      '/api/v1/sites/site%20a/report?from=2026-02-01&to=2026-02-28&format=csv',
    )
    expect(reportApiPath({ kind: 'municipality', period: null }, period, false, ['se-mkn'])).toBe(
      '/api/v1/reports/municipality?from=2026-02-01&to=2026-02-28&profiles=se-mkn',
    )
  })

  it('keeps known rule ids only, in the catalogue order; all or none means the API default', () => {
    expect(profileChoiceOf('?profiles=se-mkn,who2021-aqg,nonsense')).toEqual(['who2021-aqg', 'se-mkn'])
    expect(profileChoiceOf('?profiles=nonsense')).toBeNull()
    expect(profileChoiceOf(`?profiles=${PROFILE_IDS.join(',')}`)).toBeNull()
    expect(profileChoiceOf('')).toBeNull()
  })
})
