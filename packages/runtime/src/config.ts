import { z as zod } from 'zod'

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
export function loadConfig<S extends zod.ZodType>(schema: S, env: NodeJS.ProcessEnv): zod.infer<S> {
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

/** `VAR=` in an env file means "not set", not "empty string": wrap a schema with `z.preprocess(unsetIfEmpty, …)`. */
export const unsetIfEmpty = (value: unknown): unknown => (value === '' ? undefined : value)

/** An on/off environment variable, parsed to a boolean; add `.default(true|false)` or `.optional()`. */
export function envFlag() {
  return zod
    .enum(['1', '0', 'true', 'false', 'on', 'off', 'yes', 'no'], { error: 'use on/off (or true/false, 1/0)' })
    .transform((v) => ['1', 'true', 'on', 'yes'].includes(v))
}
