// Seals commit records into the journal and reads them back. The commit key is derived from the
// drive's master key; each record is bound to the store id and its sequence number, so records
// cannot be reordered or moved between stores.
import { seal, open, hkdf, SealType, padFrame, unpadFrame } from '../../crypto/index.js'
import { type CommitRecord, encode, decode } from './format.js'
import { TreeError } from './errors.js'
import type { CommitSink } from './ports.js'

export interface RecordFile { append: (bytes: Uint8Array) => Promise<void> }

const KEY_CHECK = Buffer.from('space key check v1')

export class CommitLog implements CommitSink {
  private readonly key: Buffer
  constructor (masterKey: Uint8Array, private readonly storeId: Buffer, private readonly file: RecordFile) {
    this.key = hkdf(masterKey, 'space/v1/commit')
  }

  /** A sealed constant kept in store.json: opening it proves the master key is this store's. */
  static keyCheck (masterKey: Uint8Array, storeId: Buffer): Buffer {
    return seal(hkdf(masterKey, 'space/v1/commit'), { type: SealType.Root, objectId: storeId, index: 0 }, KEY_CHECK)
  }

  static verifyKey (masterKey: Uint8Array, storeId: Buffer, check: Buffer): boolean {
    try {
      return open(hkdf(masterKey, 'space/v1/commit'), { type: SealType.Root, objectId: storeId, index: 0 }, check).equals(KEY_CHECK)
    } catch {
      return false
    }
  }

  async append (record: CommitRecord): Promise<void> {
    await this.file.append(seal(this.key, { type: SealType.Root, objectId: this.storeId, index: record.seq }, padFrame(encode(record))))
  }

  /** Opens every record; they must be sealed by this key with sequence numbers 1, 2, 3, ... */
  decodeAll (records: Buffer[]): CommitRecord[] {
    return records.map((sealed, i) => this.open(sealed, i + 1))
  }

  /** Opens one record that must be sealed by this key as number `seq`. */
  open (sealed: Buffer, seq: number): CommitRecord {
    let framed: Buffer
    try {
      framed = open(this.key, { type: SealType.Root, objectId: this.storeId, index: seq }, sealed)
    } catch {
      throw new TreeError('ERR_STORE_CORRUPT', `commit record ${seq} fails authentication`)
    }
    const body = unpadFrame(framed)
    if (body == null) throw new TreeError('ERR_STORE_CORRUPT', `commit record ${seq} is malformed`)
    const rec = decode<CommitRecord>(body, `commit record ${seq}`)
    if (rec.seq !== seq) throw new TreeError('ERR_STORE_CORRUPT', `commit record ${seq} claims sequence ${rec.seq}`)
    return rec
  }
}
