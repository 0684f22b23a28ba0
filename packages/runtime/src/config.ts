import type { z } from 'zod'

export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID'
  readonly problems: readonly string[]
  constructor(problems: readonly string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`)
    this.name = 'ConfigError'
    this.problems = problems
  }
}

/**
 * Validates environment variables against a zod object schema once, at start. Every problem is
 * listed with the variable's name, so an operator can fix them all in one go.
 */
export function loadConfig<S extends z.ZodType>(schema: S, env: NodeJS.ProcessEnv): z.infer<S> {
  const result = schema.safeParse(env)
  if (result.success) return result.data
  const problems = result.error.issues.map((issue) => {
    const name = issue.path.join('.') || '(environment)'
    const value = issue.path.length === 1 ? env[String(issue.path[0])] : undefined
    const shown = value === undefined ? 'not set' : `got ${JSON.stringify(value)}`
    return `${name}: ${issue.message} (${shown})`
  })
  throw new ConfigError(problems)
}
