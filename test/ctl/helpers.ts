// Fixtures for control-socket tests: a real `space mount` (test/helpers/mount.ts) with its own
// socket path, and a raw line client that sends exactly the bytes a test wants.
import { createConnection, type Socket } from 'node:net'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Mount, tempDirs, type Dirs } from '../helpers/mount.js'

export interface Served { m: Mount, dirs: Dirs, sock: string, master: string, args: string[] }

/** Mounts a fresh drive serving its control socket in the test's temp dir. */
export async function serveDrive (limits?: Record<string, number>): Promise<Served> {
  const dirs = tempDirs('space-ctl-')
  const sock = join(dirs.base, 'ctl.sock')
  const saved = process.env.SPACE_TEST_CTL_LIMITS
  if (limits !== undefined) process.env.SPACE_TEST_CTL_LIMITS = JSON.stringify(limits)
  let m: Mount
  try {
    m = await Mount.start(dirs, ['--socket', sock])
  } finally {
    if (saved === undefined) delete process.env.SPACE_TEST_CTL_LIMITS
    else process.env.SPACE_TEST_CTL_LIMITS = saved
  }
  const master = readFileSync(join(dirs.config, 'master.token'), 'utf8').trim()
  return { m, dirs, sock, master, args: ['--socket', sock, '--data-dir', dirs.data, '--config-dir', dirs.config] }
}

export interface Msg { jsonrpc?: string, id?: unknown, result?: any, error?: { code: number, message: string, data: { code: string, [k: string]: unknown } }, method?: string, params?: any }

/** A newline-delimited JSON client with no protocol logic of its own. */
export class Raw {
  readonly messages: Msg[] = []
  private waiters: Array<() => void> = []
  private buf = ''
  readonly closed: Promise<void>
  private constructor (readonly sock: Socket) {
    sock.setEncoding('utf8')
    sock.on('data', (d: string) => {
      this.buf += d
      let nl
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, nl)
        this.buf = this.buf.slice(nl + 1)
        this.messages.push(JSON.parse(line))
      }
      for (const w of this.waiters.splice(0)) w()
    })
    sock.on('error', () => {})
    this.closed = new Promise(resolve => sock.once('close', () => { for (const w of this.waiters.splice(0)) w(); resolve() }))
  }

  static async open (path: string): Promise<Raw> {
    const s = createConnection(path)
    await new Promise<void>((resolve, reject) => { s.once('connect', resolve); s.once('error', reject) })
    return new Raw(s)
  }

  send (data: string | Buffer): void { this.sock.write(data) }
  request (id: unknown, method: string, params?: unknown): void {
    this.send(JSON.stringify({ jsonrpc: '2.0', id, method, ...(params !== undefined ? { params } : {}) }) + '\n')
  }

  /** The next message matching `pred` (consumed), failing after `ms`. */
  async next (pred: (m: Msg) => boolean = () => true, ms = 10_000): Promise<Msg> {
    const deadline = Date.now() + ms
    for (;;) {
      const i = this.messages.findIndex(pred)
      if (i >= 0) return this.messages.splice(i, 1)[0]
      if (this.sock.destroyed && this.buf === '') throw new Error(`connection closed; got ${JSON.stringify(this.messages).slice(0, 2000)}`)
      if (Date.now() > deadline) throw new Error(`no matching message in ${ms} ms; got ${JSON.stringify(this.messages).slice(0, 2000)}`)
      await new Promise<void>(resolve => { const t = setTimeout(resolve, Math.max(1, deadline - Date.now())); this.waiters.push(() => { clearTimeout(t); resolve() }) })
    }
  }

  async reply (id: unknown): Promise<Msg> { return await this.next(m => m.id === id && m.method === undefined) }

  async call (id: unknown, method: string, params?: unknown): Promise<Msg> {
    this.request(id, method, params)
    return await this.reply(id)
  }

  async hello (token: string | null | undefined, protocol = 1): Promise<Msg> {
    return await this.call('hello', 'hello', { protocol, ...(token !== undefined ? { token } : {}) })
  }

  close (): void { this.sock.destroy() }
}

export const errCode = (m: Msg): string | undefined => m.error?.data.code
