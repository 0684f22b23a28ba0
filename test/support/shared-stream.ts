import { deviceTopic } from '@skolluft/core'
import { waitFor } from '@skolluft/testkit'
import mqtt, { type MqttClient } from 'mqtt'

/**
 * Helpers for the tests of ingest workers sharing a Mosquitto shared subscription (test/e2e/ingest-shared.test.ts,
 * test/e2e/ingest-leave.test.ts): devices that publish a numbered stream, and Mosquitto's packet log read back.
 */

/** How long the store must stay unchanged to count as settled (commits land every few ms under load). */
export const SETTLED_MS = 1_500

/** Lines where Mosquitto sends a PUBLISH to `clientId`: `dup` true counts resends (d1), false first sends (d0). */
export function sentTo(log: string, clientId: string, dup: boolean): number {
  const needle = `Sending PUBLISH to ${clientId} (d${dup ? 1 : 0},`
  return log.split('\n').filter((line) => line.includes(needle)).length
}

export async function connectDevices(
  url: string,
  devices: readonly { deviceId: string; password: string }[],
): Promise<MqttClient[]> {
  const clients: MqttClient[] = []
  for (const d of devices) {
    clients.push(
      await mqtt.connectAsync(url, {
        clientId: d.deviceId,
        username: d.deviceId,
        password: d.password,
        reconnectPeriod: 0,
      }),
    )
  }
  return clients
}

/** Publishes readings from..to (exclusive) for every device, QoS 1, a minute apart from `start`. */
export async function publishReadings(
  clients: readonly MqttClient[],
  devices: readonly { deviceId: string }[],
  start: number,
  from: number,
  to: number,
): Promise<void> {
  for (let i = from; i < to; i += 1) {
    const ts = new Date(start + i * 60_000).toISOString()
    await Promise.all(
      clients.map((c, k) =>
        c.publishAsync(
          deviceTopic(devices[k]?.deviceId ?? '', 'telemetry'),
          JSON.stringify({ ts, seq: i, pm25: i % 50, no2: 10 + k }),
          { qos: 1 },
        ),
      ),
    )
  }
}

/** Waits until `count` has not changed for SETTLED_MS and returns it. */
export async function settled(count: () => Promise<number>, timeoutMs: number): Promise<number> {
  let last = await count()
  let since = Date.now()
  await waitFor(
    async () => {
      const now = await count()
      if (now !== last) {
        last = now
        since = Date.now()
      }
      return Date.now() - since >= SETTLED_MS
    },
    'the store to settle',
    { timeoutMs, intervalMs: 100 },
  )
  return last
}
