// A directory's entries: the one module that reads or writes DirNode.children. Get, set, delete,
// iterate, load and seal go through here, and it keeps the subdirectory count (nlink) and each
// child's parent and name in step with the map (a linked node's are one of its names: the map's
// key, not node.name, is the entry's name), and the link table's list of each linked node's names.
// Sharding directories later changes this file.
import { Kind, type EntryRecord, type LinkNameRecord } from './format.js'
import { type Node, DirNode } from './nodes.js'

/** Whether the directory's entries are in memory (a new directory, or its node was loaded). */
export function isLoaded (dir: DirNode): boolean { return dir.children != null }

/** A directory that starts with no entries (new, or stored without a directory node). */
export function startEmpty (dir: DirNode): void { dir.children = new Map() }

/**
 * Forgets the loaded entries (the directory now names another node: they load again from it).
 * The old children are cut loose: a change to one of them later (through a handle opened before)
 * must not mark this directory dirty while its entries are not loaded.
 */
export function unloadEntries (dir: DirNode): void {
  for (const child of dir.children?.values() ?? []) if (child.parent === dir) child.parent = null
  dir.children = null
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
  to.subdirs = from.subdirs
  from.children = null
  from.subdirs = 0
}

/** Puts `node` in place of the entry `name` of `dir` (a node of the same kind: an open file keeping its node across a swap). */
export function replaceEntry (dir: DirNode, name: string, node: Node): void {
  const map = loaded(dir)
  const old = map.get(name)
  if (old == null || old.kind !== node.kind) throw new Error(`bug: directory ${dir.label()} has no entry of that kind to replace`)
  if (old.link != null) old.link.table.removeName(old, dir, name)
  map.set(name, node)
  node.parent = dir
  node.name = name
  node.link?.table.addName(node, dir, name)
}

/** The entries of a loaded directory (a live view: callers must not hold it across changes). */
export function entryMap (dir: DirNode): ReadonlyMap<string, Node> { return loaded(dir) }

export function getEntry (dir: DirNode, name: string): Node | undefined { return loaded(dir).get(name) }

export function hasEntry (dir: DirNode, name: string): boolean { return loaded(dir).has(name) }

export function entryCount (dir: DirNode): number { return loaded(dir).size }

export function entries (dir: DirNode): Array<[string, Node]> { return [...loaded(dir).entries()] }

/** Puts `node` into `dir` under `name` (its parent and name follow). */
export function setEntry (dir: DirNode, name: string, node: Node): void {
  node.parent = dir
  node.name = name
  loaded(dir).set(name, node)
  if (node.kind === Kind.Dir) dir.subdirs++
  node.link?.table.addName(node, dir, name)
}

/**
 * Takes the entry `name` (holding `node`) out of `dir`. A node losing its last name keeps its
 * name but has no parent any more; a linked node with names left keeps one of them.
 */
export function deleteEntry (dir: DirNode, name: string, node: Node): void {
  loaded(dir).delete(name)
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
export async function loadEntries (dir: DirNode, fetch: (dir: DirNode) => Promise<Array<[string, Node]>>): Promise<void> {
  if (dir.children != null) return
  if (dir.loading == null) {
    const p: Promise<void> = (async () => {
      for (;;) {
        const cid = dir.cid
        const named = await fetch(dir)
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
        dir.subdirs = subdirs
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
 * The records a directory node stores, sorted by name. Dirty subdirectories are sealed first
 * (`sealDir`), since an entry names its directory's CID; `entryOf` then makes each record.
 */
export function sealEntries (dir: DirNode, sealDir: (sub: DirNode) => void, entryOf: (name: string, node: Node) => EntryRecord | LinkNameRecord): Array<EntryRecord | LinkNameRecord> {
  const children = loaded(dir)
  for (const c of children.values()) if (c instanceof DirNode && c.dirty) sealDir(c)
  const names = [...children.keys()].sort()
  return names.map(n => entryOf(n, children.get(n)!))
}

function loaded (dir: DirNode): Map<string, Node> {
  return dir.children ?? notLoaded(dir)
}

function notLoaded (dir: DirNode): never {
  throw new Error(`bug: directory ${dir.label()} used before its entries were loaded`)
}
