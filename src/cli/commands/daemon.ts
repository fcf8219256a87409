// space daemon: the serving process of `space mount`, detached into the background (logs to
// $XDG_STATE_HOME/space/daemon*.log); returns once its control socket answers. --foreground runs
// it in this process (the systemd unit in contrib/ does); --stop asks a running one to finish.
import { spawn } from 'node:child_process'
import { closeSync, openSync, readFileSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { homedir } from 'node:os'
import { basename, dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { CommandContext } from '../command.js'
import { ExitCode as EXIT } from '../exit-codes.js'
import { CtlError } from '../../ctl/errors.js'
import type { StatusResult } from '../../ctl/protocol.js'
import { out, UsageError } from './keys-common.js'
import { serve } from './mount.js'
import { waitForExit } from './unmount.js'
import { clientCommand, CLIENT_OPTIONS, connect, target } from '../session.js'

type Values = Record<string, string | boolean | undefined>

/** $XDG_STATE_HOME/space/daemon.log, or daemon-<hash>.log beside a per-store socket. */
function logPath (values: Values, socket: string): string {
  if (typeof values.log === 'string') return resolve(values.log)
  const state = process.env.XDG_STATE_HOME !== undefined && process.env.XDG_STATE_HOME !== '' ? resolve(process.env.XDG_STATE_HOME) : join(homedir(), '.local', 'state')
  const suffix = /^ctl(-[0-9a-f]+)?\.sock$/.exec(basename(socket))?.[1] ?? ''
  return join(state, 'space', `daemon${suffix}.log`)
}

const lastLines = (file: string, n: number): string => {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-n).join('\n')
  } catch { return '' }
}

async function tryConnect (values: Values): Promise<Awaited<ReturnType<typeof connect>> | null> {
  try {
    return await connect(values)
  } catch (e) {
    if (e instanceof CtlError && e.code === 'ERR_NO_DAEMON') return null
    throw e
  }
}

async function stop (ctx: CommandContext, values: Values, timeoutMs: number): Promise<number> {
  const c = await tryConnect(values)
  if (c === null) { ctx.stderr.write('space daemon: no daemon is running\n'); return EXIT.NO_DAEMON }
  try {
    const r = await c.call('unmount', { exit: true }) as { mountpoint: string, pid: number }
    if (!await waitForExit(r.pid, timeoutMs)) { ctx.stderr.write(`space daemon: process ${r.pid} did not finish in time\n`); return EXIT.TIMEOUT }
    out(ctx, r.mountpoint !== '' ? `unmounted ${r.mountpoint}; daemon ${r.pid} stopped` : `daemon ${r.pid} stopped`)
    return EXIT.OK
  } finally {
    c.close()
  }
}

