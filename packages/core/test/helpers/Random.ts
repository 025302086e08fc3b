/**
 * Seeded randomness: the same numbers for the same seed, so that a failing run can be replayed.
 */

/** A small seeded PRNG (mulberry32): numbers in [0, 1), the same sequence for the same seed. */
export const prng = (seed: number): () => number => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** An integer from `lo` to `hi` (both included), drawn from `random`. */
export const randomInt = (random: () => number, lo: number, hi: number): number =>
  lo + Math.floor(random() * (hi - lo + 1))

/** One of `xs`, drawn from `random`. */
export const pick = <A>(random: () => number, xs: ReadonlyArray<A>): A => xs[randomInt(random, 0, xs.length - 1)]!

/** `n` bytes from a seeded PRNG. */
export const seededBytes = (random: () => number, n: number): Uint8Array => {
  const out = new Uint8Array(n)
  for (let i = 0; i < n; i++) out[i] = Math.floor(random() * 256)
  return out
}
