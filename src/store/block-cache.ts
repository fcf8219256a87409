// Decrypted-block cache with a byte budget, keyed by CID string.
import { LRUCache } from 'lru-cache'

export class BlockCache {
  private readonly lru: LRUCache<string, Buffer>
  constructor (maxBytes: number) {
    this.lru = new LRUCache<string, Buffer>({ maxSize: Math.max(1, maxBytes), sizeCalculation: b => Math.max(1, b.length) })
  }

  get (key: string): Buffer | undefined { return this.lru.get(key) }
  set (key: string, value: Buffer): void { this.lru.set(key, value) }
  /** Bytes held now. */
  get bytes (): number { return this.lru.calculatedSize }
  /** Drops everything (an idle daemon gives the memory back, memory.ts). */
  clear (): void { this.lru.clear() }
}
