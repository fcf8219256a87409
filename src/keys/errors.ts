// Typed errors of the keys layer. `code` is stable; the CLI maps codes to exit codes and callers
// branch on it, never on messages. Messages are one line, fit to show the user as they are.
export type KeysErrorCode =
  | 'ERR_NO_IDENTITY'
  | 'ERR_IDENTITY_EXISTS'
  | 'ERR_BAD_MNEMONIC'
  | 'ERR_WRONG_PASSPHRASE'
  | 'ERR_KEYCHAIN_UNAVAILABLE'
  | 'ERR_KEYSTORE_LOCKED'
  | 'ERR_KEYSTORE_CORRUPT'
  | 'ERR_BAD_FORMAT'
  | 'ERR_VAULT_TAMPERED'
  | 'ERR_NOT_FOUND'
  | 'ERR_HUB_UNAVAILABLE'
  | 'ERR_HUB_REFUSED'
  | 'ERR_RATE_LIMITED'
  | 'ERR_USERNAME_TAKEN'
  | 'ERR_BAD_USERNAME'
  | 'ERR_WEAK_KDF'
  | 'ERR_KDF_CHANGED'
  | 'ERR_INSECURE_HUB'
  | 'ERR_FILE_EXISTS'

export class KeysError extends Error {
  readonly code: KeysErrorCode
  /** Seconds to wait before retrying, when the hub rate-limited us. */
  readonly retryAfter?: number
  constructor (code: KeysErrorCode, message: string, opts?: { cause?: unknown, retryAfter?: number }) {
    super(message, opts?.cause === undefined ? undefined : { cause: opts.cause })
    this.name = 'KeysError'
    this.code = code
    if (opts?.retryAfter !== undefined) this.retryAfter = opts.retryAfter
  }
}

export function isKeysError (err: unknown, code?: KeysErrorCode): err is KeysError {
  return err instanceof KeysError && (code === undefined || err.code === code)
}
