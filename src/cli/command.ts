// The shape of one CLI subcommand. run.ts dispatches argv[0] to the command of that name and
// exits with the number run() resolves to (named in exit-codes.ts).
export interface CommandContext {
  argv: string[]
  stdin: NodeJS.ReadableStream
  stdout: NodeJS.WritableStream
  stderr: NodeJS.WritableStream
  env: NodeJS.ProcessEnv
}

export interface Command {
  name: string
  summary: string
  usage: string
  run (ctx: CommandContext): Promise<number>
}
