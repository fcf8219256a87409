// Typed errors of snapshots and merges, with stable codes. Reading a damaged tree fails with the
// tree's own ERR_INTEGRITY / ERR_FORMAT (TreeError); these are the snapshot's own failures.
export type SnapshotErrorCode =
  | 'ERR_SNAPSHOT_INVALID' // a snapshot (read or given) that is not a valid tree
  | 'ERR_MERGE_BUG' // the merge produced an invalid tree: a bug, never applied

export class SnapshotError extends Error {
  readonly code: SnapshotErrorCode
  constructor (code: SnapshotErrorCode, message: string) {
    super(message)
    this.name = 'SnapshotError'
    this.code = code
  }
}
