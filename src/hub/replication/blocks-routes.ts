// The block half of the replication API over HTTP (docs/hub.md): CAR uploads, the missing-list,
// batch fetch as one CAR stream, and GET /ipfs/{cid} under the IPFS Trustless Gateway
// convention. Every route needs a device token: a user reads only blocks they uploaded, and a
// stranger cannot probe which CIDs the hub holds (an unknown block and another user's block
// both answer 404).
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { CID } from '../../store/cid.js'
import { carHeader, readCar, readCarIn, sectionPrefix, sectionSize, unsupportedCid, type Block } from '../../sync/transport-car.js'
import { StoreError } from '../../store/errors.js'
import { BufferPool, type Lease } from '../../store/buffer-pool.js'
import { TransportError } from '../../sync/transport-errors.js'
import { CAR_TYPE, MAX_CAR_BYTES, MAX_CIDS, RAW_TYPE, SYNC_API, UPLOAD_UPGRADE } from '../../sync/transport-protocol.js'
import { SocketBody } from './socket-body.js'
import { badRequest, HubError } from '../errors.js'
import { readJson, send } from '../http.js'
import type { DeviceAuth } from './auth.js'
import type { HubBlocks } from './blocks-store.js'

/** Immutable by construction: a CID names its bytes forever (the gateway convention's value). */
const IMMUTABLE = 'public, max-age=29030400, immutable'
/** Uploads being received at once (4 per syncing device is the transport's default). */
const MAX_UPLOADS = 32
/** What a refused upload's remaining body is read for, so the answer arrives. */
const LINGER_BYTES = 2 * MAX_CAR_BYTES
/** A JSON list of MAX_CIDS CIDs, with room to spare. */
const MAX_CID_LIST_BODY = 1024 * 1024

export interface BlockRouteDeps {
  auth: Pick<DeviceAuth, 'authenticate'>
  blocks: Pick<HubBlocks, 'commit' | 'missing' | 'get' | 'heldRuns'>
  log?: (line: string) => void
}

