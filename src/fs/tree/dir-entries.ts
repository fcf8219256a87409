// A directory's entries: the one module that reads or writes DirNode.children. Get, set, delete,
// iterate, load and seal go through here, and it keeps the subdirectory count (nlink) and each
// child's parent and name in step with the map (a linked node's are one of its names: the map's
// key, not node.name, is the entry's name), and the link table's list of each linked node's names.
// A sharded directory (dir-shards.ts) holds only its loaded shards' entries: a name is looked up,
// added or removed once its shard path is loaded (load.ts loadName), a listing once all are.
import type { CID } from 'multiformats/cid'
import { Kind, type EntryRecord, type LinkNameRecord } from './format.js'
import { type Node, DirNode, FileNode } from './nodes.js'
import { DirShards, type PutShard, type Shard, FANOUT, PLAIN_BYTES, nameHashKey, plainBody, sealShards } from './dir-shards.js'
import { dropKept } from './dir-leaf.js'

/** Whether the directory's entries are in memory (a new directory, or its node was loaded). */
export function isLoaded (dir: DirNode): boolean { return dir.children != null }

/** Whether every entry is in memory (a plain directory loaded, or a sharded one with all shards). */
export function isComplete (dir: DirNode): boolean { return dir.children != null && (dir.shards == null || dir.shards.complete()) }

/** Whether a lookup of `name` in `dir` needs nothing more loaded. */
export function isReady (dir: DirNode, name: string): boolean { return dir.children != null && (dir.shards == null || dir.shards.ready(name)) }

/** A directory that starts with no entries (new, or stored without a directory node). */
export function startEmpty (dir: DirNode): void { dir.children = new Map(); dir.shards = null }

/**
 * Forgets the loaded entries (the directory now names another node: they load again from it).
 * The old children are cut loose: a change to one of them later (through a handle opened before)
 * must not mark this directory dirty while its entries are not loaded.
 */
export function unloadEntries (dir: DirNode): void {
  for (const child of dir.children?.values() ?? []) if (child.parent === dir) child.parent = null
  dir.children = null
  dir.shards = null
  dir.subdirs = 0
  dir.loading = null
}

/**
 * Gives `to` the entries loaded into `from` (a directory node loaded apart, then swapped in under
 * the live directory object: adopt.ts). `from` is left unloaded.
 */
export function moveEntries (from: DirNode, to: DirNode): void {
  const map = loaded(from)
  for (const [name, child] of map) {
    child.parent = to
    child.link?.table.removeName(child, from, name)
    child.link?.table.addName(child, to, name)
  }
  to.children = map
  to.shards = from.shards
  to.subdirs = from.subdirs
  from.children = null
  from.shards = null
  from.subdirs = 0
}

/** Puts `node` in place of the entry `name` of `dir` (a node of the same kind: an open file keeping its node across a swap). */
export function replaceEntry (dir: DirNode, name: string, node: Node): void {
  const map = loaded(dir)
  const old = map.get(name)
  if (old == null || old.kind !== node.kind) throw new Error(`bug: directory ${dir.label()} has no entry of that kind to replace`)
  if (old.link != null) old.link.table.removeName(old, dir, name)
  dir.shards?.forget(name) // another node: its record is made again when next sealed
  map.set(name, node)
  node.parent = dir
  node.name = name
  node.link?.table.addName(node, dir, name)
}

/** The loaded entries of a directory (all of them unless sharded; a live view: callers must not hold it across changes). */
export function entryMap (dir: DirNode): ReadonlyMap<string, Node> { return loaded(dir) }

export function getEntry (dir: DirNode, name: string): Node | undefined { return ready(dir, name).get(name) }

export function hasEntry (dir: DirNode, name: string): boolean { return ready(dir, name).has(name) }

/** How many entries the directory has (a sharded one's root counts them). */
export function entryCount (dir: DirNode): number { return dir.shards?.count ?? loaded(dir).size }

