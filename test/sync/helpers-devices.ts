// Real-process fixtures for sync tests: a hub that can be killed and restarted on the same port
// and data dir, N devices of one identity (each a real `space mount` daemon with its own config,
// data dir and mount), and a proxy process between a device and the hub that forwards everything
// unless told to hold requests or lie. No test code runs inside the hub or the daemons: what they see is what a user's would.
import { fork, spawn, type ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'
import assert from 'node:assert/strict'
import { Mount, tempDirs, removeDirs, type Dirs } from '../helpers/mount.js'
import { cli, baseEnv, mnemonicFrom, MAIN } from '../keys/helpers.js'
import type { ProxyCommand } from './hub-proxy-child.js'

export const INSECURE = ['--keystore', 'file', '--insecure-no-passphrase']

/** Polls `ok` every 25 ms until it gives a value (not false, null or undefined): that value, or an error naming `what`. */
export async function waitFor<T> (what: string, ok: () => T | false | null | undefined | Promise<T | false | null | undefined>, ms = 20_000): Promise<T> {
  const t0 = Date.now()
  let last: unknown = null
  for (;;) {
    try {
      const v = await ok()
      if (v !== false && v != null) return v
    } catch (err) { last = err }
    if (Date.now() - t0 > ms) throw new Error(`${what}: not within ${ms} ms${last != null ? ` (last error: ${(last as Error).message})` : ''}`)
    await new Promise(resolve => setTimeout(resolve, 25))
  }
}

/** Polls `ok` until it holds; the time it took, or an error naming `what`. */
export async function until (what: string, ok: () => boolean | Promise<boolean>, ms = 20_000): Promise<number> {
  const t0 = Date.now()
  await waitFor(what, async () => (await ok()) || false, ms)
  return Date.now() - t0
}

export const read = (p: string): string | null => { try { return readFileSync(p, 'utf8') } catch { return null } }

/** Every file under `dir` (relative path -> sha256 of its content), folders as 'dir': two mounts compare equal when their trees do. */
export function treeOf (dir: string, prefix = ''): Map<string, string> {
  const out = new Map<string, string>()
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name)
    const rel = prefix + name
    if (statSync(p).isDirectory()) {
      out.set(rel + '/', 'dir')
      for (const [k, v] of treeOf(p, rel + '/')) out.set(k, v)
    } else out.set(rel, createHash('sha256').update(readFileSync(p)).digest('hex'))
  }
  return out
}

/** `space hub` on 127.0.0.1; kill() is a crash, start() again comes back on the same port and data. */
export class Hub {
  private child: ChildProcess | null = null
  private exited: Promise<void> = Promise.resolve()
  port = 0
  log = ''

  constructor (readonly dataDir: string) {}

  get url (): string { return `http://127.0.0.1:${this.port}` }
  get pid (): number | undefined { return this.child?.pid }
  get running (): boolean { return this.child != null && this.child.exitCode === null && this.child.signalCode === null }

  async start (): Promise<void> {
    const child = spawn(process.execPath, [MAIN, 'hub', '--host', '127.0.0.1', '--port', String(this.port), '--data-dir', this.dataDir], { env: baseEnv(), stdio: ['ignore', 'pipe', 'pipe'] })
    this.child = child
    this.exited = new Promise(resolve => child.once('exit', () => resolve()))
    child.stderr!.setEncoding('utf8').on('data', (s: string) => { this.log += s })
    const rl = createInterface({ input: child.stdout! })
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`space hub not ready after 20 s: ${this.log}`)), 20_000)
      rl.on('line', line => {
        const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(line)
        if (m != null) { clearTimeout(timer); this.port = Number(m[1]); resolve() }
      })
      child.once('exit', code => { clearTimeout(timer); reject(new Error(`space hub exited with ${code}: ${this.log}`)) })
    })
  }

  /** SIGKILL: no chance to flush or answer. */
  async kill (): Promise<void> {
    if (this.running) this.child!.kill('SIGKILL')
    await this.exited
  }

  async stop (): Promise<void> {
    if (this.running) this.child!.kill('SIGTERM')
    await this.exited
  }
}

