// A small HTTP/1.1 client over plain TCP for the one request that carries bulk data down: the
// block fetch, whose answer (a CAR of known length) the kernel reads straight into the caller's
// buffer (net.Socket's `onread`), with no Buffer made per socket read. Node's http client gives
// each ~64 KiB read a fresh ArrayBuffer: 1 GiB of short-lived external memory per GiB fetched,
// which is what starts V8's full collections, and in a loopback test (1 GiB in 8 MiB answers)
// the receive took 1.25-1.33 s of CPU that way against 0.34-0.36 s with the bytes read in place.
// What it speaks: one request at a time per connection, keep-alive; an answer with a length, or
// chunked (the hub's error answers), or ended by a close. Plain http only: an https hub goes
// through node's client.
import { connect, type Socket } from 'node:net'
import { TransportError } from './transport-errors.js'

/** Status line and headers, and the small bodies (error answers) kept with them, at most. */
const HEAD_BYTES = 64 * 1024

export interface RawRequest {
  method: string
  path: string
  headers: Record<string, string>
  body?: Buffer
  signal?: AbortSignal
  /**
   * For a 200 answer of `length` bytes: the buffer (at least `length` bytes) its body is read
   * into; returning null (or without it) makes it a small body, kept whole.
   */
  into?: (length: number) => Buffer | null
}

/** An answer: its body read in place (`filled`), or small and whole (`bytes`). */
export interface RawAnswer {
  status: number
  headers: Map<string, string>
  /** With `into`: the body's length; `filled` yields how many of its bytes are in the buffer after each read, ending at `length`. */
  length?: number
  filled?: AsyncIterator<number>
  bytes?: Buffer
  /** Ends the exchange: the connection is closed unless the body was read whole. */
  close: () => void
}

type Framing = { kind: 'length', n: number } | { kind: 'chunked' } | { kind: 'close' }

/** One keep-alive connection and the exchange on it. */
class Conn {
  readonly sock: Socket
  private head = Buffer.allocUnsafeSlow(HEAD_BYTES)
  private headLen = 0
  /** Where body bytes go while reading in place: `out[0, length)`, `have` of them there. */
  private out: Buffer | null = null
  private have = 0
  private length = 0
  private waiter: { resolve: (r: IteratorResult<number>) => void, reject: (e: unknown) => void } | null = null
  private reported = 0
  private ex: Exchange | null = null
  closed = false
  /** Bytes of an answer seen on this exchange (a reused connection that fails before any may be retried). */
  gotBytes = false

  /** An exchange is under way (from send() until its answer is all read). */
  busy = false
  /** Counts exchanges: an abort or timeout of one never closes the connection under a later one. */
  exchange = 0

  constructor (host: string, port: number, private readonly onIdle: (c: Conn) => void, onClose: (c: Conn) => void) {
    this.sock = connect({
      host,
      port,
      noDelay: true,
      onread: { buffer: () => this.target(), callback: n => { this.onBytes(n); return true } }
    })
    this.sock.on('error', err => this.fail(err))
    this.sock.on('close', () => { this.fail(new Error('connection closed by the hub')); onClose(this) })
  }

  /** The memory the next read goes to. */
  private target (): Buffer {
    if (this.out != null && this.have < this.length) return this.out.subarray(this.have, this.length)
    if (this.headLen >= this.head.length) return Buffer.allocUnsafe(4096) // overflow: refused in onBytes
    return this.head.subarray(this.headLen)
  }

  send (req: RawRequest, hostHeader: string): Promise<RawAnswer> {
    this.gotBytes = false
    this.busy = true
    this.exchange++
    return new Promise<RawAnswer>((resolve, reject) => {
      this.ex = { req, resolve, reject, answered: false, status: 0, headers: new Map(), bodyAt: 0, framing: { kind: 'close' } }
      let text = `${req.method} ${req.path} HTTP/1.1\r\nhost: ${hostHeader}\r\nconnection: keep-alive\r\n`
      const headers = { ...req.headers, 'content-length': String(req.body?.length ?? 0) }
      for (const [k, v] of Object.entries(headers)) text += `${k}: ${v}\r\n`
      text += '\r\n'
      this.sock.write(req.body == null ? text : Buffer.concat([Buffer.from(text, 'latin1'), req.body]))
    })
  }

  private onBytes (n: number): void {
    if (n <= 0) return
    this.gotBytes = true
    const ex = this.ex
    if (this.out != null && this.have < this.length) {
      this.have += n
      this.wake()
      if (this.have === this.length) this.finish()
      return
    }
    if (ex == null) { this.destroy(new Error('hub sent bytes with no request')); return }
    if (this.headLen + n > this.head.length) { this.destroy(new TransportError('ERR_TOO_LARGE', `hub answer head is over ${HEAD_BYTES} bytes`)); return }
    this.headLen += n
    try {
      if (!ex.answered && !this.parseHead(ex)) return
      this.smallBody(ex)
    } catch (err) {
      this.destroy(err as Error)
    }
  }

