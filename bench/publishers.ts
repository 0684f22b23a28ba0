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
const Prepare = z.object({ prepare: z.number() })
const Go = z.object({ go: z.number() })

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
  // Payloads are serialised before a phase starts, so the load generator spends as little CPU as
  // possible while the gateway and the ingest are measured (devices are elsewhere in production).
  const prepared = new Map<number, Buffer[][]>()
  port.on('message', (message: unknown) => {
    if (message === 'stop') {
      Promise.all(clients.map((c) => c.endAsync(true))).then(
        () => port.close(),
        () => port.close(),
      )
      return
    }
    const prepare = Prepare.safeParse(message)
    if (prepare.success) {
      const base = prepare.data.prepare
      prepared.set(
        base,
        clients.map((_, k) => Array.from({ length: setup.perDevice }, (_, i) => Buffer.from(payload(i, k, base)))),
      )
      port.postMessage({ prepared: base })
      return
    }
    const { go: base } = Go.parse(message)
    const payloads = prepared.get(base)
    if (!payloads) {
      port.postMessage({ error: `payloads for ${base} were not prepared` })
      return
    }
    prepared.delete(base)
    const started = performance.now()
    Promise.all(
      clients.map(async (client, k) => {
        const topic = deviceTopic(setup.ids[k] ?? '', 'telemetry')
        const mine = payloads[k] ?? []
        let next = 0
        const worker = async () => {
          while (next < mine.length) {
            const i = next
            next += 1
            await client.publishAsync(topic, mine[i] ?? Buffer.alloc(0), { qos: 1 })
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