/**
 * A proxy between one device and the hub, in its own process (hub-proxy-child.ts): forwards
 * everything unless told to hold requests or to lie. The hub keeps its port across restarts,
 * so a proxy outlives them.
 */
export class HubProxy {
  private child: ChildProcess | null = null
  port = 0
  /** Requests seen (METHOD /path), oldest first. */
  readonly seen: string[] = []
  /** Requests held now. */
  held = 0
  /** Lies told (what: 'block' | 'entries'). */
  readonly lies: string[] = []

  constructor (private readonly hubPort: () => number) {}

  get url (): string { return `http://127.0.0.1:${this.port}` }

  async start (): Promise<void> {
    const child = fork(join(dirname(fileURLToPath(import.meta.url)), 'hub-proxy-child.js'), [String(this.hubPort())], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] })
    this.child = child
    child.on('message', (m: { ev: string, req?: string, what?: string, port?: number }) => {
      if (m.ev === 'seen') this.seen.push(m.req!)
      else if (m.ev === 'held') this.held++
      else if (m.ev === 'lied') this.lies.push(m.what!)
    })
    this.port = await new Promise<number>((resolve, reject) => {
      child.on('message', (m: { ev: string, port?: number }) => { if (m.ev === 'listening') resolve(m.port!) })
      child.once('exit', code => reject(new Error(`hub proxy exited with ${code}`)))
    })
  }

  private async command (c: ProxyCommand): Promise<void> {
    const child = this.child!
    await new Promise<void>(resolve => {
      const ack = (m: { ev: string }): void => { if (m.ev === 'ack') { child.off('message', ack); resolve() } }
      child.on('message', ack)
      child.send(c)
    })
  }

  /** Requests of `method` to a path starting with `path` wait, unread, until release(); the first `after` of them pass. */
  async hold (method: string, path: string, after = 0): Promise<void> { await this.command({ op: 'hold', method, path, after }) }
  async release (): Promise<void> { this.held = 0; await this.command({ op: 'release' }) }
  /** Served blocks get their last byte flipped (fetch batches and /ipfs/ GETs). */
  async corruptBlocks (on: boolean): Promise<void> { await this.command({ op: 'corrupt-blocks', on }) }
  /** The device's next (or waiting) entry poll is answered with these entries, not the hub's. */
  async inject (entries: Uint8Array[]): Promise<void> { await this.command({ op: 'inject', entries: entries.map(e => Buffer.from(e).toString('base64')) }) }

  async stop (): Promise<void> {
    const child = this.child
    if (child == null || child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise(resolve => child.once('exit', resolve))
    child.kill('SIGTERM')
    await exited
  }
}

/** One device: its dirs, and the daemon while it runs. */
export class Device {
  m: Mount | null = null
  constructor (readonly name: string, readonly dirs: Dirs) {}

  get mount (): Mount {
    assert.ok(this.m != null, `${this.name} is not running`)
    return this.m
  }

  get mnt (): string { return this.dirs.mnt }
  path (...p: string[]): string { return this.mount.path(...p) }

  async start (): Promise<void> { this.m = await Mount.start(this.dirs) }

  /** kill -9, then detach the stale mount so the next start() can mount again. */
  async kill (): Promise<string> {
    const m = this.mount
    await m.kill()
    await m.cleanup()
    this.m = null
    return m.stderr
  }

  async stop (): Promise<string> {
    const m = this.mount
    await m.stop()
    this.m = null
    return m.stderr
  }

  /** The daemon's log so far (stderr). */
  get log (): string { return this.m?.stderr ?? '' }

  /** `space sync status --json` from the running daemon. */
  async status (): Promise<SyncStatusJson> {
    const r = await cli(['sync', 'status', '--json', '--config-dir', this.dirs.config, '--data-dir', this.dirs.data], { env: { ...process.env } })
    assert.equal(r.code, 0, r.stderr)
    return JSON.parse(r.stdout) as SyncStatusJson
  }

