/**
 * The simulated fleet the ingest benchmarks share: devices registered in a store, and their publishers on a worker
 * thread (bench/publishers.ts), so the load generator never shares the measured process's event loop.
 */
import { Worker } from 'node:worker_threads'
import { METRICS } from '@skolluft/core'
import { generateSecret, hashSecret } from '@skolluft/runtime'
import type { RegistryStore } from '@skolluft/storage'
import { z } from 'zod'

/** Registers `count` devices `bench-<k>` at `siteId` with one shared password; returns their ids and the password. */
export async function registerBenchDevices(
  registry: RegistryStore,
  count: number,
  siteId: string,
): Promise<{ ids: string[]; password: string }> {
  const password = generateSecret()
  const secretHash = await hashSecret(password)
  const ids = Array.from({ length: count }, (_, k) => `bench-${k}`)
  for (const id of ids) {
    await registry.addDevice(
      {
        id,
        model: 'bench',
        sensors: [...METRICS],
        intervalS: 60,
        secretHash,
        placement: { siteId, from: 0, indoor: false, heightM: 2 },
      },
      Date.now(),
    )
  }
  return { ids, password }
}

export interface PublisherOptions {
  readonly url: string
  readonly ids: readonly string[]
  readonly password: string
  /** Readings each device publishes per phase. */
  readonly perDevice: number
  /** QoS 1 messages each device keeps in flight. */
  readonly inflight: number
}

export interface Publishers {
  /** Serialises the payloads of a phase in the worker, before the phase is timed. */
  prepare(base: number): Promise<void>
  /** Publishes every device's readings; resolves with the time publishing took (ms). */
  go(base: number): Promise<number>
  stop(): Promise<void>
}

const Reply = z.object({
  prepared: z.number().optional(),
  published: z.number().optional(),
  error: z.string().optional(),
})

/** Starts the devices' MQTT clients on a worker thread; resolves once every one is connected. */
export async function startPublishers(options: PublisherOptions): Promise<Publishers> {
  const worker = new Worker(new URL('./publishers-worker.mjs', import.meta.url), {
    workerData: { ...options, ids: [...options.ids] },
  })
  await new Promise<void>((resolve, reject) => {
    worker.once('message', () => resolve())
    worker.once('error', reject)
  })
  function ask(message: unknown): Promise<z.infer<typeof Reply>> {
    return new Promise((resolve, reject) => {
      worker.once('message', (m: unknown) => {
        const reply = Reply.safeParse(m)
        if (!reply.success) reject(new Error('unexpected message from the publishers'))
        else if (reply.data.error !== undefined) reject(new Error(reply.data.error))
        else resolve(reply.data)
      })
      worker.postMessage(message)
    })
  }
  return {
    async prepare(base) {
      await ask({ prepare: base })
    },
    async go(base) {
      return (await ask({ go: base })).published ?? Number.NaN
    },
    async stop() {
      worker.postMessage('stop')
      await new Promise((resolve) => worker.once('exit', resolve))
    },
  }
}
