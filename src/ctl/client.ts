// A control-socket client: connect, hello, then calls with ids; notifications (events, progress,
// dropped) go to listeners. Used by the CLI and by any TypeScript program that drives Space.
import { createConnection, type Socket } from 'node:net'
import { CtlError } from './errors.js'
import { checkPeer, checkSocketPath } from './paths.js'
import { MAX_MESSAGE_BYTES, PROTOCOL_VERSION, type Id, type MethodName, type ProgressParams } from './protocol.js'

export interface HelloResult {
  protocol: number
  version: string
  pid: number
  token: { id: string, name: string, allow: string[], master: boolean }
  limits: { maxMessageBytes: number }
}

interface Pending { resolve: (v: unknown) => void, reject: (e: Error) => void, onProgress?: (p: ProgressParams) => void }

export class CtlClient {
  private buf = ''
  private nextId = 1
  private readonly pending = new Map<Id, Pending>()
  private readonly listeners = new Map<string, Set<(params: unknown) => void>>()
  private closedErr: CtlError | null = null
  hello: HelloResult | null = null

  private constructor (private readonly sock: Socket, readonly path: string) {
    sock.setEncoding('utf8')
    sock.on('data', (d: string) => this.onData(d))
    sock.on('error', () => {})
    sock.on('close', () => this.onClose())
  }

  /**
   * Connects and says hello. ERR_NO_DAEMON when nothing listens on `path`; ERR_SOCKET_UNSAFE,
   * before a byte is sent, when the socket, its directory or the listening process is not this
   * user's (the token and later the passphrases would go to whoever made it).
   */
  static async connect (path: string, token: string | undefined, opts: { client?: string, timeoutMs?: number } = {}): Promise<CtlClient> {
    await checkSocketPath(path)
    const sock = await new Promise<Socket>((resolve, reject) => {
      const s = createConnection(path)
      const t = setTimeout(() => { s.destroy(); reject(new CtlError('ERR_NO_DAEMON', `no answer on ${path} within ${opts.timeoutMs ?? 5000} ms`)) }, opts.timeoutMs ?? 5000)
      s.once('connect', () => { clearTimeout(t); resolve(s) })
      s.once('error', err => {
        clearTimeout(t)
        const code = (err as NodeJS.ErrnoException).code
        reject(code === 'ENOENT' || code === 'ECONNREFUSED'
          ? new CtlError('ERR_NO_DAEMON', `no daemon is running (nothing answers on ${path})`, { socket: path })
          : new CtlError('ERR_NO_DAEMON', `cannot reach the daemon on ${path}: ${err.message}`, { socket: path }))
      })
    })
    try {
      checkPeer(path, sock)
    } catch (err) {
      sock.destroy()
      throw err
    }
    const c = new CtlClient(sock, path)
    try {
      c.hello = await c.call('hello', { protocol: PROTOCOL_VERSION, token: token ?? null, client: opts.client ?? 'space-cli' }) as HelloResult
    } catch (err) {
      c.close()
      throw err
    }
    return c
  }

  on (method: 'event' | 'progress' | 'dropped' | string, fn: (params: unknown) => void): () => void {
    let set = this.listeners.get(method)
    if (set === undefined) { set = new Set(); this.listeners.set(method, set) }
    set.add(fn)
    return () => { set.delete(fn) }
  }

  async call (method: MethodName, params: Record<string, unknown> = {}, opts: { onProgress?: (p: ProgressParams) => void } = {}): Promise<unknown> {
    if (this.closedErr !== null) throw this.closedErr
    const id = this.nextId++
    const line = JSON.stringify({ jsonrpc: '2.0', id, method, params }) + '\n'
    if (Buffer.byteLength(line) > MAX_MESSAGE_BYTES) throw new CtlError('ERR_MESSAGE_TOO_LARGE', `request larger than ${MAX_MESSAGE_BYTES} bytes`)
    return await new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, ...(opts.onProgress !== undefined ? { onProgress: opts.onProgress } : {}) })
      this.sock.write(line)
    })
  }

  /** Resolves when the daemon closes the connection (after unmount with exit, or dropping us). */
  async closed (): Promise<void> {
    if (this.sock.destroyed) return
    await new Promise<void>(resolve => this.sock.once('close', () => resolve()))
  }

  close (): void { this.sock.destroy() }

  private onData (d: string): void {
    this.buf += d
    let nl: number
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl)
      this.buf = this.buf.slice(nl + 1)
      if (line.trim() !== '') this.onMessage(line)
    }
  }

  private onMessage (line: string): void {
    let msg: { id?: Id, result?: unknown, error?: unknown, method?: string, params?: unknown }
    try {
      msg = JSON.parse(line)
    } catch {
      this.fail(new CtlError('ERR_BAD_RESPONSE', 'the daemon sent something that is not JSON'))
      return
    }
    if (typeof msg.method === 'string') {
      if (msg.method === 'progress') {
        const p = msg.params as ProgressParams
        this.pending.get(p?.id ?? null)?.onProgress?.(p)
      }
      for (const fn of this.listeners.get(msg.method) ?? []) fn(msg.params)
      return
    }
    const id = msg.id ?? null
    const p = this.pending.get(id)
    if (p === undefined) {
      // id null: the daemon is closing the connection on us (timeout, too large, busy).
      if (id === null && msg.error !== undefined) this.fail(CtlError.fromRpc(msg.error))
      return
    }
    this.pending.delete(id)
    if (msg.error !== undefined) p.reject(CtlError.fromRpc(msg.error))
    else p.resolve(msg.result)
  }

  private fail (err: CtlError): void {
    this.closedErr ??= err
    for (const p of this.pending.values()) p.reject(err)
    this.pending.clear()
  }

  private onClose (): void {
    this.fail(new CtlError('ERR_NO_DAEMON', 'the daemon closed the connection'))
  }
}
