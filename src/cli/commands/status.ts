// space status: what is mounted where, and how big the store is.
import { parseArgs } from 'node:util'
import { join } from 'node:path'
import { readdir, stat } from 'node:fs/promises'
import type { Command } from '../command.js'
import { ExitCode as EXIT } from '../exit-codes.js'
import { isMounted, pidAlive, readLock } from '../../daemon.js'
import { resolveDataDir } from '../../keys/paths.js'

async function storeBytes (dir: string): Promise<number> {
  let n = 0
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const st = await stat(join(dir, name)).catch(() => null)
    if (st?.isFile() === true) n += st.size
  }
  return n
}

export const command: Command = {
  name: 'status',
  summary: 'show whether the drive is mounted, where, and the store size',
  usage: 'usage: space status [--data-dir DIR] [--json]',
  async run (ctx) {
    const { values } = parseArgs({ args: ctx.argv, options: { 'data-dir': { type: 'string' }, json: { type: 'boolean', default: false } } })
    const dataDir = resolveDataDir(values['data-dir'])
    const lock = readLock(join(dataDir, 'lock'))
    const alive = lock != null && pidAlive(lock.pid)
    const mounted = alive && lock.mountpoint != null && isMounted(lock.mountpoint)
    const status = {
      mounted,
      mountpoint: mounted ? lock.mountpoint : null,
      pid: alive ? lock.pid : null,
      dataDir,
      storeBytes: await storeBytes(join(dataDir, 'packs')) + await storeBytes(dataDir)
    }
    if (values.json) ctx.stdout.write(JSON.stringify(status) + '\n')
    else if (mounted) ctx.stdout.write(`mounted at ${status.mountpoint} (pid ${status.pid})\nstore ${dataDir}: ${(status.storeBytes / 1048576).toFixed(1)} MiB\n`)
    else ctx.stdout.write(`not mounted\nstore ${dataDir}: ${(status.storeBytes / 1048576).toFixed(1)} MiB\n`)
    return EXIT.OK
  }
}
