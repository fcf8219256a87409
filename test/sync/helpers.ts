// Builders for sync tests: one identity (the all-zero test entropy), devices certified by it,
// and entries chained log by log, each built and signed as a real writer does.
import type { CID } from 'multiformats/cid'
import { deriveIdentity, certifyDeviceRecord, type Identity, type DeviceRecord } from '../../src/keys/identity.js'
import { ed25519FromSeed, type RawKeyPair } from '../../src/keys/ed25519.js'
import { signEntry, type EntryHead, type SignedEntry } from '../../src/sync/entry.js'
import { cidOf } from '../../src/store/cid.js'
import * as cbor from '@ipld/dag-cbor'
import { deriveDriveId, deriveSyncKey, sealRoot, type RootPayload } from '../../src/sync/entry-keys.js'

export const ZERO_ENTROPY = Buffer.alloc(32)
let cached: Identity | undefined
export const identity = (): Identity => (cached ??= deriveIdentity(ZERO_ENTROPY))
export const otherIdentity = (): Identity => deriveIdentity(Buffer.alloc(32, 0x42))

export interface TestDevice { key: RawKeyPair, record: DeviceRecord, name: string }

export function device (name: string, seedByte: number, id: Identity = identity()): TestDevice {
  const key = ed25519FromSeed(Buffer.alloc(32, seedByte))
  return { key, name, record: certifyDeviceRecord(id.signing, key.publicKey, name, 1_764_000_000_000) }
}

export function payload (n: number): RootPayload {
  return { root: { n: '', t: 2, m: 0o755, u: 0, g: 0, a: n, mt: n, c: n, i: Buffer.alloc(16, 1), k: Buffer.alloc(32, 2), d: cidOf(Buffer.from(`root ${n}`)) } }
}

/** A writer of one log: `next()` signs the entry after the last one it wrote. */
export class LogWriter {
  seq = 0
  prev: CID | null = null
  readonly drive: Buffer
  readonly syncKey: Buffer
  constructor (readonly dev: TestDevice, id: Identity = identity()) {
    this.drive = deriveDriveId(id.driveMaster)
    this.syncKey = deriveSyncKey(id.driveMaster)
  }

  /** Signs entry seq+1 without advancing (for forks and tampering). */
  build (over: { heads?: EntryHead[], blocks?: CID | null, seq?: number, prev?: CID | null, drive?: Buffer, time?: number } = {}): SignedEntry {
    const seq = over.seq ?? this.seq + 1
    return signEntry(this.dev.key.privateKey, {
      drive: over.drive ?? this.drive,
      cert: this.dev.record,
      seq,
      prev: over.prev !== undefined ? over.prev : (seq === 1 ? null : this.prev),
      heads: over.heads ?? [],
      root: sealRoot(this.syncKey, over.drive ?? this.drive, seq, payload(seq)),
      blocks: over.blocks ?? null,
      time: over.time ?? 1_764_000_000_000 + seq
    })
  }

  next (over: Parameters<LogWriter['build']>[0] = {}): SignedEntry {
    const s = this.build(over)
    this.seq = s.entry.seq
    this.prev = s.cid
    return s
  }
}

/** Decodes an entry's bytes, lets `fn` change the map, re-encodes canonically (for refusals). */
export function remap (bytes: Uint8Array, fn: (m: Record<string, any>) => void): Uint8Array {
  const m = cbor.decode(bytes) as Record<string, any>
  fn(m)
  return cbor.encode(m)
}