  /** Parses the status line and headers once they are all here; false while they are not. */
  private parseHead (ex: Exchange): boolean {
    const end = this.head.subarray(0, this.headLen).indexOf('\r\n\r\n')
    if (end < 0) return false
    const lines = this.head.toString('latin1', 0, end).split('\r\n')
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0])
    if (m == null) throw new TransportError('ERR_HUB', `hub sent no HTTP status line: ${lines[0].slice(0, 60)}`)
    ex.status = Number(m[1])
    for (const l of lines.slice(1)) {
      const i = l.indexOf(':')
      if (i > 0) ex.headers.set(l.slice(0, i).trim().toLowerCase(), l.slice(i + 1).trim())
    }
    ex.answered = true
    ex.bodyAt = end + 4
    const te = ex.headers.get('transfer-encoding')
    const cl = ex.headers.get('content-length')
    if (te != null && te.toLowerCase() !== 'identity') {
      if (te.toLowerCase() !== 'chunked') throw new TransportError('ERR_HUB', `hub answer has transfer-encoding ${te}`)
      ex.framing = { kind: 'chunked' }
    } else if (cl != null) {
      const n = Number(cl)
      if (!/^\d+$/.test(cl) || !Number.isSafeInteger(n)) throw new TransportError('ERR_HUB', `hub answer has a bad content-length: ${cl.slice(0, 30)}`)
      ex.framing = { kind: 'length', n }
    }
    if (ex.framing.kind === 'length' && ex.status === 200 && ex.req.into != null) {
      const buf = ex.req.into(ex.framing.n)
      if (buf != null) {
        // In place from here: what came with the head is copied once; the rest is read there.
        const early = Math.min(this.headLen - ex.bodyAt, ex.framing.n)
        this.head.copy(buf, 0, ex.bodyAt, ex.bodyAt + early)
        if (this.headLen - ex.bodyAt > early) throw new TransportError('ERR_HUB', 'hub sent more than its answer\'s length')
        this.out = buf
        this.length = ex.framing.n
        this.have = early
        this.reported = 0
        this.headLen = 0
        this.ex = null
        const id = this.exchange
        ex.resolve({ status: ex.status, headers: ex.headers, length: this.length, filled: this.filled(), close: () => { if (this.busy && this.exchange === id) this.destroy(new Error('fetch abandoned')) } })
        if (this.have === this.length) this.finish()
        return false
      }
    }
    return true
  }

  /** A small body: answered once it is all in the head buffer. */
  private smallBody (ex: Exchange): void {
    const raw = this.head.subarray(ex.bodyAt, this.headLen)
    let bytes: Buffer | null = null
    if (ex.framing.kind === 'length') {
      if (raw.length > ex.framing.n) throw new TransportError('ERR_HUB', 'hub sent more than its answer\'s length')
      if (raw.length === ex.framing.n) bytes = Buffer.from(raw)
    } else if (ex.framing.kind === 'chunked') {
      bytes = dechunk(raw)
    } else return // ended by the close (fail() answers it)
    if (bytes == null) return
    this.headLen = 0
    this.ex = null
    ex.resolve({ status: ex.status, headers: ex.headers, bytes, close: () => {} })
    this.idle(ex.headers)
  }

  /** The in-place body is all here. */
  private finish (): void {
    this.out = null
    this.wake()
    this.idle(null)
  }

  private idle (headers: Map<string, string> | null): void {
    this.busy = false
    if (headers?.get('connection')?.toLowerCase() === 'close') { this.destroy(null); return }
    this.onIdle(this)
  }

  private async * filledGen (): AsyncGenerator<number> {
    for (;;) {
      if (this.reported < this.have) { this.reported = this.have; yield this.reported; continue }
      if (this.reported === this.length) return
      if (this.closed) throw this.lastError ?? new TransportError('ERR_UNAVAILABLE', 'hub connection closed inside an answer')
      await new Promise<IteratorResult<number>>((resolve, reject) => { this.waiter = { resolve, reject } })
    }
  }

  private filled (): AsyncIterator<number> { return this.filledGen() }

  private wake (): void {
    const w = this.waiter
    this.waiter = null
    w?.resolve({ value: 0, done: false })
  }

  private lastError: Error | null = null

  /** Closes the connection; whatever is under way fails with `err`. */
  destroy (err: Error | null): void {
    if (err != null) this.lastError ??= err instanceof TransportError ? err : new TransportError('ERR_UNAVAILABLE', `hub: ${err.message}`, { cause: err })
    this.sock.destroy()
    this.fail(err ?? new Error('closed'))
  }

  private fail (err: Error): void {
    const first = !this.closed
    this.closed = true
    if (first) this.lastError ??= err instanceof TransportError ? err : new TransportError('ERR_UNAVAILABLE', `hub: ${err.message}`, { cause: err })
    this.out = null // no read goes into the caller's buffer once the socket is gone
    const ex = this.ex
    this.ex = null
    if (ex != null) {
      // An answer ended by the close is complete; anything else failed.
      if (ex.answered && ex.framing.kind === 'close') ex.resolve({ status: ex.status, headers: ex.headers, bytes: Buffer.from(this.head.subarray(ex.bodyAt, this.headLen)), close: () => {} })
      else ex.reject(this.lastError)
    }
    const w = this.waiter
    this.waiter = null
    w?.reject(this.lastError)
  }
}

