// Typed errors of the tree. Codes are stable and carry no errno: the FUSE frontend's errno.ts
// is the one place that turns them into errno values. The union lists exactly the codes thrown.
export type TreeErrorCode =
  | 'ERR_NOT_FOUND' | 'ERR_EXISTS' | 'ERR_NOT_DIR' | 'ERR_IS_DIR' | 'ERR_NOT_EMPTY'
  | 'ERR_NAME_TOO_LONG' | 'ERR_INVALID' | 'ERR_NOT_PERMITTED' | 'ERR_NO_ATTR' | 'ERR_RANGE'
  | 'ERR_UNSUPPORTED' | 'ERR_BUSY' | 'ERR_NO_SPACE' | 'ERR_TOO_BIG'
  | 'ERR_TOO_MANY_LINKS' // link(2) past LINK_MAX names (EMLINK)
  // a block or node fails authentication or does not decode (integrity), or is of a later format
  | 'ERR_INTEGRITY' | 'ERR_FORMAT'
  // the commit journal (commit-log.ts): the same spelling as the drive's
  | 'ERR_STORE_CORRUPT'
  // thrown as a TreeError by the FUSE frontend (src/fs/fuse/context.ts) for an unknown handle
  | 'ERR_BAD_HANDLE'

export class TreeError extends Error {
  readonly code: TreeErrorCode
  constructor (code: TreeErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'TreeError'
    this.code = code
  }
}

/**
 * Throws an expected error (ENOENT on a lookup, EEXIST...). These are answers, not bugs, and
 * the kernel asks for them thousands of times a second, so they carry no stack trace.
 */
export const fail = (code: TreeErrorCode, message: string): never => {
  const limit = Error.stackTraceLimit
  Error.stackTraceLimit = 0
  const err = new TreeError(code, message)
  Error.stackTraceLimit = limit
  throw err
}
