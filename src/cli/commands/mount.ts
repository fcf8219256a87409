// space mount [MOUNTPOINT]: mounts the drive and serves it until SIGINT/SIGTERM or `space unmount`.
import { parseArgs } from 'node:util'
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'
import { mkdir } from 'node:fs/promises'
import type { Command } from '../command.js'
import { ExitCode as EXIT } from '../exit-codes.js'
import { mountDrive, openDriveFromConfig } from '../../daemon.js'
import { resolveConfigDir, resolveDataDir } from '../../keys/paths.js'
import { exitCodeOf } from '../errors.js'

export const command: Command = {
  name: 'mount',
  summary: 'mount the encrypted drive (default ~/Space) and serve it in the foreground',
  usage: `usage: space mount [MOUNTPOINT] [--data-dir DIR] [--config-dir DIR] [--allow-other] [--cache-mb N]

Mounts the drive at MOUNTPOINT (default ~/Space, created if missing) and serves it until
Ctrl-C, SIGTERM or "space unmount". Prints "mounted MOUNTPOINT" once the mount is ready.
  --data-dir DIR     the block store (default $XDG_DATA_HOME/space)
  --config-dir DIR   keys and settings (default $XDG_CONFIG_HOME/space)
  --allow-other      let other users reach the mount (permission bits still apply)
  --cache-mb N       decrypted-block cache budget in MiB (default 64)
  --foreground       accepted for compatibility; mount always serves in the foreground`,
  async run (ctx) {
    const { values, positionals } = parseArgs({
      args: ctx.argv,
      allowPositionals: true,
      options: {
        'data-dir': { type: 'string' },
        'config-dir': { type: 'string' },
        'allow-other': { type: 'boolean', default: false },
        'cache-mb': { type: 'string', default: '64' },
        foreground: { type: 'boolean', default: true }
      }
    })
    const out = (s: string): void => { ctx.stdout.write(s + '\n') }
    const err = (s: string): void => { ctx.stderr.write(`${new Date().toISOString()} ${s}\n`) }
    const defaultMnt = join(homedir(), 'Space')
    const mountpoint = resolve(positionals[0] ?? defaultMnt)
    if (positionals[0] == null) await mkdir(mountpoint, { recursive: true })
    const cacheMb = Number(values['cache-mb'])
    if (!Number.isFinite(cacheMb) || cacheMb < 1) { ctx.stderr.write('space: --cache-mb must be a positive number\n'); return EXIT.USAGE }
    try {
      const drive = await openDriveFromConfig(resolveConfigDir(values['config-dir']), resolveDataDir(values['data-dir']), { cacheBytes: cacheMb * 1024 * 1024, log: err })
      let mounted
      try {
        mounted = await mountDrive(drive, { mountpoint, allowOther: values['allow-other'], log: err })
      } catch (e) {
        await drive.close().catch(() => {})
        throw e
      }
      out(`mounted ${mountpoint}`)
      await new Promise<void>(resolveDone => {
        const stop = (sig: string): void => {
          err(`${sig}: unmounting ${mountpoint}`)
          mounted.stop().then(() => resolveDone(), e => { err(`unmount failed: ${(e as Error).message}`); resolveDone() })
        }
        process.once('SIGINT', () => stop('SIGINT'))
        process.once('SIGTERM', () => stop('SIGTERM'))
        process.once('SIGHUP', () => stop('SIGHUP'))
      })
      out(`unmounted ${mountpoint}`)
      return EXIT.OK
    } catch (e) {
      ctx.stderr.write(`space: ${(e as Error).message}\n`)
      return exitCodeOf(e)
    }
  }
}
