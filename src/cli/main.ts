// The `space` command line: dispatches to one file per subcommand.
import type { Command } from './command.js'
import { ExitCode as EXIT } from './exit-codes.js'
import { command as mount } from './commands/mount.js'
import { command as unmount } from './commands/unmount.js'
import { command as status } from './commands/status.js'
import { command as log } from './commands/log.js'
import { command as daemon } from './commands/daemon.js'
import { command as token } from './commands/token.js'
import { command as events } from './commands/events.js'
import { command as fsck } from './commands/fsck.js'
import { commands as keyCommands } from './commands/index.js'
import { VERSION } from '../version.js'

const all: Command[] = [mount, unmount, status, log, daemon, token, events, fsck, ...keyCommands]

function help (): string {
  const width = Math.max(...all.map(c => c.name.length))
  return `space ${VERSION} - end-to-end encrypted drive\n\nusage: space COMMAND [ARGS]\n\n` +
    all.map(c => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n') + '\n\nRun "space COMMAND --help" for details.\n'
}

async function main (argv: string[]): Promise<number> {
  const [name, ...rest] = argv
  if (name == null || name === '--help' || name === '-h' || name === 'help') { process.stdout.write(help()); return name == null ? EXIT.USAGE : EXIT.OK }
  if (name === '--version') { process.stdout.write(VERSION + '\n'); return EXIT.OK }
  const cmd = all.find(c => c.name === name)
  if (cmd == null) { process.stderr.write(`space: unknown command "${name}"\n\n${help()}`); return EXIT.USAGE }
  if (rest.includes('--help') || rest.includes('-h')) { process.stdout.write(cmd.usage + '\n'); return EXIT.OK }
  try {
    return await cmd.run({ argv: rest, stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, env: process.env })
  } catch (err) {
    const e = err as { code?: string, message?: string }
    if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' || e.code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
      process.stderr.write(`space ${name}: ${e.message ?? ''}\n${cmd.usage}\n`)
      return EXIT.USAGE
    }
    process.stderr.write(`space ${name}: ${e.message ?? String(err)}\n`)
    return EXIT.FAILURE
  }
}

// `space whoami | head -1`: a closed pipe ends the output, not the process with a stack trace.
process.stdout.on('error', err => { if ((err as NodeJS.ErrnoException).code === 'EPIPE') process.exit(process.exitCode ?? 0) })

main(process.argv.slice(2)).then(code => { process.exitCode = code }, err => { process.stderr.write(String(err) + '\n'); process.exitCode = EXIT.FAILURE })