export interface BlockRoutes {
  /** Serves the request when it is a block route's; false otherwise. */
  route: (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<boolean>
  /**
   * The server's 'upgrade' event: a block PUT whose body is read from the socket in place
   * (UPLOAD_UPGRADE); `admit` is the server's request allowance (throws its HubError). Anything
   * else asking to upgrade is refused. Never rejects.
   */
  upgrade: (req: IncomingMessage, socket: Socket, head: Buffer, admit: () => void) => Promise<void>
  /** Ends the uploads being read in place (the HTTP server no longer counts their sockets as its own). */
  closeAll: () => void
}

/** A whole answer written on a socket taken from the HTTP server; the connection ends with it. */
function answerOn (socket: Socket, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (socket.destroyed) return
  const text = JSON.stringify(body)
  const all = { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers, 'content-length': String(Buffer.byteLength(text)), connection: 'close' }
  let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n`
  for (const [k, v] of Object.entries(all)) head += `${k}: ${v}\r\n`
  socket.end(head + '\r\n' + text)
  // The device closes on `connection: close`; one that does not is cut off.
  socket.once('end', () => socket.destroy())
  socket.setTimeout(10_000, () => socket.destroy())
}

/** Parses a CID string as the block routes accept them: CIDv1, a codec and hash we store. */
function parseCid (s: unknown): CID {
  let cid: CID
  try {
    if (typeof s !== 'string' || s.length > 128) throw new Error()
    cid = CID.parse(s)
  } catch {
    throw new HubError(400, 'bad_cid', `not a CID: ${String(s).slice(0, 80)}`)
  }
  const unsupported = unsupportedCid(cid)
  if (unsupported !== null) throw new HubError(400, 'unsupported_cid', unsupported)
  return cid
}

function parseCidList (body: Record<string, unknown>): CID[] {
  if (!Array.isArray(body.cids)) throw badRequest('cids must be a list of CID strings')
  if (body.cids.length > MAX_CIDS) throw new HubError(413, 'too_large', `at most ${MAX_CIDS} CIDs per request`)
  return body.cids.map(parseCid)
}

function carError (err: TransportError): HubError {
  const stored = '; nothing of this batch was stored'
  switch (err.code) {
    case 'ERR_BLOCK_MISMATCH': return new HubError(400, 'cid_mismatch', err.message + stored)
    case 'ERR_CID_UNSUPPORTED': return new HubError(400, 'unsupported_cid', err.message + stored)
    case 'ERR_TOO_LARGE': return new HubError(413, 'too_large', err.message + stored)
    default: return new HubError(400, 'bad_car', err.message + stored)
  }
}

/** Writes `chunk`, waiting while the socket is backed up; false once the peer is gone. */
async function write (res: ServerResponse, chunk: Uint8Array): Promise<boolean> {
  if (res.destroyed) return false
  return res.write(chunk) || await drainedRes(res)
}

/** Resolves once `res` has drained: false once the peer is gone. */
async function drainedRes (res: ServerResponse): Promise<boolean> {
  if (res.destroyed) return false
  if (!res.writableNeedDrain) return true
  return await new Promise<boolean>(resolve => {
    const done = (ok: boolean) => (): void => { res.off('drain', drained); res.off('close', closed); resolve(ok) }
    const drained = done(true)
    const closed = done(false)
    res.on('drain', drained)
    res.on('close', closed)
  })
}

/**
 * `err`, once the rest of the request body is read and dropped (up to LINGER_BYTES): closing
 * with unread bytes makes the kernel reset the connection, and the device would see a reset in
 * place of the answer. Past the limit the answer closes the connection.
 */
async function drained (it: AsyncIterator<unknown>, err: HubError): Promise<HubError> {
  let left = LINGER_BYTES
  for (let r = await it.next(); r.done !== true; r = await it.next()) {
    left -= (r.value as Buffer).length
    if (left < 0) return new HubError(err.status, err.code, err.message, { ...err.headers, connection: 'close' })
  }
  return err
}

/** Upload bodies (~8 MiB CARs, one per upload in flight), reused once the store has written them. */
const uploadPool = new BufferPool(9 * 1024 * 1024, 6)

export function blockRoutes (deps: BlockRouteDeps): BlockRoutes {
  const { auth, blocks } = deps

  let uploads = 0
  /** Sockets taken over by upgraded(), until they close. */
  const taken = new Set<Socket>()
  async function put (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const s = auth.authenticate(req)
    // Each upload holds its batch in memory until it checks out: bounded by the cap times this.
    if (uploads >= MAX_UPLOADS) throw await drained(req.iterator({ destroyOnReturn: false }), new HubError(503, 'busy', 'too many uploads at once', { 'Retry-After': '1' }))
    uploads++
    try {
      await putBatch(req, res, s.userId, url.searchParams.get('durable') === 'with-entry')
    } finally {
      uploads--
    }
  }

  /** `deferred`: answered once stored; durable with the entry that lists the blocks (docs/hub.md). */
  async function putBatch (req: IncomingMessage, res: ServerResponse, userId: Buffer, deferred: boolean): Promise<void> {
    const type = req.headers['content-type']
    if (type !== undefined && type.split(';')[0].trim() !== CAR_TYPE) throw new HubError(415, 'unsupported_media_type', `send the blocks as ${CAR_TYPE}`)
    const declared = Number(req.headers['content-length'] ?? NaN)
    const it = req.iterator({ destroyOnReturn: false })
    if (declared > MAX_CAR_BYTES) {
      const tooLarge = new HubError(413, 'too_large', `a CAR body is at most ${MAX_CAR_BYTES} bytes; send smaller batches`)
      throw await drained(it, tooLarge)
    }
    // Held until the whole batch has checked out: a bad block anywhere stores nothing of it.
    const batch: Block[] = []
    try {
      // With a declared length (the device transport's), read into one buffer: the blocks are views of it.
      const length = Number.isSafeInteger(declared) && declared > 0 ? declared : undefined
      for await (const b of readCar({ [Symbol.asyncIterator]: () => it }, { maxBytes: MAX_CAR_BYTES, length, pool: uploadPool })) batch.push(b)
    } catch (err) {
      if (!(err instanceof TransportError)) throw err
      batch.length = 0
      throw await drained(it, carError(err))
    }
    try {
      send(res, 200, await blocks.commit(userId, batch, !deferred))
    } catch (err) {
      if (err instanceof StoreError && err.code === 'ERR_NO_SPACE') throw new HubError(507, 'no_space', 'the hub\'s disk is full; nothing of this batch was acknowledged')
      throw err
    }
  }

  /** A PUT whose body this reads from the socket itself: as putBatch, without a Buffer per chunk. */
  async function upgraded (req: IncomingMessage, socket: Socket, head: Buffer, admit: () => void): Promise<void> {
    const declared = Number(req.headers['content-length'] ?? NaN)
    const length = Number.isSafeInteger(declared) && declared >= 0 ? declared : undefined
    let body: SocketBody | null = null
    let lease: Lease | null = null
    let counted = false
    taken.add(socket)
    socket.once('close', () => taken.delete(socket))
    socket.setTimeout(60_000, () => socket.destroy()) // no byte in this long: the device is gone
    socket.on('error', () => {}) // seen by the body reader; nothing to answer on a broken socket
    /** A refusal once the body's rest is read (up to LINGER_BYTES; past it the connection closes). */
    const refuse = async (err: HubError): Promise<void> => {
      body ??= length !== undefined ? new SocketBody(socket, head, null, length) : null
      if (body != null && !(await body.discard(LINGER_BYTES).then(() => true, () => false))) return // the connection broke
      answerOn(socket, err.status, { error: err.code, message: err.message }, err.headers)
    }
    try {
      const url = new URL(req.url ?? '/', 'http://hub')
      const token = (req.headers.upgrade ?? '').toLowerCase()
      if (req.method !== 'PUT' || url.pathname !== SYNC_API.blocks || token !== UPLOAD_UPGRADE) {
        answerOn(socket, 400, { error: 'bad_request', message: `this hub upgrades PUT ${SYNC_API.blocks} with Upgrade: ${UPLOAD_UPGRADE} only` })
        return
      }
      if (length === undefined) throw new HubError(411, 'length_required', 'a block upload in place needs a content-length')
      admit()
      const s = auth.authenticate(req)
      const type = req.headers['content-type']
      if (type !== undefined && type.split(';')[0].trim() !== CAR_TYPE) throw new HubError(415, 'unsupported_media_type', `send the blocks as ${CAR_TYPE}`)
      if (length > MAX_CAR_BYTES) throw new HubError(413, 'too_large', `a CAR body is at most ${MAX_CAR_BYTES} bytes; send smaller batches`)
      if (uploads >= MAX_UPLOADS) throw new HubError(503, 'busy', 'too many uploads at once', { 'Retry-After': '1' })
      uploads++
      counted = true
      lease = uploadPool.lease(length)
      body = new SocketBody(socket, head, lease.buf, length)
      // Held until the whole batch has checked out: a bad block anywhere stores nothing of it.
      const batch: Block[] = []
      try {
        for await (const b of readCarIn(lease.buf, length, body.filled())) { b.release = lease.hold(); batch.push(b) }
      } catch (err) {
        for (const b of batch) b.release?.()
        if (err instanceof TransportError) throw carError(err)
        throw err
      }
      body.stop() // no read lands in the batch buffer from here on
      let stored
      try {
        stored = await blocks.commit(s.userId, batch, url.searchParams.get('durable') !== 'with-entry')
      } catch (err) {
        if (err instanceof StoreError && err.code === 'ERR_NO_SPACE') throw new HubError(507, 'no_space', 'the hub\'s disk is full; nothing of this batch was acknowledged')
        throw err
      }
      answerOn(socket, 200, stored)
    } catch (err) {
      if (err instanceof HubError) await refuse(err)
      else if (!socket.destroyed) { // else the device went away mid-upload: nobody to answer
        deps.log?.(`hub: internal error on an upload in place: ${err instanceof Error ? err.stack : String(err)}`)
        await refuse(new HubError(500, 'internal', 'internal error'))
      }
    } finally {
      body?.stop()
      lease?.done()
      if (counted) uploads--
    }
  }

  async function fetchCar (req: IncomingMessage, res: ServerResponse): Promise<void> {
    const s = auth.authenticate(req)
    const cids = parseCidList(await readJson(req, MAX_CID_LIST_BODY))
    // Every block is looked up before the first byte goes out: a 404 is an answer, a cut
    // stream is an error.
    const absent = blocks.missing(s.userId, cids)
    if (absent.length > 0) throw new HubError(404, 'not_found', `no block ${absent[0].toString()}${absent.length > 1 ? ` (and ${absent.length - 1} more)` : ''} for this user`)
    // Read in runs of neighbours (one upload's blocks lie together), sized up front: the answer
    // has a length, so no chunked framing around each write.
    const { sizes, blocks: runs } = await blocks.heldRuns(cids)
    const header = carHeader([])
    let length = header.length
    for (let i = 0; i < cids.length; i++) length += sectionSize(cids[i], sizes[i])
    res.writeHead(200, { 'content-type': `${CAR_TYPE}; version=1`, 'content-length': String(length), 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' })
    if (!(await write(res, header))) { await runs.return(undefined); return }
    try {
      for (let i = 0; i < cids.length; i++) {
        const r = await runs.next()
        // Past the header a refusal cannot be sent: the device sees a cut answer and retries.
        if (r.done === true || r.value.bytes.length !== sizes[i]) { res.destroy(); return }
        // Prefix and block in one writev; the drain is awaited uncorked (corked, it never comes).
        res.cork()
        res.write(sectionPrefix(cids[i], sizes[i]))
        // The run's buffer is reused once the socket has taken the bytes.
        const release = r.value.release
        const room = res.write(r.value.bytes, release == null ? undefined : () => release())
        res.uncork()
        if (!room && !(await drainedRes(res))) return
      }
    } finally {
      await runs.return(undefined)
    }
    res.end()
  }

  async function gateway (req: IncomingMessage, res: ServerResponse, url: URL, method: string): Promise<void> {
    const rest = url.pathname.slice(SYNC_API.gateway.length)
    if (rest.includes('/')) throw badRequest('this gateway serves blocks by CID only: no path resolution')
    const cid = parseCid(decodeURIComponent(rest))
    const format = formatOf(url.searchParams.get('format'), req.headers.accept)
    const s = auth.authenticate(req)
    const etag = `"${cid.toString()}.${format}"`
    const common = { etag, 'cache-control': IMMUTABLE, vary: 'Accept, Authorization', 'x-content-type-options': 'nosniff', 'x-ipfs-path': `/ipfs/${cid.toString()}` }
    const bytes = await blocks.get(s.userId, cid)
    if (bytes === undefined) throw new HubError(404, 'not_found', `no block ${cid.toString()} for this user`)
    if (req.headers['if-none-match'] === etag) { res.writeHead(304, common); res.end(); return }
    const body = format === 'raw' ? [bytes] : [carHeader([cid]), sectionPrefix(cid, bytes.length), bytes]
    const length = body.reduce((n, b) => n + b.length, 0)
    res.writeHead(200, {
      ...common,
      'content-type': format === 'raw' ? RAW_TYPE : `${CAR_TYPE}; version=1`,
      'content-length': String(length),
      'content-disposition': `attachment; filename="${cid.toString()}.${format === 'raw' ? 'bin' : 'car'}"`,
      ...(format === 'car' ? { 'x-ipfs-roots': cid.toString() } : {})
    })
    if (method === 'HEAD') { res.end(); return }
    for (const b of body.slice(0, -1)) res.write(b)
    res.end(body[body.length - 1])
  }

  const route = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> => {
    const method = req.method ?? 'GET'
    const path = url.pathname
    if (method === 'PUT' && path === SYNC_API.blocks) { await put(req, res, url); return true }
    if (method === 'POST' && path === SYNC_API.missing) {
      const s = auth.authenticate(req)
      const cids = parseCidList(await readJson(req, MAX_CID_LIST_BODY))
      send(res, 200, { missing: blocks.missing(s.userId, cids).map(c => c.toString()) })
      return true
    }
    if (method === 'POST' && path === SYNC_API.fetch) { await fetchCar(req, res); return true }
    if ((method === 'GET' || method === 'HEAD') && path.startsWith(SYNC_API.gateway)) { await gateway(req, res, url, method); return true }
    return false
  }
  return {
    route,
    upgrade: async (req, socket, head, admit) => await upgraded(req, socket, head, admit).catch(() => { socket.destroy() }),
    closeAll: () => { for (const s of taken) s.destroy() }
  }
}

/** ?format= wins over Accept; a trustless gateway answers only raw blocks and CARs (406 otherwise). */
function formatOf (param: string | null, accept: string | undefined): 'raw' | 'car' {
  if (param !== null) {
    if (param === 'raw' || param === 'car') return param
    throw badRequest(`unsupported format "${param.slice(0, 20)}": raw or car`)
  }
  const types = (accept ?? '').split(',').map(t => t.split(';')[0].trim().toLowerCase())
  if (types.includes(RAW_TYPE)) return 'raw'
  if (types.includes(CAR_TYPE)) return 'car'
  throw new HubError(406, 'not_acceptable', `a trustless gateway: ask for ?format=raw or ?format=car (Accept: ${RAW_TYPE} or ${CAR_TYPE})`)
}
