import { ConfigError, loadConfig } from '@skolluft/runtime'
import { describe, expect, it } from 'vitest'
import { ApiEnv, apiListenOptions } from './config.ts'

describe('ApiEnv', () => {
  it('has defaults and treats empty variables as unset', () => {
    const env = loadConfig(ApiEnv, { PORT: '', OPERATOR_TOKEN: '' })
    expect(env).toEqual({ PORT: 8080, HOST: '0.0.0.0', OPERATOR_TOKEN: undefined })
    expect(apiListenOptions(env)).toEqual({ host: '0.0.0.0', port: 8080, options: { operatorToken: undefined } })
  })

  it('refuses a short operator token and a bad port, naming both', () => {
    let problems: readonly string[] = []
    try {
      loadConfig(ApiEnv, { PORT: '70000', OPERATOR_TOKEN: 'short' })
    } catch (error) {
      if (error instanceof ConfigError) problems = error.problems
    }
    expect(problems.map((p) => p.split(':')[0])).toEqual(['PORT', 'OPERATOR_TOKEN'])
  })

  it('reads port 0 and a long token', () => {
    const token = 'x'.repeat(32)
    expect(loadConfig(ApiEnv, { PORT: '0', HOST: '127.0.0.1', OPERATOR_TOKEN: token })).toEqual({
      PORT: 0,
      HOST: '127.0.0.1',
      OPERATOR_TOKEN: token,
    })
  })
})
