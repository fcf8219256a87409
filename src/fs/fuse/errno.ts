// The one place where errors become errno values (negative, as libfuse wants them).
// The map is keyed by every code the tree and the store can throw, so a new code that is not
// mapped fails to compile. Unknown errors are EIO, never ENOENT: a caller that cannot tell must
// not pretend "not there".
import { constants } from 'node:os'
import type { TreeErrorCode } from '../tree/errors.js'
import type { StoreErrorCode } from '../../store/errors.js'

const E = constants.errno

const BY_CODE: Record<TreeErrorCode | StoreErrorCode, number> = {
  ERR_NOT_FOUND: E.ENOENT,
  ERR_EXISTS: E.EEXIST,
  ERR_NOT_DIR: E.ENOTDIR,
  ERR_IS_DIR: E.EISDIR,
  ERR_NOT_EMPTY: E.ENOTEMPTY,
  ERR_NAME_TOO_LONG: E.ENAMETOOLONG,
  ERR_INVALID: E.EINVAL,
  ERR_NOT_PERMITTED: E.EPERM,
  ERR_NO_ATTR: E.ENODATA,
  ERR_RANGE: E.ERANGE,
  ERR_UNSUPPORTED: E.EOPNOTSUPP,
  ERR_BUSY: E.EBUSY,
  ERR_NO_SPACE: E.ENOSPC,
  ERR_TOO_BIG: E.EFBIG,
  ERR_INTEGRITY: E.EIO,
  ERR_FORMAT: E.EIO,
  ERR_STORE_CORRUPT: E.EIO,
  ERR_TOO_MANY_LINKS: E.EMLINK,
  ERR_BAD_HANDLE: E.EBADF,
  // the store's own (the tree wraps reads in ERR_INTEGRITY; appends and syncs can surface these)
  ERR_BLOCK_NOT_FOUND: E.EIO,
  ERR_CID_MISMATCH: E.EIO,
  ERR_CID_UNSUPPORTED: E.EIO,
  ERR_JOURNAL_DAMAGED: E.EIO,
  ERR_IO: E.EIO
}

/** node's own errno names that fs calls below the tree may throw and that mean something here. */
const BY_NODE_CODE: Partial<Record<string, number>> = {
  ENOSPC: E.ENOSPC,
  EDQUOT: E.EDQUOT,
  EINTR: E.EINTR,
  EACCES: E.EACCES
}

export function errnoOf (err: unknown): number {
  const code = (err as { code?: unknown })?.code
  if (typeof code !== 'string') return -E.EIO
  const n = Object.hasOwn(BY_CODE, code) ? BY_CODE[code as keyof typeof BY_CODE] : BY_NODE_CODE[code]
  return -(n ?? E.EIO)
}
