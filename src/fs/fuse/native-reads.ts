// The tree's ReadShortcut over the binding's native read table (binding.ts NativeReadTable,
// native/src/fuse3/fastread.c): which open handle reads which file, each file's number in the
// table while a handle of it is bound, and the file's entries put and dropped by the reader.
// A file is bound at its handle's first read through JS (ops/file.ts) and let go at the release
// of its last bound handle, which zeroes its key in the table.
import type { FileNode, ReadShortcut } from '../tree/tree.js'
import type { NativeReadTable } from './binding.js'

export class NativeReads implements ReadShortcut {
  /** Per file: its number in the table, its bound handles, and the first block index not put ahead (putStream). */
  private readonly files = new Map<FileNode, { fid: number, handles: number, ahead: number }>()
  private readonly handles = new Map<number, FileNode>()

  constructor (private readonly table: NativeReadTable) {}

  /** Reads through handle `fh` are of `f` (cheap when they already are). */
  bindHandle (fh: number, f: FileNode): void {
    if (this.handles.get(fh) === f) return
    this.releaseHandle(fh)
    let file = this.files.get(f)
    if (file == null) {
      const fid = this.table.file(f.key)
      if (fid < 0) return // the table is full: this file's reads stay with JS
      file = { fid, handles: 0, ahead: 0 }
      this.files.set(f, file)
    }
    file.handles++
    this.handles.set(fh, f)
    this.table.bind(fh, file.fid)
  }

  /** Handle `fh` is closed: its file goes from the table with its last handle. */
  releaseHandle (fh: number): void {
    const f = this.handles.get(fh)
    if (f == null) return
    this.handles.delete(fh)
    this.table.bind(fh, -1)
    const file = this.files.get(f)!
    if (--file.handles > 0) return
    this.files.delete(f)
    this.table.freeFile(file.fid)
  }

  wants (f: FileNode): boolean { return this.files.has(f) }

  put (f: FileNode, idx: number, adPrefix: Uint8Array, objs: Float64Array, nonces: Uint8Array, seg: Uint8Array): void {
    const file = this.files.get(f)
    if (file != null) this.table.put(file.fid, f.size, idx, adPrefix, objs, nonces, seg)
  }

  putStream (f: FileNode, first: number, adPrefixes: Uint8Array, objs: Float64Array, hashes: Uint8Array): void {
    const file = this.files.get(f)
    if (file == null || this.table.putStream == null) return
    this.table.putStream(file.fid, f.size, first, adPrefixes, objs, hashes)
    file.ahead = Math.max(file.ahead, first + objs.length / 5)
  }

  aheadOf (f: FileNode): number { return this.files.get(f)?.ahead ?? 0 }

  drop (f: FileNode, from: number, to: number): void {
    const file = this.files.get(f)
    if (file == null) return
    this.table.drop(file.fid, from, to)
    file.ahead = to < 0 ? 0 : Math.min(file.ahead, from)
  }

  stats (): ReturnType<NativeReadTable['stats']> { return this.table.stats() }
}
