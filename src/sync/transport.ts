// How a device moves blocks to and from a hub (or, later, a peer): the one interface the sync
// engine depends on. transport-http.ts implements it over the hub's HTTP API; a libp2p stream
// between devices can implement it next without the engine noticing.
import type { CID } from '../store/cid.js'
import type { Block } from './transport-car.js'

export type { Block } from './transport-car.js'
export { TransportError, type TransportErrorCode } from './transport-errors.js'

export interface TransferProgress { blocks: number, bytes: number }

export interface TransferOptions {
  signal?: AbortSignal
  /** Told after each acknowledged batch: the totals so far. */
  onProgress?: (p: TransferProgress) => void
  /**
   * get(): a block's expected size, where the caller knows it: batches are then cut by bytes
   * (many small blocks to a request) instead of by a count sized for 128 KiB blocks.
   */
  sizeOf?: (cid: CID) => number | undefined
  /**
   * put(): 'now' (default): each batch is acknowledged once durable on the other side.
   * 'with-entry': once stored there; they become durable with the first entry appended that
   * lists them (the hub makes them durable before it accepts that entry), so a put costs no
   * disk sync of its own. For a pusher that appends entries after its puts.
   */
  durable?: 'now' | 'with-entry'
}

export interface BlockTransport {
  /** The CIDs of `cids` the other side lacks (for a hub: lacks for this user), in their order. */
  missing: (cids: CID[], opts?: TransferOptions) => Promise<CID[]>
  /**
   * Sends blocks (batched, several batches in flight); resolves once the other side has
   * acknowledged every one of them as durable (or as stored: opts.durable). A refused batch
   * rejects with a TransportError.
   */
  put: (blocks: AsyncIterable<Block> | Iterable<Block>, opts?: TransferOptions) => Promise<TransferProgress>
  /**
   * put() of one CAR v1 batch the caller framed (header, then sections), sent as it is in one
   * request; resolves once every block in it is acknowledged (as put()). The early upload's
   * (uplink.ts): it frames the sealed bytes as they are appended.
   */
  putCar?: (car: Buffer, opts?: Pick<TransferOptions, 'durable' | 'signal'>) => Promise<void>
  /**
   * The blocks of `cids`, in that order, each checked against its CID before it is yielded: a
   * wrong block is a TransportError ERR_BLOCK_MISMATCH naming the CID, never yielded.
   */
  get: (cids: CID[], opts?: TransferOptions) => AsyncIterable<Block>
  close: () => Promise<void>
}
