import { join } from 'node:path'
import {
  generateSecret,
  hashSecret,
  parseSecretJson,
  readSecretFile,
  verifySecret,
  writeSecretFile,
} from '@skolluft/runtime'
import type { RegistryStore, ServiceAccount } from '@skolluft/storage'
import { z } from 'zod'

/**
 * The platform's own services (ingest, api, alerts) log in to the broker with credentials of their own.
 * Their secrets are generated on first start, stored hashed in the registry like device secrets,
 * and kept in plain text only in `DATA_DIR/service-credentials.json` (mode 0600), so processes that
 * share the data directory can log in. A deployment across machines passes MQTT_USERNAME and
 * MQTT_PASSWORD instead.
 *
 * Service usernames contain a dot, which device ids never do (core ID_PATTERN), so a device can
 * never be registered under a service's name.
 */
export const SERVICE_ROLES = ['ingest', 'api', 'alerts', 'admin'] as const
export type ServiceRole = (typeof SERVICE_ROLES)[number]
export const CREDENTIALS_FILE = 'service-credentials.json'

const Credential = z.object({ username: z.string().min(1), password: z.string().min(1) })
export type ServiceCredential = z.infer<typeof Credential>
// Partial: a file from a version with fewer roles still reads, and the missing roles are added.
const CredentialsFile = z.partialRecord(z.enum(SERVICE_ROLES), Credential)

export function serviceUsername(role: ServiceRole): string {
  return `svc.${role}`
}

async function readCredentials(path: string): Promise<Partial<Record<ServiceRole, ServiceCredential>>> {
  const text = await readSecretFile(path)
  if (text === undefined) return {}
  const parsed = CredentialsFile.safeParse(parseSecretJson(path, text))
  if (!parsed.success) throw new Error(`${path} is not a valid service credentials file; delete it to regenerate`)
  return parsed.data
}

/**
 * Makes sure every service role has a working credential in both the registry and the file, and
 * returns them. Idempotent; a credential that no longer verifies against the registry is replaced.
 */
export async function ensureServiceCredentials(
  dataDir: string,
  registry: RegistryStore,
): Promise<Record<ServiceRole, ServiceCredential>> {
  const path = join(dataDir, CREDENTIALS_FILE)
  const stored = await readCredentials(path)
  const result: Partial<Record<ServiceRole, ServiceCredential>> = {}
  let changed = false
  for (const role of SERVICE_ROLES) {
    const username = serviceUsername(role)
    const current = stored[role]
    const account = await registry.getServiceAccount(username)
    if (
      current &&
      account &&
      current.username === username &&
      (await verifySecret(current.password, account.secretHash))
    ) {
      result[role] = current
      continue
    }
    const password = generateSecret()
    const created: ServiceAccount = { username, secretHash: await hashSecret(password), role }
    await registry.upsertServiceAccount(created)
    result[role] = { username, password }
    changed = true
  }
  if (changed) await writeSecretFile(path, `${JSON.stringify(result, null, 2)}\n`)
  return result as Record<ServiceRole, ServiceCredential>
}

/** Credentials for a service: from the environment if given, else from the data directory. */
export async function loadServiceCredential(
  role: ServiceRole,
  dataDir: string,
  env: { MQTT_USERNAME?: string | undefined; MQTT_PASSWORD?: string | undefined },
): Promise<ServiceCredential> {
  if (env.MQTT_USERNAME && env.MQTT_PASSWORD) return { username: env.MQTT_USERNAME, password: env.MQTT_PASSWORD }
  const stored = (await readCredentials(join(dataDir, CREDENTIALS_FILE)))[role]
  if (!stored) {
    throw new Error(
      `no MQTT credentials for the ${role} service: set MQTT_USERNAME and MQTT_PASSWORD, or start the gateway once with DATA_DIR=${dataDir} so it creates ${CREDENTIALS_FILE}`,
    )
  }
  return stored
}
