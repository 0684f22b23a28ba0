/**
 * Caps the size of every MQTT packet on a connection before it is buffered.
 *
 * aedes parses with mqtt-packet, which has no size option: it buffers a packet until all of its declared
 * "remaining length" has arrived, up to 256 MiB [MQTT-2.2.3]. Without a cap one client, authenticated or
 * not (CONNECT itself can be that large), could make the broker hold hundreds of megabytes. The guard reads
 * only the fixed header of each packet (type byte + 1–4 byte remaining length) as the bytes pass and reports
 * a packet whose declared length exceeds the limit as soon as its header is seen; the caller then destroys
 * the socket.
 *
 * It is a passive tap: the gateway attaches it as a `data` listener after aedes has attached its `readable`
 * listener. Node then emits `data` for each chunk aedes `read()`s, before aedes hands the chunk to its
 * parser, without changing the flow of the stream ("'readable' takes precedence", Node stream docs).
 */
export interface FrameGuard {
  /** Feeds the next bytes of the stream; returns the declared length of the first oversized packet, else null. */
  push(chunk: Uint8Array): number | null
}

/** Largest number of bytes in the remaining-length field [MQTT-2.2.3]. */
const MAX_LENGTH_BYTES = 4

export function createFrameGuard(maxRemainingLength: number): FrameGuard {
  // Body bytes of the current packet still to pass.
  let skip = 0
  let inLength = false
  let length = 0
  let multiplier = 1
  let lengthBytes = 0
  // After a malformed header we stop looking; aedes' parser rejects the stream itself.
  let gaveUp = false

  return {
    push(chunk) {
      if (gaveUp) return null
      let i = 0
      while (i < chunk.length) {
        if (skip > 0) {
          const n = Math.min(skip, chunk.length - i)
          skip -= n
          i += n
          continue
        }
        const byte = chunk[i] ?? 0
        i += 1
        if (!inLength) {
          // Fixed header byte 1: packet type and flags. The remaining length follows.
          inLength = true
          length = 0
          multiplier = 1
          lengthBytes = 0
          continue
        }
        length += (byte & 0x7f) * multiplier
        multiplier *= 128
        lengthBytes += 1
        if (byte & 0x80) {
          if (lengthBytes >= MAX_LENGTH_BYTES) {
            gaveUp = true
            return null
          }
          continue
        }
        inLength = false
        if (length > maxRemainingLength) {
          gaveUp = true
          return length
        }
        skip = length
      }
      return null
    },
  }
}
