// Padmé padding (Nikitin et al., PETS 2019): hides all but O(log log n) bits of a length,
// costing at most ~12% overhead. Used for the last block of every file and for every node.

/** The Padmé-padded length for a plaintext of `len` bytes. */
export function padme (len: number): number {
  if (len <= 2) return len
  const e = Math.floor(Math.log2(len))
  const s = Math.floor(Math.log2(e)) + 1
  const lastBits = e - s
  const mask = 2 ** lastBits - 1
  return Math.ceil((len + mask) / (mask + 1)) * (mask + 1)
}
