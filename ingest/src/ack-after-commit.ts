import type { MqttClient } from 'mqtt'

/**
 * Holds each QoS 1 PUBACK until the message's readings are committed, while letting MQTT.js go on
 * reading the next packets, so many messages are in flight and storage can commit them in groups.
 *
 * Why this exists: MQTT.js sends the PUBACK when `handleMessage` calls back and handles incoming
 * packets strictly one at a time (its README: "handleMessage … with backpressure support, one at a
 * time"). Waiting for the commit inside `handleMessage` is correct but makes every message its own
 * transaction (~10 000 messages/s at most on two cores). Here `handleMessage` calls back at once
 * and the PUBACK it triggers is intercepted and sent only after the commit.
 *
 * The interception wraps MQTT.js's private `_sendPacket` (mqtt 5.x, build/lib/client.js). The
 * crash test (test/e2e/ingest-crash.test.ts) fails if a PUBACK ever leaves before the commit, so an
 * MQTT.js upgrade that changes this path cannot pass unnoticed.
 *
 * Rules kept:
 * - [MQTT-4.6.0-2] PUBACKs go out in the order the PUBLISH packets arrived: each one waits for its
 *   own commit and for the PUBACK before it.
 * - A PUBACK goes out only on the connection its PUBLISH came on: message ids belong to one network
 *   connection, and after a reconnect the broker redelivers what was not acknowledged (storage
 *   deduplicates on (device, ts)). A PUBACK from an older connection, or one that MQTT.js would
 *   queue while offline, is dropped.
 * - A message whose handling failed is not acknowledged (outcome `false`).
 */
type Packet = { cmd: string; messageId?: number }
type SendPacket = (packet: Packet, cb?: (error?: Error) => void, ...rest: unknown[]) => void

function hasSendPacket(client: object): client is { _sendPacket: SendPacket } {
  return '_sendPacket' in client && typeof client._sendPacket === 'function'
}

interface Held {
  readonly committed: Promise<boolean>
  readonly connection: number
  readonly released: () => void
}

export interface AckGate {
  /**
   * Call from `handleMessage` before its callback: the PUBACK for `messageId` waits for `committed`
   * (true = acknowledge). The returned promise settles when the PUBACK has been sent or dropped.
   */
  hold(messageId: number, committed: Promise<boolean>): Promise<void>
}

export function installAckGate(client: MqttClient): AckGate {
  const internals: object = client
  if (!hasSendPacket(internals)) {
    throw new Error('this MQTT.js version has no _sendPacket; the ingest cannot hold acknowledgements')
  }
  const send: SendPacket = internals._sendPacket.bind(client)
  const held = new Map<number, Held>()
  let connection = 0
  let previous: Promise<unknown> = Promise.resolve()

  client.on('close', () => {
    // Whatever is still held belongs to the connection that just closed; the broker will redeliver it.
    connection += 1
    for (const entry of held.values()) entry.released()
    held.clear()
    previous = Promise.resolve()
  })

  internals._sendPacket = (packet, cb, ...rest) => {
    if (packet.cmd !== 'puback' || packet.messageId === undefined) {
      send(packet, cb, ...rest)
      return
    }
    const entry = held.get(packet.messageId)
    if (entry === undefined || entry.connection !== connection || !client.connected) {
      // A PUBACK for a PUBLISH of a connection that is gone: never send it on a new connection.
      cb?.()
      return
    }
    held.delete(packet.messageId)
    const ready = Promise.all([entry.committed, previous]).then(([ok]) => {
      if (ok && entry.connection === connection && client.connected) send(packet)
      entry.released()
    })
    previous = ready
    // Tell MQTT.js the packet is handled so it parses the next one now.
    cb?.()
  }

  return {
    hold(messageId, committed) {
      return new Promise<void>((resolve) => {
        held.set(messageId, { committed, connection, released: resolve })
      })
    },
  }
}
