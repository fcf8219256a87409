// Writing this device's own log: the next entry after the newest one the log state recorded,
// with the other logs' heads it has seen, the commit's root sealed for this drive and position.
// Order for the caller [S4, S7]: commit durable -> nextEntry -> entry bytes durable in the push
// queue -> state.accept(entry) -> push. A crash after the queue write and before accept leaves
// an entry that accept still takes on restart (its seq and prev follow the recorded head).
import type { CID } from 'multiformats/cid'
import type { DeviceRecord } from '../keys/identity.js'
import { signEntry, type SignedEntry } from './entry.js'
import { sealRoot, type RootPayload } from './entry-keys.js'
import type { LogState } from './log-state.js'

/** This device: its private key (32-byte seed) and the identity's record of it. */
export interface DeviceSigner { privateKey: Uint8Array, record: DeviceRecord }

/** The drive's id and sync key (entry-keys.ts derives both from the drive master key). */
export interface SyncKeys { driveId: Uint8Array, syncKey: Uint8Array }

export interface Publication {
  root: RootPayload
  /** First block list block of what this entry adds (encodeBlockList), null for none. */
  blocks: CID | null
  time?: number
}

export function nextEntry (state: Pick<LogState, 'head' | 'heads'>, signer: DeviceSigner, keys: SyncKeys, pub: Publication): SignedEntry {
  const own = signer.record.devicePublicKey
  const last = state.head(own)
  const seq = (last?.seq ?? 0) + 1
  return signEntry(signer.privateKey, {
    drive: Buffer.from(keys.driveId),
    cert: signer.record,
    seq,
    prev: last?.cid ?? null,
    heads: state.heads().filter(h => !h.dev.equals(own)),
    root: sealRoot(keys.syncKey, keys.driveId, seq, pub.root),
    blocks: pub.blocks,
    time: pub.time ?? Date.now()
  })
}
