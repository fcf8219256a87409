// The control socket server: a Unix socket speaking newline-delimited JSON-RPC 2.0. It owns
// framing, limits, the hello handshake, token checks on every request and the event stream;
// what methods do is the `handlers` table's business (methods.ts). A misbehaving client gets an
// error or is dropped; it never stalls the event loop that also serves the FUSE mount.
import { createConnection, createServer, type Server, type Socket } from 'node:net'
import { promises as fsp } from 'node:fs'
import { CtlError } from './errors.js'
import { prepareSocketDir } from './paths.js'
import { grantAllows, type Grant, type TokenStore } from './tokens.js'
import type { EventHub } from './events.js'
import { isMethod, MAX_MESSAGE_BYTES, objectParams, int, PROTOCOL_VERSION, SUPPORTED_PROTOCOLS, type Id, type MethodName } from './protocol.js'

export interface ServerLimits {
  /** Longest line accepted, newline excluded. */
  maxMessageBytes: number
  /** Concurrent connections; one more gets ERR_BUSY and is closed. */
  maxConnections: number
  /** A connection must complete hello within this of connecting: a deadline, not an idle timer. */
  handshakeTimeoutMs: number
  /** An authenticated connection with no traffic, no request running and no subscription is closed after this. */
  idleTimeoutMs: number
  /** Requests waiting on one connection (they run one at a time, in order). */
  maxQueued: number
  /** Unsent bytes a client may leave in our buffer before its subscription is dropped. */
  maxSendBuffer: number
  /** Unsent bytes of any kind past which the connection is cut at once (a client that does not read). */
  maxOutputBytes: number
  /** Failed hellos before the connection is closed. */
  maxAuthFailures: number
}

export const DEFAULT_LIMITS: ServerLimits = {
  maxMessageBytes: MAX_MESSAGE_BYTES,
  maxConnections: 512,
  handshakeTimeoutMs: 10_000,
  idleTimeoutMs: 300_000,
  maxQueued: 32,
  maxSendBuffer: 4 * 1024 * 1024,
  maxOutputBytes: 16 * 1024 * 1024,
  maxAuthFailures: 5
}

export interface Call {
  readonly id: Id
  readonly grant: Grant
  /** Streams a `progress` notification for this request (throttled). */
  progress: (stage: string, done: number, total: number | null) => void
}

export type Handler = (params: unknown, call: Call) => Promise<unknown>
export type Handlers = Record<Exclude<MethodName, 'hello' | 'events.subscribe' | 'events.unsubscribe'>, Handler>

export interface ServerDeps {
  tokens: Pick<TokenStore, 'verify' | 'recheck'>
  events: Pick<EventHub, 'subscribe'>
  handlers: Handlers
  /** Facts for the hello answer. */
  about: () => { version: string, pid: number }
  log?: (line: string) => void
  limits?: Partial<ServerLimits>
}

const PROGRESS_INTERVAL_MS = 100

export class CtlServer {
  private readonly conns = new Set<Connection>()
  private nextId = 1
  readonly limits: ServerLimits
  private subs = 0

  private constructor (readonly path: string, private readonly server: Server, readonly deps: ServerDeps) {
    this.limits = { ...DEFAULT_LIMITS, ...deps.limits }
  }

  get connections (): number { return this.conns.size }
  get subscribers (): number { return this.subs }
  /** For connections: keep the subscriber count. */
  countSubscriber (delta: number): void { this.subs += delta }

  /**
   * Binds the socket (0600, in a 0700 directory). A live daemon on the path is an error; a
   * stale socket file left by a dead one is replaced; anything that is not a socket is refused.
   */
  static async listen (path: string, deps: ServerDeps, opts: { ownDir: boolean }): Promise<CtlServer> {
    await prepareSocketDir(path, opts)
    await clearStaleSocket(path)
    const server = createServer({ allowHalfOpen: false })
    const ctl = new CtlServer(path, server, deps)
    server.on('connection', sock => ctl.accept(sock))
    server.on('error', err => deps.log?.(`control socket: ${err.message}`))
    // umask, not chmod after the fact: the socket is never reachable with wider permissions.
    const old = process.umask(0o177)
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(path, () => { server.off('error', reject); resolve() })
      })
    } finally {
      process.umask(old)
    }
    await fsp.chmod(path, 0o600)
    return ctl
  }

  private accept (sock: Socket): void {
    if (this.conns.size >= this.limits.maxConnections) {
      sock.on('error', () => {})
      sock.end(frame({ jsonrpc: '2.0', id: null, error: new CtlError('ERR_BUSY', `too many connections (limit ${this.limits.maxConnections}); try again`).toRpc() }))
      setTimeout(() => sock.destroy(), 1000).unref()
      return
    }
    const c = new Connection(this, sock, this.nextId++)
    this.conns.add(c)
    sock.once('close', () => { c.closed(); this.conns.delete(c) })
  }

  /** Stops accepting, lets answers already written reach their clients, then closes the rest. */
  async close (): Promise<void> {
    const done = new Promise<void>(resolve => this.server.close(() => resolve()))
    await fsp.rm(this.path, { force: true })
    for (const c of this.conns) c.shutdown()
    const t = setTimeout(() => { for (const c of this.conns) c.destroy() }, 1000)
    await done
    clearTimeout(t)
  }
}

