/**
 * mulberry32 (Tommy Ettinger, public domain): a tiny seeded PRNG with 32-bit state. Used wherever a
 * reproducible sequence is wanted (the simulator, the demo registry generator, property tests);
 * not for anything secret.
 */
export function createRng(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296
  }
}
