// Warming the lookup path once a mount answers (issue 11 point 4: `stat` of a name in a
// million-entry folder under 5 ms cold, the first one included). A fresh process runs its lookup
// code for the first time on the first stat: V8 compiles each function on its first call and its
// inline caches start empty. In-process, the first stat of /big/NAME cost 7-9 ms of the JS
// thread's CPU (/big 2.5-3.7, the name 4.6-5.7) against 1.5-2.0 for later ones (1M folder, load
// 6-17). Here getattr runs, through the kernel (daemon.ts: lstat in the mount, so libfuse's path
// walk, the dispatch to JS and the reply run too), on each of the root's first WARM_DIRS
// subdirectories and on a name not in them: the frontend, the path walk, a sharded folder's shard
// loads and decoding and the ENOENT reply run once, and those folders' top shards stay loaded (a
// few store reads; the shards are let go like any others). The mount is announced once this is
// done (WARM_WAIT_MS at most): run beside the first stat, it took the CPU from it.
import type { Cb, StatLike } from './binding.js'
import { Kind } from '../tree/format.js'
import type { DirNode, Node } from '../tree/nodes.js'

/** Subdirectories of the root warmed at most: each costs a lookup (1-6 store reads). */
export const WARM_DIRS = 8

/**
 * How long the mount waits for the warm-up before it is announced (a stat in the first
 * milliseconds after `mounted` would otherwise run beside it: 4.8-5.4 ms of the JS thread's CPU
 * for that stat against 1.3 for later ones). The warm-up of the 1M store took 5-30 ms; past
 * this it goes on beside the first requests, so a slow disk cannot hold the mount back.
 */
export const WARM_WAIT_MS = 250

/** Resolves once `warming` is done or `ms` have passed, whichever is first. */
export async function untilWarm (warming: Promise<unknown>, ms = WARM_WAIT_MS): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<boolean>(resolve => { timer = setTimeout(() => resolve(false), ms) })
  try {
    return await Promise.race([warming.then(() => true, () => true), late])
  } finally { clearTimeout(timer) }
}

/**
 * Folders of at least this many entries get their root shard's children loaded too (16 small
 * inner nodes, read in parallel): a cold lookup there opens 3 shards instead of 4 (1M folder).
 */
export const WARM_TOP_ENTRIES = 16_384

/** What warming needs: the root's loaded subdirectories, and getattr as the kernel calls it. */
export interface WarmTarget {
  rootDirs: (max: number) => Promise<string[]>
  /** A name among the loaded entries of folder `path` (after a miss there: one of its leaf's), or null. */
  loadedName: (path: string) => Promise<string | null>
  getattr: (path: string, cb: Cb<StatLike>) => void
  /** Loads the first level of shards of folder `path` when it has at least `minEntries` entries (Tree.loadTopShards). */
  loadTop?: (path: string, minEntries: number) => Promise<number>
}

const getattr = async (t: WarmTarget, path: string): Promise<void> => { await new Promise<void>(resolve => t.getattr(path, () => resolve())) }

/** Runs the warm-up; never throws (a failure only leaves the code cold). Resolves to the paths looked up. */
export async function warmLookups (t: WarmTarget): Promise<number> {
  let n = 0
  try {
    // A name no folder holds: a miss walks one hash path to its leaf and makes no node.
    const miss = `.space-warm-${Math.random().toString(36).slice(2)}`
    await getattr(t, `/${miss}`)
    n++
    for (const d of await t.rootDirs(WARM_DIRS)) {
      await getattr(t, `/${d}`)
      await getattr(t, `/${d}/${miss}`)
      const hit = await t.loadedName(`/${d}`) // and a name that is there: its node made, its attributes
      if (hit != null) await getattr(t, `/${d}/${hit}`)
      n += hit != null ? 3 : 2
      await t.loadTop?.(`/${d}`, WARM_TOP_ENTRIES)
    }
  } catch {}
  return n
}

/** What loadedNames needs of the tree. */
export interface RootTree {
  lookup: (path: string) => Promise<Node>
  children: (dir: DirNode) => Promise<ReadonlyMap<string, Node>>
}

/** Up to `max` names among the loaded entries of folder `path` (the root is read at open), subdirectories only with `dirs`. */
export async function loadedNames (tree: RootTree, path: string, max: number, dirs = false): Promise<string[]> {
  const dir = await tree.lookup(path)
  if (dir.kind !== Kind.Dir) return []
  const out: string[] = []
  for (const [name, n] of await tree.children(dir as DirNode)) {
    if (out.length >= max) break
    if (!dirs || n.kind === Kind.Dir) out.push(name)
  }
  return out
}
