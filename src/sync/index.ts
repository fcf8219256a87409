// The sync layer's device logs: entries, device records, revocations, the receipt checks and
// what a device remembers. Merge (merge*.ts) and transport (transport*.ts) sit beside it.
// Public keys only, so the hub may import this index; entry-keys.ts (drive id, sync key, sealed
// roots) needs the drive master key and is imported by path by the devices' code alone [I14].
export * from './errors.js'
export * from './entry.js'
export * from './devices.js'
export * from './log-state.js'
export type { DeviceSigner, SyncKeys, Publication } from './log-writer.js'
export { dagCid, checkDagCid, DAG_CBOR } from './entry-codec.js'
