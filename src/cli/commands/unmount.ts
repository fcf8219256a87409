// space unmount [MOUNTPOINT]: asks the serving process to commit and unmount, and waits for it.
import { parseArgs } from 'node:util'
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import type { Command } from '../command.js'
import { ExitCode as EXIT } from '../exit-codes.js'
import { isMounted, pidAlive, readLock } from '../../daemon.js'
import { resolveDataDir } from '../../keys/paths.js'

export const command: Command = {
  name: 'unmount',
  summary: 'commit and unmount the drive',
  usage: `usage: space unmount [MOUNTPOINT] [--data-dir DIR] [--timeout SECONDS]

Signals the process serving the drive to commit and unmount, and waits until it has.
A stale mount left by a killed process is detached. Exit 17 if nothing is mounted.`,
  async run (ctx) {
    const { values, positionals } = parseArgs({
      args: ctx.argv,
      allowPositionals: true,
      options: { 'data-dir': { type: 'string' }, timeout: { type: 'string', default: '120' } }
    })
    const lock = readLock(join(resolveDataDir(values['data-dir']), 'lock'))
    const mountpoint = resolve(positionals[0] ?? lock?.mountpoint ?? join(homedir(), 'Space'))
    if (lock != null && lock.mountpoint === mountpoint && pidAlive(lock.pid)) {
      process.kill(lock.pid, 'SIGTERM')
      const deadline = Date.now() + Number(values.timeout) * 1000
      while (pidAlive(lock.pid)) {
        if (Date.now() > deadline) { ctx.stderr.write(`space: process ${lock.pid} did not finish unmounting in time\n`); return EXIT.FAILURE }
        await new Promise(r => setTimeout(r, 50))
      }
      ctx.stdout.write(`unmounted ${mountpoint}\n`)
      return EXIT.OK
    }
    if (isMounted(mountpoint)) {
      await promisify(execFile)('fusermount', ['-uz', mountpoint])
      ctx.stdout.write(`detached stale mount ${mountpoint}\n`)
      return EXIT.OK
    }
    ctx.stderr.write(`space: nothing is mounted at ${mountpoint}\n`)
    return EXIT.NOT_MOUNTED
  }
}
