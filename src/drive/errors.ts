// Typed errors of the drive: what the user sees when a drive cannot be opened, mounted or
// checked. `code` is stable; src/cli/errors.ts maps each one to an exit code.
export type DriveErrorCode =
  | 'ERR_MOUNTPOINT_MISSING' | 'ERR_MOUNTPOINT_NOT_EMPTY' | 'ERR_MOUNTPOINT_NOT_DIR'
  | 'ERR_STORE_IN_USE' | 'ERR_STORE_CORRUPT' | 'ERR_STORE_MISSING' | 'ERR_WRONG_KEY'
  | 'ERR_NO_SPACE' | 'ERR_FUSE' | 'ERR_NOT_MOUNTED'
  /** Committed data would be lost by opening: nothing was changed; `space fsck` says more. */
  | 'ERR_STORE_DAMAGED'

export class DriveError extends Error {
  constructor (readonly code: DriveErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'DriveError'
  }
}

/** The refusal to open a damaged store; the message names the problem and the way out. */
export function damaged (dataDir: string, problem: string, cause?: unknown): DriveError {
  return new DriveError('ERR_STORE_DAMAGED', `store ${dataDir} is damaged: ${problem}; nothing was changed. Run "space fsck --data-dir ${dataDir}" to see what is damaged, and with --repair to recover the newest intact version`, { cause })
}
