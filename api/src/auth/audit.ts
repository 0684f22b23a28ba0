import type { Principal } from '@skolluft/core'
import type { ApiContext } from '../options.ts'

/** How a principal is named in the audit log: `user:<id>`, `token:<id>`, or a fixed actor such as `setup`. */
export function actorOf(principal: Principal): string {
  return principal.kind === 'anonymous' ? 'anonymous' : `${principal.kind}:${principal.id}`
}

/**
 * Writes one audit entry for an admin action. Never pass secrets or password hashes in `detail`; the
 * audit log is readable by every admin.
 */
export async function audit(
  ctx: Pick<ApiContext, 'storage' | 'clock' | 'log'>,
  actor: string,
  action: string,
  target: string | null,
  detail: Record<string, unknown> = {},
): Promise<void> {
  await ctx.storage.access.appendAudit({ at: ctx.clock(), actor, action, target, detail })
  ctx.log.info({ actor, action, target }, 'audit')
}
