// Typed errors of the crypto layer. `code` is stable; callers branch on it, never on messages.
export class CryptoError extends Error {
  readonly code: string
  constructor (code: string, message: string) {
    super(message)
    this.name = 'CryptoError'
    this.code = code
  }
}

/** Authentication of sealed bytes failed: tampered, corrupt, wrong key or wrong position. */
export class AuthError extends CryptoError {
  constructor (message = 'authentication failed') { super('ERR_AUTH', message) }
}

/** The sealed bytes carry a format version or type this build does not know. */
export class FormatError extends CryptoError {
  constructor (message: string) { super('ERR_FORMAT', message) }
}
