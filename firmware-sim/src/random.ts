/**
 * Deterministic randomness keyed by numbers, not by call order: `unit(seed, a, b, c)` is the same
 * value whenever it is asked for, so any reading of any device at any time can be recomputed without
 * state. That is what lets the model, the faults and the backfill agree with each other.
 */

/** FNV-1a over the UTF-16 code units, 32 bits: turns ids into seeds. */
export function hashString(text: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < text.length; i += 1) {
    h ^= text.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
}

/** murmur3's 32-bit finaliser: full avalanche, so neighbouring keys give unrelated outputs. */
function fmix(value: number): number {
  let h = value >>> 0
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/** Mixes any number of integer keys (each taken modulo 2^32, high bits folded in) into one 32-bit hash. */
export function hash(...keys: number[]): number {
  let h = 0x9e3779b9
  for (const key of keys) {
    const low = key >>> 0
    const high = Math.floor(key / 4_294_967_296) >>> 0
    h = fmix(h ^ low)
    h = fmix((h + high + 0x7f4a7c15) >>> 0)
  }
  return h
}

/** Uniform in [0, 1). */
export function unit(...keys: number[]): number {
  return hash(...keys) / 4_294_967_296
}

/** Standard normal (Box–Muller) from two independent hashes of the keys. */
export function gaussian(...keys: number[]): number {
  const u1 = (hash(...keys, 1) + 1) / 4_294_967_297 // (0, 1], so the log is finite
  const u2 = unit(...keys, 2)
  return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2)
}

/**
 * Smooth noise: standard normal values at knots `knotMs` apart, joined with a cosine ease so the series
 * has no corners. Its variance dips a little between knots; that does not matter for a simulator.
 */
export function smoothNoise(t: number, knotMs: number, ...keys: number[]): number {
  const x = t / knotMs
  const k = Math.floor(x)
  const f = x - k
  const w = (1 - Math.cos(Math.PI * f)) / 2
  return gaussian(...keys, k) * (1 - w) + gaussian(...keys, k + 1) * w
}

/** Linear interpolation. */
export function lerp(a: number, b: number, f: number): number {
  return a + (b - a) * f
}
