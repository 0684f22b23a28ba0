import { DEFAULT_EVALUATED_PROFILES } from '@skolluft/core'
import { DEFAULT_EXPORT_ATTRIBUTION, DEFAULT_EXPORT_LICENCE } from '@skolluft/export'
import { ConfigError, loadConfig } from '@skolluft/runtime'
import { describe, expect, it } from 'vitest'
import { ApiEnv, apiListenOptions, DEFAULT_TILE_ATTRIBUTION, DEFAULT_TILE_URL } from './config.ts'

function problemsOf(env: NodeJS.ProcessEnv): string[] {
  try {
    loadConfig(ApiEnv, env)
  } catch (error) {
    if (error instanceof ConfigError) return error.problems.map((p) => p.split(':')[0] ?? '')
    throw error
  }
  return []
}

describe('ApiEnv', () => {
  it('has defaults and treats empty variables as unset', () => {
    const env = loadConfig(ApiEnv, {
      PORT: '',
      OPERATOR_TOKEN: '',
      PUBLIC_MAP: '',
      TILE_URL: '',
      TILE_ATTRIBUTION: '',
      SECURE_COOKIES: '',
      TRUST_PROXY: '',
      NODE_ENV: '',
      EXPORT_LICENCE: '',
      EXPORT_ATTRIBUTION: '',
      ALERT_PROFILES: '',
    })
    expect(env).toEqual({
      PORT: 8080,
      HOST: '0.0.0.0',
      OPERATOR_TOKEN: undefined,
      PUBLIC_MAP: undefined,
      TILE_URL: DEFAULT_TILE_URL,
      TILE_ATTRIBUTION: DEFAULT_TILE_ATTRIBUTION,
      SECURE_COOKIES: false,
      TRUST_PROXY: undefined,
      NODE_ENV: 'development',
      EXPORT_LICENCE: DEFAULT_EXPORT_LICENCE,
      EXPORT_ATTRIBUTION: DEFAULT_EXPORT_ATTRIBUTION,
      ALERT_PROFILES: [...DEFAULT_EVALUATED_PROFILES],
    })
    expect(apiListenOptions(env)).toEqual({
      host: '0.0.0.0',
      port: 8080,
      options: {
        operatorToken: undefined,
        // Off unless the deployment says otherwise.
        publicMap: false,
        tileUrl: 'https://tile.openstreetmap.org/{z}/{x}/{y}.png',
        tileAttribution: '© OpenStreetMap contributors',
        secureCookies: false,
        trustProxy: false,
        production: false,
        exportEnv: {
          EXPORT_LICENCE: DEFAULT_EXPORT_LICENCE,
          EXPORT_ATTRIBUTION: DEFAULT_EXPORT_ATTRIBUTION,
          ALERT_PROFILES: [...DEFAULT_EVALUATED_PROFILES],
        },
      },
    })
  })

  it('takes the public-map default from the caller (the demo) unless PUBLIC_MAP is set', () => {
    const unset = loadConfig(ApiEnv, {})
    expect(apiListenOptions(unset, { publicMap: true }).options.publicMap).toBe(true)
    expect(apiListenOptions(unset, { publicMap: false }).options.publicMap).toBe(false)
    const off = loadConfig(ApiEnv, { PUBLIC_MAP: 'off' })
    expect(apiListenOptions(off, { publicMap: true }).options.publicMap).toBe(false)
    const on = loadConfig(ApiEnv, { PUBLIC_MAP: 'on' })
    expect(apiListenOptions(on, { publicMap: false }).options.publicMap).toBe(true)
  })

  it('reads every spelling of the on/off flags', () => {
    for (const yes of ['1', 'true', 'on', 'yes']) {
      expect(loadConfig(ApiEnv, { PUBLIC_MAP: yes, SECURE_COOKIES: yes })).toMatchObject({
        PUBLIC_MAP: true,
        SECURE_COOKIES: true,
      })
    }
    for (const no of ['0', 'false', 'off', 'no']) {
      expect(loadConfig(ApiEnv, { PUBLIC_MAP: no, SECURE_COOKIES: no })).toMatchObject({
        PUBLIC_MAP: false,
        SECURE_COOKIES: false,
      })
    }
    expect(problemsOf({ PUBLIC_MAP: 'maybe', SECURE_COOKIES: 'TRUE!' })).toEqual(['PUBLIC_MAP', 'SECURE_COOKIES'])
  })

  it('turns TILE_URL=none into no tiles, passes other settings on (NODE_ENV=production too), and refuses a non-http tile URL', () => {
    const env = loadConfig(ApiEnv, {
      TILE_URL: 'none',
      TILE_ATTRIBUTION: '© Lantmäteriet',
      SECURE_COOKIES: 'on',
      TRUST_PROXY: 'loopback',
      NODE_ENV: 'production',
    })
    expect(apiListenOptions(env).options).toMatchObject({
      tileUrl: null,
      tileAttribution: '© Lantmäteriet',
      secureCookies: true,
      trustProxy: 'loopback',
      production: true,
    })
    const tiles = 'https://{s}.tiles.example.org/{z}/{x}/{y}.png'
    expect(apiListenOptions(loadConfig(ApiEnv, { TILE_URL: tiles })).options.tileUrl).toBe(tiles)
    expect(problemsOf({ TILE_URL: 'ftp://tiles.example.org/{z}/{x}/{y}.png' })).toEqual(['TILE_URL'])
    expect(problemsOf({ TILE_URL: 'not a url' })).toEqual(['TILE_URL'])
    expect(problemsOf({ TILE_ATTRIBUTION: 'x'.repeat(501) })).toEqual(['TILE_ATTRIBUTION'])
  })

  it('refuses a short operator token and a bad port, naming both', () => {
    expect(problemsOf({ PORT: '70000', OPERATOR_TOKEN: 'short' })).toEqual(['PORT', 'OPERATOR_TOKEN'])
  })

  it('reads port 0 and a long token', () => {
    const token = 'x'.repeat(32)
    const env = loadConfig(ApiEnv, { PORT: '0', HOST: '127.0.0.1', OPERATOR_TOKEN: token })
    expect(env).toMatchObject({ PORT: 0, HOST: '127.0.0.1', OPERATOR_TOKEN: token })
    expect(apiListenOptions(env)).toMatchObject({ host: '127.0.0.1', port: 0, options: { operatorToken: token } })
  })

  it('passes REDIS_URL on (redis:// or rediss://, unset or empty: one instance) and refuses anything else', () => {
    for (const url of ['redis://127.0.0.1:6379', 'rediss://user:secret@redis.example.org:6380/0']) {
      expect(apiListenOptions(loadConfig(ApiEnv, { REDIS_URL: url })).redisUrl).toBe(url)
    }
    expect(apiListenOptions(loadConfig(ApiEnv, { REDIS_URL: '' })).redisUrl).toBeUndefined()
    expect(apiListenOptions(loadConfig(ApiEnv, {})).redisUrl).toBeUndefined()
    expect(problemsOf({ REDIS_URL: 'http://127.0.0.1:6379' })).toEqual(['REDIS_URL'])
    expect(problemsOf({ REDIS_URL: '127.0.0.1:6379' })).toEqual(['REDIS_URL'])
  })
})
