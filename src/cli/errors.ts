// Maps typed errors to the CLI's named exit codes.
import { ExitCode as EXIT } from './exit-codes.js'

const BY_CODE: Record<string, number> = {
  ERR_MOUNTPOINT_MISSING: EXIT.MOUNTPOINT_MISSING,
  ERR_MOUNTPOINT_NOT_DIR: EXIT.MOUNTPOINT_MISSING,
  ERR_MOUNTPOINT_NOT_EMPTY: EXIT.MOUNTPOINT_NOT_EMPTY,
  ERR_STORE_IN_USE: EXIT.STORE_IN_USE,
  ERR_STORE_CORRUPT: EXIT.STORE_CORRUPT,
  ERR_STORE_MISSING: EXIT.STORE_MISSING,
  ERR_STORE_DAMAGED: EXIT.STORE_DAMAGED,
  ERR_NO_SPACE: EXIT.NO_SPACE,
  ENOSPC: EXIT.NO_SPACE,
  ERR_WRONG_KEY: EXIT.WRONG_KEY,
  ERR_FUSE: EXIT.FUSE_FAILED,
  ERR_NOT_MOUNTED: EXIT.NOT_MOUNTED
}

export function exitCodeOf (err: unknown): number {
  const code = (err as { code?: unknown })?.code
  return (typeof code === 'string' ? BY_CODE[code] : undefined) ?? EXIT.FAILURE
}
