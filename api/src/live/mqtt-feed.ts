import {
  ALL_STATUS_FILTER,
  ALL_TELEMETRY_FILTER,
  currentPlacement,
  DeviceStatus,
  type MetricValues,
  parseDeviceTopic,
  parseTelemetry,
} from '@skolluft/core'
import type { Logger } from '@skolluft/runtime'
import type { RegistryStore } from '@skolluft/storage'
import mqtt, { type MqttClient } from 'mqtt'
import type { LiveHub, ReadingEvent } from './hub.ts'

/**
 * Feeds the live hub from the broker: the API subscribes to telemetry and status as the `api` service
 * (gateway permissions.ts) with QoS 0 and a clean session: live display only, never storage. The ingest
 * owns validation and storage; a reading it later rejects may have flickered on the map, which is why
 * the map refetches from storage on every reconnect. Payloads are validated here with the same parser,
 * so nothing invalid is passed on, and unknown or revoked devices are dropped.
 */
export interface MqttFeedOptions {
  readonly url: string
  readonly username: string
  readonly password: string
}

export interface MqttFeed {
  close(): Promise<void>
}

/** Device → site lookups are cached and dropped when the registry revision changes. */
const REGISTRY_CHECK_MS = 2_000

export async function startMqttFeed(deps: {
  readonly options: MqttFeedOptions
  readonly registry: RegistryStore
  readonly hub: LiveHub
  readonly log: Logger
  readonly clock: () => number
}): Promise<MqttFeed> {
  const { options, registry, hub, log, clock } = deps
  const siteOf = new Map<string, string | null>()
  let revision = await registry.revision()
  let checkedAt = clock()

  async function site(deviceId: string): Promise<string | null> {
    if (clock() - checkedAt > REGISTRY_CHECK_MS) {
      checkedAt = clock()
      const now = await registry.revision()
      if (now !== revision) {
        revision = now
        siteOf.clear()
      }
    }
    const cached = siteOf.get(deviceId)
    if (cached !== undefined) return cached
    const device = await registry.getDevice(deviceId)
    const placement = device?.revokedAt === null ? currentPlacement(device.placements) : undefined
    const id = placement?.siteId ?? null
    siteOf.set(deviceId, id)
    return id
  }

  async function handle(topic: string, payload: Buffer): Promise<void> {
    const parsed = parseDeviceTopic(topic)
    if (parsed === null) return
    const siteId = await site(parsed.deviceId)
    if (siteId === null) return
    if (parsed.kind === 'telemetry') {
      const result = parseTelemetry(payload, clock())
      if (!result.ok || result.readings.length === 0) return
      // A replayed batch holds history; the map only needs the newest values.
      const newest = result.readings.reduce((a, b) => (b.ts > a.ts ? b : a))
      const values: MetricValues = { ...newest.values }
      const event: ReadingEvent = {
        site: siteId,
        device: parsed.deviceId,
        ts: new Date(newest.ts).toISOString(),
        values,
      }
      hub.publishReadings([event])
    } else if (parsed.kind === 'status') {
      let json: unknown
      try {
        json = JSON.parse(payload.toString('utf8'))
      } catch {
        return
      }
      const status = DeviceStatus.safeParse(json)
      if (!status.success) return
      hub.publishStatus({
        site: siteId,
        device: parsed.deviceId,
        online: status.data.state === 'online',
        ts: status.data.ts ?? new Date(clock()).toISOString(),
      })
    }
  }

  const client: MqttClient = mqtt.connect(options.url, {
    clientId: `${options.username}-live-${process.pid}-${Math.random().toString(36).slice(2, 8)}`,
    username: options.username,
    password: options.password,
    protocolVersion: 4,
    clean: true,
    reconnectPeriod: 1_000,
    reconnectOnConnackError: true,
    connectTimeout: 10_000,
    resubscribe: true,
  })
  client.on('message', (topic, payload) => {
    handle(topic, payload).catch((error: unknown) => log.warn({ err: error, topic }, 'live event dropped'))
  })
  client.on('error', (error) => log.warn({ err: error }, 'live feed mqtt error'))
  client.on('connect', () => {
    client.subscribe([ALL_TELEMETRY_FILTER, ALL_STATUS_FILTER], { qos: 0 }, (error) => {
      if (error) log.error({ err: error }, 'live feed could not subscribe')
      else log.info('live feed subscribed')
    })
  })

  return {
    async close() {
      await client.endAsync()
    },
  }
}
