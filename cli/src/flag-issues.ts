import type { z } from 'zod'

/**
 * A zod error as the command line says it: each issue prefixed with the flag of its field (`flagOf` maps schema
 * field names to flags; unmapped fields keep their name), joined by '; '.
 */
export function describeFlagIssues(error: z.ZodError, flagOf: Readonly<Record<string, string>>): string {
  return error.issues
    .map((issue) => {
      const field = issue.path[0]
      const flag = typeof field === 'string' ? (flagOf[field] ?? field) : undefined
      return flag === undefined ? issue.message : `${flag}: ${issue.message}`
    })
    .join('; ')
}
