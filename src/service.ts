// Composition root, second half: the serving process. One Service holds at most one mounted
// drive (daemon.ts builds it), the control socket and the event stream; `space mount` runs it
// in the foreground, `space daemon` in the background. Like daemon.ts, it names concrete classes.
import { join } from 'node:path'
import { mountDrive, openDriveFromConfig, type MountedDrive } from './daemon.js'
import { Drive, type CommitEntry } from './drive/drive.js'
import { DriveError } from './drive/errors.js'
import { pidAlive, readLock } from './drive/lock.js'
import { isMounted } from './drive/mountpoint.js'
import { loadDriveKey } from './keys/drive-key.js'
import { KeysError } from './keys/errors.js'
import { CtlServer, type ServerLimits } from './ctl/server.js'
import { CtlError } from './ctl/errors.js'
import { EventHub } from './ctl/events.js'
import { TokenStore, ensureMasterToken } from './ctl/tokens.js'
import { buildHandlers, type DaemonApi } from './ctl/methods.js'
import { VERSION } from './version.js'
import { disableCoreDumps } from './ctl/os.js'
import { tuneMalloc } from './memory.js'
import { attachSync, prepareSync, syncEventJson, type PreparedSync, type SyncAttachment } from './sync/attach.js'


export interface ServeConfig {
  configDir: string
  dataDir: string
  socketPath: string
  /** The default runtime dir is ours to chmod 0700; a directory named by --socket is not. */
  ownSocketDir: boolean
  /** Null: start idle, serving only the socket, until a `mount` request. */
  mountpoint: string | null
  allowOther?: boolean
  cacheBytes?: number
  /**
   * Plaintext file paths in log lines only when true (--debug-log-paths); by default lines name
   * files by id. The drive's own lines (daemon.ts onError/onNoSpace, fs/tree) read it from here.
   */
  logPaths?: boolean
  log?: (line: string) => void
  limits?: Partial<ServerLimits>
}

/** Lower-layer errors keep their code in data.cause, so clients map them like local errors. */
function asCtlError (err: unknown): unknown {
  if (err instanceof DriveError) return new CtlError(err.code === 'ERR_NOT_MOUNTED' ? 'ERR_NOT_MOUNTED' : 'ERR_DRIVE', err.message, { cause: err.code })
  if (err instanceof KeysError) return new CtlError('ERR_KEYS', err.message, { cause: err.code })
  return err
}

async function readLogFromStore (configDir: string, dataDir: string): Promise<CommitEntry[]> {
  try {
    const { key } = await loadDriveKey(configDir)
    return await Drive.readLog(dataDir, key)
  } catch (err) { throw asCtlError(err) }
}

/** One serving process: at most one mounted drive, the control socket, the event stream. */
export class Service implements DaemonApi {
  readonly startedAt = new Date().toISOString()
  readonly version = VERSION
  readonly done: Promise<void>
  private mounted: MountedDrive | null = null
  private ctl: CtlServer | null = null
  private sync: SyncAttachment | null = null
  private readonly events = new EventHub()
  readonly tokens: TokenStore
  private busy: Promise<unknown> = Promise.resolve()
  private stopping: Promise<void> | null = null
  private finish: () => void = () => {}

  private constructor (private readonly cfg: ServeConfig) {
    this.tokens = new TokenStore(cfg.configDir)
    this.done = new Promise(resolve => { this.finish = resolve })
  }

  get configDir (): string { return this.cfg.configDir }
  get dataDir (): string { return this.cfg.dataDir }
  get socketPath (): string { return this.cfg.socketPath }
  get mountpoint (): string | null { return this.mounted?.mountpoint ?? null }

  /**
   * Opens the store first (its lock tells whether another process serves it), then binds the
   * socket, then mounts. Whatever fails undoes what came before it.
   */
  static async start (cfg: ServeConfig): Promise<Service> {
    // Before any key is loaded: no core file, no same-uid ptrace or /proc/<pid>/mem read.
    if (!disableCoreDumps()) cfg.log?.('core dumps stay enabled: native/build/Release/space_sys.node is missing (scripts/build-native.sh)')
    tuneMalloc() // before the drive's threads start (src/memory.ts)
    const s = new Service(cfg)
    const drive = cfg.mountpoint === null ? null : await s.openDrive()
    try {
      await ensureMasterToken(cfg.configDir)
      s.ctl = await CtlServer.listen(cfg.socketPath, {
        tokens: s.tokens,
        events: s.events,
        handlers: buildHandlers(s),
        about: () => ({ version: VERSION, pid: process.pid }),
        log: cfg.log,
        limits: cfg.limits
      }, { ownDir: cfg.ownSocketDir })
      if (drive !== null) s.mounted = await s.mountOpen(drive, cfg.mountpoint!)
    } catch (err) {
      await s.ctl?.close().catch(() => {})
      await drive?.close().catch(() => {})
      throw err
    }
    return s
  }

  private prepared: PreparedSync | null = null

  /** Opens the drive; with a hub configured, over a store that fetches missing blocks from it. */
  private async openDrive (): Promise<Drive> {
    this.prepared = await prepareSync(this.cfg.configDir).catch(err => {
      this.cfg.log?.(`sync: not started: ${(err as Error).message}`)
      return null
    })
    return await openDriveFromConfig(this.cfg.configDir, this.cfg.dataDir, { cacheBytes: this.cfg.cacheBytes, log: this.cfg.log, wrapStore: this.prepared?.wrapStore })
  }

