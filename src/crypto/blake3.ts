// BLAKE3-256. Node has no BLAKE3, so the native @napi-rs/blake-hash is used where its prebuilt
// binary exists for this platform (8.9 GB/s here, SIMD), else @noble/hashes' pure-JS one.
import { createRequire } from 'node:module'
import { blake3 as blake3Js } from '@noble/hashes/blake3.js'

type Hash = (bytes: Uint8Array) => Uint8Array

function native (): Hash | null {
  try {
    const m = createRequire(import.meta.url)('@napi-rs/blake-hash') as { blake3: (b: Buffer) => Buffer }
    return bytes => m.blake3(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength))
  } catch {
    return null
  }
}

const nativeHash = native()

export const blake3Native = nativeHash != null
export const blake3: Hash = nativeHash ?? (bytes => blake3Js(bytes))
