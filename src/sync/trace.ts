// Stage timestamps of replication, for measuring where time goes (docs/performance.md,
// "Replication"): with SPACE_SYNC_TRACE=1 in the daemon's environment, one line per stage on
// stderr (ISO time, "sync-trace:", the stage and its numbers). Off by default: no cost but a check.
const on = process.env.SPACE_SYNC_TRACE === '1'

export function trace (what: () => string): void {
  if (on) process.stderr.write(`${new Date().toISOString()} sync-trace: ${what()}\n`)
}