export const command = clientCommand({
  name: 'daemon',
  summary: 'run the drive and the control socket in the background',
  usage: `usage: space daemon [MOUNTPOINT] [--no-mount] [--foreground] [--log FILE] [--timeout SECONDS]
                    [--data-dir DIR] [--config-dir DIR] [--socket PATH] [--allow-other] [--cache-mb N]
       space daemon --stop [--data-dir DIR] [--socket PATH]

Starts the serving process of "space mount" detached from the terminal and returns once its
control socket answers (and the drive is mounted), printing its pid, socket and log file.
If one already serves the store, says so and exits 0.
  MOUNTPOINT         where to mount (default ~/Space, created if missing)
  --no-mount         serve only the control socket; mount later with "space mount"
  --foreground       serve in this process (for systemd: contrib/space.service)
  --log FILE         the background process's log (default $XDG_STATE_HOME/space/daemon.log)
  --timeout SECONDS  how long to wait for it to come up, or to stop (default 60)
  --stop             commit, unmount and stop the running daemon
  --socket PATH, --data-dir DIR, --allow-other, --cache-mb N, --debug-log-paths   as for "space mount"`,
  options: {
    ...CLIENT_OPTIONS,
    'no-mount': { type: 'boolean' },
    foreground: { type: 'boolean' },
    stop: { type: 'boolean' },
    log: { type: 'string' },
    timeout: { type: 'string' },
    'allow-other': { type: 'boolean' },
    'cache-mb': { type: 'string' },
    'debug-log-paths': { type: 'boolean' }
  },
  positionals: true
}, async (ctx, values, positionals) => {
  const timeoutMs = Number(values.timeout ?? '60') * 1000
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new UsageError('--timeout must be a positive number of seconds')
  const cacheMb = Number(values['cache-mb'] ?? '8')
  if (!Number.isFinite(cacheMb) || cacheMb < 1) throw new UsageError('--cache-mb must be a positive number')
  if (positionals.length > 1) throw new UsageError('expected at most one MOUNTPOINT')
  if (values.stop === true) return await stop(ctx, values, timeoutMs)
  const noMount = values['no-mount'] === true
  if (noMount && positionals.length > 0) throw new UsageError('--no-mount takes no MOUNTPOINT')
  const mountpoint = noMount ? null : resolve(positionals[0] ?? join(homedir(), 'Space'))
  if (mountpoint !== null && positionals[0] === undefined) await mkdir(mountpoint, { recursive: true })
  const t = target(values)

  if (values.foreground === true) {
    return await serve(ctx, { ...t, mountpoint, allowOther: values['allow-other'] === true, cacheBytes: cacheMb * 1024 * 1024, logPaths: values['debug-log-paths'] === true })
  }

  const running = await tryConnect(values)
  if (running !== null) {
    try {
      const st = await running.call('status') as StatusResult
      if (mountpoint !== null && !st.mounted) await running.call('mount', { mountpoint })
      const now = await running.call('status') as StatusResult
      out(ctx, `daemon already running (pid ${now.pid}), socket ${t.socket}${now.mounted ? `, mounted at ${now.mountpoint}` : ', not mounted'}`)
      return EXIT.OK
    } finally {
      running.close()
    }
  }

  // Detached: its own session, no terminal, output to the log; we only watch it come up.
  const log = logPath(values, t.socket)
  await mkdir(dirname(log), { recursive: true, mode: 0o700 })
  const fd = openSync(log, 'a', 0o600)
  const main = join(dirname(fileURLToPath(import.meta.url)), '..', 'main.js')
  const args = [main, 'daemon', '--foreground', ...(mountpoint === null ? ['--no-mount'] : [mountpoint]),
    '--data-dir', t.dataDir, '--config-dir', t.configDir, '--cache-mb', String(cacheMb),
    ...(typeof values.socket === 'string' ? ['--socket', values.socket] : []),
    ...(values['allow-other'] === true ? ['--allow-other'] : []),
    ...(values['debug-log-paths'] === true ? ['--debug-log-paths'] : [])]
  const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', fd, fd], env: ctx.env })
  closeSync(fd)
  let exited: number | null | undefined
  child.once('exit', (code, sig) => { exited = code ?? (sig !== null ? EXIT.DAEMON_START_FAILED : null) })
  child.unref()

  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (exited !== undefined) {
      ctx.stderr.write(`space daemon: the background process exited with ${String(exited)}; last lines of ${log}:\n${lastLines(log, 5)}\n`)
      return exited === null || exited === 0 ? EXIT.DAEMON_START_FAILED : exited
    }
    const c = await tryConnect(values).catch(() => null)
    if (c !== null) {
      const st = await c.call('status').catch(() => null) as StatusResult | null
      c.close()
      if (st !== null && (mountpoint === null || st.mounted)) {
        out(ctx, `daemon started (pid ${st.pid}), socket ${t.socket}, log ${log}`)
        out(ctx, st.mounted ? `mounted ${st.mountpoint}` : 'not mounted (--no-mount)')
        return EXIT.OK
      }
    }
    if (Date.now() > deadline) {
      ctx.stderr.write(`space daemon: no answer on ${t.socket} after ${timeoutMs / 1000} s; see ${log}\n`)
      return EXIT.DAEMON_START_FAILED
    }
    await new Promise(r => setTimeout(r, 100))
  }
})
