// Typed errors of the block store; `code` is stable and one of StoreErrorCode.
export type StoreErrorCode =
  | 'ERR_BLOCK_NOT_FOUND' // no block of that CID in the store
  | 'ERR_STORE_CORRUPT' // a pack is missing, cut short, or holds a record that does not parse
  | 'ERR_FORMAT' // a pack of a version this build does not know
  | 'ERR_CID_MISMATCH' // a block's bytes do not hash to the CID it was fetched by
  | 'ERR_CID_UNSUPPORTED' // a CID of a hash function the store cannot check
  | 'ERR_NO_SPACE' // ENOSPC or EDQUOT while writing
  | 'ERR_JOURNAL_DAMAGED' // a bad journal frame with valid frames after it (journal.ts): not a torn tail
  | 'ERR_IO' // any other I/O failure

export class StoreError extends Error {
  readonly code: StoreErrorCode
  constructor (code: StoreErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'StoreError'
    this.code = code
  }
}

export const notFound = (cid: string): StoreError => new StoreError('ERR_BLOCK_NOT_FOUND', `block ${cid} is not in the store`)

export const corrupt = (message: string): StoreError => new StoreError('ERR_STORE_CORRUPT', message)

/** Maps an I/O failure to a store error, keeping ENOSPC/EDQUOT recognisable. */
export function ioError (err: unknown, what: string): StoreError {
  const code = (err as NodeJS.ErrnoException)?.code
  if (code === 'ENOSPC' || code === 'EDQUOT') return new StoreError('ERR_NO_SPACE', `no space left on the store's disk while ${what}`, { cause: err })
  return new StoreError('ERR_IO', `${what}: ${(err as Error)?.message ?? String(err)}`, { cause: err })
}