  /** The push queue as the daemon last wrote it (sync/out/state.json), or null before the first entry. */
  queue (): { seq: number, pushed: number } | null {
    const p = join(this.dirs.data, 'sync', 'out', 'state.json')
    return existsSync(p) ? JSON.parse(readFileSync(p, 'utf8')) : null
  }
}

export interface SyncStatusJson {
  device: string
  hub: string
  lastEntry: { seq: number, cid: string | null }
  pendingUp: number
  logs: Array<{ device: string, name: string | null, seq: number, cid: string }>
  lastContact: number | null
  lastError: string | null
  refused?: Array<{ device: string, seq: number, code: string, message: string, at: number }>
}

/**
 * `names.length` devices of one identity: the first runs `init`, the others `init --restore`
 * with its 24 words, each runs `space sync hub URL` (`hubUrl(i)`: the hub, or a proxy in front
 * of it). The daemons are not started: call start() on each.
 */
export async function devicesOf (names: string[], hubUrl: (i: number) => string, syncArgs: string[] = []): Promise<Device[]> {
  const devices = names.map(n => new Device(n, tempDirs(`space-sync-${n}-`)))
  const a = await cli(['init', '--config-dir', devices[0].dirs.config, ...INSECURE], { env: baseEnv() })
  assert.equal(a.code, 0, a.stderr)
  const words = mnemonicFrom(a.stdout)
  for (const d of devices.slice(1)) {
    const r = await cli(['init', '--restore', '--config-dir', d.dirs.config, ...INSECURE], { input: words.split(' ').join('\n') + '\n', env: baseEnv() })
    assert.equal(r.code, 0, r.stderr)
  }
  for (const [i, d] of devices.entries()) {
    const r = await cli(['sync', 'hub', hubUrl(i), '--device-name', d.name, '--config-dir', d.dirs.config, ...syncArgs], { env: baseEnv() })
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, new RegExp(`as ${d.name}`))
  }
  return devices
}

/** Stops every daemon (SIGTERM, then detaches), then removes every temp dir. */
export async function cleanupDevices (devices: Device[]): Promise<void> {
  // SPACE_TEST_SYNC_LOGS=1: every daemon's log on stderr, to see why a test waited in vain.
  if (process.env.SPACE_TEST_SYNC_LOGS === '1') for (const d of devices) process.stderr.write(`--- ${d.name}\n${d.log}\n`)
  for (const d of devices) await d.m?.cleanup()
  for (const d of devices) removeDirs(d.dirs)
}

/**
 * The fixture most sync tests open with: a hub, optionally a proxy per device in front of it
 * (`proxies`), and `names` devices of one identity, started. stop() undoes all of it, in order,
 * also after a failed start.
 */
export class Cluster {
  hub!: Hub
  readonly proxies: HubProxy[] = []
  devs: Device[] = []
  private hubDirs: Dirs | null = null

  static async start (prefix: string, names: string[], opts: { proxies?: boolean, syncArgs?: string[] } = {}): Promise<Cluster> {
    const c = new Cluster()
    c.hubDirs = tempDirs(`${prefix}-hub-`)
    try {
      c.hub = new Hub(join(c.hubDirs.base, 'hub'))
      await c.hub.start()
      if (opts.proxies === true) {
        for (let i = 0; i < names.length; i++) {
          const p = new HubProxy(() => c.hub.port)
          await p.start()
          c.proxies.push(p)
        }
      }
      c.devs = await devicesOf(names, i => opts.proxies === true ? c.proxies[i].url : c.hub.url, opts.syncArgs)
      for (const d of c.devs) await d.start()
    } catch (err) {
      await c.stop().catch(() => {}) // a start that failed half way leaves no mount or process behind
      throw err
    }
    return c
  }

  async stop (): Promise<void> {
    for (const p of this.proxies) await p.release().catch(() => {})
    await cleanupDevices(this.devs)
    for (const p of this.proxies) await p.stop()
    await this.hub?.stop()
    if (this.hubDirs != null) removeDirs(this.hubDirs)
  }
}

export { tempDirs, removeDirs, type Dirs }
