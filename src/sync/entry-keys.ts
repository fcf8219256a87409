// What of a device log needs the drive master key: the drive id and the sync key derived from
// it, and sealing and opening an entry's root (docs/format.md, "Sync: device logs"). Only the
// user's devices import this; the hub never does [I14].
import * as cbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { hkdf, open, padFrame, seal, unpadFrame, SealType, ID_LEN } from '../crypto/index.js'
import type { EntryRecord } from '../fs/tree/format.js'
import { SyncError } from './errors.js'

export const LABEL_DRIVE_ID = 'space/v1/sync-drive-id'
export const LABEL_SYNC_ROOT = 'space/v1/sync-root'
const ROOT_VERSION = 1

/** The drive's public id: the same on every device of the identity, so no id is ever typed. */
export function deriveDriveId (driveMaster: Uint8Array): Buffer { return hkdf(driveMaster, LABEL_DRIVE_ID, ID_LEN) }

/** The key entries' roots are sealed under; never leaves the user's devices. */
export function deriveSyncKey (driveMaster: Uint8Array): Buffer { return hkdf(driveMaster, LABEL_SYNC_ROOT, 32) }

/** What an entry's sealed root holds: the commit record's `root` and `links`. */
export interface RootPayload {
  root: EntryRecord
  links?: { i: Uint8Array, k: Uint8Array, d: CID }
}

const position = (driveId: Uint8Array, seq: number) => ({ type: SealType.SyncRoot, objectId: driveId, index: seq })

export function sealRoot (syncKey: Uint8Array, driveId: Uint8Array, seq: number, payload: RootPayload): Buffer {
  const body: Record<string, unknown> = { v: ROOT_VERSION, root: payload.root }
  if (payload.links !== undefined) body.links = payload.links
  return seal(syncKey, position(driveId, seq), padFrame(cbor.encode(body)))
}

/** Opens entry `seq`'s root; ERR_SYNC_ROOT unless it was sealed for this drive and position. */
export function openRoot (syncKey: Uint8Array, driveId: Uint8Array, seq: number, sealed: Uint8Array): RootPayload {
  const what = `root of entry ${seq}`
  let framed: Buffer
  try {
    framed = open(syncKey, position(driveId, seq), sealed)
  } catch {
    throw new SyncError('ERR_SYNC_ROOT', `${what} fails authentication (another drive, position or key)`, { seq })
  }
  const body = unpadFrame(framed)
  let value: unknown
  try {
    if (body === null) throw new Error('bad frame')
    value = cbor.decode(body)
  } catch {
    throw new SyncError('ERR_SYNC_ROOT', `${what} does not decode`, { seq })
  }
  const m = value as Record<string, unknown>
  if (typeof m !== 'object' || m === null || m.v !== ROOT_VERSION) throw new SyncError('ERR_SYNC_ROOT', `${what} has unknown version ${String(m?.v)}`, { seq })
  if (Object.keys(m).some(k => k !== 'v' && k !== 'root' && k !== 'links')) throw new SyncError('ERR_SYNC_ROOT', `${what} has an unknown field`, { seq })
  if (typeof m.root !== 'object' || m.root === null || Array.isArray(m.root)) throw new SyncError('ERR_SYNC_ROOT', `${what} has no root entry`, { seq })
  const out: RootPayload = { root: m.root as EntryRecord }
  if (m.links !== undefined) {
    const l = m.links as Record<string, unknown>
    if (typeof l !== 'object' || l === null || !(l.i instanceof Uint8Array) || l.i.length !== ID_LEN ||
        !(l.k instanceof Uint8Array) || l.k.length !== 32 || CID.asCID(l.d) === null) {
      throw new SyncError('ERR_SYNC_ROOT', `${what} has a malformed link table reference`, { seq })
    }
    out.links = { i: l.i, k: l.k, d: CID.asCID(l.d)! }
  }
  return out
}
