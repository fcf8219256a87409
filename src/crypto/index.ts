// The crypto layer: sealing, padding, key derivation. No I/O, no paths, no project imports.
export * from './aead.js'
export * from './padding.js'
export * from './kdf.js'
export * from './errors.js'
export { SealPool, type SealedSlot, type OpenedSlot } from './seal-pool.js'
export { copyBytes, nativeCopy } from './copy.js'