const frame = (msg: unknown): string => JSON.stringify(msg) + '\n'

async function clearStaleSocket (path: string): Promise<void> {
  let st
  try {
    st = await fsp.lstat(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
    throw err
  }
  if (!st.isSocket()) throw new CtlError('ERR_SOCKET_UNSAFE', `${path} exists and is not a socket; not replacing it`)
  const alive = await new Promise<boolean>(resolve => {
    const s = createConnection(path)
    s.once('connect', () => { s.destroy(); resolve(true) })
    s.once('error', () => resolve(false))
  })
  if (alive) throw new CtlError('ERR_SOCKET_IN_USE', `another daemon answers on ${path}`)
  await fsp.rm(path, { force: true })
}

/** Maps what a handler threw to the error the client sees; unexpected errors are logged. */
function toCtlError (err: unknown, log?: (l: string) => void): CtlError {
  if (err instanceof CtlError) return err
  log?.(`control: internal error: ${(err as Error)?.stack ?? String(err)}`)
  return new CtlError('ERR_INTERNAL', `internal error: ${(err as Error)?.message ?? String(err)}`)
}

class Connection {
  private parts: Buffer[] = []
  private partLen = 0
  private readonly queue: Buffer[] = []
  private running = false
  private grant: Grant | null = null
  private authFailures = 0
  private unsubscribe: (() => void) | null = null
  private ended = false
  /** Until a hello succeeds. Traffic does not extend it: requests without id get no answer and would. */
  private handshakeTimer: NodeJS.Timeout | null

  constructor (private readonly srv: CtlServer, private readonly sock: Socket, readonly id: number) {
    this.handshakeTimer = setTimeout(() => {
      this.handshakeTimer = null
      if (this.grant !== null || this.ended) return
      this.fail(new CtlError('ERR_TIMEOUT', `no hello within ${srv.limits.handshakeTimeoutMs} ms`))
      // The error is in the kernel's buffer once written; a client that does not read must not
      // hold the connection open for the 2 s a closing one gets.
      setImmediate(() => this.sock.destroy())
    }, srv.limits.handshakeTimeoutMs)
    this.handshakeTimer.unref()
    sock.on('data', chunk => this.onData(chunk))
    sock.on('error', () => {}) // ECONNRESET/EPIPE from a client that left: 'close' follows
    sock.on('timeout', () => this.fail(new CtlError('ERR_TIMEOUT', this.grant === null
      ? `no hello within ${srv.limits.handshakeTimeoutMs} ms`
      : `idle for ${srv.limits.idleTimeoutMs} ms`)))
    sock.setTimeout(srv.limits.handshakeTimeoutMs)
  }

  private onData (chunk: Buffer): void {
    let start = 0
    for (;;) {
      const nl = chunk.indexOf(10, start)
      if (nl < 0) break
      const piece = chunk.subarray(start, nl)
      if (this.partLen + piece.length > this.srv.limits.maxMessageBytes) return this.tooLarge()
      const line = this.partLen === 0 ? piece : Buffer.concat([...this.parts, piece])
      this.parts = []
      this.partLen = 0
      this.enqueue(line)
      if (this.ended) return
      start = nl + 1
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start)
      if (this.partLen + rest.length > this.srv.limits.maxMessageBytes) return this.tooLarge()
      this.parts.push(rest)
      this.partLen += rest.length
    }
  }

  private tooLarge (): void {
    // The rest of the message would arrive as garbage lines: end the connection instead.
    this.fail(new CtlError('ERR_MESSAGE_TOO_LARGE', `message longer than ${this.srv.limits.maxMessageBytes} bytes`, { limit: this.srv.limits.maxMessageBytes }))
  }

  private enqueue (line: Buffer): void {
    if (this.queue.length >= this.srv.limits.maxQueued) {
      this.fail(new CtlError('ERR_BUSY', `more than ${this.srv.limits.maxQueued} requests waiting on one connection`))
      return
    }
    this.queue.push(line)
    if (!this.running) void this.pump()
  }

  private async pump (): Promise<void> {
    this.running = true
    try {
      while (this.queue.length > 0 && !this.ended) {
        this.sock.setTimeout(0) // a running request is not idleness
        await this.handle(this.queue.shift()!)
        // Backpressure: a client that does not read its answers gets no more work done.
        if (this.sock.writableNeedDrain && !this.ended) await new Promise<void>(resolve => { this.sock.once('drain', resolve); this.sock.once('close', resolve) })
      }
    } finally {
      this.running = false
      this.armTimer()
    }
  }

  private armTimer (): void {
    if (this.ended) return
    if (this.unsubscribe !== null) this.sock.setTimeout(0)
    else this.sock.setTimeout(this.grant === null ? this.srv.limits.handshakeTimeoutMs : this.srv.limits.idleTimeoutMs)
  }

  private async handle (line: Buffer): Promise<void> {
    const text = line.toString('utf8').trim()
    if (text === '') return
    let msg: unknown
    try {
      msg = JSON.parse(text)
    } catch {
      this.reply(null, new CtlError('ERR_PARSE', 'not valid JSON'))
      return
    }
    if (Array.isArray(msg)) return this.reply(null, new CtlError('ERR_INVALID_REQUEST', 'batch requests are not supported; send one request per line'))
    if (msg === null || typeof msg !== 'object') return this.reply(null, new CtlError('ERR_INVALID_REQUEST', 'a request is a JSON object'))
    const req = msg as { jsonrpc?: unknown, id?: unknown, method?: unknown, params?: unknown }
    const hasId = Object.hasOwn(req, 'id')
    const id = req.id
    const idOk = id === null || (typeof id === 'string' && id.length <= 256) || (typeof id === 'number' && Number.isFinite(id))
    if (hasId && !idOk) return this.reply(null, new CtlError('ERR_INVALID_REQUEST', '"id" must be a string (at most 256 characters), a number or null'))
    const rid = hasId ? id as Id : null
    if (req.jsonrpc !== '2.0') return this.reply(rid, new CtlError('ERR_INVALID_REQUEST', '"jsonrpc" must be "2.0"'))
    if (typeof req.method !== 'string') return this.reply(rid, new CtlError('ERR_INVALID_REQUEST', '"method" must be a string'))
    try {
      const result = await this.dispatch(req.method, req.params, rid)
      if (hasId) this.send({ jsonrpc: '2.0', id: rid, result })
    } catch (err) {
      // A request without an id is a notification: JSON-RPC sends nothing back, not even errors.
      if (hasId) this.reply(rid, toCtlError(err, this.srv.deps.log))
    }
  }

  private async dispatch (method: string, params: unknown, id: Id): Promise<unknown> {
    if (!isMethod(method)) throw new CtlError('ERR_METHOD_NOT_FOUND', `no method "${method.slice(0, 64)}"`)
    if (method === 'hello') return this.hello(params)
    if (this.grant === null) throw new CtlError('ERR_HANDSHAKE_REQUIRED', 'send "hello" with a protocol version and an app token first')
    this.grant = this.srv.deps.tokens.recheck(this.grant)
    if (!grantAllows(this.grant, method)) throw new CtlError('ERR_FORBIDDEN', `token "${this.grant.name}" may not call "${method}"`, { method })
    if (method === 'events.subscribe') return this.subscribe(params)
    if (method === 'events.unsubscribe') {
      objectParams(params, [])
      this.stopEvents()
      return { subscribed: false }
    }
    return await this.srv.deps.handlers[method](params, this.call(id, this.grant))
  }

  private hello (params: unknown): unknown {
    const p = objectParams(params, ['protocol', 'token', 'client'])
    const protocol = int(p, 'protocol', 0, 1_000_000)
    if (protocol === undefined || !SUPPORTED_PROTOCOLS.includes(protocol)) {
      throw new CtlError('ERR_PROTOCOL_VERSION', `protocol ${String(protocol)} is not supported; this daemon speaks ${SUPPORTED_PROTOCOLS.join(', ')}`, { supported: SUPPORTED_PROTOCOLS })
    }
    try {
      this.grant = this.srv.deps.tokens.verify(p.token)
      this.clearHandshake()
    } catch (err) {
      if (++this.authFailures >= this.srv.limits.maxAuthFailures) setImmediate(() => this.fail(new CtlError('ERR_BUSY', 'too many failed hellos')))
      throw err
    }
    const { version, pid } = this.srv.deps.about()
    return {
      protocol: PROTOCOL_VERSION,
      version,
      pid,
      token: { id: this.grant.id, name: this.grant.name, allow: this.grant.allow, master: this.grant.master },
      limits: { maxMessageBytes: this.srv.limits.maxMessageBytes }
    }
  }

  private subscribe (params: unknown): unknown {
    objectParams(params, [])
    if (this.unsubscribe === null) {
      this.srv.countSubscriber(1)
      const off = this.srv.deps.events.subscribe(batch => {
        try {
          this.grant = this.srv.deps.tokens.recheck(this.grant!)
        } catch (err) {
          this.drop((err as Error).message)
          return
        }
        // The check is per batch: what is still unread from earlier windows decides, so one
        // busy window does not cost a client that keeps up (memory: the limit plus one batch).
        if (!this.notify('event', batch[0])) return
        for (let i = 1; i < batch.length; i++) this.send({ jsonrpc: '2.0', method: 'event', params: batch[i] })
      })
      this.unsubscribe = () => { off(); this.srv.countSubscriber(-1) }
    }
    return { subscribed: true }
  }

  private stopEvents (): void {
    this.unsubscribe?.()
    this.unsubscribe = null
  }

  private call (id: Id, grant: Grant): Call {
    let last = 0
    let lastStage = ''
    return {
      id,
      grant,
      progress: (stage, done, total) => {
        const now = Date.now()
        if (stage === lastStage && done !== total && now - last < PROGRESS_INTERVAL_MS) return
        last = now
        lastStage = stage
        this.notify('progress', { id, stage, done, total })
      }
    }
  }

  /** Sends a notification unless the client has stopped reading; then it is dropped. */
  private notify (method: string, params: unknown): boolean {
    if (this.ended) return false
    if (this.sock.writableLength > this.srv.limits.maxSendBuffer) {
      this.drop(`client reads too slowly (more than ${this.srv.limits.maxSendBuffer} bytes unread)`)
      return false
    }
    this.send({ jsonrpc: '2.0', method, params })
    return true
  }

  private drop (reason: string): void {
    this.stopEvents()
    if (this.ended) return
    this.send({ jsonrpc: '2.0', method: 'dropped', params: { reason } })
    this.end()
  }

  private reply (id: Id, err: CtlError): void { this.send({ jsonrpc: '2.0', id, error: err.toRpc() }) }

  private send (msg: unknown): void {
    if (this.ended || this.sock.destroyed) return
    this.sock.write(frame(msg))
    // Backpressure stops work for a client that does not read, but what was already answered
    // stays in our memory: past the cap the connection goes, unread answers and all.
    if (this.sock.writableLength > this.srv.limits.maxOutputBytes) {
      this.srv.deps.log?.(`control: connection ${this.id} dropped: more than ${this.srv.limits.maxOutputBytes} bytes of output unread`)
      this.destroy()
    }
  }

  private clearHandshake (): void {
    if (this.handshakeTimer !== null) clearTimeout(this.handshakeTimer)
    this.handshakeTimer = null
  }

  /** Answers with an error (id null) and closes. */
  private fail (err: CtlError): void {
    if (this.ended) return
    this.reply(null, err)
    this.end()
  }

  private end (): void {
    this.ended = true
    this.clearHandshake()
    this.queue.length = 0
    this.stopEvents()
    this.sock.end()
    // A peer that never reads would hold the socket open forever: force it shut.
    setTimeout(() => this.sock.destroy(), 2000).unref()
  }

  shutdown (): void {
    if (!this.ended) this.end()
  }

  destroy (): void {
    this.ended = true
    this.queue.length = 0
    this.clearHandshake()
    this.stopEvents()
    this.sock.destroy()
  }

  closed (): void {
    this.ended = true
    this.clearHandshake()
    this.stopEvents()
  }
}
