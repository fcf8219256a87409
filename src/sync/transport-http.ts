// BlockTransport over the hub's HTTP replication API (docs/hub.md): device challenge-response
// for a bearer token (renewed on expiry or a 401), CAR PUT batches of ~8 MiB with 4 in flight,
// the missing-list, and fetches as CAR batches (or one keep-alive GET /ipfs/{cid} per block).
// Every block received is hashed against its CID before it is yielded.
import { request as httpRequest, Agent as HttpAgent, type ClientRequest, type IncomingMessage } from 'node:http'
import { request as httpsRequest, Agent as HttpsAgent } from 'node:https'
import { ed25519Sign, type RawKeyPair } from '../keys/ed25519.js'
import type { DeviceCertificate } from '../keys/identity.js'
import { isLoopback } from '../keys/vault-client.js'
import { b64u, fromB64u } from '../keys/vault-protocol.js'
import type { CID } from '../store/cid.js'
import { BufferPool, Lease } from '../store/buffer-pool.js'
import type { BlockTransport, TransferOptions, TransferProgress } from './transport.js'
import { carHeader, checkBlock, readCar, readCarIn, sectionLength, sectionPrefix, type Block } from './transport-car.js'
import { RawHttp, type RawAnswer } from './transport-raw.js'
import { TransportError } from './transport-errors.js'
import { CAR_TYPE, certificateToJson, deviceAuthMessage, MAX_BLOCK_BYTES, MAX_CIDS, RAW_TYPE, SYNC_API, UPLOAD_UPGRADE, type SyncErrorBody } from './transport-protocol.js'

export interface DeviceCredentials {
  /** The user id the hub gave the identity at registration (16 bytes). */
  userId: Uint8Array
  deviceKey: RawKeyPair
  certificate: DeviceCertificate
}

export interface HttpTransportOptions {
  /** Allow http:// to a host that is not loopback. */
  insecureHttp?: boolean
  /** Target size of one CAR PUT (default 8 MiB). */
  batchBytes?: number
  /** Requests in flight at once, both ways (default 4). */
  inFlight?: number
  /** Blocks per fetch request (default 32: ~4 MiB of 128 KiB blocks). */
  fetchBlocks?: number
  /** Target size of one fetch answer when the sizes are known (default 4 MiB). */
  fetchBytes?: number
  /** 'car' (default): a batch per request; 'raw': one GET /ipfs/{cid}?format=raw per block. */
  getMode?: 'car' | 'raw'
  timeoutMs?: number
  /** Fetch answers through node's http client even over plain http (transport-raw.ts is the default there). */
  nodeHttpFetch?: boolean
  /**
   * Over plain http, ask the hub to read each PUT's body from the socket itself (UPLOAD_UPGRADE;
   * default true). Not over https: a TLS front end would not pass the header on anyway.
   */
  uploadInPlace?: boolean
}

type Body = Buffer | ((req: ClientRequest) => Promise<void>)
interface Call { headers?: Record<string, string>, body?: Body, signal?: AbortSignal, length?: number }

/** Writes `chunk`, waiting while the socket is backed up; false once the peer is gone. */
async function write (req: ClientRequest, chunk: Uint8Array): Promise<boolean> {
  if (req.destroyed) return false
  if (req.write(chunk)) return true
  return await new Promise<boolean>(resolve => {
    const done = (ok: boolean) => (): void => { req.off('drain', drained); req.off('close', closed); resolve(ok) }
    const drained = done(true)
    const closed = done(false)
    req.on('drain', drained)
    req.on('close', closed)
  })
}

async function readAll (res: IncomingMessage, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const c of res) {
    size += (c as Buffer).length
    if (size > limit) { res.destroy(); throw new TransportError('ERR_TOO_LARGE', `hub answer is larger than ${limit} bytes`) }
    chunks.push(c as Buffer)
  }
  return chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)
}

function hubError (status: number, body: Buffer): TransportError {
  let e: SyncErrorBody = { error: 'unknown', message: body.toString('utf8').slice(0, 200) }
  try { e = JSON.parse(body.toString('utf8')) } catch {}
  const message = `hub refused (${status} ${e.error}): ${e.message}`
  const opts = { hubCode: e.error }
  if (e.error === 'device_revoked') return new TransportError('ERR_REVOKED', message, opts)
  if (status === 401) return new TransportError('ERR_AUTH', message, opts)
  if (e.error === 'cid_mismatch') return new TransportError('ERR_BLOCK_MISMATCH', message, opts)
  if (status === 404) return new TransportError('ERR_NOT_FOUND', message, opts)
  if (status === 413) return new TransportError('ERR_TOO_LARGE', message, opts)
  return new TransportError('ERR_HUB', message, opts)
}

