// Typed errors of the block store; `code` is stable.
export class StoreError extends Error {
  readonly code: string
  constructor (code: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'StoreError'
    this.code = code
  }
}

export const notFound = (cid: string): StoreError => new StoreError('ERR_BLOCK_NOT_FOUND', `block ${cid} is not in the store`)

/** Maps an I/O failure to a store error, keeping ENOSPC/EDQUOT recognisable. */
export function ioError (err: unknown, what: string): StoreError {
  const code = (err as NodeJS.ErrnoException)?.code
  if (code === 'ENOSPC' || code === 'EDQUOT') return new StoreError('ERR_NO_SPACE', `no space left on the store's disk while ${what}`, { cause: err })
  return new StoreError('ERR_IO', `${what}: ${(err as Error)?.message ?? String(err)}`, { cause: err })
}
