// Typed errors of the sync layer. `code` is stable: callers (the sync engine, the hub's routes,
// the CLI) branch on it, never on messages. Messages name the device and sequence numbers.
export type SyncErrorCode =
  | 'ERR_SYNC_FORMAT' // bytes do not decode as docs/format.md "Sync: device logs" says
  | 'ERR_SYNC_VERSION' // a structure of a version this build does not know
  | 'ERR_SYNC_CID_MISMATCH' // bytes do not hash to the CID they were fetched by
  | 'ERR_SYNC_DRIVE' // an entry of another drive
  | 'ERR_SYNC_CERT' // device record not issued by this drive's identity, or not the writer's
  | 'ERR_SYNC_SIGNATURE' // entry signature does not verify
  | 'ERR_SYNC_REVOKED' // entry of a revoked device past its revocation
  | 'ERR_SYNC_REGRESSION' // below the highest entry seen of that log (replay)
  | 'ERR_SYNC_FORK' // another entry with a sequence number already seen
  | 'ERR_SYNC_SKIP' // sequence number past the highest seen + 1
  | 'ERR_SYNC_PREV' // prev is not the CID of the entry seen before it
  | 'ERR_SYNC_ROOT' // sealed root fails authentication or does not decode
  | 'ERR_SYNC_BLOCKS_MISSING' // hub: a listed block is not durable there yet
  | 'ERR_SYNC_STATE_DAMAGED' // the persisted log state cannot be trusted

export interface SyncErrorDetails {
  /** Device public key (hex) the error is about, when there is one. */
  device?: string
  /** The entry's sequence number. */
  seq?: number
  /** What the receiver had: the highest sequence number seen of that log. */
  last?: number
}

export class SyncError extends Error {
  readonly code: SyncErrorCode
  readonly details: SyncErrorDetails
  constructor (code: SyncErrorCode, message: string, details: SyncErrorDetails = {}) {
    super(message)
    this.name = 'SyncError'
    this.code = code
    this.details = details
  }
}

export const isSyncError = (err: unknown, code?: SyncErrorCode): err is SyncError =>
  err instanceof SyncError && (code === undefined || err.code === code)
