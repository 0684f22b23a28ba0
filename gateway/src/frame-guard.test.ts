import { describe, expect, it } from 'vitest'
import { createFrameGuard } from './frame-guard.ts'

/** Encodes an MQTT remaining length [MQTT-2.2.3]. */
function remainingLength(n: number): number[] {
  const out: number[] = []
  let x = n
  do {
    let byte = x % 128
    x = Math.floor(x / 128)
    if (x > 0) byte |= 0x80
    out.push(byte)
  } while (x > 0)
  return out
}

function packet(type: number, bodyBytes: number): Uint8Array {
  return Uint8Array.from([type, ...remainingLength(bodyBytes), ...new Array<number>(bodyBytes).fill(0x61)])
}

function feed(bytes: Uint8Array, chunkSize: number, limit: number): number | null {
  const guard = createFrameGuard(limit)
  for (let i = 0; i < bytes.length; i += chunkSize) {
    const result = guard.push(bytes.subarray(i, i + chunkSize))
    if (result !== null) return result
  }
  return null
}

describe('createFrameGuard', () => {
  const PINGREQ = Uint8Array.from([0xc0, 0x00])
  const small = packet(0x30, 300) // a PUBLISH with a 300-byte body (2-byte length)
  const large = packet(0x30, 20_000) // 3-byte length

  it.each([1, 2, 3, 7, 64, 100_000])('passes a stream of packets within the limit, in chunks of %i', (chunkSize) => {
    const stream = Uint8Array.from([...PINGREQ, ...small, ...PINGREQ, ...small])
    expect(feed(stream, chunkSize, 300)).toBeNull()
  })

  it.each([1, 2, 5, 1000])('reports an oversized packet after smaller ones, in chunks of %i', (chunkSize) => {
    const stream = Uint8Array.from([...small, ...PINGREQ, ...large])
    expect(feed(stream, chunkSize, 1000)).toBe(20_000)
  })

  it('reports a packet as soon as its header declares too much, before the body arrives', () => {
    const guard = createFrameGuard(1000)
    expect(guard.push(Uint8Array.from([0x10, ...remainingLength(200 * 1024 * 1024)]))).toBe(200 * 1024 * 1024)
  })
})
