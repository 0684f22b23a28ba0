import { join } from 'node:path'
import { loadOrCreateAlertsKey, parseAlertsKey, unsetIfEmpty } from '@skolluft/runtime'
import { z } from 'zod'

/** The deployment key for webhook signatures and unsubscribe links (runtime derived-keys.ts), in the data directory. */
export const ALERTS_KEY_FILE = 'alerts.key'

/**
 * ALERTS_KEY: base64url, ≥ 32 bytes; the API (unsubscribe links, webhook secrets shown once) and the alerts service
 * (signing, links in messages) must share it. Unset: a key file in DATA_DIR, created on first start.
 */
export const AlertsKeyEnv = z.object({ ALERTS_KEY: z.preprocess(unsetIfEmpty, z.string().min(43).optional()) })

/** ALERTS_KEY when set (processes on several machines share it), else the data directory's key file. */
export async function loadAlertsKey(dataDir: string, configured: string | undefined): Promise<Buffer> {
  return configured === undefined ? loadOrCreateAlertsKey(join(dataDir, ALERTS_KEY_FILE)) : parseAlertsKey(configured)
}
