// space mount [MOUNTPOINT]: mounts the drive and serves it, with the control socket, until
// SIGINT/SIGTERM or `space unmount`. When an idle daemon already serves the store, asks it to
// mount instead. `serve` is shared with `space daemon` (which runs it in the background).
import { parseArgs } from 'node:util'
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'
import { mkdir, stat } from 'node:fs/promises'
import type { Command, CommandContext } from '../command.js'
import { ExitCode as EXIT } from '../exit-codes.js'
import { Service } from '../../service.js'
import type { ServerLimits } from '../../ctl/server.js'
import { CtlError } from '../../ctl/errors.js'
import type { StatusResult } from '../../ctl/protocol.js'
import { connect, exitCodeOfAny, target, type Target } from '../session.js'

export interface ServeOptions extends Target {
  mountpoint: string | null
  allowOther: boolean
  cacheBytes: number
  /** --debug-log-paths: file paths in the log (default: file ids only). */
  logPaths?: boolean
}

/** Test hook: SPACE_TEST_CTL_LIMITS='{"handshakeTimeoutMs":300}' tightens the socket's limits. */
function testLimits (env: NodeJS.ProcessEnv): Partial<ServerLimits> | undefined {
  const raw = env.SPACE_TEST_CTL_LIMITS
  return raw === undefined || raw === '' ? undefined : JSON.parse(raw) as Partial<ServerLimits>
}

/**
 * Runs the serving process in this process: prints "mounted DIR" (or "serving SOCKET" when
 * idle) once ready, and returns 0 after a signal or an unmount request has stopped it.
 */
export async function serve (ctx: CommandContext, o: ServeOptions): Promise<number> {
  const out = (s: string): void => { ctx.stdout.write(s + '\n') }
  const log = (s: string): void => { ctx.stderr.write(`${new Date().toISOString()} ${s}\n`) }
  let service: Service
  try {
    service = await Service.start({
      configDir: o.configDir,
      dataDir: o.dataDir,
      socketPath: o.socket,
      ownSocketDir: o.ownSocketDir,
      mountpoint: o.mountpoint,
      allowOther: o.allowOther,
      cacheBytes: o.cacheBytes,
      logPaths: o.logPaths === true,
      log,
      limits: testLimits(ctx.env)
    })
  } catch (e) {
    ctx.stderr.write(`space: ${(e as Error).message}\n`)
    return exitCodeOfAny(e)
  }
  // Handlers first: a signal sent the moment "mounted" is read must unmount, not kill.
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const
  const onSignal = (sig: string): void => {
    log(`${sig}: ${service.mountpoint !== null ? `unmounting ${service.mountpoint}` : 'stopping'}`)
    service.stop().catch(e => log(`stop failed: ${(e as Error).message}`))
  }
  for (const s of signals) process.on(s, onSignal)
  log(`control socket ${o.socket}`)
  out(o.mountpoint !== null ? `mounted ${service.mountpoint ?? o.mountpoint}` : `serving ${o.socket}`)
  let last = service.mountpoint
  const track = setInterval(() => { last = service.mountpoint ?? last }, 200)
  try {
    await service.done
  } finally {
    clearInterval(track)
    for (const s of signals) process.off(s, onSignal)
  }
  out(last !== null ? `unmounted ${last}` : 'stopped')
  return EXIT.OK
}

export const command: Command = {
  name: 'mount',
  summary: 'mount the encrypted drive (default ~/Space) and serve it in the foreground',
  usage: `usage: space mount [MOUNTPOINT] [--data-dir DIR] [--config-dir DIR] [--socket PATH] [--allow-other] [--cache-mb N] [--debug-log-paths]

Mounts the drive at MOUNTPOINT (default ~/Space, created if missing) and serves it, with the
control socket, until Ctrl-C, SIGTERM or "space unmount". Prints "mounted MOUNTPOINT" once the
mount is ready. If an idle daemon ("space daemon --no-mount") serves the store, asks it to
mount instead and returns.
  --data-dir DIR     the block store (default $XDG_DATA_HOME/space)
  --config-dir DIR   keys and settings (default $XDG_CONFIG_HOME/space)
  --socket PATH      the control socket (default SPACE_SOCKET, else derived from the data dir)
  --allow-other      let other users reach the mount (permission bits still apply)
  --cache-mb N       decrypted-block cache budget in MiB (default 8, its share of the memory budget)
  --foreground       accepted for compatibility; mount always serves in the foreground
  --debug-log-paths  write file paths into the log (default: file ids only; the log is plaintext)`,
  async run (ctx) {
    const { values, positionals } = parseArgs({
      args: ctx.argv,
      allowPositionals: true,
      options: {
        'data-dir': { type: 'string' },
        'config-dir': { type: 'string' },
        socket: { type: 'string' },
        'allow-other': { type: 'boolean', default: false },
        'cache-mb': { type: 'string', default: '8' },
        foreground: { type: 'boolean', default: true },
        'debug-log-paths': { type: 'boolean', default: false }
      }
    })
    const defaultMnt = join(homedir(), 'Space')
    const mountpoint = resolve(positionals[0] ?? defaultMnt)
    if (positionals[0] == null) await mkdir(mountpoint, { recursive: true })
    const cacheMb = Number(values['cache-mb'])
    if (!Number.isFinite(cacheMb) || cacheMb < 1) { ctx.stderr.write('space: --cache-mb must be a positive number\n'); return EXIT.USAGE }
    const t = target(values)
    const handed = await handToDaemon(ctx, values, t, mountpoint)
    if (handed !== null) return handed
    return await serve(ctx, { ...t, mountpoint, allowOther: values['allow-other'], cacheBytes: cacheMb * 1024 * 1024, logPaths: values['debug-log-paths'] })
  }
}

/**
 * If a daemon answers on the store's socket: an idle one is asked to mount; a mounted one means
 * the store is in use (exit 12, as the store lock would say). Null: nobody answers, serve here.
 */
async function handToDaemon (ctx: CommandContext, values: Record<string, unknown>, t: Target, mountpoint: string): Promise<number | null> {
  if (await stat(t.socket).catch(() => null) === null) return null
  let c
  try {
    c = await connect(values as Record<string, string | undefined>)
  } catch (e) {
    // Someone else's socket: say so, and never fall back to binding next to it.
    if (e instanceof CtlError && e.code === 'ERR_SOCKET_UNSAFE') {
      ctx.stderr.write(`space: ${e.message}\n`)
      return exitCodeOfAny(e)
    }
    // Nobody there (serve() replaces a stale socket), or a daemon we hold no token for
    // (serve() then says the socket is in use): either way, not ours to hand to.
    if (e instanceof CtlError) return null
    throw e
  }
  try {
    const st = await c.call('status') as StatusResult
    if (st.mounted) {
      ctx.stderr.write(`space: the store is in use by process ${st.pid} (mounted at ${st.mountpoint})\n`)
      return EXIT.STORE_IN_USE
    }
    const r = await c.call('mount', { mountpoint }) as { mountpoint: string }
    ctx.stdout.write(`mounted ${r.mountpoint} (by the daemon, pid ${st.pid})\n`)
    return EXIT.OK
  } catch (e) {
    ctx.stderr.write(`space: ${(e as Error).message}\n`)
    return exitCodeOfAny(e)
  } finally {
    c.close()
  }
}