  private async mountOpen (drive: Drive, mountpoint: string): Promise<MountedDrive> {
    const m = await mountDrive(drive, { mountpoint, allowOther: this.cfg.allowOther, log: this.cfg.log, logPaths: this.cfg.logPaths, onChange: (k, p, to) => this.events.push(k, p, to) })
    if (this.prepared != null) {
      // Sync failing to start leaves the drive served, as a local drive: the log says why.
      try {
        this.sync = await attachSync(this.prepared, m, {
          configDir: this.cfg.configDir,
          log: this.cfg.log,
          onEvent: e => this.events.pushSync(syncEventJson(e)),
          onChange: c => this.events.push(c.kind, c.path, c.to)
        })
        m.quickCommits(true)
        this.cfg.log?.(`sync: with ${this.prepared.config.hub} as ${this.prepared.config.deviceName}`)
      } catch (err) {
        this.cfg.log?.(`sync: not started: ${(err as Error).message}`)
      }
    }
    return m
  }

  private async stopSync (): Promise<void> {
    const s = this.sync
    this.sync = null
    await s?.stop().catch(err => this.cfg.log?.(`sync: stopping: ${(err as Error).message}`))
  }

  async syncStatus (): Promise<unknown> { return await this.sync?.status() ?? null }
  syncAttachment (): SyncAttachment | null { return this.sync }

  state (): { mounted: boolean, mountpoint: string | null } {
    return { mounted: this.mounted !== null, mountpoint: this.mountpoint }
  }

  /** Mount and unmount requests run one at a time. */
  private async serial<T> (fn: () => Promise<T>): Promise<T> {
    const run = this.busy.then(fn, fn)
    this.busy = run.catch(() => {})
    return await run
  }

  async mount (mountpoint: string): Promise<string> {
    return await this.serial(async () => {
      if (this.stopping !== null) throw new CtlError('ERR_NOT_MOUNTED', 'the daemon is stopping')
      if (this.mounted !== null) throw new CtlError('ERR_ALREADY_MOUNTED', `the drive is mounted at ${this.mounted.mountpoint}`, { mountpoint: this.mounted.mountpoint })
      try {
        const drive = await this.openDrive()
        try {
          this.mounted = await this.mountOpen(drive, mountpoint)
        } catch (err) {
          await drive.close().catch(() => {})
          throw err
        }
      } catch (err) { throw asCtlError(err) }
      this.cfg.log?.(`mounted ${mountpoint} (control request)`)
      return this.mounted.mountpoint
    })
  }

  async unmount (opts: { exit: boolean }): Promise<string> {
    const where = await this.serial(async () => {
      const m = this.mounted
      if (m === null) {
        if (!opts.exit) throw new CtlError('ERR_NOT_MOUNTED', 'the drive is not mounted')
        return ''
      }
      this.events.flush()
      await this.stopSync()
      await m.stop()
      this.mounted = null
      this.cfg.log?.(`unmounted ${m.mountpoint} (control request)`)
      return m.mountpoint
    })
    // After the answer is on its way: the server ends connections gracefully, flushing it.
    if (opts.exit) setTimeout(() => { void this.stop() }, 20)
    return where
  }

  async log (): Promise<CommitEntry[]> {
    if (this.mounted !== null) return this.mounted.drive.log()
    return await readLogFromStore(this.cfg.configDir, this.cfg.dataDir)
  }

  counts (): { connections: number, subscribers: number } {
    return { connections: this.ctl?.connections ?? 0, subscribers: this.ctl?.subscribers ?? 0 }
  }

  /** Stops taking requests, commits and unmounts, closes the store. Safe to call twice. */
  async stop (): Promise<void> {
    this.stopping ??= (async () => {
      this.events.flush()
      await this.ctl?.close().catch(err => this.cfg.log?.(`control socket close: ${(err as Error).message}`))
      try {
        await this.serial(async () => {
          await this.stopSync()
          await this.mounted?.stop()
          this.mounted = null
        })
      } finally {
        // Even when the last commit fails (a full disk), the process must be able to end.
        this.finish()
      }
    })()
    await this.stopping
  }
}

/**
 * The methods' view of a store when no daemon runs (the CLI's fallback for status, log, whoami
 * and key backup): read-only facts from disk, no mount, no tokens.
 */
export function offlineApi (configDir: string, dataDir: string): DaemonApi {
  const noDaemon = async (): Promise<never> => { throw new CtlError('ERR_NO_DAEMON', 'no daemon is running') }
  return {
    configDir,
    dataDir,
    socketPath: null,
    version: VERSION,
    startedAt: new Date().toISOString(),
    state: () => {
      // A serving process from before the control socket existed still shows in the lock.
      const lock = readLock(join(dataDir, 'lock'))
      const mounted = lock != null && pidAlive(lock.pid) && lock.mountpoint != null && isMounted(lock.mountpoint)
      return { mounted, mountpoint: mounted ? lock.mountpoint : null }
    },
    mount: noDaemon,
    unmount: noDaemon,
    log: async () => await readLogFromStore(configDir, dataDir),
    tokens: null,
    counts: () => ({ connections: 0, subscribers: 0 }),
    syncStatus: async () => null,
    syncAttachment: () => null
  }
}