/**
 * Fetched batches (~4 MiB CARs, inFlight at once), reused once the store has written their
 * blocks. Kept: more than in flight, since a batch stays leased until the store has written it
 * (with 6 of 9 MiB, B allocated 36 fresh ones per GiB: 324 MiB of external memory); as many as
 * the download and the prefetch of listed blocks hold at once (14-16 seen), since a buffer let
 * go of is allocated again soon after.
 */
const fetchPool = new BufferPool(5 * 1024 * 1024, 20)
/** Fetch answers up to this size get a buffer of their own (fetchInPlace). */
const SMALL_ANSWER = 1024 * 1024

/** CIDs per fetch request at most when cut by size (small files: a few requests, still several in flight). */
const MAX_FETCH_CHUNK = 512

export class HttpBlockTransport implements BlockTransport {
  private readonly base: URL
  private readonly agent: HttpAgent
  private readonly request: typeof httpRequest
  private token: { value: string, expires: number } | null = null
  private pendingToken: Promise<string> | null = null
  private readonly batchBytes: number
  private readonly fetchBytes: number
  private readonly inFlight: number
  private readonly fetchBlocks: number
  /** Plain http: fetch answers read in place (transport-raw.ts). */
  private readonly rawHttp: RawHttp | null

  constructor (hub: string, private readonly creds: DeviceCredentials, private readonly opts: HttpTransportOptions = {}) {
    try {
      this.base = new URL(hub)
    } catch {
      throw new TransportError('ERR_UNAVAILABLE', `not a hub URL: ${hub}`)
    }
    if (this.base.protocol !== 'http:' && this.base.protocol !== 'https:') throw new TransportError('ERR_UNAVAILABLE', `not a hub URL: ${hub}`)
    if (this.base.protocol === 'http:' && !isLoopback(this.base.hostname) && opts.insecureHttp !== true) {
      throw new TransportError('ERR_UNAVAILABLE', `refusing plain http:// to hub ${this.base.origin}, which is not on this machine: use https://`)
    }
    this.inFlight = opts.inFlight ?? 4
    this.batchBytes = opts.batchBytes ?? 8 * 1024 * 1024
    // Fetch answers are held until the store has written them (up to 64 MiB behind, besides 4 in
    // flight per download): 4 MiB ones took B's pooled memory from ~108 to ~60 MiB at the same rate.
    this.fetchBytes = opts.fetchBytes ?? 4 * 1024 * 1024
    this.fetchBlocks = Math.min(opts.fetchBlocks ?? 32, MAX_CIDS)
    // Keep-alive: a batch or block per request costs no handshake; a few spare sockets beyond
    // the in-flight count for the token and missing-list calls.
    const agentOpts = { keepAlive: true, maxSockets: Math.max(8, this.inFlight + 2), scheduling: 'lifo' as const }
    this.agent = this.base.protocol === 'https:' ? new HttpsAgent(agentOpts) : new HttpAgent(agentOpts)
    this.request = this.base.protocol === 'https:' ? httpsRequest as unknown as typeof httpRequest : httpRequest
    this.rawHttp = this.base.protocol === 'http:' && opts.nodeHttpFetch !== true
      ? new RawHttp(this.base.hostname.replace(/^\[(.*)\]$/, '$1'), Number(this.base.port === '' ? 80 : this.base.port), opts.timeoutMs ?? 60_000)
      : null
  }

