// The one place where errors become errno values (negative, as libfuse wants them).
// Unknown errors are EIO, never ENOENT; a caller that cannot tell must not pretend "not there".
import { constants } from 'node:os'

const E = constants.errno

const BY_CODE: Record<string, number> = {
  ERR_NOT_FOUND: E.ENOENT,
  ERR_EXISTS: E.EEXIST,
  ERR_NOT_DIR: E.ENOTDIR,
  ERR_IS_DIR: E.EISDIR,
  ERR_NOT_EMPTY: E.ENOTEMPTY,
  ERR_NAME_TOO_LONG: E.ENAMETOOLONG,
  ERR_INVALID: E.EINVAL,
  ERR_NOT_PERMITTED: E.EPERM,
  ERR_INTEGRITY: E.EIO,
  ERR_NO_ATTR: E.ENODATA,
  ERR_RANGE: E.ERANGE,
  ERR_UNSUPPORTED: E.EOPNOTSUPP,
  ERR_BUSY: E.EBUSY,
  ERR_NO_SPACE: E.ENOSPC,
  ERR_TOO_BIG: E.EFBIG,
  ERR_TOO_MANY_LINKS: E.EMLINK,
  ERR_BAD_HANDLE: E.EBADF,
  ERR_INTERRUPTED: E.EINTR,
  // node's own errno names, from fs calls
  ENOSPC: E.ENOSPC,
  EDQUOT: E.EDQUOT,
  EINTR: E.EINTR,
  EACCES: E.EACCES
}

export function errnoOf (err: unknown): number {
  const code = (err as { code?: unknown })?.code
  const n = typeof code === 'string' ? BY_CODE[code] : undefined
  return -(n ?? E.EIO)
}
