// The one list of `space` subcommands, in the order help shows them. run.ts dispatches through
// it and generates help from it; test/ctl/cli-commands.test.ts checks docs/cli.md against it.
// One file per command.
import type { Command } from '../command.js'
import { VERSION } from '../../version.js'
import { command as backupKeys } from './backup-keys.js'
import { command as daemon } from './daemon.js'
import { command as devices } from './devices.js'
import { command as doctor } from './doctor.js'
import { command as events } from './events.js'
import { command as fsck } from './fsck.js'
import { command as hub } from './hub.js'
import { command as init } from './init.js'
import { command as log } from './log.js'
import { command as mount } from './mount.js'
import { command as recoverKeys } from './recover-keys.js'
import { command as status } from './status.js'
import { command as sync } from './sync.js'
import { command as testPassphrase } from './test-passphrase.js'
import { command as token } from './token.js'
import { command as unmount } from './unmount.js'
import { command as whoami } from './whoami.js'

export const commands: readonly Command[] = [mount, unmount, status, sync, devices, log, daemon, token, events, fsck, init, whoami, doctor, backupKeys, recoverKeys, testPassphrase, hub]

/** The top-level help, generated from the list. */
export function help (): string {
  const width = Math.max(...commands.map(c => c.name.length))
  return `space ${VERSION} - end-to-end encrypted drive\n\nusage: space COMMAND [ARGS]\n\n` +
    commands.map(c => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n') + '\n\nRun "space COMMAND --help" for details.\n'
}