/** The loaded entries (every entry once isComplete: a listing loads them all first, load.ts loadDir). */
export function entries (dir: DirNode): Array<[string, Node]> {
  const map = loaded(dir)
  if (dir.shards == null) return [...map.entries()]
  // Leaf by leaf in position order: a stable order for a listing.
  const out: Array<[string, Node]> = []
  for (const leaf of dir.shards.leaves()) for (const n of [...leaf.names!].sort()) out.push([n, map.get(n)!])
  return out
}

/** Puts `node` into `dir` under `name` (its parent and name follow). */
export function setEntry (dir: DirNode, name: string, node: Node): void {
  const map = ready(dir, name)
  node.parent = dir
  node.name = name
  if (!map.has(name)) dir.shards?.add(name)
  else dir.shards?.changed(name)
  map.set(name, node)
  if (node.kind === Kind.Dir) dir.subdirs++
  node.link?.table.addName(node, dir, name)
}

/** The entry `name` of `dir` changed (its record must be written again: the shard holding it, when sharded). */
export function entryChanged (dir: DirNode, name: string): void { dir.shards?.changed(name) }

/**
 * Takes the entry `name` (holding `node`) out of `dir`. A node losing its last name keeps its
 * name but has no parent any more; a linked node with names left keeps one of them.
 */
export function deleteEntry (dir: DirNode, name: string, node: Node): void {
  if (ready(dir, name).delete(name)) dir.shards?.remove(name)
  if (node.kind === Kind.Dir) dir.subdirs--
  node.link?.table.removeName(node, dir, name)
  if (node.nlink <= 1) node.parent = null
  else if (node.parent === dir && node.name === name && node.link != null) {
    // Its parent and name stay one of its names (log lines, Node.path()).
    const other = node.link.table.namesOf(node)[0]
    if (other != null) { node.parent = other.dir; node.name = other.name }
  }
}

/**
 * Loads a directory's entries once from `fetch` (its sealed node, decoded); concurrent callers
 * share the load, and a load that finds the entries already there keeps those. A load that
 * finds the directory pointed at another node when it ends (a merged tree swapped in under it,
 * Tree.adopt) loads that node instead: installed, the old node's entries would stand under the
 * new CID, and the next commit would undo the merge.
 */
export async function loadEntries (dir: DirNode, fetch: (dir: DirNode) => Promise<{ named: Array<[string, Node]>, shards: { trie: DirShards, subdirs: number } | null }>): Promise<void> {
  if (dir.children != null) return
  if (dir.loading == null) {
    const p: Promise<void> = (async () => {
      for (;;) {
        const cid = dir.cid
        const { named, shards } = await fetch(dir)
        if (dir.children != null) return
        if (!sameCid(dir.cid, cid)) continue
        const map = new Map<string, Node>()
        let subdirs = 0
        for (const [name, child] of named) {
          child.parent = dir
          child.name = name
          if (child.kind === Kind.Dir) subdirs++
          map.set(name, child)
        }
        dir.children = map
        dir.shards = shards?.trie ?? null
        dir.subdirs = shards?.subdirs ?? subdirs
        for (const [name, child] of map) child.link?.table.addName(child, dir, name)
        return
      }
    })().finally(() => { if (dir.loading === p) dir.loading = null })
    dir.loading = p
  }
  await dir.loading
}

const sameCid = (a: DirNode['cid'], b: DirNode['cid']): boolean => a == null ? b == null : b != null && a.equals(b)

/**
 * Installs the entries of one shard of a sharded directory, just opened (`trie`: the directory's
 * trie when the load began; a trie swapped out since, by a merge, takes nothing). Their
 * subdirectories are counted already (the root's count).
 */
export function installShard (dir: DirNode, trie: DirShards, named: Array<[string, Node]>): void {
  if (dir.shards !== trie || dir.children == null) return
  for (const [name, child] of named) {
    child.parent = dir
    child.name = name
    dir.children.set(name, child)
    child.link?.table.addName(child, dir, name)
  }
}

