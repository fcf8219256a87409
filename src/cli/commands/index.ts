// Every subcommand main.ts can dispatch to. One file per command.
import type { Command } from '../command.js'
import { command as backupKeys } from './backup-keys.js'
import { command as doctor } from './doctor.js'
import { command as hub } from './hub.js'
import { command as init } from './init.js'
import { command as recoverKeys } from './recover-keys.js'
import { command as testPassphrase } from './test-passphrase.js'
import { command as whoami } from './whoami.js'

export const commands: Command[] = [init, whoami, doctor, backupKeys, recoverKeys, testPassphrase, hub]
