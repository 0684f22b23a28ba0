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
 * crash test (test/e2e/ingest-crash.test.ts) and ack-after-commit.test.ts fail if a PUBACK ever
 * leaves before the commit, so an MQTT.js upgrade that changes this path cannot pass unnoticed.
 *
 * Rules kept:
 * - [MQTT-4.6.0-2] PUBACKs go out in the order the PUBLISH packets arrived: each one waits for its
 *   own commit and for the PUBACK before it.
 * - A PUBACK is never sent on a later connection than the one its PUBLISH came on: message ids
 *   belong to one network connection, and after a reconnect the broker redelivers what was not
 *   acknowledged (storage deduplicates on (device, ts)).
 * - A message whose handling failed is not acknowledged (outcome `false`).
 */
type Packet = { cmd: string; messageId?: number }
type SendPacket = (packet: Packet, cb?: (error?: Error) => void, ...rest: unknown[]) => void

function hasSendPacket(client: object): client is { _sendPacket: SendPacket } {
  return '_sendPacket' in client && typeof client._sendPacket === 'function'
}

export interface AckGate {
  /** Call from `handleMessage` before its callback: the PUBACK for `messageId` waits for `committed` (true = ack). */
  hold(messageId: number, committed: Promise<boolean>): void
}

export function installAckGate(client: MqttClient): AckGate {
  const internals: object = client
  if (!hasSendPacket(internals)) {
    throw new Error('this MQTT.js version has no _sendPacket; the ingest cannot hold acknowledgements')
  }
  const send: SendPacket = internals._sendPacket.bind(client)
  const held = new Map<number, Promise<boolean>>()
  let connection = 0
  let previous: Promise<unknown> = Promise.resolve()

  client.on('close', () => {
    // Whatever is still held belongs to the connection that just closed; the broker will redeliver it.
    connection += 1
    held.clear()
    previous = Promise.resolve()
  })

  internals._sendPacket = (packet, cb, ...rest) => {
    const committed = packet.cmd === 'puback' && packet.messageId !== undefined ? held.get(packet.messageId) : undefined
    if (committed === undefined || packet.messageId === undefined) {
      send(packet, cb, ...rest)
      return
    }
    held.delete(packet.messageId)
    const sentOn = connection
    const ready = Promise.all([committed, previous]).then(([ok]) => {
      if (ok && sentOn === connection) send(packet)
    })
    previous = ready
    // Tell MQTT.js the packet is handled so it parses the next one now.
    cb?.()
  }

  return {
    hold(messageId, committed) {
      held.set(messageId, committed)
    },
  }
}
