// space log: the committed versions of the tree, newest first, each with its root CID.
import { parseArgs } from 'node:util'
import type { Command } from '../command.js'
import { ExitCode as EXIT } from '../exit-codes.js'
import { Drive } from '../../daemon.js'
import { loadDriveKey } from '../../keys/drive-key.js'
import { resolveConfigDir, resolveDataDir } from '../../keys/paths.js'
import { exitCodeOf } from '../errors.js'

export const command: Command = {
  name: 'log',
  summary: 'list committed versions of the tree (root CIDs)',
  usage: 'usage: space log [--data-dir DIR] [--config-dir DIR] [--limit N] [--json]\n\nReads the store directly, so it runs while the drive is not mounted.',
  async run (ctx) {
    const { values } = parseArgs({
      args: ctx.argv,
      options: { 'data-dir': { type: 'string' }, 'config-dir': { type: 'string' }, limit: { type: 'string', default: '20' }, json: { type: 'boolean', default: false } }
    })
    try {
      const { key } = await loadDriveKey(resolveConfigDir(values['config-dir']))
      const entries = (await Drive.readLog(resolveDataDir(values['data-dir']), key)).reverse().slice(0, Number(values.limit))
      for (const e of entries) {
        ctx.stdout.write(values.json ? JSON.stringify(e) + '\n' : `${String(e.seq).padStart(6)}  ${new Date(e.time).toISOString()}  ${e.root}\n`)
      }
      return EXIT.OK
    } catch (e) {
      ctx.stderr.write(`space: ${(e as Error).message}\n`)
      return exitCodeOf(e)
    }
  }
}
