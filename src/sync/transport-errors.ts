// Typed errors of the block transport (device side) and of CAR parsing; `code` is stable.
export type TransportErrorCode =
  | 'ERR_CAR_FORMAT' // a CAR stream that does not parse as CAR v1
  | 'ERR_TOO_LARGE' // a CAR body or one block over its limit
  | 'ERR_BLOCK_MISMATCH' // a block whose bytes do not hash to its CID (the message names the CID)
  | 'ERR_CID_UNSUPPORTED' // a CID of a codec or hash function we do not store or check
  | 'ERR_UNEXPECTED_BLOCK' // the hub answered with a block that was not asked for, or left one out
  | 'ERR_NOT_FOUND' // the hub has no such block for this user
  | 'ERR_AUTH' // the hub refused the device's authentication
  | 'ERR_REVOKED' // this device is revoked
  | 'ERR_HUB' // any other refusal by the hub (its code and message are kept)
  | 'ERR_UNAVAILABLE' // the hub could not be reached

export class TransportError extends Error {
  readonly code: TransportErrorCode
  /** The hub's own error code, where the hub answered with one. */
  readonly hubCode?: string
  constructor (code: TransportErrorCode, message: string, options?: { cause?: unknown, hubCode?: string }) {
    super(message, options)
    this.name = 'TransportError'
    this.code = code
    this.hubCode = options?.hubCode
  }
}
