// Reads an upload's body straight from its socket into the caller's buffer: node's HTTP server
// copies every body chunk it parses into a Buffer of its own (~1 GiB of short-lived external
// memory per GiB received, which is what started most of the hub's major collections). A
// device on plain http asks for this path with `Upgrade: space-car-body` (docs/hub.md); node
// then hands the socket over ('upgrade'), and the socket's reads are pointed at the caller's
// buffer (net.Socket's `onread` mode, which node offers only to sockets it connects itself, so
// it is switched on here through the same fields). Where this node lacks them, the hub does not
// listen for the upgrade and such a request is served as a plain PUT.
import { Socket } from 'node:net'

/** net.Socket's onread fields, found by their names on a socket made with `onread`. */
const fields = ((): { buffer: symbol, callback: symbol, gen: symbol } | null => {
  try {
    const probe = new Socket({ onread: { buffer: () => Buffer.alloc(1), callback: () => true } })
    const bySymbol = new Map(Object.getOwnPropertySymbols(probe).map(s => [s.description, s]))
    probe.destroy()
    const buffer = bySymbol.get('kBuffer')
    const callback = bySymbol.get('kBufferCb')
    const gen = bySymbol.get('kBufferGen')
    return buffer != null && callback != null && gen != null ? { buffer, callback, gen } : null
  } catch {
    return null
  }
})()

/** What a stream handle offers for reads into a given buffer (node's TCP handle). */
interface UserBufferHandle { useUserBuffer?: (buf: Uint8Array) => void }

/** Whether sockets of this node can be read in place (else the hub serves such a PUT as a plain one). */
export const inPlaceReads = fields != null

/**
 * What the reads after the body go to (dropped): a pipelined byte, or the rest of a refused body.
 * One for every upload: its bytes are never looked at.
 */
const SCRATCH = Buffer.allocUnsafeSlow(64 * 1024)

/**
 * A request body of `length` bytes read from `socket` into `out` (the first of them already
 * read with the head: `head`). `filled()` yields how many bytes are in `out` after each read,
 * ending at `length`; `discard()` reads the rest into a scratch buffer and drops it; `stop()`
 * points the reads away from `out` for good (call it before `out` is reused). Reading goes on
 * into the scratch buffer after the body, so the peer's close is seen.
 */
export class SocketBody {
  private have: number
  private dropped = 0
  private inOut = true
  private waiter: { resolve: () => void, reject: (err: Error) => void } | null = null
  private error: Error | null = null
  private readonly scratch = SCRATCH
  private readonly handle: UserBufferHandle | null

  /** `out` null: the body is only read and dropped (a refusal answered after it). */
  constructor (private readonly socket: Socket, head: Buffer, private readonly out: Buffer | null, private readonly length: number) {
    if (out != null) {
      this.have = Math.min(head.length, length)
      head.copy(out, 0, 0, this.have)
    } else {
      this.have = 0
      this.inOut = false
      this.dropped = Math.min(head.length, length)
    }
    const handle = (socket as unknown as { _handle?: UserBufferHandle | null })._handle
    if (fields != null && typeof handle?.useUserBuffer === 'function') {
      this.handle = handle
      const s = socket as unknown as Record<symbol, unknown>
      s[fields.buffer] = true
      s[fields.gen] = () => this.target()
      s[fields.callback] = (n: number) => { this.onBytes(n); return true }
      handle.useUserBuffer(this.target())
    } else {
      // Not a TCP handle of this node (a test's duplex, another runtime): its chunks, copied.
      this.handle = null
      socket.on('data', (c: Buffer) => { const t = this.target(); const n = Math.min(c.length, t === this.scratch ? c.length : t.length); if (t !== this.scratch) c.copy(t, 0, 0, n); this.onBytes(n); if (c.length > n) this.onBytes(c.length - n) })
    }
    const fail = (err: Error): void => { this.error ??= err; this.wake() }
    socket.on('error', fail)
    socket.on('close', () => fail(new Error('connection closed inside the upload')))
    // A half-close (http.Server sockets allow it) before the last byte: no more is coming.
    socket.on('end', () => { if (this.have + this.dropped < this.length) { fail(new Error('the client ended the upload before its last byte')); socket.destroy() } })
    socket.resume()
  }

  /** Where the next read goes. */
  private target (): Buffer {
    return this.inOut && this.out != null && this.have < this.length ? this.out.subarray(this.have, this.length) : this.scratch
  }

  private onBytes (n: number): void {
    if (this.inOut && this.have < this.length) this.have += n
    else this.dropped += n
    this.wake()
  }

  private wake (): void {
    const w = this.waiter
    this.waiter = null
    if (w == null) return
    if (this.error != null) w.reject(this.error)
    else w.resolve()
  }

  private async next (): Promise<void> {
    if (this.error != null) throw this.error
    await new Promise<void>((resolve, reject) => { this.waiter = { resolve, reject } })
  }

  /** How many body bytes are in `out` after each read, up to `length`. */
  async * filled (): AsyncGenerator<number> {
    let reported = -1
    for (;;) {
      if (reported < this.have) { reported = this.have; yield reported; continue }
      if (reported >= this.length) return
      await this.next()
    }
  }

  /** Reads the body's rest, at most `limit` bytes more, and drops it; false when it was longer. */
  async discard (limit: number): Promise<boolean> {
    this.stop()
    const left = this.length - this.have
    while (this.dropped < Math.min(left, limit)) await this.next()
    return left <= limit
  }

  /** No read lands in `out` after this. */
  stop (): void {
    if (!this.inOut) return
    this.inOut = false
    if (this.handle != null && !this.socket.destroyed) this.handle.useUserBuffer?.(this.scratch)
  }
}
