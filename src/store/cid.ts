// CIDv1 (raw codec, sha2-256) of sealed bytes: the address every block and node is stored under.
import { createHash } from 'node:crypto'
import { CID } from 'multiformats/cid'
import { create as createDigest } from 'multiformats/hashes/digest'

export const RAW_CODEC = 0x55
const SHA2_256 = 0x12

export function cidOf (bytes: Uint8Array): CID {
  const hash = createHash('sha256').update(bytes).digest()
  return CID.createV1(RAW_CODEC, createDigest(SHA2_256, hash))
}

export { CID }

/** The CID of bytes whose SHA-256 is already known. */
export function cidFromSha256 (sha256: Uint8Array): CID {
  return CID.createV1(RAW_CODEC, createDigest(SHA2_256, sha256))
}
