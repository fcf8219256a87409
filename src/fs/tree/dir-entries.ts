// A directory's entries: the one module that reads or writes DirNode.children. Get, set, delete,
// iterate, load and seal go through here, and it keeps the subdirectory count (nlink) and each
// child's parent and name in step with the map. Sharding directories later changes this file.
import { Kind, type EntryRecord } from './format.js'
import { type Node, DirNode } from './nodes.js'

/** Whether the directory's entries are in memory (a new directory, or its node was loaded). */
export function isLoaded (dir: DirNode): boolean { return dir.children != null }

/** A directory that starts with no entries (new, or stored without a directory node). */
export function startEmpty (dir: DirNode): void { dir.children = new Map() }

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
}

/** Takes `node` out of `dir`; it keeps its name but has no parent any more. */
export function deleteEntry (dir: DirNode, node: Node): void {
  loaded(dir).delete(node.name)
  if (node.kind === Kind.Dir) dir.subdirs--
  node.parent = null
}

/**
 * Loads a directory's entries once from `fetch` (its sealed node, decoded); concurrent callers
 * share the load, and a load that finds the entries already there keeps those.
 */
export async function loadEntries (dir: DirNode, fetch: (dir: DirNode) => Promise<Node[]>): Promise<void> {
  if (dir.children != null) return
  dir.loading ??= (async () => {
    const nodes = await fetch(dir)
    const map = new Map<string, Node>()
    let subdirs = 0
    for (const child of nodes) {
      child.parent = dir
      if (child.kind === Kind.Dir) subdirs++
      map.set(child.name, child)
    }
    if (dir.children == null) { dir.children = map; dir.subdirs = subdirs }
  })().finally(() => { dir.loading = null })
  await dir.loading
}

/**
 * The records a directory node stores, sorted by name. Dirty subdirectories are sealed first
 * (`sealDir`), since an entry names its directory's CID; `entryOf` then makes each record.
 */
export function sealEntries (dir: DirNode, sealDir: (sub: DirNode) => void, entryOf: (node: Node) => EntryRecord): EntryRecord[] {
  const children = loaded(dir)
  for (const c of children.values()) if (c instanceof DirNode && c.dirty) sealDir(c)
  const names = [...children.keys()].sort()
  return names.map(n => entryOf(children.get(n)!))
}

function loaded (dir: DirNode): Map<string, Node> {
  return dir.children ?? notLoaded(dir)
}

function notLoaded (dir: DirNode): never {
  throw new Error(`bug: directory ${dir.label()} used before its entries were loaded`)
}
