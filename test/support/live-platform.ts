import { type ApiOptions, type StaticFile, startApi } from '@skolluft/api'
import { deviceTopic, type MetricValues } from '@skolluft/core'
import { type Ingest, startIngest } from '@skolluft/ingest'
import { generateSecret, hashSecret, type Logger, silentLogger } from '@skolluft/runtime'
import type { Storage } from '@skolluft/storage'
import mqtt from 'mqtt'

/**
 * The live half of the platform around a running gateway and storage: the real ingest, the `api`
 * service account (gateway role `api`, for the live feed) and any number of real APIs that serve the
 * dashboard bundle on 127.0.0.1. Used by the browser tests and scripts/screenshots.ts.
 */

export interface LiveServicesOptions {
  readonly storage: Storage
  readonly mqttUrl: string
  readonly ingestCredential: { readonly username: string; readonly password: string }
  readonly dashboard: ReadonlyMap<string, StaticFile>
  readonly log?: Logger
}

export interface DashboardServer {
  /** `http://127.0.0.1:<port>` */
  readonly url: string
  close(): Promise<void>
}

export interface LiveServices {
  readonly ingest: Ingest
  /** Broker credentials of the `svc.api` service account. */
  readonly apiCredential: { readonly username: string; readonly password: string }
  /** A real API with the dashboard and the live feed; closed by close() if not before. */
  startDashboardApi(options: Partial<ApiOptions>): Promise<DashboardServer>
  /** Closes every API started here, then the ingest. */
  close(): Promise<void>
}

export const API_SERVICE_USERNAME = 'svc.api'

export async function startLiveServices(options: LiveServicesOptions): Promise<LiveServices> {
  const log = options.log ?? silentLogger()
  const password = generateSecret()
  await options.storage.registry.upsertServiceAccount({
    username: API_SERVICE_USERNAME,
    secretHash: await hashSecret(password),
    role: 'api',
  })
  const apiCredential = { username: API_SERVICE_USERNAME, password }
  const ingest = await startIngest({
    log,
    storage: options.storage,
    mqtt: { url: options.mqttUrl, ...options.ingestCredential },
  })
  const servers = new Set<DashboardServer>()
  return {
    ingest,
    apiCredential,
    async startDashboardApi(apiOptions) {
      const api = await startApi({
        log,
        storage: options.storage,
        host: '127.0.0.1',
        port: 0,
        options: apiOptions,
        dashboard: options.dashboard,
        live: { url: options.mqttUrl, ...apiCredential },
      })
      const server: DashboardServer = {
        url: `http://127.0.0.1:${api.port}`,
        async close() {
          servers.delete(server)
          await api.close()
        },
      }
      servers.add(server)
      return server
    },
    async close() {
      for (const server of [...servers]) await server.close()
      await ingest.close()
    },
  }
}

export interface TestReading {
  /** Epoch ms. */
  readonly ts: number
  readonly values: MetricValues
}

/**
 * Publishes readings as a device does (its own credentials, QoS 1, one batch message for several
 * readings) and disconnects once the broker acknowledged them.
 */
export async function publishAsDevice(
  mqttUrl: string,
  device: { readonly deviceId: string; readonly password: string },
  readings: readonly TestReading[],
): Promise<void> {
  const client = await mqtt.connectAsync(mqttUrl, {
    clientId: device.deviceId,
    username: device.deviceId,
    password: device.password,
    reconnectPeriod: 0,
  })
  try {
    const items = readings.map((r) => ({ ts: new Date(r.ts).toISOString(), ...r.values }))
    const payload = items.length === 1 ? items[0] : { readings: items }
    await client.publishAsync(deviceTopic(device.deviceId, 'telemetry'), JSON.stringify(payload), { qos: 1 })
  } finally {
    await client.endAsync()
  }
}
