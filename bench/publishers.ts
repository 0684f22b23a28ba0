/**
 * Worker thread of bench/ingest.ts: the simulated devices. Running them on their own thread keeps
 * the publishers from sharing the gateway's event loop, so the baseline measures the broker, not
 * the load generator.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { deviceTopic } from '@skolluft/core'
import mqtt, { type MqttClient } from 'mqtt'
import { z } from 'zod'

const Setup = z.object({
  url: z.string(),
  ids: z.array(z.string()),
  password: z.string(),
  perDevice: z.number().int().positive(),
  inflight: z.number().int().positive(),
})
const Go = z.object({ base: z.number() })

function payload(i: number, k: number, base: number): string {
  return JSON.stringify({
    ts: new Date(base + i * 1_000).toISOString(),
    seq: i,
    pm1: 3.1 + (i % 7),
    pm25: 7.4 + (i % 11),
    pm10: 12.9 + (i % 13),
    no2: 18.2 + k,
    temp: 4.5,
    rh: 81.2,
  })
}

async function main(): Promise<void> {
  const port = parentPort
  if (!port) throw new Error('bench/publishers.ts runs as a worker thread')
  const setup = Setup.parse(workerData)
  const clients: MqttClient[] = []
  for (const id of setup.ids) {
    clients.push(
      await mqtt.connectAsync(setup.url, { clientId: id, username: id, password: setup.password, reconnectPeriod: 0 }),
    )
  }
  port.on('message', (message: unknown) => {
    if (message === 'stop') {
      Promise.all(clients.map((c) => c.endAsync(true))).then(
        () => port.close(),
        () => port.close(),
      )
      return
    }
    const { base } = Go.parse(message)
    const started = performance.now()
    Promise.all(
      clients.map(async (client, k) => {
        const topic = deviceTopic(setup.ids[k] ?? '', 'telemetry')
        let next = 0
        const worker = async () => {
          while (next < setup.perDevice) {
            const i = next
            next += 1
            await client.publishAsync(topic, payload(i, k, base), { qos: 1 })
          }
        }
        await Promise.all(Array.from({ length: setup.inflight }, worker))
      }),
    ).then(
      () => port.postMessage({ published: performance.now() - started }),
      (error: unknown) => port.postMessage({ error: String(error) }),
    )
  })
  port.postMessage('ready')
}

await main()