interface Exchange {
  req: RawRequest
  resolve: (a: RawAnswer) => void
  reject: (e: unknown) => void
  answered: boolean
  status: number
  headers: Map<string, string>
  bodyAt: number
  framing: Framing
}

/** A chunked body's bytes once its last chunk and trailer are there; null before. */
export function dechunk (raw: Buffer): Buffer | null {
  const parts: Buffer[] = []
  let p = 0
  for (;;) {
    const eol = raw.indexOf('\r\n', p)
    if (eol < 0) return null
    const size = parseInt(raw.toString('latin1', p, eol).split(';')[0].trim(), 16)
    if (!Number.isSafeInteger(size) || size < 0) throw new TransportError('ERR_HUB', 'hub sent a bad chunk size')
    if (size === 0) {
      // Trailer lines up to an empty one.
      const end = raw.indexOf('\r\n\r\n', eol)
      if (end < 0 && !(raw.length >= eol + 4 && raw.toString('latin1', eol, eol + 4) === '\r\n\r\n')) return null
      return Buffer.concat(parts)
    }
    if (raw.length < eol + 2 + size + 2) return null
    parts.push(raw.subarray(eol + 2, eol + 2 + size))
    p = eol + 2 + size + 2
  }
}

/** Keep-alive connections to one host; a request on a reused connection that breaks before any answer byte is sent again on a new one. */
export class RawHttp {
  private readonly idle: Conn[] = []

  constructor (private readonly host: string, private readonly port: number, private readonly timeoutMs: number) {}

  async request (req: RawRequest): Promise<RawAnswer> {
    for (let attempt = 0; ; attempt++) {
      const reused = this.idle.pop()
      const c = reused ?? new Conn(this.host, this.port, conn => this.release(conn), conn => this.forget(conn))
      try {
        return await this.on(c, req)
      } catch (err) {
        // A kept connection the hub had closed meanwhile: the request never reached it.
        if (reused == null || c.gotBytes || attempt > 0 || req.signal?.aborted === true) throw err
      }
    }
  }

  private async on (c: Conn, req: RawRequest): Promise<RawAnswer> {
    const mine = c.exchange + 1 // the exchange send() starts
    const stop = (err: Error) => (): void => { if (c.busy && c.exchange === mine) c.destroy(err) }
    const onAbort = stop(new TransportError('ERR_UNAVAILABLE', 'fetch aborted'))
    if (req.signal?.aborted === true) throw new TransportError('ERR_UNAVAILABLE', 'fetch aborted')
    req.signal?.addEventListener('abort', onAbort, { once: true })
    c.sock.setTimeout(this.timeoutMs, stop(new Error('no answer in time')))
    const a = await c.send(req, `${this.host.includes(':') ? `[${this.host}]` : this.host}:${this.port}`).catch(err => { req.signal?.removeEventListener('abort', onAbort); throw err })
    if (a.filled == null) { req.signal?.removeEventListener('abort', onAbort); return a }
    // The body is still arriving: the abort stays until it is in (the timeout until release()).
    const it = a.filled
    const next = async (): Promise<IteratorResult<number>> => {
      try {
        const r = await it.next()
        if (r.done === true) req.signal?.removeEventListener('abort', onAbort)
        return r
      } catch (err) {
        req.signal?.removeEventListener('abort', onAbort)
        throw err
      }
    }
    // An answer given up before its end (a refused block) is closed: the abort goes with it.
    const close = (): void => { req.signal?.removeEventListener('abort', onAbort); a.close() }
    return { ...a, filled: { next }, close }
  }

  private release (c: Conn): void {
    if (c.closed) return
    c.sock.setTimeout(0)
    c.sock.removeAllListeners('timeout')
    this.idle.push(c)
  }

  private forget (c: Conn): void {
    const i = this.idle.indexOf(c)
    if (i >= 0) this.idle.splice(i, 1)
  }

  close (): void {
    for (const c of this.idle.splice(0)) c.destroy(null)
  }
}
