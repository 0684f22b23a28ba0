import { createHash } from 'node:crypto'
import { deriveSecret } from '@skolluft/runtime'
import type { Storage } from '@skolluft/storage'

/**
 * A person with an e-mail subscription, as POST /api/v1/subscriptions makes one (the unsubscribe hash is derived
 * from the deployment key the same way): a principal bound to `sites`, staff for the sites given, a caretaker for
 * device health. Quiet hours off, so what is sent when does not depend on the time of day the test runs.
 */
export async function subscribeByEmail(
  storage: Storage,
  key: Buffer,
  role: 'principal' | 'staff' | 'caretaker',
  sites: string[] | 'all',
  mail: string,
) {
  const user = await storage.access.addUser(
    { email: mail, name: null, role, passwordHash: null, sites: role === 'principal' && sites !== 'all' ? sites : [] },
    Date.now(),
  )
  const id = `sub_${user.id.replace(/[^A-Za-z0-9]/g, '')}`
  await storage.alerts.addSubscription({
    id,
    userId: user.id,
    topic: role === 'caretaker' ? 'device-health' : 'breaches',
    channel: 'email',
    target: mail,
    sites,
    minSeverity: 'warning',
    language: 'sv',
    quietHours: null,
    unsubscribeHash: createHash('sha256')
      .update(deriveSecret(key, 'unsubscribe', id))
      .digest('hex'),
    createdAt: Date.now(),
  })
  return user
}
