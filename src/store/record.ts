// The pack file format (docs/format.md "Pack files"): the pack header, and the header each
// record of a pack starts with. Encoding and parsing live side by side here so they cannot drift;
// no I/O.
//
//   pack header:   magic "SPACEPK1" (8) | pack version u8
//   record header: record version u8 | CID length u8 | CID bytes | block length u32 BE
//   then the block's sealed bytes.
import { CID } from './cid.js'
import { StoreError, corrupt } from './errors.js'

export const PACK_VERSION = 1
export const RECORD_VERSION = 1
const PACK_MAGIC = Buffer.from('SPACEPK1')
export const PACK_HEADER_LENGTH = PACK_MAGIC.length + 1
/** The longest record header: a CID of up to 255 bytes. Reading this much always covers one. */
export const MAX_RECORD_HEADER = 2 + 255 + 4

export function encodePackHeader (): Buffer {
  const header = Buffer.alloc(PACK_HEADER_LENGTH)
  PACK_MAGIC.copy(header)
  header[PACK_MAGIC.length] = PACK_VERSION
  return header
}

/** Throws unless `head` (the first PACK_HEADER_LENGTH bytes of pack `pack`) is a known header. */
export function checkPackHeader (head: Uint8Array, pack: number): void {
  if (head.length < PACK_HEADER_LENGTH || !PACK_MAGIC.equals(head.subarray(0, PACK_MAGIC.length))) throw corrupt(`pack ${pack} has no pack header`)
  if (head[PACK_MAGIC.length] !== PACK_VERSION) throw new StoreError('ERR_FORMAT', `pack ${pack} has unknown version ${head[PACK_MAGIC.length]}`)
}

export function encodeRecordHeader (cid: CID, length: number): Buffer {
  const cidBytes = cid.bytes
  const header = Buffer.allocUnsafe(2 + cidBytes.length + 4)
  header[0] = RECORD_VERSION
  header[1] = cidBytes.length
  header.set(cidBytes, 2)
  header.writeUInt32BE(length, 2 + cidBytes.length)
  return header
}

/** A parsed record header: the CID it names, its own length, and the block length after it. */
export interface RecordHeader { cid: CID, headerLength: number, length: number }

/**
 * Parses the record header at the start of `buf` (the bytes read at offset `at` of pack `pack`,
 * at most MAX_RECORD_HEADER). The CID is what the record claims; reads check the bytes against it.
 */
export function parseRecordHeader (buf: Buffer, pack: number, at: number): RecordHeader {
  const cidLength = buf[1]
  if (buf.length < 2 || buf[0] !== RECORD_VERSION || 2 + cidLength + 4 > buf.length) throw corrupt(`pack ${pack}: bad record at offset ${at}`)
  let cid: CID
  try {
    cid = CID.decode(buf.subarray(2, 2 + cidLength))
  } catch (err) {
    throw corrupt(`pack ${pack}: record at offset ${at} names no valid CID: ${(err as Error).message}`)
  }
  return { cid, headerLength: 2 + cidLength + 4, length: buf.readUInt32BE(2 + cidLength) }
}
