// space unmount [MOUNTPOINT]: asks the daemon serving the drive to commit and unmount, and waits
// until its process has finished. Without a daemon: a serving process known only from the store
// lock is signalled, a stale mount left by a killed process is detached, else exit 17.
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'
import { readdir } from 'node:fs/promises'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { ExitCode as EXIT } from '../exit-codes.js'
import { pidAlive, readLock } from '../../drive/lock.js'
import { isMounted } from '../../drive/mountpoint.js'
import { CtlClient } from '../../ctl/client.js'
import { CtlError } from '../../ctl/errors.js'
import { runtimeDir } from '../../ctl/paths.js'
import type { StatusResult } from '../../ctl/protocol.js'
import { readMasterToken } from '../../ctl/tokens.js'
import { UsageError } from './keys-common.js'
import { clientCommand, CLIENT_OPTIONS, CLIENT_USAGE, connect, target } from '../session.js'

export async function waitForExit (pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (pidAlive(pid)) {
    if (Date.now() > deadline) return false
    await new Promise(r => setTimeout(r, 50))
  }
  return true
}

/**
 * A MOUNTPOINT served by a daemon of another store: the sockets in the runtime dir are asked
 * in turn (with the same master token) which one has it mounted.
 */
async function findByMountpoint (values: Record<string, string | boolean | undefined>, mountpoint: string): Promise<CtlClient | null> {
  const dir = runtimeDir()
  const token = (values.token as string | undefined) ?? process.env.SPACE_TOKEN ?? await readMasterToken(target(values).configDir).catch(() => null)
  if (token === null || token === undefined) return null
  for (const name of (await readdir(dir).catch(() => [] as string[])).filter(n => /^ctl(-[0-9a-f]+)?\.sock$/.test(n))) {
    const c = await CtlClient.connect(join(dir, name), token, { timeoutMs: 2000 }).catch(() => null)
    if (c === null) continue
    const st = await c.call('status').catch(() => null) as StatusResult | null
    if (st?.mountpoint === mountpoint) return c
    c.close()
  }
  return null
}

export const command = clientCommand({
  name: 'unmount',
  summary: 'commit and unmount the drive',
  usage: `usage: space unmount [MOUNTPOINT] [--keep-daemon] [--timeout SECONDS] [--data-dir DIR] [--config-dir DIR] [--socket PATH] [--token TOKEN]

Asks the daemon serving the drive to commit and unmount, and waits until its process has
finished. A stale mount left by a killed process is detached. Exit 17 if nothing is mounted.
  --keep-daemon      the daemon stays up, idle, for a later "space mount"
  --timeout SECONDS  how long to wait for the serving process (default 120)
${CLIENT_USAGE}`,
  options: { ...CLIENT_OPTIONS, 'keep-daemon': { type: 'boolean' }, timeout: { type: 'string' } },
  positionals: true
}, async (ctx, values, positionals) => {
  const timeoutMs = Number(values.timeout ?? '120') * 1000
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new UsageError('--timeout must be a positive number of seconds')
  if (positionals.length > 1) throw new UsageError('expected at most one MOUNTPOINT')
  const asked = positionals[0] === undefined ? null : resolve(positionals[0])
  const keep = values['keep-daemon'] === true

  let c: CtlClient | null = null
  try {
    c = await connect(values)
  } catch (e) {
    if (!(e instanceof CtlError && e.code === 'ERR_NO_DAEMON')) throw e
  }
  try {
    let st = c === null ? null : await c.call('status') as StatusResult
    const named = values.socket !== undefined || values['data-dir'] !== undefined
    if (asked !== null && !named && st?.mountpoint !== asked) {
      const other = await findByMountpoint(values, asked)
      if (other !== null) { c?.close(); c = other; st = await c.call('status') as StatusResult }
    }
    if (c !== null && st !== null && st.mounted && (asked === null || st.mountpoint === asked)) {
      const r = await c.call('unmount', { exit: !keep }) as { mountpoint: string, pid: number }
      if (!keep && !await waitForExit(r.pid, timeoutMs)) {
        ctx.stderr.write(`space unmount: process ${r.pid} did not finish in time\n`)
        return EXIT.TIMEOUT
      }
      ctx.stdout.write(`unmounted ${r.mountpoint}\n`)
      return EXIT.OK
    }
  } finally {
    c?.close()
  }

  // No daemon has it: a serving process known from the store lock, or a stale mount.
  const lock = readLock(join(target(values).dataDir, 'lock'))
  const mountpoint = asked ?? lock?.mountpoint ?? join(homedir(), 'Space')
  if (lock != null && lock.mountpoint === mountpoint && pidAlive(lock.pid)) {
    process.kill(lock.pid, 'SIGTERM')
    if (!await waitForExit(lock.pid, timeoutMs)) { ctx.stderr.write(`space unmount: process ${lock.pid} did not finish unmounting in time\n`); return EXIT.TIMEOUT }
    ctx.stdout.write(`unmounted ${mountpoint}\n`)
    return EXIT.OK
  }
  if (isMounted(mountpoint)) {
    await promisify(execFile)('fusermount', ['-uz', mountpoint])
    ctx.stdout.write(`detached stale mount ${mountpoint}\n`)
    return EXIT.OK
  }
  ctx.stderr.write(`space unmount: nothing is mounted at ${mountpoint}\n`)
  return EXIT.NOT_MOUNTED
})
