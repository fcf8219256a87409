// The crypto layer: sealing, padding, key derivation. No paths, no project imports, and no I/O
// but open-file.ts's pread on a descriptor its caller hands it.
export * from './aead.js'
export * from './padding.js'
export * from './kdf.js'
export * from './errors.js'
export { SealPool, type SealedSlot } from './seal-pool.js'
export { copyBytes, nativeCopy } from './copy.js'
export { openRun, readPart, type FileRange, type RunBlock, type PartRead } from './open-file.js'