  private raw (method: string, path: string, call: Call = {}): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string> = { ...call.headers }
      if (call.length !== undefined) headers['content-length'] = String(call.length)
      else if (Buffer.isBuffer(call.body)) headers['content-length'] = String(call.body.length)
      const req = this.request({
        protocol: this.base.protocol, hostname: this.base.hostname, port: this.base.port, path, method, headers, agent: this.agent, signal: call.signal
      }, resolve)
      req.on('error', err => reject(new TransportError('ERR_UNAVAILABLE', `hub ${this.base.origin}: ${method} ${path.slice(0, 60)}: ${err.message}`, { cause: err })))
      req.setTimeout(this.opts.timeoutMs ?? 60_000, () => req.destroy(new Error('no answer in time')))
      const body = call.body
      if (body === undefined) req.end()
      else if (Buffer.isBuffer(body)) req.end(body)
      else body(req).then(() => req.end(), err => req.destroy(err as Error))
    })
  }

  /** A call with the bearer token; a 401 (token expired, hub restarted) re-authenticates once. */
  private async authed (method: string, path: string, call: Call = {}): Promise<IncomingMessage> {
    for (let attempt = 0; ; attempt++) {
      const token = await this.bearer()
      const res = await this.raw(method, path, { ...call, headers: { ...call.headers, authorization: `Bearer ${token}` } })
      if (res.statusCode !== 401 || attempt > 0) return await this.ok(res)
      res.resume()
      if (this.token?.value === token) this.token = null
    }
  }

  /**
   * An authenticated call to another route of the hub's API (the entry routes ride on this
   * session and its keep-alive sockets); resolves to the answer's body, rejects on a refusal.
   */
  async call (method: string, path: string, opts: { body?: Buffer, headers?: Record<string, string>, signal?: AbortSignal } = {}): Promise<Buffer> {
    const res = await this.authed(method, path, { body: opts.body, headers: opts.headers, signal: opts.signal })
    return await readAll(res, 64 * 1024 * 1024)
  }

  private async ok (res: IncomingMessage): Promise<IncomingMessage> {
    const status = res.statusCode ?? 0
    if (status >= 200 && status < 300) return res
    throw hubError(status, await readAll(res, 64 * 1024).catch(() => Buffer.alloc(0)))
  }

  private async json<T> (method: string, path: string, body: unknown, auth = true, signal?: AbortSignal): Promise<T> {
    const call: Call = { headers: { 'content-type': 'application/json' }, body: Buffer.from(JSON.stringify(body)), signal }
    const res = auth ? await this.authed(method, path, call) : await this.ok(await this.raw(method, path, call))
    return JSON.parse((await readAll(res, 4 * 1024 * 1024)).toString('utf8')) as T
  }

  private async bearer (): Promise<string> {
    if (this.token !== null && this.token.expires > Date.now()) return this.token.value
    this.pendingToken ??= this.authenticate().finally(() => { this.pendingToken = null })
    return await this.pendingToken
  }

  private async authenticate (): Promise<string> {
    const { userId, deviceKey, certificate } = this.creds
    const c = await this.json<{ challengeId: string, challenge: string }>('POST', SYNC_API.challenge, { userId: b64u(userId), devicePublicKey: b64u(deviceKey.publicKey) }, false)
    const id = fromB64u(c.challengeId)
    const challenge = fromB64u(c.challenge)
    if (id === undefined || challenge === undefined) throw new TransportError('ERR_HUB', 'hub sent a malformed challenge')
    const signature = ed25519Sign(deviceKey.privateKey, deviceAuthMessage(id, userId, deviceKey.publicKey, challenge))
    const t = await this.json<{ token: string, expiresIn: number }>('POST', SYNC_API.token, { challengeId: c.challengeId, signature: b64u(signature), certificate: certificateToJson(certificate) }, false)
    // Renewed a little before the hub would refuse it.
    this.token = { value: t.token, expires: Date.now() + Math.max(1, t.expiresIn - 30) * 1000 }
    return t.token
  }

  async missing (cids: CID[], opts: TransferOptions = {}): Promise<CID[]> {
    const out: CID[] = []
    for (let i = 0; i < cids.length; i += MAX_CIDS) {
      const part = cids.slice(i, i + MAX_CIDS)
      const byString = new Map(part.map(c => [c.toString(), c]))
      const r = await this.json<{ missing: string[] }>('POST', SYNC_API.missing, { cids: part.map(c => c.toString()) }, true, opts.signal)
      for (const s of r.missing) {
        const c = byString.get(s)
        if (c === undefined) throw new TransportError('ERR_UNEXPECTED_BLOCK', `hub listed ${s.slice(0, 80)} as missing, which was not asked about`)
        out.push(c)
      }
    }
    return out
  }

  async put (blocks: AsyncIterable<Block> | Iterable<Block>, opts: TransferOptions = {}): Promise<TransferProgress> {
    const total: TransferProgress = { blocks: 0, bytes: 0 }
    const inflight = new Set<Promise<void>>()
    let failure: unknown = null
    let batch: Block[] = []
    let size = 0
    const send = async (): Promise<void> => {
      const b = batch
      batch = []
      size = 0
      const p = this.putBatch(b, opts.signal, opts.durable === 'with-entry').then(() => {
        total.blocks += b.length
        total.bytes += b.reduce((n, x) => n + x.bytes.length, 0)
        opts.onProgress?.({ ...total })
      }, err => { failure ??= err }).finally(() => {
        inflight.delete(p)
        // Answered (or failed): no attempt of this batch sends its bytes again.
        for (const x of b) x.release?.()
      })
      inflight.add(p)
      if (inflight.size >= this.inFlight) await Promise.race(inflight)
    }
    for await (const b of blocks) {
      if (failure !== null) break
      batch.push(b)
      size += sectionLength(b)
      if (size >= this.batchBytes) await send()
    }
    if (failure === null && batch.length > 0) await send()
    await Promise.all(inflight)
    if (failure !== null) throw failure
    return total
  }

  private async putBatch (blocks: Block[], signal?: AbortSignal, withEntry = false): Promise<void> {
    const header = carHeader([])
    const length = header.length + blocks.reduce((n, b) => n + sectionLength(b), 0)
    const body = async (req: ClientRequest): Promise<void> => {
      if (!(await write(req, header))) return
      for (const b of blocks) {
        if (!(await write(req, sectionPrefix(b.cid, b.bytes.length))) || !(await write(req, b.bytes))) return
      }
    }
    const path = withEntry ? `${SYNC_API.blocks}?durable=with-entry` : SYNC_API.blocks
    const res = await this.authed('PUT', path, { headers: this.uploadHeaders(), body, length, signal })
    await readAll(res, 64 * 1024)
  }

  /** An upload's headers: over plain http the hub is asked to read the body in place (it answers with `connection: close`: one connection per batch). */
  private uploadHeaders (): Record<string, string> {
    const inPlace: Record<string, string> = this.base.protocol === 'http:' && this.opts.uploadInPlace !== false ? { connection: 'Upgrade', upgrade: UPLOAD_UPGRADE } : {}
    return { 'content-type': CAR_TYPE, ...inPlace }
  }

  /** One CAR batch framed by the caller (the early upload's), in one request, its buffer written as it is. */
  async putCar (car: Buffer, opts: Pick<TransferOptions, 'durable' | 'signal'> = {}): Promise<void> {
    const path = opts.durable === 'with-entry' ? `${SYNC_API.blocks}?durable=with-entry` : SYNC_API.blocks
    const res = await this.authed('PUT', path, { headers: this.uploadHeaders(), body: car, signal: opts.signal })
    await readAll(res, 64 * 1024)
  }

  async * get (cids: CID[], opts: TransferOptions = {}): AsyncGenerator<Block> {
    const chunks: CID[][] = []
    if (opts.sizeOf == null) {
      for (let i = 0; i < cids.length; i += this.fetchBlocks) chunks.push(cids.slice(i, i + this.fetchBlocks))
    } else {
      // ~fetchBytes per request by the sizes given (a block of unknown size counts as 128 KiB).
      let chunk: CID[] = []
      let bytes = 0
      for (const c of cids) {
        chunk.push(c)
        bytes += opts.sizeOf(c) ?? 128 * 1024
        if (bytes >= this.fetchBytes || chunk.length >= MAX_FETCH_CHUNK) { chunks.push(chunk); chunk = []; bytes = 0 }
      }
      if (chunk.length > 0) chunks.push(chunk)
    }
    // Up to inFlight chunks ahead, yielded in order: memory stays at inFlight batches.
    const started: Array<Promise<Block[]> | undefined> = []
    let next = 0
    const start = (): void => {
      const p = this.fetchChunk(chunks[next++], opts.signal)
      p.catch(() => {}) // seen when awaited below; not an unhandled rejection if the caller stops early
      started.push(p)
    }
    while (next < chunks.length && started.length < this.inFlight) start()
    const total: TransferProgress = { blocks: 0, bytes: 0 }
    for (let i = 0; i < chunks.length; i++) {
      const blocks = await started[i]!
      started[i] = undefined
      if (next < chunks.length) start()
      for (const b of blocks) {
        total.blocks++
        total.bytes += b.bytes.length
        yield b
      }
      opts.onProgress?.({ ...total })
    }
  }

  private async fetchChunk (cids: CID[], signal?: AbortSignal): Promise<Block[]> {
    if (this.opts.getMode === 'raw') return await Promise.all(cids.map(async c => await this.getRaw(c, signal)))
    if (this.rawHttp != null) return await this.fetchInPlace(this.rawHttp, cids, signal)
    const res = await this.authed('POST', SYNC_API.fetch, { headers: { 'content-type': 'application/json', accept: CAR_TYPE }, body: Buffer.from(JSON.stringify({ cids: cids.map(c => c.toString()) })), signal })
    const out: Block[] = []
    // A declared length (the hub's answers have one): the batch is read into one buffer, its blocks views of it.
    const declared = Number(res.headers['content-length'] ?? NaN)
    const length = Number.isSafeInteger(declared) && declared > 0 ? declared : undefined
    for await (const b of readCar(res, { maxBytes: 1024 + cids.length * (MAX_BLOCK_BYTES + 80), length, pool: fetchPool })) {
      const want = cids[out.length]
      if (want === undefined || !want.equals(b.cid)) {
        res.destroy()
        throw new TransportError('ERR_UNEXPECTED_BLOCK', `hub sent block ${b.cid.toString()} where ${want?.toString() ?? 'the end of the batch'} was expected`)
      }
      out.push(b)
    }
    if (out.length !== cids.length) throw new TransportError('ERR_UNEXPECTED_BLOCK', `hub's batch ended after ${out.length} of ${cids.length} blocks (next: ${cids[out.length].toString()})`)
    return out
  }

  /** fetchChunk over transport-raw.ts: the answer is read by the kernel into a pooled buffer, its blocks checked as their sections complete. */
  private async fetchInPlace (raw: RawHttp, cids: CID[], signal?: AbortSignal): Promise<Block[]> {
    const body = Buffer.from(JSON.stringify({ cids: cids.map(c => c.toString()) }))
    const maxBytes = 1024 + cids.length * (MAX_BLOCK_BYTES + 80)
    let lease: ReturnType<typeof fetchPool.lease> | null = null
    let a: RawAnswer
    for (let attempt = 0; ; attempt++) {
      const token = await this.bearer()
      a = await raw.request({
        method: 'POST',
        path: SYNC_API.fetch,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: CAR_TYPE },
        body,
        signal,
        // A small answer (an on-demand fetch of a node or two) in a buffer of its size: a
        // pooled 9 MiB one would be held until the store has written its blocks.
        into: n => { if (n > maxBytes) return null; lease = n <= SMALL_ANSWER ? new Lease(Buffer.allocUnsafe(n), null) : fetchPool.lease(n); return lease.buf }
      })
      if (a.status !== 401 || attempt > 0) break
      if (this.token?.value === token) this.token = null
    }
    if (a.status < 200 || a.status >= 300) throw hubError(a.status, a.bytes ?? Buffer.alloc(0))
    if (a.filled == null || lease == null) {
      if (a.status === 200 && Number(a.headers.get('content-length')) > maxBytes) throw new TransportError('ERR_TOO_LARGE', `CAR stream of ${a.headers.get('content-length') ?? '?'} bytes is larger than ${maxBytes} bytes`)
      throw new TransportError('ERR_HUB', 'hub answered a fetch without a length')
    }
    const held: Lease = lease
    const out: Block[] = []
    try {
      for await (const b of readCarIn(held.buf, a.length!, a.filled)) {
        const want = cids[out.length]
        if (want === undefined || !want.equals(b.cid)) throw new TransportError('ERR_UNEXPECTED_BLOCK', `hub sent block ${b.cid.toString()} where ${want?.toString() ?? 'the end of the batch'} was expected`)
        b.release = held.hold()
        out.push(b)
      }
    } catch (err) {
      a.close() // before the buffer can go back to the pool: no read lands in it after this
      throw err
    } finally {
      held.done()
    }
    if (out.length !== cids.length) throw new TransportError('ERR_UNEXPECTED_BLOCK', `hub's batch ended after ${out.length} of ${cids.length} blocks (next: ${cids[out.length].toString()})`)
    return out
  }

  private async getRaw (cid: CID, signal?: AbortSignal): Promise<Block> {
    const res = await this.authed('GET', `${SYNC_API.gateway}${cid.toString()}?format=raw`, { headers: { accept: RAW_TYPE }, signal })
    const bytes = await readAll(res, MAX_BLOCK_BYTES)
    checkBlock(cid, bytes)
    return { cid, bytes }
  }

  /** The identity's device revocation records the hub holds (sync/transport-protocol.ts). */
  async revocations (): Promise<Buffer[]> {
    const res = await this.authed('GET', SYNC_API.revoked)
    const r = JSON.parse((await readAll(res, 4 * 1024 * 1024)).toString('utf8')) as { records: string[] }
    return r.records.map(s => fromB64u(s)).filter((b): b is Buffer => b !== undefined)
  }

  async close (): Promise<void> { this.agent.destroy(); this.rawHttp?.close() }
}

/** Sends an identity-signed revocation record (encodeRevocation) to the hub; no token needed. */
export async function postRevocation (hub: string, record: Uint8Array): Promise<void> {
  let res: Response
  try {
    res = await fetch(new URL(SYNC_API.revoke, hub), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ record: b64u(record) }), signal: AbortSignal.timeout(30_000) })
  } catch (err) {
    throw new TransportError('ERR_UNAVAILABLE', `cannot reach hub ${hub}: ${(err as Error).message}`, { cause: err })
  }
  if (!res.ok) throw hubError(res.status, Buffer.from(await res.arrayBuffer()))
}

