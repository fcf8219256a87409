// Exit codes of `space`: a stable interface for scripts (docs/cli.md lists them all).
//   0-9    general
//   10-19  mount and filesystem (reserved for src/fs)
//   20-39  identity, keystore, vault
//   40-59  daemon, control socket, app tokens
export const ExitCode = {
  OK: 0,
  FAILURE: 1, // unexpected error
  USAGE: 2, // bad flags or arguments

  MOUNTPOINT_MISSING: 10, // missing or not a directory
  MOUNTPOINT_NOT_EMPTY: 11, // not empty, or something is mounted there already
  STORE_IN_USE: 12, // another process serves this store
  STORE_CORRUPT: 13,
  NO_SPACE: 14, // the store's disk is full
  WRONG_KEY: 15, // the key does not open this store
  FUSE_FAILED: 16,
  NOT_MOUNTED: 17,
  STORE_MISSING: 18,
  STORE_DAMAGED: 19, // opening would lose committed data (nothing was changed), or fsck found damage

  NO_IDENTITY: 20,
  IDENTITY_EXISTS: 21,
  BAD_MNEMONIC: 22,
  WRONG_PASSPHRASE: 23,
  KEYCHAIN_UNAVAILABLE: 24,
  KEYSTORE_LOCKED: 25,
  KEYSTORE_CORRUPT: 26,
  NOT_FOUND: 27,
  UNAVAILABLE: 28, // hub unreachable
  RATE_LIMITED: 29,
  VAULT_TAMPERED: 30,
  REFUSED: 31, // hub refused (bad signature, unauthorised, bad request)
  USERNAME_TAKEN: 32,
  BAD_FORMAT: 33,
  WEAK_KDF: 34, // the hub or a file offers KDF parameters under the floor (docs/keys.md)
  KDF_CHANGED: 35, // the hub's KDF parameters differ from this machine's last backup
  INSECURE_HUB: 36, // plain http:// to a hub not on loopback, without --insecure-http
  FILE_EXISTS: 37, // backup-keys --to an existing path

  NO_DAEMON: 40, // nothing answers on the control socket
  SOCKET_IN_USE: 41, // another daemon answers on the socket this one would use
  SOCKET_UNSAFE: 42, // socket directory not ours / open to others, path too long, not a socket
  PROTOCOL_MISMATCH: 43, // daemon and CLI speak no common protocol version
  TOKEN_MISSING: 44,
  TOKEN_INVALID: 45, // malformed, wrong or unknown
  TOKEN_REVOKED: 46,
  TOKEN_EXPIRED: 47,
  FORBIDDEN: 48, // the token lacks the scope for this method
  TOKEN_NOT_FOUND: 49, // token revoke of an unknown id or name
  TOKEN_NAME_TAKEN: 50,
  ALREADY_MOUNTED: 51, // mount request to a daemon that has its drive mounted
  DAEMON_BUSY: 52, // connection limit or request queue full
  DAEMON_ERROR: 53, // the daemon failed internally or broke the protocol
  DAEMON_START_FAILED: 54, // space daemon: the background process did not come up
  TIMEOUT: 55, // the daemon did not answer or finish in time
  DROPPED: 56 // space events: the daemon dropped the subscription (slow reader, token revoked)
} as const

export type ExitCodeValue = typeof ExitCode[keyof typeof ExitCode]
