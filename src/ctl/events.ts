// File-change events for subscribers. FUSE reports every write; a 1 GiB dd is ~8000 "updated"
// per second. Events are batched per window (default 200 ms) and an "updated" is dropped when
// the same path already has a pending created/updated that nothing has moved or removed since.
// A window that piles up more than `maxPending` events ends in one "overflow" event instead.
import type { ChangeEvent, ChangeKind } from './protocol.js'

export type Listener = (batch: ChangeEvent[]) => void

export class EventHub {
  private pending: ChangeEvent[] = []
  /** path -> index in `pending` of its last created/updated event, while still coalescable. */
  private open = new Map<string, number>()
  private overflowed = false
  private timer: NodeJS.Timeout | null = null
  private readonly listeners = new Set<Listener>()

  constructor (private readonly opts: { windowMs?: number, maxPending?: number, now?: () => number } = {}) {}

  get subscribers (): number { return this.listeners.size }

  subscribe (fn: Listener): () => void {
    this.listeners.add(fn)
    return () => { this.listeners.delete(fn) }
  }

  push (kind: ChangeKind, path: string, to?: string): void {
    if (this.listeners.size === 0) return // nobody listens: no work on the FUSE path
    if (kind === 'updated' && this.open.has(path)) return
    if (this.pending.length >= (this.opts.maxPending ?? 10_000)) { this.overflowed = true; return }
    const ev: ChangeEvent = { kind, path, time: (this.opts.now ?? Date.now)() }
    if (to !== undefined) ev.to = to
    if (kind === 'created' || kind === 'updated') {
      this.open.set(path, this.pending.length)
    } else {
      this.open.delete(path)
      if (to !== undefined) this.open.delete(to)
    }
    this.pending.push(ev)
    this.timer ??= setTimeout(() => this.flush(), this.opts.windowMs ?? 200)
  }

  /** A sync event (engine.ts SyncEvent), in the same stream; never coalesced. */
  pushSync (sync: Record<string, unknown>): void {
    if (this.listeners.size === 0) return
    if (this.pending.length >= (this.opts.maxPending ?? 10_000)) { this.overflowed = true; return }
    this.pending.push({ kind: 'sync', path: '', time: (this.opts.now ?? Date.now)(), sync })
    this.timer ??= setTimeout(() => this.flush(), this.opts.windowMs ?? 200)
  }

  /** Sends what is pending now (also used on shutdown). */
  flush (): void {
    if (this.timer !== null) { clearTimeout(this.timer); this.timer = null }
    const batch = this.pending
    if (this.overflowed) batch.push({ kind: 'overflow', path: '', time: (this.opts.now ?? Date.now)() })
    this.pending = []
    this.open.clear()
    this.overflowed = false
    if (batch.length === 0) return
    for (const fn of [...this.listeners]) fn(batch)
  }
}
