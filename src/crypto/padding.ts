// Padmé padding (Nikitin et al., PETS 2019): hides all but O(log log n) bits of a length,
// costing at most ~12% overhead. Used for the last block of every file and for every node.

/** The Padmé-padded length for a plaintext of `len` bytes. */
export function padme (len: number): number {
  if (len <= 2) return len
  const e = Math.floor(Math.log2(len))
  const s = Math.floor(Math.log2(e)) + 1
  const lastBits = e - s
  const mask = 2 ** lastBits - 1
  return Math.floor((len + mask) / (mask + 1)) * (mask + 1)
}

/** Frames `body` as u32 length | body | zeros up to the Padmé length, so sizes leak only coarsely. */
export function padFrame (body: Uint8Array): Buffer {
  const out = Buffer.alloc(padme(4 + body.length))
  out.writeUInt32BE(body.length, 0)
  out.set(body, 4)
  return out
}

/** Inverse of padFrame; returns null when the frame is malformed. */
export function unpadFrame (framed: Uint8Array): Buffer | null {
  const buf = Buffer.from(framed.buffer, framed.byteOffset, framed.length)
  if (buf.length < 4) return null
  const len = buf.readUInt32BE(0)
  if (4 + len > buf.length) return null
  return buf.subarray(4, 4 + len)
}
