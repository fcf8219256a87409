// Exit codes of `space`: a stable interface for scripts (docs/keys.md lists them).
//   0-9    general
//   10-19  mount and filesystem (reserved for src/fs)
//   20-39  identity, keystore, vault
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
  BAD_FORMAT: 33
} as const

export type ExitCodeValue = typeof ExitCode[keyof typeof ExitCode]
