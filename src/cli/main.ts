// The `space` command's entry point: turns on Node's module compile cache, then loads the command
// line (run.ts) and every module it imports. The cache holds V8's compiled code for our modules
// (and their dependencies), keyed by each file's path and source hash, in
// $XDG_CACHE_HOME/space/node-compile-cache (~/.cache/...; NODE_COMPILE_CACHE overrides it,
// NODE_DISABLE_COMPILE_CACHE=1 turns it off): built from source text only, it holds nothing a
// drive holds (no names, keys or plaintext). A start then deserializes what it would compile:
// `space --version` 0.24-0.27 -> 0.18-0.23 s of user CPU (6 runs each, load ~9). Node 22 caches
// what V8 compiled before a module ran, not functions compiled lazily on their first call, so
// the first lookup of a mount is warmed by fs/fuse/warm.ts instead.
import { enableCompileCache } from 'node:module'
import { homedir } from 'node:os'
import { join } from 'node:path'

if (process.env.NODE_DISABLE_COMPILE_CACHE == null) {
  const base = process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache')
  try { enableCompileCache(process.env.NODE_COMPILE_CACHE ?? join(base, 'space', 'node-compile-cache')) } catch {} // an optimization: never a reason to fail
}

await import('./run.js')
