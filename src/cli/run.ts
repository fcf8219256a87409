// The `space` command line: dispatches to one file per subcommand (the list: commands/index.ts).
// Loaded by main.ts once the compile cache is on.
import { ExitCode as EXIT } from './exit-codes.js'
import { commands as all, help } from './commands/index.js'
import { VERSION } from '../version.js'

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
