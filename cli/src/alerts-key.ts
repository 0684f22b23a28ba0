import { join } from 'node:path'
import { loadOrCreateAlertsKey, parseAlertsKey } from '@skolluft/runtime'

/** The deployment key for webhook signatures and unsubscribe links (runtime derived-keys.ts), in the data directory. */
export const ALERTS_KEY_FILE = 'alerts.key'

/** ALERTS_KEY when set (processes on several machines share it), else the data directory's key file. */
export async function loadAlertsKey(dataDir: string, configured: string | undefined): Promise<Buffer> {
  return configured === undefined ? loadOrCreateAlertsKey(join(dataDir, ALERTS_KEY_FILE)) : parseAlertsKey(configured)
}