/**
 * Lets a leaf of a sharded directory go again (a listing is past it: dir-listing.ts), and the
 * inner nodes above it that a listing loaded once none of their children is loaded: its entries
 * load again from their sealed shard on the next use. Only what nothing holds or changed: a
 * leaf to be resealed, a name of a linked node, a file open or in an op that pins it, with
 * unsealed or uncommitted content, or a separately loaded block map (load.ts tracks it), or a
 * directory whose own entries are loaded stays. Returns whether the leaf went.
 */
export function releaseLeaf (dir: DirNode, trie: DirShards, leaf: Shard): boolean {
  const map = dir.children
  if (map == null || dir.shards !== trie || leaf.names == null || leaf.dirty || leaf.loading != null || !inTrie(trie, leaf)) return false
  for (const name of leaf.names) {
    const n = map.get(name)
    if (n == null || n.link != null || !releasable(n)) return false
  }
  for (const name of leaf.names) {
    const n = map.get(name)!
    if (n.parent === dir) n.parent = null
    map.delete(name)
    trie.leafOf.delete(name)
  }
  dropKept(leaf)
  leaf.names = null
  leaf.order = null
  leaf.listed = false
  for (let s = leaf.parent; s != null && s.parent != null && s.listed && !s.dirty && s.loading == null; s = s.parent) {
    for (const k of s.kids!.values()) if (k.loaded || k.loading != null) return true
    s.kids = null
    s.listed = false
  }
  return true
}

/** Whether `s` is still part of the trie (a split or merge since the listing passed it replaces shards). */
function inTrie (trie: DirShards, s: Shard): boolean {
  for (; s.parent != null; s = s.parent) if (s.parent.kids?.get(s.prefix % FANOUT) !== s) return false
  return s === trie.root
}

function releasable (n: Node): boolean {
  if (n instanceof FileNode) {
    return n.pins === 0 && n.loading == null && n.dirty.size === 0 && n.sealing.size === 0 && n.patching.size === 0 &&
      n.changedBlocks.size === 0 && !n.blockMapDirty && !(n.blocks != null && n.blockMap != null)
  }
  if (n instanceof DirNode) return n.children == null && n.loading == null && !n.dirty
  return true
}

/**
 * Seals a directory's node: a plain node `{ v: 1, e }` while its body fits in PLAIN_BYTES (every
 * directory before sharding, byte for byte), else the changed shards of its trie. A dirty
 * subdirectory is sealed (`sealDir`) before its record is made, since an entry names its
 * directory's CID; `entryOf` makes each record, `put` seals a body at a position and stores it.
 */
export function sealDirectory (dir: DirNode, sealDir: (sub: DirNode) => void, entryOf: (name: string, node: Node) => EntryRecord | LinkNameRecord, put: PutShard): CID {
  const children = loaded(dir)
  // A dirty subdirectory is sealed when its record is made: a record is made again for every
  // name whose entry changed, and a subdirectory that changed marked its entry (changes.ts
  // touch), so a sharded directory's commit visits the names of its changed leaves, not all.
  const recordsOf = (names: string[]): Array<EntryRecord | LinkNameRecord> => names.map(n => {
    const c = children.get(n)!
    if (c instanceof DirNode && c.dirty) sealDir(c)
    return entryOf(n, c)
  })
  if (dir.shards == null) {
    const names = [...children.keys()].sort()
    const body = plainBody(recordsOf(names))
    if (body.length <= PLAIN_BYTES) return put(0, body)
    dir.shards = DirShards.fromNames(nameHashKey(dir.key), names)
  }
  const cid = sealShards(dir.shards, recordsOf, put, dir.subdirs)
  if (cid != null) return cid
  dir.shards = null // merged back: every entry is loaded, and a plain node holds them
  return put(0, plainBody(recordsOf([...children.keys()].sort())))
}

function loaded (dir: DirNode): Map<string, Node> {
  return dir.children ?? notLoaded(dir)
}

function ready (dir: DirNode, name: string): Map<string, Node> {
  const map = loaded(dir)
  if (dir.shards != null && !dir.shards.ready(name)) throw new Error(`bug: directory ${dir.label()} used before the shard of a name was loaded`)
  return map
}

function notLoaded (dir: DirNode): never {
  throw new Error(`bug: directory ${dir.label()} used before its entries were loaded`)
}
